"""`codeling tasks`: validated, decontaminated task/solution pairs for SFT and distillation.

    codeling tasks --out data/tasks --sources mbpp,synthetic --n 1000 --seed 0 --levels 1,2,3

Writes `train.jsonl`, `val.jsonl`, `dev.jsonl` and `report.json` in DIR (each atomically).
Pipeline:
1. sources: MBPP train+validation splits (task_ids 511–974; the test split 11–510 is evaluation
   only, and HumanEval is never a source while it is a benchmark), the synthetic generator, or
   any task JSONL file given as a path (e.g. teacher-written tasks from `codeling distill`);
2. filters: MBPP solutions longer than `--max-solution-lines` (default 20, "simple tasks"),
   duplicates of an earlier task (same normalised prompt + solution);
3. validation by execution in the sandbox: the canonical solution must pass its tests, and the
   tests must reject a trivial body (`pass`), otherwise they prove nothing (many programs per
   sandboxed process, evaluate/batch.py: the verdicts of one process each, ~20x faster);
4. decontamination against every evaluation set: n-gram and name+docstring overlap
   (tasks/decontam.py), then behaviour (tasks/twins.py: a task whose solution passes an
   evaluation task's tests is dropped as `behavioural twin of <task_id>`). Both are dropped
   unless `--allow-contamination`, which keeps them and marks report.json `"contaminated"`;
   report.json lists them either way ("contamination", "twins").
5. the dev set (dev.jsonl, for checkpoint selection; never reported, never trained on;
   tasks/dev.py): `tasks.dev_size` tasks (default 100), `tasks.dev_mbpp` of them MBPP
   train/validation tasks held out of train/val, the rest synthetic tasks from families held
   out of train/val entirely and (a share `tasks.dev_composed`) composed tasks of held-out
   composition recipes, stratified by category and spread over the prompt styles. They pass
   the same validation and decontamination as everything else. `tasks.dev_from=DIR` reuses
   DIR's dev set instead.
Validation keeps MBPP's own validation split as val; synthetic and file tasks go to val by a
stable hash of their task_id (`--val-fraction`).
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from codeling.config import ConfigError
from codeling.io import atomic_write_json, write_jsonl
from codeling.tasks.dev import (
    N_DEV_MBPP,
    N_DEV_SYNTHETIC,
    dev_family_order,
    dev_pool,
    dev_recipes,
    load_dev,
    pick_dev,
    refill_dev,
    restyle_mbpp,
    training_recipes,
)
from codeling.tasks.records import read_task_records
from codeling.tasks.schema import Task

TRIVIAL_BODY = "    pass\n"


def mbpp_tasks(max_lines: int, data_dir: str | None = None, seed: int = 0, styled: bool = True
               ) -> tuple[list[Task], Counter]:
    """MBPP train+validation tasks, each in a prompt style picked by its id (prompt
    augmentation), or in MBPP's own shape when not `styled`."""
    from codeling.tasks.benchmarks import mbpp_records
    from codeling.tasks.mbpp import mbpp_to_task, pick_style

    tasks, dropped = [], Counter()
    for split in ("train", "validation"):
        for rec in mbpp_records(split, data_dir=data_dir):
            style = pick_style(f"mbpp/{rec['task_id']}", seed) if styled else "default"
            task = mbpp_to_task(rec, style=style)
            if len(task.canonical_solution.strip().splitlines()) > max_lines:
                dropped["mbpp: solution longer than max_solution_lines"] += 1
                continue
            task.extra["split"] = "val" if split == "validation" else "train"
            tasks.append(task)
    return tasks, dropped


