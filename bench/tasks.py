"""Cost of the behavioural twin check in `codeling tasks`.

Baseline: the same build (`--sources mbpp,synthetic --n N`, same seed, same dev split, the
n-gram decontamination) with the twin check off, measured in the same run. Prints both wall
times, their ratio (goal: at most 1.25x), the twin check's own time and, from the report, how
many tasks of each evaluation set had a behavioural twin in the generated data before it was
dropped, and how many training tasks were dropped for it.

    .venv/bin/python bench/tasks.py [--n 20000] [--seed 0] [--workers N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from codeling.tasks.build import build_tasks


def one(out: Path, n: int, seed: int, workers: int, twin_check: bool) -> tuple[float, dict]:
    start = time.perf_counter()
    report = build_tasks(out, ["mbpp", "synthetic"], n=n, seed=seed, workers=workers,
                         progress=False, twin_check=twin_check)
    return time.perf_counter() - start, report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--out", default=None, help="keep both builds here (default: a temp dir)")
    args = p.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="bench-tasks-"))
    print(f"codeling tasks --sources mbpp,synthetic --n {args.n} (seed {args.seed}), "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    off_s, off = one(root / "off", args.n, args.seed, args.workers, twin_check=False)
    print(f"twin check off: {off_s:.1f} s  train {off['n_train']} val {off['n_val']} "
          f"dev {off['n_dev']}", flush=True)
    on_s, on = one(root / "on", args.n, args.seed, args.workers, twin_check=True)
    tc = on["twin_check"]
    print(f"twin check on:  {on_s:.1f} s  train {on['n_train']} val {on['n_val']} "
          f"dev {on['n_dev']}  (the check itself {tc['seconds']} s, {tc['distinct_functions']} "
          f"distinct functions, {tc['programs']} sandbox programs)")
    print(f"ratio on/off: {on_s / off_s:.3f}  (goal <= 1.25)  load now "
          f"{os.getloadavg()[0]:.1f}")
    print("behavioural twins in the generated data (before dropping):")
    for name, t in on["twins"].items():
        print(f"  {name:11s} eval tasks with a twin {t['eval_tasks_with_twin']:4d}   "
              f"training tasks dropped {t['train_tasks_dropped']:6d}   "
              f"e.g. {', '.join(t['examples']['eval_tasks'][:6])}")
    print(f"unjudgeable eval tasks {tc['unjudgeable']}, harness-breaking tasks "
          f"{len(tc['broke_harness'])}, sandbox errors {tc['sandbox_errors']}")
    summary = {"n": args.n, "seed": args.seed, "off_seconds": round(off_s, 1),
               "on_seconds": round(on_s, 1), "ratio": round(on_s / off_s, 3), "twin_check": tc,
               "twins": {k: {f: v[f] for f in ("eval_tasks_with_twin", "train_tasks_dropped")}
                         for k, v in on["twins"].items()}}
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
