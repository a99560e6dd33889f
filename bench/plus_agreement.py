"""Verdict agreement with evalplus 0.3.1 on HumanEval+ and MBPP+ (base and plus status).

Samples (seeded, written by this script, no model involved): every task's canonical solution,
and variants of them: semantic mutations at a random site (comparison, arithmetic, slicing,
range bounds, min/max, boolean operators, constants), one that is right on the base inputs only
(it counts its calls), and the broken kinds of bench/evaluator.py (None, pass, raise,
sys.exit, a syntax error, truncation, a few infinite loops). Both harnesses judge the same
samples with the same worker count; the script prints the number of samples whose base or
base+plus verdict differs and lists them. With --under-load, codeling judges the same samples
again while two busy-loop processes keep both cores busy, and the script counts the verdicts
that moved (the full-size version of tests/test_plus.py's loaded-machine test).

With --samples NAME=PATH (repeatable), a model's own samples (a `codeling generate` samples.jsonl
for HumanEval+ or MBPP+) are judged instead of the script-made ones: the agreement on real model
output that issue 30 asks for.

evalplus runs from its own virtual environment (it is not a codeling dependency):

    python3 -m venv /tmp/evalplus-venv && /tmp/evalplus-venv/bin/pip install evalplus==0.3.1
    .venv/bin/python bench/plus_agreement.py [--benchmarks humaneval+,mbpp+] [--variants 250]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codeling.evaluate.harness import evaluate_samples
from codeling.evaluate.sandbox import Limits
from codeling.tasks.benchmarks import load_benchmark, locate, spec
from codeling.tasks.plus import plus_inputs

MUTATIONS = [(r" < ", " <= "), (r" <= ", " < "), (r" > ", " >= "), (r" >= ", " > "),
             (r" == ", " != "), (r" \+ 1\b", " + 2"), (r" - 1\b", ""), (r"\[1:\]", "[2:]"),
             (r"\[:-1\]", "[:-2]"), (r"range\((\w+)\)", r"range(\1 - 1)"), (r"\bmax\(", "min("),
             (r"\bmin\(", "max("), (r" and ", " or "), (r" or ", " and "), (r"\bTrue\b", "False"),
             (r"\b0\b", "1"), (r"\bsorted\(", "list("), (r"reverse=True", "reverse=False"),
             (r" // ", " / "), (r" % 2", " % 3"), (r"\.lower\(\)", ""), (r"abs\(", "(")]


def mutate(sol: str, rng: random.Random) -> str | None:
    sites = [(m, rep) for pat, rep in MUTATIONS for m in re.finditer(pat, sol)]
    if not sites:
        return None
    m, rep = rng.choice(sites)
    return sol[:m.start()] + m.expand(rep) + sol[m.end():]


def base_only(task) -> str:
    n_base = len(plus_inputs(task)["base"])
    guard = (f"    global _calls\n    _calls = globals().get('_calls', 0) + 1\n"
             f"    if _calls > {n_base}:\n        return None\n")
    if task.task_id.startswith("HumanEval/"):
        return guard + task.canonical_solution
    head, _, rest = task.canonical_solution.partition(":\n")
    pad = rest[:len(rest) - len(rest.lstrip(" \t"))]
    return head + ":\n" + guard.replace("    ", pad) + rest


def broken(task, rng: random.Random, hang: bool) -> str:
    he = task.task_id.startswith("HumanEval/")
    sig = "" if he else task.canonical_solution.split(":\n", 1)[0] + ":\n"
    body = {"none": "    return None\n", "pass": "    pass\n",
            "raise": "    raise ValueError('broken')\n", "exit": "    import sys\n    sys.exit(0)\n",
            "syntax": "    return return\n", "hang": "    while True:\n        pass\n"}
    kinds = [k for k in body if k != "hang"] + ["truncate"] + (["hang"] if hang else [])
    kind = rng.choice(kinds)
    if kind == "truncate":
        lines = task.canonical_solution.splitlines(keepends=True)
        return "".join(lines[: max(1, len(lines) // 2)])
    return sig + body[kind]


def make_samples(tasks, n_variants: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = [{"task_id": t.task_id, "completion": t.canonical_solution, "kind": "canonical"}
           for t in tasks]
    hangs = 0
    while len(out) < len(tasks) + n_variants:
        t = rng.choice(tasks)
        roll = rng.random()
        if roll < 0.6 and (comp := mutate(t.canonical_solution, rng)) is not None:
            kind = "mutation"
        elif roll < 0.75:
            comp, kind = base_only(t), "base-only"
        else:
            comp = broken(t, rng, hang=hangs < 2)
            kind = "hang" if "while True" in comp and "while True" not in t.canonical_solution \
                else "broken"
            hangs += kind == "hang"
        out.append({"task_id": t.task_id, "completion": comp, "kind": kind})
    return out


def run_evalplus(python: str, name: str, samples: list[dict], tasks, tmp: Path, workers: int,
                 reuse: bool = False) -> tuple[float, dict]:
    """evalplus's statuses per sample (in file order), and its wall time."""
    by_id = {t.task_id: t for t in tasks}
    path = tmp / f"ep-{name.strip('+')}.jsonl"
    done = Path(str(path).replace(".jsonl", "_eval_results.json"))
    if reuse and done.exists():  # a saved run of the same samples (--save, same seed)
        return float("nan"), json.loads(done.read_text())["eval"]
    done.unlink(missing_ok=True)  # evalplus would stop to ask before overwriting it
    with open(path, "w") as f:
        for s in samples:
            f.write(json.dumps({"task_id": s["task_id"],
                                "solution": by_id[s["task_id"]].prompt + s["completion"]}) + "\n")
    data = tmp / f"{name}.jsonl"
    data.write_bytes(gzip.decompress(locate(name).read_bytes()))
    env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(data), "MBPP_OVERRIDE_PATH": str(data)}
    dataset = "humaneval" if name == "humaneval+" else "mbpp"
    start = time.perf_counter()
    res = subprocess.run([python, "-m", "evalplus.evaluate", "--dataset", dataset, "--samples",
                          str(path), "--parallel", str(workers), "--i_just_wanna_run"],
                         env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"evalplus failed ({res.returncode}): {res.stderr[-2000:]}")
    secs = time.perf_counter() - start
    res = json.loads(Path(str(path).replace(".jsonl", "_eval_results.json")).read_text())
    return secs, res["eval"]


