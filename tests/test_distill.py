"""Distillation: the teacher-reply parser, generate against a real `codeling serve`, logit KD."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from codeling.cli import main as cli_main
from codeling.config import ConfigError
from codeling.distill.generate import _judge, generate, request_plan, validation_reasons
from codeling.distill.train import check_same_tokenizer
from codeling.io import read_jsonl
from codeling.objectives import KDObjective, forward_logits
from codeling.tasks.schema import write_tasks
from codeling.tasks.synthetic import generate_tasks
from codeling.tasks.teacher import CATEGORIES, Rejected, Teacher, parse_reply
from codeling.tokenizer import train_tokenizer
from helpers import save_tiny_checkpoint, serving, tiny_model_and_tokenizer

CLI = [sys.executable, "-m", "codeling.cli"]
FUNC = '''def second_largest(values: list[int]) -> int:
    """Return the second largest distinct value, or -1 when there is none.

    >>> second_largest([3, 1, 2])
    2
    """
    distinct = sorted(set(values))
    return distinct[-2] if len(distinct) > 1 else -1
'''
CHECK = '''def check(candidate):
    assert candidate([3, 1, 2]) == 2
    assert candidate([5, 5]) == -1
    assert candidate([]) == -1
'''
TEST_FUNCS = '''def test_basic():
    assert second_largest([3, 1, 2]) == 2
    assert second_largest([9, 4, 9, 7]) == 7

def test_edge():
    assert second_largest([]) == -1
'''

# messy replies that must all parse into a task that validates in the sandbox
GOOD = {
    "fenced": f"```python\n{FUNC}\n\n{CHECK}```",
    "chatter_plain_fence": f"Sure! Here is a task:\n\n```\n{FUNC}\n{CHECK}```\nHope it helps.",
    "no_fence_chatter": f"Here you go.\n\n{FUNC}\n\n{CHECK}\nThe function sorts the set.",
    "crlf_tabs": (f"```py\n{FUNC}\n{CHECK}```").replace("    ", "\t").replace("\n", "\r\n"),
    "split_blocks": (f"Prompt:\n```python\n{FUNC.split('    distinct')[0]}```\nSolution:\n"
                     "```python\n    distinct = sorted(set(values))\n"
                     "    return distinct[-2] if len(distinct) > 1 else -1\n```\n"
                     f"Tests:\n```python\n{CHECK}```"),
    "test_functions": f"```python\n{FUNC}\n\n{TEST_FUNCS}\n```",
    "bare_asserts_and_main": (f"```python\nimport math\n\n\n{FUNC}\n\nif __name__ == '__main__':\n"
                              "    print(second_largest([1, 2]))\n\n"
                              "assert second_largest([3, 1, 2]) == 2\n"
                              "assert second_largest([1]) == -1\n"
                              "assert second_largest([2, 2, 1]) == 1\nprint('ok')\n```"),
    "helper_and_noarg_check": ('```python\ndef _uniq(xs):\n    return sorted(set(xs))\n\n\n'
                               + FUNC.replace("sorted(set(values))", "_uniq(values)")
                               + "\n\ndef check():\n    assert second_largest([3, 1, 2]) == 2\n"
                               "    assert second_largest([5, 5]) == -1\n"
                               "    for xs in ([], [0]):\n"
                               "        assert second_largest(xs) == -1\ncheck()\n```"),
    "unclosed_fence_and_output_block": (f"```text\n>>> second_largest([1])\n-1\n```\n"
                                        f"```python\n{FUNC}\n{CHECK}"),
}
BAD = {
    "": "empty reply",
    "I cannot help with that.": "no Python code",
    f"```python\n{FUNC}```": "no tests",
    f"```python\n{FUNC}\ndef check(candidate):\n    assert candidate([1, 2]) == 1\n```": "asserts",
    "```python\ndef f(x):\n    return x\n\ndef check(c):\n    assert c(1) == 1\n"
    "    assert c(2) == 2\n    assert c(3) == 3\n```": "no docstring",
    "```python\ndef f(x:\n    return x\n```": "syntax error",
    f"```python\n{CHECK}```": "no function to solve",
}


@pytest.mark.parametrize("name", list(GOOD))
def test_parser_accepts_messy_replies(name):
    task = parse_reply(GOOD[name], "lists", 2)
    assert task.entry_point == "second_largest"
    assert task.prompt.rstrip().endswith('"""') and "def second_largest(" in task.prompt
    assert task.canonical_solution.startswith("    ")
    assert "check(" in task.test and task.source == "teacher"
    assert task.task_id.startswith("teacher/") and (task.category, task.level) == ("lists", 2)
    assert "print(" not in task.prompt + task.test and "__main__" not in task.prompt


