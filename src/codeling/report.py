"""`codeling report RUN [RUN ...] [--out DIR]`: plots and a report card (Markdown and HTML).

Each RUN is a run folder or a folder holding several (a pipeline run dir: `pretrain/`, `sft/`,
`eval/<benchmark>/`, `tasks/report.json`); runs are found and read by `codeling.runs`. Written
to DIR (default `RUN/report/` for one RUN):
- `loss.png`: train and validation loss against step;
- `evals.png`: the in-training pass count with its standard error (dev set; mini for runs made
  before dev selection), syntax validity and collapse rate against step;
- `solution_loss.png`: the dev set's solution loss (teacher-forced, evaluate/solution_loss.py)
  against step, overall and per prompt style;
- `categories.png` and `styles.png`: pass@1 per task category / prompt style (metrics.summarize's
  `per_category` / `per_style`) at each run's selected (else latest) eval, with standard
  errors; every pass rate in the tables carries its standard error;
- `report.md` and `report.html`: the runs table, final metrics, the selection and
  contamination table (per benchmark: twins of its tasks in the training data, what selected
  the checkpoint), the plots, data, wall time and tokens, hardware, the resolved configs, and
  example generations (passed and failed) from the selected eval. Several runs are overlaid in
  every plot. The HTML comes from the same blocks as the Markdown (reporting/doc.py). No torch.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import os
import platform
import time
from pathlib import Path

from codeling.config import ConfigError
from codeling.io import atomic_write_text, iter_jsonl
from codeling.reporting.doc import Doc
from codeling.reporting.files import read_json
from codeling.reporting.plots import (
    plot_breakdown,
    plot_evals,
    plot_losses,
    plot_solution_loss,
)
from codeling.reporting.run import Run
from codeling.reporting.table import COLUMNS, display_row, human, pct, twins_cell
from codeling.runs import collect_runs

N_EXAMPLES = 2  # good and bad generations shown per run


# ---- report sections ----

def filtered(run: Run, bench: str) -> dict:
    """The pipeline's eval.filtered_k summary (eval/<bench>/filtered/), else {}: filtered@K is
    one of K samples chosen by the prompt's own examples, shown beside pass@1, never as it."""
    where = run.eval_dirs.get(bench)
    path = Path(where) / "filtered" / "summary.json" if where else None
    return read_json(path) if path is not None and path.is_file() else {}


def _filtered_keys(runs: list[Run], bench: str) -> list[str]:
    keys = {k for r in runs for k in filtered(r, bench) if k.startswith("filtered@")}
    return sorted(keys, key=lambda k: int(k.split("@")[1]))


