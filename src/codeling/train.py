"""THE training loop. Pretraining, SFT and distillation differ only in the objective and data.

    result = train(model, objective, train_data, cfg, run_dir, val_data=..., evaluator=...,
                   save_fn=..., load_fn=..., resume=..., tokenizer=..., config=...)

- `objective(model, batch) -> loss` and `objective.val_loss(model, batch)` (objectives.py).
- `train_data`: `next_batch()`, `state_dict()`, `load_state_dict()`, optional `set_phase(i)`
  (data.py). `val_data`: re-iterable batches; mean `val_loss` and `val_ppl` every `eval_every`.
- `evaluator(model, step) -> dict` (e.g. `codeling.evaluate.live.dev_evaluator`), called after
  val loss on rank 0; its `score` picks `checkpoints/best` and `best.json` (with
  `selected_on`), and `cfg.early_stop` evals without improvement end training
  (training/evals.py). Without an evaluator the best step is the lowest val loss.
- `save_fn(model, dir)` fills a checkpoint directory (default: HF weights + tokenizer; LoRA
  saves an adapter) and `load_fn(model, dir)` reads one back on resume (default: strict weights).
- Only parameters with `requires_grad` are optimised; 1-D parameters and embeddings get no
  weight decay.
- `cfg.time_budget_s` ends training when the loop's wall time (steps, evals and checkpoint
  writes, summed over resumes) reaches it, with the cosine annealed by then (optim.lr_at); the
  last step is logged, evaluated and saved as at `steps`, and `stopped` says "time_budget".

The run dir gets `config.toml` (when `config` is given), `metrics.jsonl`, `evals/`, and
`checkpoints/step_N/` (training/checkpoints.py), the newest `keep_checkpoints` kept, and
`checkpoints/final/` at the end. `resume=True` restarts from the newest `step_N`, bit-exact on
CPU, and drops the metrics lines and evals a killed run wrote after it. Under torchrun
(`init_distributed`) the model is wrapped in DDP, each rank draws its own rows of the global
batch and only rank 0 writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from codeling import checkpoint as ckpt
from codeling.config import Config, TrainConfig
from codeling.data import DeviceFeed
from codeling.io import iter_jsonl
from codeling.training.checkpoints import STATE_FORMAT, CheckpointKeeper
from codeling.training.dist import Dist, init_distributed, resolve_device
from codeling.training.evals import EvalScheduler
from codeling.training.flops import flops_per_token, peak_flops
from codeling.training.hardware import record_hardware, resolve_dtype
from codeling.training.metrics_log import MetricsLogger, drop_lines_after
from codeling.training.optim import (
    autocast_for,
    lr_at,
    make_optimizer,
    param_groups,
    phase_at,
)
from codeling.training.step import Counters, NaNGuard, Stepper, TrainingError, wrap

__all__ = ["STATE_FORMAT", "TrainResult", "TrainingError", "autocast_for", "init_distributed",
           "lr_at", "make_optimizer", "param_groups", "phase_at", "read_metrics",
           "resolve_device", "seed_everything", "train"]


# under DDP with a time budget, rank 0's clock is shared every this many steps (and on log,
# eval and save steps): the lr lags the clock by at most that, the stop comes at most that late
CLOCK_SYNC_EVERY = 8


@dataclass
class TrainResult:
    step: int  # optimizer steps completed
    stopped: str  # "done" | "early_stop" | "time_budget" | "paused"
    final_dir: Path | None  # checkpoints/final (rank 0), else None
    best: dict | None  # the content of best.json
    last_val: dict | None  # the last eval line


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(model: nn.Module, objective, train_data, cfg: TrainConfig, run_dir: str | Path, *,
          val_data=None, evaluator: Callable[[nn.Module, int], dict] | None = None,
          save_fn: Callable[[nn.Module, Path], None] | None = None,
          load_fn: Callable[[nn.Module, Path], object] | None = None, resume: bool = False,
          tokenizer=None, config: Config | None = None, progress: bool = True,
          pause_at_s: float = 0.0) -> TrainResult:
    """Train `model` in place for cfg.steps optimizer steps, or cfg.time_budget_s seconds.

    `pause_at_s` > 0 returns early, `stopped` "paused", once the loop's wall time (over resumes)
    reaches it: the step is saved and `resume=True` goes on as if never paused (the schedule
    still follows the whole budget). bench/speedrun.py interleaves its arms this way.

    Raises TrainingError on a non-finite loss and checkpoint.CheckpointError when the checkpoint
    to resume from is corrupt (never a silent fresh start).
    """
    # -- the parts --
    dist = Dist.start(cfg.device)
    device = resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)  # -1 ("auto"): measured below, with the dtype
    run_dir = Path(run_dir)
    raw = model.to(device)
    keeper = CheckpointKeeper(
        run_dir, raw, save_fn or (lambda m, d: ckpt.write_model_files(m, d, tokenizer)),
        load_fn or ckpt.load_weights, cfg.keep_checkpoints, cfg.save_every, dist)
    keeper.prepare(config)
    found = keeper.latest_state() if resume else None
    # dtype "auto" on CPU: measured on this machine at start-up, kept on resume (hardware.py)
    hardware = dist.from_main(resolve_dtype(
        cfg.dtype, device, raw, cfg.batch_size, cfg.seq_len,
        found[1].get("hardware") if found else None, cfg.threads) if dist.is_main else None)
    if hardware.get("threads") and cfg.threads < 0:
        torch.set_num_threads(int(hardware["threads"]))  # every rank, as the main one chose
    autocast = autocast_for(cfg, device, hardware["dtype"])
    opt = make_optimizer(raw, cfg, device)
    counters = Counters()
    feed = DeviceFeed(train_data, device)  # on CUDA: prefetched, pinned
    stepper = Stepper(wrap(raw, cfg, dist, device), objective, feed, opt, cfg, device,
                      autocast, dist, counters)
    evals = EvalScheduler(cfg, run_dir, raw, objective, val_data, evaluator, autocast, dist,
                          keeper, device)

    def trainer_state() -> dict:
        return {"step": counters.step, "optimizer": opt.state_dict(),
                "scheduler": {"kind": cfg.schedule, "step": counters.step},
                "rng": ckpt.rng_state(device), "data": feed.state_dict(),
                "tokens": counters.tokens, "elapsed": counters.elapsed, "wall": counters.wall,
                **evals.state_dict(), "world_size": dist.world, "hardware": hardware}

    # -- a fresh start or the newest checkpoint --
    if found is not None:
        path, state = found
        try:
            opt.load_state_dict(state["optimizer"])
            feed.load_state_dict(state["data"])
        except (KeyError, ValueError) as e:
            raise ckpt.CheckpointError(f"{path}: trainer state does not fit this run ({e})") from e
        if state.get("world_size", 1) != dist.world:
            print(f"warning: {path} was written with {state['world_size']} processes, resuming "
                  f"with {dist.world}: the data order will differ")
        ckpt.set_rng_state(state["rng"], device)
        counters.step, counters.tokens = state["step"], state["tokens"]
        counters.elapsed = state["elapsed"]
        counters.wall = state.get("wall", state["elapsed"])  # states from before the budget
        evals.load_state_dict(state)
        if dist.is_main:
            drop_lines_after(run_dir, counters.step)
            print(f"resumed from {path} at step {counters.step}")
        evals.drop_after(counters.step)
    else:
        keeper.refuse_existing()
        if dist.is_main:  # lines of a run killed before its first checkpoint
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    if dist.is_main:
        record_hardware(run_dir, hardware)

    # -- the loop --
    raw.train()
    guard = NaNGuard(dist, counters.step + 1, str(keeper.dir))
    log = MetricsLogger(run_dir, cfg, dist.is_main, progress, counters.step, counters.tokens,
                        device, flops_per_token(raw, cfg.seq_len),
                        peak_flops(device, cfg.peak_flops), dist.world)
    stopped = "done"
    budget = cfg.time_budget_s
    wall0, clock0 = counters.wall, time.perf_counter()

    def out_of_time() -> bool:
        return budget > 0 and counters.wall >= budget

    def paused() -> bool:
        return pause_at_s > 0 and counters.wall >= pause_at_s

    try:
        while counters.step < cfg.steps and not out_of_time() and not paused():
            phase = stepper.set_phase()
            t0 = time.perf_counter()
            loss, norm = stepper.step()
            guard.add(loss)
            step = counters.step
            due = log.due(step) or keeper.due(step) or evals.due(step) or step >= cfg.steps
            if dist.world == 1 or budget <= 0:
                counters.wall = wall0 + time.perf_counter() - clock0
            elif due or step % CLOCK_SYNC_EVERY == 0:
                # rank 0's clock, every few steps and where the step is due anyway: the same lr
                # and the same stop on every rank, without a collective on every step
                counters.wall = dist.main_float(wall0 + time.perf_counter() - clock0, device)
            last = step >= cfg.steps or out_of_time()
            is_log, is_save = log.due(step) or last, keeper.due(step)
            is_eval = evals.due(step) or (last and evals.every > 0)
            if is_log or is_eval or is_save:
                guard.check()
            counters.elapsed += time.perf_counter() - t0
            row: dict = {}
            if is_log:
                row = log.train_line(step, dist.mean(loss).item(), stepper.lr,
                                     norm.item(), counters.tokens, counters.elapsed)
            early = False
            if is_eval:
                t0 = time.perf_counter()
                val, early = evals.run(step, final=last)
                counters.elapsed += time.perf_counter() - t0
                log.exclude(time.perf_counter() - t0)
                row.update(step=step, **val)
            log.write(row, step, phase)
            if is_save or early:
                t0 = time.perf_counter()
                keeper.save_step(step, trainer_state())
                log.exclude(time.perf_counter() - t0)
            if early:
                stopped = "early_stop"
                print(f"early stop at step {step}: {evals.early_stop} evals without improvement")
                break
        if stopped == "done" and counters.step < cfg.steps and out_of_time():
            stopped = "time_budget"
            if dist.is_main:
                print(f"time budget of {budget:g} s spent at step {counters.step} of {cfg.steps}")
        elif stopped == "done" and counters.step < cfg.steps and paused():
            stopped = "paused"
    finally:
        log.close()

    # -- the end: a resumable last step and checkpoints/final --
    guard.check()
    if not keeper.has_step(counters.step):
        keeper.save_step(counters.step, trainer_state())
    if stopped == "paused":
        return TrainResult(counters.step, stopped, None, evals.best, evals.last)
    final = keeper.save_final()
    return TrainResult(counters.step, stopped, final, evals.best, evals.last)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The metrics.jsonl lines of a run, in order."""
    return [r for _, r in iter_jsonl(Path(run_dir) / "metrics.jsonl")]
