"""The dev set: the tasks that choose a checkpoint, never trained on and never reported.

About N_DEV_SYNTHETIC synthetic tasks from families held out of train/val entirely (a
DEV_FAMILY_SHARE of each category's families, chosen by the seed), picked stratified by category
and spread over the prompt styles, plus N_DEV_MBPP MBPP train/validation tasks held out of
train/val. `tasks.dev_from` takes another build's dev set instead, so that data ablations
(which change what the build draws) are compared on one set of dev prompts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from codeling.tasks.schema import Task, read_tasks

DEV_FAMILY_SHARE = 0.08  # of each category's synthetic families, held out for dev
N_DEV_SYNTHETIC, N_DEV_MBPP = 60, 40


def dev_family_order(seed: int, levels: Sequence[int], categories: Sequence[str] | None
                     ) -> dict[str, tuple[int, list[str]]]:
    """Per category: (how many to hold out, its families in a seeded order). The first ones are
    held out for dev: a DEV_FAMILY_SHARE of the category (at least two where it has six or
    more families, else one; never its only family). Drawn by the seed alone."""
    from codeling.tasks.synthetic.sampler import select_families

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
            if any(t.category == cat for t in pool):
                break
            moved = [t for t in rest if t.extra.get("family") == name
                     and t.extra.get("refs") != "indirect" and t.extra.get("names") != "novel"]
            rest = [t for t in rest if t.extra.get("family") != name]
            held.append(name)
            for t in moved:
                t.extra["split"] = "dev"
            pool += moved
    return pool, rest


def dev_pool(families: Sequence[str], seed: int, levels: Sequence[int]) -> list[Task]:
    """Candidate dev tasks from the held-out families (4x what dev needs: some fail checks)."""
    if not families:
        return []
    from codeling.tasks.synthetic import generate_tasks

    pool = generate_tasks(4 * N_DEV_SYNTHETIC, seed=seed + 7_000_003, levels=tuple(levels),
                          families=list(families))
    for t in pool:
        t.task_id = t.task_id.replace("synthetic/", "dev/", 1)
        t.extra["split"] = "dev"
    return pool


def pick_dev(pool: list[Task], mbpp: list[Task], seed: int) -> list[Task]:
    """N_DEV_SYNTHETIC tasks stratified by category, each pick the least-used prompt style so
    far; then N_DEV_MBPP of the (validated, clean) MBPP tasks, drawn by the seed."""
    r = random.Random(f"dev-pick:{seed}")
    by_cat: dict[str, list[Task]] = {}
    for t in sorted(pool, key=lambda t: t.task_id):
        by_cat.setdefault(t.category, []).append(t)
    for ts in by_cat.values():
        r.shuffle(ts)
    chosen: list[Task] = []
    styles: Counter = Counter()
    while len(chosen) < N_DEV_SYNTHETIC and any(by_cat.values()):
        for cat in sorted(by_cat):  # round-robin over categories = stratified
            if by_cat[cat] and len(chosen) < N_DEV_SYNTHETIC:
                t = min(by_cat[cat], key=lambda t: styles[t.extra.get("style", "")])
                by_cat[cat].remove(t)
                styles[t.extra.get("style", "")] += 1
                chosen.append(t)
    picked = r.sample(sorted(mbpp, key=lambda t: t.task_id), min(N_DEV_MBPP, len(mbpp)))
    for t in picked:
        t.extra["split"] = "dev"
    return chosen + picked


def restyle_mbpp(tasks: list[Task], seed: int, data_dir: str | None) -> list[Task]:
    """The MBPP tasks of `tasks` re-rendered in their augmented style: dev keeps the same prompts
    when training uses MBPP's own shape (`tasks.mbpp_styles = false`), so that ablation is
    measured on the same dev set. Tests and solutions are unchanged."""
    from codeling.tasks.mbpp import mbpp_to_task, pick_style

    if not any(t.source == "mbpp" for t in tasks):
        return tasks
    recs = _mbpp_train_records(data_dir)
    return [mbpp_to_task(recs[t.task_id], style=pick_style(t.task_id, seed))
            if t.source == "mbpp" else t for t in tasks]


def _mbpp_train_records(data_dir: str | None) -> dict[str, dict]:
    """MBPP's train and validation records (where dev's MBPP tasks come from), by task id."""
    from codeling.tasks.benchmarks import mbpp_records

    return {f"mbpp/{r['task_id']}": r for split in ("train", "validation")
            for r in mbpp_records(split, data_dir=data_dir)}


def load_dev(dev_from: str | Path) -> tuple[list[Task], list[str]]:
    """(tasks, synthetic families) of an earlier build's dev set (its folder or dev.jsonl)."""
    path = Path(dev_from)
    dev = read_tasks(path / "dev.jsonl" if path.is_dir() else path)
    return dev, sorted({t.extra.get("family") for t in dev if t.source == "synthetic"} - {None})


def style_sweep(dev: list[Task], per_style: int = 60, seed: int = 0,
                data_dir: str | None = None) -> list[Task]:
    """The dev set's material in every prompt style, for measuring prompt shape alone: new
    tasks of the dev set's held-out synthetic families (round-robin, `per_style` of them), each
    rendered in every synthetic style from one seeded draw, so a task's family, names, solution
    and test cases are the same in every style and only the prompt's shape differs (and how a
    boolean assert is spelled); and the dev set's MBPP tasks in every MBPP style. Ids are
    `sweep/<family>/<i>/<style>` and `<mbpp id>/<style>`; `extra["sweep"]` names the task all
    of a base's styles share. Never used for training."""
    from codeling.tasks.mbpp import STYLES as MBPP_STYLES
    from codeling.tasks.mbpp import mbpp_to_task
    from codeling.tasks.synthetic import styles
    from codeling.tasks.synthetic.sampler import make_task, select_families

    held = sorted({t.extra["family"] for t in dev if t.source == "synthetic"
                   and t.extra.get("family")})
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
