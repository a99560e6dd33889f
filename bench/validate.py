"""Task validation batched (evaluate/batch.py) against one sandboxed process per program.

Baseline: `validation_reasons(..., batched=False)`, one process per program, on the same tasks
in the same run. Prints both wall times, their ratio (goal: at least 5x on a task file; model
completions time out and crash, and those are judged alone again) and how many tasks got
a different reason (goal: 0). Two kinds of input, both real:
- a task file (e.g. a run's train.jsonl): its canonical solutions and trivial bodies, what
  `codeling tasks` validates;
- with --samples, an evaluation's model completions as the solutions of that benchmark's tasks
  (e.g. runs/cpu/eval/mbpp/filtered/samples.candidates.jsonl): what distillation validates,
  with its wrong answers, loops, crashes and syntax errors.

    .venv/bin/python bench/validate.py runs/cpu/data/tasks/train.jsonl [--limit N]
    .venv/bin/python bench/validate.py --samples FILE --benchmark mbpp [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import replace

from codeling.io import iter_jsonl
from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.build import validation_reasons
from codeling.tasks.schema import Task, read_tasks


def sample_tasks(path: str, benchmark: str) -> list[Task]:
    """Each completion in `path` as the canonical solution of its benchmark task."""
    tasks = {t.task_id: t for t in load_benchmark(benchmark)}
    out = []
    for line, rec in iter_jsonl(path):
        t = tasks[rec["task_id"]]
        out.append(replace(t, task_id=f"{t.task_id}#{line}", canonical_solution=rec["completion"],
                           extra=dict(t.extra)))
    return out


def timed(tasks: list[Task], workers: int, batched: bool) -> tuple[float, list[str | None]]:
    start = time.perf_counter()
    reasons = validation_reasons(tasks, workers, progress=False, batched=batched)
    return time.perf_counter() - start, reasons


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tasks", nargs="?", help="a task JSONL")
    p.add_argument("--samples", help="completions JSONL (task_id, completion)")
    p.add_argument("--benchmark", default="mbpp", help="whose tasks the samples complete")
    p.add_argument("--limit", type=int, default=0, help="only the first N tasks")
    p.add_argument("--workers", type=int, default=0)
    args = p.parse_args()
    if bool(args.tasks) == bool(args.samples):
        p.error("give a task file or --samples, not both")
    tasks = read_tasks(args.tasks) if args.tasks else sample_tasks(args.samples, args.benchmark)
    tasks = tasks[:args.limit] if args.limit else tasks
    print(f"{len(tasks)} tasks ({2 * len(tasks)} programs) from {args.tasks or args.samples}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    solo_s, solo = timed(tasks, args.workers, batched=False)
    print(f"one process per program: {solo_s:.1f} s ({2 * len(tasks) / solo_s:.0f} programs/s)",
          flush=True)
    batch_s, batch = timed(tasks, args.workers, batched=True)
    print(f"batched:                 {batch_s:.1f} s ({2 * len(tasks) / batch_s:.0f} programs/s)")
    differ = [(t.task_id, a, b) for t, a, b in zip(tasks, solo, batch) if a != b]
    print(f"ratio one-each/batched: {solo_s / batch_s:.2f}x (goal >= 5 on a task file)   tasks with a "
          f"different reason: {len(differ)} (goal 0)   load now {os.getloadavg()[0]:.1f}")
    for tid, a, b in differ[:10]:
        print(f"  {tid}: one each {a!r}, batched {b!r}")
    kept = Counter("valid" if r is None else r.split(": ", 1)[-1] for r in solo)
    print("verdicts (one each):", dict(kept.most_common(8)))
    print(json.dumps({"tasks": len(tasks), "solo_seconds": round(solo_s, 1),
                      "batched_seconds": round(batch_s, 1),
                      "ratio": round(solo_s / batch_s, 2), "differ": len(differ)}))
    return 0 if not differ else 1


if __name__ == "__main__":
    sys.exit(main())
