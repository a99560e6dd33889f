"""`codeling evaluate` end to end: real CLI subprocesses, the real sandbox, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from codeling.evaluate.harness import evaluate_samples, judge
from codeling.evaluate.metrics import summarize
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.tasks.benchmarks import load_benchmark

CLI = [sys.executable, "-m", "codeling.cli"]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    if check and res.returncode != 0:
        raise AssertionError(res.stderr)
    return res


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_reference_mini_passes_everything(tmp_path):
    res = cli("evaluate", "--benchmark", "mini", "--reference", "--out", str(tmp_path), "--quiet")
    assert json.loads(res.stdout.strip().splitlines()[-1])["pass@1"] == 1.0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["pass@1"] == 1.0 and summary["syntax_valid"] == 1.0
    assert summary["collapse_rate"] == 0.0
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and all(r["result"] == "passed" for r in rows)


def test_samples_results_and_pass_at_k(tmp_path):
    tasks = load_benchmark("mini")
    t0, t1 = tasks[0], tasks[1]
    samples = [
        {"task_id": t0.task_id, "completion": t0.canonical_solution, "model": "m"},
        {"task_id": t0.task_id, "completion": "    return None\n", "model": "m"},
        {"task_id": t1.task_id, "completion": "    return return\n", "model": "m"},
        {"task_id": t1.task_id, "completion": t1.canonical_solution, "model": "m"},
    ]
    problems = write_jsonl(tmp_path / "problems.jsonl", [t0.to_dict(), t1.to_dict()])
    sfile = write_jsonl(tmp_path / "s.jsonl", samples)
    cli("evaluate", "--problems", str(problems), "--samples", str(sfile), "--out",
        str(tmp_path / "out"), "--quiet")
    rows = [json.loads(x) for x in (tmp_path / "out/results.jsonl").read_text().splitlines()]
    assert [r["passed"] for r in rows] == [True, False, False, True]
    assert rows[1]["result"].startswith("failed")
    assert all(r["model"] == "m" for r in rows)  # extra fields pass through
    assert rows[2]["syntax_ok"] is False and rows[2]["collapse"]
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["pass@1"] == pytest.approx(0.5)
    assert summary["pass@2"] == pytest.approx(1.0)
    assert summary["syntax_valid"] == pytest.approx(0.75)
    assert summary["collapse_rate"] == pytest.approx(0.25)
    assert summary["n_errors"] == 0 and summary["errors"] == [] and "per_style" in summary
    assert all(r["error"] is False for r in rows)


def test_resume_continues_where_it_stopped(tmp_path):
    tasks = load_benchmark("mini")[:4]
    samples = [{"task_id": t.task_id, "completion": t.canonical_solution} for t in tasks]
    out = tmp_path / "out"
    out.mkdir()
    # an interrupted run left two results behind; one is marked so we can see it is kept
    kept = {**samples[0], "sample_index": 0, "passed": True, "result": "passed",
            "syntax_ok": True, "collapse": None, "marker": "from-before"}
    write_jsonl(out / "results.jsonl.partial", [kept])
    evaluate_samples(tasks, samples, out, resume=True, progress=False, workers=1,
                     limits=Limits(timeout=5))
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and rows[0].get("marker") == "from-before"
    assert [r["sample_index"] for r in rows] == [0, 1, 2, 3]
    assert not (out / "results.jsonl.partial").exists()


def test_bad_samples_name_file_line_and_field(tmp_path):
    sfile = tmp_path / "bad.jsonl"
    sfile.write_text('{"task_id": "mini/0", "completion": "    return a + b\\n"}\n'
                     '{"task_id": "mini/1"}\n')
    res = cli("evaluate", "--benchmark", "mini", "--samples", str(sfile), "--out",
              str(tmp_path / "o"), check=False)
    assert res.returncode == 2
    assert "bad.jsonl" in res.stderr and "bad.jsonl:2" in res.stderr and "completion" in res.stderr


def test_evaluate_does_not_import_torch(tmp_path):
    code = ("import sys; from codeling.cli import main; "
            f"rc = main(['evaluate', '--benchmark', 'mini', '--reference', '--out', "
            f"{str(tmp_path)!r}, '--quiet']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr


def _busy_children(pid: int) -> int:
    n = 0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1] \
                    .split()[1] == str(pid):
                n += 1
        except OSError:
            continue
    return n


def test_a_sample_the_sandbox_cannot_judge_is_an_error_not_a_failure():
    tasks = load_benchmark("mini")[:2]
    by_id = {t.task_id: t for t in tasks}
    slow = "    import time\n    time.sleep(1.0)\n" + tasks[0].canonical_solution
    with Sandbox(Limits(timeout=10), workers=1) as box:
        killed: list[int] = []

        def kill_twice() -> None:  # the worker running the sample dies, and so does its retry
            end = time.time() + 30
            while len(killed) < 2 and time.time() < end:
                for w in list(box._all):
                    if w.proc.pid not in killed and _busy_children(w.proc.pid):
                        w.proc.kill()
                        killed.append(w.proc.pid)
                time.sleep(0.01)

        t = threading.Thread(target=kill_twice)
        t.start()
        lost = judge(by_id, [{"task_id": tasks[0].task_id, "completion": slow,
                              "sample_index": 0}], box)
        t.join()
        judged = judge(by_id, [{"task_id": t.task_id, "completion": t.canonical_solution,
                                "sample_index": i} for i, t in enumerate(tasks, start=1)], box)
    assert len(killed) == 2
    assert lost[0]["error"] is True and lost[0]["passed"] is False
    assert lost[0]["result"].startswith("error: sandbox worker crashed")
    assert [r["passed"] for r in judged] == [True, True]
    s = summarize(lost + judged, tasks)
    assert s["n_errors"] == 1 and s["errors"][0]["task_id"] == tasks[0].task_id
    assert s["per_task"][tasks[0].task_id] == {"passed": 1, "n": 1, "errors": 1}
    assert s["pass@1"] == 1.0  # the error is neither a pass nor a failure


def test_a_timeout_is_judged_again_alone_before_it_is_reported():
    tasks = load_benchmark("mini")[:2]
    by_id = {t.task_id: t for t in tasks}
    hang = tasks[0].canonical_solution + "\nwhile True:\n    pass\n"
    samples = [{"task_id": tasks[0].task_id, "completion": hang},
               *({"task_id": t.task_id, "completion": t.canonical_solution} for t in tasks)]
    with Sandbox(Limits(timeout=1.0), workers=2) as box:
        start = time.time()
        rows = judge(by_id, samples, box)
        took = time.time() - start
    assert [r["result"] for r in rows] == ["timed out", "passed", "passed"]
    assert rows[0]["rejudged"] is True and "rejudged" not in rows[1]
    assert took >= 2.0  # it really ran twice
    with Sandbox(Limits(timeout=1.0), workers=1) as box:
        rows = judge(by_id, samples[:1], box, rejudge=False)
    assert rows[0]["result"] == "timed out" and "rejudged" not in rows[0]
