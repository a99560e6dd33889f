"""`codeling runs [DIR ...] [--json | --csv]`: the experiments table, with the plan's verdict.

A run folder is any folder holding `metrics.jsonl` or `run.json` (what `train.train`,
`codeling pretrain`, `sft` and `distill` write); folders are found recursively under each DIR
(default `runs`), skipping `checkpoints/` and hidden folders. Evaluation folders (`codeling
evaluate --out`, a `summary.json`) belong to a run when they sit in `RUN/eval/<benchmark>/`, or
in `PIPELINE/eval/<benchmark>/` beside the pipeline's stage runs, where they belong to the last
trained stage (distill, else sft, else pretrain): that is the model the pipeline evaluates. A
summary naming its `checkpoint` is attached to the run holding that checkpoint instead.

Decision rule (the plan's decision points, on the best mini-HumanEval pass count of a run):
- ≥ 5/20  → "success";
- 1–4/20  → "partial: more data or Option B (bigger model)";
- 0/20    → "zero: data is not the bottleneck → bigger model";
- no mini eval (e.g. pretraining only) → "n/a".
Another task count N is judged at the same fractions (≥ 25% success, > 0 partial).

Status: "done" (checkpoints/final exists and the configured steps were run), "early_stop" (a
final checkpoint before the configured steps), "running" (no final; metrics.jsonl written in
the last `--stale-minutes`), "failed" (no final and nothing written lately: crashed, killed or
interrupted; `--resume` continues from the newest step_N). Missing files leave blank cells; a
malformed file is an error naming it (and the line, for JSONL). No torch import: files only.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from codeling.io import DataError, iter_jsonl

SUCCESS_FRACTION = 5 / 20  # the plan's "at least 5 of 20 mini tasks"
VERDICTS = {"success": "success", "partial": "partial: more data or Option B (bigger model)",
            "zero": "zero: data is not the bottleneck → bigger model", "n/a": "n/a"}
TRAINED_STAGES = ("distill", "sft", "pretrain")  # later stages first: the model evaluated last
SKIP_DIRS = {"checkpoints", "shards", "evals", "report", "__pycache__", "tensorboard", "mlruns"}
STALE_MINUTES = 15.0


@dataclass
class Run:
    """Everything the table and the report need about one run folder."""

    path: Path
    name: str
    stage: str = ""
    base: str = ""
    params: int | None = None
    trainable_params: int | None = None
    data: str = ""  # "12.3M tokens" or "1,234 tasks"
    steps: int | None = None  # the last step logged
    target_steps: int | None = None  # from config.toml
    best_pass: int | None = None  # best mini pass count over the run's evals
    n_tasks: int | None = None
    best_step: int | None = None
    humaneval: float | None = None  # pass@1
    syntax: float | None = None  # rate, 0-1, at the best eval
    collapse: float | None = None
    verdict: str = "n/a"
    status: str = ""
    tokens: int | None = None
    elapsed_s: float | None = None
    evals: dict[str, dict] = field(default_factory=dict)  # benchmark -> summary.json
    eval_dirs: dict[str, str] = field(default_factory=dict)  # benchmark -> folder
    info: dict = field(default_factory=dict)  # run.json
    config: dict = field(default_factory=dict)  # config.toml
    metrics: list[dict] = field(default_factory=list)  # metrics.jsonl lines

    def row(self) -> dict:
        """The table's columns (JSON/CSV friendly; rates as 0-1 floats)."""
        return {"name": self.name, "stage": self.stage, "base": self.base,
                "params": self.params, "trainable_params": self.trainable_params,
                "data": self.data, "steps": self.steps, "target_steps": self.target_steps,
                "best_pass": self.best_pass, "n_tasks": self.n_tasks, "best_step": self.best_step,
                "humaneval_pass@1": self.humaneval, "syntax_valid": self.syntax,
                "collapse_rate": self.collapse, "verdict": self.verdict, "status": self.status,
                "tokens": self.tokens, "elapsed_s": self.elapsed_s, "path": str(self.path),
                "evals": {k: _brief(v) for k, v in self.evals.items()}}


def verdict(best_pass: int | None, n_tasks: int | None) -> str:
    """The plan's decision rule on the best mini pass count (see the module docstring)."""
    if best_pass is None or not n_tasks:
        return VERDICTS["n/a"]
    if best_pass / n_tasks >= SUCCESS_FRACTION:
        return VERDICTS["success"]
    return VERDICTS["partial"] if best_pass > 0 else VERDICTS["zero"]


# ---- reading files ----

def read_json(path: Path) -> dict:
    """A JSON object, {} when the file is missing; DataError naming the file when malformed."""
    if not path.is_file():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(path, f"invalid JSON ({e.msg})", line=e.lineno) from e
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def read_toml(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise DataError(path, f"invalid TOML ({e})") from e


def read_metrics(path: Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path)] if path.is_file() else []


def eval_files(run_dir: Path) -> dict[int, dict]:
    """step -> evals/step_N.json (the evaluator's dict, with by_category)."""
    found = {}
    for f in (run_dir / "evals").glob("step_*.json"):
        step = f.stem.removeprefix("step_")
        if step.isdigit():
            found[int(step)] = read_json(f)
    return dict(sorted(found.items()))


# ---- discovery ----

def is_run_dir(d: Path) -> bool:
    return (d / "metrics.jsonl").is_file() or (d / "run.json").is_file()


def discover(roots: list[Path]) -> list[Path]:
    """Run folders under each root (the root itself included), sorted, without duplicates."""
    found: dict[Path, None] = {}
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such folder")
        for dirpath, dirnames, _ in os.walk(root):
            d = Path(dirpath)
            dirnames[:] = sorted(n for n in dirnames if n not in SKIP_DIRS
                                 and not n.startswith("."))
            if is_run_dir(d):
                found[d.resolve()] = None
    return list(found)


