"""evalplus tasks judged as evalplus judges them, but faster and steadier.

    tests = plus_tests(tasks)   # {task_id: PlusTest(test source, wall-clock timeout, ...)}

For each HumanEval+ / MBPP+ task the reference runs once, in the sandbox, over all inputs
(tasks.plus.oracle_program); its outputs (pickled, and only ever unpickled inside the sandbox)
and its CPU time per input are cached on disk, keyed by the program and this machine. Samples are
then judged against those outputs with per-input CPU-time limits of max(1 s, 4 x the
reference's time) and a whole-program wall limit of min(60 s, the limits' sum) + 2 s (evalplus
0.3.1's rule), so the reference no longer runs once per sample. A task whose reference cannot
be measured (it fails, or runs over ORACLE_TIMEOUT) keeps its self-contained check.

`plus_columns(row, task)` adds evalplus's per-sample fields to a result row and
`plus_summary` its base and plus pass@k.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from codeling.evaluate.metrics import summarize
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.io import atomic_write_json
from codeling.tasks.plus import (
    is_plus,
    judged_test,
    limits_from,
    oracle_program,
    plus_inputs,
    split_status,
    task_timeout,
)
from codeling.tasks.schema import Task

ORACLE_VERSION = 4  # bump when the oracle program's output changes
ORACLE_TIMEOUT = 300.0  # wall seconds for one reference over all its inputs
ORACLE_LIMITS = Limits(timeout=ORACLE_TIMEOUT, memory_mb=4096, output_bytes=1 << 28,
                       reply_bytes=1 << 28)


def machine() -> str:
    """What the measured times depend on: the CPU model and count, and the host."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         "")
    except OSError:
        pass
    return f"{model or platform.processor()} x{os.cpu_count()} @ {platform.node()}"


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "codeling" / "plus-oracle"


def _key(program: str, where: str) -> str:
    h = hashlib.sha256(f"{ORACLE_VERSION}\n{where}\n{program}".encode())
    return h.hexdigest()[:24]


def measure(tasks: Sequence[Task], cache: str | os.PathLike | None = None, workers: int = 0,
            isolation: str = "auto") -> dict[str, dict]:
    """{task_id: {"times": [...], "expected": b64} or {"error": reason}}, from the cache or
    measured now (in parallel) and cached."""
    folder = Path(cache) if cache else default_cache()
    where = machine()
    out, todo = {}, []
    for t in tasks:
        program = oracle_program(t)
        path = folder / f"{_key(program, where)}.json"
        if path.exists():
            try:
                out[t.task_id] = json.loads(path.read_text())
                continue
            except (OSError, ValueError):
                pass  # a damaged cache entry is measured again
        todo.append((t, program, path))
    if todo:
        with Sandbox(ORACLE_LIMITS, workers=workers, isolation=isolation) as sb:
            for i, res in sb.imap([p for _, p, _ in todo]):
                t, _, path = todo[i]
                entry = {"task_id": t.task_id, "machine": where}
                try:
                    if not res.passed:
                        raise ValueError(res.result[:300])
                    got = json.loads(res.output)
                    entry.update(times=[float(x) for x in got["times"]],
                                 expected=str(got["expected"]),
                                 digests={str(k): str(v) for k, v in got["digests"].items()},
                                 fast={str(k): v if v is None else str(v)
                                       for k, v in got["fast"].items()})
                except (ValueError, KeyError, TypeError) as e:
                    entry["error"] = f"reference run: {e}"[:300]
                if not res.is_error and res.status != "timed out":  # retried next time
                    atomic_write_json(path, entry)
                out[t.task_id] = entry
    return out


class PlusTest(NamedTuple):
    """A plus task's judged check: its test source and wall timeout, the same over the base
    inputs alone, and the reference's CPU seconds over all inputs (what a sample costs)."""
    test: str
    timeout: float
    base_test: str
    base_timeout: float
    seconds: float


def plus_tests(tasks: Sequence[Task], cache: str | os.PathLike | None = None, workers: int = 0,
               isolation: str = "auto") -> dict[str, PlusTest]:
    """{task_id: PlusTest} for every plus task with a measured reference."""
    plus = [t for t in tasks if is_plus(t)]
    if not plus:
        return {}
    oracles = measure(plus, cache, workers, isolation)
    out = {}
    for t in plus:
        o = oracles.get(t.task_id, {})
        if "expected" in o:
            limits = limits_from(o["times"])
            n_base = t.extra.get("n_base", 0)
            fast = o.get("fast", {})
            out[t.task_id] = PlusTest(
                judged_test(t, o["expected"], o["digests"], limits, fast=fast),
                task_timeout(limits),
                judged_test(t, o["expected"], o["digests"], limits, True, fast),
                task_timeout(limits[:n_base]), sum(o["times"]))
    return out


def plus_columns(row: dict, task: Task) -> dict:
    """evalplus's per-sample fields: base_status, plus_status ("pass", "fail", "timeout";
    plus null where base did not pass), base_fail_tests, plus_fail_tests (the first failing
    input's arguments, as evalplus's fast check reports)."""
    status = "passed" if row["passed"] else "timed out" if row["result"] == "timed out" \
        else "failed"
    base, plus, where = split_status(status, row["result"].removeprefix("failed: "))
    fails = {"base": [], "plus": []}
    if where is not None:
        part, index = where
        inputs = plus_inputs(task)[part]
        if index < len(inputs):
            fails[part] = [inputs[index]]
    return {"base_status": base, "plus_status": plus, "base_fail_tests": fails["base"],
            "plus_fail_tests": fails["plus"]}


def plus_summary(rows: list[dict], problems: Sequence[Task], ks: Sequence[int] | None) -> dict:
    """{"base": pass@k over base_status, "plus": pass@k over base and plus both passing}."""
    out = {}
    for name, ok in (("base", lambda r: r["base_status"] == "pass"),
                     ("plus", lambda r: r["base_status"] == r["plus_status"] == "pass")):
        s = summarize([{**r, "passed": ok(r) and not r.get("error")} for r in rows], problems,
                      ks)
        out[name] = {k: v for k, v in s.items() if k.startswith("pass@")}
    return out
