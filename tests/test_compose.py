"""Composed tasks: every idiom agrees, canonical solutions pass in the sandbox, trivial answers
fail, and generate_tasks mixes them at the configured share."""

from __future__ import annotations

import ast
import random
import re
from collections import Counter

import pytest

from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.tasks.synthetic import FAMILIES, compose, generate_tasks
from codeling.tasks.synthetic.core import WORDS, Family
from codeling.tasks.synthetic.sampler import compile_reference, outcome


@pytest.fixture(scope="module")
def composed():
    return compose.composed_tasks(300, random.Random(5))


def test_every_idiom_of_a_composition_agrees():
    r = random.Random(1)
    for _ in range(400):
        pipeline = r.choice(list(compose.PIPELINES.values()))
        spec = pipeline(r)
        fam = Family("x", spec["category"], 1, spec["names"], spec["args"], spec["ret"],
                     [spec["desc"]], [s.strip("\n") for s in spec["sols"]], gen=spec["gen"],
                     edges=spec["edges"])
        inputs = [fam.typical(r) for _ in range(10)] + fam.edge_cases(r)
        outs = [[repr(outcome(fam, compile_reference(fam, i, {}), a)) for a in inputs]
                for i in range(len(fam.sols))]
        assert all(o == outs[0] for o in outs[1:]), (spec["steps"], fam.sols)


def _body_program(task, body: str) -> str:
    tree = ast.parse(task.prompt + task.canonical_solution)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == task.entry_point)
    doc = [fn.body[0]] if ast.get_docstring(fn) is not None else []
    fn.body = [*doc, *ast.parse(body).body]
    return ast.unparse(tree) + "\n\n" + task.test + f"\ncheck({task.entry_point})\n"


def test_canonical_passes_and_trivial_answers_fail(composed):
    programs, labels = [], []
    for t in composed[:150]:
        first = ast.parse(t.prompt + t.canonical_solution)
        fn = next(n for n in first.body if isinstance(n, ast.FunctionDef)
                  and n.name == t.entry_point)
        programs.append(t.program(t.canonical_solution))
        labels.append((t.task_id, "canonical"))
        for kind, body in {"none": "return None", "identity": f"return {fn.args.args[0].arg}",
                           "zero": "return 0", "empty": "return []", "blank": "return ''"}.items():
            programs.append(_body_program(t, body))
            labels.append((t.task_id, kind))
    with Sandbox(Limits(timeout=10)) as sb:
        results = sb.run_all(programs)
    assert [lab for lab, res in zip(labels, results) if lab[1] == "canonical" and not res.passed] == []
    assert [lab for lab, res in zip(labels, results) if lab[1] != "canonical" and res.passed] == []


def test_shape_levels_and_inputs(composed):
    for t in composed:
        steps = t.extra["family"].removeprefix("composed:").split("+")
        assert t.extra["composed"] is True and t.task_id.startswith("synthetic/composed/")
        assert 2 <= len(steps) <= 4 and t.level == max(1, min(3, len(steps) - 1))
        assert t.test.count("assert ") >= 3
    assert {t.level for t in composed} == {1, 2, 3}
    assert set(compose.PIPELINES) == {t.category for t in composed}
    tests = " ".join(t.test for t in composed)
    ints = [int(x) for x in re.findall(r"-?\d+", tests)]
    assert max(map(abs, ints)) > 1000  # wider than the families' small ints
    words = set(re.findall(r"'([a-z]{3,})'", tests))
    assert len(words - set(WORDS)) > 100  # and not the families' word list
    # several phrasings and idioms: the texts and solutions of one composition differ
    by_family: dict[str, set[str]] = {}
    for t in composed:
        by_family.setdefault(t.extra["family"], set()).add(t.canonical_solution)
    assert len(by_family) > 100


def test_generate_tasks_mixes_composed_at_the_ratio():
    tasks = generate_tasks(500, seed=3, composed_ratio=0.4)
    share = sum(t.extra.get("composed", False) for t in tasks) / len(tasks)
    assert share == pytest.approx(0.4, abs=0.01)
    assert sum(t.extra.get("composed", False) for t in tasks[:100]) == 40  # spread, not a block
    assert len({t.task_id for t in tasks}) == 500
    assert Counter(t.extra["style"] for t in tasks if t.extra.get("composed")).keys() >= {
        "doctest", "comment", "mbpp", "prose"}
    none = generate_tasks(50, seed=3)
    assert not any(t.extra.get("composed") for t in none)


def test_family_filters():
    held = sorted(FAMILIES)[:5]
    only = generate_tasks(40, seed=1, families=held)
    assert {t.extra["family"] for t in only} <= set(held)
    rest = generate_tasks(400, seed=1, exclude_families=held, composed_ratio=0.2)
    assert not {t.extra["family"] for t in rest} & set(held)
    with pytest.raises(ValueError, match="unknown synthetic famil"):
        generate_tasks(5, families=["no_such_family"])
    strings = generate_tasks(60, seed=2, categories=["strings"], levels=(2, 3),
                             composed_ratio=0.5)
    assert {t.category for t in strings} == {"strings"} and {t.level for t in strings} <= {2, 3}
