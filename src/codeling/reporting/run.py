"""One run folder as the experiments table and the report read it (filled by runs.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    best_pass: int | None = None  # mini pass count (final eval, else pre-dev in-training best)
    n_tasks: int | None = None
    best_step: int | None = None  # the selected step (best.json), when mini came from it
    selected_on: str = ""  # "dev" | "val_loss" | "mini" (pre-dev runs) | "score" | ""
    selected_step: int | None = None
    dev_pass: int | None = None  # dev pass count at the selected step (the whole set when
    dev_n: int | None = None  # that eval generated it: `dev_full`, else its subset)
    dev_se: float | None = None  # standard error of dev_pass / dev_n over tasks
    solution_loss: float | None = None  # dev solution loss at the selected step
    mini_info: bool = False  # an information-only mini curve was recorded
    humaneval: float | None = None  # pass@1
    humaneval_se: float | None = None
    syntax: float | None = None  # rate, 0-1: the final mini eval's, else the selected eval's
    collapse: float | None = None
    verdict: str = "n/a"
    status: str = ""
    tokens: int | None = None
    elapsed_s: float | None = None
    tasks_report: Path | None = None  # report.json of the task set
    twins: dict[str, dict] | None = None  # benchmark -> report.json twins entry
    contaminated: bool = False
    evals: dict[str, dict] = field(default_factory=dict)  # benchmark -> summary.json
    eval_dirs: dict[str, str] = field(default_factory=dict)  # benchmark -> folder
    info: dict = field(default_factory=dict)  # run.json
    config: dict = field(default_factory=dict)  # config.toml
    metrics: list[dict] = field(default_factory=list)  # metrics.jsonl lines

    def twin_counts(self) -> dict[str, int] | None:
        """benchmark -> eval tasks with a twin in the training data (None: not checked)."""
        if self.twins is None:
            return None
        # a build that dropped its twins has none left in training: only kept twins count
        return {b: v["eval_tasks_with_twin"] if v.get("train_tasks_kept", self.contaminated)
                else 0 for b, v in self.twins.items()}

    @property
    def cpu(self) -> str:
        """The CPU the run trained on (run.json `hardware`, training/hardware.py), else ""."""
        hw = self.info.get("hardware")
        return str(hw.get("cpu", {}).get("name", "")) if isinstance(hw, dict) else ""

    def row(self) -> dict:
        """The table's columns (JSON/CSV friendly; rates as 0-1 floats)."""
        return {"name": self.name, "stage": self.stage, "base": self.base,
                "params": self.params, "trainable_params": self.trainable_params,
                "data": self.data, "steps": self.steps, "target_steps": self.target_steps,
                "selected_on": self.selected_on or None, "selected_step": self.selected_step,
                "dev_pass": self.dev_pass, "dev_n_tasks": self.dev_n, "dev_se": self.dev_se,
                "solution_loss": self.solution_loss,
                "best_pass": self.best_pass, "n_tasks": self.n_tasks, "best_step": self.best_step,
                "humaneval_pass@1": self.humaneval, "humaneval_se": self.humaneval_se,
                "syntax_valid": self.syntax,
                "collapse_rate": self.collapse, "twins": self.twin_counts(),
                "contaminated": self.contaminated, "verdict": self.verdict,
                "status": self.status, "tokens": self.tokens, "elapsed_s": self.elapsed_s, "cpu": self.cpu,
                "path": str(self.path), "evals": {k: _brief(v) for k, v in self.evals.items()}}


def _brief(summary: dict) -> dict:
    keep = ("benchmark", "pass@", "syntax_valid", "collapse_rate", "n_tasks", "n_samples")
    return {k: v for k, v in summary.items() if k.startswith(keep)}
