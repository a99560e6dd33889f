"""Evaluation by generation during training, on the dev set: checkpoints are never chosen on a
benchmark that is reported.

`dev_evaluator(tokenizer, cfg, run_dir, tasks_dir, rank)` is the training loop's
`evaluator(model, step)` for sft and distill: it reads `<tasks_dir>/dev.jsonl` (written by
`codeling tasks`: synthetic tasks of families held out of train/val, plus held-out MBPP
train/validation tasks), generates one greedy completion per task, judges them in the sandbox
and returns `eval_result`: `score` (the dev pass count, which picks `checkpoints/best`),
`selected_on: "dev"`, pass, pass@1, syntax validity, collapse rate, sandbox errors and the
`per_category` / `per_style` breakdown of `metrics.summarize`. Without a dev.jsonl it returns
None and the loop selects on validation loss (`best.json` then says `"selected_on":
"val_loss"`). The samples of each eval are kept in `evals/samples_step_N.jsonl`, each row with
its prompt.

`mini_info=True` adds an information-only mini-HumanEval curve under the result's
`"mini_info"` key (`"used_for_selection": false`): it never enters `score`, and reports label it.
Off by default: a curve watched during training invites choosing on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from codeling.evaluate.harness import judge
from codeling.evaluate.metrics import summarize
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.io import write_jsonl
from codeling.tasks.schema import Task, read_tasks

# the scalars that also join the metrics line; the breakdowns stay in evals/step_N.json
SCALAR_KEYS = ("pass@1", "syntax_valid", "collapse_rate", "n_errors")


def unwrap(model: nn.Module) -> nn.Module:
    """The CodelingLM inside DDP / peft wrappers (LoRA layers stay injected and active)."""
    model = getattr(model, "module", model)
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def eval_result(rows: list[dict], tasks: Sequence[Task], eval_set: str,
                selects: bool = True) -> dict:
    """The evaluator's dict from judged rows (harness.judge), read from metrics.summarize."""
    s = summarize(rows, tasks, [1])
    passed = s["passed_tasks_first_sample"]
    out = {"eval_set": eval_set, "pass": passed, "n_tasks": len(tasks),
           **{k: s[k] for k in SCALAR_KEYS if k in s},
           "per_category": s["per_category"], "per_style": s.get("per_style", {})}
    if selects:
        out = {"score": passed, "selected_on": eval_set, **out}
    return out


class GenerationEval:
    """Greedy generation on `tasks`, judged in the sandbox; `name` labels the eval set."""

    def __init__(self, tasks: Sequence[Task], tokenizer, stop: Sequence[str],
                 max_new_tokens: int = 160, batch_size: int = 16, timeout: float = 5.0,
                 out_dir: str | Path | None = None, workers: int = 0, name: str = "dev",
                 selects: bool = True, info: GenerationEval | None = None):
        if not tasks:
            raise ValueError(f"GenerationEval {name!r}: no tasks")
        self.tasks, self.tokenizer, self.stop = list(tasks), tokenizer, list(stop)
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.limits, self.workers = Limits(timeout=timeout), workers
        self.out_dir = Path(out_dir) if out_dir else None
        self.name, self.selects, self.info = name, selects, info

    def __call__(self, model: nn.Module, step: int) -> dict:
        rows = self.judge(self.generate(model))
        if self.out_dir is not None:
            prefix = "" if self.selects else f"{self.name}_"
            prompts = {t.task_id: t.prompt for t in self.tasks}
            write_jsonl(self.out_dir / f"samples_{prefix}step_{step}.jsonl",
                        [{**r, "prompt": prompts[r["task_id"]]} for r in rows])
        out = eval_result(rows, self.tasks, self.name, self.selects)
        if self.info is not None:
            info = self.info(model, step)
            out["mini_info"] = {"used_for_selection": False,
                                **{k: v for k, v in info.items() if not k.startswith("per_")}}
        return out

    def generate(self, model: nn.Module) -> list[dict]:
        """One greedy completion per task (samples.jsonl rows)."""
        from codeling.generate import generate_samples

        return generate_samples(unwrap(model), self.tokenizer, self.tasks, n=1, stop=self.stop,
                                max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)

    def judge(self, samples: list[dict]) -> list[dict]:
        """The harness's result rows: sandboxed verdicts, syntax and collapse."""
        with Sandbox(self.limits, workers=self.workers) as sb:
            return judge({t.task_id: t for t in self.tasks}, samples, sb)


def dev_stop() -> list[str]:
    """Dev tasks are HumanEval-shaped prompts from synthetic and MBPP sources: MBPP's stops
    (HumanEval's plus a top-level `assert`) end a completion at the function's end for both."""
    from codeling.tasks.benchmarks import stop_sequences

    return stop_sequences("mbpp")


def dev_evaluator(tokenizer, cfg, run_dir: str | Path, tasks_dir: str | Path | None,
                  rank: int = 0, *, mini_info: bool = False) -> GenerationEval | None:
    """The in-training evaluator of sft and distill (see the module docstring).

    None on ranks other than 0, when `cfg.eval_mini` (generation evals) is off, or when
    `<tasks_dir>/dev.jsonl` does not exist: the loop then selects on validation loss.
    """
    if rank != 0 or not getattr(cfg, "eval_mini", True) or tasks_dir is None:
        return None
    path = Path(tasks_dir) / "dev.jsonl"
    if not path.is_file():
        print(f"note: no dev set ({path} not found): the best checkpoint is chosen on "
              "validation loss; rebuild the tasks with `codeling tasks` to select on dev")
        return None
    out_dir = Path(run_dir) / "evals"
    info = None
    if mini_info:
        from codeling.tasks.benchmarks import load_benchmark, stop_sequences

        info = GenerationEval(load_benchmark("mini"), tokenizer, stop_sequences("mini"),
                              max_new_tokens=cfg.eval_max_new_tokens, out_dir=out_dir,
                              name="mini", selects=False)
    return GenerationEval(read_tasks(path), tokenizer, dev_stop(),
                          max_new_tokens=cfg.eval_max_new_tokens, out_dir=out_dir, name="dev",
                          info=info)
