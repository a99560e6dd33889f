"""The function-level, ranked, decontaminated corpus: files, function units and exercises mixed.

    train, val, anneal, stats = assemble(kept_files, total_bytes, seed, val_fraction, opts, index)

Given the files the harvest kept (corpus.py: filters, dedup, 13-gram decontamination):
1. every file is parsed; its functions and methods become units (corpus_units.py), each with a
   drop reason or none; units are deduplicated (normalised hash) and 13-gram checked like files;
2. files and units are scored (corpus_quality.py) and `quality`, the top share of each by
   score, stays in the running;
3. `exercises` > 0: validated synthetic tasks rendered as code (corpus_exercises.py);
4. the behavioural twin check (tasks/twins.py, batched in the sandbox) runs on every remaining
   unit and exercise: a twin of an evaluation task is dropped, and so is every file holding a
   twin unit;
5. the mixture: of a total of `total_bytes` (the harvest's size), a share `units` is function
   units and `exercises` exercises, each filled in rank order (exercises in generation order),
   the rest the best-ranked files; a kind short of material leaves its share unfilled, and
   stats.json says so (`mixture.shares`);
6. train/val by the content hash (a unit goes where its file goes), in a seeded order; the
   anneal set is the highest-scored train documents up to `anneal_mb`.
Every row is {"path", "text", "kind", "score"}; kind is file, unit or exercise.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

from codeling.config import ConfigError
from codeling.corpus_exercises import HeldOut, exercise_tasks, recipe, render_exercise
from codeling.corpus_quality import examples, file_signals, score, top_share, unit_signals
from codeling.corpus_units import (
    UNIT_DROP_REASONS,
    exact_key,
    extract_units,
    file_facts,
    parse,
    split_is_val,
)
from codeling.tasks.schema import Task

MB = 1_000_000
# a rendered exercise's typical size, and how many more to generate than a share needs: the
# twin check drops about 40% of them (as of the task build's)
EXERCISE_BYTES, EXERCISE_SPARE = 700, 2.0
FILE_DROP_REASONS = ("below_quality", "contains_twin", "over_share")


@dataclass
class MixOptions:
    units: float = 0.0  # share of the corpus's bytes that are function units
    exercises: float = 0.0  # share that are exercises
    quality: float = 1.0  # top share of files and of units kept by score
    anneal_mb: float = 0.0  # size of anneal.jsonl (the best-ranked train documents)
    unit_max_lines: int = 80
    unit_min_resolved: float = 1.0
    twin_check: bool = True
    held_out: HeldOut = field(default_factory=HeldOut)  # dev's families and recipes
    levels: tuple[int, ...] = (1, 2, 3)
    workers: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.units or self.exercises or self.quality < 1.0 or self.anneal_mb)

    def check(self) -> None:
        for key in ("units", "exercises", "quality"):
            v = getattr(self, key)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"corpus.{key} must be in [0, 1], got {v}")
        if self.units + self.exercises > 1.0:
            raise ConfigError(f"corpus.units + corpus.exercises must be at most 1, got "
                             f"{self.units} + {self.exercises}")
        if self.quality <= 0:
            raise ConfigError("corpus.quality must be above 0")


def _doc(kind: str, path: str, text: str, key: str, signals: dict, val: bool) -> dict:
    return {"kind": kind, "path": path, "text": text, "key": key, "signals": signals,
            "score": score(signals), "val": val, "bytes": len(text.encode("utf-8"))}


def _harvest_units(kept, seed: int, val_fraction: float, opts: MixOptions, index
                   ) -> tuple[list[dict], list[dict], list, Counter, Counter, dict]:
    """(file docs, unit docs, all units, unit drop counts, ngram hits per set, unit's file)."""
    files, units_kept, every = [], [], []
    dropped: Counter = Counter()
    ngram: Counter = Counter()
    seen: set[str] = set()
    file_of: dict[str, str] = {}
    for cand, text, key in kept:
        tree = parse(text)
        units = extract_units(text, cand.path, opts.unit_max_lines, opts.unit_min_resolved,
                              tree)
        val = split_is_val(key, seed, val_fraction)
        files.append(_doc("file", cand.path, text, key,
                          file_signals(cand.path, file_facts(text, tree, units)), val))
        for u in units:
            every.append(u)
            if u.reason is None:
                ukey = exact_key(u.text)
                if ukey in seen:
                    u.reason = "exact_duplicate"
                seen.add(ukey)
            if u.reason is None and index is not None and (hit := index.match(u.text)):
                u.reason = "eval_ngram"
                ngram[hit.split(":")[0]] += 1
            if u.reason is not None:
                dropped[u.reason] += 1
                continue
            u.signals = unit_signals(u)
            doc = _doc("unit", f"{cand.path}::{u.qualname}", u.text, ukey, u.signals, val)
            doc["entry"] = u.name
            units_kept.append(doc)
            file_of[doc["path"]] = cand.path
    return files, units_kept, every, dropped, ngram, file_of


def _twins(docs: list[dict], progress: bool, workers: int) -> tuple[dict, dict]:
    """{doc path: [(eval set, eval task id)]} for units and exercises, and the check's info."""
    from codeling.tasks.twins import TWIN_SETS, TwinChecker, load_twin_eval_sets

    start = time.time()
    tasks = [Task(task_id=d["path"], prompt=d["text"], entry_point=d["entry"],
                  canonical_solution="", test="") for d in docs]
    with warnings.catch_warnings():  # MBPP's references have invalid escapes, not our concern
        warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
        checker = TwinChecker(load_twin_eval_sets(TWIN_SETS), workers=workers)
    rep = checker.pairs(tasks, progress=progress)
    info = {"enabled": True, "eval_sets": list(TWIN_SETS), "checked": len(tasks),
            "distinct_functions": rep.candidates, "programs": rep.programs,
            "seconds": round(time.time() - start, 1), "unjudgeable": rep.unjudgeable,
            "broke_harness": sorted(rep.broken)[:20], "sandbox_errors": rep.errors,
            "unresolved": rep.unresolved}
    return rep.pairs, info


def _fill(docs: list[dict], budget: float) -> tuple[list[dict], list[dict]]:
    """Take documents in order while under `budget` bytes."""
    taken, rest, total = [], [], 0
    for d in docs:
        if total < budget:
            taken.append(d)
            total += d["bytes"]
        else:
            rest.append(d)
    return taken, rest


def _ranked(docs: list[dict]) -> list[dict]:
    return sorted(docs, key=lambda d: (-d["score"], d["path"]))


def _exercises(opts: MixOptions, n_bytes: float, seed: int, val_fraction: float, index,
               progress: bool) -> tuple[list[dict], dict, Counter]:
    n = math.ceil(n_bytes / EXERCISE_BYTES * EXERCISE_SPARE) if n_bytes > 0 else 0
    tasks, info = exercise_tasks(n, seed, opts.held_out, opts.levels, workers=opts.workers,
                                 progress=progress)
    docs, ngram = [], Counter()
    for t in tasks:
        text = render_exercise(t)
        if index is not None and (hit := index.match(text)):
            ngram[hit.split(":")[0]] += 1
            continue
        main = [u for u in extract_units(text, t.task_id, max_lines=10**6, min_resolved=0.0)
                if u.name == t.entry_point]
        signals = unit_signals(main[0]) if main else {"docs": 0.0}
        key = exact_key(text)
        doc = _doc("exercise", t.task_id, text, key, signals, split_is_val(key, seed,
                                                                          val_fraction))
        doc["entry"], doc["recipe"] = t.entry_point, recipe(t)
        docs.append(doc)
    info["dropped_ngram13"] = dict(ngram)
    return docs, info, ngram


def assemble(kept, total_bytes: float, seed: int, val_fraction: float, opts: MixOptions,
             index, progress: bool = False) -> tuple[list[dict], list[dict], list[dict], dict]:
    """(train rows, val rows, anneal rows, stats) for the harvest's kept files."""
    opts.check()
    t0 = time.time()
    files, units, every, udrop, ungram, file_of = _harvest_units(kept, seed, val_fraction,
                                                                 opts, index)
    files_kept, files_low = top_share(files, opts.quality, key=lambda d: d["score"])
    units_in, units_low = top_share(units, opts.quality, key=lambda d: d["score"])
    if not opts.units:
        units_low, units_in = units_low + units_in, []
    t_units = time.time() - t0
    exercises, ex_info, ex_ngram = _exercises(opts, opts.exercises * total_bytes, seed,
                                              val_fraction, index, progress)
    pairs, twin_info = {}, {"enabled": False}
    # every unit that passed its checks, selected or not: a file holding a twin goes too
    checked = units + exercises
    if opts.twin_check and checked:
        pairs, twin_info = _twins(checked, progress, opts.workers)
    twin_files = {file_of[p] for p in pairs if p in file_of}
    fdrop = Counter(below_quality=len(files_low))
    files_kept = [d for d in files_kept if d["path"] not in twin_files]
    fdrop["contains_twin"] = sum(d["path"] in twin_files for d in files)
    units_in = [d for d in units_in if d["path"] not in pairs]
    units_low = [d for d in units_low if d["path"] not in pairs]
    exercises = [d for d in exercises if d["path"] not in pairs]
    udrop["behavioural_twin"] = sum(d["path"] in pairs for d in checked if d["kind"] == "unit")
    udrop["not_selected"] = len(units_low)

    share_files = max(0.0, 1.0 - opts.units - opts.exercises)
    if opts.units or opts.exercises:
        files_sel, files_over = _fill(_ranked(files_kept), share_files * total_bytes)
    else:
        files_sel, files_over = files_kept, []
    fdrop["over_share"] = len(files_over)
    units_sel, units_over = _fill(_ranked(units_in), opts.units * total_bytes)
    udrop["not_selected"] += len(units_over)
    ex_sel, _ = _fill(exercises, opts.exercises * total_bytes)
    chosen = files_sel + units_sel + ex_sel
    # a seeded order: every prefix holds the mixture (the tokenizer trains on a prefix)
    chosen.sort(key=lambda d: hashlib.sha256(f"{seed}:{d['kind']}:{d['key']}:{d['path']}"
                                             .encode()).digest())
    val_files = {d["path"] for d in files if d["val"]}
    for d in units_sel:
        d["val"] = file_of[d["path"]] in val_files
    train = [d for d in chosen if not d["val"]]
    val = [d for d in chosen if d["val"]]
    anneal, _ = _fill(_ranked(train), opts.anneal_mb * MB) if opts.anneal_mb else ([], [])

    def by_kind(docs: list[dict]) -> dict:
        b = Counter()
        for d in docs:
            b[d["kind"]] += d["bytes"]
        return {k: b.get(k, 0) for k in ("file", "unit", "exercise")}

    total = sum(by_kind(chosen).values()) or 1
    per_set: dict[str, dict] = {}
    order = {s: i for i, s in enumerate(twin_info.get("eval_sets", []))}
    for p, ps in pairs.items():
        s = min(ps, key=lambda x: order.get(x[0], len(order)))[0]
        kind = "exercise" if p.startswith("exercise/") else "unit"
        per_set.setdefault(s, Counter())[f"{kind}s_twin"] += 1
    for s, c in ungram.items():
        per_set.setdefault(s, Counter())["units_ngram13"] += c
    for s, c in ex_ngram.items():
        per_set.setdefault(s, Counter())["exercises_ngram13"] += c
    for key, c in ex_info.get("dropped", {}).items():
        if key.startswith("ngram_or_docstring:"):
            per_set.setdefault(key.split(":", 1)[1], Counter())["exercises_ngram_docstring"] += c
    found = Counter(u.reason or "kept" for u in every)
    stats = {
        "units": {"found": len(every), "with_docstring": len(every) - found["no_docstring"],
                  "self_contained": sum(not u.unresolved for u in every),
                  "kept": len(units_sel), "dropped": {r: udrop.get(r, 0)
                                                      for r in UNIT_DROP_REASONS},
                  "bytes": by_kind(units_sel)["unit"], "seconds": round(t_units, 1),
                  "max_lines": opts.unit_max_lines, "min_resolved": opts.unit_min_resolved},
        "files_ranked": {"files": len(files), "kept": len(files_sel),
                         "dropped": {r: fdrop.get(r, 0) for r in FILE_DROP_REASONS}},
        "quality": opts.quality,
        "mixture": {"configured": {"files": round(share_files, 4), "units": opts.units,
                                   "exercises": opts.exercises},
                    "bytes": by_kind(chosen),
                    "shares": {k: round(v / total, 4) for k, v in by_kind(chosen).items()},
                    "docs": dict(Counter(d["kind"] for d in chosen))},
        "exercises": {**ex_info, "rendered": len(exercises) + sum(
            p.startswith("exercise/") for p in pairs), "kept": len(ex_sel),
            "families": len({d["recipe"] for d in ex_sel}),
            "composed_recipes": len({d["recipe"] for d in ex_sel
                                     if d["recipe"].startswith("composed:")})},
        "twins": {**twin_info, "dropped": len(pairs), "files_dropped": fdrop["contains_twin"],
                  "left": sum(d["path"] in pairs for d in chosen),
                  "examples": [{"doc": p, "eval_tasks": sorted(e for _, e in ps)[:5]}
                               for p, ps in sorted(pairs.items())[:20]]},
        "drops_per_eval_set": {s: dict(c) for s, c in sorted(per_set.items())},
        "ranking": {"files": examples(files), "units": examples(units)},
        "anneal": {"mb": opts.anneal_mb, "docs": len(anneal), "bytes": sum(
            d["bytes"] for d in anneal), "by_kind": dict(Counter(d["kind"] for d in anneal)),
            "min_score": min((d["score"] for d in anneal), default=None)},
        "seconds": round(time.time() - t0, 1),
    }
    if progress:
        print(f"corpus: mixed {stats['mixture']['docs']} in {stats['seconds']} s",
              file=sys.stderr)
    row = lambda d: {"path": d["path"], "text": d["text"], "kind": d["kind"],
                     "score": d["score"]}
    return [row(d) for d in train], [row(d) for d in val], [row(d) for d in anneal], stats
