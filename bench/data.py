"""What the training data changed (issue 12 §5): dev-set greedy pass, syntax validity and the
NameError rate per prompt style and for composed against family tasks, for one or more runs.

    .venv/bin/python bench/data.py RUN_A [RUN_B ...] [--generate] [--benchmark humaneval]
                                   [--max-new-tokens N] [--workers N] [--out FILE]

RUN is a pipeline run dir (RUN/sft, RUN/data/tasks) or an sft run folder. By default the rows
are the run's own dev evaluation of its selected checkpoint: `sft/evals/samples_step_N.jsonl`
for best.json's step (judged by the sandbox during training). `--generate` instead generates
greedily on the task set's dev.jsonl from `sft/checkpoints/best` and judges it here (for runs
whose evals were pruned, or to use another --max-new-tokens). The slices come from dev.jsonl:
`style`, and kind = "composed" (extra `composed`), "family" (other synthetic tasks) or the
task's source (e.g. "mbpp"). Metrics are metrics.summarize's: pass@1 (greedy), syntax_valid,
name_error_rate (share of judged samples failing on a NameError).

`--benchmark NAME` (repeatable) also counts the NameErrors in RUN/eval/NAME/results.jsonl (the
pipeline's evaluation of the same checkpoint). Each run's numbers are written to
RUN/bench_data.json (bench_data_generate.json with --generate); --out writes all runs together.

`--sweep N` measures prompt shape alone (tasks.dev.style_sweep): N new tasks of the dev set's
held-out families, each in every synthetic style (same names, solution and test cases), and the dev
set's MBPP tasks in every MBPP style, generated greedily from sft/checkpoints/best; slices are
kind:style, and each style's pass rate is printed against its kind's doctest slice
(bench_data_sweep.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from codeling.evaluate.metrics import is_name_error, summarize
from codeling.io import DataError, atomic_write_json, iter_jsonl
from codeling.tasks.schema import Task, read_tasks

METRICS = ("pass@1", "syntax_valid", "name_error_rate")


def sft_dir(run: Path) -> Path:
    for d in (run / "sft", run):
        if (d / "best.json").is_file() or (d / "checkpoints").is_dir():
            return d
    raise FileNotFoundError(f"{run}: no sft run (best.json or checkpoints/) here or in sft/")


def tasks_dir(run: Path, sft: Path) -> Path:
    info = sft / "run.json"
    places = [run / "data" / "tasks", run / "tasks", sft.parent / "data" / "tasks"]
    if info.is_file():
        recorded = json.loads(info.read_text()).get("tasks")
        if isinstance(recorded, str):
            places.insert(0, Path(recorded))
    for p in places:
        if (p / "dev.jsonl").is_file():
            return p
    raise FileNotFoundError(f"{run}: no dev.jsonl in {', '.join(map(str, places))}")


def kind(task: Task) -> str:
    if task.extra.get("composed"):
        return "composed"
    source = task.source.split("/")[0] if task.source else ""
    return "family" if source in ("synthetic", "") else source


def selected_rows(sft: Path) -> tuple[list[dict], int]:
    best = sft / "best.json"
    if not best.is_file():
        raise FileNotFoundError(f"{best}: no selected checkpoint (use --generate?)")
    step = json.loads(best.read_text()).get("step")
    path = sft / "evals" / f"samples_step_{step}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the selected step's dev samples are gone "
                                "(use --generate)")
    return [row for _, row in iter_jsonl(path)], int(step)


def generated_rows(sft: Path, tasks: list[Task], max_new_tokens: int, workers: int
                   ) -> list[dict]:
    from codeling.evaluate.live import GenerationEval, dev_stop
    from codeling.generate import load_for_inference
    from codeling.pipeline import best_checkpoint

    model, tokenizer = load_for_inference(best_checkpoint(sft))
    ev = GenerationEval(tasks, tokenizer, dev_stop(), max_new_tokens=max_new_tokens,
                        workers=workers)
    return ev.judge(ev.generate(model))


def breakdown(rows: list[dict], tasks: list[Task], where: Path, cross: bool = False) -> dict:
    by_id = {t.task_id: t for t in tasks}
    unknown = sorted({r["task_id"] for r in rows} - by_id.keys())
    if unknown:
        raise DataError(where, f"{len(unknown)} task ids not in dev.jsonl, e.g. {unknown[0]!r}",
                        field="task_id")
    slices: dict[str, list[Task]] = {"all": tasks}
    for t in tasks:
        style = t.extra.get("style") or "default"
        slices.setdefault(f"style={style}", []).append(t)
        slices.setdefault(f"kind={kind(t)}", []).append(t)
        if cross:  # the sweep: synthetic and MBPP styles share names but not material
            slices.setdefault(f"{kind(t)}:style={style}", []).append(t)
    out = {}
    for name, group in sorted(slices.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        ids = {t.task_id for t in group}
        s = summarize([r for r in rows if r["task_id"] in ids], group, [1])
        out[name] = {"n": len(group), **{k: s[k] for k in METRICS}}
    return out


def benchmark_name_errors(run: Path, bench: str) -> dict:
    path = run / "eval" / bench / "results.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {bench} evaluation in this run")
    rows = [r for _, r in iter_jsonl(path)]
    judged = [r for r in rows if not r.get("error")]
    first: dict[str, dict] = {}
    for r in sorted(judged, key=lambda r: r.get("sample_index", 0)):
        first.setdefault(r["task_id"], r)
    reasons = Counter(str(r.get("result", "")).split(":")[1].strip() if
                      str(r.get("result", "")).startswith("failed:") else r.get("result", "")
                      for r in judged if not r.get("passed"))
    return {"samples": len(judged), "name_errors": sum(map(is_name_error, judged)),
            "tasks": len(first), "tasks_name_error_first_sample":
                sum(map(is_name_error, first.values())),
            "passed": sum(bool(r.get("passed")) for r in judged),
            "top_failures": dict(reasons.most_common(5))}


def runnable(sweep: list[Task], workers: int) -> list[Task]:
    """The sweep without any base one of whose shapes fails validation (it would not be
    prompt shape that failed it)."""
    from codeling.tasks.build import validation_reasons

    bad = {t.extra["sweep"] for t, why in zip(sweep, validation_reasons(sweep, workers))
           if why is not None}
    if bad:
        print(f"sweep: dropped {len(bad)} bases that fail validation in some shape: "
              f"{sorted(bad)[:3]}", file=sys.stderr)
    return [t for t in sweep if t.extra["sweep"] not in bad]


def vs_doctest(slices: dict) -> dict:
    """Each kind:style slice's pass rate over its kind's doctest slice (None: doctest is 0)."""
    out = {}
    for name, m in slices.items():
        if ":style=" in name:
            base = slices.get(name.split(":")[0] + ":style=doctest")
            out[name] = (m["pass@1"] / base["pass@1"]) if base and base["pass@1"] else None
    return out


def fmt(v: float) -> str:
    return f"{100 * v:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--generate", action="store_true",
                   help="regenerate greedily on dev.jsonl from sft/checkpoints/best")
    p.add_argument("--max-new-tokens", type=int, default=0,
                   help="with --generate (0: the run's sft.eval_max_new_tokens, else 160)")
    p.add_argument("--workers", type=int, default=0, help="sandbox workers (0: one per core)")
    p.add_argument("--benchmark", action="append", default=[],
                   help="also count NameErrors in RUN/eval/NAME/results.jsonl (repeatable)")
    p.add_argument("--sweep", type=int, default=0, metavar="N",
                   help="instead: N dev-family tasks in every prompt style (+ MBPP dev in each)")
    p.add_argument("--data-dir", default=None, help="MBPP's folder for --sweep (default: found)")
    p.add_argument("--out", default=None, help="also write every run's numbers to this JSON")
    args = p.parse_args(argv)
    everything = {}
    for raw in args.runs:
        run = Path(raw)
        sft = sft_dir(run)
        tdir = tasks_dir(run, sft)
        tasks = read_tasks(tdir / "dev.jsonl")
        if args.sweep:
            from codeling.tasks.dev import style_sweep

            tasks = runnable(style_sweep(tasks, args.sweep, data_dir=args.data_dir), args.workers)
        if args.sweep or args.generate:
            max_new = args.max_new_tokens or _run_max_new_tokens(sft)
            rows = generated_rows(sft, tasks, max_new, args.workers)
            source = f"generated greedily from {sft}/checkpoints/best, {max_new} new tokens"
            if args.sweep:
                source = (f"style sweep of {tdir}/dev.jsonl ({args.sweep} family tasks per "
                          f"style), {source}")
        else:
            rows, step = selected_rows(sft)
            source = f"{sft}/evals/samples_step_{step}.jsonl (selected step)"
        result = {"run": str(run), "dev": str(tdir / "dev.jsonl"), "rows": source,
                  "slices": breakdown(rows, tasks, tdir / "dev.jsonl", cross=bool(args.sweep))}
        for bench in args.benchmark:
            result.setdefault("benchmarks", {})[bench] = benchmark_name_errors(run, bench)
        print(f"\n{run}  ({source})")
        print(f"  {'slice':28s} {'n':>5s} {'pass':>7s} {'syntax':>7s} {'NameErr':>7s}")
        for name, m in result["slices"].items():
            print(f"  {name:28s} {m['n']:5d} {fmt(m['pass@1'])} {fmt(m['syntax_valid'])} "
                  f"{fmt(m['name_error_rate'])}")
        for bench, b in result.get("benchmarks", {}).items():
            print(f"  {bench}: NameError in {b['name_errors']} of {b['samples']} samples "
                  f"({b['tasks_name_error_first_sample']} of {b['tasks']} tasks' first "
                  f"sample); passed {b['passed']}; top failures {b['top_failures']}")
        if args.sweep:
            result["vs_doctest"] = vs_doctest(result["slices"])
            for k, v in result["vs_doctest"].items():
                print(f"  {k:28s} {'-' if v is None else f'{v:.2f}'} x its doctest slice")
        written = run / ("bench_data_sweep.json" if args.sweep else
                         "bench_data_generate.json" if args.generate else "bench_data.json")
        atomic_write_json(written, result)
        print(f"  written: {written}")
        everything[str(run)] = result
    if args.out:
        atomic_write_json(Path(args.out), everything)
    return 0


def _run_max_new_tokens(sft: Path) -> int:
    import tomllib

    cfg = sft / "config.toml"
    if cfg.is_file():
        data = tomllib.loads(cfg.read_text())
        value = data.get("sft", {}).get("eval_max_new_tokens", data.get("eval_max_new_tokens"))
        if isinstance(value, int) and value > 0:
            return value
    return 160


if __name__ == "__main__":
    sys.exit(main())
