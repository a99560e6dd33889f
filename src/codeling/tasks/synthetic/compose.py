"""Composed tasks: 2-4 primitive steps chained into one function.

Families are single skills (a median 3-line solution). Here a task is built from parts, each
with several phrasings and code in several idioms (loop, comprehension, built-ins):
- lists: [guard] filter -> map -> aggregate (sum, count, max, list, sorted, distinct, first...);
- strings: split -> filter parts -> transform parts -> join / count / longest;
- dicts: [normalise] -> build counts -> query (most common, repeated, unique);
- scans with state over a filtered or mapped list: running max, longest run, records,
  first index where a running sum reaches a bound (early exit);
- grids: nested loops over cells or rows, then aggregate.
A composed task is an unregistered Family; tests come from running its reference through
sampler.choose_cases and must pass sampler.acceptable, like every family task. The level is
the number of steps minus one, clamped to 1..3.
The steps' phrasings and code are the tables of compose_steps.py; this module assembles them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from codeling.tasks.schema import Task
from codeling.tasks.synthetic import sampler, styles
from codeling.tasks.synthetic.compose_steps import (
    AGGS,
    BUILDS,
    FILTER_PHRASES,
    FINALS,
    MAPS,
    PART_FILTERS,
    PREDS,
    QUERIES,
    SCANS,
    TRANSFORMS,
)
from codeling.tasks.synthetic.core import Arg, Family

RANGES = ((-9, 9), (-60, 60), (-1000, 1000), (0, 100_000), (-10**6, 10**6))
_C, _V = "bcdfghklmnprstvwz", "aeiou"


def _ints(r: random.Random) -> list[int]:
    lo, hi = r.choice(RANGES)
    n = r.randint(1, 12)
    if r.random() < 0.3:  # duplicates and ties
        pool = [r.randint(lo, hi) for _ in range(r.randint(1, 3))]
        return [r.choice(pool) for _ in range(n)]
    return [r.randint(lo, hi) for _ in range(n)]


def _word(r: random.Random) -> str:
    w = "".join(r.choice(_C) + r.choice(_V) + (r.choice(_C) if r.random() < 0.3 else "")
                for _ in range(r.randint(1, 3)))
    form = r.random()
    return w.capitalize() if form < 0.2 else w.upper() if form < 0.25 else w


def _k(r: random.Random) -> int:
    return r.choice((0, 1, 3, 5, 10, 25, 100, -5))


def _sentence(parts: list[str], r: random.Random) -> str:
    """The steps' phrases as one description, in one of three shapes."""
    form = r.randrange(3)
    if form == 0:
        text = ", ".join(parts[:-1]) + r.choice((", and then ", ", then ", " and ")) + parts[-1]
        return text[0].upper() + text[1:] + "."
    if form == 1:
        mid = "".join(f" Then {p}." for p in parts[1:-1])
        return f"First, {parts[0]}.{mid} Finally, {parts[-1]}."
    return "Steps: " + "; ".join(f"({i}) {p}" for i, p in enumerate(parts, 1)) + "."


# --- lists: filter -> map -> aggregate -------------------------------------------------
def _indent(block: str, n: int = 1) -> str:
    return "\n".join("    " * n + ln if ln else ln for ln in block.split("\n"))


