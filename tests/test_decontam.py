"""Decontamination catches copies of evaluation tasks, renamed, reworded or rewritten, and spares
honest ones: n-gram/docstring overlap (Decontaminator) and behaviour (twins.py, in the sandbox)."""

from __future__ import annotations

import re

import pytest

from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.decontam import Decontaminator
from codeling.tasks.schema import Task
from codeling.tasks.twins import TwinChecker, find_twins, required_positional, shape_key


@pytest.fixture(scope="module")
def deco():
    return Decontaminator({"humaneval": load_benchmark("humaneval"),
                           "mini": load_benchmark("mini")})


@pytest.fixture(scope="module")
def mini_twins():
    """Calibrated once for the module (the real sandbox, the real mini set)."""
    return TwinChecker({"mini": load_benchmark("mini")})


def renamed(task: Task, new: str) -> Task:
    sub = (lambda s: re.sub(rf"\b{task.entry_point}\b", new, s))
    return Task(f"train/{new}", sub(task.prompt), new, sub(task.canonical_solution),
                sub(task.test), "lists", 2, "teacher")


def task(tid: str, prompt: str, solution: str) -> Task:
    entry = re.search(r"def (\w+)", prompt).group(1)
    return Task(tid, prompt, entry, solution, "", "arithmetic", 1, "synthetic")


# a renamed, reworded and rewritten copy of mini/9 (is_prime): no n-gram or docstring overlap
PRIME_PROMPT = ('def prime_check(value: int) -> bool:\n'
                '    """Tell whether value has exactly two distinct positive divisors.\n\n'
                '    >>> prime_check(7)\n    True\n    """\n')
PRIME_SOLUTION = ("    if value < 2:\n        return False\n    d = 2\n    while d * d <= value:\n"
                  "        if value % d == 0:\n            return False\n        d += 1\n"
                  "    return True\n")
REWORDED_PRIME = ('def has_no_factors(k):\n    """Say if k > 1 and no whole number from 2 up to '
                  'its square root divides it."""\n')
REWORDED_SOLUTION = "    return k > 1 and all(k % j for j in range(2, int(k ** 0.5) + 1))\n"
# the same kind of task, but 1 counts as prime: mini/9's tests reject it
WRONG_SOLUTION = "    return k >= 1 and all(k % j for j in range(2, int(k ** 0.5) + 1))\n"


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


def test_renamed_copy_of_a_mini_solution_is_a_behavioural_twin(deco, mini_twins):
    """The n-gram check sees a renamed copy of mini/9's solution as clean; its behaviour is
    mini/9's, so the twin check catches it."""
    t = task("syn/1", PRIME_PROMPT, PRIME_SOLUTION)
    assert deco.check(t) is None  # what lexical checks cannot see
    assert mini_twins.pairs([t]).pairs == {"syn/1": [("mini", "mini/9")]}


def test_reworded_copy_is_caught_and_a_wrong_one_of_the_same_kind_kept(deco, mini_twins):
    twin = task("syn/2", REWORDED_PRIME, REWORDED_SOLUTION)
    wrong = task("syn/3", REWORDED_PRIME, WRONG_SOLUTION)
    assert deco.check(twin) is None and deco.check(wrong) is None
    assert mini_twins.reasons([twin, wrong]) == ["behavioural twin of mini/9", None]


def test_humaneval_twin_is_caught():
    he = load_benchmark("humaneval")
    strlen = task("syn/4", 'def count_symbols(word):\n    """How many characters word holds."""\n',
                  "    n = 0\n    for _ in word:\n        n += 1\n    return n\n")
    off_by_one = task("syn/5", strlen.prompt, "    return len(word) + 1\n")
    twins = find_twins([strlen, off_by_one], {"humaneval": he})
    assert twins == {"syn/4": ("humaneval", "HumanEval/23")}


def test_candidates_that_break_the_harness_hide_no_twin(mini_twins):
    """sys.exit, os._exit, an alarm-swallowing loop, closing stdout through open(1), a print
    flood: each is no twin, and the real twins among them are all still found."""
    def one(name: str, body: str) -> Task:
        return task(f"bad/{name}", f"def {name}(n):\n", body)

    bad = [one("exits", "    import sys\n    sys.exit(0)\n"),
           one("hard_exit", "    import os\n    os._exit(0)\n"),
           one("swallows", "    while True:\n        try:\n            while True:\n"
                           "                pass\n        except BaseException:\n"
                           "            pass\n"),
           one("closes_stdout", "    with open(1, 'w') as f:\n        f.write('x')\n"
                                "    return n\n"),
           one("floods", "    print('passed ' * 10000)\n    return n + 1\n")]
    good = [task("syn/6", PRIME_PROMPT, PRIME_SOLUTION), task("syn/7", REWORDED_PRIME,
                                                                REWORDED_SOLUTION)]
    rep = mini_twins.pairs([bad[0], good[0], *bad[1:], good[1]])
    assert rep.pairs == {"syn/6": [("mini", "mini/9")], "syn/7": [("mini", "mini/9")]}
    assert rep.broken == {"bad/hard_exit", "bad/swallows"}
    assert rep.unjudgeable == {} and rep.unresolved == 0


def test_arity_and_shape_helpers():
    assert required_positional("def f(a, b=1, *c, d=2):\n    pass\n", "f") == 1
    assert required_positional("def f(a, *, key):\n    pass\n", "f") is None
    assert required_positional("def g(a):\n    pass\n", "f") is None
    one = shape_key("def f(xs):\n    '''Doc.'''\n    return [x for x in xs]\n", "f")
    two = shape_key("def g(items):\n    return [v for v in items]\n", "g")
    other = shape_key("def g(items):\n    return [v + 1 for v in items]\n", "g")
    assert one == two != other


def test_split_reports_hits(deco):
    he = load_benchmark("humaneval")[5]
    good = Task("syn/2", "def twice(n):\n    \"\"\"Double it.\"\"\"\n", "twice",
                "    return 2 * n\n", "", "arithmetic", 1, "s")
    clean, hits = deco.split([good, renamed(he, "zzz")])
    assert [t.task_id for t in clean] == ["syn/2"]
    assert hits[0].to_dict()["eval_task_id"] == he.task_id
