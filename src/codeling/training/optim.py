"""Parameter groups, AdamW, the warmup-cosine schedule, curriculum phases and autocast."""

from __future__ import annotations

import math

import torch
from torch import nn

from codeling.config import TrainConfig
from codeling.training.hardware import autocast_context


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


def lr_at(step: int, cfg: TrainConfig, wall: float = 0.0) -> float:
    """Linear warmup to cfg.lr, then cosine down to lr·min_lr_ratio at cfg.steps.

    With `cfg.time_budget_s`, the cosine's progress is the larger of the steps' share and the
    budget's share spent (`wall` seconds so far), so it reaches the floor at whichever ends first.
    """
    if cfg.warmup and step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(cfg.steps - cfg.warmup, 1)
    progress = min(max(step - cfg.warmup, 0) / span, 1.0)
    if cfg.time_budget_s > 0:
        progress = max(progress, min(wall / cfg.time_budget_s, 1.0))
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


def autocast_for(cfg: TrainConfig, device: torch.device, dtype: str | None = None):
    """The step's autocast: `dtype` when given (what training/hardware.py resolved "auto" to on
    this machine), else the config's; "auto" alone means bf16 on CUDA and fp32 on CPU."""
    want = dtype or cfg.dtype
    if want == "auto":
        want = "bf16" if device.type == "cuda" else "fp32"
    return autocast_context(want, device)