def _list_pipeline(r: random.Random) -> dict:
    agg = r.choice(list(AGGS))
    phrases, ret, init, update, final, over_vals, over_gen = AGGS[agg]
    use_filter = agg == "count" or r.random() < 0.75
    use_map = agg != "count" and (not use_filter or r.random() < 0.6)
    consts = {"k": _k(r), "d": r.randint(2, 7), "a": r.choice((2, 10, 100)), "m": r.randint(2, 9)}
    cond, adj = r.choice(PREDS) if use_filter else ("True", "")
    expr, verb = r.choice(MAPS) if use_map else ("$v", "")
    cond, adj, expr, verb = (x.format(**consts, obj="{obj}") for x in (cond, adj, expr, verb))
    steps, parts = [], []
    if use_filter:
        steps.append(f"filter_{adj.split()[0]}")
        parts.append(r.choice(FILTER_PHRASES).format(adj=adj))
    if use_map:
        steps.append("map_" + verb.split()[0].replace("-", "_"))
        parts.append(verb.format(obj="each of them" if use_filter else
                                 r.choice(("each number in $nums", "every element of $nums"))))
    steps.append(agg)
    parts.append(r.choice(phrases))
    gen = f"{expr} for $v in $nums" + (f" if {cond}" if use_filter else "")
    # the loop: keep X a plain name when the update reads it twice
    x = "$val" if use_map and update.count("X") > 1 else expr
    inner = (f"$val = {expr}\n" if x == "$val" else "") + update.replace("X", x)
    loop_body = f"if {cond}:\n{_indent(inner)}" if use_filter else inner
    loop = (f"{init}\n" if init else "") + f"for $v in $nums:\n{_indent(loop_body)}\nreturn {final}"
    sols = [loop, f"$vals = [{gen}]\nreturn {over_vals}", f"return {over_gen.replace('GEN', gen)}"]
    guard = ""
    if r.random() < 0.3:
        n_min, value = r.randint(2, 4), [] if ret.startswith("List") else -1
        guard = f"if len($nums) < {n_min}:\n    return {value!r}\n"
        steps.insert(0, "guard_len")
        note = r.choice((f"If $nums has fewer than {n_min} elements, return {value!r} right away.",
                         f"When $nums holds fewer than {n_min} values the answer is {value!r}."))
    desc = _sentence(parts, r)
    if guard:
        desc = f"{note} {desc}" if r.random() < 0.5 else f"{desc} {note}"
    k = consts["k"]
    edges = [([],), ([0],), ([-7],), ([k - 1, k, k + 1],), ([4, 4, 4],), ([5, -5, 5, -5],),
             ([-3, -8, -1],), ([k],)]
    return dict(steps=steps, category="lists", args=[Arg("nums", "List[int]", "ints")],
                ret=ret,
                desc=desc, sols=[guard + s for s in sols], gen=lambda r: (_ints(r),), edges=edges,
                names=[f"{agg}_{steps[0]}", f"{steps[-2]}_then_{agg}", f"{agg}_of_{steps[0]}"])


# --- strings: split -> filter parts -> transform parts -> join ---------------------------
def _string_pipeline(r: random.Random) -> dict:
    sep = r.choice((" ", ",", ";", "-", "|", "/"))
    sep2 = r.choice((" ", "-", "_", ", ", "", "+"))
    consts = {"k": r.randint(1, 5), "c": r.choice("aeiou"), "sep2": sep2}
    final = r.choice(list(FINALS))
    use_filter = final == "count" or r.random() < 0.7
    use_map = final != "count" and (not use_filter or r.random() < 0.6)
    cond, rel, tag = ((x.format(**consts) for x in r.choice(PART_FILTERS)) if use_filter
                      else ("True", "", ""))
    expr, verb = r.choice(TRANSFORMS) if use_map else ("$w", "")
    expr, verb = expr.format(**consts), verb.format(**consts, obj="{obj}")
    split = "$s.split()" if sep == " " else f"$s.split({sep!r})"
    steps = ["split"]
    parts = ["split $s into words on whitespace" if sep == " " else
             r.choice((f"split $s at every {sep!r}", f"break $s into pieces separated by {sep!r}"))]
    if use_filter:
        steps.append(f"filter_{tag}")
        parts.append(r.choice(("keep only the pieces {rel}", "keep the pieces {rel}",
                               "throw away all but the pieces {rel}")).format(rel=rel))
    if use_map:
        steps.append("map_" + verb.split()[0])
        parts.append(verb.format(obj=r.choice(("each of them", "each piece"))))
    steps.append(final)
    phrase, ret, fexpr = FINALS[final]
    parts.append(phrase.format(**consts))
    gen = f"{expr} for $w in {split}" + (f" if {cond}" if use_filter else "")
    inner = f"$res.append({expr})"
    body = f"if {cond}:\n    {inner}" if use_filter else inner
    loop = (f"$parts = {split}\n$res = []\nfor $w in $parts:\n{_indent(body)}\n"
            f"return {fexpr.format(**consts).replace('L', '$res')}")
    comp = f"$vals = [{gen}]\nreturn {fexpr.format(**consts).replace('L', '$vals')}"
    lam = f"map(lambda $w: {expr}, " + (f"filter(lambda $w: {cond}, {split}))" if use_filter
                                        else f"{split})")
    builtin = f"$vals = list({lam})\nreturn {fexpr.format(**consts).replace('L', '$vals')}"
    edges = [("",), (sep,), (sep.join(["a", "", "Bb"]),), ("abc",), (sep.join(["x"] * 3),)]

    def gen_s(r: random.Random) -> tuple:
        words = [_word(r) if r.random() > 0.1 else "" for _ in range(r.randint(1, 7))]
        if sep == " ":
            words = [w for w in words if w]
        return (sep.join(words),)
    return dict(steps=steps, category="strings", args=[Arg("s", "str", "text")], ret=ret,
                desc=_sentence(parts, r), sols=[loop, comp, builtin], gen=gen_s, edges=edges,
                names=[f"{final}_{steps[1]}", f"split_and_{final}", f"{steps[-2]}_{final}"])


