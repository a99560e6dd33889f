"""The sandbox worker: a pre-warmed interpreter that forks one isolated child per program.

Protocol on stdin/stdout: 4-byte big-endian length + JSON. Request {program, timeout, limits};
reply {status, reason, output, seconds}; status "error" means the sandbox itself failed.
Started by `sandbox.Sandbox`; not meant for humans.

Per program (namespace mode):
  zygote ──fork──▶ A: unshare(pid, mount, net, ipc, uts [, user]) ──fork──▶ B = PID 1 of the new
  namespace: read-only root, private /tmp, hidden homes, no network, unprivileged uid, rlimits
  ──fork──▶ C = PID 2 runs the program in-process (no exec: the fork is the fast path) and, only
  if it returned, writes "P" + a nonce it fetches after the program finished.
Ending a program: A reports B's host pid on a control pipe the program never holds; the zygote
opens a pidfd for it (A waits for that before it may reap B, so the pid cannot be reused) and
SIGKILLs B. The kernel kills everything in a PID namespace when its PID 1 dies and only then
reports PID 1 as exited, so once the pidfd polls readable no descendant is left, whatever it did
with sessions, signals or SIGSTOP. If the zygote itself dies, A and B follow by PDEATHSIG
(re-armed after every credential change, which clears it). The zygote watches its protocol
stdin during a run too: when the evaluator goes away it ends the program and exits.
The verdict is decided here, outside the untrusted process: pass = the nonce arrived from PID 2
and the process tree then exited 0: sys.exit(0), os._exit(0) and printed markers are failures.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import selectors
import signal
import struct
import sys
import time

from codeling.evaluate import isolate

# modules samples commonly import, imported once here so every fork has them for free
PREWARM = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
           "typing", "random", "statistics", "fractions", "decimal", "operator", "copy", "json",
           "hashlib", "datetime", "array", "cmath", "numbers", "textwrap", "unicodedata",
           "dataclasses", "enum", "abc", "io", "struct", "calendar", "traceback", "ast")
GONE_WAIT = 5.0  # seconds a killed namespace may take to empty before we call it an error


def _write_msg(fd: int, obj: dict) -> None:
    body = json.dumps(obj).encode()
    os.write(fd, struct.pack(">I", len(body)) + body)


def _drain(fd: int, limit: int) -> bytes:
    """Whatever is already buffered in a pipe, without waiting for writers that linger."""
    os.set_blocking(fd, False)
    buf = b""
    try:
        while len(buf) < limit and (chunk := os.read(fd, 65536)):
            buf += chunk
    except BlockingIOError:
        pass
    return buf[:limit]


def _close_fds_except(keep: tuple[int, ...]) -> None:
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def _arm_pdeathsig(parent: int | None, life_fd: int | None = None) -> None:
    """Die with our parent. Re-run after every credential change (it clears PDEATHSIG); then
    check the parent is still there, since it may have died before the prctl took effect."""
    isolate.set_pdeathsig()
    if parent is not None and os.getppid() != parent:
        os._exit(0)
    if life_fd is not None and select.select([life_fd], [], [], 0)[0]:
        os._exit(0)  # EOF: the only writer (our parent) is gone; getppid() is 0 for a PID 1


def _relay(pid: int, fds: tuple[int, ...]) -> None:
    """Wait for a child and exit with its status (signals become 128 + signo). Never returns."""
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _run_untrusted(program: str, vfd: int, nfd: int) -> None:
    """Runs inside B. Never returns."""
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


class Zygote:
    def __init__(self, mode: str, uid: int, gid: int, worker: int, proto_in: int):
        self.mode, self.uid, self.gid, self.worker = mode, uid, gid, worker
        self.as_root = os.geteuid() == 0
        self.pid = os.getpid()
        self.proto_in = proto_in
        self.pending = b""  # request bytes that arrived while a program ran
        self.lost = False  # the evaluator closed our stdin

    # -- protocol -------------------------------------------------------------------------
    def read_msg(self) -> dict | None:
        head = self._read_exact(4)
        body = None if head is None else self._read_exact(struct.unpack(">I", head)[0])
        return None if body is None else json.loads(body)

    def _read_exact(self, n: int) -> bytes | None:
        while len(self.pending) < n:
            chunk = os.read(self.proto_in, 65536)
            if not chunk:
                self.lost = True
                return None
            self.pending += chunk
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    # -- one program ----------------------------------------------------------------------
    def _child_setup(self, limits: dict, timeout: float) -> None:
        """In B (or the single child in rlimit mode): isolate, then drop privileges."""
        if self.mode == "namespaces":
            cwd = isolate.setup_filesystem(tmpfs_mb=2 * limits["file_size_mb"] + 8)
        else:
            os.setsid()
            cwd = f"/tmp/codeling-sandbox-{self.worker}-{os.getpid()}"
            os.makedirs(cwd, mode=0o700)
            if self.as_root:
                os.chown(cwd, self.uid, self.gid)
        if self.as_root or self.mode == "namespaces":
            isolate.drop_privileges(self.as_root, self.uid, self.gid)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update({"PATH": "/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8",
                           "PYTHONHASHSEED": "0"})
        isolate.set_limits(limits["memory_mb"], int(timeout) + 1, limits["file_size_mb"],
                           limits["nproc"], limits["nofile"])

    def run(self, req: dict) -> dict:
        program, timeout, limits = req["program"], float(req["timeout"]), req["limits"]
        out_r, out_w = os.pipe()
        v_r, v_w = os.pipe()  # verdict, from the program's process
        n_r, n_w = os.pipe()  # nonce, to the program once it finished
        c_r, c_w = os.pipe()  # control, from A and B only: B's host pid, set-up failures
        k_r, k_w = os.pipe()  # ack to A: we hold B's pidfd, so A may now reap B
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            self._child(program, timeout, limits, out_w, v_w, n_r, c_w, k_r)
        for fd in (out_w, v_w, n_r, c_w, k_r):
            os.close(fd)
        nonce = secrets.token_hex(16).encode()
        os.write(n_w, nonce)
        os.close(n_w)
        verdict, output, ctl, why = b"", b"", b"", ""
        b_fd: int | None = None
        pidfd = os.pidfd_open(pid)
        sel = selectors.DefaultSelector()
        for fd, name in ((out_r, "out"), (v_r, "v"), (c_r, "ctl"), (pidfd, "exit"),
                         (self.proto_in, "proto")):
            sel.register(fd, selectors.EVENT_READ, name)
        deadline, exited = start + timeout, False
        while not exited and not why:
            left = deadline - time.monotonic()
            if left <= 0:
                why = "timed out"
                break
            for key, _ in sel.select(left):
                if key.data == "exit":
                    exited = True  # drain below: a daemon holding our pipes must not stall us
                    continue
                chunk = os.read(key.fd, 65536)
                if key.data == "proto":
                    if not chunk:  # the evaluator is gone: end the program, then ourselves
                        self.lost, why = True, "evaluator gone"
                    self.pending += chunk
                elif not chunk:
                    sel.unregister(key.fd)
                elif key.data == "ctl":
                    ctl += chunk
                    if b_fd is None:
                        b_fd = self._adopt(ctl, k_w)
                elif key.data == "v":
                    verdict += chunk[:1024]
                else:
                    output += chunk
                    if len(output) > limits["output_bytes"]:
                        why = "output limit exceeded"
        sel.close()
        ctl += _drain(c_r, 4096)
        if b_fd is None:
            b_fd = self._adopt(ctl, k_w)
        gone = self._kill(pid, b_fd)
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        verdict += _drain(v_r, 1024)
        output += _drain(out_r, max(0, limits["output_bytes"] + 1 - len(output)))
        if not why and len(output) > limits["output_bytes"]:
            why = "output limit exceeded"
        for fd in (out_r, v_r, c_r, k_w):
            os.close(fd)
        if not gone:
            why = "error: the sandbox's processes did not stop after SIGKILL"
        elif ctl.startswith(b"S") or b"\nS" in ctl:
            why = "error: " + ctl[ctl.index(b"S") + 1:].decode("utf-8", "replace")
        return self._verdict(why, verdict, nonce, status, output, start)

    @staticmethod
    def _adopt(ctl: bytes, k_w: int) -> int | None:
        """A pidfd for B once A reported its pid, then let A go on (A must not reap B before)."""
        if not ctl.startswith(b"B") or b"\n" not in ctl:
            return None
        try:
            fd = os.pidfd_open(int(ctl[1:ctl.index(b"\n")]))
        except (ProcessLookupError, ValueError):
            fd = None
        os.write(k_w, b"k")
        return fd

    def _child(self, program, timeout, limits, out_w, v_w, n_r, c_w, k_r) -> None:
        try:
            isolate.null_stdio()
            _close_fds_except((out_w, v_w, n_r, c_w, k_r))  # incl. the protocol pipes
            _arm_pdeathsig(self.pid)
            if self.mode != "namespaces":
                self._child_setup(limits, timeout)
                _arm_pdeathsig(self.pid)  # setresuid cleared it
                os.close(c_w)
                os.close(k_r)
                self._redirect(out_w)
                _run_untrusted(program, v_w, n_r)
            isolate.enter_namespaces(self.as_root, self.uid, self.gid)
            _arm_pdeathsig(self.pid)
            life_r, life_w = os.pipe()  # only A writes: EOF in B means A is gone
            b = os.fork()
            if b == 0:  # PID 1 of the new namespace: isolate, then run the sample as PID 2
                os.close(life_w)
                os.close(k_r)
                _arm_pdeathsig(None, life_r)
                self._child_setup(limits, timeout)
                _arm_pdeathsig(None, life_r)  # dropping privileges cleared it
                os.close(life_r)
                c = os.fork()  # PID 1 ignores its own signals; the sample gets normal semantics
                if c == 0:
                    os.close(c_w)  # the sample must not report pids or set-up failures
                    isolate.set_pdeathsig()
                    self._redirect(out_w)
                    _run_untrusted(program, v_w, n_r)
                _relay(c, (out_w, v_w, n_r, c_w))
            os.close(life_r)
            os.write(c_w, b"B%d\n" % b)
            os.read(k_r, 1)  # the zygote holds a pidfd for B now (or is gone: PDEATHSIG)
            _relay(b, (out_w, v_w, n_r, c_w, k_r))
        except BaseException as e:
            try:
                os.write(c_w, b"S" + f"sandbox setup failed: {e}"[:300].encode())
            finally:
                os._exit(70)

    @staticmethod
    def _redirect(out_w: int) -> None:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.close(null)
        os.close(out_w)

    def _kill(self, pid: int, b_fd: int | None) -> bool:
        """End the program's whole tree; True once nothing of it is left."""
        gone = True
        if b_fd is not None:  # SIGKILL to PID 1 empties the namespace, stopped processes too
            try:
                signal.pidfd_send_signal(b_fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            gone = bool(select.select([b_fd], [], [], GONE_WAIT)[0])
            os.close(b_fd)
        try:
            os.kill(pid, signal.SIGKILL)  # A: our own unreaped child, so the pid is still ours
        except ProcessLookupError:
            pass
        if self.mode == "namespaces":
            return gone
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.as_root:  # a dedicated uid per worker: sweep up anything that escaped the group
            sweeper = os.fork()
            if sweeper == 0:
                try:
                    os.setresuid(self.uid, self.uid, self.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(sweeper, 0)
        return gone

    def _verdict(self, why, verdict, nonce, status, output, start) -> dict:
        seconds = round(time.monotonic() - start, 4)
        expected_pid = b"2" if self.mode == "namespaces" else None
        exited_ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        res = {"output": output[:2048].decode("utf-8", "replace"), "seconds": seconds}
        if why.startswith("error: ") or why == "evaluator gone":
            return {**res, "status": "error", "reason": why.removeprefix("error: ")}
        if why == "timed out":
            return {**res, "status": "timed out", "reason": ""}
        if why:
            return {**res, "status": "failed", "reason": why}
        if verdict.startswith(b"P") and exited_ok:
            pid, _, got = verdict[1:].partition(b":")
            if got == nonce and (expected_pid is None or pid == expected_pid):
                return {**res, "status": "passed", "reason": ""}
            return {**res, "status": "failed", "reason": "forged verdict"}
        if verdict[:1] == b"F":
            return {**res, "status": "failed", "reason": verdict[1:].decode("utf-8", "replace")}
        if os.WIFSIGNALED(status) or (os.WIFEXITED(status) and os.WEXITSTATUS(status) >= 128):
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status) - 128
            name = signal.Signals(sig).name if sig in signal.Signals.__members__.values() else sig
            hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)",
                    "SIGKILL": " (killed)", "SIGSEGV": " (crashed)"}.get(str(name), "")
            return {**res, "status": "failed", "reason": f"killed by {name}{hint}"}
        code = os.waitstatus_to_exitcode(status)
        return {**res, "status": "failed", "reason": f"exited early with code {code}"}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    # No PDEATHSIG here: it fires when the *thread* that spawned us exits (Sandbox pools spawn
    # from worker threads). The evaluator's death closes our stdin instead; we watch it even
    # while a program runs, and exit on EOF. We run in our own session (Popen), so a Ctrl-C
    # reaches the evaluator only, which then closes us.
    if os.getppid() != cfg["parent"]:
        sys.exit(0)
    for name in PREWARM:
        __import__(name)
    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # stray prints from here on cannot corrupt the protocol
    mode = isolate.probe(cfg["mode"])
    zyg = Zygote(mode, cfg["uid"], cfg["gid"], cfg["worker"], proto_in)
    try:
        _write_msg(proto_out, {"ready": True, "mode": mode})
        while (req := zyg.read_msg()) is not None:
            try:
                reply = zyg.run(req)
            except Exception as e:  # e.g. fork refused: the sandbox failed, not the program
                reply = {"status": "error", "reason": f"sandbox worker: {e!r}"[:300],
                         "output": "", "seconds": 0.0}
            if zyg.lost:
                break
            _write_msg(proto_out, reply)
    except BrokenPipeError:
        pass  # the evaluator went away between two programs


if __name__ == "__main__":
    main()