def test_parsed_tasks_validate_in_the_sandbox():
    tasks = [parse_reply(r, "lists", 2) for r in GOOD.values()]
    wrong = parse_reply(GOOD["fenced"].replace("distinct[-2]", "distinct[-1]"), "lists", 2)
    assert validation_reasons([*tasks, wrong], workers=2) == [None] * len(tasks) + [
        "teacher: canonical solution fails (AssertionError)"]


@pytest.mark.parametrize("reply", list(BAD))
def test_parser_rejects_with_a_reason(reply):
    with pytest.raises(Rejected, match=BAD[reply]):
        parse_reply(reply, "lists", 1)


def test_judge_dedupes_against_earlier_runs_and_decontaminates():
    from codeling.tasks.benchmarks import load_benchmark
    from codeling.tasks.decontam import Decontaminator

    he = load_benchmark("humaneval")
    deco = Decontaminator({"humaneval": he})
    first = parse_reply(GOOD["fenced"], "lists", 2)
    copied = he[0]  # a HumanEval task, written back as a teacher reply
    leak = f"```python\n{copied.prompt}{copied.canonical_solution}\n{copied.test}```"
    plans = [("lists", 2)] * 4
    replies = [(GOOD["fenced"], ""), (GOOD["crlf_tabs"], ""), (leak, ""), (None, "timed out")]
    rows = _judge(plans, replies, {first.task_id}, deco, 2, allow_contamination=False)
    assert [r[1] for r in rows] == ["duplicate", "duplicate", "contaminated", "request"]
    rows = _judge(plans, replies, set(), deco, 2, allow_contamination=True)
    assert rows[0][0] is not None and rows[1][1] == "duplicate"
    assert rows[2][0].extra["contamination"]["eval_task_id"] == copied.task_id


def test_request_plan_is_balanced_and_deterministic():
    combos = {request_plan(i, CATEGORIES, (1, 2, 3), 7) for i in range(30)}
    assert len(combos) == 30
    assert [request_plan(i, CATEGORIES, (1, 2), 1) for i in range(5)] == \
        [request_plan(i, CATEGORIES, (1, 2), 1) for i in range(5)]


@pytest.fixture(scope="module")
def served():
    with serving(*tiny_model_and_tokenizer()) as url:
        yield f"{url}/v1"


def test_generate_against_real_serve_and_resume(served, tmp_path):
    out = tmp_path / "gen"
    teacher = Teacher(served, "tiny", max_tokens=48, retries=0, timeout=60)
    kw = {"concurrency": 2, "eval_sets": ["humaneval"], "workers": 1, "progress": False}
    first = generate(out, teacher, 2, levels=(1, 2), **kw)  # at most 4·n = 8 requests
    assert first["requests"] == first["received"] == 8
    print(f"tiny teacher: fraction validated {first['fraction_validated']}, "
          f"parsed {first['fraction_parsed']}, reasons {first['rejected_by_reason']}")
    # an interrupted append: the cut line is dropped and its request asked again
    rej = out / "rejected.jsonl"
    data = rej.read_bytes()
    rej.write_bytes(data[:-40])
    second = generate(out, teacher, 4, levels=(1, 2), **kw)
    rows = read_jsonl(out / "tasks.jsonl") + read_jsonl(rej)
    requests = [r["request"] for r in rows]
    assert sorted(requests) == list(range(16))  # 4·n in all, none asked twice, none lost
    assert second["requests"] == 16 and second["accepted"] == len(read_jsonl(out / "tasks.jsonl"))
    assert len({r["task_id"] for r in read_jsonl(out / "tasks.jsonl")}) == second["accepted"]
    report = json.loads((out / "report.json").read_text())
    assert report["received"] == report["parsed"] + sum(
        v for k, v in report["rejected_by_reason"].items() if k.startswith("parse"))


