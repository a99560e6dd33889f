"""Reading run folders: JSON/TOML/JSONL with errors that name the file, discovery, evaluations.

A run folder is any folder holding `metrics.jsonl` or `run.json`; evaluation folders are
`<folder>/eval/<benchmark>/summary.json`; a run's task set is the `codeling tasks` folder its
run.json names (`tasks`), else a `tasks/` or `data/tasks/` folder beside the run.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

from codeling.io import DataError, iter_jsonl

SKIP_DIRS = {"checkpoints", "shards", "evals", "report", "__pycache__", "tensorboard", "mlruns"}


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
    """step -> evals/step_N.json (the in-training evaluator's dict, see evaluate/live.py)."""
    found = {}
    for f in (run_dir / "evals").glob("step_*.json"):
        step = f.stem.removeprefix("step_")
        if step.isdigit():
            found[int(step)] = read_json(f)
    return dict(sorted(found.items()))


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


def tasks_report_path(run_dir: Path, info: dict) -> Path | None:
    """The report.json of the task set a run trained on (see the module docstring)."""
    places = [run_dir.parent / "tasks", run_dir.parent / "data" / "tasks"]
    if isinstance(info.get("tasks"), str):
        places.insert(0, Path(info["tasks"]))
    for p in places:
        if (p / "report.json").is_file():
            return (p / "report.json").resolve()
    return None
