"""What the training loop minimises. Pretraining, SFT and distillation differ only here and in data.

A batch is a dict of tensors:
  input_ids  (B, T) int64   the tokens fed to the model
  labels     (B, T) int64   the target at each position, already shifted (labels[:, t] is the
                            token after input_ids[:, t]); IGNORE (-100) where no loss is taken
                            (the prompt in SFT, padding)
  position_ids (B, T)       optional, passed to the model (packed sequences)

An objective is a callable `objective(model, batch) -> loss` (a scalar tensor, the mean over the
batch's target tokens) plus `val_loss(model, batch)`, the plain cross-entropy reported as
val_loss / perplexity whatever the training loss is (no label smoothing, no KD term).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100  # torch's ignore_index: labels with this value carry no loss


class Objective(Protocol):
    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def val_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...


def forward_logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if "position_ids" in batch:
        return model(batch["input_ids"], position_ids=batch["position_ids"])
    return model(batch["input_ids"])


def lm_loss(logits: torch.Tensor, labels: torch.Tensor,
            label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean next-token cross-entropy over the labels that are not IGNORE.

    A batch with no target token gives 0 (with a graph), not NaN: an SFT micro-batch whose
    solutions were all cut off must not trip the NaN guard.
    """
    flat = labels.reshape(-1)
    total = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), flat,
                            ignore_index=IGNORE, reduction="sum",
                            label_smoothing=label_smoothing)
    return total / (flat != IGNORE).sum().clamp(min=1)


def kl_teacher_student(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over target positions of KL(teacher ‖ student), both softened by `temperature`.

    Every position is computed and the others weighted 0: indexing by a boolean mask would need
    the mask's count on the host, a GPU sync on every micro-batch."""
    keep = (labels.reshape(-1) != IGNORE).float()
    v = student_logits.size(-1)
    s = F.log_softmax(student_logits.reshape(-1, v).float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.reshape(-1, v).float() / temperature, dim=-1)
    kl = F.kl_div(s, t, log_target=True, reduction="none").sum(-1)
    return (kl * keep).sum() / keep.sum().clamp(min=1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            alpha: float, temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """α·KL(teacher‖student at T)·T² + (1−α)·CE (Hinton et al.: T² keeps gradient scale)."""
    kl = kl_teacher_student(student_logits, teacher_logits, labels, temperature)
    ce = lm_loss(student_logits, labels, label_smoothing)
    return alpha * kl * temperature**2 + (1 - alpha) * ce


class LMObjective:
    """Next-token cross-entropy, with optional label smoothing (training loss only)."""

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return lm_loss(forward_logits(model, batch), batch["labels"], self.label_smoothing)

    def val_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return lm_loss(forward_logits(model, batch), batch["labels"])


class SFTObjective(LMObjective):
    """Loss on the solution tokens only: the data side sets prompt and padding labels to IGNORE.

    When a batch carries `prompt_lens` (B,) instead of `labels`, labels are built here: the
    shifted input_ids with the first prompt_lens-1 targets (those still inside the prompt) and
    `pad_id` positions ignored.
    """

    def __init__(self, label_smoothing: float = 0.0, pad_id: int | None = None):
        super().__init__(label_smoothing)
        self.pad_id = pad_id

    def labels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "labels" in batch:
            return batch["labels"]
        return prompt_masked_labels(batch["input_ids"], batch["prompt_lens"], self.pad_id)

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return lm_loss(forward_logits(model, batch), self.labels(batch), self.label_smoothing)

    def val_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return lm_loss(forward_logits(model, batch), self.labels(batch))


def prompt_masked_labels(input_ids: torch.Tensor, prompt_lens: torch.Tensor,
                         pad_id: int | None = None) -> torch.Tensor:
    """Targets for rows that are prompt + solution (+ padding): only solution tokens count."""
    labels = torch.full_like(input_ids, IGNORE)
    labels[:, :-1] = input_ids[:, 1:]
    pos = torch.arange(input_ids.size(1), device=input_ids.device)
    # position t predicts token t+1, which belongs to the prompt while t+1 < prompt_len
    # masked_fill, not boolean-index assignment: no data-dependent shapes, no GPU sync
    labels = labels.masked_fill(pos[None, :] + 1 < prompt_lens[:, None].to(input_ids.device),
                                IGNORE)
    if pad_id is not None:
        labels = labels.masked_fill(labels == pad_id, IGNORE)
    return labels


class KDObjective:
    """Logit distillation from a frozen teacher that shares the student's tokenizer."""

    def __init__(self, teacher: nn.Module, alpha: float = 0.5, temperature: float = 2.0,
                 label_smoothing: float = 0.0):
        if not 0.0 <= alpha <= 1.0 or temperature <= 0:
            raise ValueError(f"KD needs 0 ≤ alpha ≤ 1 and temperature > 0, got {alpha}, "
                             f"{temperature}")
        self.teacher = teacher.eval().requires_grad_(False)
        self.alpha, self.temperature, self.label_smoothing = alpha, temperature, label_smoothing

    def teacher_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        device = batch["input_ids"].device
        if next(self.teacher.parameters()).device != device:
            self.teacher.to(device)  # follow the student to the loop's device once
        with torch.no_grad():
            return forward_logits(self.teacher, batch)

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        teacher = self.teacher_logits(batch)
        return kd_loss(forward_logits(model, batch), teacher, batch["labels"], self.alpha,
                       self.temperature, self.label_smoothing)

    def val_loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return lm_loss(forward_logits(model, batch), batch["labels"])
