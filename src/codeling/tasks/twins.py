"""Behavioural decontamination: a training task whose solution passes an evaluation task's tests
is a twin of it, whatever its name and wording.

    twins = find_twins(tasks, load_twin_eval_sets())   # {task_id: (eval_set, eval_task_id)}

The check, for every training task and every evaluation task whose entry point takes the same
number of required positional arguments: the training task's whole function source (prompt +
canonical solution) is defined in its own namespace, bound under the evaluation's entry-point
name (MBPP's asserts call the function by name) and passed to the evaluation's `check`. A pass
makes it a twin. It runs in the sandbox, batched for speed:
- one sandboxed program per chunk of candidates of one arity, against every evaluation task of
  that arity; each candidate is compiled once, each call runs under a per-call alarm that
  re-fires if swallowed (and, if still swallowed, ends the program naming the culprit);
- candidates that are the same function up to names (arguments, locals, the function's own
  name, docstrings) are run once;
- evalplus checks (HumanEval+, MBPP+) re-run the reference on every call, so they are first
  screened on their first input with evalplus's own comparison (`_cl_same`), which is what the
  full check does first anyway: no twin is lost, only time;
- the program streams each candidate's hits and a `.` when it is done to stdout (capped at
  2048 characters in the sandbox reply): a chunk that crashes, times out or overflows is rerun
  after the candidate that broke it (one that crashed is retried alone on halves of the
  evaluation tasks, to find any twin it still has); its address space is capped at what the
  evaluation tasks took plus 1 GiB, so huge allocations fail fast.
Each evaluation task is first calibrated with its own canonical solution through the same
harness; a task the harness cannot judge is reported (`unjudgeable`), never silently skipped.
A sandbox "error" (infrastructure, docs/formats.md "Results JSONL") is retried, and never counts as a twin.
"""

from __future__ import annotations

import ast
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codeling.tasks.schema import Task

TWIN_SETS = ("mini", "humaneval", "humaneval+", "mbpp", "mbpp+")
CHUNK = 500  # candidates per sandboxed program (each also sets up every evaluation task)
# per-call CPU budget: 20x the evaluation task's own check time within these bounds (seconds);
# a candidate that was slow on 3 tasks (over 3x their time) then gets 3x, at least SHORT_MIN
ALARM_MIN, ALARM_MAX, SHORT_MIN = 0.005, 2.0, 0.0005
_RETRIES = 2  # for sandbox "error" results

_HARNESS = (Path(__file__).with_name("twin_harness.py")).read_text()


def required_positional(source: str, entry: str) -> int | None:
    """Required positional parameters of the top-level `def entry`; None when it cannot be
    called with positional arguments alone (required keyword-only args, no such def)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            a = node.args
            if any(d is None for d in a.kw_defaults):
                return None
            return len(a.posonlyargs) + len(a.args) - len(a.defaults)
    return None


def shape_key(source: str, entry: str) -> str:
    """The function's code up to names: candidates with equal keys behave alike."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    stored: dict[str, str] = {entry: "_f"}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.arg not in stored:
            stored[node.arg] = f"_v{len(stored)}"
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) \
                and node.id not in stored:
            stored[node.id] = f"_v{len(stored)}"
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.name = stored.get(node.name, node.name)
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        elif isinstance(node, ast.arg):
            node.arg = stored.get(node.arg, node.arg)
        elif isinstance(node, ast.Name):
            node.id = stored.get(node.id, node.id)
    return ast.dump(tree, annotate_fields=False)


@dataclass
class TwinReport:
    """Every (training task, evaluation task) pair that passed, and what could not be judged."""
    pairs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    unjudgeable: dict[str, list[str]] = field(default_factory=dict)  # eval set -> task ids
    broken: set[str] = field(default_factory=set)  # training tasks that broke the harness
    errors: int = 0  # sandbox infrastructure errors seen (retried)
    unresolved: int = 0  # candidates left unjudged by repeated infrastructure errors
    programs: int = 0
    candidates: int = 0  # distinct functions run

    def first(self, order: Sequence[str]) -> dict[str, tuple[str, str]]:
        rank = {s: i for i, s in enumerate(order)}
        return {tid: min(ps, key=lambda p: rank.get(p[0], len(rank)))
                for tid, ps in self.pairs.items()}


