"""Token shards and the batch sources the training loop draws from.

Shards: a corpus split (`train.jsonl` / `val.jsonl`, lines `{"path", "text"}`) tokenized once
into a flat uint16 file (`train.bin` / `val.bin`; documents joined by the end-of-text token) read
back as an `np.memmap`. `meta.json` beside them records the tokenizer and corpus fingerprints, so
a changed corpus or tokenizer rebuilds the shards and an unchanged one reuses them.

Batch sources (what `train.train` takes) have
  next_batch() -> {"input_ids", "labels"}   the next micro-batch for this process
  state_dict() / load_state_dict(state)      the exact data position, saved with checkpoints
  set_phase(i)                               optional: the curriculum phase (idempotent)
Validation sources are re-iterable: every `iter()` yields the same batches.

Under DDP every rank draws the same *global* batch from the same seeded RNG and keeps rows
rank::world, so `batch_size × world` rows on one process give the identical global batch.

The loop takes batches through a `DeviceFeed`: on CUDA it draws the next batch while the
current one trains, in pinned memory, copied without blocking; on CPU it is a plain pass-through.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from codeling.io import DataError, atomic_write_json, iter_jsonl
from codeling.objectives import IGNORE

SHARD_DTYPE = np.uint16  # vocabularies up to 65536 ids
SHARD_FORMAT = 1


def _fingerprint_file(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def tokenizer_fingerprint(tokenizer) -> str:
    return hashlib.sha256(tokenizer.tok.to_str().encode()).hexdigest()[:16]


def _tokenize_split(src: Path, dst: Path, tokenizer, chunk: int = 256) -> int:
    """Stream `src` (JSONL) into the uint16 file `dst` atomically; returns the token count."""
    eot = tokenizer.eot_id
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    n = 0
    try:
        with open(tmp, "wb") as f:
            texts: list[str] = []

            def flush() -> None:
                nonlocal n
                for ids in tokenizer.encode_batch(texts):
                    arr = np.asarray([*ids, eot], dtype=SHARD_DTYPE)
                    f.write(arr.tobytes())
                    n += arr.size
                texts.clear()

            for line, row in tqdm(iter_jsonl(src), desc=f"tokenize {src.name}", unit=" docs",
                                  leave=False):
                text = row.get("text")
                if not isinstance(text, str):
                    raise DataError(src, "missing or not a string", line=line, field="text")
                texts.append(text)
                if len(texts) >= chunk:
                    flush()
            flush()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _current_meta(sources: dict[str, Path], tokenizer, out: Path) -> tuple[dict, dict | None]:
    """(the meta shards of these sources would have, out's meta when its shards are that)."""
    import json

    for path in sources.values():
        if not path.exists():
            raise DataError(path, "file not found (expected a `codeling corpus` output folder)")
    want = {"format": SHARD_FORMAT, "tokenizer": tokenizer_fingerprint(tokenizer),
            "sources": {s: _fingerprint_file(p) for s, p in sources.items()}}
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want and all(
                (out / f"{s}.bin").exists() for s in sources):
            return want, meta
    return want, None


def shards_current(corpus_dir: str | Path, tokenizer, out_dir: str | Path) -> bool:
    """Whether out_dir holds up-to-date shards of the corpus for this tokenizer (no writes)."""
    sources = {s: Path(corpus_dir) / f"{s}.jsonl" for s in ("train", "val")}
    return _current_meta(sources, tokenizer, Path(out_dir))[1] is not None


def build_shards(corpus_dir: str | Path, tokenizer, out_dir: str | Path,
                 splits: tuple[str, ...] = ("train", "val")) -> dict:
    """Tokenize corpus splits into out_dir/{split}.bin unless up to date; returns meta.

    Processes building the same shards take turns on a file lock (out_dir/.lock): the first
    tokenizes, the others find the shards current. DDP ranks all call this, so none waits in a
    collective while a large corpus is tokenized (a process group's watchdog would kill it)."""
    corpus, out = Path(corpus_dir), Path(out_dir)
    if tokenizer.vocab_size > np.iinfo(SHARD_DTYPE).max + 1:
        raise ValueError(f"vocabulary of {tokenizer.vocab_size} does not fit uint16 shards")
    sources = {s: corpus / f"{s}.jsonl" for s in splits}
    want, meta = _current_meta(sources, tokenizer, out)
    if meta is not None:
        return meta
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        want, meta = _current_meta(sources, tokenizer, out)  # another process may have built
        return meta if meta is not None else _build(sources, tokenizer, out, want)


def _build(sources: dict[str, Path], tokenizer, out: Path, want: dict) -> dict:
    meta_path = out / "meta.json"
    meta_path.unlink(missing_ok=True)  # the shards are stale until the new meta lands
    tokens = {s: _tokenize_split(p, out / f"{s}.bin", tokenizer) for s, p in sources.items()}
    meta = {**want, "tokens": tokens, "eot_id": tokenizer.eot_id,
            "vocab_size": tokenizer.vocab_size}
    atomic_write_json(meta_path, meta)
    return meta


def open_shard(path: str | Path, min_tokens: int = 2) -> np.memmap:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "token shard not found")
    n = path.stat().st_size // np.dtype(SHARD_DTYPE).itemsize
    if n < min_tokens:
        raise DataError(path, f"only {n} tokens; need at least {min_tokens} "
                              "(seq_len + 1): use a bigger corpus or a shorter seq_len")
    return np.memmap(path, dtype=SHARD_DTYPE, mode="r", shape=(n,))


