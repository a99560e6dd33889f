"""Judge many programs of known origin a few sandboxed processes at a time.

    with Sandbox(Limits(timeout=5)) as sb:
        results = run_batched(sb, programs)   # list[ExecResult], in order

For task validation: tens of thousands of generator- or teacher-written programs, almost all of
which pass. One sandboxed process each costs a fork, namespaces and a tmpfs mount per program
(~170 programs/s on 2 cores, whatever the worker count: the machine's CPU is the limit). Here
one process runs a chunk of programs in turn (batch_harness.py), and only what it can vouch for
is taken from it:
- a program that ran to its end passed, as it would alone;
- one that raised an exception whose type is in SAFE_EXCEPTIONS failed with that reason, as it
  would alone (those do not depend on time, memory or what ran before);
- everything else (a timeout, a RecursionError or MemoryError, too much output, sys.exit, a
  crash of the batch, a program after which the process was not clean) is judged alone by
  `Sandbox.run`, so its result is exactly the one-process-each result. A batch that dies
  goes on in a fresh process after the program it died on.
Two differences from `Sandbox.run_all`, both documented in the result: a batched failure's
`reason` is its exception's type name only, and batched results carry no output.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path

from codeling.evaluate.sandbox import ExecResult, Sandbox

CHUNK = 400  # programs per batch (one record character each; a reply holds 2048)
SAFE_EXCEPTIONS = (
    "AssertionError", "TypeError", "ValueError", "IndexError", "KeyError", "NameError",
    "UnboundLocalError", "ZeroDivisionError", "AttributeError", "SyntaxError",
    "IndentationError", "TabError", "OverflowError", "StopIteration", "LookupError",
    "ArithmeticError", "NotImplementedError", "UnicodeDecodeError", "UnicodeEncodeError",
    "UnicodeError", "ImportError", "ModuleNotFoundError", "Exception")
_CODE_CHARS = [c for c in string.ascii_letters if c != "p"]  # "p" is a pass, "?" not ours
CODES = dict(zip(SAFE_EXCEPTIONS, _CODE_CHARS))
_NAMES = {c: name for name, c in CODES.items()}
_HARNESS = Path(__file__).with_name("batch_harness.py").read_text()
_RETRIES = 2  # a batch that got an infrastructure error is run again this often


def batch_program(programs: list[str], timeout: float, output_bytes: int) -> str:
    return f"_CB_CONFIG = {(programs, CODES, timeout, output_bytes)!r}\n" + _HARNESS


def _decode(output: str, n: int) -> list[str]:
    """The leading valid records of a batch's output (at most n)."""
    codes = []
    for ch in output[:n]:
        if ch != "p" and ch != "?" and ch not in _NAMES:
            break
        codes.append(ch)
    return codes


def _from_code(code: str) -> ExecResult | None:
    if code == "p":
        return ExecResult("passed")
    return ExecResult("failed", _NAMES[code]) if code in _NAMES else None


def run_batched(sb: Sandbox, programs: list[str], chunk: int = CHUNK,
                on_done: Callable[[int], None] | None = None) -> list[ExecResult]:
    """Results in order, as `sb.run_all(programs)` would give them (see the module docstring
    for what a batched result leaves out). `on_done(k)` is told as k more are judged."""
    if not 1 <= chunk <= 2000:
        raise ValueError(f"chunk must be 1-2000 programs, not {chunk}")
    results: list[ExecResult | None] = [None] * len(programs)
    alone: list[int] = []
    pending = [(list(range(i, min(i + chunk, len(programs)))), 0)
               for i in range(0, len(programs), chunk)]
    timeout = max(30.0, 4 * sb.limits.timeout)  # a batch that runs out goes on in a fresh one
    while pending:
        texts = [batch_program([programs[i] for i in idx], sb.limits.timeout,
                               sb.limits.output_bytes) for idx, _ in pending]
        again = []
        for k, res in sb.imap(texts, [timeout] * len(texts)):
            idx, tries = pending[k]
            if res.is_error:  # no verdict on any of them: run the batch again, then alone
                if tries < _RETRIES:
                    again.append((idx, tries + 1))
                else:
                    alone += idx
                continue
            codes = _decode(res.output, len(idx))
            for i, code in zip(idx, codes):
                results[i] = _from_code(code)
                if results[i] is None:
                    alone.append(i)
            done = len(codes)
            if done < len(idx):  # the batch died on idx[done]: judge it alone, go on after it
                alone.append(idx[done])
                if idx[done + 1:]:
                    again.append((idx[done + 1:], tries))
            if on_done:
                on_done(sum(results[i] is not None for i in idx[:done]))
        pending = again
    for i, res in sb.imap([programs[i] for i in alone]):
        results[alone[i]] = res
        if on_done:
            on_done(1)
    return results  # type: ignore[return-value]