@dataclass
class _Job:
    arity: int
    cands: list[int]  # indices into the distinct-candidate list
    evals: list[int]  # indices into the eval list
    control: bool = False
    tries: int = 0


def _program(job: _Job, cands: list[tuple[str, str]], evals: list[tuple[str, str]],
             alarms: dict[int, tuple[float, float]], tag: str) -> str:
    config = ([(*evals[i], *alarms.get(i, (10.0, 10.0))) for i in job.evals],
              [cands[i] for i in job.cands], tag, job.control)
    return f"_TW_CONFIG = {config!r}\n" + _HARNESS


def _alarms(bucket: str) -> tuple[float, float]:
    """Per-call alarms for an evaluation task from its canonical check time: the full one, and
    the short one for candidates that already timed out three times."""
    t = 2.0 ** (ord(bucket) - ord("a")) * 1e-6  # upper end of the calibrated bucket
    return min(ALARM_MAX, max(ALARM_MIN, 20 * t)), min(ALARM_MAX, max(SHORT_MIN, 3 * t))


def _parse(output: str, tag: str) -> tuple[bool, int, list[tuple[int, int]], int | None,
                                           str | None]:
    """(complete, candidates done, hits, culprit, control bits) from a harness reply."""
    complete, done, hits, culprit, control = False, 0, [], None, None
    toks = output.split()
    if len(output) >= 2000 and toks:
        toks.pop()  # the reply was cut off: its last token may be partial
    for tok in toks:
        kind, rest = tok[0], tok[1:]
        try:
            if kind == ".":
                done += 1
            elif kind == "H":
                c, es = rest.split(":")
                hits += [(int(c, 16), int(e, 16)) for e in es.split(",")]
            elif kind == "B":
                culprit = int(rest)
            elif kind == "C":
                control = rest
            elif kind == "E" and rest == tag:
                complete = True
        except ValueError:
            continue  # a truncated last token
    return complete, done, hits, culprit, control


