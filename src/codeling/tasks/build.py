"""`codeling tasks`: validated, decontaminated task/solution pairs for SFT and distillation.

    codeling tasks --out data/tasks --sources mbpp,synthetic --n 1000 --seed 0 --levels 1,2,3

Writes `train.jsonl`, `val.jsonl` and `report.json` in DIR (each atomically). Pipeline:
1. sources: MBPP train+validation splits (task_ids 511–974; the test split 11–510 is evaluation
   only, and HumanEval is never a source while it is a benchmark), the synthetic generator, or
   any task JSONL file given as a path (e.g. teacher-written tasks from `codeling distill`);
2. filters: MBPP solutions longer than `--max-solution-lines` (default 20, "simple tasks"),
   duplicates of an earlier task (same normalised prompt + solution);
3. validation by execution in the sandbox: the canonical solution must pass its tests, and the
   tests must reject a trivial body (`pass`), otherwise they prove nothing;
4. decontamination against every evaluation set (tasks/decontam.py); hits are dropped unless
   `--allow-contamination`, and listed in report.json either way.
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
from codeling.tasks.schema import Task, read_tasks

TRIVIAL_BODY = "    pass\n"


def mbpp_tasks(max_lines: int, data_dir: str | None = None) -> tuple[list[Task], Counter]:
    from codeling.tasks.benchmarks import mbpp_records, mbpp_to_task

    tasks, dropped = [], Counter()
    for split in ("train", "validation"):
        for rec in mbpp_records(split, data_dir=data_dir):
            task = mbpp_to_task(rec)
            if len(task.canonical_solution.strip().splitlines()) > max_lines:
                dropped["mbpp: solution longer than max_solution_lines"] += 1
                continue
            task.extra["split"] = "val" if split == "validation" else "train"
            tasks.append(task)
    return tasks, dropped


def gather(sources: Sequence[str], n: int, seed: int, levels: Sequence[int],
           categories: Sequence[str] | None, max_lines: int, data_dir: str | None
           ) -> tuple[list[Task], Counter]:
    tasks: list[Task] = []
    dropped: Counter = Counter()
    for src in sources:
        if src == "mbpp":
            got, why = mbpp_tasks(max_lines, data_dir)
            tasks += [t for t in got if t.level in levels]
            dropped += why
        elif src == "synthetic":
            from codeling.tasks.synthetic import generate_tasks

            tasks += generate_tasks(n, seed=seed, levels=tuple(levels),
                                    categories=categories)
        elif src in ("humaneval", "humaneval+", "mini", "mbpp+"):
            raise ConfigError(f"{src} is an evaluation benchmark and cannot be a training source")
        elif Path(src).exists():
            tasks += [t for t in read_tasks(src) if t.level in levels]
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
                       progress: bool = True) -> list[str | None]:
    """Per task: None when the canonical solution passes and the tests reject a trivial body,
    else why not."""
    from tqdm import tqdm

    from codeling.evaluate.sandbox import Limits, Sandbox

    if not tasks:
        return []
    programs = [p for t in tasks for p in (t.program(t.canonical_solution),
                                           t.program(TRIVIAL_BODY))]
    results: list = [None] * len(programs)
    with Sandbox(Limits(timeout=timeout), workers=workers) as sb, \
            tqdm(total=len(programs), desc="validate", unit="run", disable=not progress,
                 file=sys.stderr) as bar:
        for i, res in sb.imap(programs):
            results[i] = res
            bar.update(1)
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
                workers: int = 0, progress: bool = True, timeout: float = 5.0) -> dict:
    """Build DIR/train.jsonl, DIR/val.jsonl and DIR/report.json; returns the report."""
    from codeling.tasks.decontam import EVAL_SETS, Decontaminator, load_eval_sets

    tasks, dropped = gather(sources, n, seed, levels, categories, max_solution_lines, data_dir)
    n_gathered = len(tasks) + sum(dropped.values())
    tasks, n_dup = dedupe(tasks)
    if n_dup:
        dropped["duplicate"] += n_dup
    tasks, why = validate(tasks, workers=workers, timeout=timeout, progress=progress)
    dropped += why
    deco = Decontaminator(load_eval_sets(eval_sets or EVAL_SETS, data_dir))
    clean, hits = deco.split(tasks)
    if hits and allow_contamination:
        warnings.warn(f"--allow-contamination: keeping {len(hits)} tasks that overlap an "
                      "evaluation set; scores on those sets are no longer trustworthy",
                      RuntimeWarning, stacklevel=2)
        clean = tasks
    elif hits:
        dropped["contaminated"] += len(hits)
    train, val = split_val(clean, val_fraction)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", [t.to_dict() for t in train])
    write_jsonl(out / "val.jsonl", [t.to_dict() for t in val])
    everything = train + val
    report = {
        "sources": list(sources), "seed": seed, "levels": list(levels), "n_requested": n,
        "n_gathered": n_gathered, "n_train": len(train), "n_val": len(val),
        "by_source": dict(Counter(t.source for t in everything)),
        "by_category": dict(sorted(Counter(t.category for t in everything).items())),
        "by_level": {str(k): v for k, v in sorted(Counter(t.level for t in everything).items())},
        "dropped": dict(dropped), "allow_contamination": allow_contamination,
        "contamination": {"checked_against": list(eval_sets or EVAL_SETS), "hits": len(hits),
                          "tasks": [h.to_dict() for h in hits]},
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
    if t.categories:
        from codeling.tasks.synthetic import CATEGORIES

        bad = [c for c in t.categories if c not in CATEGORIES]
        if bad:
            raise ConfigError(f"unknown categor{'y' if len(bad) == 1 else 'ies'} {bad}; "
                             f"valid: {', '.join(CATEGORIES)}")
    report = build_tasks(args.out, t.sources, t.n, t.seed, t.levels, t.categories or None,
                         t.mbpp_max_lines, t.val_fraction, t.allow_contamination,
                         data_dir=args.data_dir, workers=t.workers, timeout=t.timeout,
                         progress=not args.quiet)
    print(f"train {report['n_train']}  val {report['n_val']}  dropped {report['dropped']}  "
          f"contamination hits {report['contamination']['hits']}  → {args.out}")
    return 0