def test_generate_cli_errors(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: nothing listens there
    args = ["distill", "generate", "--endpoint", f"http://127.0.0.1:{port}/v1", "--model", "m",
            "--out", str(tmp_path / "o"), "--n", "2", "--retries", "0", "--quiet",
            "--eval-sets", "humaneval"]
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and f"cannot connect to http://127.0.0.1:{port}/v1" in res.stderr
    assert cli_main([*args, "--api-key-env", "CODELING_NO_SUCH_KEY"]) == 2


def test_kd_loss_zero_for_self_positive_otherwise_teacher_frozen():
    model, tok = tiny_model_and_tokenizer()
    ids = torch.tensor([tok.encode("def add(a, b):\n    return a + b\n")])
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
    student = copy.deepcopy(model).train()
    kd = KDObjective(model, alpha=1.0, temperature=2.0)
    assert kd(student, batch).item() == pytest.approx(0.0, abs=1e-6)
    other = tiny_model_and_tokenizer(seed=1)[0].train()
    loss = kd(other, batch)
    assert loss.item() > 0.1
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert any(p.grad is not None for p in other.parameters())
    mixed = KDObjective(model, alpha=0.5, temperature=1.0)(student, batch)
    assert mixed.item() == pytest.approx(
        0.5 * kd.val_loss(student, batch).item(), rel=1e-4)  # KL term 0: half the CE
    assert not torch.is_grad_enabled() or forward_logits(model, batch).requires_grad is False


def test_tokenizer_mismatch_is_an_error(tmp_path):
    _, tok = tiny_model_and_tokenizer()
    other = train_tokenizer(["def f(x):\n    return x * 2\n" * 50], vocab_size=300)
    check_same_tokenizer(tmp_path / "t", tok, tmp_path / "s", tok)
    with pytest.raises(ConfigError, match="tokenizers differ"):
        check_same_tokenizer(tmp_path / "t", tok, tmp_path / "s", other)


@pytest.fixture(scope="module")
def distill_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    teacher = save_tiny_checkpoint(root / "teacher")
    tasks = generate_tasks(60, seed=3, levels=(1, 2))
    (root / "tasks").mkdir()
    write_tasks(root / "tasks/train.jsonl", tasks[:52])
    write_tasks(root / "tasks/val.jsonl", tasks[52:])
    return root, teacher


def test_distill_train_loss_falls_with_curriculum(distill_setup, capsys):
    root, teacher = distill_setup
    _, tok = tiny_model_and_tokenizer()
    run = root / "run"
    rc = cli_main(["distill", "train", "--teacher", str(teacher), "--student-preset", "smoke",
                   "--tasks", str(root / "tasks"), "--run-dir", str(run), "--no-progress",
                   f"model.vocab_size={tok.vocab_size}", "model.n_layer=1", "steps=40",
                   "seq_len=250", "batch_size=4", "lr=1e-2", "warmup=2", "log_every=1",
                   "eval_every=20", "save_every=20", "eval_batches=1", "threads=1",
                   "curriculum=[{levels=[1], steps=20}, {levels=[1, 2], steps=20}]"])
    assert rc == 0, capsys.readouterr().err
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "loss" in r]
    losses = [r["loss"] for r in rows]
    print("distill loss curve:", [round(x, 3) for x in losses[::4]])
    assert sum(losses[-5:]) / 5 < 0.92 * sum(losses[:5]) / 5
    assert {r["phase"] for r in rows if r["step"] <= 20} == {0}
    assert {r["phase"] for r in rows if r["step"] > 20} == {1}
    assert (run / "checkpoints/final/model.safetensors").exists()
    assert json.loads((run / "run.json").read_text())["teacher"] == str(teacher.resolve())


