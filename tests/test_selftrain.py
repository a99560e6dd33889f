"""Verified self-training on a tiny real model: accept path, real kill + resume, endpoint teacher.

A random tiny model cannot write code, so the pool holds tasks whose prompt already returns the
answer and then opens a triple-quoted string (`NOTE = '` x3) that the test closes: with "\\n" as the stop
sequence a sampled completion is one line of string text (distinct code, unlike a comment), so
the real tests pass unless the text breaks the string; "impossible" tasks (the test wants
another value) always fail. That exercises sampling, the sandbox verdicts, dedupe,
decontamination and fine-tuning for real.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from codeling import cli
from codeling.config import load_config, save_config
from codeling.selftrain import endpoint_sampler, sample_and_verify
from codeling.serve import make_server
from codeling.tasks.schema import Task, write_tasks
from helpers import save_tiny_checkpoint, tiny_model_and_tokenizer

CLI = [sys.executable, "-m", "codeling.cli", "selftrain"]
OVERRIDES = ["selftrain.rounds=1", "selftrain.k=3", "selftrain.fresh_tasks=0", "selftrain.chunk=2",
             'selftrain.stop=["\\n"]', 'selftrain.eval_sets=["mini"]', "selftrain.max_new_tokens=6",
             "selftrain.workers=1", "sft.mode=full", "sft.steps=2", "sft.batch_size=4",
             "sft.seq_len=64", "sft.warmup=1", "sft.eval_every=2", "sft.save_every=1",
             "sft.log_every=1", "sft.threads=1", "sft.eval_max_new_tokens=6",
             "sft.eval_batches=1"]


def easy(i: int, name: str = "value") -> Task:
    return Task(f"t/{name}{i}", f'def {name}_{i}():\n    return {i}\n\n\nNOTE = """',
                f"{name}_{i}", " done", f'"""\n\n\ndef check(c):\n    assert c() == {i}\n',
                category="logic", level=1, source="synthetic", extra={"style": "comment"})


def impossible(i: int) -> Task:
    t = easy(i, "other")
    t.test = f'"""\n\n\ndef check(c):\n    assert c() == {i + 1}\n'
    t.category, t.extra = "loops", {"style": "oneline"}
    return t


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("selftrain")
    base = save_tiny_checkpoint(root / "base")
    tasks = root / "tasks"
    tasks.mkdir()
    write_tasks(tasks / "train.jsonl", [easy(i) for i in range(6)] + [impossible(i)
                                                                     for i in range(4)])
    write_tasks(tasks / "val.jsonl", [easy(i, "val") for i in range(2)])
    write_tasks(tasks / "dev.jsonl", [easy(i, "dev") for i in range(2)])
    return root, base, tasks


