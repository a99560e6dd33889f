"""Where `codeling generate` and `codeling evaluate` get samples other than from a codeling
checkpoint: `--model hf:PATH` (any local transformers causal LM, hf_backend.py) or
`--endpoint URL [--model NAME]` (any OpenAI-compatible server, endpoint.py).

Both write the samples file one line per finished sample (flushed and fsynced), so an
interrupted or partly failed run keeps what it made. `--resume` reads the file back and skips
every (task_id, sample_idx) already there; without it the file starts empty. Once every sample
is there the file is rewritten, atomically, in task order then sample order. Samples that an
endpoint failed to answer after their retries are reported (count, first error) and the run
exits 1: nothing is written for them, so a rerun with --resume asks for exactly those.

This module imports neither torch nor transformers: `codeling evaluate --endpoint` needs
neither, and hf_backend is loaded only for `--model hf:`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from codeling.config import ConfigError
from codeling.endpoint import Endpoint, EndpointError, Job, endpoint_samples
from codeling.io import DataError, JsonlAppender, atomic_write_json, iter_jsonl, write_jsonl
from codeling.tasks.schema import Task


class SamplesFailed(RuntimeError):
    """Some samples could not be had (the endpoint kept failing); the rest are on disk."""


def add_backend_arguments(p, *, evaluate: bool = False) -> None:
    p.add_argument("--model", default=None,
                   help="hf:PATH, a local transformers causal LM folder; with --endpoint, the "
                        "served model's name (default: the first one it lists)")
    p.add_argument("--endpoint", default=None,
                   help="an OpenAI-compatible server (vLLM, llama.cpp, Ollama, codeling serve), "
                        "e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--api-key-env", default=None, help="env var holding the endpoint's API key")
    p.add_argument("--concurrency", type=int, default=8, help="endpoint requests in flight")
    p.add_argument("--request-timeout", type=float, default=300.0,
                   help="seconds for one endpoint request, start to end")
    p.add_argument("--retries", type=int, default=4,
                   help="retries of a request on a timeout, 429, 5xx or a lost connection")
    if evaluate:  # generate has these flags already
        p.add_argument("--seed", type=int, default=0, help="sampling seed")
        p.add_argument("--device", default="auto", help="auto | cpu | cuda (for --model hf:)")
    else:
        p.add_argument("--resume", action="store_true",
                       help="keep the samples already in --out and make only the missing ones")


def wants_backend(args) -> bool:
    return bool(getattr(args, "model", None) or getattr(args, "endpoint", None))


def hf_path(spec: str) -> Path:
    """`hf:PATH` -> PATH (an existing folder)."""
    if not spec.startswith("hf:"):
        raise ConfigError(f"--model {spec!r}: expected hf:PATH (a local transformers model "
                          "folder), or pass --endpoint URL to name a served model")
    path = Path(spec[3:]).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--model {spec}: {path} is not a folder")
    if not (path / "config.json").exists():
        raise ConfigError(f"--model {spec}: no config.json in {path} (not a transformers "
                          "model folder)")
    return path


def _endpoint(args) -> Endpoint:
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    if args.api_key_env and not key:
        raise ConfigError(f"--api-key-env {args.api_key_env}: that variable is not set")
    try:
        return Endpoint(args.endpoint, key, args.request_timeout, args.retries)
    except EndpointError as err:
        raise ConfigError(str(err)) from None


def _done_rows(out: Path, tasks: Sequence[Task], n: int, resume: bool) -> list[dict]:
    if not resume or not out.exists():
        return []
    ids = {t.task_id for t in tasks}
    rows = []
    for line, row in iter_jsonl(out):
        if row.get("task_id") not in ids:
            raise DataError(out, f"task_id {row.get('task_id')!r} is not in these problems "
                                 "(another benchmark's samples?)", line=line, field="task_id")
        if not isinstance(row.get("sample_idx"), int) or not 0 <= row["sample_idx"] < n:
            raise DataError(out, f"not a sample index in [0, {n})", line=line,
                            field="sample_idx")
        rows.append(row)
    return rows


def write_samples(args, e, tasks: Sequence[Task], stop: Sequence[str], out: str | Path,
                  resume: bool = False, progress: bool = True) -> dict:
    """Make e.n samples per task with the backend the args name; returns a summary line.
    Raises SamplesFailed when some could not be had (the others stay in `out`)."""
    out = Path(out)
    if getattr(args, "checkpoint", None):
        raise ConfigError("pass one of --checkpoint, --model hf:PATH and --endpoint URL")
    if getattr(args, "select", None) or getattr(e, "select", ""):
        raise ConfigError("--select examples needs a codeling --checkpoint")
    n, stop = e.n, [s for s in stop if s]
    # bad arguments are refused before the samples file is touched
    client = _endpoint(args) if args.endpoint else None
    path = None if args.endpoint else hf_path(args.model)
    done = _done_rows(out, tasks, n, resume)
    have = {(r["task_id"], r["sample_idx"]) for r in done}
    if not resume:
        write_jsonl(out, [])  # start empty: an old file's lines must not mix in
    todo = [t for t in tasks if any((t.task_id, j) not in have for j in range(n))]
    start = time.time()
    failures: list[tuple[str, int, str]] = []
    rows = list(done)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks) * n, initial=len(done), desc="generate", unit="sample",
                   file=sys.stderr)
    with JsonlAppender(out, fsync=True) as app:
        def record(row: dict) -> None:
            if (row["task_id"], row["sample_idx"]) in have:
                return
            app.write(row)
            rows.append(row)
            if bar is not None:
                bar.update(1)

        if client is not None:
            failures = _from_endpoint(client, args, e, todo, stop, n, have, record)
        else:
            _from_hf(path, args, e, todo, stop, n, record)
    if bar is not None:
        bar.close()
    seconds = time.time() - start
    if failures:
        task_id, j, error = failures[0]
        raise SamplesFailed(f"{len(failures)} of {len(tasks) * n} samples failed after "
                            f"{args.retries} retries (first: {task_id} sample {j}: {error}); "
                            f"the {len(rows)} made are in {out}: rerun with --resume to make "
                            "the rest")
    order = {t.task_id: i for i, t in enumerate(tasks)}
    rows.sort(key=lambda r: (order[r["task_id"]], r["sample_idx"]))
    write_jsonl(out, rows)
    made = len(rows) - len(done)
    return {"out": str(out), "tasks": len(tasks), "samples": len(rows), "made": made,
            "resumed": len(done), "seconds": round(seconds, 2),
            "samples_per_s": round(made / max(seconds, 1e-9), 2)}


def _from_endpoint(client: Endpoint, args, e, tasks: Sequence[Task], stop: list[str], n: int,
                   have: set[tuple[str, int]], record) -> list[tuple[str, int, str]]:
    greedy = e.temperature <= 0
    jobs = []
    for ti, t in enumerate(tasks):
        missing = [j for j in range(n) if (t.task_id, j) not in have]
        if greedy:  # one answer fills every sample of the task
            jobs.append(Job(t.task_id, t.prompt, missing, None))
        else:
            jobs += [Job(t.task_id, t.prompt, [j], args.seed + ti * n + j) for j in missing]
    try:
        args.model = args.model or client.default_model()  # named in the summary line
        return endpoint_samples(client, args.model, jobs, stop, e.max_new_tokens, e.temperature,
                                e.top_p, args.concurrency, record)
    except EndpointError as err:
        raise ConfigError(str(err)) from None


def _from_hf(path: Path, args, e, tasks: Sequence[Task], stop: list[str], n: int,
             record) -> None:
    from codeling.hf_backend import fit_budget, hf_complete, load_hf
    from codeling.training.dist import resolve_device

    model, tok = load_hf(path, resolve_device(args.device))
    new_tokens = fit_budget(model, e.max_new_tokens)[0]  # the note, once
    copies = n if e.temperature > 0 else 1  # greedy: one generation fills all n
    step = max(1, e.batch_size // copies) * 4  # a few batches per flush to the file
    for b in range(0, len(tasks), step):
        chunk = tasks[b:b + step]
        done = hf_complete(model, tok, [t.prompt for t in chunk], stop, new_tokens,
                           e.temperature, e.top_p, copies, args.seed + b * n, e.batch_size)
        for i, t in enumerate(chunk):
            for j in range(n):
                record({"task_id": t.task_id, "sample_idx": j,
                        **done[i * copies + (j if copies > 1 else 0)]})


def describe(args) -> dict:
    """What made the samples, for summary.json."""
    if args.endpoint:
        return {"endpoint": args.endpoint, "model": args.model}
    return {"model": args.model}


def sample_then_evaluate(args, e, problems: Sequence[Task]) -> str | None:
    """`codeling evaluate --model hf:PATH | --endpoint URL`: makes OUT/samples.jsonl (completes
    it with --resume) and returns its path; None when --samples or --reference is given."""
    if not wants_backend(args):
        if not args.samples and not args.reference:
            raise ConfigError("one of --samples, --reference, --model hf:PATH or --endpoint URL "
                              "is required")
        return None
    if args.samples or args.reference:
        raise ConfigError("--model / --endpoint make the samples: drop --samples / --reference")
    from codeling.tasks.benchmarks import HUMANEVAL_STOP, stop_sequences

    stop = stop_sequences(args.benchmark) if args.benchmark else HUMANEVAL_STOP
    out = Path(args.out) / "samples.jsonl"
    summary = write_samples(args, e, problems, stop, out, args.resume, not args.quiet)
    # what made the samples, beside them (summary.json is the evaluation's own)
    summary.update(describe(args), n=e.n, temperature=e.temperature, top_p=e.top_p,
                   max_new_tokens=e.max_new_tokens, stop=list(stop), seed=args.seed)
    atomic_write_json(Path(args.out) / "generation.json", summary)
    print(json.dumps(summary), file=sys.stderr)
    return str(out)


def generate_main(args, e, tasks: Sequence[Task], stop: Sequence[str]) -> int:
    """`codeling generate --model hf:PATH | --endpoint URL`: the samples file and one line."""
    summary = write_samples(args, e, tasks, stop, args.out, args.resume, not args.quiet)
    print(json.dumps({**summary, **describe(args)}))
    return 0
