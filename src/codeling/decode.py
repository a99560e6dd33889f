"""One batch of rows through the model's KV cache: prefill, pick, stop (under `generate.complete`
and `codeling serve`'s engine).

Prompts of different lengths share a batch by left padding: each row gets its own RoPE positions
and a key mask, so a row's tokens are exactly those it would get alone. Prompts of very
different lengths are prefilled in groups of similar length (each group padded only to its own
longest prompt) and their keys placed right-aligned in the batch's one preallocated cache, so a
short prompt does not pay for the longest one's padding. Finished rows drop out of the batch
(`KVCache.select`) once a quarter of them are done.

Prefill runs the model's module forward; each decode step runs `decode_step.DecodeStep`, the same
computation with a tenth of the ops (fused projections, RoPE tables, the cache written in place),
unmasked when no row is padded. Per step the work on the host is small and mostly skipped: the
picked token and its log-probability are written into device buffers, and the host reads them back
every `sync_every` steps (1 on the CPU, where reading is free; 8 on a GPU, where each read stalls
the device queue). A row finished between two reads only ran a few extra steps, whose tokens are
dropped. Stop sequences are only looked for after a token whose text holds the last character of
one of them (or a partial character), which most tokens do not.

Sampling draws from one RNG per sequence, on the model's device, seeded from (seed, sequence
index), so results do not depend on the batch size or on which other prompts share a batch.
n samples of one prompt share its prefill: the prompt runs through the model once and its KV
cache rows are copied to the n sequences. Sequence j of prompt i is seeded as sequence i*n + j,
exactly as if the prompt had been repeated n times in the list, so both give the same samples.
Each completion carries the log-probability of every token it generated (under the model's own
distribution, before temperature and top-p).

Token healing: a prompt's last token is replaced by a constraint that the first generated token
must start with its text. Byte-level BPE merges a newline with the indentation after it
("\\n   " + " return"), so a prompt ending in "\\n" would otherwise leave the model after a lone
"\\n" token that, in training, only ever preceded unindented code.

On a GPU an fp32 model runs under bf16 autocast (its cache in bf16 too); on the CPU it stays in
fp32, so greedy outputs there are the same as a plain full forward's.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from codeling.decode_step import for_model
from codeling.lookup import decode_lookup
from codeling.model import CodelingLM, KVCache
from codeling.tokenizer import CodelingTokenizer


@dataclass
class Completion:
    text: str  # after the prompt, cut before the earliest stop sequence
    finish_reason: str  # "stop" (end of text or a stop sequence) or "length"
    prompt_tokens: int
    completion_tokens: int  # tokens generated, up to and including the one that stopped it
    token_ids: list[int]  # the generated ids (end-of-text excluded)
    logprobs: list[float] = field(default_factory=list)  # one per completion token (eot too)

    @property
    def mean_logprob(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else float("-inf")


@dataclass
class _Row:
    index: int  # position in the output list (prompt i, copy j: i*n + j)
    prompt: int  # the prompt's position in the caller's list (copies share its prefill)
    context: list[int]  # prompt ids fed to the model (healed and/or left-truncated)
    prefix: str  # healed text the first token must start with ("" when not healed)
    prompt_tokens: int
    generator: torch.Generator | None
    ids: list[int]
    logprobs: list[float] = field(default_factory=list)
    done: str = ""  # finish reason once finished


def compute_dtype(model: CodelingLM, dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype generation runs in: `dtype` if given, else bf16 for an fp32 model on a GPU that
    has it (autocast), else the model's own."""
    p = next(model.parameters())
    if dtype is not None:
        return dtype
    if p.device.type == "cuda" and p.dtype == torch.float32 and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return p.dtype


@lru_cache(maxsize=4)
def _token_strings(tokenizer: CodelingTokenizer) -> tuple[str, ...]:
    return tuple(tokenizer.decode([i]) for i in range(tokenizer.vocab_size))


@lru_cache(maxsize=256)
def _allowed_after(tokenizer: CodelingTokenizer, prefix: str, vocab: int) -> torch.Tensor:
    """Bool mask over the model's vocabulary: tokens whose text starts with `prefix`."""
    special = {tokenizer.eot_id, tokenizer.pad_id}
    allowed = [i not in special and s.startswith(prefix)
               for i, s in enumerate(_token_strings(tokenizer))]
    return torch.tensor(allowed + [False] * (vocab - len(allowed)))


@lru_cache(maxsize=64)
def _stop_watch(tokenizer: CodelingTokenizer, stop: tuple[str, ...]) -> frozenset[int]:
    """Tokens after which a stop sequence may newly appear: a new match ends in the new token's
    text, so that text holds the stop's last character, or a partial character (its decode
    alone is U+FFFD) that completes one."""
    lasts = {s[-1] for s in stop}
    return frozenset(i for i, s in enumerate(_token_strings(tokenizer))
                     if "\ufffd" in s or any(c in s for c in lasts))