def cmd(root: Path, base: Path, tasks: Path, run: str) -> list[str]:
    return [*CLI, "--init", str(base), "--tasks", str(tasks), "--run-dir", str(root / run),
            *OVERRIDES]


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_round_then_kill_and_resume_loses_and_duplicates_nothing(setup):
    root, base, tasks = setup
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    clean = subprocess.run(cmd(root, base, tasks, "clean"), capture_output=True, text=True,
                           timeout=600, env=env)
    assert clean.returncode == 0, clean.stderr[-3000:]
    r1 = root / "clean" / "round_1"
    report = json.loads((r1 / "report.json").read_text())
    accepted, rejected = rows(r1 / "accepted.jsonl"), rows(r1 / "rejected.jsonl")
    assert report["accepted"] == len(accepted) > 0 and report["trained"]
    assert {r["task_id"] for r in accepted} <= {f"t/value{i}" for i in range(6)}
    assert {r["task_id"] for r in rejected if r["reason"].startswith("failed")} == {
        f"t/other{i}" for i in range(4)}
    assert report["by_style"]["oneline"]["rate"] == 0.0
    assert report["by_category"]["logic"]["accepted"] == len(accepted)
    assert (r1 / "sft" / "checkpoints" / "final").exists()
    curve = json.loads((root / "clean" / "curve.json").read_text())
    assert [c["round"] for c in curve] == [0, 1] and curve[1]["dev"]["n_tasks"] == 2
    train = rows(r1 / "tasks" / "train.jsonl")
    assert len(train) == len(accepted) + min(10, len(accepted))  # mix_ratio 1 (10 originals)

    # the same run killed in the middle of sampling, then resumed
    proc = subprocess.Popen(cmd(root, base, tasks, "killed"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    progress = root / "killed" / "round_1" / "progress.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (progress.exists() and progress.read_text().strip()):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= len(rows(progress)) < 5  # killed part way: 5 chunks of 2 prompts
    again = subprocess.run(cmd(root, base, tasks, "killed"), capture_output=True, text=True,
                           timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    k1 = root / "killed" / "round_1"
    for name in ("accepted", "rejected", "verified"):
        got = [(r["task_id"], r["sample_idx"]) for r in rows(k1 / f"{name}.jsonl")]
        want = [(r["task_id"], r["sample_idx"]) for r in rows(r1 / f"{name}.jsonl")]
        assert len(got) == len(set(got)), f"duplicates in {name}"
        assert sorted(got) == sorted(want), f"{name} differs from the uninterrupted run"
    assert sorted(r["key"] for r in rows(k1 / "accepted.jsonl")) == sorted(
        r["key"] for r in accepted)


def test_endpoint_teacher_uses_the_same_accept_path(setup, tmp_path):
    model, tok = tiny_model_and_tokenizer()
    server = make_server(model, tok, "127.0.0.1", 0, model_name="tiny", quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    try:
        st = load_config(None, OVERRIDES).selftrain
        sampler = endpoint_sampler(f"http://{host}:{port}/v1", "tiny", st, ["\n"])
        pool = [easy(i) for i in range(3)] + [impossible(0)]
        sample_and_verify(tmp_path, pool, sampler, st, 1, set(), "endpoint:tiny")
    finally:
        server.shutdown()
        server.server_close()
    verified, rejected = rows(tmp_path / "verified.jsonl"), rows(tmp_path / "rejected.jsonl")
    assert verified and all(r["teacher"] == "endpoint:tiny" for r in verified)
    assert len(verified) + len(rejected) == 4 * st.k
    assert all(r["task_id"].startswith("t/value") for r in verified)
    assert any(r["reason"].startswith("failed") and r["task_id"] == "t/other0" for r in rejected)


def test_rerun_follows_the_one_resume_rule(setup, tmp_path, capsys):
    """A rerun is the saved config.toml plus new overrides: another preset or a changed seed is
    refused (exit 2, one line, no traceback) before anything is sampled or written."""
    _, base, tasks = setup
    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config("smoke", OVERRIDES, "selftrain"), run / "config.toml")
    argv = ["selftrain", "--init", str(base), "--tasks", str(tasks), "--run-dir", str(run)]
    assert cli.main([*argv, "--preset", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "'smoke'" in err and "'cpu'" in err and "Traceback" not in err
    assert cli.main([*argv, "selftrain.seed=7"]) == 2
    err = capsys.readouterr().err
    assert "selftrain.seed" in err and "seed" in err.split("resuming")[-1]
    assert cli.main([*argv, "selftrain.kd_alpha=1"]) == 2
    assert "[distill]" in capsys.readouterr().err
    assert cli.main(["selftrain", "--run-dir", str(tmp_path / "new")]) == 2
    assert "--init and --tasks are required" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["config.toml"]


def test_sampling_runs_on_the_runs_device(monkeypatch):
    """Rounds sample and evaluate where the run's fine-tunes train, not always on the CPU."""
    import torch

    from codeling.selftrain import run_device

    assert run_device(load_config("smoke", ["sft.device=cpu"])) == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "0")
    want = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert run_device(load_config("smoke")) == want  # sft.device=auto
