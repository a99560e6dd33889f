"""The dev set: the tasks that choose a checkpoint, never trained on and never reported.

`tasks.dev_size` tasks (default 100; the cpu preset 1,000), of which `tasks.dev_mbpp` are MBPP
train/validation tasks held out of train/val, and the rest synthetic:
- from families held out of train/val entirely (a DEV_FAMILY_SHARE of each category's
  families, chosen by the seed), picked stratified by category;
- a share `tasks.dev_composed` of them composed tasks (compose.py) of composition recipes held
  out of training (a DEV_RECIPE_SHARE of the recipes, by a seeded hash of the recipe's name:
  its steps), picked stratified by category;
each pick taking the least-used prompt style so far. They pass the same validation and twin
checks as everything else. `tasks.dev_from` takes another build's dev set instead (builds made
before these keys included), so that data ablations (which change what the build draws) are
compared on one set of dev prompts; its families and recipes stay out of training.
`dev_subset` picks the fixed stratified subset that in-training evals generate on.
Tasks of one family are alike, so the set's effective size is below its task count.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from codeling.tasks.benchmarks import mbpp_records
from codeling.tasks.mbpp import STYLES as MBPP_STYLES
from codeling.tasks.mbpp import mbpp_to_task, pick_style
from codeling.tasks.schema import Task, read_tasks
from codeling.tasks.synthetic import compose, generate_tasks, styles
from codeling.tasks.synthetic.sampler import make_task, select_families

DEV_FAMILY_SHARE = 0.08  # of each category's synthetic families, held out for dev
DEV_RECIPE_SHARE = 0.1  # of the composition recipes, held out for dev (when dev_composed > 0)
N_DEV_SYNTHETIC, N_DEV_MBPP = 60, 40  # the defaults: tasks.dev_size 100, tasks.dev_mbpp 40
POOL = 4  # candidates drawn per dev task needed: the checks drop many (twins, mostly)


def is_dev_recipe(seed: int, recipe: str) -> bool:
    """Whether a composition recipe (`composed:<steps>`) is held out for dev under this seed."""
    h = int(hashlib.sha1(f"dev-recipe:{seed}:{recipe}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < DEV_RECIPE_SHARE


def training_recipes(seed: int | None, held: Sequence[str] = ()) -> Callable[[str], bool]:
    """The recipes training may use: not held out by the seed (None: no seed's), nor named in
    `held` (the recipes of a `dev_from` build's dev set)."""
    names = frozenset(held)
    return functools.partial(_trainable, seed, names)


def _trainable(seed: int | None, held: frozenset, recipe: str) -> bool:
    return recipe not in held and (seed is None or not is_dev_recipe(seed, recipe))


def dev_family_order(seed: int, levels: Sequence[int], categories: Sequence[str] | None
                     ) -> dict[str, tuple[int, list[str]]]:
    """Per category: (how many to hold out, its families in a seeded order). The first ones are
    held out for dev: a DEV_FAMILY_SHARE of the category (at least two where it has six or
    more families, else one; never its only family). Drawn by the seed alone."""
    by_cat: dict[str, list[str]] = {}
    for f in select_families(tuple(levels), categories):
        by_cat.setdefault(f.category, []).append(f.name)
    r = random.Random(f"dev-families:{seed}")
    out = {}
    for cat, names in sorted(by_cat.items()):
        if len(names) > 1:
            k = max(2 if len(names) >= 6 else 1, round(DEV_FAMILY_SHARE * len(names)))
            out[cat] = (k, r.sample(sorted(names), len(names)))
    return out


def refill_dev(pool: list[Task], rest: list[Task], held: list[str],
               order: dict[str, tuple[int, list[str]]]) -> tuple[list[Task], list[Task]]:
    """A category whose held-out families lost every task to the checks (twins, mostly) takes
    the next family of its seeded order out of training instead, until one has tasks left.
    Those tasks were drawn for training: the ones whose description calls the arguments by
    their type (`tasks.indirect_refs`) or whose arguments have pseudo-word names
    (`tasks.novel_names`) leave training but do not enter dev, which has neither."""
    for cat, (k, names) in order.items():
        for name in names[k:-1]:  # a category keeps at least one family for training
            if any(t.category == cat and not t.extra.get("composed") for t in pool):
                break
            moved = [t for t in rest if t.extra.get("family") == name
                     and t.extra.get("refs") != "indirect" and t.extra.get("names") != "novel"]
            rest = [t for t in rest if t.extra.get("family") != name]
            held.append(name)
            for t in moved:
                t.extra["split"] = "dev"
            pool += moved
    return pool, rest


def dev_pool(families: Sequence[str], seed: int, levels: Sequence[int],
             n_family: int = N_DEV_SYNTHETIC, n_composed: int = 0,
             categories: Sequence[str] | None = None) -> list[Task]:
    """Candidate dev tasks: POOL x what dev needs from the held-out families, and from the
    held-out composition recipes (some fail the checks)."""
    pool = generate_tasks(POOL * n_family, seed=seed + 7_000_003, levels=tuple(levels),
                          families=list(families)) if families and n_family else []
    for t in pool:
        t.task_id = t.task_id.replace("synthetic/", "dev/", 1)
    if n_composed:
        held = functools.partial(is_dev_recipe, seed)
        comp = compose.composed_tasks(POOL * n_composed, random.Random(f"dev-composed:{seed}"),
                                      levels, categories, styles.ANY, keep=held)
        for t in comp:
            t.task_id = t.task_id.replace("synthetic/composed/", "dev/composed/", 1)
        pool += comp
    for t in pool:
        t.extra["split"] = "dev"
    return pool


def _stratified(tasks: list[Task], n: int, r: random.Random, styles_used: Counter) -> list[Task]:
    """n tasks round-robin over categories (stratified), each pick the least-used prompt
    style so far (`styles_used` is shared across calls)."""
    by_cat: dict[str, list[Task]] = {}
    for t in sorted(tasks, key=lambda t: t.task_id):
        by_cat.setdefault(t.category, []).append(t)
    for ts in by_cat.values():
        r.shuffle(ts)
    chosen: list[Task] = []
    while len(chosen) < n and any(by_cat.values()):
        for cat in sorted(by_cat):
            if by_cat[cat] and len(chosen) < n:
                t = min(by_cat[cat], key=lambda t: styles_used[t.extra.get("style", "")])
                by_cat[cat].remove(t)
                styles_used[t.extra.get("style", "")] += 1
                chosen.append(t)
    return chosen


def pick_dev(pool: list[Task], mbpp: list[Task], seed: int, n_synthetic: int = N_DEV_SYNTHETIC,
             n_mbpp: int = N_DEV_MBPP, n_composed: int = 0) -> list[Task]:
    """`n_synthetic - n_composed` family tasks and `n_composed` composed ones, each part
    stratified by category and spread over the prompt styles; then `n_mbpp` of the
    (validated, clean) MBPP tasks, drawn by the seed."""
    r = random.Random(f"dev-pick:{seed}")
    used: Counter = Counter()
    fams = [t for t in pool if not t.extra.get("composed")]
    comps = [t for t in pool if t.extra.get("composed")]
    chosen = _stratified(fams, n_synthetic - n_composed, r, used)
    if n_composed:
        chosen += _stratified(comps, n_composed, r, used)
    picked = r.sample(sorted(mbpp, key=lambda t: t.task_id), min(n_mbpp, len(mbpp)))
    for t in picked:
        t.extra["split"] = "dev"
    return chosen + picked


def task_kind(t: Task) -> str:
    """"mbpp", "composed" or "family" (synthetic), for stratifying."""
    if t.source != "synthetic":
        return t.source or "other"
    return "composed" if t.extra.get("composed") else "family"


def dev_subset(tasks: Sequence[Task], k: int, seed: int = 0) -> list[Task]:
    """A fixed subset of k dev tasks, stratified by kind and category in proportion (largest
    remainder), drawn by the seed; in the dev set's order. Its pass rate estimates the whole
    set's, and every eval that uses it scores the same tasks."""
    if k >= len(tasks):
        return list(tasks)
    strata: dict[tuple[str, str], list[Task]] = {}
    for t in tasks:
        strata.setdefault((task_kind(t), t.category), []).append(t)
    quota = {key: k * len(ts) / len(tasks) for key, ts in strata.items()}
    take = {key: int(q) for key, q in quota.items()}
    for key in sorted(quota, key=lambda key: (take[key] - quota[key], key))[:k - sum(take.values())]:
        take[key] += 1
    r = random.Random(f"dev-subset:{seed}")
    chosen = set()
    for key in sorted(strata):
        ts = sorted(strata[key], key=lambda t: t.task_id)
        chosen.update(t.task_id for t in r.sample(ts, take[key]))
    return [t for t in tasks if t.task_id in chosen]


def restyle_mbpp(tasks: list[Task], seed: int, data_dir: str | None) -> list[Task]:
    """The MBPP tasks of `tasks` re-rendered in their augmented style: dev keeps the same prompts
    when training uses MBPP's own shape (`tasks.mbpp_styles = false`), so that ablation is
    measured on the same dev set. Tests and solutions are unchanged."""
    if not any(t.source == "mbpp" for t in tasks):
        return tasks
    recs = _mbpp_train_records(data_dir)
    return [mbpp_to_task(recs[t.task_id], style=pick_style(t.task_id, seed))
            if t.source == "mbpp" else t for t in tasks]


def _mbpp_train_records(data_dir: str | None) -> dict[str, dict]:
    """MBPP's train and validation records (where dev's MBPP tasks come from), by task id."""
    return {f"mbpp/{r['task_id']}": r for split in ("train", "validation")
            for r in mbpp_records(split, data_dir=data_dir)}


def load_dev(dev_from: str | Path) -> tuple[list[Task], list[str]]:
    """(tasks, synthetic families) of an earlier build's dev set (its folder or dev.jsonl);
    composition recipes are not families (`dev_recipes`)."""
    path = Path(dev_from)
    dev = read_tasks(path / "dev.jsonl" if path.is_dir() else path)
    return dev, sorted({t.extra.get("family") for t in dev if t.source == "synthetic"
                        and not t.extra.get("composed")} - {None})


def dev_recipes(dev: Sequence[Task]) -> list[str]:
    """The composition recipes of a dev set's composed tasks."""
    return sorted({t.extra["family"] for t in dev if t.extra.get("composed")})


def style_sweep(dev: list[Task], per_style: int = 60, seed: int = 0,
                data_dir: str | None = None) -> list[Task]:
    """The dev set's material in every prompt style, for measuring prompt shape alone: new
    tasks of the dev set's held-out synthetic families (round-robin, `per_style` of them), each
    rendered in every synthetic style from one seeded draw, so a task's family, names, solution
    and test cases are the same in every style and only the prompt's shape differs (and how a
    boolean assert is spelled); and the dev set's MBPP tasks in every MBPP style. Ids are
    `sweep/<family>/<i>/<style>` and `<mbpp id>/<style>`; `extra["sweep"]` names the task all
    of a base's styles share. Never used for training."""
    held = sorted({t.extra["family"] for t in dev if t.source == "synthetic"
                   and t.extra.get("family") and not t.extra.get("composed")})
    fams = select_families((1, 2, 3), None, held, ()) if held else []
    out: list[Task] = []
    bases, i = 0, 0
    while fams and bases < per_style:
        for fam in fams:
            if bases >= per_style:
                break
            rendered = [make_task(fam, random.Random(f"sweep/{seed}/{fam.name}/{i}"), i,
                                  styles.Surface((s,), 0.0)) for s in styles.STYLES]
            if any(t.extra.get("style") != s for t, s in zip(rendered, styles.STYLES)):
                continue  # a task without examples cannot take every style
            base = f"sweep/{fam.name}/{i}"
            for t, s in zip(rendered, styles.STYLES):
                t.task_id, t.source = f"{base}/{s}", "synthetic"
                t.extra.update(sweep=base, split="sweep")
            out += rendered
            bases += 1
        i += 1
        if i > 50 * per_style:
            raise RuntimeError(f"only {bases} tasks of families {held} take every style")
    mbpp_ids = sorted(t.task_id for t in dev if t.source == "mbpp")
    if mbpp_ids:
        recs = _mbpp_train_records(data_dir)
        for tid in mbpp_ids:
            for s in MBPP_STYLES:
                t = mbpp_to_task(recs[tid], style=s)
                t.task_id = f"{tid}/{s}"
                t.extra.update(style=s, sweep=tid, split="sweep")
                out.append(t)
    return out