def final_metrics(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    benches = sorted({b for r in runs for b in r.evals})
    extra = {b: _filtered_keys(runs, b) for b in benches}
    header = ["run", "last step", "train loss", "val loss", "val ppl", "selected",
              "dev pass (± se)", "mini pass", "dev solution loss",
              *[h for b in benches for h in (f"{b} pass@1 (± se, points)", *(
                  f"{b} {k} (example-selected, not pass@1)" for k in extra[b]))]]
    rows = []
    for r in runs:
        last = {}
        for m in r.metrics:
            last.update({k: v for k, v in m.items() if k in ("loss", "val_loss", "val_ppl")})
        fmt = [f"{last[k]:.4g}" if k in last else "" for k in ("loss", "val_loss", "val_ppl")]
        cells = display_row(r)
        ev = {b: r.evals.get(b, {}) for b in benches}
        loss = f"{r.solution_loss:.4f}" if r.solution_loss is not None else ""
        rows.append([r.name, str(r.steps or ""), *fmt, *cells[6:9], loss,
                     *[c for b in benches for c in (pct(ev[b].get("pass@1"),
                                                        ev[b].get("pass@1_se")), *(
                         pct(filtered(r, b).get(k)) for k in extra[b]))]])
    return header, rows


SELECTION_NOTE = {
    "dev": "chosen on the dev set (never reported)",
    "val_loss": "chosen on validation loss (no dev set)",
    "mini": "chosen on mini-HumanEval, a reported benchmark: its mini number is a maximum "
            "over several looks at the test set",
    "score": "chosen on the evaluator's score",
}


def selection_section(doc: Doc, runs: list[Run]) -> None:
    """Per run and benchmark: twins of its tasks in the training data, what selected."""
    doc.heading("Selection and contamination")
    rows = []
    for r in runs:
        counts = r.twin_counts() or {}
        for bench in sorted(set(r.evals) | set(counts)) or [""]:
            twins = twins_cell(r, [bench]) if bench else twins_cell(r)
            dropped = (r.twins or {}).get(bench, {})
            dropped = dropped.get("train_tasks_dropped", "") if isinstance(dropped, dict) else ""
            ev = r.evals.get(bench, {})
            rows.append([r.name, bench, pct(ev.get("pass@1"), ev.get("pass@1_se")), twins,
                         str(dropped), SELECTION_NOTE.get(r.selected_on, r.selected_on)])
    doc.table(["run", "benchmark", "pass@1", "eval tasks with a twin in training data",
               "twins dropped", "checkpoint selection"], rows)
    loud = [f"{r.name}: CONTAMINATED: its training data kept behavioural twins of evaluation "
            f"tasks (--allow-contamination, {r.tasks_report}); its benchmark numbers are not "
            "held-out numbers." for r in runs if r.contaminated]
    loud += [f"{r.name}: the training data ({r.tasks_report}) predates the behavioural twin "
             "check: twins unchecked." for r in runs if r.tasks_report and r.twins is None]
    loud += [f"{r.name}: the mini curve in its evals (mini_info) is information only, not used "
             "for selection." for r in runs if r.mini_info]
    doc.bullets(loud)


def data_section(doc: Doc, runs: list[Run]) -> None:
    doc.heading("Data")
    doc.bullets([f"{r.name}: {r.data}" + (f" ({r.info['dropped_too_long']} tasks too long, "
                                           "dropped)" if r.info.get("dropped_too_long") else "")
                 for r in runs if r.data])
    for path in dict.fromkeys(r.tasks_report for r in runs if r.tasks_report):
        rep = read_json(path)
        cont, dev = rep.get("contamination", {}), rep.get("dev", {})
        doc.para(f"Tasks ({path}):")
        doc.bullets([
            f"train {rep.get('n_train', '?')}, val {rep.get('n_val', '?')}, dev "
            f"{dev.get('n', 'none')}; sources: "
            + ", ".join(f"{k} {v}" for k, v in rep.get("by_source", {}).items()),
            "dropped: " + (", ".join(f"{k}: {v}" for k, v in rep.get("dropped", {}).items())
                           or "none"),
            f"n-gram contamination: {cont.get('hits', '?')} hits against "
            f"{', '.join(cont.get('checked_against', [])) or '?'}"
            + (" (kept: --allow-contamination)" if rep.get("allow_contamination") else
               " (dropped)"),
        ])


def hardware(runs: list[Run]) -> list[str]:
    """What the runs recorded (run.json `hardware`), else this machine, cheaply (no torch)."""
    recorded = [f"{r.name}: {r.info['hardware']}" for r in runs if r.info.get("hardware")]
    if recorded:
        return recorded
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "not installed"
    return [f"this machine (the runs recorded none): {platform.platform()}",
            f"CPU: {cpu}, {os.cpu_count()} cores", f"Python {platform.python_version()}, "
            f"torch {torch_version}"]


def examples(run: Run) -> list[dict]:
    """Samples of the selected step (evals/samples_step_N.jsonl), else the final mini eval."""
    files = []
    if run.selected_step is not None:
        files.append(run.path / "evals" / f"samples_step_{run.selected_step}.jsonl")
    if "mini" in run.eval_dirs:
        files.append(Path(run.eval_dirs["mini"]) / "results.jsonl")
    for f in files:
        if f.is_file():
            return [row for _, row in iter_jsonl(f)]
    return []


@functools.cache
def mini_prompts() -> dict[str, str]:
    """task_id -> prompt of mini-HumanEval, so examples read as whole functions."""
    try:
        from codeling.tasks.benchmarks import load_benchmark

        return {t.task_id: t.prompt for t in load_benchmark("mini")}
    except (ImportError, OSError, ValueError, KeyError):  # DataError is a ValueError
        return {}


def examples_section(doc: Doc, runs: list[Run]) -> None:
    doc.heading("Example generations")
    shown = False
    for r in runs:
        rows = examples(r)
        good = [x for x in rows if x.get("passed")][:N_EXAMPLES]
        bad = [x for x in rows if not x.get("passed")][:N_EXAMPLES]
        for label, picked in (("passed", good), ("failed", bad)):
            for x in picked:
                shown = True
                why = x.get("result", "")
                if x.get("collapse"):
                    why += f"; collapse: {x['collapse']}"
                doc.para(f"{r.name} · {x.get('task_id', '?')} · {label} ({why})")
                prompt = x.get("prompt") or mini_prompts().get(x.get("task_id"), "")
                doc.code(str(prompt) + str(x.get("completion", "")), "python")
    if not shown:
        doc.para("No generation evals in these runs.")


def build_report(runs: list[Run], out: Path) -> Doc:
    doc = Doc()
    doc.heading("codeling report card", 1)
    doc.para(f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from {len(runs)} run(s). Verdict "
             "rule: mini pass of the selected checkpoint ≥5/20 success; 1–4 partial (more data "
             "or a bigger model); 0 zero (data is not the bottleneck → bigger model).")
    doc.heading("Runs")
    doc.table(COLUMNS, [display_row(r) for r in runs])
    doc.heading("Final metrics")
    doc.table(*final_metrics(runs))
    if any(filtered(r, b) for r in runs for b in r.evals):
        doc.para("pass@1 is greedy. filtered@K: K samples per task (eval.filtered_temperature), "
                 "the first that passes the prompt's own examples kept (else the likeliest); "
                 "it is a different metric, shown beside pass@1, never in its place. Raw "
                 "pass@k of those samples: eval/<benchmark>/filtered/summary.json.")
    selection_section(doc, runs)
    doc.heading("Plots")
    for name, fn, alt in (
            ("loss.png", plot_losses, "train and validation loss"),
            ("evals.png", plot_evals, "in-training pass (± 1 se), syntax and collapse by step"),
            ("solution_loss.png", plot_solution_loss, "dev solution loss by step and style"),
            ("categories.png", plot_breakdown, "pass@1 by category"),
            ("styles.png", lambda rs, p: plot_breakdown(rs, p, "per_style"),
             "pass@1 by prompt style")):
        if fn(runs, out / name):
            doc.image(name, alt)
    data_section(doc, runs)
    doc.heading("Wall time and tokens")
    doc.table(["run", "wall time (train + evals)", "tokens seen", "tokens/s",
               "training tokens/s (median)", "MFU (median)", "peak memory"],
              [[r.name, _duration(r.elapsed_s), human(r.tokens),
                human(r.tokens / r.elapsed_s) if r.tokens and r.elapsed_s else "",
                *speed_cells(r)] for r in runs])
    doc.heading("Hardware")
    doc.bullets(hardware(runs))
    examples_section(doc, runs)
    doc.heading("Config")
    for r in runs:
        cfg = r.path / "config.toml"
        doc.para(f"{r.name} ({r.path})")
        doc.code(cfg.read_text() if cfg.is_file() else "(no config.toml)", "toml")
    return doc


def speed_cells(run: Run) -> list[str]:
    """From the train lines of metrics.jsonl: the median tokens/s (evals and saves left out),
    the median MFU and the peak memory (training/flops.py; runs before them show blanks)."""
    lines = [m for m in run.metrics if "loss" in m]

    def median(key: str) -> float | None:
        vals = sorted(m[key] for m in lines if isinstance(m.get(key), (int, float)))
        return vals[len(vals) // 2] if vals else None

    rate, mfu = median("tokens_per_s"), median("mfu")
    mem = max((m["peak_mem_mb"] for m in lines if m.get("peak_mem_mb")), default=None)
    return [human(rate) if rate else "", f"{mfu:.1%}" if mfu is not None else "",
            f"{mem / 1024:.2f} GiB" if mem else ""]


def _duration(seconds: float | None) -> str:
    if not isinstance(seconds, (int, float)):
        return ""
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def write_report(paths: list[Path], out: Path | None = None) -> Path:
    """Find the runs under `paths`, write plots, report.md and report.html; returns report.md."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, works on servers and in CI
    if out is None:
        if len(paths) != 1:
            raise ConfigError("several runs: pass --out DIR for the combined report")
        out = paths[0] / "report"
    runs = collect_runs(paths)
    if not runs:
        raise FileNotFoundError(f"no run folders (metrics.jsonl or run.json) under "
                                f"{', '.join(map(str, paths))}")
    out.mkdir(parents=True, exist_ok=True)
    doc = build_report(runs, out)
    atomic_write_text(out / "report.md", doc.markdown())
    atomic_write_text(out / "report.html", doc.html("codeling report card"))
    return out / "report.md"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folders, or folders holding runs (e.g. a pipeline run dir)")
    p.add_argument("--out", help="output folder (default: RUN/report for one RUN)")


def main(args: argparse.Namespace) -> int:
    path = write_report([Path(r) for r in args.runs], Path(args.out) if args.out else None)
    print(f"report: {path} (+ report.html, plots) in {path.parent}")
    return 0
