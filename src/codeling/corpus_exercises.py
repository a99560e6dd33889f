"""Exercises: the task generator's validated tasks as plain pretraining documents.

    tasks, info = exercise_tasks(n, seed, held_out, workers)
    text = render_exercise(task)           # prompt + solution + a test function of a few asserts

They come from the synthetic generator (family and composed tasks, never MBPP, whose held-out
tasks are part of dev) with their own seed stream (EXERCISE_SEED_OFFSET + corpus seed), so
they are other instances than the `codeling tasks` build draws for SFT; they never include the
dev set's held-out families (`held_out`: tasks/dev.py's draw for the tasks section's seed, plus
the next family of each category's order, the one dev takes when a held-out family loses
every task to the checks), nor its held-out composition recipes (tasks/dev.py
`training_recipes` for that seed, whether or not that build's dev has composed tasks; or the
recipes of `dev_from`'s dev set). Every exercise goes through the task build's own validation
(tasks/build.py `validate`: the solution passes, the tests reject a trivial body) and its
n-gram and name+docstring decontamination; the corpus then runs the behavioural twin check on
them with the function units (corpus_mix.py).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from codeling.tasks.build import dedupe, validate
from codeling.tasks.decontam import EVAL_SETS, Decontaminator, load_eval_sets
from codeling.tasks.dev import dev_family_order, dev_recipes, load_dev, training_recipes
from codeling.tasks.schema import Task
from codeling.tasks.synthetic import generate_tasks

EXERCISE_SEED_OFFSET = 4_000_037  # far from the tasks build's seeds (seed, seed*7919+1, +7e6)
TESTS_SHOWN = 3  # asserts per rendered exercise
_ASSERT = re.compile(r"^    assert ")


@dataclass
class HeldOut:
    """What no exercise may be: the dev set's families and composition recipes."""

    families: list[str] = field(default_factory=list)
    recipe_seed: int | None = 0  # recipes tasks/dev.py holds out for this seed (None: none)
    recipes: list[str] = field(default_factory=list)  # and these (a dev_from dev set's)

    def recipe_ok(self, recipe: str) -> bool:
        return training_recipes(self.recipe_seed, self.recipes)(recipe)


def held_out(seed: int, levels: Sequence[int], categories: Sequence[str] | None,
             dev_from: str = "") -> HeldOut:
    """The families `codeling tasks` (this seed, levels, categories) holds out for dev, and
    the next one of each category (dev's refill), and its held-out recipes; or what
    `dev_from`'s dev set holds, and the seed's recipes besides."""
    if dev_from:
        dev, families = load_dev(dev_from)
        return HeldOut(families, seed, dev_recipes(dev))
    order = dev_family_order(seed, levels, categories)
    return HeldOut(sorted(f for k, names in order.values()
                          for f in names[:k] + (names[k:k + 1] if len(names) > k + 1 else [])),
                   seed)


def exercise_tasks(n: int, seed: int, held: HeldOut, levels: Sequence[int] = (1, 2, 3),
                   composed_ratio: float = 0.4, workers: int = 0, progress: bool = False
                   ) -> tuple[list[Task], dict]:
    """About n validated, n-gram-clean synthetic tasks outside the held-out families and
    recipes."""
    info: dict = {"requested": n, "seed": seed + EXERCISE_SEED_OFFSET,
                  "held_out_families": sorted(held.families),
                  "held_out_recipes": {"seed": held.recipe_seed, "named": held.recipes},
                  "composed_ratio": composed_ratio}
    if n <= 0:
        return [], {**info, "generated": 0, "kept": 0, "dropped": {}}
    tasks = generate_tasks(n, seed=seed + EXERCISE_SEED_OFFSET, levels=tuple(levels),
                           exclude_families=tuple(held.families), composed_ratio=composed_ratio,
                           recipes=held.recipe_ok)
    for t in tasks:
        t.task_id = t.task_id.replace("synthetic/", "exercise/", 1)
    leaked = [t for t in tasks if t.extra.get("family") in set(held.families)
              or (t.extra.get("composed") and not held.recipe_ok(t.extra["family"]))]
    if leaked:  # generate_tasks excludes them; a change there must not leak dev silently
        raise RuntimeError(f"exercise {leaked[0].task_id} is of a dev family or recipe")
    dropped: Counter = Counter()
    tasks, n_dup = dedupe(tasks)
    dropped["duplicate"] += n_dup
    tasks, why = validate(tasks, workers=workers, progress=progress)
    dropped += why
    with warnings.catch_warnings():  # MBPP's references have invalid escapes, not our concern
        warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
        clean, hits = Decontaminator(load_eval_sets(EVAL_SETS)).split(tasks)
    dropped.update(f"ngram_or_docstring:{h.eval_set}" for h in hits)
    info.update(generated=n, kept=len(clean), dropped=dict(sorted(dropped.items())),
                ngram_hits=[h.to_dict() for h in hits[:10]])
    return clean, info


def render_exercise(task: Task, tests: int = TESTS_SHOWN) -> str:
    """Plain code: the prompt, its solution, and a test function with the first `tests`
    asserts of the task's check (its helper lines kept), calling the function by name."""
    out, kept = [], 0
    for line in task.test.strip("\n").splitlines():
        if line.startswith("def check(candidate"):
            out.append(f"def test_{task.entry_point}():")
            continue
        if _ASSERT.match(line):
            if kept >= tests:
                continue
            kept += 1
        out.append(line)
    body = "\n".join(out)
    body = re.sub(r"\bcandidate\(", f"{task.entry_point}(", body)
    return (task.prompt + task.canonical_solution).rstrip("\n") + "\n\n\n" + body.rstrip() + "\n"


def recipe(task: Task) -> str:
    """The family, or for a composed task its recipe (`composed:step+step+...`)."""
    return task.extra.get("family", "")
