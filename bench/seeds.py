"""A recipe under K seeds at a reduced budget: each seed's dev pass rate, their mean ± se.

Runs `codeling sft` once per seed (`sft.seed=S`) on one pretrained checkpoint and one task
build, so only training randomness (initial LoRA weights where used, batch order, dropout)
differs; with `--corpus` and `--tokenizer` each seed also pretrains its own base
(`pretrain.seed=S`) first. Budgets are cut by overrides (e.g. `sft.time_budget_s=120`). Then the
runs are read back as one recipe (reporting/compare.py): the mean dev pass rate of the selected
checkpoints, the seed-to-seed standard deviation and the standard error of the mean (seed spread
plus each run's own error over tasks). Compare two recipes' folders with
`codeling runs OUT_A OUT_B --compare` (a difference under 2 standard errors reads "tie").

    .venv/bin/python bench/seeds.py --out runs/seeds/cpu --preset cpu --seeds 3 \\
        --init runs/cpu/pretrain/checkpoints/final --tasks runs/cpu/tasks \\
        sft.time_budget_s=300 sft.eval_every=200
    .venv/bin/python bench/seeds.py --out runs/seeds/smoke --preset smoke --seeds 3 \\
        --corpus runs/smoke/corpus --tokenizer runs/smoke/tokenizer --tasks runs/smoke/tasks

A seed whose run folder already finished is not run again (the folder is read as it is).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from codeling.reporting.compare import format_comparison, recipe
from codeling.runs import collect_runs

CLI = [sys.executable, "-m", "codeling.cli"]


def run(cmd: list[str]) -> float:
    """Run one stage command; its wall seconds. A failure stops the bench with its exit code."""
    t0 = time.perf_counter()
    print("$", " ".join(cmd[2:]), flush=True)
    rc = subprocess.call(cmd)
    if rc:
        raise SystemExit(f"failed (exit {rc}): {' '.join(cmd)}")
    return time.perf_counter() - t0


def seed_run(args: argparse.Namespace, seed: int) -> float:
    """Pretrain (when asked) and tune one seed into OUT/seed_S; its wall seconds."""
    out = args.out / f"seed_{seed}"
    preset = ["--preset", args.preset] if args.preset else []
    spent, init = 0.0, args.init
    if args.corpus:
        base = out / "pretrain"
        if not (base / "checkpoints" / "final").is_dir():
            spent += run([*CLI, "pretrain", *preset, "--run-dir", str(base), "--corpus",
                          str(args.corpus), "--tokenizer", str(args.tokenizer), "--no-progress",
                          f"pretrain.seed={seed}", *args.overrides])
        init = base / "checkpoints" / "final"
    sft = out / "sft"
    if not (sft / "checkpoints" / "final").is_dir():
        spent += run([*CLI, "sft", *preset, "--init", str(init), "--tasks", str(args.tasks),
                      "--run-dir", str(sft), "--no-progress", f"sft.seed={seed}",
                      *args.overrides])
    return spent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="one folder per seed goes here")
    p.add_argument("--preset", default="")
    p.add_argument("--seeds", type=int, default=3, help="K: seeds 0..K-1")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--tasks", type=Path, required=True, help="a `codeling tasks` folder")
    p.add_argument("--init", type=Path, help="the pretrained checkpoint every seed tunes")
    p.add_argument("--corpus", type=Path, help="pretrain each seed too, on this corpus ...")
    p.add_argument("--tokenizer", type=Path, help="... with this tokenizer")
    p.add_argument("--metric", default="dev", help="dev, or a benchmark evaluated in the runs")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="reduced budgets and the recipe's own keys, e.g. sft.time_budget_s=120")
    args = p.parse_args()
    if not args.init and not (args.corpus and args.tokenizer):
        p.error("give --init CKPT, or --corpus and --tokenizer to pretrain each seed")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    walls = [seed_run(args, s) for s in seeds]
    runs = collect_runs([args.out / f"seed_{s}" for s in seeds])
    rec = recipe(str(args.out), [r for r in runs if r.stage == "sft"], args.metric)
    if rec is None:
        raise SystemExit(f"no sft run under {args.out} has a {args.metric} pass rate")
    for r in runs:
        if r.stage == "sft":
            print(f"{r.name}: dev {r.dev_pass}/{r.dev_n} at step {r.selected_step}, "
                  f"solution loss {r.solution_loss}")
    print(format_comparison([rec], args.metric))
    print(f"wall: {sum(walls):.0f} s for {len(walls)} seed(s) run now "
          f"({', '.join(f'{w:.0f}' for w in walls)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
