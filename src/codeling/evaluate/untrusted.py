"""The sandbox's child side: fd hygiene, death signals, the sample's environment and limits,
and the untrusted program itself with its verdict handshake.

Used by zygote.py (rlimits mode: one child per program) and nsworker.py (one namespace reused
for many programs). Everything here runs in a forked child of the zygote.
"""

from __future__ import annotations

import os
import select
import sys

from codeling.evaluate import isolate


def drain(fd: int, limit: int) -> bytes:
    """Whatever is already buffered in a pipe, without waiting for writers that linger."""
    os.set_blocking(fd, False)
    buf = b""
    try:
        while len(buf) < limit and (chunk := os.read(fd, 65536)):
            buf += chunk
    except BlockingIOError:
        pass
    return buf[:limit]


def close_fds_except(keep: tuple[int, ...]) -> None:
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def arm_pdeathsig(parent: int | None, life_fd: int | None = None) -> None:
    """Die with our parent. Re-run after every credential change (it clears PDEATHSIG); then
    check the parent is still there, since it may have died before the prctl took effect."""
    isolate.set_pdeathsig()
    if parent is not None and os.getppid() != parent:
        os._exit(0)
    if life_fd is not None and select.select([life_fd], [], [], 0)[0]:
        os._exit(0)  # EOF: the only writer (our parent) is gone; getppid() is 0 for a PID 1


def relay(pid: int, fds: tuple[int, ...]) -> None:
    """Wait for a child and exit with its status (signals become 128 + signo). Never returns."""
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def redirect(out_w: int) -> None:
    """stdin from /dev/null, stdout and stderr into the output pipe."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    os.close(null)
    os.close(out_w)


def enter(cwd: str, limits: dict, timeout: float) -> None:
    """The sample's working directory, scrubbed environment and rlimits (CPU: the timeout)."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8",
                       "PYTHONHASHSEED": "0"})
    isolate.set_limits(limits["memory_mb"], int(timeout) + 1, limits["file_size_mb"],
                       limits["nproc"], limits["nofile"])


def run_untrusted(program: str, vfd: int, nfd: int) -> None:
    """Run the program; only if it returned, fetch the nonce and report "P<pid>:<nonce>".
    Never returns."""
    code = 1
    try:
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(program, "<sample>", "exec"), g)
        sys.stdout.flush()
        nonce = os.read(nfd, 64)  # only now: the program can no longer run
        os.write(vfd, b"P" + str(os.getpid()).encode() + b":" + nonce)
        code = 0
    except BaseException as e:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        try:
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        except BaseException:
            reason = type(e).__name__
        try:
            os.write(vfd, b"F" + reason[:300].encode("utf-8", "replace"))
        except BaseException:
            pass
    finally:
        os._exit(code)