# --- dicts: build counts -> query ---------------------------------------------------------
def _dict_pipeline(r: random.Random) -> dict:
    query = r.choice(list(QUERIES))
    phrase, ret, loop_q, expr_q = QUERIES[query]
    lower = r.random() < 0.4
    steps = (["lower"] if lower else []) + ["count", query]
    parts = (["lower-case every word of $words"] if lower else []) + [
        r.choice(("count how often each word occurs", "build a dictionary from each word to its "
                  "number of occurrences", "tally the words in a dict"))
        + ("" if lower else " in $words"), phrase]
    pre = "$parts = [$w.lower() for $w in $words]\n" if lower else ""
    words = "$parts" if lower else "$words"
    build = [b.replace("WORDS", words) for b in r.sample(BUILDS, 3)]
    sols = [pre + build[0] + "\n" + loop_q, pre + build[1] + "\n" + expr_q,
            pre + build[2] + "\n" + r.choice((loop_q, expr_q))]

    def gen_w(r: random.Random) -> tuple:
        vocab = [_word(r) for _ in range(r.randint(1, 5))]
        if lower:
            vocab += [w.upper() for w in vocab[:2]]
        return ([r.choice(vocab) for _ in range(r.randint(1, 9))],)
    edges = [([],), (["a"],), (["a", "b"],), (["x", "X", "x"],), (["b", "a", "a", "b"],)]
    return dict(steps=steps, category="data_structures", args=[Arg("words", "List[str]", "words")],
                ret=ret, desc=_sentence(parts, r), sols=sols, gen=gen_w, edges=edges,
                names=[f"{query}_words", f"word_{query}", f"count_then_{query}"])


# --- scans with state ---------------------------------------------------------------------
def _scan_pipeline(r: random.Random) -> dict:
    scan = r.choice(list(SCANS))
    phrase, ret, *sols = SCANS[scan]
    k = r.choice((0, 5, 20, 100, 1000))
    steps, parts = [], []
    cond, adj = r.choice(PREDS)
    consts = {"k": _k(r), "d": r.randint(2, 7), "a": r.choice((2, 10, 100)), "m": r.randint(2, 9)}
    cond, adj = cond.format(**consts), adj.format(**consts)
    if r.random() < 0.5:
        steps.append(f"filter_{adj.split()[0]}")
        parts.append(r.choice(FILTER_PHRASES).format(adj=adj))
        pre = f"$vals = [$v for $v in $nums if {cond}]\n"
    else:
        expr, verb = (x.format(**consts, obj="{obj}") for x in r.choice(MAPS))
        steps.append("map_" + verb.split()[0].replace("-", "_"))
        parts.append(verb.format(obj="each number in $nums"))
        pre = f"$vals = [{expr} for $v in $nums]\n"
    steps.append(scan)
    parts.append(phrase.format(k=k) if len(parts) == 0 else
                 phrase.format(k=k).replace("return the", "of the results, return the", 1))
    sols = [pre + s.replace("SEQ", "$vals").format(k=k) for s in sols]
    edges = [([],), ([3],), ([2, 2, 2],), ([1, 2, 3],), ([3, 2, 1],), ([-5, 5, -5, 5],), ([k],)]
    return dict(steps=steps, category="loops", args=[Arg("nums", "List[int]", "ints")], ret=ret,
                desc=_sentence(parts, r), sols=sols, gen=lambda r: (_ints(r),), edges=edges,
                names=[f"{scan}_of_{steps[0]}", f"{steps[0]}_{scan}", scan + "_after"])


