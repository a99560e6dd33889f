"""`codeling report RUN [RUN ...] [--out DIR]`: plots and a report card (Markdown and HTML).

Each RUN is a run folder or a folder holding several (a pipeline run dir: `pretrain/`, `sft/`,
`eval/<benchmark>/`, `tasks/report.json`); runs are found and read by `codeling.runs`. Written
to DIR (default `RUN/report/` for one RUN):
- `loss.png`: train and validation loss against step;
- `evals.png`: mini pass count, syntax validity and collapse rate against step;
- `categories.png`: pass@1 per task category at each run's best (else latest) eval;
- `report.md` and `report.html`: the runs table, final metrics, the plots, data and
  contamination, wall time and tokens, hardware, the resolved configs, and example generations
  (passed and failed) from the best eval. Several runs are overlaid in every plot.
The HTML comes from the same blocks as the Markdown (no Markdown library needed). No torch.
"""

from __future__ import annotations

import argparse
import functools
import html
import importlib.metadata
import io
import os
import platform
import time
from pathlib import Path

from codeling.config import ConfigError
from codeling.io import atomic_write_bytes, atomic_write_text, iter_jsonl
from codeling.runs import COLUMNS, Run, collect_runs, display_row, human, pct, read_json

N_EXAMPLES = 2  # good and bad generations shown per run


# ---- a tiny document model rendered to both Markdown and HTML ----

class Doc:
    def __init__(self) -> None:
        self.blocks: list[tuple[str, object]] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        if rows:
            self.blocks.append(("table", (header, rows)))

    def code(self, text: str, lang: str = "") -> None:
        self.blocks.append(("code", (lang, text)))

    def image(self, src: str, alt: str) -> None:
        self.blocks.append(("img", (src, alt)))

    def markdown(self) -> str:
        out = []
        for kind, b in self.blocks:
            if kind == "h":
                out.append("#" * b[0] + " " + b[1])
            elif kind == "p":
                out.append(b)
            elif kind == "ul":
                out.append("\n".join(f"- {x}" for x in b))
            elif kind == "table":
                header, rows = b
                cells = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
                lines = ["| " + " | ".join(r) + " |" for r in cells]
                lines.insert(1, "|" + "---|" * len(header))
                out.append("\n".join(lines))
            elif kind == "code":
                fence = "````" if "```" in b[1] else "```"
                out.append(f"{fence}{b[0]}\n{b[1].rstrip()}\n{fence}")
            elif kind == "img":
                out.append(f"![{b[1]}]({b[0]})")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        e = html.escape
        out = []
        for kind, b in self.blocks:
            if kind == "h":
                out.append(f"<h{b[0]}>{e(b[1])}</h{b[0]}>")
            elif kind == "p":
                out.append(f"<p>{e(b)}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in b) + "</ul>")
            elif kind == "table":
                header, rows = b
                head = "".join(f"<th>{e(c)}</th>" for c in header)
                body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                               for r in rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "code":
                out.append(f"<pre><code>{e(b[1].rstrip())}</code></pre>")
            elif kind == "img":
                out.append(f'<img src="{e(b[0])}" alt="{e(b[1])}">')
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
                 "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
                 "text-align:left}pre{background:#f5f5f5;padding:8px;overflow-x:auto}"
                 "img{max-width:100%}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


# ---- plots ----

def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _series(run: Run, key: str) -> tuple[list[int], list[float]]:
    pts = [(m["step"], m[key]) for m in run.metrics
           if isinstance(m.get(key), (int, float)) and isinstance(m.get("step"), int)]
    return [s for s, _ in pts], [v for _, v in pts]


def plot_losses(runs: list[Run], path: Path) -> list[str]:
    """Train loss (left) and validation loss (right) against step, one colour per run.

    Each plot function returns the names of the runs it drew ([] and no file: nothing to draw).
    """
    import matplotlib.pyplot as plt

    runs = [r for r in runs if _series(r, "loss")[0] or _series(r, "val_loss")[0]]
    if not runs:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, r in enumerate(runs):
        color = f"C{i % 10}"
        axes[0].plot(*_series(r, "loss"), color=color, label=r.name)
        axes[1].plot(*_series(r, "val_loss"), "o-", color=color, label=r.name, markersize=3)
    for ax, title in zip(axes, ("train loss", "validation loss")):
        ax.set(title=title, xlabel="step", ylabel="loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)
    return [r.name for r in runs]


def plot_evals(runs: list[Run], path: Path) -> list[str]:
    """Mini pass count, syntax validity and collapse rate against step."""
    import matplotlib.pyplot as plt

    runs = [r for r in runs if _series(r, "pass")[0]]
    if not runs:
        return []
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for i, r in enumerate(runs):
        kw = {"color": f"C{i % 10}", "label": r.name, "marker": "o", "markersize": 3}
        axes[0].plot(*_series(r, "pass"), **kw)
        for ax, key in zip(axes[1:], ("syntax_valid", "collapse_rate")):
            steps, vals = _series(r, key)
            ax.plot(steps, [100 * v for v in vals], **kw)
    n = max((r.n_tasks or 20) for r in runs)
    axes[0].axhline(n * 5 / 20, color="gray", ls="--", lw=1, label="success (5/20)")
    axes[0].set(title=f"mini pass (of {n})", ylim=(-0.5, n + 0.5))
    axes[1].set(title="syntax valid (%)", ylim=(-2, 102))
    axes[2].set(title="collapse rate (%)", ylim=(-2, 102))
    for ax in axes:
        ax.set(xlabel="step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)
    return [r.name for r in runs]


def best_eval(run: Run) -> dict:
    """The evaluator dict of the run's best step, else its latest, else the final mini eval."""
    evals_dir = run.path / "evals"
    if run.best_step is not None and (evals_dir / f"step_{run.best_step}.json").is_file():
        return read_json(evals_dir / f"step_{run.best_step}.json")
    steps = sorted(int(f.stem[5:]) for f in evals_dir.glob("step_*.json") if f.stem[5:].isdigit())
    if steps:
        return read_json(evals_dir / f"step_{steps[-1]}.json")
    return run.evals.get("mini", {})


def category_scores(ev: dict) -> dict[str, float]:
    out = {}
    for cat, v in (ev.get("by_category") or {}).items():
        if isinstance(v, dict) and isinstance(v.get("pass@1"), (int, float)):
            out[str(cat)] = float(v["pass@1"])
    return out


def plot_categories(runs: list[Run], path: Path) -> list[str]:
    """Grouped bars: pass@1 per category, one bar per run."""
    import matplotlib.pyplot as plt

    scores = {r.name: category_scores(best_eval(r)) for r in runs}
    scores = {k: v for k, v in scores.items() if v}
    cats = sorted({c for v in scores.values() for c in v})
    if not cats:
        return []
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(cats) * max(len(scores), 1)), 4))
    width = 0.8 / len(scores)
    for i, (name, by_cat) in enumerate(scores.items()):
        xs = [j + i * width - 0.4 + width / 2 for j in range(len(cats))]
        ax.bar(xs, [100 * by_cat.get(c, 0.0) for c in cats], width, label=name, color=f"C{i}")
    ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
    ax.set(title="pass@1 by category (best eval)", ylabel="%", ylim=(0, 100))
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    plt.close(fig)
    return list(scores)