def gather(sources: Sequence[str], n: int, seed: int, levels: Sequence[int],
           categories: Sequence[str] | None, max_lines: int, data_dir: str | None,
           exclude_families: Sequence[str] = (), composed_ratio: float = 0.0,
           styles: Sequence[str] = (), mbpp_styles: bool = True, indirect_refs: float = 0.0,
           novel_names: float = 0.0, recipes=None) -> tuple[list[Task], Counter]:
    tasks: list[Task] = []
    dropped: Counter = Counter()
    for src in sources:
        if src == "mbpp":
            got, why = mbpp_tasks(max_lines, data_dir, seed, styled=mbpp_styles)
            tasks += [t for t in got if t.level in levels]
            dropped += why
        elif src == "synthetic":
            from codeling.tasks.synthetic import generate_tasks

            tasks += generate_tasks(n, seed=seed, levels=tuple(levels), categories=categories,
                                    exclude_families=tuple(exclude_families),
                                    composed_ratio=composed_ratio, styles_allowed=styles,
                                    indirect_refs=indirect_refs, novel_names=novel_names,
                                    recipes=recipes)
        elif src in ("humaneval", "humaneval+", "mini", "mbpp+"):
            raise ConfigError(f"{src} is an evaluation benchmark and cannot be a training source")
        elif Path(src).exists():
            tasks += [t for t in read_task_records(src) if t.level in levels]
        else:
            raise ConfigError(f"unknown task source {src!r}: use mbpp, synthetic or a JSONL path")
    return tasks, dropped


def content_key(prompt: str, solution: str) -> str:
    """Identity of a task's content: prompt and solution with whitespace runs collapsed."""
    norm = " ".join(prompt.split()) + "\0" + " ".join(solution.split())
    return hashlib.sha1(norm.encode()).hexdigest()[:16]


def dedupe(tasks: list[Task]) -> tuple[list[Task], int]:
    seen, out = set(), []
    for t in tasks:
        key = content_key(t.prompt, t.canonical_solution)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out, len(tasks) - len(out)


