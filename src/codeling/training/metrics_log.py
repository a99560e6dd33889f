"""The metrics logger: `metrics.jsonl`, the optional loggers and the progress bar (rank 0).

A train line (every `log_every` steps and the last) holds step, loss (mean over ranks), lr,
grad_norm, tokens, tokens_per_s (since the last train line), elapsed_s; an eval adds its
fields to the line of its step; every line ends with the curriculum `phase`.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from codeling.config import TrainConfig
from codeling.io import JsonlAppender, iter_jsonl, write_jsonl


def drop_lines_after(run_dir: Path, step: int) -> None:
    """Drop lines a killed run logged after the checkpoint: they are about to be redone."""
    path = run_dir / "metrics.jsonl"
    if path.exists():
        write_jsonl(path, [r for _, r in iter_jsonl(path) if r.get("step", 0) <= step])


class MetricsLogger:
    def __init__(self, run_dir: Path, cfg: TrainConfig, main: bool, progress: bool,
                 step: int, tokens: int):
        self.every, self.steps = cfg.log_every, cfg.steps
        self.file = JsonlAppender(run_dir / "metrics.jsonl") if main else None
        from codeling.loggers import make_loggers  # optional TensorBoard/MLflow, off by default

        self.loggers = make_loggers(cfg, run_dir) if main else []
        self.bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step",
                        disable=not (main and progress), dynamic_ncols=True)
        self.t_last, self.tokens_last = time.perf_counter(), tokens

    def due(self, step: int) -> bool:
        return step % self.every == 0 or step == self.steps

    def train_line(self, step: int, loss: float, lr: float, grad_norm: float, tokens: int,
                   elapsed: float) -> dict:
        now = time.perf_counter()
        row = {"step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens": tokens,
               "tokens_per_s": (tokens - self.tokens_last) / max(now - self.t_last, 1e-9),
               "elapsed_s": round(elapsed, 3)}
        self.t_last, self.tokens_last = now, tokens
        self.bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}")
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