def eval_summaries(folder: Path) -> dict[str, tuple[Path, dict]]:
    """benchmark -> (folder, summary.json) for each `folder/eval/<benchmark>/summary.json`."""
    out = {}
    for f in sorted((folder / "eval").glob("*/summary.json")):
        summary = read_json(f)
        out[str(summary.get("benchmark") or f.parent.name)] = (f.parent, summary)
    return out


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
    _best_eval(run, eval_files(path), read_json(path / "best.json"))
    run.status = status(path, run.steps, run.target_steps, now, stale_minutes)
    return run


def _best_eval(run: Run, evals: dict[int, dict], best: dict) -> None:
    """The best generation eval of training: best.json's step (the loop's choice, which
    breaks ties by validation loss), else the most passes, ties to the earliest step."""
    candidates = {s: e for s, e in evals.items() if isinstance(e.get("pass"), int)}
    for m in run.metrics:  # metrics lines carry the scalars even when evals/ was pruned
        if isinstance(m.get("pass"), int) and m.get("step") not in candidates:
            candidates[m["step"]] = m
    if not candidates:
        return
    step = best.get("step")
    if step not in candidates:
        step = max(candidates, key=lambda s: (candidates[s]["pass"], -s))
    best = candidates[step]
    run.best_step, run.best_pass = step, best["pass"]
    run.n_tasks = best.get("n_tasks") or 20
    run.syntax, run.collapse = best.get("syntax_valid"), best.get("collapse_rate")


def finish(run: Run) -> None:
    """Fill what depends on attached evaluations, then the verdict."""
    mini = run.evals.get("mini")
    if mini is not None:
        passed, n = summary_counts(mini, Path(run.eval_dirs["mini"]))
        if passed is not None and (run.best_pass is None or passed > run.best_pass):
            run.best_pass, run.n_tasks, run.best_step = passed, n, None
            run.syntax, run.collapse = mini.get("syntax_valid"), mini.get("collapse_rate")
    he = run.evals.get("humaneval")
    if he is not None:
        run.humaneval = he.get("pass@1")
    run.verdict = verdict(run.best_pass, run.n_tasks)


def summary_counts(summary: dict, folder: Path) -> tuple[int | None, int | None]:
    """(tasks passed by their first sample, tasks) from results.jsonl, else from pass@1."""
    results = folder / "results.jsonl"
    if results.is_file():
        first: dict[str, bool] = {}
        for _, row in iter_jsonl(results):
            first.setdefault(str(row.get("task_id")), bool(row.get("passed")))
        return sum(first.values()), len(first)
    n = summary.get("n_tasks")
    p = summary.get("pass@1")
    if isinstance(n, int) and isinstance(p, (int, float)):
        return round(p * n), n
    return None, None


def status(path: Path, steps: int | None, target: int | None, now: float | None = None,
           stale_minutes: float = STALE_MINUTES) -> str:
    if (path / "checkpoints" / "final").is_dir():
        return "early_stop" if steps is not None and target and steps < target else "done"
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
    runs = []
    resolved = [r.resolve() for r in roots]
    # names are paths below the one root, or below the folder that several roots share
    base = resolved[0] if len(resolved) == 1 else Path(os.path.commonpath(resolved))
    for path in discover(roots):
        runs.append(load_run(path, base, now, stale_minutes))
    attach_evals(runs)
    for r in runs:
        finish(r)
    return runs


# ---- output ----

def human(n: float | None) -> str:
    if n is None:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def pct(x: float | None) -> str:
    return "" if not isinstance(x, (int, float)) else f"{100 * x:.1f}%"


COLUMNS = ["name", "stage", "base", "params", "data", "steps", "mini pass", "HumanEval",
           "syntax", "collapse", "verdict", "status"]


def display_row(run: Run) -> list[str]:
    params = human(run.params)
    if run.trainable_params and run.trainable_params != run.params:
        params += f" ({human(run.trainable_params)} trained)"
    steps = "" if run.steps is None else str(run.steps)
    if steps and run.target_steps:
        steps += f"/{run.target_steps}"
    mini = "" if run.best_pass is None else f"{run.best_pass}/{run.n_tasks}"
    if mini and run.best_step is not None:
        mini += f" @{run.best_step}"
    return [run.name, run.stage, run.base, params, run.data, steps, mini, pct(run.humaneval),
            pct(run.syntax), pct(run.collapse), run.verdict, run.status]


def format_table(runs: list[Run]) -> str:
    """Plain aligned text: readable in a terminal, a log file and a CI page alike."""
    rows = [COLUMNS] + [display_row(r) for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_csv(runs: list[Run]) -> str:
    """The JSON rows flattened: other benchmarks' results become `<bench> pass@1` columns."""
    rows = []
    for r in runs:
        row = r.row()
        for bench, summary in row.pop("evals").items():
            if bench != "humaneval":  # already a column
                row[f"{bench} pass@1"] = summary.get("pass@1")
        rows.append(row)
    fields = list(Run(Path("."), "").row())
    fields.remove("evals")
    fields += sorted({k for row in rows for k in row if k not in fields})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buf.getvalue()


def _brief(summary: dict) -> dict:
    keep = ("benchmark", "pass@", "syntax_valid", "collapse_rate", "n_tasks", "n_samples")
    return {k: v for k, v in summary.items() if k.startswith(keep)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="*", default=["runs"], metavar="DIR",
                   help="folders searched recursively for runs (default: runs)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON list of rows")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header line")
    p.add_argument("--stale-minutes", type=float, default=STALE_MINUTES,
                   help="a run without a final checkpoint and no metrics written for this long "
                        "is reported as failed")


def main(args: argparse.Namespace) -> int:
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