def _windows(shard: np.ndarray, starts: np.ndarray, seq_len: int) -> dict[str, torch.Tensor]:
    rows = torch.from_numpy(shard[starts[:, None] + np.arange(seq_len + 1)].astype(np.int64))
    return {"input_ids": rows[:, :-1], "labels": rows[:, 1:]}


class RandomWindows:
    """Random seq_len+1 windows of a shard, from a seeded RNG whose state is checkpointed."""

    def __init__(self, shard: np.ndarray, batch_size: int, seq_len: int, seed: int,
                 rank: int = 0, world: int = 1):
        if len(shard) < seq_len + 2:
            raise ValueError(f"shard of {len(shard)} tokens is shorter than seq_len+2")
        self.shard, self.batch_size, self.seq_len = shard, batch_size, seq_len
        self.rank, self.world = rank, world
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.batches = 0

    def next_batch(self) -> dict[str, torch.Tensor]:
        starts = self.rng.integers(0, len(self.shard) - self.seq_len, self.batch_size * self.world)
        self.batches += 1
        return _windows(self.shard, starts[self.rank::self.world], self.seq_len)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches = state["batches"]


class EvalWindows:
    """A fixed set of windows spread evenly over a shard: every evaluation sees the same data."""

    def __init__(self, shard: np.ndarray, batch_size: int, seq_len: int, n_batches: int,
                 rank: int = 0, world: int = 1):
        if len(shard) < seq_len + 2:
            raise ValueError(f"val shard of {len(shard)} tokens is shorter than seq_len+2")
        total = batch_size * world * max(n_batches, 1)
        starts = np.linspace(0, len(shard) - seq_len - 1, total).astype(np.int64)
        self.shard, self.seq_len = shard, seq_len
        self.starts = starts.reshape(-1, batch_size * world)[:, rank::world]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for row in self.starts:
            yield _windows(self.shard, row, self.seq_len)

    def __len__(self) -> int:
        return len(self.starts)


def corpus_batches(corpus: str | Path, tokenizer, shards: str | Path, cfg, rank: int = 0,
                   world: int = 1) -> tuple[RandomWindows, EvalWindows, dict]:
    """Pretraining-style data from a corpus folder: (train windows, val windows, shard meta).

    Every rank builds or reuses the shards through build_shards' lock: one tokenizes."""
    shards = Path(shards)
    meta = build_shards(corpus, tokenizer, shards)
    need = cfg.seq_len + 2
    train = RandomWindows(open_shard(shards / "train.bin", need), cfg.batch_size, cfg.seq_len,
                          cfg.seed, rank, world)
    val = EvalWindows(open_shard(shards / "val.bin", need), cfg.batch_size, cfg.seq_len,
                      cfg.eval_batches, rank, world)
    share = getattr(cfg, "anneal", 0.0)  # pretraining only
    if share > 0:
        if not (Path(corpus) / "anneal.jsonl").exists():
            raise DataError(Path(corpus) / "anneal.jsonl", "pretrain.anneal needs the corpus's "
                            "anneal set: build the corpus with corpus.anneal_mb > 0")
        where = shards / "anneal"  # its own meta: turning the anneal on keeps train's shards
        build_shards(corpus, tokenizer, where, splits=("anneal",))
        best = RandomWindows(open_shard(where / "anneal.bin", need), cfg.batch_size,
                             cfg.seq_len, cfg.seed + 1, rank, world)
        train = AnnealBatches(train, best, share, cfg.steps * cfg.grad_accum,
                              cfg.time_budget_s)
    return train, val, meta


