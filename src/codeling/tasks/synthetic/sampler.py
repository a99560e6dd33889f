"""Turn families into Tasks: pick a surface form, run the reference, choose test inputs.

Expected values in examples and tests come from executing the family's reference solution
(compiled once per family, solution style and constants), so they are right by construction.
Test inputs are chosen so that trivial wrong answers fail: at least two distinct outcomes
(a constant return fails) and, where it applies, an outcome that differs from the first
argument (returning the input unchanged fails), plus at least one edge case.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from codeling.tasks.schema import Task
from codeling.tasks.synthetic import render, styles
from codeling.tasks.synthetic.core import (
    CATEGORIES,
    FAMILIES,
    Family,
    FileArg,
    Obj,
    OutPath,
    literal_names,
)

EXPECTED_ERRORS = (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError,
                   FileNotFoundError)


class MemoryFiles(dict):
    """In-memory files for file-I/O references: real opens cost milliseconds each here, and the
    generator makes thousands. The tests run the same solutions on real files in the sandbox."""

    def open(self, path: str, mode: str = "r", *args: Any, **kwargs: Any) -> io.StringIO:
        if "r" in mode and "+" not in mode:
            if path not in self:
                raise FileNotFoundError(path)
            return io.StringIO(self[path])
        files, start = self, self.get(path, "") if "a" in mode else ""

        class Writer(io.StringIO):
            def close(self) -> None:
                if not self.closed:
                    files[path] = start + self.getvalue()
                super().close()

        return Writer()


FILES = MemoryFiles()


def compile_reference(fam: Family, sol_index: int, consts: dict) -> Callable:
    """The family's solution `sol_index` with these constants, as a Python function."""
    names = render.pick_names(fam, fam.sols[sol_index], consts, random.Random(0))
    src = (fam.setup + "\n" + render.signature(fam, names, "none") + "\n"
           + render.solution(fam.sols[sol_index], names))
    ns: dict[str, Any] = {"open": FILES.open}
    exec(compile(src, f"<synthetic {fam.name}>", "exec"), ns)
    fn = ns[names["fn"]]
    fn.namespace = ns
    return fn


@cache
def reference(fam_name: str, sol_index: int, consts: tuple) -> Callable:
    """compile_reference for a registered family, once per (family, style, constants)."""
    return compile_reference(FAMILIES[fam_name], sol_index, dict(consts))


def _materialize(v: Any, ns: dict) -> Any:
    """A fresh copy of an argument (the reference may mutate it), with files and objects real."""
    if isinstance(v, list):
        return [_materialize(x, ns) for x in v]
    if isinstance(v, dict):
        return {k: _materialize(x, ns) for k, x in v.items()}
    if isinstance(v, tuple):
        return tuple(_materialize(x, ns) for x in v)
    if isinstance(v, FileArg):
        FILES["in.txt"] = v.text
        return "in.txt"
    if isinstance(v, OutPath):
        FILES.pop(v.name, None)
        return v.name
    if isinstance(v, Obj):
        return ns[v.cls](*_materialize(v.args, ns))
    return v


def outcome(fam: Family, fn: Callable, args: tuple) -> tuple[str, Any] | None:
    """("value", v), ("raises", name) or ("file", text); None when the input is unusable."""
    real = _materialize(args, fn.namespace)
    try:
        value = fn(*real)
    except EXPECTED_ERRORS as e:
        return ("raises", type(e).__name__) if fam.raises else None
    except (RecursionError, OverflowError):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if fam.writes:
        path = next(a for a, orig in zip(real, args) if isinstance(orig, OutPath))
        return ("file", FILES[path]) if path in FILES else None
    return "value", value


def _key(res: tuple[str, Any]) -> str:
    return repr(res)


