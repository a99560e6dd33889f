"""Reading plan records (docs/formats.md) (and the task format) into Tasks; MBPP prompt styles."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.io import DataError
from codeling.tasks.benchmarks import locate, mbpp_records
from codeling.tasks.mbpp import STYLES, mbpp_to_task, pick_style
from codeling.tasks.records import read_task_records
from codeling.tasks.schema import Task

SOLUTION = "import math\n\n\ndef hyp(a, b):\n    return math.sqrt(a * a + b * b)\n"
RECORDS = [
    {"id": "p1", "prompt": "Return the length of the hypotenuse of a right triangle.",
     "solution": SOLUTION, "tests": ["assert hyp(3, 4) == 5.0", "assert hyp(5, 12) == 13.0"]},
    {"id": "p2", "prompt": "Count the vowels in a string.",
     "solution": "def vowels(s):\n    return sum(c in 'aeiou' for c in s)\n",
     "test": "def check(candidate):\n    assert candidate('banana') == 3\n"
             "    assert candidate('') == 0\n"},
    {"id": "p3", "prompt": "def twice(x):\n    \"\"\"Double x.\"\"\"\n",
     "solution": "def twice(x):\n    return 2 * x\n", "test_list": ["assert twice(4) == 8"]},
    {"id": "p4", "prompt": "def halve(x):\n    \"\"\"Half of x, rounded down.\"\"\"\n",
     "solution": "    return x // 2\n", "test": ["assert halve(9) == 4", "assert halve(0) == 0"]},
]


def _write(tmp_path, rows) -> str:
    path = tmp_path / "plan.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_plan_records_become_tasks_that_pass(tmp_path):
    task = Task("t/1", "def inc(x):\n", "inc", "    return x + 1\n",
                "def check(candidate):\n    assert candidate(1) == 2\n")
    tasks = read_task_records(_write(tmp_path, [*RECORDS, task.to_dict()]))
    assert [t.task_id for t in tasks] == ["p1", "p2", "p3", "p4", "t/1"]
    hyp, vowels, twice, halve = tasks[:4]
    # an instruction prompt becomes the docstring of the solution's signature
    fn = next(n for n in ast.parse(hyp.prompt + hyp.canonical_solution).body
              if isinstance(n, ast.FunctionDef))
    assert fn.name == hyp.entry_point == "hyp" and "hypotenuse" in ast.get_docstring(fn)
    assert hyp.prompt.startswith("import math") and "def hyp(a, b):" in hyp.prompt
    assert vowels.entry_point == "vowels" and "Count the vowels" in vowels.prompt
    assert vowels.test.startswith("def check(candidate):")
    assert twice.prompt.startswith("def twice(x):") and twice.canonical_solution.strip() == "return 2 * x"
    assert halve.canonical_solution == "    return x // 2\n"
    with Sandbox(Limits(timeout=10)) as sb:
        results = sb.run_all([t.program(t.canonical_solution) for t in tasks])
        wrong = sb.run_all([t.program("    return None\n") for t in tasks])
    assert [r.status for r in results] == ["passed"] * 5
    assert not any(r.passed for r in wrong)


def test_a_record_without_tests_is_refused_naming_file_and_line(tmp_path):
    path = _write(tmp_path, [RECORDS[0], {"id": "x", "prompt": "Add one.",
                                          "solution": "def f(x):\n    return x + 1\n"}])
    with pytest.raises(DataError, match=r"plan\.jsonl:2: field 'tests': record has no tests"):
        read_task_records(path)


def test_bad_records_name_the_line(tmp_path):
    bad = {**RECORDS[0], "solution": "def other(a, b):\n    return a\n"}
    with pytest.raises(DataError, match=r"plan\.jsonl:1: .*no function defined"):
        read_task_records(_write(tmp_path, [bad]))
    with pytest.raises(DataError, match=r"plan\.jsonl:2: .*duplicate id 'p1'"):
        read_task_records(_write(tmp_path, [RECORDS[0], RECORDS[0]]))
    with pytest.raises(DataError, match=r"plan\.jsonl:1: neither a task"):
        read_task_records(_write(tmp_path, [{"question": "?"}]))


def test_mbpp_prompt_styles_keep_the_tests():
    try:
        locate("mbpp", download=False)
    except DataError as e:  # only a missing file skips; a bad file or a bug fails below
        if not Path(e.path).exists():
            pytest.skip(f"MBPP not available offline: {e}")
        raise
    records = mbpp_records("train")[:30]
    tasks = [mbpp_to_task(r, style=s) for r in records for s in STYLES]
    for r in records:
        group = [t for t in tasks if t.task_id == f"mbpp/{r['task_id']}"]
        assert len({t.test for t in group}) == 1 and len({t.prompt for t in group}) == len(STYLES)
        assert [t.extra.get("style", "default") for t in group] == list(STYLES)
    comment = [t for t in tasks if t.extra.get("style") == "comment"]
    assert all(t.prompt.splitlines()[-2].startswith("#") and '"""' not in t.prompt
               for t in comment)
    assert all("assert " in t.prompt for t in tasks if t.extra.get("style") == "mbpp")
    with Sandbox(Limits(timeout=10)) as sb:
        results = sb.run_all([t.program(t.canonical_solution) for t in tasks])
    assert [t.task_id for t, res in zip(tasks, results) if not res.passed] == []
    assert len({pick_style(f"mbpp/{i}") for i in range(60)}) == len(STYLES)