def _make_rows(tokenizer: CodelingTokenizer, prompts: Sequence[str], max_context: int,
               heal: bool, seed: int | None, sampling: bool, n: int = 1,
               device: str | torch.device = "cpu") -> list[_Row]:
    rows = []
    base_seed = secrets.randbits(63) if seed is None else seed
    for p, ids in enumerate(tokenizer.encode_batch(list(prompts))):
        n_tokens, prefix = len(ids), ""
        if heal and len(ids) >= 2 and ids[-1] not in (tokenizer.eot_id, tokenizer.pad_id):
            last = tokenizer.decode(ids[-1:])
            if "\ufffd" not in last:  # a whole-character token; else leave it be
                ids, prefix = ids[:-1], last
        if not ids:  # an empty prompt: start from end-of-text, as after a document boundary
            ids = [tokenizer.eot_id]
        for i in range(p * n, (p + 1) * n):
            gen = None
            if sampling:
                row_seed = int(np.random.SeedSequence([base_seed, i]).generate_state(1)[0])
                gen = torch.Generator(device).manual_seed(row_seed)
            rows.append(_Row(i, p, ids[-max_context:], prefix, n_tokens, gen, []))
    return rows


def _pick(logits: torch.Tensor, rows: list[_Row], temperature: float, top_p: float
          ) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        # nucleus: keep the smallest top set whose mass reaches top_p (always the top token)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        sorted_p[(sorted_p.cumsum(-1) - sorted_p) >= top_p] = 0.0
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    # each row draws from its own generator, where it lives (the model's device, for complete)
    picked = [torch.multinomial(probs[b].to(r.generator.device), 1, generator=r.generator)
              for b, r in enumerate(rows)]
    return torch.cat([p.to(logits.device) for p in picked])


def _hit_stop(tokenizer: CodelingTokenizer, row: _Row, stop: Sequence[str], window: int) -> bool:
    # only the newest tokens can complete a stop sequence that was not there a step ago
    start = max(0, len(row.ids) - window)
    text = tokenizer.decode(row.ids[start:])
    if start == 0:
        text = text[len(row.prefix):]
    return any(s in text for s in stop)


def _finish(tokenizer: CodelingTokenizer, row: _Row, stop: Sequence[str]) -> Completion:
    text = tokenizer.decode(row.ids)[len(row.prefix):]
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    if cut >= 0:
        text = text[:cut]
    n = len(row.ids) + (row.done == "eot")
    return Completion(text, "length" if row.done == "length" else "stop", row.prompt_tokens, n,
                      row.ids, row.logprobs)


def _length_groups(lengths: list[int]) -> list[tuple[int, int]]:
    """Row ranges of a longest-first list to prefill together: a new group starts where a
    prompt is under 3/4 of its group's longest, so padding stays under a quarter."""
    groups, start = [], 0
    for i, n in enumerate(lengths):
        if 4 * n < 3 * lengths[start]:
            groups.append((start, i))
            start = i
    return [*groups, (start, len(lengths))]


def _group_rows(cache: KVCache, rows: list[_Row], width: int) -> None:
    """Decode steps attend group by group where the rows' prompts differ enough in length
    (rows longest first, prompts right-aligned at column `width`)."""
    lengths = [len(r.context) for r in rows]
    groups = _length_groups(lengths)
    cache.groups = [(a, b, width - lengths[a]) for a, b in groups] if len(groups) > 1 else []


def _prefill(model: CodelingLM, pad_id: int, firsts: list[_Row], max_new_tokens: int,
             dtype: torch.dtype) -> tuple[torch.Tensor, KVCache, torch.Tensor, torch.Tensor]:
    """Last logits, the cache (prompts right-aligned at column P), key mask and next positions
    for longest-first rows."""
    device = next(model.parameters()).device
    lengths = [len(r.context) for r in firsts]
    U, P = len(firsts), lengths[0]
    cache = KVCache(model.config, U, P + max_new_tokens, device, dtype)
    key_mask = torch.ones(U, P + max_new_tokens, dtype=torch.bool)
    logits = []
    for a, b in _length_groups(lengths):
        width = lengths[a]
        ids = torch.full((b - a, width), pad_id, dtype=torch.long)
        for u, r in enumerate(firsts[a:b]):
            ids[u, width - len(r.context):] = torch.tensor(r.context)
        pad = torch.tensor(lengths[a:b])[:, None] - width  # minus the left padding
        mask = torch.arange(width)[None, :] >= -pad
        positions = (torch.arange(width)[None, :] + pad).clamp(min=0)
        part = cache.window(slice(a, b), P - width)  # the group's keys land in place
        logits.append(model(ids.to(device), positions.to(device), part, mask.to(device),
                            logits_to_keep=1)[:, -1])
        key_mask[a:b, :P - width] = False
        key_mask[a:b, P - width:P] = mask
    cache.pos = P
    return (torch.cat(logits), cache, key_mask.to(device),
            torch.tensor(lengths, device=device))