def choose_cases(fam: Family, fn: Callable, r: random.Random, consts: dict | None = None
                 ) -> tuple[list[tuple], list[tuple]]:
    """(test cases, spare typical cases for docstring examples); cases are (args, kind, v)."""
    pool, seen = [], set()
    for _ in range(6):
        args = fam.typical(r)
        res = outcome(fam, fn, args) if repr(args) not in seen else None
        seen.add(repr(args))
        if res is not None:
            pool.append((args, *res))
    edges = []
    candidates = fam.edge_cases(r, consts)
    keep_first = callable(fam.edges)  # a boundary input the family insists on
    head, tail = candidates[:keep_first], candidates[keep_first:]
    r.shuffle(tail)
    candidates = head + tail
    for args in candidates:
        res = outcome(fam, fn, args) if repr(args) not in seen else None
        seen.add(repr(args))
        if res is not None:
            edges.append((args, *res))
        if len(edges) >= 4:
            break
    # typical cases first, distinct outcomes before repeats (kills constant answers)
    target, chosen, outs = r.choice((2, 3, 3, 4)), [], set()
    for c in pool:
        if len(chosen) < target and _key(c[1:]) not in outs:
            chosen.append(c)
            outs.add(_key(c[1:]))
    chosen += [c for c in pool if c not in chosen][:max(0, target - len(chosen))]
    n_edge = r.choice((2, 2, 3))
    chosen += edges[:n_edge]
    rest = [c for c in pool + edges[n_edge:] if c not in chosen]
    for c in rest:
        if len(chosen) >= 3 and len({_key(x[1:]) for x in chosen}) >= 2 and not _identity(chosen):
            break
        if len(chosen) < 3 or _key(c[1:]) not in {_key(x[1:]) for x in chosen} or (
                _identity(chosen) and c[1] == "value" and c[2] != c[0][0]):
            chosen.append(c)
    if len({_key(x[1:]) for x in chosen}) < 2:
        _add_distinct(fam, fn, r, chosen, candidates, seen)
    spare = [c for c in pool if c not in chosen and c[1] == "value" and c[2] is not None
             and len(repr(c[0])) + len(repr(c[2])) < 70  # long examples make unreadable docs
             and "\\" not in repr(c[0]) + repr(c[2])]  # escapes would be interpreted in the docstring
    return chosen, spare


def _add_distinct(fam: Family, fn: Callable, r: random.Random, chosen: list[tuple],
                  candidates: list[tuple], seen: set[str]) -> None:
    """Every case gave the same outcome (a constant answer would pass): look further, through
    the unused edge inputs and then fresh typical ones, for an input with another outcome."""
    have = {_key(x[1:]) for x in chosen}
    for args in [a for a in candidates if repr(a) not in seen] + [fam.typical(r) for _ in range(40)]:
        if repr(args) in seen:
            continue
        seen.add(repr(args))
        res = outcome(fam, fn, args)
        if res is not None and _key(res) not in have:
            chosen.append((args, *res))
            return


def _identity(cases: list[tuple]) -> bool:
    """True when returning the first argument unchanged would pass every case."""
    return all(c[1] == "value" and c[0] and type(c[2]) is type(c[0][0]) and c[2] == c[0][0]
               for c in cases)


def examples_for(cases: list[tuple], spare: list[tuple], r: random.Random,
                 allowed: bool = True) -> list[tuple[tuple, Any]]:
    """1-3 (args, value) examples for the docstring: spare typical cases, else short test cases
    (HumanEval's own prompts show some of their tests)."""
    if not allowed:
        return []
    short = [c for c in spare or cases if c[1] == "value" and c[2] is not None
             and len(repr(c[0])) + len(repr(c[2])) < 70 and "\\" not in repr(c[0]) + repr(c[2])]
    return [(c[0], c[2]) for c in short[:r.choice((1, 1, 2, 2, 3))]]


def render_prompt(spec: styles.Spec, hints: str, r: random.Random, taken: set[str],
                  style: str | None = None, allowed: Sequence[str] = ()) -> tuple[str, str]:
    """(prompt, style) for a task's spec in a random style of `allowed` (empty: any), or the
    given one."""
    style = style or styles.choose_style(r, bool(spec.examples), allowed)
    if style in ("prose", "oneline"):
        spec.examples = []
    sig = render.signature_text(spec.fn, spec.params, spec.ret, hints)
    types = [spec.ret, *(t for _, t in spec.params)]
    text = styles.prompt(spec, style, sig, render.typing_line(types, hints), r, taken,
                         hint_types=hints != "none")
    return text, style


