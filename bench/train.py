"""Training tokens/s: codeling's loop against a nanoGPT-style loop and HF `Trainer`.

    .venv/bin/python bench/train.py [--preset cpu] [--seq-len 256] [--batch 16] [--steps 20]
                                    [--warmup 3] [--threads 2] [--device auto]

All three train the same shape (the preset's [model] section; HF gets the LlamaConfig our
checkpoints write) on the same random windows of a synthetic token shard, with AdamW, the same
batch and sequence length, on `--device` (auto: the GPU when there is one; bf16 autocast there
for all three, fp32 on CPU). Throughput counts the steps after `--warmup` untimed ones; each is
run `--rounds` times, interleaved, and its best round kept. Goals:
ours ≥ 1.0× the nanoGPT-style loop and ≥ 1.5× HF Trainer.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F

from codeling.checkpoint import hf_config
from codeling.config import load_config
from codeling.data import RandomWindows
from codeling.model import CodelingLM
from codeling.objectives import LMObjective
from codeling.train import read_metrics, resolve_device, seed_everything, train


def shard(vocab: int, n: int = 2_000_000) -> np.ndarray:
    return np.random.default_rng(0).integers(0, vocab, n).astype(np.uint16)


def bench_ours(args, model_cfg, data: np.ndarray) -> float:
    cfg = load_config(args.preset).pretrain
    cfg.steps, cfg.batch_size, cfg.seq_len = args.warmup + args.steps, args.batch, args.seq_len
    cfg.log_every, cfg.eval_every, cfg.save_every = args.warmup, 0, 0
    cfg.threads, cfg.device, cfg.warmup = args.threads, args.device, 2
    cfg.dtype = getattr(args, "dtype", cfg.dtype)  # bench/shape.py compares fp32 with bf16
    seed_everything(0)
    model = CodelingLM(model_cfg)
    with tempfile.TemporaryDirectory() as run_dir:
        train(model, LMObjective(), RandomWindows(data, args.batch, args.seq_len, seed=0), cfg,
              run_dir, progress=False)
        rows = [r for r in read_metrics(run_dir) if "loss" in r]
    # each log line's tokens/s covers the steps since the previous line; skip the warm-up line
    timed = [(b["tokens"] - a["tokens"], b["tokens_per_s"]) for a, b in pairwise(rows)]
    return sum(n for n, _ in timed) / sum(n / rate for n, rate in timed)


def bench_nanogpt(args, model_cfg, data: np.ndarray) -> float:
    """nanoGPT's train.py loop, stripped: get_batch, forward, CE, backward, clip, AdamW."""
    seed_everything(0)
    device = resolve_device(args.device)
    model = CodelingLM(model_cfg).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    # nanoGPT uses fused AdamW and bf16 autocast on CUDA only; on CPU torch's defaults
    cuda = device.type == "cuda"
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3,
                            betas=(0.9, 0.95), fused=cuda or None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    rng = np.random.default_rng(0)

    def get_batch():
        ix = rng.integers(0, len(data) - args.seq_len - 1, args.batch)
        rows = torch.from_numpy(data[ix[:, None] + np.arange(args.seq_len + 1)].astype(np.int64))
        if cuda:  # nanoGPT's pinned, non-blocking copy
            rows = rows.pin_memory().to(device, non_blocking=True)
        return rows[:, :-1], rows[:, 1:]

    t0 = 0.0
    for it in range(args.warmup + args.steps):
        if it == args.warmup:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x, y = get_batch()
        with autocast:
            logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
    return args.steps * args.batch * args.seq_len / (time.perf_counter() - t0)


def bench_hf_trainer(args, model_cfg, data: np.ndarray) -> float:
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    seed_everything(0)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in hf_config(model_cfg).items()
                                            if k != "codeling"}))
    rng = np.random.default_rng(0)
    n = (args.warmup + args.steps) * args.batch
    starts = rng.integers(0, len(data) - args.seq_len, n)

    class Windows(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            ids = torch.from_numpy(data[starts[i]:starts[i] + args.seq_len].astype(np.int64))
            return {"input_ids": ids, "labels": ids}  # the model shifts labels itself

    marks: dict[str, float] = {}
    cuda = resolve_device(args.device).type == "cuda"

    class Clock(TrainerCallback):
        def on_step_end(self, targs, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()  # the step's kernels, not just their launch
            if state.global_step == args.warmup:
                marks["start"] = time.perf_counter()
            marks["end"] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch,
            max_steps=args.warmup + args.steps, learning_rate=1e-3, warmup_steps=2,
            weight_decay=0.1, adam_beta2=0.95, max_grad_norm=1.0, logging_steps=10,
            save_strategy="no", report_to=[], dataloader_num_workers=0,
            use_cpu=not cuda, bf16=cuda,
            disable_tqdm=True, seed=0)
        Trainer(model=model, args=targs, train_dataset=Windows(), callbacks=[Clock()]).train()
    return args.steps * args.batch * args.seq_len / (marks["end"] - marks["start"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--rounds", type=int, default=2,
                   help="alternate the three this many times; keep each one's best (the least "
                        "disturbed by other load on a shared machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model_cfg = load_config(args.preset).model
    data = shard(model_cfg.vocab_size)
    n_params = CodelingLM(model_cfg).num_params()
    print(f"shape: preset {args.preset} ({n_params / 1e6:.2f}M params), batch {args.batch} × "
          f"seq {args.seq_len}, {args.steps} timed steps after {args.warmup}, "
          f"{args.threads} threads, device {resolve_device(args.device)}")
    results: dict[str, float] = {}
    for r in range(args.rounds):
        for name, fn in (("nanoGPT-style loop", bench_nanogpt), ("HF Trainer", bench_hf_trainer),
                         ("codeling train()", bench_ours)):
            rate = fn(args, model_cfg, data)
            results[name] = max(results.get(name, 0.0), rate)
            print(f"round {r + 1} {name:>20}: {rate:9.0f} tokens/s", flush=True)
    for name, rate in results.items():
        print(f"best {name:>20}: {rate:9.0f} tokens/s")
    ours = results["codeling train()"]
    print(f"ratio vs nanoGPT-style: {ours / results['nanoGPT-style loop']:.2f}x (goal >= 1.0)")
    print(f"ratio vs HF Trainer:    {ours / results['HF Trainer']:.2f}x (goal >= 1.5)")


if __name__ == "__main__":
    main()
