"""SFT step cost: autocast dtype and batch-width rounding (`sft.pad_multiple`) on real tasks.

Baseline: fp32 with each batch padded to its longest example (`pad_multiple=1`, the `cpu`
preset before this bench), measured in the same run. Every setting trains the same model from
the same checkpoint on the same batches (same seed) through codeling's loop; each is run
`--rounds` times, interleaved, and its best round kept. Prints seconds per step, solution-and-
prompt tokens per second (padding not counted) and the ratio to the baseline. Exact widths
change nearly every step, rounded ones are a handful of shapes. Short runs mislead: bf16 with
exact widths slows down over a whole run (docs/RESULTS.md runs 19-20), so use --steps of a few
hundred, and --rounds > 1 on a machine whose speed moves.

    .venv/bin/python bench/sft_speed.py --init runs/cpu/pretrain/checkpoints/final \\
        --tasks runs/cpu/data/tasks [--settings fp32:1,bf16:1,bf16:64] [--steps 80]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from codeling.checkpoint import load_model
from codeling.config import load_config
from codeling.objectives import LMObjective
from codeling.sft import task_data
from codeling.tokenizer import load_tokenizer
from codeling.train import read_metrics, seed_everything, train


def one(args, dtype: str, multiple: int) -> tuple[float, float]:
    """(seconds per timed step, real tokens per second)."""
    tc = load_config(args.preset).sft
    tc.steps, tc.log_every, tc.eval_every, tc.save_every = args.warmup + args.steps, 1, 0, 0
    tc.dtype, tc.pad_multiple, tc.threads, tc.device = dtype, multiple, args.threads, "cpu"
    tokenizer = load_tokenizer(args.init)
    batches = task_data(Path(args.tasks), tokenizer, tc)[0]
    real = []
    orig = batches.next_batch

    def counted():
        b = orig()
        real.append(int((b["input_ids"] != tokenizer.pad_id).sum()))
        return b

    batches.next_batch = counted
    seed_everything(0)
    model = load_model(args.init)
    with tempfile.TemporaryDirectory() as run_dir:
        train(model, LMObjective(), batches, tc, run_dir, progress=False, tokenizer=tokenizer)
        rows = [r for r in read_metrics(run_dir) if "loss" in r]
    t0 = next(r["elapsed_s"] for r in rows if r["step"] == args.warmup)
    seconds = rows[-1]["elapsed_s"] - t0
    return seconds / args.steps, sum(real[args.warmup:]) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", required=True, help="a pretrained checkpoint")
    p.add_argument("--tasks", required=True, help="a `codeling tasks` folder")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--settings", default="fp32:1,bf16:1,bf16:64,bf16:32,fp32:64",
                   help="dtype:pad_multiple, comma-separated; the first is the baseline")
    p.add_argument("--steps", type=int, default=80, help="timed steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    settings = [(d, int(m)) for d, m in (s.split(":") for s in args.settings.split(","))]
    best: dict[tuple[str, int], tuple[float, float]] = {}
    for r in range(args.rounds):
        for s in settings:
            got = one(args, *s)
            print(f"round {r + 1} {s[0]} pad {s[1]:3d}: {got[0]:.3f} s/step, "
                  f"{got[1]:,.0f} tokens/s", flush=True)
            if s not in best or got[0] < best[s][0]:
                best[s] = got
    base = best[settings[0]][0]
    print(f"{args.steps} steps after {args.warmup}, batch {load_config(args.preset).sft.batch_size},"
          f" {args.threads} threads, torch {torch.__version__}; best of {args.rounds}:")
    for s in settings:
        sps, tps = best[s]
        print(f"  {s[0]} pad_multiple={s[1]:3d}: {sps:.3f} s/step  {tps:,.0f} tokens/s  "
              f"{base / sps:.2f}x the baseline's speed")


if __name__ == "__main__":
    main()