class TwinChecker:
    """The evaluation tasks, calibrated once (their own solutions through the harness, which
    also sets each task's per-call budget); then `pairs(tasks)` as often as needed."""

    def __init__(self, eval_sets: dict[str, list[Task]], workers: int = 0,
                 timeout: float = 600.0):
        self.workers, self.timeout = workers, timeout
        self.evals = [(name, t) for name, ts in eval_sets.items() for t in ts]
        self.order = list(eval_sets)
        self.src = [(t.prompt + t.canonical_solution + "\n" + t.test + "\n", t.entry_point)
                    for _, t in self.evals]
        self.arity = [required_positional(t.prompt + t.canonical_solution, t.entry_point)
                      for _, t in self.evals]
        self.alarms: dict[int, tuple[float, float]] | None = None
        self.bad: set[int] = set()

    def _sandbox(self):
        from codeling.evaluate.sandbox import Limits, Sandbox

        return Sandbox(Limits(timeout=self.timeout, memory_mb=4096), workers=self.workers)

    def calibrate(self, sb, report: TwinReport) -> None:
        if self.alarms is not None:
            return
        alarms: dict[int, tuple[float, float]] = {}
        every = list(range(len(self.evals)))  # the reply holds one character per task
        control = [_Job(-1, [], every[k:k + 500], True) for k in range(0, len(every), 500)]
        for job, res, _, _ in _run_jobs(sb, control, [], self.src, alarms, report,
                                        self.timeout):
            bits = res[4] or ""
            for n, e in enumerate(job.evals):
                if n < len(bits) and bits[n] != "0":
                    alarms[e] = _alarms(bits[n])
                else:
                    self.bad.add(e)
        self.alarms = alarms

    def pairs(self, tasks: Sequence[Task], progress: bool = False) -> TwinReport:
        """Run every task against every evaluation task of matching arity."""
        report = TwinReport()
        # distinct candidates, grouped by arity
        key_of: dict[str, int] = {}
        cands: list[tuple[str, str]] = []
        members: list[list[int]] = []
        by_arity: dict[int, list[int]] = {}
        for i, t in enumerate(tasks):
            src = t.prompt + t.canonical_solution
            arity = required_positional(src, t.entry_point)
            if arity is None:
                continue
            key = f"{arity}\0{shape_key(src, t.entry_point)}"
            if key not in key_of:
                key_of[key] = len(cands)
                cands.append((src, t.entry_point))
                members.append([])
                by_arity.setdefault(arity, []).append(key_of[key])
            members[key_of[key]].append(i)
        report.candidates = len(cands)
        t0 = time.time()
        with self._sandbox() as sb:
            self.calibrate(sb, report)
            alarms = self.alarms or {}
            jobs = []
            for a, idx in sorted(by_arity.items()):
                good = [e for e, ea in enumerate(self.arity) if ea == a and e not in self.bad]
                if good:
                    jobs += [_Job(a, idx[k:k + CHUNK], good) for k in range(0, len(idx), CHUNK)]
            while jobs:
                nxt: list[_Job] = []
                for job, (complete, done, hits, culprit, _), out_len, status in \
                        _run_jobs(sb, jobs, cands, self.src, alarms, report, self.timeout):
                    for c, e in hits:
                        name, et = self.evals[job.evals[e]]
                        for i in members[job.cands[c]]:
                            got = report.pairs.setdefault(tasks[i].task_id, [])
                            if (name, et.task_id) not in got:
                                got.append((name, et.task_id))
                    if not complete:
                        nxt += _resume(job, done, culprit, out_len, status == "timed out",
                                       report, tasks, members)
                jobs = nxt
                if progress:
                    print(f"twins: {time.time() - t0:.1f}s, {report.programs} programs, "
                          f"{len(jobs)} to rerun", file=sys.stderr)
        for e in sorted(self.bad):
            report.unjudgeable.setdefault(self.evals[e][0], []).append(self.evals[e][1].task_id)
        return report

    def reasons(self, tasks: Sequence[Task]) -> list[str | None]:
        """Per task: "behavioural twin of <eval task_id>" or None (for acceptance loops)."""
        first = self.pairs(tasks).first(self.order)
        return [f"behavioural twin of {first[t.task_id][1]}" if t.task_id in first else None
                for t in tasks]


def find_twin_pairs(tasks: Sequence[Task], eval_sets: dict[str, list[Task]], workers: int = 0,
                    timeout: float = 600.0, progress: bool = False) -> TwinReport:
    """Every (task, evaluation task) pair where the task's solution passes the eval's tests."""
    return TwinChecker(eval_sets, workers, timeout).pairs(tasks, progress)


def _run_jobs(sb, jobs: list[_Job], cands: list[tuple[str, str]],
              eval_src: list[tuple[str, str]], alarms: dict[int, tuple[float, float]],
              report: TwinReport, cap: float):
    """Run jobs in parallel; yield (job, parsed reply, output length, status). An "error" is
    retried; one still in error is counted in `report.unresolved`, never judged."""
    while jobs:
        tags = [secrets.token_hex(4) for _ in jobs]
        progs = [_program(j, cands, eval_src, alarms, tag) for j, tag in zip(jobs, tags)]
        # generous: a healthy chunk takes a few seconds; only a wedged one meets this
        times = [min(cap, 30.0 + 5e-5 * max(1, len(j.cands)) * len(j.evals)) for j in jobs]
        report.programs += len(progs)
        again = []
        for k, res in sb.imap(progs, times):
            job = jobs[k]
            if res.status == "error" or "sandbox worker crashed" in res.reason:
                report.errors += 1  # infrastructure, not the candidate
                if job.tries < _RETRIES:
                    job.tries += 1
                    again.append(job)
                else:
                    report.unresolved += len(job.cands)
                continue
            yield job, _parse(res.output, tags[k]), len(res.output), res.status
        jobs = again


