"""`codeling selftrain`: verified self-training (expert iteration / rejection-sampling fine-tuning).

    codeling selftrain --init CKPT --tasks DIR --run-dir RUN [--preset P] [key=value ...]
        [--endpoint URL --model NAME [--api-key-env VAR]]

A round: (1) sample `selftrain.k` completions per prompt of a pool of training prompts with
tests: DIR/train.jsonl (synthetic and MBPP train/validation tasks) plus `selftrain.fresh_tasks`
new generator tasks from families outside the dev set; never a val, dev or evaluation task.
(2) Keep those that pass the task's tests in the sandbox. (3) Deduplicate by normalised text
(comments and layout dropped) against the reference solution and everything accepted before,
keep at most `max_per_task` per task, and decontaminate (n-gram/docstring `Decontaminator`, then
the behavioural twin check `tasks.twins.find_twins`). (4) Fine-tune with the sft stage on the
kept solutions plus `mix_ratio` × as many original training tasks. The next round samples from
the tuned checkpoint. The teacher is pluggable: with --endpoint the completions come from an
OpenAI-compatible server (`codeling serve` of a bigger checkpoint, vLLM, an API) through the
same accept path, and the --init checkpoint is the student that is tuned.

RUN/round_N/ holds:
  pool.jsonl       the prompts of the round (written once, so a resume samples the same ones)
  verified.jsonl   candidates that passed the tests and the dedupe, appended per chunk
  progress.jsonl   one line per finished chunk
  rejected.jsonl   {"task_id", "sample_idx", "key", "reason", "category", "style"}
  accepted.jsonl   task records (prompt, canonical_solution = the completion, test, ...) plus
                   "key", "sample_idx", "round", "teacher": verified minus contaminated
  tasks/           train.jsonl (accepted + mixed originals), val.jsonl, dev.jsonl for sft
  sft/             the sft run (its best checkpoint is the round's result)
  report.json      counts, acceptance by category and style, dev result, seconds (round done)
RUN/curve.json lists the dev result after each round (round 0: the --init checkpoint).

Resume: a rerun into RUN continues it by the one rule of every stage (`stage.open_stage`): the
saved RUN/config.toml plus the overrides given now; another --preset, or a change of a key the
rounds done so far depend on (model, tokenizer, `selftrain.seed`/`chunk`/`k`), is an error;
--init and --tasks default to RUN/run.json's. Every file is append-only with (task_id, sample_idx) keys or written atomically; a
chunk's rows are re-judged after a kill (seeded, so the same samples) and rows already recorded
are skipped, so nothing is lost or duplicated. A round with report.json is done.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from codeling.config import ConfigError, add_config_arguments, save_config
from codeling.io import JsonlAppender, atomic_write_json, iter_jsonl, write_jsonl
from codeling.tasks.schema import Task, read_tasks, write_tasks

if TYPE_CHECKING:
    import torch

# prompts -> k completion texts per prompt (seeded)
Sampler = Callable[[list[Task], int, int], list[list[str]]]


def normalised(code: str) -> str:
    """Code without comments, docstring layout or whitespace differences (ast round trip)."""
    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError):
        return " ".join(code.split())


def solution_key(task: Task, completion: str) -> str:
    text = normalised(task.prompt + completion)
    return hashlib.sha1(f"{task.task_id}\0{text}".encode()).hexdigest()[:16]


def _rows(path: Path) -> list[dict]:
    return [r for _, r in iter_jsonl(path)] if path.exists() else []


# ---- samplers ----

def run_device(cfg) -> torch.device:
    """Sampling and dev evaluation run where the run's fine-tunes train (sft.device: auto
    takes the GPU when there is one)."""
    from codeling.training.dist import resolve_device

    return resolve_device(cfg.sft.device)


def model_sampler(ckpt: Path, st, stop: Sequence[str],
                  device: str | torch.device = "cpu") -> Sampler:
    from codeling.generate import generate_samples, load_for_inference

    model, tok = load_for_inference(ckpt, device)

    def sample(tasks: list[Task], k: int, seed: int) -> list[list[str]]:
        rows = generate_samples(model, tok, tasks, n=k, stop=stop, temperature=st.temperature,
                                top_p=st.top_p, max_new_tokens=st.max_new_tokens, seed=seed,
                                batch_size=st.batch_size)
        return [[r["completion"] for r in rows[i * k:(i + 1) * k]] for i in range(len(tasks))]
    return sample


def endpoint_sampler(endpoint: str, model: str, st, stop: Sequence[str],
                     api_key: str | None = None) -> Sampler:
    """Completions from an OpenAI-compatible /v1/completions endpoint (`codeling serve`)."""
    import openai

    client = openai.OpenAI(base_url=endpoint, api_key=api_key or "none", timeout=600)

    def sample(tasks: list[Task], k: int, seed: int) -> list[list[str]]:
        out = []
        for i, t in enumerate(tasks):
            r = client.completions.create(model=model, prompt=t.prompt, n=k, seed=seed + i,
                                          max_tokens=st.max_new_tokens, top_p=st.top_p,
                                          temperature=st.temperature, stop=list(stop)[:4])
            texts = [c.text for c in sorted(r.choices, key=lambda c: c.index)]
            out.append([_cut(x, stop) for x in texts])  # the API takes at most 4 stops
        return out
    return sample


def _cut(text: str, stop: Sequence[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return text[:cut] if cut >= 0 else text


# ---- one round ----

def build_pool(tasks_dir: Path, st, round_no: int) -> list[Task]:
    """Training prompts plus fresh generator tasks; dev, val and their families left out."""
    from codeling.tasks.synthetic import generate_tasks

    train = read_tasks(tasks_dir / "train.jsonl")
    held = [p for p in (tasks_dir / "dev.jsonl", tasks_dir / "val.jsonl") if p.exists()]
    held_tasks = [t for p in held for t in read_tasks(p)]
    held_ids = {t.task_id for t in held_tasks}
    dev_families = sorted({t.extra["family"] for p in held[:1] if p.name == "dev.jsonl"
                           for t in read_tasks(p) if t.extra.get("family")})
    pool = [t for t in train if t.task_id not in held_ids]
    if st.fresh_tasks:
        fresh = generate_tasks(st.fresh_tasks, seed=10_000 + 97 * st.seed + round_no,
                               exclude_families=dev_families)
        known = {t.task_id for t in pool} | held_ids
        pool += [t for t in fresh if t.task_id not in known]
    random.Random(st.seed * 1_000_003 + round_no).shuffle(pool)
    return pool[:st.max_prompts] if st.max_prompts else pool


def sample_and_verify(rdir: Path, pool: list[Task], sampler: Sampler, st, round_no: int,
                      seen: set[str], teacher: str) -> None:
    """Chunks of the pool: sample, run the tests, dedupe; append to verified/rejected."""
    from codeling.evaluate.sandbox import Limits, Sandbox

    done = {r["chunk"] for r in _rows(rdir / "progress.jsonl")}
    recorded = {(r["task_id"], r["sample_idx"]) for name in ("verified", "rejected")
                for r in _rows(rdir / f"{name}.jsonl")}
    per_task = Counter(r["task_id"] for r in _rows(rdir / "verified.jsonl"))
    chunks = [pool[i:i + st.chunk] for i in range(0, len(pool), st.chunk)]
    with Sandbox(Limits(timeout=st.timeout), workers=st.workers) as sb, \
            JsonlAppender(rdir / "verified.jsonl") as good, \
            JsonlAppender(rdir / "rejected.jsonl") as bad, \
            JsonlAppender(rdir / "progress.jsonl") as progress:
        for c, chunk in enumerate(chunks):
            if c in done:
                continue
            texts = sampler(chunk, st.k, st.seed * 1_000_003 + round_no * 10_007 + c)
            jobs = [(t, j, x) for t, xs in zip(chunk, texts) for j, x in enumerate(xs)]
            programs = [t.program(x) for t, _, x in jobs]
            results = sb.rejudge_errors(programs, sb.run_all(programs))
            for (t, j, x), res in zip(jobs, results):
                if (t.task_id, j) in recorded:
                    continue  # written before a kill
                key = solution_key(t, x)
                reason = _reject_reason(t, x, res, key, seen, per_task[t.task_id], st)
                base = {"task_id": t.task_id, "sample_idx": j, "key": key,
                        "category": t.category, "style": t.extra.get("style", "")}
                if reason:
                    bad.write({**base, "reason": reason, "completion": x[:2000]})
                    continue
                seen.add(key)
                per_task[t.task_id] += 1
                good.write({**t.to_dict(), **base, "canonical_solution": x,
                            "round": round_no, "teacher": teacher})
            progress.write({"chunk": c, "prompts": len(chunk)})


def _reject_reason(task: Task, completion: str, res, key: str, seen: set[str],
                   kept: int, st) -> str:
    if res.is_error:
        return f"error: {res.reason}"  # infrastructure: reported apart from failures
    if not res.passed:
        return res.result.split("\n")[0][:200]
    if normalised(task.prompt + completion) == normalised(task.prompt + task.canonical_solution):
        return "duplicate: same as the reference solution"
    if key in seen:
        return "duplicate: same normalised text as an accepted solution"
    if kept >= st.max_per_task:
        return f"cap: {st.max_per_task} solutions of this task already kept"
    return ""


def decontaminate(rdir: Path, st) -> tuple[list[dict], str]:
    """verified.jsonl minus contaminated rows -> accepted.jsonl (atomic); rejections appended."""
    from codeling.tasks.decontam import EVAL_SETS, Decontaminator, load_eval_sets

    verified = _rows(rdir / "verified.jsonl")
    names = st.eval_sets or list(EVAL_SETS)
    eval_sets = load_eval_sets(names)
    tasks = [Task.from_dict({**r, "task_id": r["key"]}) for r in verified]
    deco = Decontaminator(eval_sets)
    hits = {t.task_id: f"contaminated: {h.check} overlap with {h.eval_set} {h.eval_task_id}"
            for t in tasks if (h := deco.check(t)) is not None}
    try:
        from codeling.tasks.twins import find_twins, load_twin_eval_sets

        method = "Decontaminator + tasks.twins.find_twins"
        clean = [t for t in tasks if t.task_id not in hits]
        if clean:
            twins = find_twins(clean, load_twin_eval_sets(names), workers=st.workers)
            hits.update({k: f"contaminated: behavioural twin of {s} {e}"
                         for k, (s, e) in twins.items()})
    except ImportError:
        method = "Decontaminator only (codeling.tasks.twins not available)"
    recorded = {(r["task_id"], r["sample_idx"]) for r in _rows(rdir / "rejected.jsonl")}
    with JsonlAppender(rdir / "rejected.jsonl") as bad:
        for r in verified:
            if r["key"] in hits and (r["task_id"], r["sample_idx"]) not in recorded:
                bad.write({k: r[k] for k in ("task_id", "sample_idx", "key", "category",
                                             "style")} | {"reason": hits[r["key"]]})
    accepted = [r for r in verified if r["key"] not in hits]
    write_jsonl(rdir / "accepted.jsonl", accepted)
    return accepted, method


def training_set(rdir: Path, tasks_dir: Path, accepted: list[dict], st) -> Path:
    """round_N/tasks: accepted solutions + mix_ratio x as many originals, val and dev copied."""
    out = rdir / "tasks"
    originals = read_tasks(tasks_dir / "train.jsonl")
    n_mix = min(len(originals), round(st.mix_ratio * len(accepted)))
    mixed = random.Random(st.seed).sample(originals, n_mix)
    drop = ("key", "sample_idx", "round", "teacher")
    kept = [Task.from_dict({**{k: v for k, v in r.items() if k not in drop},
                            "task_id": f"self/{r['key']}"}) for r in accepted]
    write_tasks(out / "train.jsonl", kept + mixed)
    for name in ("val.jsonl", "dev.jsonl"):
        if (tasks_dir / name).exists():
            shutil.copyfile(tasks_dir / name, out / name)
    return out


def finetune(rdir: Path, init: Path, tasks: Path, cfg) -> Path:
    """One sft run through sft's own command line (its stage driver, the one training loop),
    configured by the selftrain run's resolved config.toml (one file, whatever was resumed)."""
    from codeling import sft

    run = rdir / "sft"
    extra = ["sft.merge=true"] if cfg.sft.mode == "lora" else []
    argv = [*extra, "--preset", str(rdir.parent / "config.toml"), "--init", str(init),
            "--tasks", str(tasks), "--run-dir", str(run), "--no-progress"]
    if not (run / "checkpoints" / "final").exists():
        if (run / "config.toml").exists():
            argv.append("--resume")
        p = argparse.ArgumentParser(prog="codeling sft")
        sft.add_arguments(p)
        rc = sft.main(p.parse_args(argv))
        if rc:
            raise RuntimeError(f"sft of {rdir.name} failed (exit {rc})")
    if cfg.sft.mode == "lora":
        return run / "merged"
    best = run / "checkpoints" / "best"
    return best if best.exists() else run / "checkpoints" / "final"


