"""The experiments table: cells, aligned text and CSV of `codeling.runs.Run` rows."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from codeling.reporting.run import Run


def human(n: float | None) -> str:
    if n is None:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


def pct(x: float | None, se: float | None = None) -> str:
    """"12.5%", or "12.5% ±1.2" with a standard error (in points)."""
    if not isinstance(x, (int, float)):
        return ""
    return f"{100 * x:.1f}%" + (f" ±{100 * se:.1f}" if isinstance(se, (int, float)) else "")


def dev_cell(run: Run) -> str:
    """"121/1000 ±10": the dev pass count and its standard error, in tasks."""
    if run.dev_pass is None:
        return ""
    cell = f"{run.dev_pass}/{run.dev_n}"
    if run.dev_se is not None and run.dev_n:
        cell += f" ±{run.dev_se * run.dev_n:.1f}"
    return cell


def selected_cell(run: Run) -> str:
    label = {"mini": "mini (test set)"}.get(run.selected_on, run.selected_on)
    return f"{label} @{run.selected_step}" if label and run.selected_step is not None else label


def twins_cell(run: Run, benches: list[str] | None = None) -> str:
    """"0", "mini 3, humaneval 1", "CONTAMINATED: ..." or "unchecked" (see the docstring)."""
    counts = run.twin_counts()
    if counts is None:
        text = "unchecked" if run.tasks_report is not None else ""
    else:
        shown = {b: n for b, n in counts.items() if benches is None or b in benches}
        hits = [f"{b} {n}" for b, n in sorted(shown.items()) if n]
        text = ", ".join(hits) or ("0" if shown or not counts else "not checked")
    return f"CONTAMINATED: {text}" if run.contaminated else text


COLUMNS = ["name", "stage", "base", "params", "data", "steps", "selected", "dev pass",
           "mini pass", "HumanEval", "twins", "syntax", "collapse", "verdict", "status", "cpu"]


def display_row(run: Run) -> list[str]:
    params = human(run.params)
    if run.trainable_params and run.trainable_params != run.params:
        params += f" ({human(run.trainable_params)} trained)"
    steps = "" if run.steps is None else str(run.steps)
    if steps and run.target_steps:
        steps += f"/{run.target_steps}"
    dev = dev_cell(run)
    mini = "" if run.best_pass is None else f"{run.best_pass}/{run.n_tasks}"
    if mini and run.best_step is not None:
        mini += f" @{run.best_step}"
    return [run.name, run.stage, run.base, params, run.data, steps, selected_cell(run), dev, mini,
            pct(run.humaneval, run.humaneval_se), twins_cell(run), pct(run.syntax),
            pct(run.collapse), run.verdict,
            run.status, run.cpu]


def format_table(runs: list[Run]) -> str:
    """Plain aligned text: readable in a terminal, a log file and a CI page alike."""
    rows = [COLUMNS] + [display_row(r) for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_csv(runs: list[Run]) -> str:
    """The JSON rows flattened: other benchmarks' results become `<bench> pass@1` columns,
    twins `<bench> twins` columns."""
    rows = []
    for r in runs:
        row = r.row()
        for bench, summary in row.pop("evals").items():
            if bench != "humaneval":  # already a column
                row[f"{bench} pass@1"] = summary.get("pass@1")
                row[f"{bench} pass@1_se"] = summary.get("pass@1_se")
        for bench, n in (row.pop("twins") or {}).items():
            row[f"{bench} twins"] = n
        rows.append(row)
    fields = [k for k in Run(Path("."), "").row() if k not in ("evals", "twins")]
    fields += sorted({k for row in rows for k in row if k not in fields})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buf.getvalue()