def _resume(job: _Job, done: int, culprit: int | None, out_len: int, timed_out: bool,
            report: TwinReport, tasks: Sequence[Task], members: list[list[int]]) -> list[_Job]:
    """What to rerun after an incomplete program (hits before the cut were already kept)."""
    if out_len >= 2000 and culprit is None:  # the reply was cut off: go on from there
        if done > 0:
            return [_Job(job.arity, job.cands[done:], job.evals)]
        half = len(job.evals) // 2  # one candidate with more hits than the reply holds
        return [_Job(job.arity, job.cands[:1], job.evals[:half]),
                _Job(job.arity, job.cands[:1], job.evals[half:]),
                *([_Job(job.arity, job.cands[1:], job.evals)] if len(job.cands) > 1 else [])]
    bad = culprit if culprit is not None else done
    if bad >= len(job.cands):
        return []
    out = [_Job(job.arity, job.cands[bad + 1:], job.evals)] if bad + 1 < len(job.cands) else []
    if culprit is None and not timed_out and len(job.evals) > 1:
        half = len(job.evals) // 2  # it crashed on some evaluation task: twins on the others?
        out += [_Job(job.arity, [job.cands[bad]], job.evals[:half]),
                _Job(job.arity, [job.cands[bad]], job.evals[half:])]
    else:  # swallowed its alarm, ran past the program's time in C code, or crashed on one
        report.broken |= {tasks[i].task_id for i in members[job.cands[bad]]}
    return out


def find_twins(tasks: Sequence[Task], eval_sets: dict[str, list[Task]], workers: int = 0,
               timeout: float = 600.0) -> dict[str, tuple[str, str]]:
    """{training task_id: (eval_set, eval_task_id)} for every behavioural twin (report.json `twins`,
    docs/formats.md);
    a task twinned with several evaluation tasks names the first eval set in `eval_sets`."""
    return find_twin_pairs(tasks, eval_sets, workers, timeout).first(list(eval_sets))


def load_twin_eval_sets(names: Sequence[str] = TWIN_SETS, data_dir: str | None = None
                        ) -> dict[str, list[Task]]:
    """The evaluation sets as the twin check runs them: evalplus sets with their base inputs
    only (the plus inputs add hours, not twins)."""
    from codeling.tasks.benchmarks import _plus_records, load_benchmark, locate
    from codeling.tasks.plus import plus_to_task

    out = {}
    for name in names:
        if name in ("humaneval+", "mbpp+"):
            recs = _plus_records(locate(name, data_dir))
            out[name] = [plus_to_task({**r, "plus_input": []}, source=name) for _, r in recs]
        else:
            out[name] = load_benchmark(name, data_dir=data_dir)
    return out


def check_twins(tasks: list[Task], names: Sequence[str], data_dir: str | None, workers: int,
                progress: bool) -> tuple[dict[str, list[tuple[str, str]]], dict]:
    """Every task's behavioural twins among the evaluation tasks, and how the check went."""
    start = time.time()
    rep = find_twin_pairs(tasks, load_twin_eval_sets(names, data_dir), workers=workers,
                          progress=progress)
    info = {"enabled": True, "seconds": round(time.time() - start, 1),
            "distinct_functions": rep.candidates, "programs": rep.programs,
            "unjudgeable": rep.unjudgeable, "broke_harness": sorted(rep.broken),
            "sandbox_errors": rep.errors, "unresolved": rep.unresolved}
    return rep.pairs, info


def twin_summary(twins: dict[str, list[tuple[str, str]]], names: Sequence[str], kept: bool,
                 n_examples: int = 10) -> dict:
    """Per eval set: how many of its tasks had a twin here, how many tasks were dropped."""
    out = {}
    for name in names:
        pairs = sorted((tid, e) for tid, ps in twins.items() for s, e in ps if s == name)
        evals = sorted({e for _, e in pairs})
        train = sorted({tid for tid, _ in pairs})
        out[name] = {"eval_tasks_with_twin": len(evals), "train_tasks_with_twin": len(train),
                     "train_tasks_dropped": 0 if kept else len(train),
                     "train_tasks_kept": len(train) if kept else 0,
                     "examples": {"eval_tasks": evals[:n_examples],
                                  "pairs": [{"task_id": t, "eval_task_id": e}
                                            for t, e in pairs[:n_examples]]}}
    return out