def make_task(fam: Family, r: random.Random, number: int,
              surface: styles.Surface = styles.ANY) -> Task:
    sol_index = r.randrange(len(fam.sols))
    consts = {k: g(r) for k, g in fam.consts.items()}
    fn = reference(fam.name, sol_index, tuple(sorted(consts.items())))
    return task_from(fam, sol_index, consts, fn, choose_cases(fam, fn, r, consts), r,
                     f"synthetic/{fam.name}/{number}", {"family": fam.name}, surface)


def task_from(fam: Family, sol_index: int, consts: dict, fn: Callable,
              cases_spare: tuple[list[tuple], list[tuple]], r: random.Random, task_id: str,
              extra: dict, surface: styles.Surface = styles.ANY) -> Task:
    """Render a task around a compiled reference and its chosen cases, phrased as `surface`
    allows (a prompt style of its styles; arguments called by their type in a share of
    descriptions)."""
    cases, spare = cases_spare
    names = render.pick_names(fam, fam.sols[sol_index], consts, r)
    novel = bool(surface.novel) and random.Random(f"{task_id}/novel").random() < surface.novel
    if novel:  # its own stream too: the same task as novel = 0 but for the argument names
        names = render.novel_arguments(fam, fam.sols[sol_index], names,
                                       random.Random(f"{task_id}/novel-names"))
    hints = r.choice(render.HINT_STYLES)
    template = r.choice(fam.docs)
    if fam.notes and r.random() < 0.5:
        template += " " + r.choice(fam.notes)
    doc_names = names
    if surface.indirect:
        # its own stream, seeded by the task id: the tasks drawn are those of indirect = 0
        rr = random.Random(f"{task_id}/indirect")
        if rr.random() < surface.indirect:
            doc_names = styles.indirect_names(fam.args, template, names, rr)
    indirect = doc_names != names
    desc = render.doc_substitute(template, doc_names, consts)
    if indirect:
        desc = styles.capitalize_sentences(desc)
    has_files = any(a.kind in ("file", "outpath") for a in fam.args)
    spec = styles.Spec(names["fn"], [(names[a.role], a.type) for a in fam.args], fam.ret, desc,
                       examples_for(cases, spare, r, not has_files), fam.setup)
    taken = set(names.values()) | literal_names(fam.sols[sol_index], fam.setup)
    prompt, style = render_prompt(spec, hints, r, taken, allowed=surface.styles)
    refs = ({"refs": "indirect"} if indirect else {}) | ({"names": "novel"} if novel else {})
    return Task(task_id=task_id, prompt=prompt, entry_point=names["fn"],
                canonical_solution=render.solution(fam.sols[sol_index], names),
                test=render.test_code(cases, r), category=fam.category, level=fam.level,
                source="synthetic", extra={**extra, "style": style, **refs})


def acceptable(cases: list[tuple]) -> bool:
    """The rules every task's tests meet: three or more cases, two or more distinct outcomes
    (a constant answer fails) and not all equal to the first argument (identity fails)."""
    return len(cases) >= 3 and len({_key(c[1:]) for c in cases}) >= 2 and not _identity(cases)


def select_families(levels: Sequence[int], categories: Sequence[str] | None,
                    families: Sequence[str] | None = None,
                    exclude_families: Sequence[str] = ()) -> list[Family]:
    if categories is not None:
        bad = [c for c in categories if c not in CATEGORIES]
        if bad:
            raise ValueError(f"unknown categor{'y' if len(bad) == 1 else 'ies'} "
                             f"{', '.join(map(repr, bad))}; valid: {', '.join(CATEGORIES)}")
    unknown = [f for f in [*(families or ()), *exclude_families] if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown synthetic famil{'y' if len(unknown) == 1 else 'ies'}: "
                         f"{', '.join(map(repr, unknown))}")
    keep = set(families) if families is not None else None
    return [f for f in FAMILIES.values() if f.level in levels
            and (categories is None or f.category in categories)
            and (keep is None or f.name in keep) and f.name not in set(exclude_families)]
