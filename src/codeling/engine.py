"""Continuous batching for `codeling serve`: one scheduler thread steps every live sequence of
every request together, and requests join and leave between steps.

    engine = Engine(model, tokenizer, max_batch=32)
    req = engine.submit(["def add(a, b):\n"], n=2, params=Params(max_tokens=64))
    for kind, choice, value in req.iter_events(): ...   # ("delta", i, text) / ("done", i, Completion)

A sequence is a `decode._Row` (the same healing, seeding and stop rules as `generate.complete`,
so a greedy or seeded request gives the same text here as there). All live rows share one KV
cache: a newcomer is prefilled on its own, then its keys are placed in the columns that end at
the cache's current end, with a key mask hiding the columns before them. RoPE positions are per
row, so where a row sits in the cache does not matter, only the mask. The cache grows to the
right in chunks, to the left when a newcomer's prompt is longer than the cache so far, and is
trimmed on the left once every live row starts past a chunk. A cancelled request (its client
went away) leaves at the next step and frees its slots.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from codeling.decode import (
    Completion,
    _allowed_after,
    _finish,
    _hit_stop,
    _make_rows,
    _pick,
    _Row,
)
from codeling.decode_step import for_model
from codeling.model import CodelingLM, KVCache
from codeling.tokenizer import CodelingTokenizer

CHUNK = 64  # cache columns added or trimmed at a time (amortises the copies)


@dataclass
class Params:
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: Sequence[str] = ()
    seed: int | None = None
    ignore_eot: bool = False
    stream: bool = False
    heal: bool = True


class Request:
    """One client request: its rows, and the events the scheduler sends back for them."""

    def __init__(self, rows: list[_Row], params: Params, stop_window: int):
        self.rows, self.params, self.window = rows, params, stop_window
        self.events: queue.Queue = queue.Queue()
        self.sent = [""] * len(rows)  # text streamed so far, per choice
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        """The client is gone: its rows leave the batch at the next step."""
        self.cancelled.set()

    def iter_events(self, poll: float = 0.25, gone=None) -> Iterator[tuple[str, int, object]]:
        """Events until every choice is done. `gone()` is polled while waiting; True cancels."""
        left = len(self.rows)
        while left:
            try:
                event = self.events.get(timeout=poll)
            except queue.Empty:
                if gone is not None and gone():
                    self.cancel()
                    return
                continue
            if event[0] == "error":
                raise RuntimeError(event[2])
            left -= event[0] == "done"
            yield event


@dataclass
class _Slot:
    req: Request
    choice: int
    row: _Row
    start: int  # the cache column of the row's first real key
    fresh: bool = True  # no token picked yet (the healing constraint applies)


@dataclass
class _Batch:
    """The live rows' shared state: cache, key mask, next positions, last logits."""

    cache: KVCache
    key_mask: torch.Tensor  # (B, cache.max_len); columns from cache.pos on are True
    positions: torch.Tensor  # (B,) each row's next RoPE position
    slots: list[_Slot] = field(default_factory=list)
    logits: torch.Tensor | None = None  # (B, vocab) for the next pick


