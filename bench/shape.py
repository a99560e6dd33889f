"""Pretraining tokens/s by model shape at (about) equal parameters, and by compute dtype.

    .venv/bin/python bench/shape.py [--preset cpu] [--shapes 6x256,3x352,...] [--steps 20]
                                    [--warmup 3] [--threads 1,2] [--rounds 2] [--dtypes fp32,bf16]
                                    [--batch-seq 16x256,32x128,8x512]

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

`--threads 1,2` and `--batch-seq BxT,...` (batch x sequence length, best at equal tokens per
step) add those axes. Every row also gives its achieved FLOP/s (tokens/s x FLOPs per token,
training/flops.py) against this CPU's matmul peak in the same dtype and thread count, measured
here (the best of a few 1024x1024 matmuls): the share of the peak is the headroom left to a
better step.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from codeling.config import load_config
from codeling.model import CodelingLM
from codeling.training.flops import flops_per_token
from codeling.training.hardware import cpu_info

sys.path.insert(0, str(Path(__file__).parent))
from train import bench_ours, shard  # bench/train.py: the training loop's own benchmark

DEFAULT_SHAPES = "6x256,2x416,3x352,4x304,8x224,12x176"


def matmul_peak(dtype: str, threads: int, n: int = 1024, reps: int = 5) -> float:
    """FLOP/s of the best of `reps` n x n matmuls in `dtype` on `threads` threads."""
    torch.set_num_threads(threads)
    kind = torch.bfloat16 if dtype == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=kind), torch.randn(n, n, dtype=kind)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def parse_pairs(text: str, what: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        try:
            x, y = part.lower().split("x")
            out.append((int(x), int(y)))
        except ValueError:
            raise SystemExit(f"{what}: {part!r} is not AxB (e.g. 16x256)") from None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--shapes", default=DEFAULT_SHAPES,
                   help="comma-separated LAYERSxD_MODEL; the preset's own shape is always first")
    p.add_argument("--batch-seq", default="16x256",
                   help="comma-separated BATCHxSEQ_LEN; the first is the baseline's")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", default="2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dtypes", default="fp32", help="comma-separated: fp32, bf16")
    args = p.parse_args()
    args.device = "cpu"
    dtypes = args.dtypes.split(",")
    if bad := [d for d in dtypes if d not in ("fp32", "bf16")]:
        raise SystemExit(f"--dtypes: {bad} (valid: fp32, bf16)")
    threads = [int(t) for t in args.threads.split(",")]
    batch_seqs = parse_pairs(args.batch_seq, "--batch-seq")
    base = load_config(args.preset).model
    shapes = [(base.n_layer, base.d_model)]
    shapes += [s for s in parse_pairs(args.shapes, "--shapes") if s != shapes[0]]
    for _, width in shapes:
        if width % base.n_head:
            raise SystemExit(f"--shapes: d_model {width} is not a multiple of n_head {base.n_head}")
    cfgs = {s: dataclasses.replace(base, n_layer=s[0], d_model=s[1]) for s in shapes}
    data = shard(base.vocab_size)
    cpu = cpu_info()
    print(f"preset {args.preset}; {cpu['name']} ({', '.join(cpu['flags'])}), {cpu['cores']} "
          f"cores; dtypes {dtypes}, threads {threads}, batch x seq {batch_seqs}; {args.steps} "
          f"timed steps after {args.warmup}, best of {args.rounds} rounds")
    runs = [(s, d, t, bs) for s in shapes for bs in batch_seqs for t in threads for d in dtypes]
    best: dict[tuple, float] = {}
    peak: dict[tuple[str, int], float] = {}
    for r in range(args.rounds):
        for t in threads:
            for d in dtypes:
                peak[(d, t)] = max(peak.get((d, t), 0.0), matmul_peak(d, t))
                print(f"round {r + 1} matmul peak {d} {t} threads: {peak[(d, t)] / 1e9:.1f} "
                      "GFLOP/s", flush=True)
        for key in runs:
            (layers, width), args.dtype, args.threads, (args.batch, args.seq_len) = key
            rate = bench_ours(args, cfgs[(layers, width)], data)
            best[key] = max(best.get(key, 0.0), rate)
            print(f"round {r + 1} {layers:>2} x {width:<4} {args.dtype} {args.threads}t "
                  f"{args.batch}x{args.seq_len}: {rate:8.0f} tokens/s", flush=True)
    ref = best[runs[0]]
    print(f"\n{'shape':>10} {'dtype':>5} {'thr':>3} {'BxT':>7} {'params':>8} {'tokens/s':>9} "
          f"{'vs base':>8} {'GFLOP/s':>8} {'of peak':>8}")
    for key in runs:
        (layers, width), d, t, (b, seq) = key
        model = CodelingLM(cfgs[(layers, width)])
        achieved = best[key] * flops_per_token(model, seq)
        tag = "  (baseline: the preset)" if key == runs[0] else ""
        print(f"{layers:>4} x {width:<4} {d:>5} {t:>3} {f'{b}x{seq}':>7} "
              f"{model.num_params() / 1e6:7.2f}M {best[key]:9.0f} {best[key] / ref:7.2f}x "
              f"{achieved / 1e9:8.1f} {achieved / peak[(d, t)]:7.0%}{tag}")
    print("\nmatmul peak (1024x1024): " + ", ".join(
        f"{d} {t} threads {v / 1e9:.1f} GFLOP/s" for (d, t), v in sorted(peak.items())))


if __name__ == "__main__":
    main()
