"""`codeling distill`: tasks written by a teacher model, or a student trained on a teacher's logits.

    codeling distill generate --endpoint URL --model NAME [--api-key-env VAR] --out DIR --n N
        [--categories ...] [--levels 1,2,3] [--concurrency C] [--timeout S] [--retries R]
    codeling distill train --teacher CKPT (--student-preset NAME | --init CKPT) --run-dir DIR
        (--tasks DIR | --corpus DIR) [--preset P] [key=value ...] [--resume]

Two programs: `distill.generate` (teacher-written tasks over HTTP, validated, deduplicated,
decontaminated, resumable) and `distill.train` (logit KD in the one training loop).
"""

from __future__ import annotations

import argparse

from codeling.config import add_config_arguments
from codeling.stage import run_main
from codeling.tasks.teacher import CATEGORIES, TeacherError


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="<action>", required=True)
    g = sub.add_parser("generate", help="ask a teacher endpoint for validated tasks")
    g.add_argument("--endpoint", required=True, help="OpenAI-compatible base URL (…/v1)")
    g.add_argument("--model", required=True, help="the model name the endpoint serves")
    g.add_argument("--api-key-env", default=None, help="env var holding the API key")
    g.add_argument("--api", choices=("chat", "completions"), default="chat")
    g.add_argument("--out", required=True, help="folder: tasks.jsonl, rejected.jsonl, report")
    g.add_argument("--n", type=int, required=True, help="tasks wanted in tasks.jsonl in all")
    g.add_argument("--categories", default=",".join(CATEGORIES))
    g.add_argument("--levels", default="1,2,3")
    g.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per request attempt")
    g.add_argument("--retries", type=int, default=4, help="retries on 429/5xx/connection errors")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--max-tokens", type=int, default=1024)
    g.add_argument("--max-requests", type=int, default=0,
                   help="stop after this many requests in all (default 4·n)")
    g.add_argument("--allow-contamination", action="store_true")
    g.add_argument("--eval-sets", default=None,
                   help="comma-separated evaluation sets to decontaminate against (default all)")
    g.add_argument("--workers", type=int, default=0, help="sandbox workers (0: one per core)")
    g.add_argument("--quiet", action="store_true")
    t = sub.add_parser("train", help="logit distillation of a teacher checkpoint into a student")
    add_config_arguments(t)
    t.add_argument("--teacher", help="teacher checkpoint dir")
    t.add_argument("--student-preset", help="a fresh student of this preset's shape")
    t.add_argument("--init", help="or: a student checkpoint to continue from")
    t.add_argument("--tokenizer", help="student tokenizer dir (default: the teacher's)")
    t.add_argument("--tasks", help="a tasks folder (train.jsonl, val.jsonl)")
    t.add_argument("--corpus", help="or: a corpus folder (pretraining data)")
    t.add_argument("--run-dir", required=True)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--no-progress", action="store_true")


def main(args: argparse.Namespace) -> int:
    if args.action == "generate":
        from codeling.distill.generate import run_generate

        return run_main("distill generate", run_generate, args, runtime_errors=(TeacherError,))
    from codeling.distill.train import run_train

    return run_main("distill train", run_train, args)
