"""`codeling distill generate`: tasks written by a teacher model over HTTP, validated.

Request i asks for one task of a (category, level) drawn from a seeded, balanced schedule
(docs/distill.md has the prompts). Replies are parsed (tasks/teacher.py), validated in the
sandbox (`tasks.build.validate`), deduplicated by normalised prompt + solution against
everything already in DIR/tasks.jsonl, and decontaminated against the evaluation sets. Accepted
tasks are appended to DIR/tasks.jsonl (each line records its request index), rejections with
their stage and reason to DIR/rejected.jsonl, and DIR/report.json is rewritten from both files
after each round. A restart counts the tasks already there toward --n and asks only the
requests not yet recorded, so nothing is lost or asked twice.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codeling.config import ConfigError
from codeling.io import JsonlAppender, atomic_write_json, iter_jsonl
from codeling.tasks.schema import Task
from codeling.tasks.teacher import (
    CATEGORIES,
    Rejected,
    RequestFailed,
    Teacher,
    parse_reply,
)

VALIDATE_TIMEOUT = 5.0  # seconds per sandboxed run of a teacher's task
REPLY_KEPT = 2000  # characters of a rejected reply kept in rejected.jsonl


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
        "contaminated_kept": sum("contamination" in r or "twin_of" in r for r in accepted),
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
    from codeling.tasks.twins import TwinChecker, load_twin_eval_sets

    twins = TwinChecker(load_twin_eval_sets(eval_sets or EVAL_SETS), workers)  # calibrated once
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
                rows = _judge(plans, replies, seen, deco, workers, allow_contamination, twins)
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
           allow_contamination: bool, twins=None) -> list[tuple]:
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
    if twins is not None:  # behavioural decontamination (tasks/twins.py)
        left = [r for r in rows if r[0] is not None]
        for r, why in zip(left, twins.reasons([r[0] for r in left])):
            if why is not None and not allow_contamination:
                r[:3] = [None, "contaminated", why]
            elif why is not None:
                r[0].extra["twin_of"] = why.rsplit(" ", 1)[-1]
    return [tuple(r) for r in rows]


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
