"""Decontamination catches copies of evaluation tasks, renamed or not, and spares honest ones."""

from __future__ import annotations

import re

import pytest

from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.decontam import Decontaminator
from codeling.tasks.schema import Task


@pytest.fixture(scope="module")
def deco():
    return Decontaminator({"humaneval": load_benchmark("humaneval"),
                           "mini": load_benchmark("mini")})


def renamed(task: Task, new: str) -> Task:
    sub = (lambda s: re.sub(rf"\b{task.entry_point}\b", new, s))
    return Task(f"train/{new}", sub(task.prompt), new, sub(task.canonical_solution),
                sub(task.test), "lists", 2, "teacher")


@pytest.mark.parametrize("idx", [0, 12, 31, 88, 150])
def test_renamed_humaneval_copy_is_caught(deco, idx):
    he = load_benchmark("humaneval")[idx]
    hit = deco.check(renamed(he, "my_renamed_function"))
    assert hit is not None and hit.eval_task_id == he.task_id and hit.eval_set == "humaneval"


def test_same_name_and_docstring_is_caught_even_with_new_code(deco):
    he = load_benchmark("humaneval")[2]  # truncate_number
    t = Task("train/x", he.prompt, he.entry_point, "    return number - int(number)\n",
             "def check(c):\n    pass\n", "arithmetic", 1, "teacher")
    hit = deco.check(t)
    assert hit is not None and hit.eval_task_id == he.task_id


def test_docstring_only_match_is_caught(deco):
    he = load_benchmark("humaneval")[2]
    doc = re.search(r'"""(.*?)"""', he.prompt, re.S).group(1)
    prompt = f"def {he.entry_point}(x):\n    \"\"\"{doc}\"\"\"\n"
    t = Task("train/y", prompt, he.entry_point, "    y = x % 1\n    return y\n", "", "a", 1, "t")
    hit = deco.check(t)
    assert hit is not None and hit.check in ("docstring", "ngram")


def test_independent_task_of_the_same_kind_is_kept(deco):
    prompt = ('def prime_check(value: int) -> bool:\n'
              '    """Tell whether value has exactly two distinct positive divisors.\n\n'
              '    >>> prime_check(7)\n    True\n    """\n')
    sol = ("    if value < 2:\n        return False\n    d = 2\n    while d * d <= value:\n"
           "        if value % d == 0:\n            return False\n        d += 1\n"
           "    return True\n")
    assert deco.check(Task("syn/1", prompt, "prime_check", sol, "", "arithmetic", 1, "s")) is None


def test_split_reports_hits(deco):
    he = load_benchmark("humaneval")[5]
    good = Task("syn/2", "def twice(n):\n    \"\"\"Double it.\"\"\"\n", "twice",
                "    return 2 * n\n", "", "arithmetic", 1, "s")
    clean, hits = deco.split([good, renamed(he, "zzz")])
    assert [t.task_id for t in clean] == ["syn/2"]
    assert hits[0].to_dict()["eval_task_id"] == he.task_id