# --- grids: nested loops ------------------------------------------------------------------
def _grid_pipeline(r: random.Random) -> dict:
    consts = {"k": _k(r), "d": r.randint(2, 7), "a": r.choice((2, 10, 100)), "m": r.randint(2, 9)}
    cond, adj = (x.format(**consts) for x in r.choice(PREDS))
    kind = r.choice(("count", "sum", "positions", "best_row"))
    cell = r.choice(("cells", "entries", "numbers"))
    if kind == "best_row":
        steps = ["row_sums", "argmax"]
        parts = ["add up each row of $matrix", "return the index of the row with the largest "
                 "sum (the first on ties, -1 if there are no rows)"]
        ret = "int"
        sols = ["$best = -1\nfor $i, $row in enumerate($matrix):\n"
                "    if $best == -1 or sum($row) > sum($matrix[$best]):\n        $best = $i\nreturn $best",
                "$vals = [sum($row) for $row in $matrix]\nreturn $vals.index(max($vals)) if $vals else -1",
                "return max(range(len($matrix)), key=lambda $i: sum($matrix[$i]), default=-1)"]
    else:
        steps = ["cells", f"filter_{adj.split()[0]}", kind]
        parts = [f"look at every {cell[:-1]} of $matrix, row by row",
                 f"keep the {cell} that are {adj}",
                 {"count": "return how many there are", "sum": "return their sum",
                  "positions": "return their (row, column) positions as a list of tuples"}[kind]]
        ret = {"count": "int", "sum": "int", "positions": "List[Tuple[int, int]]"}[kind]
        if kind == "positions":
            sols = ["$res = []\nfor $i, $row in enumerate($matrix):\n    for $j, $v in enumerate($row):\n"
                    f"        if {cond}:\n            $res.append(($i, $j))\nreturn $res",
                    f"return [($i, $j) for $i, $row in enumerate($matrix) for $j, $v in enumerate($row) if {cond}]",
                    "$res = []\nfor $i in range(len($matrix)):\n    for $j in range(len($matrix[$i])):\n"
                    f"        $v = $matrix[$i][$j]\n        if {cond}:\n            $res.append(($i, $j))\nreturn $res"]
        else:
            upd = "$acc += 1" if kind == "count" else "$acc += $v"
            item = "1" if kind == "count" else "$v"
            sols = [f"$acc = 0\nfor $row in $matrix:\n    for $v in $row:\n        if {cond}:\n            {upd}\nreturn $acc",
                    f"return sum({item} for $row in $matrix for $v in $row if {cond})",
                    f"return sum(sum({item} for $v in $row if {cond}) for $row in $matrix)"]

    def gen_m(r: random.Random) -> tuple:
        lo, hi = r.choice(RANGES[:3])
        cols = r.randint(1, 5)
        return ([[r.randint(lo, hi) for _ in range(cols)] for _ in range(r.randint(1, 5))],)
    edges = [([],), ([[]],), ([[0]],), ([[-1, -2], [-3, -4]],), ([[5, 5], [5, 5]],), ([[1], [7], [1]],)]
    return dict(steps=steps, category="algorithms", args=[Arg("matrix", "List[List[int]]", "matrix")],
                ret=ret, desc=_sentence(parts, r), sols=sols, gen=gen_m, edges=edges,
                names=[f"grid_{kind}", f"{kind}_in_grid", f"{kind}_{steps[1]}"])


PIPELINES: dict[str, Callable[[random.Random], dict]] = {
    "lists": _list_pipeline, "strings": _string_pipeline, "data_structures": _dict_pipeline,
    "loops": _scan_pipeline, "algorithms": _grid_pipeline}


def composed_task(r: random.Random, number: int, pipeline: Callable[[random.Random], dict],
                  surface: styles.Surface = styles.ANY) -> Task | None:
    """One composed task, or None when its tests could not be made to meet the rules."""
    spec = pipeline(r)
    level = max(1, min(3, len(spec["steps"]) - 1))
    name = "composed:" + "+".join(spec["steps"])
    fam = Family(name, spec["category"], level, spec["names"], spec["args"], spec["ret"],
                 [spec["desc"]], [s.strip("\n") for s in spec["sols"]], gen=spec["gen"],
                 edges=spec["edges"])
    sol_index = r.randrange(len(fam.sols))
    fn = sampler.compile_reference(fam, sol_index, {})
    cases, spare = sampler.choose_cases(fam, fn, r)
    if not sampler.acceptable(cases):
        return None
    return sampler.task_from(fam, sol_index, {}, fn, (cases, spare), r,
                             f"synthetic/composed/{number}", {"family": name, "composed": True},
                             surface)


def composed_tasks(n: int, r: random.Random, levels: Sequence[int] = (1, 2, 3),
                   categories: Sequence[str] | None = None,
                   surface: styles.Surface = styles.ANY,
                   keep: Callable[[str], bool] | None = None) -> list[Task]:
    """n distinct composed tasks for these levels and categories, phrased as `surface` allows;
    `keep(recipe)` (the family name, `composed:<steps>`) admits recipes: the dev set holds
    some out of training (tasks/dev.py)."""
    pipes = [p for c, p in PIPELINES.items() if categories is None or c in categories]
    if n and not pipes:
        raise ValueError(f"no composed tasks for categories {categories}")
    out, seen, tries = [], set(), 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"could only compose {len(out)} distinct tasks for levels {levels}")
        task = composed_task(r, len(out), r.choice(pipes), surface)
        if task is None or task.level not in levels or (
                keep is not None and not keep(task.extra["family"])):
            continue
        key = " ".join((task.prompt + task.canonical_solution).split())
        if key not in seen:
            seen.add(key)
            out.append(task)
    return out
