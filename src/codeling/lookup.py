"""Prompt-lookup decoding (greedy, one row): draft the tokens that followed the latest earlier
occurrence of the text's last 3 or 2 tokens, check them all in one forward, keep the longest
prefix the model itself would have picked.

Each kept token is the argmax of the logits at its position, as plain greedy decoding would
pick it; only the float rounding of a several-token forward differs from a one-token one
(~1e-6), which can flip a near tie (none did in bench/generate.py's runs). A forward over T
tokens is not free on the CPU: for the cpu preset at batch 1, T = 2, 3, 5, 9 cost about 1.25,
1.45, 1.75, 1.95 times T = 1 (small matrix products run far below the CPU's speed), so the
draft grows after a full match and shrinks after a miss, and lone-token matches are not used.
Off by default (`complete(lookup=0)`), measured on HumanEval prompts at batch 1: with the cpu
preset's finished pretrain checkpoint it is no faster (0.91-0.99x of plain decoding, 64 tokens
with end-of-text ignored, or 256 with HumanEval's stops); a mid-training checkpoint, which
repeated itself more, gained 1.2-1.8x; random weights, which repeat their last token, 2.6-3.3x.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from codeling.decode_step import DecodeStep
from codeling.model import KVCache

LOOKUP = 8  # most draft tokens per step; best of 4, 8, 12, 16 on HumanEval prompts


class Drafter:
    """Incremental n-gram index over a token list: `draft()` proposes up to k tokens."""

    def __init__(self, ids: list[int], k: int, n: int = 3):
        self.ids, self.k, self.n = [], k, n
        self.last: dict[tuple[int, ...], int] = {}  # n-gram -> latest end index (not the tail)
        for t in ids:
            self.append(t)

    def append(self, token: int) -> None:
        ids = self.ids
        end = len(ids) - 1  # the n-grams ending at the previous tail become searchable
        for n in range(1, min(self.n, end + 1) + 1):
            self.last[tuple(ids[end - n + 1:end + 1])] = end
        ids.append(token)

    def draft(self, limit: int) -> list[int]:
        ids = self.ids
        for n in range(min(self.n, len(ids)), 1, -1):  # a lone token matches too often
            end = self.last.get(tuple(ids[-n:]))
            if end is not None:
                # what followed; past the tail it goes on with itself (a repeat's period)
                out, start, want = [], end + 1, min(self.k, limit)
                while len(out) < want:
                    i = start + len(out)
                    out.append(ids[i] if i < len(ids) else out[i - len(ids)])
                return out
        return []


@torch.inference_mode()
def decode_lookup(step: DecodeStep, cache: KVCache, logits: torch.Tensor, position: int,
                  context: list[int], max_new_tokens: int, k: int,
                  take: Callable[[int, float], bool]) -> None:
    """Greedy tokens for one row until `take(token, logprob)` says it is done or the budget is
    spent. `logits` (vocab,) are the prefill's last; `position` the next RoPE position."""
    drafter = Drafter(context, k)
    made = 0
    while True:
        logp = torch.log_softmax(logits.float(), -1)
        t = int(logits.argmax())
        made += 1
        if take(t, float(logp[t])) or made == max_new_tokens:
            return
        drafter.append(t)
        draft = drafter.draft(max_new_tokens - made)
        ids = torch.tensor([[t, *draft]])
        T = ids.shape[1]
        pos = torch.arange(position, position + T)[None]
        out = step(ids, pos, cache, step.bias(None, cache.pos + T, T))[0]
        # the model's picks after t, d1, ...: keep drafts while they are those picks
        picks = out.argmax(-1).tolist()
        kept = 0
        while kept < len(draft) and draft[kept] == picks[kept]:
            kept += 1
        # draft longer after a full match, shorter after a miss (HF's assisted-generation
        # schedule): a rejected token still costs its share of the forward
        if draft:
            drafter.k = min(k, drafter.k + 2) if kept == len(draft) else max(1, drafter.k - 1)
        if kept:
            logps = torch.log_softmax(out[:kept].float(), -1)
            for i in range(kept):
                made += 1
                if take(draft[i], float(logps[i, draft[i]])) or made == max_new_tokens:
                    return
                drafter.append(draft[i])
        cache.pos -= T - 1 - kept  # rejected drafts' keys are overwritten by the next forward
        position += 1 + kept
        logits = out[kept]
