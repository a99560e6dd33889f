"""Evaluation by generation during training: the plan's first lesson, "never trust loss≈0".

`GenerationEval(tasks, tokenizer, ...)` is the training loop's `evaluator(model, step)`: it
generates a greedy completion for every task (mini-HumanEval by default), runs them in the
sandbox, and returns pass count, pass@1, syntax validity, mode-collapse rate and a per-category
breakdown. `score` (what picks the best checkpoint) is the pass count; the loop breaks ties
with validation loss. The samples of each eval are kept in `evals/samples_step_N.jsonl`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from codeling.evaluate.harness import judge
from codeling.evaluate.metrics import summarize
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.io import write_jsonl
from codeling.tasks.schema import Task


def unwrap(model: nn.Module) -> nn.Module:
    """The CodelingLM inside DDP / peft wrappers (LoRA layers stay injected and active)."""
    model = getattr(model, "module", model)
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


class GenerationEval:
    def __init__(self, tasks: Sequence[Task], tokenizer, stop: Sequence[str],
                 max_new_tokens: int = 160, batch_size: int = 16, timeout: float = 5.0,
                 out_dir: str | Path | None = None, workers: int = 0):
        self.tasks, self.tokenizer, self.stop = list(tasks), tokenizer, list(stop)
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.limits, self.workers = Limits(timeout=timeout), workers
        self.out_dir = Path(out_dir) if out_dir else None

    def __call__(self, model: nn.Module, step: int) -> dict:
        from codeling.generate import generate_samples

        samples = generate_samples(unwrap(model), self.tokenizer, self.tasks, n=1,
                                   stop=self.stop, max_new_tokens=self.max_new_tokens,
                                   batch_size=self.batch_size)
        with Sandbox(self.limits, workers=self.workers) as sb:
            rows = judge({t.task_id: t for t in self.tasks}, samples, sb)
        if self.out_dir is not None:
            write_jsonl(self.out_dir / f"samples_step_{step}.jsonl", rows)
        s = summarize(rows, self.tasks, [1])
        passed = sum(r["passed"] for r in rows)
        return {"score": passed, "pass": passed, "n_tasks": len(self.tasks),
                "pass@1": s["pass@1"], "syntax_valid": s["syntax_valid"],
                "collapse_rate": s["collapse_rate"], "by_category": s.get("by_category", {})}


def mini_evaluator(tokenizer, cfg, run_dir: str | Path, rank: int = 0) -> GenerationEval | None:
    """The in-training evaluator SFT and distillation share: mini-HumanEval, greedy, rank 0."""
    if not cfg.eval_mini or rank != 0:
        return None
    from codeling.tasks.benchmarks import load_benchmark, stop_sequences

    return GenerationEval(load_benchmark("mini"), tokenizer, stop_sequences("mini"),
                          max_new_tokens=cfg.eval_max_new_tokens,
                          out_dir=Path(run_dir) / "evals")
