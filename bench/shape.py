"""Pretraining tokens/s by model shape at (about) equal parameters, and by compute dtype.

    .venv/bin/python bench/shape.py [--preset cpu] [--shapes 6x256,3x352,...] [--steps 20]
                                    [--warmup 3] [--threads 2] [--rounds 2] [--dtypes fp32,bf16]

Baseline: the preset's own [model] shape in fp32, measured in the same run. Every other shape keeps the
preset's vocabulary, head count and tied embeddings and changes only n_layer x d_model, so the
parameter counts stay within ~10% of the baseline's (printed). Each shape trains with codeling's
own loop (bench/train.py's `bench_ours`: same batch, sequence length and optimiser) on the same
random windows; the shapes alternate `--rounds` times and each keeps its best round (the least
disturbed by other load). The ratio is tokens/s against the baseline: on 2 CPU cores a
pretraining hour is throughput-bound, so a shape that trains faster at equal parameters sees
more tokens in the same minutes. Whether those tokens are worth as much is a separate question
(val loss at equal wall time: docs/RESULTS.md). `--dtypes fp32,bf16` also times each shape
under bf16 autocast (`pretrain.dtype=bf16`; fp32 master weights): on a CPU with AMX or
AVX512-BF16 the matmuls run in bf16.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from codeling.config import load_config
from codeling.model import CodelingLM

sys.path.insert(0, str(Path(__file__).parent))
from train import bench_ours, shard  # bench/train.py: the training loop's own benchmark

DEFAULT_SHAPES = "6x256,2x416,3x352,4x304,8x224,12x176"


def parse_shapes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        try:
            layers, width = part.lower().split("x")
            out.append((int(layers), int(width)))
        except ValueError:
            raise SystemExit(f"--shapes: {part!r} is not LAYERSxD_MODEL (e.g. 3x352)") from None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--shapes", default=DEFAULT_SHAPES,
                   help="comma-separated LAYERSxD_MODEL; the preset's own shape is always first")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dtypes", default="fp32", help="comma-separated: fp32, bf16")
    args = p.parse_args()
    dtypes = args.dtypes.split(",")
    if bad := [d for d in dtypes if d not in ("fp32", "bf16")]:
        raise SystemExit(f"--dtypes: {bad} (valid: fp32, bf16)")
    torch.set_num_threads(args.threads)
    base = load_config(args.preset).model
    shapes = [(base.n_layer, base.d_model)]
    shapes += [s for s in parse_shapes(args.shapes) if s != shapes[0]]
    for _, width in shapes:
        if width % base.n_head:
            raise SystemExit(f"--shapes: d_model {width} is not a multiple of n_head {base.n_head}")
    cfgs = {s: dataclasses.replace(base, n_layer=s[0], d_model=s[1]) for s in shapes}
    data = shard(base.vocab_size)
    print(f"preset {args.preset}, dtypes {dtypes}, batch {args.batch} x seq {args.seq_len}, {args.steps} timed "
          f"steps after {args.warmup}, {args.threads} threads, best of {args.rounds} rounds")
    best: dict[tuple[int, int, str], float] = {}
    for r in range(args.rounds):
        for s, cfg in cfgs.items():
            for args.dtype in dtypes:
                rate = bench_ours(args, cfg, data)
                key = (*s, args.dtype)
                best[key] = max(best.get(key, 0.0), rate)
                print(f"round {r + 1} {s[0]:>2} x {s[1]:<4} {args.dtype}: {rate:8.0f} tokens/s",
                      flush=True)
    ref = best[(*shapes[0], dtypes[0])]
    print(f"\n{'shape':>10} {'dtype':>5} {'params':>8} {'ffn':>5} {'tokens/s':>9} {'vs baseline':>12}")
    for s, cfg in cfgs.items():
        n = CodelingLM(cfg).num_params()
        for d in dtypes:
            tag = "  (baseline: the preset)" if (s, d) == (shapes[0], dtypes[0]) else ""
            rate = best[(*s, d)]
            print(f"{s[0]:>4} x {s[1]:<4} {d:>5} {n / 1e6:7.2f}M {cfg.ffn_dim:>5} {rate:9.0f} "
                  f"{rate / ref:11.2f}x{tag}")


if __name__ == "__main__":
    main()
