"""`codeling distill`: tasks written by a teacher model, or a student trained on a teacher's logits.

    codeling distill generate --endpoint URL --model NAME [--api-key-env VAR] --out DIR --n N
        [--categories ...] [--levels 1,2,3] [--concurrency C] [--timeout S] [--retries R]
    codeling distill train --teacher CKPT (--student-preset NAME | --init CKPT) --run-dir DIR
        (--tasks DIR | --corpus DIR) [--preset P] [key=value ...] [--resume]

generate: request i asks for one task of a (category, level) drawn from a seeded, balanced
schedule (docs/distill.md has the prompts). Replies are parsed (tasks/teacher.py), validated in
the sandbox (`tasks.build.validate`), deduplicated by normalised prompt + solution against
everything already in DIR/tasks.jsonl, and decontaminated against the evaluation sets. Accepted
tasks are appended to DIR/tasks.jsonl (each line records its request index), rejections with
their stage and reason to DIR/rejected.jsonl, and DIR/report.json is rewritten from both files
after each round. A restart counts the tasks already there toward --n and asks only the
requests not yet recorded, so nothing is lost or asked twice.

train: logit KD in THE training loop (objectives.KDObjective): α·KL(teacher‖student at T)·T² +
(1−α)·CE, the teacher frozen in eval mode under no_grad and never in the optimizer. Data is task
data (prompt-masked, phased by `distill.curriculum`) or a pretraining corpus. Teacher and student
must share the tokenizer; a mismatch is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codeling.config import ConfigError, add_config_arguments
from codeling.io import JsonlAppender, atomic_write_json, iter_jsonl
from codeling.tasks.schema import Task
from codeling.tasks.teacher import (
    CATEGORIES,
    Rejected,
    RequestFailed,
    Teacher,
    TeacherError,
    parse_reply,
)

VALIDATE_TIMEOUT = 5.0  # seconds per sandboxed run of a teacher's task
REPLY_KEPT = 2000  # characters of a rejected reply kept in rejected.jsonl


# ---- generate ----

def request_plan(i: int, categories: Sequence[str], levels: Sequence[int],
                 seed: int) -> tuple[str, int]:
    """(category, level) of request i: every combination once per cycle, in a seeded order."""
    combos = [(c, lv) for c in categories for lv in levels]
    cycle, k = divmod(i, len(combos))
    random.Random(seed * 1_000_003 + cycle).shuffle(combos)
    return combos[k]


def _recorded(out: Path) -> tuple[list[dict], list[dict]]:
    rows = []
    for name in ("tasks.jsonl", "rejected.jsonl"):
        path = out / name
        rows.append([r for _, r in iter_jsonl(path)] if path.exists() else [])
    return rows[0], rows[1]


def validation_reasons(tasks: list[Task], workers: int) -> list[str | None]:
    """Per task: None when it validates, else the reason `tasks.build` gives."""
    from codeling.tasks import build

    return build.validation_reasons(tasks, workers, VALIDATE_TIMEOUT, progress=False)


def build_report(out: Path, n: int, teacher: str) -> dict:
    """Counts over everything recorded in DIR (all runs), written to DIR/report.json."""
    accepted, rejected = _recorded(out)
    stages = Counter(r["stage"] for r in rejected)
    requested = len(accepted) + len(rejected)
    received = requested - stages["request"]
    parsed = received - stages["parse"]
    validated = parsed - stages["validate"]
    report = {
        "teacher": teacher, "n_requested_tasks": n, "requests": requested,
        "received": received, "parsed": parsed, "validated": validated,
        "duplicates": stages["duplicate"], "contaminated": stages["contaminated"],
        "contaminated_kept": sum("contamination" in r for r in accepted),
        "accepted": len(accepted),
        "fraction_parsed": round(parsed / received, 4) if received else 0.0,
        "fraction_validated": round(validated / received, 4) if received else 0.0,
        "by_category": dict(sorted(Counter(r["category"] for r in accepted).items())),
        "by_level": {str(k): v for k, v in sorted(Counter(r["level"] for r in accepted).items())},
        "rejected_by_reason": dict(Counter(
            f"{r['stage']}: {r['reason'].split(' (')[0]}" for r in rejected).most_common(30)),
    }
    atomic_write_json(out / "report.json", report)
    return report


def generate(out: str | Path, teacher: Teacher, n: int, categories: Sequence[str] = CATEGORIES,
             levels: Sequence[int] = (1, 2, 3), concurrency: int = 4, seed: int = 0,
             max_requests: int = 0, allow_contamination: bool = False,
             eval_sets: Sequence[str] | None = None, workers: int = 0,
             progress: bool = True) -> dict:
    """Ask the teacher until DIR/tasks.jsonl holds n tasks (or max_requests, default 4·n, were
    asked in all); returns the report. Raises TeacherError when the teacher is unusable."""
    from tqdm import tqdm

    from codeling.tasks.decontam import EVAL_SETS, Decontaminator, load_eval_sets

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    accepted, rejected = _recorded(out)
    done = {r["request"] for r in accepted + rejected if isinstance(r.get("request"), int)}
    seen = {r["task_id"] for r in accepted}
    n_ok = len(accepted)
    limit = max_requests or 4 * n
    todo: Iterator[int] = (i for i in range(limit) if i not in done)
    deco = Decontaminator(load_eval_sets(eval_sets or EVAL_SETS))
    round_size = max(4 * concurrency, 8)  # a round: this many requests, then one sandbox batch
    bar = tqdm(total=n, initial=n_ok, desc="teacher tasks", unit="task", disable=not progress,
               file=sys.stderr)
    try:
        with JsonlAppender(out / "tasks.jsonl") as good, \
                JsonlAppender(out / "rejected.jsonl") as bad, \
                ThreadPoolExecutor(concurrency) as pool:
            while n_ok < n:
                size = min(round_size, max(concurrency, 2 * (n - n_ok)))
                batch = [i for _, i in zip(range(size), todo)]
                if not batch:
                    break
                plans = [request_plan(i, categories, levels, seed) for i in batch]
                replies = list(pool.map(lambda a: _ask(teacher, *a, seed),
                                        [(i, c, lv) for i, (c, lv) in zip(batch, plans)]))
                rows = _judge(plans, replies, seen, deco, workers, allow_contamination)
                for i, (c, lv), (task, stage, reason, reply) in zip(batch, plans, rows):
                    if task is not None and n_ok >= n:
                        continue  # unrecorded: a later run with a larger --n asks it again
                    if task is None:
                        bad.write({"request": i, "category": c, "level": lv, "stage": stage,
                                   "reason": reason, "reply": reply[:REPLY_KEPT]})
                        continue
                    good.write({**task.to_dict(), "request": i, "teacher": teacher.model})
                    seen.add(task.task_id)
                    n_ok += 1
                    bar.update(1)
                build_report(out, n, teacher.model)
    finally:
        bar.close()
    report = build_report(out, n, teacher.model)
    if report["contaminated_kept"] and allow_contamination:
        warnings.warn(f"--allow-contamination: {report['contaminated_kept']} kept tasks overlap "
                      "an evaluation set", RuntimeWarning, stacklevel=2)
    return report


def _ask(teacher: Teacher, i: int, category: str, level: int, seed: int
         ) -> tuple[str | None, str]:
    """(reply, "") or (None, failure reason). TeacherError propagates and ends the run."""
    try:
        return teacher.ask(category, level, i, seed), ""
    except RequestFailed as e:
        return None, str(e)


def _judge(plans, replies, seen: set[str], deco, workers: int,
           allow_contamination: bool) -> list[tuple]:
    """Per request: (task or None, stage, reason, reply) in request order."""
    rows: list[list] = []
    for (c, lv), (reply, failure) in zip(plans, replies):
        if reply is None:
            rows.append([None, "request", failure, ""])
            continue
        try:
            rows.append([parse_reply(reply, c, lv), "", "", reply])
        except Rejected as e:
            rows.append([None, "parse", str(e), reply])
    parsed = [r for r in rows if r[0] is not None]
    for r, why in zip(parsed, validation_reasons([r[0] for r in parsed], workers)):
        if why is not None:
            r[:3] = [None, "validate", why]
    batch_seen = set(seen)
    for r in rows:
        task = r[0]
        if task is None:
            continue
        if task.task_id in batch_seen:
            r[:3] = [None, "duplicate", f"same prompt and solution as {task.task_id}"]
            continue
        batch_seen.add(task.task_id)
        hit = deco.check(task)
        if hit is not None and not allow_contamination:
            r[:3] = [None, "contaminated", f"{hit.check} overlap with {hit.eval_set} "
                                           f"{hit.eval_task_id} ({hit.score:.2f})"]
        elif hit is not None:
            task.extra["contamination"] = hit.to_dict()
    return [tuple(r) for r in rows]


# ---- train ----

def check_same_tokenizer(teacher_dir: Path, teacher_tok, student_dir: Path, student_tok) -> None:
    """Logit KD compares distributions over the same ids: the vocabularies must be identical."""
    from codeling.data import tokenizer_fingerprint

    tv, sv = teacher_tok.tok.get_vocab(), student_tok.tok.get_vocab()
    if tv != sv:
        differ = sum(sv.get(tok) != i for tok, i in tv.items())
        raise ConfigError(
            f"teacher and student tokenizers differ: {teacher_dir} has {len(tv)} tokens, "
            f"{student_dir} has {len(sv)} ({differ} teacher tokens missing or at other ids). "
            "Logit distillation needs one tokenizer: train the student with the teacher's.")
    if tokenizer_fingerprint(teacher_tok) != tokenizer_fingerprint(student_tok):
        raise ConfigError(f"teacher and student tokenizers ({teacher_dir}, {student_dir}) share "
                          "a vocabulary but not their merges or normalisation: they would "
                          "split text differently")


def _resolve_train(args: argparse.Namespace):
    """Config, and the recorded inputs of a run being resumed, merged with the arguments."""
    from codeling.config import config_from_args, read_config

    run_dir = Path(args.run_dir)
    rec: dict = {}
    if args.resume and (run_dir / "run.json").exists():
        rec = json.loads((run_dir / "run.json").read_text())
    for key in ("teacher", "init", "student_preset", "tasks", "corpus"):
        if getattr(args, key) is None and rec.get(key):
            setattr(args, key, rec[key])
    if not args.teacher:
        raise ConfigError("--teacher is required")
    if bool(args.init) == bool(args.student_preset):
        raise ConfigError("give exactly one of --student-preset NAME or --init CKPT")
    if bool(args.tasks) == bool(args.corpus):
        raise ConfigError("give exactly one of --tasks DIR or --corpus DIR")
    if args.resume and not args.overrides and (run_dir / "config.toml").exists():
        cfg = read_config(run_dir / "config.toml")
    else:
        args.preset = args.preset or args.student_preset
        cfg = config_from_args(args, section="distill")
    return cfg, run_dir


def build_student(args, cfg, teacher_dir: Path, teacher_tok):
    """(model, tokenizer, tokenizer dir): a fresh preset-shaped student, or an --init one."""
    from codeling import checkpoint as ckpt
    from codeling.model import CodelingLM
    from codeling.tokenizer import load_tokenizer

    if args.init:
        tok_dir = Path(args.init)
        tok = load_tokenizer(tok_dir)
        cfg.model = ckpt.read_model_config(tok_dir)
        model = ckpt.load_model(tok_dir)
    else:
        tok_dir = Path(args.tokenizer) if args.tokenizer else teacher_dir
        tok = load_tokenizer(tok_dir)
        if cfg.model.vocab_size != tok.vocab_size:
            raise ConfigError(f"the student preset has model.vocab_size={cfg.model.vocab_size} "
                              f"but the tokenizer in {tok_dir} has {tok.vocab_size} tokens: pass "
                              f"model.vocab_size={tok.vocab_size}")
        model = CodelingLM(cfg.model)
    check_same_tokenizer(teacher_dir, teacher_tok, tok_dir, tok)
    return model, tok


def _data(args, cfg, tok, run_dir: Path, rank: int, world: int):
    """(train source, val source, counts) from task data or a pretraining corpus."""
    from codeling import data
    from codeling.sft import TaskBatches, TaskValBatches, load_examples

    tc = cfg.distill
    if args.tasks:
        tasks = Path(args.tasks)
        train_ex, levels, too_long = load_examples(tasks / "train.jsonl", tok, tc.seq_len)
        if not train_ex:
            raise ConfigError(f"{tasks / 'train.jsonl'}: no task fits distill.seq_len="
                              f"{tc.seq_len}")
        val = tasks / "val.jsonl"
        val_ex = load_examples(val, tok, tc.seq_len)[0] if val.exists() else []
        train = TaskBatches(train_ex, levels, tc.batch_size, tok.pad_id, tc.seed, tc.curriculum,
                            rank, world)
        val_data = TaskValBatches(val_ex, tc.batch_size, tok.pad_id, tc.eval_batches) \
            if val_ex else None
        return train, val_data, {"n_train": len(train_ex), "n_val": len(val_ex),
                                 "dropped_too_long": too_long}
    if tc.curriculum:
        raise ConfigError("distill.curriculum phases task levels: it needs --tasks, not --corpus")
    shards = run_dir / "shards"
    train, val_data, meta = data.corpus_batches(args.corpus, tok, shards, tc, rank, world)
    return train, val_data, {"tokens": meta["tokens"]}


def run_train(args: argparse.Namespace) -> int:
    import torch

    from codeling import checkpoint as ckpt
    from codeling.objectives import KDObjective
    from codeling.tokenizer import load_tokenizer
    from codeling.train import init_distributed, seed_everything, train

    cfg, run_dir = _resolve_train(args)
    tc = cfg.distill
    teacher_dir = Path(args.teacher)
    teacher_tok = load_tokenizer(teacher_dir)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)  # the same fresh student on every rank and every rerun
    student, tok = build_student(args, cfg, teacher_dir, teacher_tok)
    teacher = ckpt.load_model(teacher_dir)
    if teacher.config.vocab_size != student.config.vocab_size:
        raise ConfigError(f"teacher vocab_size {teacher.config.vocab_size} != student "
                          f"vocab_size {student.config.vocab_size}")
    for who, m in (("teacher", teacher), ("student", student)):
        if tc.seq_len > m.config.max_seq_len:
            raise ConfigError(f"distill.seq_len={tc.seq_len} exceeds the {who}'s max_seq_len "
                              f"{m.config.max_seq_len}")
    rank, world = init_distributed()
    train_data, val_data, counts = _data(args, cfg, tok, run_dir, rank, world)
    from codeling.evaluate.live import mini_evaluator

    evaluator = mini_evaluator(tok, tc, run_dir, rank)
    if rank == 0:
        print(f"distill: student {student.num_params():,} parameters, teacher "
              f"{teacher.num_params():,}; kd_alpha={tc.kd_alpha} T={tc.kd_temperature}")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "run.json", {
            "stage": "distill", "teacher": str(teacher_dir.resolve()),
            "init": str(Path(args.init).resolve()) if args.init else None,
            "student_preset": args.student_preset,
            "tasks": str(Path(args.tasks).resolve()) if args.tasks else None,
            "corpus": str(Path(args.corpus).resolve()) if args.corpus else None,
            "params": student.num_params(), "teacher_params": teacher.num_params(), **counts})
    objective = KDObjective(teacher, tc.kd_alpha, tc.kd_temperature, tc.label_smoothing)
    result = train(student, objective, train_data, tc, run_dir, val_data=val_data,
                   evaluator=evaluator, resume=args.resume, tokenizer=tok, config=cfg,
                   progress=not args.no_progress)
    if rank == 0:
        print(f"done: step {result.step} ({result.stopped}); final {result.final_dir}")
    return 0


# ---- CLI ----

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


def _list(text: str, valid: Sequence, what: str, kind=str) -> list:
    items = [kind(x) for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in valid]
    if bad or not items:
        raise ConfigError(f"unknown {what} {bad}; valid: {', '.join(map(str, valid))}")
    return items


def run_generate(args: argparse.Namespace) -> int:
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env {args.api_key_env}: that environment variable is "
                              "not set (or empty)")
    if args.n < 1 or args.concurrency < 1:
        raise ConfigError("--n and --concurrency must be at least 1")
    teacher = Teacher(args.endpoint, args.model, key, args.api, args.timeout, args.retries,
                      args.temperature, args.max_tokens, args.api_key_env)
    report = generate(args.out, teacher, args.n,
                      _list(args.categories, CATEGORIES, "categories"),
                      _list(args.levels, (1, 2, 3), "levels", int), args.concurrency,
                      args.seed, args.max_requests, args.allow_contamination,
                      args.eval_sets.split(",") if args.eval_sets else None, args.workers,
                      progress=not args.quiet)
    print(f"accepted {report['accepted']}/{args.n} from {report['requests']} requests "
          f"(validated {report['fraction_validated']:.1%} of replies) → {args.out}")
    return 0


def main(args: argparse.Namespace) -> int:
    from codeling.checkpoint import CheckpointError
    from codeling.train import TrainingError

    try:
        return run_generate(args) if args.action == "generate" else run_train(args)
    except (TeacherError, CheckpointError, TrainingError, FileExistsError) as e:
        print(f"codeling distill {args.action}: error: {e}", file=sys.stderr)
        return 1