class AnnealBatches:
    """The last `share` of training draws from the anneal set (the corpus's best-ranked
    documents) instead of the whole corpus. Progress is the larger of the batches' share of
    `total_batches` and the wall time's share of `budget_s` (the loop's own rule for its
    cosine, measured here from the first batch), so the anneal is the last share whichever
    ends training; once begun it stays. Under DDP with a budget, ranks decide on their own
    clocks, so they may switch one step apart."""

    def __init__(self, main, anneal, share: float, total_batches: int, budget_s: float = 0.0):
        if not 0.0 < share <= 1.0:
            raise ValueError(f"pretrain.anneal must be in (0, 1], got {share}")
        self.main, self.anneal, self.share = main, anneal, share
        self.total, self.budget = max(total_batches, 1), budget_s
        self.batches, self.elapsed, self.annealing = 0, 0.0, False
        self._last: float | None = None

    def progress(self) -> float:
        p = self.batches / self.total
        return max(p, self.elapsed / self.budget) if self.budget > 0 else p

    def next_batch(self) -> dict[str, torch.Tensor]:
        now = time.perf_counter()
        if self._last is not None:
            self.elapsed += now - self._last
        self._last = now
        self.annealing = self.annealing or self.progress() >= 1.0 - self.share
        self.batches += 1
        return (self.anneal if self.annealing else self.main).next_batch()

    def state_dict(self) -> dict:
        return {"batches": self.batches, "elapsed": self.elapsed, "annealing": self.annealing,
                "main": self.main.state_dict(), "anneal": self.anneal.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.batches, self.elapsed = state["batches"], state["elapsed"]
        self.annealing, self._last = state["annealing"], None
        self.main.load_state_dict(state["main"])
        self.anneal.load_state_dict(state["anneal"])


class MixedBatches:
    """Interleaves two batch sources: a share `ratio` of the batches come from `other`.

    SFT keeps some pretraining text this way: task batches keep their prompt masking, corpus
    windows carry labels on every token (the plain LM loss), and the one objective takes the
    mean over each batch's labels either way. The schedule is deterministic, batch i is from
    `other` when floor((i+1)·ratio) > floor(i·ratio), so every prefix of training holds the
    share to within one batch, every DDP rank makes the same choice, and resume needs only i.
    Curriculum phases go to `main`."""

    def __init__(self, main, other, ratio: float):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"mixing ratio must be in [0, 1), got {ratio}")
        self.main, self.other, self.ratio, self.i = main, other, ratio, 0

    def is_other(self, i: int) -> bool:
        return int((i + 1) * self.ratio) > int(i * self.ratio)

    def next_batch(self) -> dict[str, torch.Tensor]:
        src = self.other if self.is_other(self.i) else self.main
        self.i += 1
        return src.next_batch()

    def set_phase(self, phase: int) -> None:
        if hasattr(self.main, "set_phase"):
            self.main.set_phase(phase)

    def state_dict(self) -> dict:
        return {"i": self.i, "main": self.main.state_dict(), "other": self.other.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.i = state["i"]
        self.main.load_state_dict(state["main"])
        self.other.load_state_dict(state["other"])


def real_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Tokens of a (CPU) batch that are not padding: each row up to its last label (padding is
    on the right and carries none); every position when there are no labels."""
    labels = batch.get("labels")
    if labels is None:
        return batch["input_ids"].numel()
    pos = torch.arange(1, labels.size(-1) + 1)
    return int(((labels != IGNORE) * pos).amax(dim=-1).sum())


class DeviceFeed:
    """A batch source's micro-batches on the training device, each with its real token count.

    With `prefetch` (default: on CUDA) the next batch is drawn as soon as one is handed out,
    pinned and copied with non_blocking, so neither the gather nor the copy waits on the GPU.
    The source is then one batch ahead; `state_dict()` is its state before that batch and a
    phase change draws it again, so checkpoints and curricula stay exact. Without prefetch it
    draws on demand: the same calls in the same order as the source alone (CPU is bit-exact)."""

    def __init__(self, source, device: torch.device, prefetch: bool | None = None):
        self.source, self.device = source, torch.device(device)
        self.prefetch = self.device.type == "cuda" if prefetch is None else prefetch
        self.pin = self.device.type == "cuda"
        self.ahead: tuple[dict, dict[str, torch.Tensor], int] | None = None

    def _draw(self) -> tuple[dict[str, torch.Tensor], int]:
        batch = self.source.next_batch()
        n = real_tokens(batch)
        if self.pin:
            batch = {k: v.pin_memory() for k, v in batch.items()}
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}, n

    def next(self) -> tuple[dict[str, torch.Tensor], int]:
        if self.ahead is not None:
            _, batch, n = self.ahead
            self.ahead = None
        else:
            batch, n = self._draw()
        if self.prefetch:
            state = self.source.state_dict()
            self.ahead = (state, *self._draw())
        return batch, n

    def next_batch(self) -> dict[str, torch.Tensor]:
        return self.next()[0]

    def set_phase(self, phase: int) -> None:
        if not hasattr(self.source, "set_phase"):
            return
        if self.ahead is not None:  # drawn under the previous phase: rewind and draw again
            self.source.load_state_dict(self.ahead[0])
            self.ahead = None
        self.source.set_phase(phase)

    def state_dict(self) -> dict:
        return self.ahead[0] if self.ahead is not None else self.source.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.ahead = None
        self.source.load_state_dict(state)
