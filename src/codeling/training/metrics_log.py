"""The metrics logger: `metrics.jsonl`, the optional loggers and the progress bar (rank 0).

A train line (every `log_every` steps and the last) holds step, loss (mean over ranks), lr,
grad_norm, tokens (real tokens, padding excluded, all ranks), tokens_per_s (since the last train
line, the time of evals and checkpoint writes excluded), mfu (model FLOPs utilisation, null
when the device's peak is unknown), peak_mem_mb (CUDA: peak allocated on the device; CPU: the
process's peak resident set), elapsed_s; an eval adds its fields to the line of its step; every
line ends with the curriculum `phase`. training/flops.py documents the FLOPs formula.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm import tqdm

from codeling.config import TrainConfig
from codeling.io import JsonlAppender, iter_jsonl, write_jsonl
from codeling.training.flops import mfu, peak_memory_mb


def drop_lines_after(run_dir: Path, step: int) -> None:
    """Drop lines a killed run logged after the checkpoint: they are about to be redone."""
    path = run_dir / "metrics.jsonl"
    if path.exists():
        write_jsonl(path, [r for _, r in iter_jsonl(path) if r.get("step", 0) <= step])


class MetricsLogger:
    def __init__(self, run_dir: Path, cfg: TrainConfig, main: bool, progress: bool,
                 step: int, tokens: int, device: torch.device | None = None,
                 flops_per_token: int | None = None, peak_flops: float | None = None,
                 world: int = 1):
        self.every, self.steps = cfg.log_every, cfg.steps
        self.file = JsonlAppender(run_dir / "metrics.jsonl") if main else None
        from codeling.loggers import make_loggers  # optional TensorBoard/MLflow, off by default

        self.loggers = make_loggers(cfg, run_dir) if main else []
        self.bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step",
                        disable=not (main and progress), dynamic_ncols=True)
        self.t_last, self.tokens_last = time.perf_counter(), tokens
        self.excluded = 0.0  # seconds of evals and saves since the last train line
        self.device = device or torch.device("cpu")
        self.flops_per_token, self.peak_flops, self.world = flops_per_token, peak_flops, world

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.steps

    def exclude(self, seconds: float) -> None:
        """Time spent on an eval or a checkpoint write: not part of the next tokens_per_s."""
        self.excluded += seconds

    def train_line(self, step: int, loss: float, lr: float, grad_norm: float, tokens: int,
                   elapsed: float) -> dict:
        now = time.perf_counter()
        rate = (tokens - self.tokens_last) / max(now - self.t_last - self.excluded, 1e-9)
        util = mfu(rate, self.flops_per_token, self.peak_flops, self.world)
        mem = peak_memory_mb(self.device)
        row = {"step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens": tokens,
               "tokens_per_s": rate, "mfu": None if util is None else round(util, 4),
               "peak_mem_mb": round(mem, 1), "elapsed_s": round(elapsed, 3)}
        self.t_last, self.tokens_last, self.excluded = now, tokens, 0.0
        shown = {"loss": f"{loss:.3f}", "lr": f"{lr:.2e}", "tok/s": f"{rate:,.0f}"}
        if util is not None:
            shown["mfu"] = f"{util:.1%}"
        self.bar.set_postfix(**shown, mem=f"{mem / 1024:.2f}G")
        return row

    def write(self, row: dict, step: int, phase: int) -> None:
        if row:
            row["phase"] = phase
            if self.file is not None:
                self.file.write(row)
            for lg in self.loggers:
                lg.log(row, step)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        if self.file is not None:
            self.file.close()
        for lg in self.loggers:
            lg.close()
