"""`codeling runs [DIR ...] [--json | --csv]`: the experiments table, with the plan's verdict
(docs/plan.md). `codeling runs A B [C ...] --compare [--metric dev|BENCH]`: each DIR is one
recipe (its runs: seeds, builds); each recipe's mean rate ± its standard error, and each
against the first: a difference under 2 standard errors reads "tie" (reporting/compare.py).

A run folder is any folder holding `metrics.jsonl` or `run.json` (what `train.train`,
`codeling pretrain`, `sft` and `distill` write); folders are found recursively under each DIR
(default `runs`), skipping `checkpoints/` and hidden folders (reporting/files.py). Evaluation
folders (`codeling evaluate --out`, a `summary.json`) belong to a run when they sit in
`RUN/eval/<benchmark>/`, or in `PIPELINE/eval/<benchmark>/` beside the pipeline's stage runs,
where they belong to the last trained stage (distill, else sft, else pretrain): that is the
model the pipeline evaluates. A summary naming its `checkpoint` goes to the run holding it.

Columns that make a number honest:
- "selected": what chose the checkpoint (best.json `selected_on`) and its step: "dev" (the dev
  set, never reported), "val_loss" (no dev set), or "mini (test set)" for runs made before dev
  selection, whose in-training evals were mini-HumanEval (the maximum over several looks);
- "dev pass": the dev pass count at the selected step, ± its standard error in tasks (the
  whole dev set where that eval generated it, else the eval's fixed subset: the count's
  denominator says which); HumanEval pass@1 ± its standard error in points;
- "twins": per benchmark, eval tasks that had a behavioural twin in the run's training data
  (tasks/report.json `twins`), "0" when none; "CONTAMINATED" leads the cell when report.json
  says the data kept them (`--allow-contamination`); "unchecked" for task sets built before
  the twin check; blank without a task set (pretraining).

Decision rule (docs/plan.md; "Option B" is its lever B, a bigger model), on the mini-HumanEval
pass count of the run's final evaluation, else of a pre-dev run's in-training evals:
- ≥ 5/20  → "success";
- 1–4/20  → "partial: more data or Option B (bigger model)";
- 0/20    → "zero: data is not the bottleneck → bigger model";
- no mini eval (e.g. pretraining only) → "n/a".
Another task count N is judged at the same fractions (≥ 25% success, > 0 partial).

Status: "done" (checkpoints/final exists and the configured steps were run), "time_budget" (a
final checkpoint before the configured steps, in a run with `time_budget_s`), "early_stop" (a
final checkpoint before the configured steps otherwise), "running" (no final; metrics.jsonl written in
the last `--stale-minutes`), "failed" (no final and nothing written lately: crashed, killed or
interrupted; `--resume` continues from the newest step_N). Missing files leave blank cells; a
malformed file is an error naming it (and the line, for JSONL). No torch import: files only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from codeling.configerror import ConfigError
from codeling.evaluate.metrics import binomial_se
from codeling.io import DataError, iter_jsonl
from codeling.reporting.compare import Recipe, decide, format_comparison, recipe
from codeling.reporting.files import (
    discover,
    eval_files,
    eval_summaries,
    read_json,
    read_metrics,
    read_toml,
    tasks_report_path,
)
from codeling.reporting.run import Run
from codeling.reporting.table import format_table, human, to_csv

SUCCESS_FRACTION = 5 / 20  # docs/plan.md: "at least 5 of 20 mini tasks"
VERDICTS = {"success": "success", "partial": "partial: more data or Option B (bigger model)",
            "zero": "zero: data is not the bottleneck → bigger model", "n/a": "n/a"}
TRAINED_STAGES = ("distill", "sft", "pretrain")  # later stages first: the model evaluated last
STALE_MINUTES = 15.0
LEGACY_SET = "mini"  # in-training evals without `eval_set` were mini-HumanEval


def verdict(best_pass: int | None, n_tasks: int | None) -> str:
    """The plan's decision rule on the mini pass count (see the module docstring)."""
    if best_pass is None or not n_tasks:
        return VERDICTS["n/a"]
    if best_pass / n_tasks >= SUCCESS_FRACTION:
        return VERDICTS["success"]
    return VERDICTS["partial"] if best_pass > 0 else VERDICTS["zero"]


# ---- one run ----

def load_run(path: Path, root: Path | None = None, now: float | None = None,
             stale_minutes: float = STALE_MINUTES) -> Run:
    """Read one run folder (evaluation folders are attached by `collect_runs`)."""
    name = path.name
    if root is not None:
        rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        name = str(rel) if str(rel) != "." else root.name
    run = Run(path=path, name=name, info=read_json(path / "run.json"),
              config=read_toml(path / "config.toml"), metrics=read_metrics(path / "metrics.jsonl"))
    info = run.info
    run.stage = str(info.get("stage", ""))
    run.base = short_checkpoint(info.get("init") or info.get("base") or info.get("student", ""))
    if not run.base and run.stage == "pretrain":
        run.base = "scratch"
    run.params, run.trainable_params = info.get("params"), info.get("trainable_params")
    run.data = data_size(info)
    steps = [m["step"] for m in run.metrics if isinstance(m.get("step"), int)]
    run.steps = max(steps) if steps else None
    section = run.config.get(run.stage, {}) if run.stage else {}
    run.target_steps = section.get("steps") if isinstance(section, dict) else None
    train_lines = [m for m in run.metrics if "tokens" in m]
    if train_lines:
        run.tokens = train_lines[-1].get("tokens")
        run.elapsed_s = train_lines[-1].get("elapsed_s")
    _selected_eval(run, eval_files(path), read_json(path / "best.json"))
    if run.stage != "pretrain":
        _twins(run)
    budget = section.get("time_budget_s") if isinstance(section, dict) else None
    run.status = status(path, run.steps, run.target_steps, now, stale_minutes, bool(budget))
    return run