def test_distill_train_on_a_corpus_and_vocab_check(distill_setup, tmp_path, capsys):
    root, teacher = distill_setup
    import string
    import textwrap

    from codeling.io import write_jsonl

    texts = [{"path": m.__file__, "text": Path(m.__file__).read_text()} for m in (string, textwrap)]
    write_jsonl(tmp_path / "corpus/train.jsonl", texts)
    write_jsonl(tmp_path / "corpus/val.jsonl", texts[:1])
    base = ["distill", "train", "--teacher", str(teacher), "--init", str(teacher),
            "--corpus", str(tmp_path / "corpus"), "--no-progress", "steps=6", "seq_len=64",
            "batch_size=2", "log_every=1", "eval_every=6", "eval_batches=1", "threads=1",
            "eval_mini=false"]
    assert cli_main([*base, "--run-dir", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    assert len([r for r in read_jsonl(tmp_path / "run/metrics.jsonl") if "loss" in r]) == 6
    rc = cli_main(["distill", "train", "--teacher", str(teacher), "--student-preset", "smoke",
                   "--tasks", str(root / "tasks"), "--run-dir", str(tmp_path / "bad")])
    assert rc == 2 and "model.vocab_size=" in capsys.readouterr().err


def test_distill_resume_keeps_forced_keys_and_mismatches_are_errors(distill_setup, tmp_path,
                                                                    capsys):
    import shutil

    root, teacher = distill_setup
    _, tok = tiny_model_and_tokenizer()
    run = tmp_path / "run"
    new = ["distill", "train", "--teacher", str(teacher), "--student-preset", "smoke",
           "--tasks", str(root / "tasks"), "--run-dir", str(run), "--no-progress",
           f"model.vocab_size={tok.vocab_size}", "model.n_layer=1", "steps=4", "seq_len=250",
           "batch_size=4", "save_every=2", "eval_every=2", "eval_batches=1", "threads=1"]
    assert cli_main(new) == 0, capsys.readouterr().err
    crashed = tmp_path / "crashed"
    shutil.copytree(run, crashed)
    for d in ("step_4", "final"):
        shutil.rmtree(crashed / "checkpoints" / d)
    resume = ["distill", "train", "--run-dir", str(crashed), "--resume", "--no-progress"]
    cases = [
        (["--preset", "cpu"], "made with preset 'smoke', not 'cpu'"),
        (["--student-preset", "cpu"], "--student-preset cpu but"),
        (["model.vocab_size=999"], "cannot change model.vocab_size"),
        (["--teacher", str(tmp_path)], f"was started with {teacher.resolve()}"),
    ]
    for extra, message in cases:
        assert cli_main([*resume, *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    # the forced model.vocab_size survives a resume with a new override (no preset rebuild)
    assert cli_main([*resume, "steps=4", "log_every=10"]) == 0, capsys.readouterr().err
    assert f"resumed from {crashed / 'checkpoints' / 'step_2'} at step 2" in capsys.readouterr().out
    weights = [(d / "checkpoints/final/model.safetensors").read_bytes() for d in (run, crashed)]
    assert weights[0] == weights[1]


def test_distill_init_run_resume_mismatch(distill_setup, tmp_path, capsys):
    root, teacher = distill_setup
    run = tmp_path / "init"
    assert cli_main(["distill", "train", "--teacher", str(teacher), "--init", str(teacher),
                     "--tasks", str(root / "tasks"), "--run-dir", str(run), "--no-progress",
                     "steps=2", "seq_len=250", "batch_size=4", "save_every=2", "eval_every=2",
                     "eval_batches=1", "threads=1", "eval_mini=false"]) == 0
    resume = ["distill", "train", "--run-dir", str(run), "--resume", "--no-progress"]
    assert cli_main([*resume, "model.d_model=32"]) == 2
    assert "cannot change model.d_model" in capsys.readouterr().err
    assert cli_main([*resume, "--init", str(root / "tasks")]) == 2
    assert f"was started with {teacher.resolve()}" in capsys.readouterr().err
    assert cli_main([*resume, "steps=3"]) == 0
    assert json.loads((run / "run.json").read_text())["init"] == str(teacher.resolve())