class Engine:
    def __init__(self, model: CodelingLM, tokenizer: CodelingTokenizer, max_batch: int = 32):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model, self.tokenizer, self.max_batch = model.eval(), tokenizer, max_batch
        p = next(model.parameters())
        self.device, self.dtype, self.vocab = p.device, p.dtype, model.config.vocab_size
        # the decode step generate.complete runs too; a served model's weights do not change,
        # so its fused weights are gathered once, not checked at every step
        self.step = for_model(self.model)
        self._pending: deque[tuple[Request, int]] = deque()
        self._cv = threading.Condition()
        self._batch: _Batch | None = None
        self._closed = False
        self.stats = {"steps": 0, "tokens": 0, "peak_batch": 0, "cancelled_rows": 0}
        self._thread = threading.Thread(target=self._loop, name="codeling-engine", daemon=True)
        self._thread.start()

    # ---- the request side (handler threads) ----

    def submit(self, prompts: Sequence[str], n: int, params: Params) -> Request:
        """Queue prompts × n rows; choice i*n + j is prompt i's copy j (seeded as complete's)."""
        max_context = self.model.config.max_seq_len - params.max_tokens
        if max_context < 1:
            raise ValueError(f"max_tokens {params.max_tokens} leaves no room for a prompt in "
                             f"the model's max_seq_len {self.model.config.max_seq_len}")
        stop = [s for s in params.stop if s]
        params.stop = stop
        rows = _make_rows(self.tokenizer, prompts, max_context, params.heal, params.seed,
                          params.temperature > 0, n, self.device)
        window = max((len(s.encode()) for s in stop), default=0) + 2
        req = Request(rows, params, window)
        with self._cv:
            if self._closed:
                raise RuntimeError("the engine is closed")
            self._pending.extend((req, i) for i in range(len(rows)))
            self._cv.notify()
        return req

    def live(self) -> int:
        """Rows in the running batch now."""
        batch = self._batch
        return len(batch.slots) if batch is not None else 0

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=10)

    # ---- the scheduler thread ----

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._closed and not self._pending and self._batch is None:
                    self._cv.wait()
                if self._closed:
                    self._fail(RuntimeError("the server is shutting down"), list(self._pending))
                    return
                free = self.max_batch - self.live()
                admitted = []
                while self._pending and len(admitted) < free:
                    req, i = self._pending.popleft()
                    if not req.cancelled.is_set():
                        admitted.append((req, i))
            try:
                with torch.inference_mode():
                    self._step(admitted)
            except Exception as e:  # fail the requests in flight, keep serving the next ones
                self._fail(e, admitted)

    def _fail(self, e: Exception, admitted: list[tuple[Request, int]]) -> None:
        failed = {id(s.req): s.req for s in (self._batch.slots if self._batch else [])}
        failed.update({id(r): r for r, _ in admitted})
        for req in failed.values():
            req.events.put(("error", -1, f"{type(e).__name__}: {e}"))
        self._batch = None

    def _step(self, admitted: list[tuple[Request, int]]) -> None:
        if admitted:
            self._admit(admitted)
        b = self._batch
        if b is None:
            return
        self.stats["peak_batch"] = max(self.stats["peak_batch"], len(b.slots))
        picked = self._pick(b)
        keep = [i for i, s in enumerate(b.slots) if not s.row.done]
        if not keep:
            self._batch = None
            return
        if len(keep) < len(b.slots):
            idx = torch.tensor(keep, device=self.device)
            b.cache.select(idx)
            b.key_mask, b.positions, picked = b.key_mask[idx], b.positions[idx], picked[idx]
            b.slots = [b.slots[i] for i in keep]
        self._make_room(b)
        bias = self.step.bias(b.key_mask, b.cache.pos + 1, 1)
        b.logits = self.step(picked[:, None], b.positions[:, None], b.cache, bias)[:, -1]
        b.positions += 1
        self.stats["steps"] += 1

    def _admit(self, admitted: list[tuple[Request, int]]) -> None:
        """Prefill the newcomers (each prompt once for its copies) and join them to the batch."""
        groups: dict[tuple[int, int], int] = {}  # (request, prompt) -> prefill row
        firsts = []
        for req, i in admitted:
            key = (id(req), req.rows[i].prompt)
            if key not in groups:
                groups[key] = len(firsts)
                firsts.append(req.rows[i])
        lengths = torch.tensor([len(r.context) for r in firsts], device=self.device)
        U, P = len(firsts), int(lengths.max())
        ids = torch.full((U, P), self.tokenizer.pad_id, dtype=torch.long)
        for u, r in enumerate(firsts):
            ids[u, P - len(r.context):] = torch.tensor(r.context)
        pad = (P - lengths)[:, None]
        mask = torch.arange(P, device=self.device)[None, :] >= pad
        positions = (torch.arange(P, device=self.device)[None, :] - pad).clamp(min=0)
        cache = KVCache(self.model.config, U, P, self.device, self.dtype)
        logits = self.model(ids.to(self.device), positions, cache, mask, logits_to_keep=1)[:, -1]
        expand = torch.tensor([groups[(id(req), req.rows[i].prompt)] for req, i in admitted],
                              device=self.device)
        new_k, new_v = cache.k[:, expand], cache.v[:, expand]
        new_mask, new_pos, logits = mask[expand], lengths[expand], logits[expand]
        b = self._batch
        if b is None:
            cache.k, cache.v, cache.pos = new_k, new_v, P
            b = self._batch = _Batch(cache, new_mask, new_pos, logits=logits)
            b.slots = [_Slot(req, i, req.rows[i], P - len(req.rows[i].context))
                       for req, i in admitted]
            return
        if b.cache.pos < P:
            self._extend_left(b, P - b.cache.pos)
        end, width = b.cache.pos, b.cache.max_len
        k = new_k.new_zeros((*new_k.shape[:3], width, new_k.shape[-1]))
        v = torch.zeros_like(k)
        k[:, :, :, end - P:end], v[:, :, :, end - P:end] = new_k, new_v
        full_mask = torch.ones(len(admitted), width, dtype=torch.bool, device=self.device)
        full_mask[:, :end] = False
        full_mask[:, end - P:end] = new_mask
        b.cache.k, b.cache.v = torch.cat([b.cache.k, k], 1), torch.cat([b.cache.v, v], 1)
        b.key_mask = torch.cat([b.key_mask, full_mask])
        b.positions = torch.cat([b.positions, new_pos])
        b.logits = torch.cat([b.logits, logits])
        b.slots += [_Slot(req, i, req.rows[i], end - len(req.rows[i].context))
                    for req, i in admitted]

    def _extend_left(self, b: _Batch, d: int) -> None:
        c = b.cache
        zeros = c.k.new_zeros((*c.k.shape[:3], d, c.k.shape[-1]))
        c.k, c.v = torch.cat([zeros, c.k], 3), torch.cat([zeros, c.v], 3)
        c.pos, c.max_len = c.pos + d, c.max_len + d
        b.key_mask = torch.cat([b.key_mask.new_zeros((len(b.slots), d)), b.key_mask], 1)
        for s in b.slots:
            s.start += d

    def _make_room(self, b: _Batch) -> None:
        """One free column for the next token; trim columns no live row uses any more."""
        c = b.cache
        cut = min(s.start for s in b.slots)
        if cut >= CHUNK:
            c.k, c.v = c.k[:, :, :, cut:], c.v[:, :, :, cut:]
            c.pos, c.max_len = c.pos - cut, c.max_len - cut
            b.key_mask = b.key_mask[:, cut:]
            for s in b.slots:
                s.start -= cut
        if c.pos + 1 > c.max_len:
            zeros = c.k.new_zeros((*c.k.shape[:3], CHUNK, c.k.shape[-1]))
            c.k, c.v = torch.cat([c.k, zeros], 3), torch.cat([c.v, zeros], 3)
            c.max_len += CHUNK
            b.key_mask = torch.cat([b.key_mask, b.key_mask.new_ones((len(b.slots), CHUNK))], 1)

    def _pick(self, b: _Batch) -> torch.Tensor:
        """A token per live row (rows grouped by their sampling settings); updates the rows and
        sends their events. Returns the picked ids, aligned with b.slots."""
        logits = b.logits
        heal = [s.row.prefix if s.fresh else "" for s in b.slots]
        if any(heal):
            allowed = torch.stack([_allowed_after(self.tokenizer, h, self.vocab) if h else
                                   torch.ones(self.vocab, dtype=torch.bool) for h in heal])
            logits = logits.masked_fill(~allowed.to(self.device), float("-inf"))
        picked = torch.empty(len(b.slots), dtype=torch.long, device=self.device)
        groups: dict[tuple[float, float], list[int]] = {}
        for i, s in enumerate(b.slots):
            groups.setdefault((s.req.params.temperature, s.req.params.top_p), []).append(i)
        for (temperature, top_p), idx in groups.items():
            rows = [b.slots[i].row for i in idx]
            at = torch.tensor(idx, device=self.device)
            picked[at] = _pick(logits[at], rows, temperature, top_p)
        logp = torch.log_softmax(logits.float(), -1).gather(1, picked[:, None])[:, 0].tolist()
        eot = (self.tokenizer.eot_id, self.tokenizer.pad_id)
        for s, t, lp in zip(b.slots, picked.tolist(), logp):
            req, row = s.req, s.row
            s.fresh = False
            if req.cancelled.is_set():
                row.done = "cancelled"
                self.stats["cancelled_rows"] += 1
                continue
            self.stats["tokens"] += 1
            row.logprobs.append(lp)
            if t in eot and not req.params.ignore_eot:
                row.done = "eot"
            else:
                row.ids.append(t)
                if req.params.stop and _hit_stop(self.tokenizer, row, req.params.stop,
                                                 req.window):
                    row.done = "stop"
                elif len(row.ids) >= req.params.max_tokens:
                    row.done = "length"
            if row.done:
                done = _finish(self.tokenizer, row, req.params.stop)
                if req.params.stream and len(done.text) > len(req.sent[s.choice]):
                    req.events.put(("delta", s.choice, done.text[len(req.sent[s.choice]):]))
                req.events.put(("done", s.choice, done))
            elif req.params.stream:
                self._stream(s)
        return picked

    def _stream(self, s: _Slot) -> None:
        """Send the new text that no later token can take back: not a trailing partial
        character, and not a tail that might grow into a stop sequence."""
        req, row = s.req, s.row
        text = self.tokenizer.decode(row.ids)[len(row.prefix):].rstrip("\ufffd")
        hold = max((k for stop in req.params.stop for k in range(1, len(stop))
                    if text.endswith(stop[:k])), default=0)
        safe = text[:len(text) - hold]
        sent = req.sent[s.choice]
        if len(safe) > len(sent):
            req.events.put(("delta", s.choice, safe[len(sent):]))
            req.sent[s.choice] = safe


__all__ = ["Completion", "Engine", "Params", "Request"]
