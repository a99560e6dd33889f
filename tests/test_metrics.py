"""pass@k against brute force, syntax validity, the collapse detector, and the summary."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from codeling.evaluate.metrics import (
    binomial_se,
    collapse_reason,
    default_ks,
    estimate_pass_at_k,
    is_collapsed,
    is_valid_syntax,
    pass_at_k,
    summarize,
)
from codeling.tasks.schema import Task


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of all k-subsets of n samples (c correct) that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 2), (6, 1, 3),
                                   (8, 3, 5), (10, 0, 4), (10, 10, 7), (9, 4, 6)])
def test_pass_at_k_matches_brute_force(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_known_values():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(200, 0, 100) == 0.0
    assert pass_at_k(4, 3, 2) == 1.0  # n - c < k
    assert pass_at_k(20, 5, 10) == pytest.approx(1 - math.comb(15, 10) / math.comb(20, 10))
    est = estimate_pass_at_k([5, 5, 10], [0, 5, 1], 1)
    assert est.tolist() == pytest.approx([0.0, 1.0, 0.1])
    assert estimate_pass_at_k(5, [1, 2], 2).tolist() == pytest.approx([0.4, 0.7])


PROMPT = 'def f(xs):\n    """Sum."""\n'


@pytest.mark.parametrize("completion,ok", [
    ("    return sum(xs)\n", True),
    ("    total = 0\n    for x in xs:\n        total += x\n    return total\n", True),
    ("    return sum(xs\n", False),                       # unclosed bracket
    ("    return return\n", False),
    ("  return 1\n    return 2\n", False),               # bad indentation
    ("    return '\\x00'\n", True),                      # an escape in a string is fine
    ("    x = 1\x00\n", False),                           # a raw null byte
    ("    return " + "(" * 5000 + ")" * 5000 + "\n", False),  # too deeply nested
])
def test_syntax_validity(completion, ok):
    assert is_valid_syntax(PROMPT, completion) is ok


COLLAPSED = {
    "return return": "    return return x\n",
    "def def": "    return 1\ndef def g():\n",
    "if if": "    if if x:\n        pass\n",
    "name name": "    y = x x + 1\n",
    "cut-off string": "    s = 'abc\n    return return\n",
    "bad indent": "    x = 1\n  y = 2\n    for for i in xs:\n",
    "line x4": "    y = x + 1\n" * 4,
    "line x4 with blanks": "    y = x + 1\n\n" * 4,
    "line x8 spread": "".join(f"    a = g(b, c)\n    q = {i}\n" for i in range(8)),
    "ngram": "    return " + " + ".join(["foo(a, b) * bar(c)"] * 5) + "\n",
}

CORRECT = {
    "nested brackets": "    return ((a + b) * (c[d[0]]))\n",
    "empty strings": '    return "" + \'\' + """"""\n',
    "not not": "    return not not x\n",
    "validation chain": "    if not s:\n        return False\n    if len(s) > 5:\n        return False\n"
                        "    if s[0] == 'x':\n        return False\n    if s[-1] == 'y':\n"
                        "        return False\n    return True\n",
    "if/else chain": "".join(f"    if {v}:\n        pass\n    else:\n        pass\n"
                             for v in "abcd"),
    "closing brackets": "    x = [\n        1,\n    ]\n    y = [\n        2,\n    ]\n    z = [\n"
                        "        3,\n    ]\n    w = [\n        4,\n    ]\n",
    "loop with counters": "    i = j = 0\n    while i < n:\n        i += 1\n        if i % 2:\n"
                          "            j += 1\n        else:\n            j -= 1\n    return j\n",
    "match statement": "    match match:\n        case 1:\n            return 1\n",
    "three repeats": "    x = f(a, b)\n" * 3,
    "same line in branches": "".join(f"    if x == {i}:\n        return 'No'\n" for i in range(6)),
    "four loops": "".join(f"    for i in range(n):\n        t{i} += a[i] * {i}\n" for i in range(4)),
    "matrix indices": "    for i in range(n):\n        for j in range(m):\n"
                      "            d[i][j] = d[i - 1][j] + d[i][j - 1] + d[i - 1][j - 1]\n",
}


@pytest.mark.parametrize("name", list(COLLAPSED))
def test_collapse_positives(name):
    assert collapse_reason(COLLAPSED[name]) is not None, name
    assert is_collapsed(COLLAPSED[name])


@pytest.mark.parametrize("name", list(CORRECT))
def test_collapse_negatives(name):
    assert collapse_reason(CORRECT[name]) is None, (name, collapse_reason(CORRECT[name]))


def test_collapse_reason_names_the_rule():
    assert collapse_reason("    return return\n") == "repeated keyword: return return"
    assert collapse_reason(COLLAPSED["line x4"]).startswith("line repeated 4x in a row")
    assert collapse_reason(COLLAPSED["line x8 spread"]).startswith("line repeated 8x:")
    assert collapse_reason(COLLAPSED["ngram"]).startswith("12-gram repeated")
    assert collapse_reason("    y = x + 1\n" * 3, k=3).startswith("line repeated 3x")


def _tasks() -> list[Task]:
    return [Task("t/0", PROMPT, "f", "    return sum(xs)\n", "def check(c): pass", "lists",
                 extra={"style": "doctest"}),
            Task("t/1", PROMPT, "f", "    return sum(xs)\n", "def check(c): pass", "lists",
                 extra={"style": "prose"}),
            Task("t/2", PROMPT, "f", "    return sum(xs)\n", "def check(c): pass", "strings")]


def test_summarize_counts_rates_and_categories():
    good, bad = "    return sum(xs)\n", "    return return\n"
    passed = {"t/0": [True, False, True, True], "t/1": [False] * 4, "t/2": [False, True, False,
                                                                           False]}
    results = [{"task_id": tid, "completion": good if p else bad, "passed": p, "sample_index": i}
               for tid, flags in passed.items() for i, p in enumerate(flags)]
    s = summarize(results, _tasks())
    assert json.loads(json.dumps(s)) == s  # JSON-serialisable
    assert [k for k in s if k.startswith("pass@")] == ["pass@1", "pass@1_se", "pass@2",
                                                       "pass@2_se"]
    # the standard error over tasks of the per-task unbiased estimates (0.75, 0, 0.25)
    assert s["pass@1_se"] == pytest.approx(np.std([0.75, 0, 0.25]) / np.sqrt(3), abs=1e-4)
    assert s["pass@2_se"] == pytest.approx(np.std([1.0, 0, 0.5]) / np.sqrt(3), abs=1e-4)
    assert s["per_category"]["lists"]["pass@1_se"] == pytest.approx(0.375 / np.sqrt(2),
                                                                    abs=1e-4)
    assert s["pass@1"] == pytest.approx((3 / 4 + 0 + 1 / 4) / 3, abs=1e-4)
    assert s["pass@2"] == pytest.approx((1.0 + 0 + 0.5) / 3, abs=1e-4)
    assert s["syntax_valid"] == pytest.approx(4 / 12, abs=1e-4)
    assert s["collapse_rate"] == pytest.approx(8 / 12, abs=1e-4)
    assert s["n_tasks"] == 3 and s["n_samples"] == 12
    assert s["passed_tasks_first_sample"] == 1 and s["passed_tasks_any_sample"] == 2
    assert s["per_task"]["t/0"] == {"passed": 3, "n": 4, "errors": 0}
    assert s["per_category"]["lists"]["n_tasks"] == 2
    assert s["per_category"]["strings"]["pass@1"] == 0.25
    assert s["per_category"]["lists"]["pass@1"] == pytest.approx(0.375, abs=1e-4)
    assert s["per_style"]["doctest"]["pass@1"] == 0.75
    assert s["per_style"]["prose"]["pass@1"] == 0.0
    assert s["per_style"]["default"] == s["per_category"]["strings"]
    assert s["n_errors"] == 0 and s["errors"] == [] and s["n_tasks_without_samples"] == 0


def test_summarize_uses_precomputed_flags_and_explicit_ks():
    rows = [{"task_id": "t/0", "completion": "x", "passed": True, "syntax_ok": True,
             "collapse": None}]
    s = summarize(rows, {t.task_id: t for t in _tasks()}, ks=[1, 5])
    assert "pass@5" not in s  # k > n is dropped
    assert s["syntax_valid"] == 1.0 and s["collapse_rate"] == 0.0
    # every problem counts: two tasks without samples score 0
    assert s["pass@1"] == pytest.approx(1 / 3, abs=1e-4) and s["n_tasks"] == 3
    assert s["tasks_without_samples"] == ["t/1", "t/2"] and s["n_tasks_without_samples"] == 2
    assert s["per_category"]["strings"] == {**s["per_category"]["strings"], "n_tasks": 1,
                                            "pass@1": 0.0}
    assert default_ks(1) == [1] and default_ks(25) == [1, 2, 5, 10, 20]
    with pytest.raises(ValueError):
        summarize([], _tasks())


def test_metrics_does_not_import_torch():
    code = "import sys, codeling.evaluate.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_errors_stay_out_of_pass_at_k_and_are_listed():
    def row(tid, i, passed, error=False):
        res = "error: sandbox worker crashed (x)" if error else ("passed" if passed else "failed: a")
        return {"task_id": tid, "completion": "    return sum(xs)\n", "passed": passed,
                "result": res, "error": error, "sample_index": i}

    rows = [row("t/0", 0, True), row("t/0", 1, False, error=True), row("t/0", 2, False),
            row("t/1", 3, False, error=True),  # nothing judgeable: counts as 0
            row("t/2", 4, True), row("t/2", 5, True)]
    s = summarize(rows, _tasks())
    assert s["per_task"]["t/0"] == {"passed": 1, "n": 2, "errors": 1}
    assert s["pass@1"] == pytest.approx((1 / 2 + 0 + 1) / 3, abs=1e-4)
    # k goes up to the fewest judged samples of a task that has any (2), not to 1 for t/1
    assert s["pass@2"] == pytest.approx((1 + 0 + 1) / 3, abs=1e-4) and "pass@5" not in s
    assert s["n_errors"] == 2
    assert s["errors"] == [
        {"task_id": "t/0", "completion_id": 1, "reason": "sandbox worker crashed (x)"},
        {"task_id": "t/1", "completion_id": 3, "reason": "sandbox worker crashed (x)"}]
    assert s["tasks_without_samples"] == ["t/1"] and s["n_tasks_without_samples"] == 1
    assert s["passed_tasks_first_sample"] == 2  # t/0's first judged sample passed
    assert json.loads(json.dumps(s)) == s


def test_greedy_standard_error_is_binomial():
    """One greedy sample per task: pass@1's standard error is sqrt(p (1 - p) / n)."""
    tasks = [Task(f"t/{i}", PROMPT, "f", "    return sum(xs)\n", "def check(c): pass", "lists")
             for i in range(8)]
    rows = [{"task_id": t.task_id, "completion": "    return sum(xs)\n", "passed": i < 3}
            for i, t in enumerate(tasks)]
    s = summarize(rows, tasks)
    assert s["pass@1"] == 0.375
    assert s["pass@1_se"] == pytest.approx(binomial_se(3, 8), abs=1e-4)
    assert binomial_se(3, 8) == pytest.approx(math.sqrt(0.375 * 0.625 / 8))
    assert binomial_se(0, 8) == 0.0 and binomial_se(0, 0) == 0.0
