"""How well the dev solution loss tracks dev pass: correlations across the saved evals of runs.

Reads every run under the given folders (`codeling runs` discovery) and, from each run's
`evals/step_N.json`, the pairs (solution_loss, dev pass rate) of its in-training evals (the pass
rate of what that eval generated on: the fixed subset, or `dev_full` where the eval has it).
Prints
- pooled: Pearson and Spearman correlation over every eval of every run (runs differ in data
  and recipe as well as in step, so this mixes between-run and within-run variation);
- within runs: each run's own correlation over its evals (training progress alone);
- across runs (three or more): each run's last solution loss against its last dev pass rate,
  the comparison a recipe decision makes.
A negative correlation means lower loss goes with more passes. With few evals per run or few
runs these are weak numbers; the counts are printed beside them.

    .venv/bin/python bench/solution_loss.py runs/ [more folders ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from codeling.reporting.plots import eval_dicts
from codeling.runs import collect_runs


def ranks(x: list[float]) -> np.ndarray:
    """Ranks with ties averaged (for Spearman's rho)."""
    arr = np.asarray(x, dtype=float)
    order = arr.argsort(kind="stable")
    r = np.empty(len(arr))
    r[order] = np.arange(len(arr), dtype=float)
    for v in np.unique(arr):
        same = arr == v
        r[same] = r[same].mean()
    return r


def corr(x: list[float], y: list[float]) -> tuple[float | None, float | None]:
    """(Pearson, Spearman); None where a side is constant or there are under 3 points."""
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None, None
    return float(np.corrcoef(x, y)[0, 1]), float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def points(run) -> list[tuple[int, float, float]]:
    """(step, solution_loss, dev pass rate) of each eval that has both."""
    out = []
    for step, ev in eval_dicts(run):
        src = ev.get("dev_full") if isinstance(ev.get("dev_full"), dict) else ev
        loss, passed, n = ev.get("solution_loss"), src.get("pass"), src.get("n_tasks")
        if isinstance(loss, (int, float)) and isinstance(passed, int) and n:
            out.append((step, float(loss), passed / n))
    return out


def fmt(pair: tuple[float | None, float | None]) -> str:
    p, s = pair
    return "n/a" if p is None else f"Pearson {p:+.2f}, Spearman {s:+.2f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path)
    args = p.parse_args()
    runs = [(r, pts) for r in collect_runs(args.dirs) if (pts := points(r))]
    if not runs:
        raise SystemExit("no run with solution_loss and dev pass in its evals/step_N.json")
    xs = [loss for _, pts in runs for _, loss, _ in pts]
    ys = [rate for _, pts in runs for _, _, rate in pts]
    print(f"pooled: {len(xs)} evals of {len(runs)} runs: {fmt(corr(xs, ys))}")
    for r, pts in runs:
        c = corr([q[1] for q in pts], [q[2] for q in pts])
        trail = ", ".join(f"{s}: {loss:.3f}/{100 * rate:.0f}%" for s, loss, rate in pts)
        print(f"  {r.name}: {len(pts)} evals: {fmt(c)}  (step: loss/pass {trail})")
    if len(runs) >= 3:
        last = [pts[-1] for _, pts in runs]
        print(f"across runs (last eval of each, {len(last)} runs): "
              f"{fmt(corr([q[1] for q in last], [q[2] for q in last]))}")
    else:
        print("across runs: needs three or more runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
