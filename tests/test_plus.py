"""HumanEval+ and MBPP+ judged as evalplus judges them: base and plus, measured references,
CPU-time limits; verdicts that do not move when the machine is busy. Real sandbox, real tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codeling.evaluate.harness import evaluate_samples, judge
from codeling.evaluate.plus_oracle import measure, plus_tests
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.io import iter_jsonl
from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.plus import plus_inputs

# ../shared/data beside the checkout, or $CODELING_DATA_DIR (a worktree has no ../shared)
SHARED = Path(os.environ.get("CODELING_DATA_DIR")
              or Path(__file__).resolve().parents[2] / "shared" / "data")
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Reference measurements go to a cache of this test module's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


def tasks_of(name: str, ids: list[str]) -> list:
    by_id = {t.task_id: t for t in load_benchmark(name, data_dir=SHARED)}
    return [by_id[i] for i in ids]


def plus_only_failure(task) -> str:
    """A completion that is right on every base input and wrong from the first plus input on:
    the check calls it on the base inputs first."""
    n_base = len(plus_inputs(task)["base"])
    body = task.canonical_solution
    guard = (f"    global _calls\n    _calls = globals().get('_calls', 0) + 1\n"
             f"    if _calls > {n_base}:\n        return 'wrong'\n")
    if task.task_id.startswith("HumanEval/"):
        return guard + body
    head, _, rest = body.partition(":\n")  # MBPP+: the completion is the whole def
    pad = rest[:len(rest) - len(rest.lstrip(" "))]
    return head + ":\n" + guard.replace("    ", pad) + rest


def evaluate(tasks, samples, out: Path) -> list[dict]:
    evaluate_samples(tasks, [dict(s) for s in samples], out, workers=2, progress=False)
    return [r for _, r in iter_jsonl(out / "results.jsonl")]


def test_base_and_plus_are_reported_as_evalplus_does(tmp_path):
    tasks = tasks_of("humaneval+", ["HumanEval/0", "HumanEval/14"]) \
        + tasks_of("mbpp+", ["Mbpp/2"])
    he0, he14, mb2 = tasks
    samples = [
        {"task_id": he0.task_id, "completion": he0.canonical_solution},
        {"task_id": he0.task_id, "completion": "    return None\n"},
        {"task_id": he0.task_id, "completion": plus_only_failure(he0)},
        {"task_id": he14.task_id, "completion": he14.canonical_solution},
        {"task_id": he14.task_id, "completion": plus_only_failure(he14)},
        {"task_id": mb2.task_id, "completion": mb2.canonical_solution},
        {"task_id": mb2.task_id, "completion": plus_only_failure(mb2)},
    ]
    rows = evaluate(tasks, samples, tmp_path / "out")
    got = [(r["base_status"], r["plus_status"], r["passed"]) for r in rows]
    assert got == [("pass", "pass", True), ("fail", None, False), ("pass", "fail", False),
                   ("pass", "pass", True), ("pass", "fail", False),
                   ("pass", "pass", True), ("pass", "fail", False)]
    assert rows[1]["base_fail_tests"] == [plus_inputs(he0)["base"][0]]
    assert rows[2]["plus_fail_tests"] == [plus_inputs(he0)["plus"][0]]
    assert rows[2]["base_fail_tests"] == [] and rows[0]["plus_fail_tests"] == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # base: HE/0 2 of 3, HE/14 2 of 2, Mbpp/2 2 of 2; plus: 1 of 3, 1 of 2, 1 of 2
    assert summary["base"]["pass@1"] == pytest.approx((2 / 3 + 1 + 1) / 3, abs=1e-4)
    assert summary["plus"]["pass@1"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3, abs=1e-4)
    assert summary["pass@1"] == summary["plus"]["pass@1"]


def test_measured_references_are_cached_and_used(tmp_path):
    tasks = tasks_of("humaneval+", ["HumanEval/14", "HumanEval/2"])
    first = measure(tasks, cache=tmp_path)
    assert all("expected" in o and len(o["times"]) > 10 for o in first.values())
    assert first["HumanEval/14"]["digests"], "its large outputs travel as digests"
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert measure(tasks, cache=tmp_path) == first  # read back, not measured again
    tests = plus_tests(tasks, cache=tmp_path)
    for t in tasks:
        test, timeout, base_test, base_timeout, seconds = tests[t.task_id]
        assert "_CL_EXPECTED" in test and 2.0 < timeout <= 62.0
        assert "_CL_STOP = None" in test and f"_CL_STOP = {t.extra['n_base']}" in base_test
        assert 2.0 < base_timeout <= timeout
        assert seconds == pytest.approx(sum(first[t.task_id]["times"]))


@pytest.mark.slow
def test_verdicts_do_not_move_under_load(tmp_path):
    """Canonical solutions and a set of samples, once on a quiet machine and once with both
    cores kept busy by other processes: not one verdict changes."""
    tasks = tasks_of("humaneval+", ["HumanEval/0", "HumanEval/12", "HumanEval/24", "HumanEval/36",
                                    "HumanEval/59", "HumanEval/94"]) \
        + tasks_of("mbpp+", ["Mbpp/2", "Mbpp/12", "Mbpp/20", "Mbpp/62", "Mbpp/124", "Mbpp/580"])
    samples = [{"task_id": t.task_id, "completion": t.canonical_solution} for t in tasks]
    samples += [{"task_id": t.task_id, "completion": plus_only_failure(t)} for t in tasks[::2]]
    samples += [{"task_id": t.task_id, "completion": "    return None\n"} for t in tasks[:3]]
    samples += [{"task_id": tasks[0].task_id, "completion": "    while True:\n        pass\n"}]
    plus_tests(tasks)  # measured once, before either run
    quiet = evaluate(tasks, samples, tmp_path / "quiet")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        busy = evaluate(tasks, samples, tmp_path / "busy")
    finally:
        for p in hogs:
            p.kill()
            p.wait()

    def verdicts(rows):
        return [(r["task_id"], r["passed"], r["base_status"], r["plus_status"]) for r in rows]

    assert verdicts(busy) == verdicts(quiet)
    assert sum(r["passed"] for r in quiet) == len(tasks)  # every canonical one, nothing else
    assert quiet[-1]["base_status"] == "fail" and "timed out" in quiet[-1]["result"]


@pytest.mark.slow
def test_a_sample_that_times_out_on_plus_inputs_keeps_its_base_pass(tmp_path):
    """One program runs base and plus; when it runs out of wall-clock time (here: it sleeps,
    which no CPU limit sees) the base inputs are judged alone, as evalplus judges them apart."""
    task, = tasks_of("humaneval+", ["HumanEval/39"])
    n_base = len(plus_inputs(task)["base"])
    stall = (f"    global _calls\n    _calls = globals().get('_calls', 0) + 1\n"
             f"    if _calls > {n_base}:\n        import time\n        time.sleep(1000)\n"
             + task.canonical_solution)
    rows = evaluate([task], [{"task_id": task.task_id, "completion": stall},
                             {"task_id": task.task_id, "completion": "    return None\n"}],
                    tmp_path / "out")
    assert rows[0]["result"] == "timed out" and rows[0]["rejudged"] is True
    assert (rows[0]["base_status"], rows[0]["plus_status"]) == ("pass", "timeout")
    assert (rows[1]["base_status"], rows[1]["plus_status"]) == ("fail", None)


def test_large_outputs_are_equal_exactly_when_equality_says_so(tmp_path):
    """HumanEval/100's output for n = 10**6 is a million ints, kept as digests. The same list
    passes (its pickle matches: the fast path); the same numbers as floats are `==` to it
    (evalplus passes them), so they pass by the exact digest; one number off fails there."""
    task, = tasks_of("humaneval+", ["HumanEval/100"])
    big = plus_inputs(task)["plus"].index([1000000])
    assert str(len(plus_inputs(task)["base"]) + big) in measure([task])[task.task_id]["fast"]
    floats = task.canonical_solution.replace("ans.append(num)", "ans.append(float(num))")
    off = task.canonical_solution.replace(
        "    return ans", "    if n == 1000000:\n        ans[-1] += 1\n    return ans")
    assert floats != task.canonical_solution and off != task.canonical_solution
    rows = evaluate([task], [{"task_id": task.task_id, "completion": c}
                             for c in (task.canonical_solution, floats, off)], tmp_path / "out")
    got = [(r["base_status"], r["plus_status"]) for r in rows]
    assert got == [("pass", "pass"), ("pass", "pass"), ("pass", "fail")]
    assert rows[2]["plus_fail_tests"] == [[1000000]]


def test_samples_run_longest_reference_first(tmp_path):
    """With several workers the run ends when its last sample does: the slow tasks go first
    (by the reference's measured time), so none of them starts while the others idle."""
    tasks = tasks_of("humaneval+", ["HumanEval/2", "HumanEval/25", "HumanEval/4"])
    tests = plus_tests(tasks)
    assert tests["HumanEval/25"].seconds > 10 * max(tests["HumanEval/2"].seconds,
                                                     tests["HumanEval/4"].seconds)
    seen = []
    with Sandbox(Limits(), workers=1) as sb:
        rows = judge({t.task_id: t for t in tasks},
                     [{"task_id": t.task_id, "completion": t.canonical_solution} for t in tasks],
                     sb, tests=tests, on_result=lambda r: seen.append(r["task_id"]))
    assert seen[0] == "HumanEval/25"
    assert [r["task_id"] for r in rows] == [t.task_id for t in tasks]  # rows in sample order
    assert all(r["passed"] for r in rows)