def validation_reasons(tasks: list[Task], workers: int = 0, timeout: float = 5.0,
                       progress: bool = True, batched: bool = True) -> list[str | None]:
    """Per task: None when the canonical solution passes and the tests reject a trivial body,
    else why not. `batched` runs many programs per sandboxed process (evaluate/batch.py: the
    same reasons, ~20x faster on generated tasks); False runs one process each
    (bench/validate.py compares)."""
    from tqdm import tqdm

    from codeling.evaluate.batch import run_batched
    from codeling.evaluate.sandbox import Limits, Sandbox, SandboxError

    if not tasks:
        return []
    programs = [p for t in tasks for p in (t.program(t.canonical_solution),
                                           t.program(TRIVIAL_BODY))]
    results: list = [None] * len(programs)
    with Sandbox(Limits(timeout=timeout), workers=workers) as sb, \
            tqdm(total=len(programs), desc="validate", unit="run", disable=not progress,
                 file=sys.stderr) as bar:
        if batched:
            results = run_batched(sb, programs, on_done=bar.update)
        else:
            for i, res in sb.imap(programs):
                results[i] = res
                bar.update(1)
        # an infrastructure error says nothing about the task: judge it again, and never
        # drop a task for it
        sb.rejudge_errors(programs, results, rounds=2)
    unjudged = [(tasks[i // 2].task_id, r.reason) for i, r in enumerate(results) if r.is_error]
    if unjudged:
        raise SandboxError(f"the sandbox could not judge {len(unjudged)} validation runs (first: "
                           f"{unjudged[0][0]}: {unjudged[0][1]}); no task was dropped for it")
    reasons: list[str | None] = []
    for i, t in enumerate(tasks):
        good, trivial = results[2 * i], results[2 * i + 1]
        if not good.passed:
            reason = good.result.split(":")[0] if good.status == "timed out" else good.reason
            reasons.append(f"{t.source}: canonical solution {_short(reason)}")
        elif trivial.passed:
            reasons.append(f"{t.source}: tests accept a trivial body")
        else:
            reasons.append(None)
    return reasons


def validate(tasks: list[Task], workers: int = 0, timeout: float = 5.0,
             progress: bool = True) -> tuple[list[Task], Counter]:
    """Keep tasks whose canonical solution passes and whose tests reject a trivial body."""
    reasons = validation_reasons(tasks, workers, timeout, progress)
    kept = [t for t, why in zip(tasks, reasons) if why is None]
    return kept, Counter(why for why in reasons if why is not None)


def style_shares(tasks: list[Task]) -> dict[str, float]:
    """Share of each prompt style ("default" for MBPP's own rendering)."""
    counts = Counter(t.extra.get("style") or "default" for t in tasks)
    return {k: round(v / max(len(tasks), 1), 4) for k, v in sorted(counts.items())}


def marked_share(tasks: list[Task], key: str, value: str) -> float:
    """Share of tasks whose extra `key` is `value` (a generator lever's mark)."""
    return round(sum(t.extra.get(key) == value for t in tasks) / max(len(tasks), 1), 4)


def _short(reason: str) -> str:
    head = reason.split(":")[0] if reason else "timed out"
    return f"fails ({head})" if head != "timed out" else "times out"


def split_val(tasks: list[Task], fraction: float) -> tuple[list[Task], list[Task]]:
    train, val = [], []
    for t in tasks:
        if "split" in t.extra:
            (val if t.extra.pop("split") == "val" else train).append(t)
            continue
        h = int(hashlib.sha1(t.task_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < fraction else train).append(t)
    return train, val


def length_stats(tasks: list[Task]) -> dict:
    def stats(xs: list[int]) -> dict:
        xs = sorted(xs) or [0]
        return {"min": xs[0], "median": xs[len(xs) // 2], "max": xs[-1],
                "mean": round(sum(xs) / len(xs), 1)}

    return {"prompt_chars": stats([len(t.prompt) for t in tasks]),
            "solution_chars": stats([len(t.canonical_solution) for t in tasks]),
            "solution_lines": stats([len(t.canonical_solution.strip().splitlines())
                                     for t in tasks])}


def build_tasks(out: str | Path, sources: Sequence[str] = ("mbpp", "synthetic"), n: int = 1000,
                seed: int = 0, levels: Sequence[int] = (1, 2, 3),
                categories: Sequence[str] | None = None, max_solution_lines: int = 20,
                val_fraction: float = 0.05, allow_contamination: bool = False,
                eval_sets: Sequence[str] | None = None, data_dir: str | None = None,
                workers: int = 0, progress: bool = True, timeout: float = 5.0,
                dev: bool = True, composed_ratio: float = 0.0,
                twin_check: bool = True, styles: Sequence[str] = (),
                mbpp_styles: bool = True, dev_from: str | Path | None = None,
                indirect_refs: float = 0.0, novel_names: float = 0.0,
                dev_size: int = N_DEV_SYNTHETIC + N_DEV_MBPP, dev_mbpp: int = N_DEV_MBPP,
                dev_composed: float = 0.0) -> dict:
    """Build DIR/train.jsonl, val.jsonl, dev.jsonl and report.json; returns the report.
    `styles` (synthetic prompt styles; empty: all) and `mbpp_styles` (MBPP prompt augmentation)
    shape the training tasks only: dev is drawn in every style either way, so runs that differ
    in them are compared on the same dev set; `dev_from` (an earlier build's folder or its
    dev.jsonl) makes that exact: its dev set is reused, and its tasks and synthetic families
    are kept out of train/val. `indirect_refs`: the share of synthetic training tasks whose
    description calls the arguments by their type (dev's always name them); `novel_names`: the
    share whose arguments have pseudo-word names (dev's never do). `dev_size` tasks of dev,
    `dev_mbpp` of them MBPP, a share `dev_composed` of the synthetic rest from held-out
    composition recipes (tasks/dev.py).
    `twin_check=False` exists for bench/tasks.py (the cost of the check), nothing else."""
    from codeling.tasks.decontam import EVAL_SETS, Decontaminator, load_eval_sets
    from codeling.tasks.twins import check_twins, twin_summary

    names = list(eval_sets or EVAL_SETS)
    fixed, fixed_families = load_dev(dev_from) if dev_from else ([], [])
    order = (dev_family_order(seed, levels, categories)
             if dev and "synthetic" in sources and not dev_from else {})
    # the held-out families never reach train/val: drawn by the seed, or those of dev_from
    held = fixed_families or sorted(f for k, names in order.values() for f in names[:k])
    n_synthetic = max(0, dev_size - dev_mbpp)
    n_composed = round(dev_composed * n_synthetic) if "synthetic" in sources else 0
    # held-out recipes never reach train/val either: the seed's, or those of dev_from
    recipes = (training_recipes(None, dev_recipes(fixed)) if dev_from and dev_recipes(fixed)
               else training_recipes(seed) if n_composed and dev and not dev_from else None)
    tasks, dropped = gather(sources, n, seed, levels, categories, max_solution_lines, data_dir,
                            held, composed_ratio, styles, mbpp_styles, indirect_refs,
                            novel_names, recipes)
    n_gathered = len(tasks) + sum(dropped.values())
    if not dev_from and dev:
        tasks += dev_pool(held, seed, levels, n_synthetic - n_composed, n_composed,
                          categories)
    tasks, n_dup = dedupe(tasks)
    if n_dup:
        dropped["duplicate"] += n_dup
    tasks, why = validate(tasks, workers=workers, timeout=timeout, progress=progress)
    dropped += why
    deco = Decontaminator(load_eval_sets(names, data_dir))
    clean, hits = deco.split(tasks)
    twins, twin_info = (check_twins(tasks, names, data_dir, workers, progress) if twin_check
                        else ({}, {"enabled": False}))
    contaminated = bool(allow_contamination and (hits or twins))
    if contaminated:
        warnings.warn(f"--allow-contamination: keeping {len(hits)} tasks that overlap an "
                      f"evaluation set and {len(twins)} behavioural twins of evaluation tasks; "
                      "scores on those sets are no longer trustworthy",
                      RuntimeWarning, stacklevel=2)
        clean = tasks
        for t in tasks:
            if t.task_id in twins:
                t.extra["twin_of"] = [e for _, e in twins[t.task_id]]
    else:
        if hits:
            dropped["contaminated"] += len(hits)
        first = {tid: min(ps, key=lambda p: names.index(p[0])) for tid, ps in twins.items()}
        dropped.update(f"behavioural twin of {first[t.task_id][1]}"
                       for t in clean if t.task_id in first)
        clean = [t for t in clean if t.task_id not in twins]
    pool = [t for t in clean if t.extra.get("split") == "dev"]
    rest = [t for t in clean if t.extra.get("split") != "dev"]
    n_overlap = 0
    if dev_from:  # its MBPP tasks (and any other task of it) are kept out of train/val
        ids = {t.task_id for t in fixed}
        dev_tasks, n_overlap = fixed, sum(t.task_id in ids for t in rest)
        rest = [t for t in rest if t.task_id not in ids]
    else:
        pool, rest = refill_dev(pool, rest, held, order)
        dev_tasks = pick_dev(pool, [t for t in rest if t.source == "mbpp"], seed, n_synthetic,
                             dev_mbpp, n_composed) if dev else []
    chosen = {id(t) for t in dev_tasks}
    train, val = split_val([t for t in rest if id(t) not in chosen], val_fraction)
    for t in dev_tasks:
        t.extra.pop("split", None)
    if not mbpp_styles and not dev_from:
        dev_tasks = restyle_mbpp(dev_tasks, seed, data_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", [t.to_dict() for t in train])
    write_jsonl(out / "val.jsonl", [t.to_dict() for t in val])
    write_jsonl(out / "dev.jsonl", [t.to_dict() for t in dev_tasks])
    everything = train + val
    report = {
        "sources": list(sources), "seed": seed, "levels": list(levels), "n_requested": n,
        "n_gathered": n_gathered, "n_train": len(train), "n_val": len(val),
        "n_dev": len(dev_tasks),
        "by_source": dict(Counter(t.source for t in everything)),
        "by_category": dict(sorted(Counter(t.category for t in everything).items())),
        "by_level": {str(k): v for k, v in sorted(Counter(t.level for t in everything).items())},
        "by_style": style_shares(everything), "composed_ratio": composed_ratio,
        "styles": list(styles) or "all", "mbpp_styles": mbpp_styles,
        "indirect_refs": {"configured": indirect_refs,
                          "share": marked_share(everything, "refs", "indirect")},
        "novel_names": {"configured": novel_names,
                        "share": marked_share(everything, "names", "novel")},
        "dropped": dict(dropped), "allow_contamination": allow_contamination,
        "contaminated": contaminated,
        "contamination": {"checked_against": names, "hits": len(hits),
                          "tasks": [h.to_dict() for h in hits]},
        "twins": twin_summary(twins, names, kept=contaminated),
        "twin_check": twin_info,
        "dev": {"n": len(dev_tasks), "from": str(dev_from) if dev_from else None,
                "kept_out_of_training": n_overlap,
                "families": sorted(held),
                "n_synthetic": sum(t.source == "synthetic" for t in dev_tasks),
                "n_mbpp": sum(t.source == "mbpp" for t in dev_tasks),
                "n_composed": sum(bool(t.extra.get("composed")) for t in dev_tasks),
                "recipes": dev_recipes(dev_tasks),
                "by_style": dict(sorted(Counter(t.extra.get("style", "")
                                                for t in dev_tasks).items())),
                "by_category": dict(sorted(Counter(t.category for t in dev_tasks).items()))},
        "lengths": length_stats(everything),
    }
    atomic_write_json(out / "report.json", report)
    return report


def add_arguments(p) -> None:
    from codeling.config import add_config_arguments

    p.add_argument("--out", required=True, help="output folder: train.jsonl, val.jsonl, report")
    # each flag is a spelling of a [tasks] override (`--n 50` is `tasks.n=50`)
    add_config_arguments(p, section="tasks", flags={
        "--sources": "sources", "--n": "n", "--seed": "seed", "--levels": "levels",
        "--categories": "categories", "--max-solution-lines": "mbpp_max_lines",
        "--val-fraction": "val_fraction", "--allow-contamination": "allow_contamination",
        "--timeout": "timeout", "--workers": "workers"})
    p.add_argument("--data-dir", default=None, help="folder holding MBPP / plus files")
    p.add_argument("--quiet", action="store_true")


def main(args) -> int:
    from codeling.config import config_from_args

    t = config_from_args(args, section="tasks").tasks
    from codeling.tasks.synthetic.styles import STYLES

    if bad := [s for s in t.styles if s not in STYLES]:
        raise ConfigError(f"tasks.styles: unknown prompt style(s) {bad}; valid: {', '.join(STYLES)}")
    if not 0 <= t.dev_mbpp <= t.dev_size:
        raise ConfigError(f"tasks.dev_mbpp must be in [0, tasks.dev_size={t.dev_size}], got "
                          f"{t.dev_mbpp}")
    for key in ("indirect_refs", "novel_names", "dev_composed"):
        if not 0.0 <= getattr(t, key) <= 1.0:
            raise ConfigError(f"tasks.{key} must be in [0, 1], got {getattr(t, key)}")
    if t.categories:
        from codeling.tasks.synthetic import CATEGORIES

        bad = [c for c in t.categories if c not in CATEGORIES]
        if bad:
            raise ConfigError(f"unknown categor{'y' if len(bad) == 1 else 'ies'} {bad}; "
                             f"valid: {', '.join(CATEGORIES)}")
    # a SandboxError exits 1 with one line, like every stage's failure (stage.run_main)
    report = build_tasks(args.out, t.sources, t.n, t.seed, t.levels, t.categories or None,
                         t.mbpp_max_lines, t.val_fraction, t.allow_contamination,
                         data_dir=args.data_dir, workers=t.workers, timeout=t.timeout,
                         progress=not args.quiet, composed_ratio=t.composed_ratio,
                         styles=t.styles, mbpp_styles=t.mbpp_styles,
                         dev_from=t.dev_from or None, indirect_refs=t.indirect_refs,
                         novel_names=t.novel_names, dev_size=t.dev_size,
                         dev_mbpp=t.dev_mbpp, dev_composed=t.dev_composed)
    twinned = {k: v["eval_tasks_with_twin"] for k, v in report["twins"].items()}
    print(f"train {report['n_train']}  val {report['n_val']}  dev {report['n_dev']}  "
          f"contamination hits {report['contamination']['hits']}  eval tasks with a "
          f"behavioural twin {twinned}{'  CONTAMINATED (kept)' if report['contaminated'] else ''}"
          f"  → {args.out}")
    return 0