def compare(samples: list[dict], ours: list[dict], theirs: dict) -> list[tuple]:
    seen: dict[str, int] = {}
    diffs = []
    for s, r in zip(samples, ours):
        i = seen.get(s["task_id"], 0)
        seen[s["task_id"]] = i + 1
        ep = theirs[s["task_id"]][i]
        ep_base = ep["base_status"] == "pass"
        ep_plus = ep_base and ep["plus_status"] == "pass"
        cl_base = r["base_status"] == "pass"
        cl_plus = r["passed"]
        if (ep_base, ep_plus) != (cl_base, cl_plus):
            diffs.append((s["task_id"], s["kind"], f"evalplus {ep['base_status']}/"
                          f"{ep['plus_status']}", f"codeling {r['base_status']}/"
                          f"{r['plus_status']} {r['result'][:60]}"))
    return diffs


def limits_of(name: str) -> Limits:
    """The benchmark's own limits, as `codeling evaluate --benchmark` uses them."""
    s = spec(name)
    return Limits(timeout=s.timeout, memory_mb=s.memory_mb)


def under_load(tasks, samples: list[dict], quiet: list[dict], out: Path, workers: int) -> int:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        start = time.perf_counter()
        evaluate_samples(tasks, [dict(s) for s in samples], out, workers=workers,
                         progress=False, limits=limits_of(tasks[0].source))
        secs = time.perf_counter() - start
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    busy = [json.loads(x) for x in (out / "results.jsonl").open()]
    key = ("passed", "base_status", "plus_status")
    moved = [(s["task_id"], s["kind"], [q[k] for k in key], [b[k] for k in key])
             for s, q, b in zip(samples, quiet, busy) if [q[k] for k in key] != [b[k] for k in key]]
    print(f"  under load (two busy loops, {secs:.1f} s): {len(moved)} of {len(samples)} "
          f"verdicts moved; timeouts re-judged: {sum(bool(b.get('rejudged')) for b in busy)}")
    for m in moved:
        print("   ", *m)
    return len(moved)