def dev_result(ckpt: Path, tasks_dir: Path, cfg, out: Path) -> dict | None:
    """The dev set's pass result for a checkpoint (evaluate.live.dev_evaluator), or None."""
    from codeling.evaluate.live import dev_evaluator
    from codeling.generate import load_for_inference

    model, tok = load_for_inference(ckpt, run_device(cfg))
    ev = dev_evaluator(tok, cfg.sft, out, tasks_dir)
    if ev is None:
        return None
    r = ev(model, 0)
    return {k: r.get(k) for k in ("score", "pass@1", "n_tasks", "syntax_valid", "per_category",
                                  "per_style", "selected_on") if k in r}


def rates(rdir: Path, field: str) -> dict:
    acc = Counter(r.get(field, "") or "-" for r in _rows(rdir / "accepted.jsonl"))
    rej = Counter(r.get(field, "") or "-" for r in _rows(rdir / "rejected.jsonl"))
    return {k: {"accepted": acc[k], "samples": acc[k] + rej[k],
                "rate": round(acc[k] / max(acc[k] + rej[k], 1), 4)}
            for k in sorted(set(acc) | set(rej))}


def run_round(run_dir: Path, n: int, init: Path, tasks_dir: Path, sampler: Sampler, cfg,
              seen: set[str], teacher: str) -> Path:
    st, start = cfg.selftrain, time.time()
    rdir = run_dir / f"round_{n}"
    rdir.mkdir(parents=True, exist_ok=True)
    if not (rdir / "pool.jsonl").exists():
        write_tasks(rdir / "pool.jsonl", build_pool(tasks_dir, st, n))
    pool = read_tasks(rdir / "pool.jsonl")
    sample_and_verify(rdir, pool, sampler, st, n, seen, teacher)
    accepted, method = decontaminate(rdir, st)
    out = init
    if accepted:
        out = finetune(rdir, init, training_set(rdir, tasks_dir, accepted, st), cfg)
    rejected = _rows(rdir / "rejected.jsonl")
    samples = len(accepted) + len(rejected)
    report = {"round": n, "init": str(init), "checkpoint": str(out), "teacher": teacher,
              "prompts": len(pool), "samples": samples, "accepted": len(accepted),
              "acceptance_rate": round(len(accepted) / max(samples, 1), 4),
              "trained": bool(accepted), "decontamination": method,
              "rejected_by_reason": dict(Counter(r["reason"].split(" (")[0][:70]
                                                 for r in rejected).most_common(20)),
              "by_category": rates(rdir, "category"), "by_style": rates(rdir, "style"),
              "dev": dev_result(out, tasks_dir, cfg, rdir), "seconds": round(time.time() - start)}
    atomic_write_json(rdir / "report.json", report)
    return out


