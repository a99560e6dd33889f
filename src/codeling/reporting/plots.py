"""The report's plots: loss curves, in-training eval curves, pass@1 per category and style.

Each plot function returns the names of the runs it drew ([] and no file: nothing to draw).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from codeling.io import atomic_write_bytes
from codeling.reporting.files import read_json

if TYPE_CHECKING:
    from codeling.reporting.run import Run


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def _series(run: Run, key: str) -> tuple[list[int], list[float]]:
    pts = [(m["step"], m[key]) for m in run.metrics
           if isinstance(m.get(key), (int, float)) and isinstance(m.get("step"), int)]
    return [s for s, _ in pts], [v for _, v in pts]


def _finish(fig, axes, path: Path) -> None:
    import matplotlib.pyplot as plt

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)


def plot_losses(runs: list[Run], path: Path) -> list[str]:
    """Train loss (left) and validation loss (right) against step, one colour per run."""
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
    _finish(fig, axes, path)
    return [r.name for r in runs]


def eval_set(run: Run) -> str:
    """What the in-training evals generated on: "dev", or "mini" for runs made before dev."""
    sets = {m.get("eval_set", "mini") for m in run.metrics if isinstance(m.get("pass"), int)}
    return "/".join(sorted(sets))


def plot_evals(runs: list[Run], path: Path) -> list[str]:
    """In-training pass count (dev; mini for pre-dev runs), syntax validity and collapse."""
    import matplotlib.pyplot as plt

    runs = [r for r in runs if _series(r, "pass")[0]]
    if not runs:
        return []
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for i, r in enumerate(runs):
        kw = {"color": f"C{i % 10}", "label": f"{r.name} ({eval_set(r)})", "marker": "o",
              "markersize": 3}
        axes[0].plot(*_series(r, "pass"), **kw)
        for ax, key in zip(axes[1:], ("syntax_valid", "collapse_rate")):
            steps, vals = _series(r, key)
            ax.plot(steps, [100 * v for v in vals], **kw)
    n = max((r.dev_n or r.n_tasks or 20) for r in runs)
    sets = sorted({eval_set(r) for r in runs})
    axes[0].set(title=f"{'/'.join(sets)} pass in training (of {n})", ylim=(-0.5, n + 0.5))
    axes[1].set(title="syntax valid (%)", ylim=(-2, 102))
    axes[2].set(title="collapse rate (%)", ylim=(-2, 102))
    for ax in axes:
        ax.set(xlabel="step")
    _finish(fig, axes, path)
    return [r.name for r in runs]


def selected_eval(run: Run) -> tuple[str, dict]:
    """(eval set, evaluator dict) of the run's selected step, else its latest in-training
    eval, else ("mini", the final mini summary)."""
    evals_dir = run.path / "evals"
    steps = sorted(int(f.stem[5:]) for f in evals_dir.glob("step_*.json") if f.stem[5:].isdigit())
    step = run.selected_step if run.selected_step in steps else (steps[-1] if steps else None)
    if step is not None:
        ev = read_json(evals_dir / f"step_{step}.json")
        return ev.get("eval_set", "mini"), ev
    return "mini", run.evals.get("mini", {})


def breakdown(ev: dict, key: str) -> dict[str, float]:
    """pass@1 per group of metrics.summarize's `per_category` / `per_style`."""
    out = {}
    for group, v in (ev.get(key) or {}).items():
        if isinstance(v, dict) and isinstance(v.get("pass@1"), (int, float)):
            out[str(group) or "default"] = float(v["pass@1"])
    return out


def plot_breakdown(runs: list[Run], path: Path, key: str = "per_category") -> list[str]:
    """Grouped bars: pass@1 per category (or style) at the selected step, one bar per run."""
    import matplotlib.pyplot as plt

    scores, sets = {}, set()
    for r in runs:
        name, ev = selected_eval(r)
        if breakdown(ev, key):
            scores[r.name] = breakdown(ev, key)
            sets.add(name)
    groups = sorted({c for v in scores.values() for c in v})
    if not groups:
        return []
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) * len(scores)), 4))
    width = 0.8 / len(scores)
    for i, (name, by_group) in enumerate(scores.items()):
        xs = [j + i * width - 0.4 + width / 2 for j in range(len(groups))]
        ax.bar(xs, [100 * by_group.get(c, 0.0) for c in groups], width, label=name,
               color=f"C{i}")
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
    what = key.removeprefix("per_")
    ax.set(title=f"{'/'.join(sorted(sets))} pass@1 by {what} (selected step)", ylabel="%",
           ylim=(0, 100))
    _finish(fig, [ax], path)
    return list(scores)
