"""The eval scheduler: when to evaluate, what an eval measures, which step is best, when to stop.

Every `eval_every` steps and at the last: the mean validation loss (`val_loss`, `val_ppl`) over
`val_data`, then `evaluator(model, step)` on rank 0, its dict broadcast to every rank. The
whole dict goes to `evals/step_N.json`; its scalars join the metrics line. The best step is
ranked by the evaluator's `score` (higher is better; `codeling.evaluate.live.dev_evaluator`
scores the dev pass count), ties broken by lower val_loss; without an evaluator by val_loss
alone. The best weights go to `checkpoints/best/`, and `best.json` (step, score, selected_on,
the metrics line, the evaluator's whole dict) beside them. `selected_on` is the evaluator's own
`selected_on` ("dev"), else "score" for an evaluator that does not say, else "val_loss".
`early_stop` evals without improvement end training. The loop's last eval is `final`: an evaluator
with `takes_final` is called with `final` (True then: the dev evaluator generates the whole dev set
there, its subset elsewhere) and the step's `autocast` (for its solution loss). The dict's scalars
(`solution_loss`, `pass@1_se`...) join the metrics line; `dev_full` and breakdowns stay in
evals/step_N.json and best.json.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from codeling.config import TrainConfig
from codeling.io import atomic_write_json
from codeling.training.checkpoints import CheckpointKeeper
from codeling.training.dist import Dist

SCALARS = (int, float, str, bool)


class EvalScheduler:
    def __init__(self, cfg: TrainConfig, run_dir: Path, model: nn.Module, objective, val_data,
                 evaluator, autocast, dist: Dist, keeper: CheckpointKeeper, device):
        self.every, self.steps = cfg.eval_every, cfg.steps
        self.early_stop = int(getattr(cfg, "early_stop", 0) or 0)
        self.evals_dir = run_dir / "evals"
        self.best_path = run_dir / "best.json"
        self.model, self.objective, self.val_data = model, objective, val_data
        self.evaluator, self.autocast, self.dist = evaluator, autocast, dist
        self.keeper, self.device = keeper, device
        self.best: dict | None = None
        self.evals_since_best = 0
        self.last: dict | None = None  # the last eval's row, with its step

    def due(self, step: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == self.steps)

    def state_dict(self) -> dict:
        return {"best": self.best, "evals_since_best": self.evals_since_best}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.evals_since_best = state["best"], state["evals_since_best"]

    def drop_after(self, step: int) -> None:
        """Remove eval files a killed run wrote after the checkpoint it resumes from."""
        if self.dist.is_main and self.evals_dir.is_dir():
            for f in self.evals_dir.glob("*step_*.json*"):
                n = f.name.split("step_")[-1].split(".")[0]
                if n.isdigit() and int(n) > step:
                    f.unlink()

    def run(self, step: int, final: bool = False) -> tuple[dict, bool]:
        """Evaluate at `step` (`final`: the loop's last eval): (the metrics-line fields,
        whether to stop early)."""
        self.model.eval()
        row = self._val_loss()
        extra = self._evaluator(step, final)
        self.model.train()
        if self.dist.is_main and extra:
            atomic_write_json(self.evals_dir / f"step_{step}.json", {"step": step, **row, **extra})
        row.update({k: v for k, v in extra.items() if isinstance(v, SCALARS) or v is None})
        self.last = {"step": step, **row}
        return row, self._track_best(step, row, extra)

    @torch.no_grad()
    def _val_loss(self) -> dict:
        if self.val_data is None:
            return {}
        losses = []
        for batch in self.val_data:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with self.autocast:
                losses.append(self.objective.val_loss(self.model, batch).float())
        if not losses:
            return {}
        val = self.dist.mean(torch.stack(losses).mean()).item()
        return {"val_loss": val, "val_ppl": math.exp(min(val, 50.0))}

    @torch.no_grad()
    def _evaluator(self, step: int, final: bool) -> dict:
        # only rank 0 evaluates (others may not even hold an evaluator); all get its result
        mine = None
        if self.dist.is_main and self.evaluator is not None:
            # an evaluator that says `takes_final` (live.GenerationEval) does more at the end
            # generation stays in fp32 (the benchmarks' tokens); its solution loss takes the
            # step's autocast, as val loss does
            kw = {"final": final, "autocast": self.autocast} \
                if getattr(self.evaluator, "takes_final", False) else {}
            mine = self.evaluator(self.model, step, **kw)
        return self.dist.from_main(mine) or {}

    def _track_best(self, step: int, row: dict, extra: dict) -> bool:
        if "val_loss" not in row and "score" not in row:
            return False
        tie = -row.get("val_loss", 0.0)
        key = [row.get("score", tie), tie]
        if self.best is None or key > self.best["key"]:
            selected = row.get("selected_on") or ("score" if "score" in row else "val_loss")
            self.best = {"step": step, "score": key[0], "key": key, "selected_on": selected,
                         "metrics": row, "eval": extra}
            self.evals_since_best = 0
            self.keeper.save_best()
            if self.dist.is_main:
                atomic_write_json(self.best_path, self.best)
        else:
            self.evals_since_best += 1
        return bool(self.early_stop) and self.evals_since_best >= self.early_stop
