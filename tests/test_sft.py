"""SFT in the one training loop: masking, LoRA freezing, merge equivalence, exact resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from codeling.checkpoint import load_model
from codeling.io import read_jsonl, write_jsonl
from codeling.lora import load_adapter, merge_adapter
from codeling.objectives import IGNORE
from codeling.sft import TaskBatches, collate, encode_example
from codeling.tasks.schema import Task, write_tasks
from codeling.tasks.synthetic import generate_tasks
from helpers import save_tiny_checkpoint

CLI = [sys.executable, "-m", "codeling.cli"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    base = save_tiny_checkpoint(root / "base")
    tasks = generate_tasks(46, seed=3, levels=(1,))
    (root / "tasks").mkdir()
    write_tasks(root / "tasks/train.jsonl", tasks[:32])
    write_tasks(root / "tasks/val.jsonl", tasks[32:40])
    write_tasks(root / "tasks/dev.jsonl", tasks[40:])  # what evaluation by generation runs on
    return root, base


def sft(root: Path, base: Path, run: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [*CLI, "sft", "--init", str(base), "--tasks", str(root / "tasks"), "--run-dir",
           str(root / run), "--no-progress", "steps=6", "batch_size=4", "seq_len=200",
           "warmup=2", "lr=3e-3", "eval_every=3", "save_every=3", "log_every=1", "threads=1",
           "eval_max_new_tokens=24", "eval_batches=2", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_prompt_is_masked_and_eot_is_learned(setup):
    from codeling.tokenizer import load_tokenizer

    _, base = setup
    tok = load_tokenizer(base)
    t = Task("x/1", "def f(a):\n    \"\"\"Return a.\"\"\"\n", "f", "    return a\n", "")
    long = Task("x/2", "def g(b, c):\n", "g", "    x = b + c\n    return x * 2\n", "")
    ex = [encode_example(tok, task, 500) for task in (t, long)]
    batch = collate(ex, tok.pad_id)
    (ids, n_prompt) = ex[0]
    labels, inputs = batch["labels"][0], batch["input_ids"][0]
    kept = labels[labels != IGNORE].tolist()
    assert kept == ids[n_prompt:]  # exactly the solution tokens, then the end-of-text token
    assert kept[-1] == tok.eot_id
    assert (labels[:n_prompt - 1] == IGNORE).all()
    assert inputs[:len(ids) - 1].tolist() == ids[:-1]
    assert batch["input_ids"].shape[1] == max(len(e[0]) for e in ex) - 1  # dynamic padding
    assert (inputs[len(ids) - 1:] == tok.pad_id).all()
    assert encode_example(tok, long, 5) is None


def test_padding_to_a_multiple_changes_no_loss(setup):
    from codeling.objectives import LMObjective
    from codeling.tokenizer import load_tokenizer

    _, base = setup
    tok, model = load_tokenizer(base), load_model(base).eval()
    tasks = generate_tasks(6, seed=5, levels=(1, 2))
    ex = [encode_example(tok, t, 500) for t in tasks]
    exact, padded = collate(ex, tok.pad_id), collate(ex, tok.pad_id, 64)
    assert padded["input_ids"].shape[1] % 64 == 0
    assert padded["input_ids"].shape[1] > exact["input_ids"].shape[1]
    with torch.no_grad():
        a, b = LMObjective().val_loss(model, exact), LMObjective().val_loss(model, padded)
    assert torch.allclose(a, b, atol=1e-5), (a, b)


def test_batches_resume_and_phase_by_level():
    ex = [([1, 2, 3, i], 1) for i in range(10)]
    levels = [1] * 5 + [2] * 5
    src = TaskBatches(ex, levels, 3, 0, seed=5, curriculum=[{"levels": [1]}, {"levels": [2]}])
    first = src.next_batch()
    assert all(v < 5 for v in first["labels"][:, 2].tolist())
    state = src.state_dict()
    a = [src.next_batch()["labels"] for _ in range(4)]
    again = TaskBatches(ex, levels, 3, 0, seed=99, curriculum=[{"levels": [1]}, {"levels": [2]}])
    again.load_state_dict(state)
    b = [again.next_batch()["labels"] for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    src.set_phase(1)
    assert all(v >= 5 for v in src.next_batch()["labels"][:, 2].tolist())


def test_lora_trains_only_adapters_merges_and_resumes_exactly(setup):
    root, base = setup
    sft(root, base, "lora", "--lora", "lora.r=4", "lora.alpha=8", "lora.dropout=0.0")
    run = root / "lora"
    final = run / "checkpoints" / "final"
    assert (final / "adapter_config.json").exists()
    assert json.loads((final / "adapter_config.json").read_text())["base_model_name_or_path"]
    # evaluation by generation on the dev set happened during training and picked best
    ev = json.loads((run / "evals" / "step_6.json").read_text())
    assert {"pass", "syntax_valid", "collapse_rate"} <= set(ev)
    assert ev["selected_on"] == "dev" and ev["n_tasks"] == 6
    assert json.loads((run / "best.json").read_text())["selected_on"] == "dev"
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss" in m for m in metrics) and any("pass" in m for m in metrics)
    # the base is untouched: only LoRA tensors exist in the adapter, and they moved
    adapter = load_file(str(final / "adapter_model.safetensors"))
    assert adapter and all("lora_" in k for k in adapter)
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    before = load_model(base).state_dict()
    tuned = load_adapter(final).get_base_model()
    for k, v in tuned.state_dict().items():
        if "lora_" not in k:
            name = k.replace(".base_layer", "")
            assert torch.equal(v, before[name]), k
    # merged checkpoint == adapted model
    merged_dir = merge_adapter(final, root / "merged")
    x = torch.randint(2, 300, (2, 17))
    with torch.no_grad():
        want = load_adapter(final)(x)
        got = load_model(merged_dir)(x)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # resume after a "kill" right after step 3's checkpoint: identical metrics and weights
    crashed = root / "lora-crashed"
    shutil.copytree(run, crashed)
    for d in (crashed / "checkpoints").iterdir():
        if d.name not in ("step_3",):
            shutil.rmtree(d)
    for f in (crashed / "evals").glob("*step_6*"):
        f.unlink()
    sft(root, base, "lora-crashed", "--resume")
    timing = ("elapsed", "per_s", "time", "seconds", "peak_mem", "mfu")  # clock and memory
    strip = (lambda rows: [{k: v for k, v in r.items() if not any(t in k for t in timing)}
                           for r in rows])
    got_m = [json.loads(x) for x in (crashed / "metrics.jsonl").read_text().splitlines()]
    assert strip(got_m) == strip(metrics)
    a = load_file(str(crashed / "checkpoints/final/adapter_model.safetensors"))
    assert all(torch.equal(a[k], adapter[k]) for k in adapter)


def test_full_mode_changes_the_base(setup):
    root, base = setup
    sft(root, base, "full", "--full", "eval_mini=false")
    final = root / "full" / "checkpoints" / "final"
    tuned, orig = load_model(final).state_dict(), load_model(base).state_dict()
    unchanged = [k for k in orig if torch.equal(tuned[k], orig[k])]
    assert not unchanged  # full fine-tuning trains every tensor


def test_batches_group_similar_lengths_and_cover_the_epoch():
    ex = [([7] * (2 + (i * 37) % 50), 1) for i in range(64)]
    src = TaskBatches(ex, [1] * 64, 4, 0, seed=0, bucket=4)
    seen, waste = [], 0
    for _ in range(16):
        b = src.next_batch()
        lengths = (b["input_ids"] == 7).sum(1)
        waste += int((b["input_ids"].shape[1] - lengths).sum())
        seen += lengths.tolist()
    assert sorted(seen) == sorted(len(ids) - 1 for ids, _ in ex)  # one epoch, every example
    assert waste < 0.25 * sum(seen)  # vs ~50% padding for random batches of these lengths


@pytest.mark.parametrize("mode", ["--full", "--lora"])
def test_resume_and_preset_mismatches_are_clear_errors(setup, mode, capsys):
    from codeling.cli import main

    root, base = setup
    run = root / f"resume{mode}"
    new = ["sft", "--init", str(base), "--tasks", str(root / "tasks"), "--run-dir", str(run),
           "--no-progress", mode, "steps=2", "batch_size=4", "seq_len=200", "save_every=2",
           "eval_every=2", "eval_batches=1", "eval_mini=false", "threads=1", "lora.r=4"]
    assert main(new) == 0, capsys.readouterr().err
    resume = ["sft", "--run-dir", str(run), "--resume", "--no-progress"]
    flip = ["--lora"] if mode == "--full" else ["--full"]
    cases = [
        (["--preset", "smoke"], "made with preset 'default', not 'smoke'"),
        (["model.n_layer=3"], "cannot change model.n_layer"),
        (flip, "cannot change sft.mode"),
        (["lora.r=8"], "cannot change lora.r"),
        (["--tasks", str(root)], f"was started with {(root / 'tasks').resolve()}"),
    ]
    for extra, message in cases:
        assert main([*resume, *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert main([*resume, mode, "lora.r=4", "steps=3"]) == 0  # same values again, a new one
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")][-1] == 3
    capsys.readouterr()
    assert main(new) == 2  # a new run into a run dir with checkpoints: no traceback
    assert "already holds checkpoints: resume the run (--resume)" in capsys.readouterr().err
    # an --init run's model is the checkpoint's: a disagreeing override is refused
    assert main([*new[:6], str(root / f"other{mode}"), *new[7:], "model.n_layer=5"]) == 2
    assert "the model comes from" in capsys.readouterr().err


def test_tasks_may_be_one_jsonl_file(setup, capsys):
    from codeling.cli import main

    root, base = setup
    file = root / "tasks" / "train.jsonl"
    run = root / "one-file"
    assert main(["sft", "--init", str(base), "--tasks", str(file), "--run-dir", str(run),
                 "--no-progress", "--full", "steps=2", "batch_size=4", "seq_len=200",
                 "save_every=2", "eval_every=2", "eval_mini=false", "threads=1"]) == 0
    rec = json.loads((run / "run.json").read_text())
    assert rec["tasks"] == str(file.resolve()) and rec["n_train"] > 0 and rec["n_val"] == 0
    # plan records (docs/formats.md): a signature prompt, an instruction prompt; one without tests is refused
    plan = [{"id": "p1", "prompt": "def double(x):\n", "solution": "    return 2 * x\n",
             "tests": ["assert double(2) == 4"]},
            {"id": "p2", "prompt": "Write a function that adds two numbers.",
             "solution": "def add(a, b):\n    return a + b\n", "test_list": ["assert add(1, 2) == 3"]}]
    write_jsonl(root / "plan.jsonl", plan)
    run = root / "plan-run"
    assert main(["sft", "--init", str(base), "--tasks", str(root / "plan.jsonl"), "--run-dir",
                 str(run), "--no-progress", "--full", "steps=1", "batch_size=2", "seq_len=200",
                 "eval_mini=false", "threads=1"]) == 0, capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["n_train"] == 2
    write_jsonl(root / "bad.jsonl", [*plan, {"id": "p3", "prompt": "def f():\n",
                                             "solution": "    return 1\n"}])
    assert main(["sft", "--init", str(base), "--tasks", str(root / "bad.jsonl"), "--run-dir",
                 str(root / "bad-run"), "--no-progress", "seq_len=200"]) == 2
    assert "bad.jsonl:3: field 'tests': record has no tests" in capsys.readouterr().err