# what the rounds done so far were made with: changing it in a rerun would mix two runs
FIXED = ("selftrain.seed", "selftrain.chunk", "selftrain.k")


def selftrain(args) -> dict:
    from codeling.stage import open_stage

    args.resume = True  # a run dir with config.toml is always continued
    stage = open_stage(args, "selftrain", {"init": True, "tasks": True}, fixed=FIXED)
    stage.need("init", "tasks")
    cfg, run_dir, tasks_dir = stage.cfg, stage.run_dir, stage.path("tasks")
    st = cfg.selftrain
    if st.k < 1 or st.rounds < 1 or st.chunk < 1:
        raise ConfigError("selftrain.k, selftrain.rounds and selftrain.chunk must be >= 1")
    for key, path in (("--init", stage.path("init")), ("--tasks", tasks_dir)):
        if not path.exists():
            raise FileNotFoundError(f"{key} {path} does not exist")
    from codeling.generate import DEFAULT_STOP

    stop = st.stop or list(DEFAULT_STOP)
    save_config(cfg, run_dir / "config.toml")  # also each round's sft config (finetune)
    stage.record()
    curve_path = run_dir / "curve.json"
    curve = json.loads(curve_path.read_text()) if curve_path.exists() else []
    init = stage.path("init")
    if not curve:
        curve = [{"round": 0, "checkpoint": str(init), "dev": dev_result(init, tasks_dir, cfg,
                                                                          run_dir / "round_0")}]
        atomic_write_json(curve_path, curve)
    seen: set[str] = set()
    teacher = f"endpoint:{args.model}" if args.endpoint else "self"
    for n in range(1, st.rounds + 1):
        rdir = run_dir / f"round_{n}"
        if (rdir / "report.json").exists():  # done before a restart
            report = json.loads((rdir / "report.json").read_text())
            init = Path(report["checkpoint"])
            seen |= {r["key"] for r in _rows(rdir / "verified.jsonl")}
            continue
        seen |= {r["key"] for r in _rows(rdir / "verified.jsonl")}
        sampler = (endpoint_sampler(args.endpoint, args.model, st, stop, _key(args))
                   if args.endpoint else model_sampler(init, st, stop, run_device(cfg)))
        init = run_round(run_dir, n, init, tasks_dir, sampler, cfg, seen, teacher)
        report = json.loads((rdir / "report.json").read_text())
        curve.append({k: report[k] for k in ("round", "checkpoint", "accepted",
                                             "acceptance_rate", "dev", "seconds")})
        atomic_write_json(curve_path, curve)
        print(f"round {n}: accepted {report['accepted']}/{report['samples']} "
              f"({report['acceptance_rate']:.1%}), dev {report['dev'] and report['dev'].get('score')}"
              f", {report['seconds']} s", file=sys.stderr)
    return {"rounds": curve, "final": str(init)}


def _key(args) -> str | None:
    import os

    return os.environ.get(args.api_key_env) if args.api_key_env else None


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--init", help="the checkpoint to improve (round 1's sampler); a rerun "
                                  "defaults to the run's")
    p.add_argument("--tasks", help="a `codeling tasks` folder (train, val, dev); a rerun "
                                   "defaults to the run's")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--endpoint", default=None, help="OpenAI-compatible base URL (…/v1): sample "
                                                    "from this teacher instead of the checkpoint")
    p.add_argument("--model", default="codeling", help="the model name the endpoint serves")
    p.add_argument("--api-key-env", default=None, help="env var holding the endpoint's API key")


def run_selftrain(args: argparse.Namespace) -> int:
    result = selftrain(args)
    print(json.dumps({"final": result["final"],
                      "dev": [r["dev"] and r["dev"].get("score") for r in result["rounds"]]}))
    return 0


def main(args: argparse.Namespace) -> int:
    from codeling.stage import run_main

    return run_main("selftrain", run_selftrain, args)
