"""What one dev evaluation costs, and what share of a training budget an eval schedule takes.

On a model of the preset's shape (random weights unless --checkpoint; a random model never
stops early, so every completion runs to `sft.eval_max_new_tokens`: the worst case; a trained
model stops at the function's end), with the real in-training evaluator (evaluate/live.py):
greedy generation of every dev task, sandboxed judging, and the teacher-forced solution loss.
The subset the preset generates on at each in-training eval (`sft.eval_dev_subset`,
tasks/dev.py `dev_subset`) is costed by its share of the generated tokens. Wall seconds
stretch on a loaded machine, so CPU seconds (this process's threads) are printed beside them.
The schedule's share of the budget: (E - 1) evals of the subset (generation and solution
loss), and a last eval of the whole set, against `sft.time_budget_s`; beside it, the whole set
generated at every eval. Generation goes through
`generate.generate_samples`, so a faster generator shows here as it lands.

    .venv/bin/python bench/dev_eval_cost.py --dev runs/cpu/tasks/dev.jsonl --preset cpu \\
        [--tokenizer runs/cpu/tokenizer] [--checkpoint CKPT] [--evals 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from codeling.config import load_config
from codeling.evaluate.live import GenerationEval, dev_stop
from codeling.evaluate.solution_loss import solution_loss
from codeling.generate import load_for_inference
from codeling.model import CodelingLM
from codeling.tasks.dev import dev_subset
from codeling.tasks.schema import read_tasks
from codeling.tokenizer import load_tokenizer, train_tokenizer
from codeling.training.hardware import autocast_context


def stdlib_tokenizer(vocab_size: int):
    root = Path(sys.modules["json"].__file__).parents[1]
    texts = [f.read_text(errors="replace") for f in sorted(root.glob("*.py"))[:40]]
    return train_tokenizer(texts, vocab_size=vocab_size)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(ev: GenerationEval, model, tasks, max_tokens: int, autocast=None) -> dict:
    """Wall and CPU seconds (this process's threads: generation and the loss) to generate,
    judge and score the solution loss of `tasks`; the subset's generation cost is taken in
    proportion to its share of the generated tokens."""
    w0, c0 = time.perf_counter(), time.process_time()
    samples = ev.generate(model, tasks)
    w1, c1 = time.perf_counter(), time.process_time()
    rows = ev.judge(samples, tasks)
    w2, c2 = time.perf_counter(), time.process_time()
    loss = solution_loss(model, ev.tokenizer, tasks, max_tokens, autocast=autocast)
    w3, c3 = time.perf_counter(), time.process_time()
    toks = {s["task_id"]: s["n_tokens"] for s in samples}
    return {"n": len(tasks), "generate_s": w1 - w0, "generate_cpu_s": c1 - c0,
            "judge_s": w2 - w1, "loss_s": w3 - w2, "loss_cpu_s": c3 - c2,
            "tokens": sum(toks.values()), "per_task_tokens": toks,
            "mean_tokens": statistics.mean(toks.values()),
            "stopped_early": sum(s["finish_reason"] == "stop" for s in samples),
            "passed": sum(r["passed"] for r in rows), "solution_loss": loss["solution_loss"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dev", type=Path, required=True, help="a dev.jsonl (`codeling tasks`)")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--tokenizer", type=Path, help="default: one trained on stdlib files")
    p.add_argument("--checkpoint", type=Path, help="a trained model instead of random weights")
    p.add_argument("--evals", type=int, default=4, help="evals in one run, the last included")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n", type=int, default=0, help="the first N dev tasks only (0: all)")
    p.add_argument("--loss-dtype", choices=("fp32", "bf16"), default="fp32",
                   help="the solution loss's autocast: training/evals.py gives it the training "
                   "step's (bf16 where start-up measured it faster)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.preset)
    sft = cfg.sft
    if args.checkpoint:
        model, tok = load_for_inference(args.checkpoint)
    else:
        tok = load_tokenizer(args.tokenizer) if args.tokenizer else stdlib_tokenizer(
            cfg.model.vocab_size)
        torch.manual_seed(0)
        model = CodelingLM(cfg.model).eval()
    tasks = read_tasks(args.dev)[:args.n or None]
    sub = dev_subset(tasks, sft.eval_dev_subset) if sft.eval_dev_subset else tasks
    ev = GenerationEval(tasks, tok, dev_stop(), max_new_tokens=sft.eval_max_new_tokens)
    print(f"CPU: {cpu_name()}, {args.threads} threads; model {cfg.model.n_layer} x "
          f"{cfg.model.d_model} ({sum(q.numel() for q in model.parameters()):,} parameters, "
          f"{'trained' if args.checkpoint else 'random'}); max_new_tokens "
          f"{sft.eval_max_new_tokens}, batch {ev.batch_size}")
    full = measure(ev, model, tasks, sft.seq_len + 1,
                   autocast_context(args.loss_dtype, torch.device("cpu")))
    share = sum(full["per_task_tokens"][t.task_id] for t in sub) / max(full["tokens"], 1)
    n = len(tasks)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall seconds "
          "stretch under load; CPU seconds are this process's own)")
    print(f"whole dev, {n} tasks: generate {full['generate_s']:.1f} s wall, "
          f"{full['generate_cpu_s']:.1f} s CPU ({full['tokens']:,} tokens, "
          f"{full['tokens'] / full['generate_s']:.0f} tokens/s wall, mean "
          f"{full['mean_tokens']:.0f} a completion, {full['stopped_early']} stopped early); "
          f"judge {full['judge_s']:.1f} s; solution loss ({args.loss_dtype}) "
          f"{full['loss_s']:.1f} s wall, {full['loss_cpu_s']:.1f} s CPU, "
          f"{full['solution_loss']:.4f}; "
          f"passed {full['passed']}")
    gen_full = full["generate_s"] + full["judge_s"]
    gen_sub = share * full["generate_s"] + len(sub) / n * full["judge_s"]
    loss_s = full["loss_s"]
    schedule = (args.evals - 1) * (gen_sub + len(sub) / n * loss_s) + gen_full + loss_s
    every = args.evals * (gen_full + loss_s)
    budget = sft.time_budget_s or float("nan")
    print(f"subset of {len(sub)} ({100 * share:.0f}% of the tokens): {gen_sub:.1f} s a look")
    print(f"schedule of {args.evals} evals (subset and its solution loss; the last "
          f"generates all {n}): {schedule:.0f} s = {100 * schedule / budget:.1f}% of "
          f"sft.time_budget_s {budget:g}")
    print(f"the whole dev generated at every eval: {every:.0f} s = {100 * every / budget:.1f}%")
    print(f"one look at the whole dev: {gen_full + loss_s:.0f} s = "
          f"{100 * (gen_full + loss_s) / budget:.1f}%; solution loss alone at every eval: "
          f"{args.evals * loss_s:.0f} s = {100 * args.evals * loss_s / budget:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
