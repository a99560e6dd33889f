"""One optimizer step (gradient accumulation, DDP no_sync, clipping) and the NaN guard."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from codeling.config import TrainConfig
from codeling.training.dist import Dist
from codeling.training.optim import apply_schedule, lr_at, phase_at


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is left as it was."""


@dataclass
class Counters:
    """What the loop has done so far; saved in every checkpoint."""

    step: int = 0  # optimizer steps completed
    tokens: int = 0  # real (non-padding) tokens seen by all ranks together
    elapsed: float = 0.0  # seconds of training and evaluation (not of checkpoint writes)
    wall: float = 0.0  # seconds of the whole loop, checkpoint writes included (the time budget)


def wrap(raw: nn.Module, cfg: TrainConfig, dist: Dist, device: torch.device) -> nn.Module:
    """The module the steps run: DDP under torchrun, torch.compile when asked."""
    model = raw
    if dist.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(raw, device_ids=ids)
    if cfg.compile:
        model = torch.compile(model)
    return model


class Stepper:
    """Draws grad_accum micro-batches, steps the optimizer, follows the curriculum.

    `data` is a data.DeviceFeed: batches already on the device, with their real token counts
    (taken on the CPU side, so counting never waits for the GPU)."""

    def __init__(self, model: nn.Module, objective, data, opt, cfg: TrainConfig,
                 device: torch.device, autocast, dist: Dist, counters: Counters):
        self.model, self.objective, self.data, self.opt = model, objective, data, opt
        self.cfg, self.device, self.autocast, self.dist = cfg, device, autocast, dist
        self.counters = counters
        self.curriculum = getattr(cfg, "curriculum", None) or []
        self.phase = -1
        self.lr = 0.0  # the learning rate of the last step

    def set_phase(self) -> int:
        """Tell the data which curriculum phase the next step is in; returns it (0 without)."""
        phase = phase_at(self.counters.step, self.curriculum)
        if phase != self.phase:
            self.phase = phase
            if self.curriculum and hasattr(self.data, "set_phase"):
                self.data.set_phase(phase)
        return self.phase if self.curriculum else 0

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns (loss, grad norm) as tensors (no host sync)."""
        cfg, c = self.cfg, self.counters
        lr = self.lr = lr_at(c.step, cfg, c.wall)
        apply_schedule(self.opt, lr, c.step, cfg)  # per-group lr scale, Muon's momentum
        total = torch.zeros((), device=self.device)
        tokens = 0
        for micro in range(cfg.grad_accum):
            batch, real = self.data.next()
            last = micro == cfg.grad_accum - 1
            # DDP all-reduces gradients only on the last micro-batch of the step
            sync = nullcontext() if last or self.dist.world == 1 else self.model.no_sync()
            with sync:
                with self.autocast:
                    loss = self.objective(self.model, batch) / cfg.grad_accum
                loss.backward()
            total += loss.detach()
            # padding excluded; under DDP ranks are taken to hold alike counts (exact for
            # pretraining windows, close for SFT's length-bucketed batches)
            tokens += real * self.dist.world
        params = [p for g in self.opt.param_groups for p in g["params"]]
        clip = cfg.grad_clip if cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        c.step += 1
        c.tokens += tokens
        return total, norm


class NaNGuard:
    """Collects step losses and checks them with one host sync for many steps."""

    def __init__(self, dist: Dist, first_step: int, where: str):
        self.dist, self.first, self.where = dist, first_step, where
        self.pending: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss)

    def check(self) -> None:
        """Raise naming the first step whose loss was not finite (on every rank alike)."""
        if self.pending:
            stacked = self.dist.mean(torch.stack(self.pending))
            bad = (~torch.isfinite(stacked)).nonzero()
            if len(bad):
                raise TrainingError(
                    f"loss became {stacked[int(bad[0])].item()} at step "
                    f"{self.first + int(bad[0])}; stopped. The last good checkpoint in "
                    f"{self.where} is untouched (lower lr, check the data).")
        self.first += len(self.pending)
        self.pending = []
