"""A task as a training pair: `tokens(prompt + solution) + <|endoftext|>` with the prompt
masked. SFT trains on it (sft.py) and the dev set's solution loss is measured on it
(evaluate/solution_loss.py), so both see the same tokens and the same boundary."""

from __future__ import annotations

import torch

from codeling.objectives import IGNORE
from codeling.tasks.schema import Task


def encode_example(tokenizer, task: Task, max_tokens: int) -> tuple[list[int], int] | None:
    """(ids, n_context) for prompt + solution + EOT, or None when longer than max_tokens.

    The text is tokenized whole, as pretraining saw code, so the token that joins the prompt's
    last newline to the body's indentation is learned. Generation heals the prompt's last token
    (drops it and constrains the first new token to start with its text), so the context here
    is the tokens wholly inside the prompt minus the last one: training and inference see the
    same boundary."""
    enc = tokenizer.tok.encode(task.prompt + task.canonical_solution)
    inside = sum(1 for _, end in enc.offsets if end <= len(task.prompt))
    ids = [*enc.ids, tokenizer.eot_id]
    return (ids, max(1, inside - 1)) if len(ids) <= max_tokens else None


def collate(examples: list[tuple[list[int], int]], pad_id: int, multiple: int = 1
            ) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example, rounded up to `multiple`; labels are shifted and masked
    outside the solution (padding carries no loss and, on the right, is never attended to)."""
    width = -(-(max(len(ids) for ids, _ in examples) - 1) // multiple) * multiple
    inputs = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, (ids, n_prompt) in enumerate(examples):
        t = torch.tensor(ids, dtype=torch.long)
        inputs[row, :len(ids) - 1] = t[:-1]
        # label at position i is token i+1: the first kept label predicts the first solution token
        labels[row, n_prompt - 1:len(ids) - 1] = t[n_prompt:]
    return {"input_ids": inputs, "labels": labels}
