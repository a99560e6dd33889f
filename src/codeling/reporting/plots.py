"""The report's plots: loss curves, in-training eval curves (pass with its standard error),
the dev solution loss, pass@1 per category and style (with standard errors).

Each plot function returns the names of the runs it drew ([] and no file: nothing to draw).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from codeling.evaluate.metrics import binomial_se
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
        steps, passes, errs = pass_series(r)
        axes[0].errorbar(steps, passes, yerr=errs, capsize=2, **kw)
        for ax, key in zip(axes[1:], ("syntax_valid", "collapse_rate")):
            steps, vals = _series(r, key)
            ax.plot(steps, [100 * v for v in vals], **kw)
    n = max((r.dev_n or r.n_tasks or 20) for r in runs)
    sets = sorted({eval_set(r) for r in runs})
    axes[0].set(title=f"{'/'.join(sets)} pass in training (of {n}; ± 1 se)",
                ylim=(-0.5, n + 0.5))
    axes[1].set(title="syntax valid (%)", ylim=(-2, 102))
    axes[2].set(title="collapse rate (%)", ylim=(-2, 102))
    for ax in axes:
        ax.set(xlabel="step")
    _finish(fig, axes, path)
    return [r.name for r in runs]


def pass_series(run: Run) -> tuple[list[int], list[int], list[float]]:
    """(steps, pass counts, their standard errors in tasks: pass@1_se x n_tasks, else the
    binomial one; 0 where the line has no task count)."""
    steps, passes, errs = [], [], []
    for m in run.metrics:
        if isinstance(m.get("pass"), int) and isinstance(m.get("step"), int):
            n = m.get("n_tasks") or 0
            se = m.get("pass@1_se")
            if not isinstance(se, (int, float)):
                se = binomial_se(m["pass"], n)
            steps.append(m["step"])
            passes.append(m["pass"])
            errs.append(se * n)
    return steps, passes, errs


def plot_solution_loss(runs: list[Run], path: Path) -> list[str]:
    """The dev set's solution loss against step: overall (left; validation loss dotted, for
    scale) and per prompt style (right), one colour per run."""
    import matplotlib.pyplot as plt

    runs = [r for r in runs if _series(r, "solution_loss")[0]]
    if not runs:
        return []
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    for i, r in enumerate(runs):
        color = f"C{i % 10}"
        axes[0].plot(*_series(r, "solution_loss"), "o-", color=color, label=r.name,
                     markersize=3)
        axes[0].plot(*_series(r, "val_loss"), ":", color=color, label=f"{r.name} val loss")
        by_style: dict[str, list[tuple[int, float]]] = {}
        for step, ev in eval_dicts(r):
            for style, v in (ev.get("solution_loss_per_style") or {}).items():
                if isinstance(v, (int, float)):
                    by_style.setdefault(style, []).append((step, v))
        for j, (style, pts) in enumerate(sorted(by_style.items())):
            axes[1].plot([s for s, _ in pts], [v for _, v in pts], marker=".",
                         linestyle=("-", "--", ":", "-.")[i % 4], color=f"C{j % 10}",
                         label=f"{style}" if len(runs) == 1 else f"{r.name}: {style}")
    axes[0].set(title="dev solution loss (teacher-forced, per token)", xlabel="step",
                ylabel="loss")
    axes[1].set(title="dev solution loss by prompt style", xlabel="step", ylabel="loss")
    _finish(fig, axes, path)
    return [r.name for r in runs]


def eval_dicts(run: Run) -> list[tuple[int, dict]]:
    """(step, evals/step_N.json) of the run's in-training evals, by step."""
    evals_dir = run.path / "evals"
    steps = sorted(int(f.stem[5:]) for f in evals_dir.glob("step_*.json") if f.stem[5:].isdigit())
    return [(s, read_json(evals_dir / f"step_{s}.json")) for s in steps]


def selected_eval(run: Run) -> tuple[str, dict]:
    """(eval set, evaluator dict) of the run's selected step, else its latest in-training
    eval, else ("mini", the final mini summary)."""
    evals_dir = run.path / "evals"
    steps = [s for s, _ in eval_dicts(run)]
    step = run.selected_step if run.selected_step in steps else (steps[-1] if steps else None)
    if step is not None:
        ev = read_json(evals_dir / f"step_{step}.json")
        return ev.get("eval_set", "mini"), ev
    return "mini", run.evals.get("mini", {})


def breakdown(ev: dict, key: str) -> dict[str, float]:
    """pass@1 per group of metrics.summarize's `per_category` / `per_style` (of the whole dev
    set where the eval generated it: `dev_full`)."""
    return _groups(ev, key, "pass@1")


def breakdown_se(ev: dict, key: str) -> dict[str, float]:
    """The standard errors of `breakdown` (0 where the eval recorded none)."""
    return _groups(ev, key, "pass@1_se")


def _groups(ev: dict, key: str, field: str) -> dict[str, float]:
    src = ev.get("dev_full") if isinstance(ev.get("dev_full"), dict) else ev
    out = {}
    for group, v in (src.get(key) or {}).items():
        if isinstance(v, dict) and isinstance(v.get(field), (int, float)):
            out[str(group) or "default"] = float(v[field])
    return out


def plot_breakdown(runs: list[Run], path: Path, key: str = "per_category") -> list[str]:
    """Grouped bars: pass@1 per category (or style) at the selected step, one bar per run."""
    import matplotlib.pyplot as plt

    scores, errs, sets = {}, {}, set()
    for r in runs:
        name, ev = selected_eval(r)
        if breakdown(ev, key):
            scores[r.name], errs[r.name] = breakdown(ev, key), breakdown_se(ev, key)
            sets.add(name)
    groups = sorted({c for v in scores.values() for c in v})
    if not groups:
        return []
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) * len(scores)), 4))
    width = 0.8 / len(scores)
    for i, (name, by_group) in enumerate(scores.items()):
        xs = [j + i * width - 0.4 + width / 2 for j in range(len(groups))]
        ax.bar(xs, [100 * by_group.get(c, 0.0) for c in groups], width, label=name,
               color=f"C{i}", yerr=[100 * errs[name].get(c, 0.0) for c in groups], capsize=2)
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
    what = key.removeprefix("per_")
    ax.set(title=f"{'/'.join(sorted(sets))} pass@1 by {what} (selected step; ± 1 se)",
           ylabel="%",
           ylim=(0, 100))
    _finish(fig, [ax], path)
    return list(scores)
