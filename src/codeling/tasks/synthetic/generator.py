"""The synthetic task mix: family tasks (sampler.py) and composed tasks (compose.py) in one
seeded list; above both, since composed tasks are built with the sampler's machinery."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from codeling.tasks.schema import Task
from codeling.tasks.synthetic import compose, styles
from codeling.tasks.synthetic.core import Family
from codeling.tasks.synthetic.sampler import make_task, select_families


def generate_tasks(n: int, seed: int = 0, levels: Sequence[int] = (1, 2, 3),
                   categories: Sequence[str] | None = None, families: Sequence[str] | None = None,
                   exclude_families: Sequence[str] = (), composed_ratio: float = 0.0,
                   styles_allowed: Sequence[str] = (), indirect_refs: float = 0.0,
                   novel_names: float = 0.0,
                   recipes: Callable[[str], bool] | None = None) -> list[Task]:
    """n distinct tasks (by normalised prompt + solution), deterministic for a seed.

    Categories are drawn with weight sqrt(number of families) so small categories are not
    drowned nor over-repeated; families within a category take turns in shuffled rounds.
    `families`/`exclude_families` restrict the family tasks; a share `composed_ratio` of the
    tasks are composed ones (compose.py), whose levels and categories are filtered the same way.
    `styles_allowed` limits the prompt styles (empty: all of styles.STYLES by their weights);
    in a share `indirect_refs` of the tasks the description calls the arguments by their type
    ("the given list") instead of their names (styles.indirect_names); in a share
    `novel_names` the arguments are named with pseudo-words (names.novel_arg_name).
    `recipes(name)` admits composition recipes (compose.composed_tasks' `keep`)."""
    for key, share in (("composed_ratio", composed_ratio), ("indirect_refs", indirect_refs),
                       ("novel_names", novel_names)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{key} must be in [0, 1], got {share}")
    bad = [s for s in styles_allowed if s not in styles.STYLES]
    if bad:
        raise ValueError(f"unknown prompt style(s) {bad}; valid: {', '.join(styles.STYLES)}")
    surface = styles.Surface(tuple(styles_allowed), indirect_refs, novel_names)
    fams = select_families(levels, categories, families, exclude_families)
    if not fams and composed_ratio < 1.0 and n > 0:
        raise ValueError(f"no synthetic families for levels {tuple(levels)} and categories "
                         f"{categories}")
    r = random.Random(seed)
    by_cat: dict[str, list[Family]] = {}
    for f in fams:
        by_cat.setdefault(f.category, []).append(f)
    cats = list(by_cat)
    weights = [math.sqrt(len(by_cat[c])) for c in cats]
    queues: dict[str, list[Family]] = {c: [] for c in cats}
    counters: dict[str, int] = {}
    n_composed = round(n * composed_ratio)
    composed = compose.composed_tasks(n_composed, random.Random(seed * 7919 + 1), levels,
                                      categories, surface, recipes) if n_composed else []
    tasks, seen, misses = [], {" ".join((t.prompt + t.canonical_solution).split())
                               for t in composed}, 0
    while len(tasks) < n - len(composed):
        cat = r.choices(cats, weights)[0]
        if not queues[cat]:
            queues[cat] = r.sample(by_cat[cat], len(by_cat[cat]))
        fam = queues[cat].pop()
        task = make_task(fam, r, counters.get(fam.name, 0), surface)
        key = " ".join((task.prompt + task.canonical_solution).split())
        if key in seen:
            misses += 1
            if misses > 1000 + 10 * n:
                raise RuntimeError(f"could only generate {len(tasks)} distinct tasks")
            continue
        seen.add(key)
        counters[fam.name] = counters.get(fam.name, 0) + 1
        tasks.append(task)
    # composed tasks spread evenly through the list, so any prefix has the configured share
    fam_iter, comp_iter, out, placed = iter(tasks), iter(composed), [], 0
    for i in range(n):
        if placed < round((i + 1) * len(composed) / n):
            out.append(next(comp_iter))
            placed += 1
        else:
            out.append(next(fam_iter))
    return out