def _selected_eval(run: Run, evals: dict[int, dict], best: dict) -> None:
    """The selected step: best.json's (the loop's choice, ties broken by validation loss),
    else the most passes, ties to the earliest step; what chose it, and its dev numbers."""
    candidates = {s: e for s, e in evals.items() if isinstance(e.get("pass"), int)}
    for m in run.metrics:  # metrics lines carry the scalars even when evals/ was pruned
        if isinstance(m.get("pass"), int) and m.get("step") not in candidates:
            candidates[m["step"]] = m
    run.mini_info = any("mini_info" in e for e in evals.values())
    step = best.get("step")
    if candidates and step not in candidates:
        step = max(candidates, key=lambda s: (candidates[s]["pass"], -s))
    if step is None:
        return
    ev = candidates.get(step, {})
    eval_set = ev.get("eval_set", LEGACY_SET if ev else "")
    run.selected_step = step
    run.selected_on = str(best.get("selected_on") or eval_set or "val_loss")
    if not ev:
        return
    run.syntax, run.collapse = ev.get("syntax_valid"), ev.get("collapse_rate")
    if eval_set == LEGACY_SET:  # a pre-dev run: its in-training evals were the benchmark
        run.best_step, run.best_pass = step, ev["pass"]
        run.n_tasks = ev.get("n_tasks") or 20
    else:
        _dev_numbers(run, step, ev)


def _dev_numbers(run: Run, step: int, ev: dict) -> None:
    """Dev pass of the selected step: the whole dev set's (`dev_full`, from the loop's last
    eval) where that eval has it, else what it generated on (the fixed subset); the standard
    error is the eval's own, else binomial. evals/step_N.json holds `dev_full`; a metrics line
    does not, so it is read from the file when the line was all there was."""
    full = ev.get("dev_full") or read_json(run.path / "evals" / f"step_{step}.json").get(
        "dev_full")
    src = full if isinstance(full, dict) and isinstance(full.get("pass"), int) else ev
    run.dev_pass, run.dev_n = src["pass"], src.get("n_tasks")
    se = src.get("pass@1_se")
    if isinstance(se, (int, float)):
        run.dev_se = float(se)
    elif run.dev_n:
        run.dev_se = binomial_se(run.dev_pass, run.dev_n)
    loss = ev.get("solution_loss")
    run.solution_loss = float(loss) if isinstance(loss, (int, float)) else None


def _twins(run: Run) -> None:
    path = tasks_report_path(run.path, run.info)
    if path is None:
        return
    rep = read_json(path)
    run.tasks_report = path
    run.contaminated = bool(rep.get("contaminated") or False)
    twins = rep.get("twins")
    if twins is None:
        return
    if not (isinstance(twins, dict) and all(
            isinstance(v, dict) and isinstance(v.get("eval_tasks_with_twin"), int)
            for v in twins.values())):
        raise DataError(path, "expected {eval_set: {eval_tasks_with_twin: int, ...}}",
                        field="twins")
    run.twins = twins


def attach_evals(runs: list[Run]) -> None:
    """Give each run the evaluation folders that belong to it (see the module docstring)."""
    by_path = {r.path: r for r in runs}
    parents: dict[Path, list[Run]] = {}
    for r in runs:
        parents.setdefault(r.path.parent, []).append(r)
    folders = [r.path for r in runs] + [p for p in parents if p not in by_path]
    for folder in folders:
        for bench, (where, summary) in eval_summaries(folder).items():
            owner = _owner(summary, folder, by_path, parents.get(folder, []))
            if owner is not None:
                owner.evals[bench] = summary
                owner.eval_dirs[bench] = str(where)


def _owner(summary: dict, folder: Path, by_path: dict[Path, Run], siblings: list[Run]):
    ckpt = summary.get("checkpoint")
    if isinstance(ckpt, str):
        for parent in Path(ckpt).resolve().parents:
            if parent in by_path:
                return by_path[parent]
    if folder in by_path:
        return by_path[folder]
    for stage in TRAINED_STAGES:
        for r in siblings:
            if r.stage == stage:
                return r
    return siblings[-1] if siblings else None


