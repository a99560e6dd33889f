"""The dev set's solution loss: a smooth signal beside the pass count.

Each dev task's reference solution is scored teacher-forced, as SFT trains on it (pairs.py:
`tokens(prompt + solution) + <|endoftext|>`, the prompt masked): the mean per-token
cross-entropy over every solution token of the set (`solution_loss`), and the same per prompt
style and per category. One forward pass per task, no generation, no sandbox: it costs a few
seconds for 1,000 tasks where generating and judging them costs minutes, and it moves with
every step where the pass count moves in whole tasks. It is a signal to watch, not a result:
`bench/solution_loss.py` measures how well it predicts dev pass across the saved evals of runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from codeling.objectives import IGNORE
from codeling.pairs import collate, encode_example
from codeling.tasks.schema import Task


def _group(task: Task, key: str) -> str:
    if key == "style":
        return task.extra.get("style", "") or "default"
    return task.category or "uncategorised"


@torch.no_grad()
def task_losses(model: nn.Module, tokenizer, tasks: Sequence[Task], max_tokens: int,
                batch_size: int = 32) -> dict[str, tuple[float, int]]:
    """task_id -> (summed cross-entropy over its solution tokens, number of those tokens).
    Tasks longer than `max_tokens` are left out (the model never saw such lengths)."""
    encoded = [(t.task_id, encode_example(tokenizer, t, max_tokens)) for t in tasks]
    encoded = sorted(((tid, ex) for tid, ex in encoded if ex is not None),
                     key=lambda p: len(p[1][0]))  # similar lengths share a batch: less padding
    device = next(model.parameters()).device
    out: dict[str, tuple[float, int]] = {}
    for i in range(0, len(encoded), batch_size):
        chunk = encoded[i:i + batch_size]
        batch = collate([ex for _, ex in chunk], tokenizer.pad_id)
        ids, labels = batch["input_ids"].to(device), batch["labels"].to(device)
        # the head and the cross-entropy only where some row has a solution token: prompts
        # come first and are most of the tokens, and the head is a quarter of the forward
        keep = labels.shape[1] - int((labels != IGNORE).int().argmax(dim=1).min())
        labels = labels[:, -keep:]
        logits = model(ids, logits_to_keep=keep).float()
        ce = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE,
                             reduction="none")
        counts = (labels != IGNORE).sum(dim=1)
        for (tid, _), s, n in zip(chunk, ce.sum(dim=1).tolist(), counts.tolist()):
            out[tid] = (float(s), int(n))
    return out


def summarize_losses(losses: dict[str, tuple[float, int]], tasks: Sequence[Task]) -> dict:
    """Token-weighted mean loss overall, per style and per category (rounded to 1e-4)."""
    def mean(tids: list[str]) -> float | None:
        s = sum(losses[t][0] for t in tids)
        n = sum(losses[t][1] for t in tids)
        return round(s / n, 4) if n else None

    scored = [t for t in tasks if t.task_id in losses]
    groups: dict[str, dict[str, list[str]]] = {"style": defaultdict(list),
                                                "category": defaultdict(list)}
    for t in scored:
        for key, by in groups.items():
            by[_group(t, key)].append(t.task_id)
    overall = mean([t.task_id for t in scored])
    return {"solution_loss": overall,
            "solution_ppl": round(math.exp(min(overall, 50.0)), 3) if overall is not None else None,
            "solution_loss_tasks": len(scored),
            "solution_loss_tokens": sum(losses[t.task_id][1] for t in scored),
            "solution_loss_per_style": {k: mean(v) for k, v in sorted(groups["style"].items())},
            "solution_loss_per_category": {k: mean(v)
                                           for k, v in sorted(groups["category"].items())}}


def solution_loss(model: nn.Module, tokenizer, tasks: Sequence[Task], max_tokens: int,
                  batch_size: int = 32, autocast=None) -> dict:
    """`summarize_losses` of `task_losses` (see the module docstring), under `autocast` when
    given: the training step's own (bf16 where it was measured faster), as val loss is."""
    was_training = model.training
    model.eval()
    try:
        with autocast or nullcontext():
            losses = task_losses(model, tokenizer, tasks, max_tokens, batch_size)
        return summarize_losses(losses, tasks)
    finally:
        model.train(was_training)