# ---- report sections ----

def final_metrics(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    benches = sorted({b for r in runs for b in r.evals})
    header = ["run", "last step", "train loss", "val loss", "val ppl", "best step",
              "best mini", *[f"{b} pass@1" for b in benches]]
    rows = []
    for r in runs:
        last = {}
        for m in r.metrics:
            last.update({k: v for k, v in m.items() if k in ("loss", "val_loss", "val_ppl")})
        fmt = [f"{last[k]:.4g}" if k in last else "" for k in ("loss", "val_loss", "val_ppl")]
        best = "" if r.best_pass is None else f"{r.best_pass}/{r.n_tasks}"
        rows.append([r.name, str(r.steps or ""), *fmt, str(r.best_step or ""), best,
                     *[pct(r.evals.get(b, {}).get("pass@1")) for b in benches]])
    return header, rows


def task_reports(runs: list[Run]) -> dict[Path, dict]:
    """tasks/report.json of each run's task set, and of a pipeline's `tasks/` folder."""
    found: dict[Path, dict] = {}
    for r in runs:
        places = [r.path.parent / "tasks"]
        if isinstance(r.info.get("tasks"), str):
            places.insert(0, Path(r.info["tasks"]))
        for p in places:
            f = (p / "report.json").resolve()
            if f not in found and f.is_file():
                found[f] = read_json(f)
    return found


def data_section(doc: Doc, runs: list[Run]) -> None:
    doc.heading("Data")
    doc.bullets([f"{r.name}: {r.data}" + (f" ({r.info['dropped_too_long']} tasks too long, "
                                           "dropped)" if r.info.get("dropped_too_long") else "")
                 for r in runs if r.data])
    for path, rep in task_reports(runs).items():
        cont = rep.get("contamination", {})
        doc.para(f"Tasks ({path}):")
        doc.bullets([
            f"train {rep.get('n_train', '?')}, val {rep.get('n_val', '?')}; sources: "
            + ", ".join(f"{k} {v}" for k, v in rep.get("by_source", {}).items()),
            "dropped: " + (", ".join(f"{k}: {v}" for k, v in rep.get("dropped", {}).items())
                           or "none"),
            f"contamination: {cont.get('hits', '?')} hits against "
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
    """Samples of the best eval step (evals/samples_step_N.jsonl), else the final mini eval."""
    files = []
    if run.best_step is not None:
        files.append(run.path / "evals" / f"samples_step_{run.best_step}.jsonl")
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
             "rule: best mini pass ≥5/20 success; 1–4 partial (more data or a bigger model); "
             "0 zero (data is not the bottleneck → bigger model).")
    doc.heading("Runs")
    doc.table(COLUMNS, [display_row(r) for r in runs])
    doc.heading("Final metrics")
    doc.table(*final_metrics(runs))
    doc.heading("Plots")
    for name, fn, alt in (("loss.png", plot_losses, "train and validation loss"),
                          ("evals.png", plot_evals, "mini pass, syntax and collapse by step"),
                          ("categories.png", plot_categories, "pass@1 by category")):
        if fn(runs, out / name):
            doc.image(name, alt)
    data_section(doc, runs)
    doc.heading("Wall time and tokens")
    doc.table(["run", "wall time (train + evals)", "tokens seen", "tokens/s"],
              [[r.name, _duration(r.elapsed_s), human(r.tokens),
                human(r.tokens / r.elapsed_s) if r.tokens and r.elapsed_s else ""]
               for r in runs])
    doc.heading("Hardware")
    doc.bullets(hardware(runs))
    examples_section(doc, runs)
    doc.heading("Config")
    for r in runs:
        cfg = r.path / "config.toml"
        doc.para(f"{r.name} ({r.path})")
        doc.code(cfg.read_text() if cfg.is_file() else "(no config.toml)", "toml")
    return doc


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
