"""Recipes compared over seeds: each recipe's mean pass rate with its standard error, and the
decision rule: a difference under 2 standard errors is a "tie", not "better".

A recipe is a group of runs (one per seed or build; `codeling runs --compare A B`: the runs
under each DIR). Its number is the mean over its runs of one rate (`dev`: the dev pass rate at
the selected step; a benchmark: its final pass@1). Its standard error is
sqrt(seed_var / K + task_var / K): `seed_var` the variance between its K runs (ddof 1; unknown
with one run, then 0 and the line says so), `task_var` the mean of the runs' own squared
standard errors over tasks (binomial for greedy). All runs share the dev set, so the task term
counts noise the two recipes partly share: the rule errs towards "tie". No torch: files only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codeling.reporting.run import Run

TIE_SE = 2.0  # |difference| under this many standard errors reads "tie"


@dataclass
class Rate:
    """One run's rate (0-1), its standard error over tasks and its task count."""

    value: float
    se: float
    n: int


def run_rate(run: Run, metric: str = "dev") -> Rate | None:
    """The run's `metric` rate: "dev" (selected step), or a benchmark's final pass@1."""
    if metric == "dev":
        if run.dev_pass is None or not run.dev_n:
            return None
        p = run.dev_pass / run.dev_n
        se = run.dev_se if run.dev_se is not None else math.sqrt(p * (1 - p) / run.dev_n)
        return Rate(p, se, run.dev_n)
    summary = run.evals.get(metric)
    if not summary or not isinstance(summary.get("pass@1"), (int, float)):
        return None
    p, n = float(summary["pass@1"]), int(summary.get("n_tasks") or 0)
    se = summary.get("pass@1_se")
    if not isinstance(se, (int, float)):  # a summary written before standard errors
        se = math.sqrt(p * (1 - p) / n) if n else 0.0
    return Rate(p, float(se), n)


@dataclass
class Recipe:
    name: str
    runs: list[str]
    rates: list[float]
    mean: float
    se: float
    seed_sd: float | None  # None: one run, the seed spread is unknown

    def row(self) -> dict:
        return {"recipe": self.name, "runs": self.runs, "rates": self.rates,
                "mean": round(self.mean, 5), "se": round(self.se, 5),
                "seed_sd": None if self.seed_sd is None else round(self.seed_sd, 5)}


def recipe(name: str, runs: list[Run], metric: str = "dev") -> Recipe | None:
    """A recipe's mean rate over its runs and its standard error (module docstring)."""
    pairs = [(r.name, rate) for r in runs if (rate := run_rate(r, metric)) is not None]
    if not pairs:
        return None
    vals = [rate.value for _, rate in pairs]
    k = len(vals)
    mean = sum(vals) / k
    seed_var = sum((v - mean) ** 2 for v in vals) / (k - 1) if k > 1 else 0.0
    task_var = sum(rate.se ** 2 for _, rate in pairs) / k
    return Recipe(name, [n for n, _ in pairs], vals, mean, math.sqrt((seed_var + task_var) / k),
                  math.sqrt(seed_var) if k > 1 else None)


def decide(base: Recipe, other: Recipe) -> dict:
    """other - base, its standard error and the verdict: "tie" under TIE_SE standard errors,
    else which recipe is better."""
    diff = other.mean - base.mean
    se = math.sqrt(base.se ** 2 + other.se ** 2)
    if abs(diff) < TIE_SE * se or (se == 0 and diff == 0):
        verdict = "tie"
    else:
        verdict = f"{other.name if diff > 0 else base.name} better"
    return {"base": base.name, "other": other.name, "diff": round(diff, 5), "se": round(se, 5),
            "z": round(diff / se, 2) if se else None, "verdict": verdict}


def _pts(x: float) -> str:
    return f"{100 * x:.1f}"


def format_comparison(recipes: list[Recipe], metric: str) -> str:
    """Each recipe's mean ± se, then each recipe against the first."""
    what = "dev pass" if metric == "dev" else f"{metric} pass@1"
    lines = []
    for r in recipes:
        spread = (f"seed sd {_pts(r.seed_sd)}" if r.seed_sd is not None
                  else "one run: seed spread unknown")
        lines.append(f"{r.name}: {what} {_pts(r.mean)}% ± {_pts(r.se)} over {len(r.rates)} "
                     f"run(s) ({', '.join(_pts(v) for v in r.rates)}; {spread})")
    for other in recipes[1:]:
        d = decide(recipes[0], other)
        lines.append(f"{other.name} - {recipes[0].name}: {d['diff'] * 100:+.1f} points ± "
                     f"{_pts(d['se'])} -> {d['verdict']}"
                     + (f" (|diff| < {TIE_SE:g} se)" if d["verdict"] == "tie" else ""))
    return "\n".join(lines)
