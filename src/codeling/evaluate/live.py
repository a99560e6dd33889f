"""Evaluation by generation during training, on the dev set: checkpoints are never chosen on a
benchmark that is reported.

`dev_evaluator(tokenizer, cfg, run_dir, tasks_dir, rank)` is the training loop's
`evaluator(model, step)` for sft and distill: it reads `<tasks_dir>/dev.jsonl` (written by
`codeling tasks`: tasks of synthetic families and composition recipes held out of train/val,
plus held-out MBPP train/validation tasks). At each eval it
- scores the reference solutions of the tasks it generates on teacher-forced
  (evaluate/solution_loss.py: `solution_loss` overall, per style and per category), a smooth
  signal that costs one forward pass per task (the whole set at the last eval);
- generates one greedy completion per task of a fixed stratified subset of the dev set
  (`cfg.eval_dev_subset` tasks, tasks/dev.py `dev_subset`; 0: all of it), judges them in the
  sandbox and returns `eval_result`: `score` (the subset's pass count, which picks
  `checkpoints/best`: every eval is scored on the same tasks), `selected_on: "dev"`, pass,
  pass@1 with its standard error `pass@1_se`, syntax validity, collapse rate, sandbox errors
  and the `per_category` / `per_style` breakdown of `metrics.summarize`;
- at the loop's last eval (`final=True`), generates the rest of the dev set too: `dev_full`
  holds the whole set's result (pass, pass@1, pass@1_se, breakdowns), so the run's end carries
  the full-resolution number while the in-training evals stay cheap;
- with `cfg.eval_samples = n > 0`, also samples n completions per subset task at
  `cfg.eval_temperature` and reports `sampled` (pass@1 by the unbiased estimator, with its
  standard error): information, never the score.
Without a dev.jsonl it returns None and the loop selects on validation loss (`best.json` then
says `"selected_on": "val_loss"`). The samples of each eval are kept in
`evals/samples_step_N.jsonl`, each row with its prompt.

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
from codeling.evaluate.solution_loss import solution_loss
from codeling.generate import generate_samples
from codeling.io import write_jsonl
from codeling.tasks.benchmarks import load_benchmark, stop_sequences
from codeling.tasks.dev import dev_subset
from codeling.tasks.schema import Task, read_tasks

# the scalars that also join the metrics line; the breakdowns stay in evals/step_N.json
SCALAR_KEYS = ("pass@1", "pass@1_se", "syntax_valid", "collapse_rate", "n_errors")
BREAKDOWNS = ("per_category", "per_style")


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
    """Greedy generation on `tasks`, judged in the sandbox; `name` labels the eval set.

    `subset` (0: all) generates on a fixed stratified subset at every eval and on the whole
    set only when called with `final=True`; `loss_max_tokens` (0: off) adds the solution loss
    of the same tasks; `samples` > 0 adds pass@1 from that many samples at `temperature`."""

    # training/evals.py passes final=True at the loop's last eval, and its step's autocast
    takes_final = True

    def __init__(self, tasks: Sequence[Task], tokenizer, stop: Sequence[str],
                 max_new_tokens: int = 160, batch_size: int = 16, timeout: float = 5.0,
                 out_dir: str | Path | None = None, workers: int = 0, name: str = "dev",
                 selects: bool = True, info: GenerationEval | None = None, subset: int = 0,
                 loss_max_tokens: int = 0, samples: int = 0, temperature: float = 0.8):
        if not tasks:
            raise ValueError(f"GenerationEval {name!r}: no tasks")
        self.all_tasks, self.tokenizer, self.stop = list(tasks), tokenizer, list(stop)
        self.tasks = dev_subset(self.all_tasks, subset) if 0 < subset < len(tasks) else \
            self.all_tasks
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.limits, self.workers = Limits(timeout=timeout), workers
        self.out_dir = Path(out_dir) if out_dir else None
        self.name, self.selects, self.info = name, selects, info
        self.loss_max_tokens, self.samples, self.temperature = loss_max_tokens, samples, temperature

    def __call__(self, model: nn.Module, step: int, final: bool = False,
                 autocast=None) -> dict:
        rows = self.judge(self.generate(model, self.tasks))
        out = eval_result(rows, self.tasks, self.name, self.selects)
        if final and len(self.tasks) < len(self.all_tasks):
            chosen = {t.task_id for t in self.tasks}
            rest = [t for t in self.all_tasks if t.task_id not in chosen]
            rows += self.judge(self.generate(model, rest), rest)
            full = eval_result(rows, self.all_tasks, self.name, selects=False)
            out["dev_full"] = {k: v for k, v in full.items() if k != "eval_set"}
        self._write(rows, step)
        if self.loss_max_tokens:  # on what this eval generated on: cheap, and like with like
            scored = self.all_tasks if final else self.tasks
            out.update(solution_loss(unwrap(model), self.tokenizer, scored,
                                     self.loss_max_tokens, autocast=autocast))
        if self.samples:
            out["sampled"] = self.sampled(model)
        if self.info is not None:
            info = self.info(model, step)
            out["mini_info"] = {"used_for_selection": False,
                                **{k: v for k, v in info.items() if k not in BREAKDOWNS}}
        return out

    def _write(self, rows: list[dict], step: int) -> None:
        if self.out_dir is not None:
            prefix = "" if self.selects else f"{self.name}_"
            prompts = {t.task_id: t.prompt for t in self.all_tasks}
            write_jsonl(self.out_dir / f"samples_{prefix}step_{step}.jsonl",
                        [{**r, "prompt": prompts[r["task_id"]]} for r in rows])

    def sampled(self, model: nn.Module) -> dict:
        """pass@1 of the subset from `samples` completions per task at `temperature` (the
        unbiased estimator, with its standard error over tasks)."""
        samples = generate_samples(unwrap(model), self.tokenizer, self.tasks, n=self.samples,
                                   stop=self.stop, max_new_tokens=self.max_new_tokens,
                                   batch_size=self.batch_size, temperature=self.temperature,
                                   seed=0)
        for s in samples:
            s["sample_index"] = s.get("sample_idx", 0)
        s = summarize(self.judge(samples), self.tasks, [1])
        return {"n": self.samples, "temperature": self.temperature, "n_tasks": len(self.tasks),
                "pass@1": s["pass@1"], "pass@1_se": s["pass@1_se"]}

    def generate(self, model: nn.Module, tasks: Sequence[Task] | None = None) -> list[dict]:
        """One greedy completion per task (samples.jsonl rows)."""
        return generate_samples(unwrap(model), self.tokenizer, tasks or self.tasks, n=1,
                                stop=self.stop, max_new_tokens=self.max_new_tokens,
                                batch_size=self.batch_size)

    def judge(self, samples: list[dict], tasks: Sequence[Task] | None = None) -> list[dict]:
        """The harness's result rows: sandboxed verdicts, syntax and collapse."""
        with Sandbox(self.limits, workers=self.workers) as sb:
            return judge({t.task_id: t for t in tasks or self.all_tasks}, samples, sb)


def dev_stop() -> list[str]:
    """Dev tasks are HumanEval-shaped prompts from synthetic and MBPP sources: MBPP's stops
    (HumanEval's plus a top-level `assert`) end a completion at the function's end for both."""
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
        info = GenerationEval(load_benchmark("mini"), tokenizer, stop_sequences("mini"),
                              max_new_tokens=cfg.eval_max_new_tokens, out_dir=out_dir,
                              name="mini", selects=False)
    # the solution loss is measured at the training length: longer pairs were never trained on
    loss_tokens = (cfg.seq_len + 1) if getattr(cfg, "eval_solution_loss", True) else 0
    return GenerationEval(read_tasks(path), tokenizer, dev_stop(),
                          max_new_tokens=cfg.eval_max_new_tokens, out_dir=out_dir, name="dev",
                          info=info, subset=getattr(cfg, "eval_dev_subset", 0),
                          loss_max_tokens=loss_tokens, samples=getattr(cfg, "eval_samples", 0),
                          temperature=getattr(cfg, "eval_temperature", 0.8))