@torch.inference_mode()
def decode_batch(model: CodelingLM, tokenizer: CodelingTokenizer, rows: list[_Row],
                 max_new_tokens: int, temperature: float, top_p: float, stop: Sequence[str],
                 ignore_eot: bool, dtype: torch.dtype | None = None,
                 sync_every: int | None = None, lookup: int = 0) -> None:
    """Fill each row's `ids`, `logprobs` and `done`. Rows of one prompt share one prefill.
    `lookup` > 0: a lone greedy row drafts that many tokens a step by prompt lookup
    (codeling.lookup)."""
    device, vocab = next(model.parameters()).device, model.config.vocab_size
    dtype = compute_dtype(model, dtype)
    if sync_every is None:
        sync_every = 1 if device.type == "cpu" else 8
    autocast = (torch.autocast(device.type, dtype=dtype)
                if dtype != next(model.parameters()).dtype else nullcontext())
    rows = sorted(rows, key=lambda r: -len(r.context))  # longest first, as _prefill wants
    firsts = list({r.prompt: r for r in reversed(rows)}.values())[::-1]  # one row per prompt
    slot = {r.prompt: u for u, r in enumerate(firsts)}
    with autocast:
        logits, cache, key_mask, positions = _prefill(model, tokenizer.pad_id, firsts,
                                                      max_new_tokens, dtype)
    if len(rows) > len(firsts):  # copy each prompt's cache, mask and logits to its sequences
        expand = torch.tensor([slot[r.prompt] for r in rows], device=device)
        cache.select(expand)
        key_mask, positions, logits = key_mask[expand], positions[expand], logits[expand]
    width = cache.pos
    _group_rows(cache, rows, width)
    step_fn = for_model(model, dtype)
    # no left padding anywhere (batch 1, or prompts of one length): attention needs no mask
    padded = not bool(key_mask[:, :width].all())
    heal = [r.prefix for r in rows]
    if any(heal):
        allowed = torch.stack([_allowed_after(tokenizer, h, vocab) if h else
                               torch.ones(vocab, dtype=torch.bool) for h in heal]).to(device)
        logits = logits.masked_fill(~allowed, float("-inf"))
    window = max((len(s.encode()) for s in stop), default=0) + 2
    watch = _stop_watch(tokenizer, tuple(stop)) if stop else frozenset()
    special = (tokenizer.eot_id, tokenizer.pad_id)

    def take(r: _Row, t: int, lp: float) -> bool:
        """Add a picked token to its row; True once the row is done."""
        if r.done:
            return True
        r.logprobs.append(lp)
        if t in special and not ignore_eot:
            r.done = "eot"
            return True
        r.ids.append(t)
        if t in watch and _hit_stop(tokenizer, r, stop, window):
            r.done = "stop"
        elif len(r.ids) == max_new_tokens:
            r.done = "length"
        return bool(r.done)

    if lookup and temperature <= 0 and len(rows) == 1:
        row = rows[0]
        with autocast:
            decode_lookup(step_fn, cache, logits[0], int(positions[0]), row.context,
                          max_new_tokens, lookup, lambda t, lp: take(row, t, lp))
        return
    # (picks, log-probabilities) of each step since the last read, still on the device
    pending: list[tuple[torch.Tensor, torch.Tensor]] = []
    live = list(rows)
    for step in range(max_new_tokens):
        picked = _pick(logits, live, temperature, top_p)
        # the model's own log-probability of each picked token (healing mask included)
        logp = torch.log_softmax(logits.float(), -1).gather(1, picked[:, None])[:, 0]
        pending.append((picked, logp))
        if len(pending) == sync_every or step == max_new_tokens - 1:
            tokens = torch.stack([t for t, _ in pending], 1).tolist()
            logps = torch.stack([lp for _, lp in pending], 1).tolist()
            pending.clear()
            for r, ts, lps in zip(live, tokens, logps):
                for t, lp in zip(ts, lps):
                    if take(r, t, lp):  # finished (now, or earlier between reads)
                        break
            n_done = sum(bool(r.done) for r in live)
            if n_done == len(live):
                break
            if n_done * 4 >= len(live):
                # drop finished rows; waiting for a quarter bounds the cache copies to ~4x its size
                keep = torch.tensor([b for b, r in enumerate(live) if not r.done], device=device)
                cache.select(keep)
                key_mask, positions, picked = key_mask[keep], positions[keep], picked[keep]
                live = [r for r in live if not r.done]
                _group_rows(cache, live, width)
        with autocast:
            bias = step_fn.bias(key_mask, cache.pos + 1, 1) if padded else None
            logits = step_fn(picked[:, None], positions[:, None], cache, bias)[:, -1]
        positions += 1


def fit_new_tokens(max_new_tokens: int, max_seq_len: int) -> int:
    """The token budget, capped at half the context when it would leave no room for a prompt
    (the default 384 against a 256-token smoke model), said once on stderr."""
    if max_new_tokens < max_seq_len:
        return max_new_tokens
    fitted = max(max_seq_len // 2, 1)
    print(f"note: max_new_tokens {max_new_tokens} leaves no room for a prompt in the model's "
          f"max_seq_len {max_seq_len}: generating at most {fitted} tokens", file=sys.stderr)
    return fitted