def model_samples(arg: str) -> tuple[str, list[dict]]:
    """NAME=PATH: a model's samples for benchmark NAME, each tagged kind "model"."""
    name, sep, path = arg.partition("=")
    if not sep or name not in ("humaneval+", "mbpp+"):
        raise SystemExit(f"--samples {arg!r}: expected humaneval+=PATH or mbpp+=PATH")
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                rows.append({"task_id": r["task_id"], "completion": r["completion"],
                             "kind": "model"})
            except (json.JSONDecodeError, KeyError) as e:
                raise SystemExit(f"{path}:{n}: not a samples row ({e!r})") from e
    return name, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmarks", default="humaneval+,mbpp+")
    ap.add_argument("--variants", type=int, default=250, help="non-canonical samples per set")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--evalplus-python", default="/tmp/evalplus-venv/bin/python")
    ap.add_argument("--save", default=None, help="folder to keep samples and results in")
    ap.add_argument("--under-load", action="store_true",
                    help="judge again with both cores busy; count the verdicts that moved")
    ap.add_argument("--samples", action="append", default=[], metavar="NAME=PATH",
                    help="judge a model's samples.jsonl for benchmark NAME instead of made ones")
    ap.add_argument("--skip-evalplus", action="store_true")
    ap.add_argument("--reuse-evalplus", action="store_true",
                    help="read evalplus's results from --save's folder if they are there")
    args = ap.parse_args()
    given = dict(model_samples(spec_) for spec_ in args.samples)
    if given:
        args.benchmarks = ",".join(given)
    total_diff = 0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(args.save or d)
        tmp.mkdir(parents=True, exist_ok=True)
        for name in args.benchmarks.split(","):
            tasks = load_benchmark(name)
            samples = given.get(name) or make_samples(tasks, args.variants, args.seed)
            (tmp / f"samples-{name}.jsonl").write_text(
                "".join(json.dumps(s) + "\n" for s in samples))
            start = time.perf_counter()
            evaluate_samples(tasks, [dict(s) for s in samples], tmp / f"cl-{name}",
                             workers=args.workers, progress=False, limits=limits_of(name))
            cl_s = time.perf_counter() - start
            ours = [json.loads(x) for x in (tmp / f"cl-{name}/results.jsonl").open()]
            if args.under_load:
                moved = under_load(tasks, samples, ours, tmp / f"cl-{name}-busy", args.workers)
                total_diff += moved
            if args.skip_evalplus:
                continue
            ep_s, theirs = run_evalplus(args.evalplus_python, name, samples, tasks, tmp,
                                        args.workers, args.reuse_evalplus)
            diffs = compare(samples, ours, theirs)
            total_diff += len(diffs)
            kinds = {k: sum(s["kind"] == k for s in samples) for k in
                     ("canonical", "mutation", "base-only", "broken", "hang", "model")}
            n_pass = sum(r["passed"] for r in ours)
            n_base = sum(r["base_status"] == "pass" for r in ours)
            print(f"{name}: {len(samples)} samples {kinds}; codeling base pass {n_base}, "
                  f"plus pass {n_pass}; differing verdicts: {len(diffs)}  "
                  f"(wall: codeling {cl_s:.1f} s, evalplus {ep_s:.1f} s)")
            for diff in diffs:
                print("   ", *diff)
    return 0 if total_diff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