def finish(run: Run) -> None:
    """Fill what depends on attached evaluations, then the verdict. The final mini eval (of
    the selected checkpoint) is the run's mini number: no maximum over in-training looks."""
    mini = run.evals.get("mini")
    if mini is not None:
        passed, n = summary_counts(mini, Path(run.eval_dirs["mini"]))
        if passed is not None:
            run.best_pass, run.n_tasks, run.best_step = passed, n, None
            run.syntax, run.collapse = mini.get("syntax_valid"), mini.get("collapse_rate")
    he = run.evals.get("humaneval")
    if he is not None:
        run.humaneval, run.humaneval_se = he.get("pass@1"), he.get("pass@1_se")
    run.verdict = verdict(run.best_pass, run.n_tasks)


def summary_counts(summary: dict, folder: Path) -> tuple[int | None, int | None]:
    """(tasks passed by their first sample, tasks) from results.jsonl, else from pass@1."""
    results = folder / "results.jsonl"
    if results.is_file():
        first: dict[str, bool] = {}
        for _, row in iter_jsonl(results):
            first.setdefault(str(row.get("task_id")), bool(row.get("passed")))
        return sum(first.values()), summary.get("n_tasks") or len(first)
    n = summary.get("n_tasks")
    p = summary.get("pass@1")
    if isinstance(n, int) and isinstance(p, (int, float)):
        return round(p * n), n
    return None, None


def status(path: Path, steps: int | None, target: int | None, now: float | None = None,
           stale_minutes: float = STALE_MINUTES, budgeted: bool = False) -> str:
    if (path / "checkpoints" / "final").is_dir():
        if steps is not None and target and steps < target:
            return "time_budget" if budgeted else "early_stop"
        return "done"
    metrics = path / "metrics.jsonl"
    newest = metrics.stat().st_mtime if metrics.exists() else (path / "run.json").stat().st_mtime
    age = (now if now is not None else time.time()) - newest
    return "running" if age < stale_minutes * 60 else "failed"


def short_checkpoint(path: str) -> str:
    """`.../runs/cpu/pretrain/checkpoints/final` → `pretrain/final`."""
    if not path:
        return ""
    p = Path(path)
    if p.parent.name == "checkpoints":
        return f"{p.parent.parent.name}/{p.name}"
    return p.name


def data_size(info: dict) -> str:
    tokens = info.get("tokens")
    if isinstance(tokens, dict) and isinstance(tokens.get("train"), int):
        return f"{human(tokens['train'])} tokens"
    if isinstance(info.get("n_train"), int):
        return f"{info['n_train']:,} tasks"
    return ""


def collect_runs(roots: list[Path], now: float | None = None,
                 stale_minutes: float = STALE_MINUTES) -> list[Run]:
    """Every run under the roots, with its evaluations and verdict."""
    resolved = [r.resolve() for r in roots]
    # names are paths below the one root, or below the folder that several roots share
    base = resolved[0] if len(resolved) == 1 else Path(os.path.commonpath(resolved))
    runs = [load_run(path, base, now, stale_minutes) for path in discover(roots)]
    attach_evals(runs)
    for r in runs:
        finish(r)
    return runs


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="*", default=["runs"], metavar="DIR",
                   help="folders searched recursively for runs (default: runs)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON list of rows")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header line")
    p.add_argument("--compare", action="store_true",
                   help="each DIR is one recipe (its runs: seeds, builds): print each recipe's "
                        "mean ± standard error and each against the first DIR; a difference "
                        "under 2 standard errors reads 'tie'")
    p.add_argument("--metric", default="dev",
                   help="what --compare compares: dev (the selected step's dev pass rate; "
                        "default) or a benchmark's final pass@1 (mini, humaneval, mbpp, ...)")
    p.add_argument("--stale-minutes", type=float, default=STALE_MINUTES,
                   help="a run without a final checkpoint and no metrics written for this long "
                        "is reported as failed")


def compare(dirs: list[Path], metric: str = "dev", stale_minutes: float = STALE_MINUTES
            ) -> list[Recipe]:
    """One recipe per DIR (the runs under it), in the order given; a DIR without a run that
    has the metric is an error naming it."""
    recipes = []
    for d in dirs:
        rec = recipe(str(d), collect_runs([d], stale_minutes=stale_minutes), metric)
        if rec is None:
            raise DataError(d, f"no run with a {metric} pass rate under this folder")
        recipes.append(rec)
    return recipes


def main(args: argparse.Namespace) -> int:
    if args.compare:
        if len(args.dirs) < 2:
            raise ConfigError("--compare needs two or more DIRs, one per recipe")
        recipes = compare([Path(d) for d in args.dirs], args.metric, args.stale_minutes)
        if args.json:
            print(json.dumps({"metric": args.metric, "recipes": [r.row() for r in recipes],
                              "comparisons": [decide(recipes[0], r) for r in recipes[1:]]},
                             indent=2))
        else:
            print(format_comparison(recipes, args.metric))
        return 0
    runs = collect_runs([Path(d) for d in args.dirs], stale_minutes=args.stale_minutes)
    if args.json:
        print(json.dumps([r.row() for r in runs], indent=2))
    elif args.csv:
        sys.stdout.write(to_csv(runs))
    elif not runs:
        print(f"no runs under {', '.join(args.dirs)} (a run folder has metrics.jsonl or run.json)")
    else:
        print(format_table(runs))
    return 0
