"""THE training loop. Pretraining, SFT and distillation differ only in the objective and data.

    result = train(model, objective, train_data, cfg, run_dir, val_data=..., evaluator=...,
                   save_fn=..., load_fn=..., resume=..., tokenizer=..., config=...)

- `objective(model, batch) -> loss` and `objective.val_loss(model, batch)` (objectives.py).
- `train_data`: `next_batch()`, `state_dict()`, `load_state_dict()`, optional `set_phase(i)`
  (data.py). `val_data`: re-iterable batches; mean `val_loss` and `val_ppl` every `eval_every`.
- `evaluator(model, step) -> dict`, called after val loss on rank 0; scalars join the metrics
  line and the whole dict goes to `evals/step_N.json`. A `score` key (higher is better) picks
  the best step; without an evaluator the score is −val_loss. The best weights are copied to
  `checkpoints/best/` with `best.json` (step, score, metrics) beside them in the run dir, and
  `cfg.early_stop` evals without improvement end training.
- `save_fn(model, dir)` fills a checkpoint directory (default: HF weights + tokenizer; LoRA
  saves an adapter) and `load_fn(model, dir)` reads one back on resume (default: strict weights).
- Only parameters with `requires_grad` are optimised; 1-D parameters and embeddings get no
  weight decay.

The run dir gets `config.toml` (when `config` is given), `metrics.jsonl` and
`checkpoints/step_N/` (weights + `trainer_state.pt`: optimizer, schedule, step, every RNG state,
data position, best-so-far), the newest `keep_checkpoints` kept, and `checkpoints/final/` at the
end. `resume=True` restarts from the newest `step_N`, bit-exact on CPU, and drops the metrics
lines a killed run wrote after it. Under torchrun (`init_distributed`) the model is wrapped in
DDP, each rank draws its own rows of the global batch and only rank 0 writes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from codeling import checkpoint as ckpt
from codeling.config import Config, TrainConfig, save_config
from codeling.io import JsonlAppender, atomic_write_json, iter_jsonl, write_jsonl

STATE_FORMAT = 1


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is left as it was."""


@dataclass
class TrainResult:
    step: int  # optimizer steps completed
    stopped: str  # "done" | "early_stop"
    final_dir: Path | None  # checkpoints/final (rank 0), else None
    best: dict | None  # the content of best.json
    last_val: dict | None  # the last eval line


# ---- process group, device, seeds ----

def init_distributed() -> tuple[int, int]:
    """(rank, world). Starts the process group when launched by torchrun (gloo CPU, nccl CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_for(cfg: TrainConfig, device: torch.device):
    """bf16 autocast on CUDA by default (dtype=auto), opt-in on CPU (dtype=bf16)."""
    want = cfg.dtype
    if want == "auto":
        want = "bf16" if device.type == "cuda" else "fp32"
    if want == "fp32":
        return nullcontext()
    if want != "bf16":
        raise ValueError(f"train dtype must be auto, fp32 or bf16, got {cfg.dtype!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16)


# ---- optimizer and schedule ----

def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters only; no decay on 1-D tensors (norms, biases) or embeddings."""
    decay, no_decay, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))  # tied weights are one parameter
        (no_decay if p.dim() < 2 or "embed" in name else decay).append(p)
    if not decay and not no_decay:
        raise ValueError("no parameter requires grad: nothing to train")
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device):
    # fused AdamW on CUDA and CPU alike (measured here on CPU, 7M params: 6 ms a step against
    # 26 ms for the default loop and 44 ms for foreach)
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                             betas=(cfg.beta1, cfg.beta2), fused=device.type in ("cpu", "cuda"))


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine down to lr·min_lr_ratio at cfg.steps."""
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    progress = min(max(step - cfg.warmup, 0) / span, 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def phase_at(step: int, curriculum: list[dict]) -> int:
    """Index of the curriculum phase for `step` (the last phase continues past its end)."""
    end = 0
    for i, phase in enumerate(curriculum):
        end += int(phase.get("steps", 0))
        if step < end:
            return i
    return max(len(curriculum) - 1, 0)


# ---- the loop ----

class _Run:
    """The state of one training run; `train()` below is the public entry point."""

    def __init__(self, model, objective, train_data, cfg: TrainConfig, run_dir, *, val_data,
                 evaluator, save_fn, load_fn, tokenizer, config, progress):
        self.rank, self.world = init_distributed()
        self.device = resolve_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.raw = model.to(self.device)
        self.objective, self.train_data, self.val_data = objective, train_data, val_data
        self.evaluator = evaluator
        self.save_fn = save_fn or (lambda m, d: ckpt.write_model_files(m, d, tokenizer))
        self.load_fn = load_fn or ckpt.load_weights
        self.tokenizer, self.config, self.progress = tokenizer, config, progress
        self.model = self.raw
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.raw, device_ids=ids)
        if cfg.compile:
            self.model = torch.compile(self.model)
        self.opt = make_optimizer(self.raw, cfg, self.device)
        self.autocast = autocast_for(cfg, self.device)
        self.step, self.tokens, self.elapsed = 0, 0, 0.0
        self.best: dict | None = None
        self.evals_since_best = 0
        self.last_val: dict | None = None
        self.phase = -1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- checkpoints --

    def trainer_state(self) -> dict:
        return {"format": STATE_FORMAT, "step": self.step, "optimizer": self.opt.state_dict(),
                "scheduler": {"kind": "warmup_cosine", "step": self.step},
                "rng": ckpt.rng_state(), "data": self.train_data.state_dict(),
                "tokens": self.tokens, "elapsed": self.elapsed, "best": self.best,
                "evals_since_best": self.evals_since_best, "world_size": self.world}

    def save_step(self) -> None:
        state = self.trainer_state()  # every rank's RNG/data state is the same by design
        if self.is_main:
            def fill(tmp: Path) -> None:
                self.save_fn(self.raw, tmp)
                ckpt.save_trainer_state(tmp, state)

            ckpt.write_dir_atomically(self.ckpt_dir / f"step_{self.step}", fill)
            ckpt.prune_checkpoints(self.ckpt_dir, self.cfg.keep_checkpoints)
        self.barrier()

    def resume(self) -> bool:
        if self.is_main:
            ckpt.remove_partial_dirs(self.ckpt_dir)
        self.barrier()
        path = ckpt.latest_checkpoint(self.ckpt_dir)
        if path is None:
            return False
        state = ckpt.load_trainer_state(path)
        self.load_fn(self.raw, path)
        try:
            self.opt.load_state_dict(state["optimizer"])
            self.train_data.load_state_dict(state["data"])
        except (KeyError, ValueError) as e:
            raise ckpt.CheckpointError(f"{path}: trainer state does not fit this run ({e})") from e
        if state.get("world_size", 1) != self.world:
            print(f"warning: {path} was written with {state['world_size']} processes, resuming "
                  f"with {self.world}: the data order will differ")
        ckpt.set_rng_state(state["rng"])
        self.step, self.tokens, self.elapsed = state["step"], state["tokens"], state["elapsed"]
        self.best, self.evals_since_best = state["best"], state["evals_since_best"]
        if self.is_main:
            self._truncate_metrics()
            print(f"resumed from {path} at step {self.step}")
        return True

    def _truncate_metrics(self) -> None:
        """Drop lines a killed run logged after the checkpoint: they are about to be redone."""
        path = self.run_dir / "metrics.jsonl"
        if path.exists():
            write_jsonl(path, [r for _, r in iter_jsonl(path) if r.get("step", 0) <= self.step])
        evals = self.run_dir / "evals"
        for f in evals.glob("step_*.json") if evals.is_dir() else ():
            if int(f.stem.split("_")[1]) > self.step:
                f.unlink()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_mean(self, x: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            x = x.clone()
            dist.all_reduce(x)
            x /= self.world
        return x

    # -- one optimizer step --

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Accumulate grad_accum micro-batches and update; returns (loss, grad norm) tensors."""
        cfg = self.cfg
        lr = lr_at(self.step, cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.device)
        tokens = 0
        for micro in range(cfg.grad_accum):
            batch = {k: v.to(self.device, non_blocking=True)
                     for k, v in self.train_data.next_batch().items()}
            last = micro == cfg.grad_accum - 1
            # DDP all-reduces gradients only on the last micro-batch of the step
            sync = nullcontext() if last or self.world == 1 else self.model.no_sync()
            with sync:
                with self.autocast:
                    loss = self.objective(self.model, batch) / cfg.grad_accum
                loss.backward()
            total += loss.detach()
            tokens += batch["input_ids"].numel() * self.world  # shape only: no host sync
        params = [p for g in self.opt.param_groups for p in g["params"]]
        clip = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += tokens
        return total, norm

    def check_finite(self, losses: list[torch.Tensor], first_step: int) -> None:
        """One host sync for many steps: raise naming the first step whose loss was not finite."""
        if not losses:
            return
        stacked = self.all_mean(torch.stack(losses))
        bad = (~torch.isfinite(stacked)).nonzero()
        if len(bad):
            step = first_step + int(bad[0])
            raise TrainingError(
                f"loss became {stacked[int(bad[0])].item()} at step {step}; stopped. The last "
                f"good checkpoint in {self.ckpt_dir} is untouched (lower lr, check the data).")

    # -- evaluation --

    @torch.no_grad()
    def evaluate(self) -> dict:
        row: dict = {}
        self.raw.eval()
        if self.val_data is not None:
            losses = []
            for batch in self.val_data:
                batch = {k: v.to(self.device) for k, v in batch.items()}
                with self.autocast:
                    losses.append(self.objective.val_loss(self.raw, batch).float())
            if losses:
                val = self.all_mean(torch.stack(losses).mean()).item()
                row = {"val_loss": val, "val_ppl": math.exp(min(val, 50.0))}
        # only rank 0 evaluates (others may not even hold an evaluator); all get its result
        result = [self.evaluator(self.raw, self.step)
                  if self.is_main and self.evaluator is not None else None]
        if self.world > 1:
            dist.broadcast_object_list(result, src=0)
        extra = result[0] or {}
        self.raw.train()
        if self.is_main and extra:
            atomic_write_json(self.run_dir / "evals" / f"step_{self.step}.json",
                              {"step": self.step, **row, **extra})
        row.update({k: v for k, v in extra.items()
                    if isinstance(v, (int, float, str, bool)) or v is None})
        return row

    def track_best(self, row: dict) -> bool:
        """Update best.json / checkpoints/best; True when early stopping should end the run.

        Ranked by `score`, ties broken by lower val_loss; no evaluator: by val_loss alone.
        """
        if "val_loss" not in row and "score" not in row:
            return False
        tie = -row.get("val_loss", 0.0)
        key = [row.get("score", tie), tie]
        if self.best is None or key > self.best["key"]:
            self.best = {"step": self.step, "score": key[0], "key": key, "metrics": row}
            self.evals_since_best = 0
            if self.is_main:
                ckpt.write_dir_atomically(self.ckpt_dir / "best",
                                          lambda d: self.save_fn(self.raw, d))
                atomic_write_json(self.run_dir / "best.json", self.best)
            self.barrier()
        else:
            self.evals_since_best += 1
        return bool(self.cfg.early_stop) and self.evals_since_best >= self.cfg.early_stop

    # -- driver --

    def run(self, resume: bool) -> TrainResult:
        cfg = self.cfg
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.config is not None:
                save_config(self.config, self.run_dir / "config.toml")
        self.barrier()
        if not (resume and self.resume()):
            if ckpt.step_checkpoints(self.ckpt_dir):
                raise FileExistsError(f"{self.ckpt_dir} already holds checkpoints: resume the "
                                      "run (--resume) or choose a new run dir")
            if self.is_main:  # lines of a run killed before its first checkpoint
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
        self.raw.train()
        log = JsonlAppender(self.run_dir / "metrics.jsonl") if self.is_main else None
        from codeling.loggers import make_loggers  # optional TensorBoard/MLflow, off by default

        loggers = make_loggers(cfg, self.run_dir) if self.is_main else []
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step",
                   disable=not (self.is_main and self.progress), dynamic_ncols=True)
        pending: list[torch.Tensor] = []  # losses since the last finiteness check
        pending_from = self.step + 1
        t_log, tokens_log = time.perf_counter(), self.tokens
        stopped = "done"
        try:
            while self.step < cfg.steps:
                self._set_phase()
                t0 = time.perf_counter()
                loss, norm = self.train_step()
                pending.append(loss)
                step = self.step
                is_log = step % cfg.log_every == 0 or step == cfg.steps
                is_eval = cfg.eval_every > 0 and (step % cfg.eval_every == 0 or step == cfg.steps)
                is_save = cfg.save_every > 0 and step % cfg.save_every == 0
                row: dict = {}
                if is_log or is_eval or is_save:
                    self.check_finite(pending, pending_from)
                    pending, pending_from = [], step + 1
                self.elapsed += time.perf_counter() - t0
                if is_log:
                    now = time.perf_counter()
                    row.update(step=step, loss=self.all_mean(loss).item(),
                               lr=lr_at(step - 1, cfg), grad_norm=norm.item(),
                               tokens=self.tokens,
                               tokens_per_s=(self.tokens - tokens_log) / max(now - t_log, 1e-9),
                               elapsed_s=round(self.elapsed, 3))
                    t_log, tokens_log = now, self.tokens
                    bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}")
                early = False
                if is_eval:
                    t0 = time.perf_counter()
                    val = self.evaluate()
                    self.last_val = {"step": step, **val}
                    early = self.track_best(val)
                    self.elapsed += time.perf_counter() - t0
                    row.update(step=step, **val)
                if row:
                    row["phase"] = self.phase if cfg.curriculum else 0
                    if log is not None:
                        log.write(row)
                    for lg in loggers:
                        lg.log(row, step)
                if is_save or early:
                    self.save_step()
                bar.update(1)
                if early:
                    stopped = "early_stop"
                    print(f"early stop at step {step}: {cfg.early_stop} evals without improvement")
                    break
        finally:
            bar.close()
            if log is not None:
                log.close()
            for lg in loggers:
                lg.close()
        self.check_finite(pending, pending_from)
        if not (self.ckpt_dir / f"step_{self.step}").exists():
            self.save_step()
        final = None
        if self.is_main:
            final = ckpt.write_dir_atomically(self.ckpt_dir / "final",
                                              lambda d: self.save_fn(self.raw, d))
        self.barrier()
        return TrainResult(self.step, stopped, final, self.best, self.last_val)

    def _set_phase(self) -> None:
        phase = phase_at(self.step, self.cfg.curriculum)
        if phase != self.phase:
            self.phase = phase
            if self.cfg.curriculum and hasattr(self.train_data, "set_phase"):
                self.train_data.set_phase(phase)


def train(model: nn.Module, objective, train_data, cfg: TrainConfig, run_dir: str | Path, *,
          val_data=None, evaluator: Callable[[nn.Module, int], dict] | None = None,
          save_fn: Callable[[nn.Module, Path], None] | None = None,
          load_fn: Callable[[nn.Module, Path], object] | None = None, resume: bool = False,
          tokenizer=None, config: Config | None = None, progress: bool = True) -> TrainResult:
    """Train `model` in place for cfg.steps optimizer steps (see the module docstring).

    Raises TrainingError on a non-finite loss and checkpoint.CheckpointError when the checkpoint
    to resume from is corrupt (never a silent fresh start).
    """
    run = _Run(model, objective, train_data, cfg, run_dir, val_data=val_data,
               evaluator=evaluator, save_fn=save_fn, load_fn=load_fn, tokenizer=tokenizer,
               config=config, progress=progress)
    return run.run(resume)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The metrics.jsonl lines of a run, in order."""
    return [r for _, r in iter_jsonl(Path(run_dir) / "metrics.jsonl")]
