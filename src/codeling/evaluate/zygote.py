"""The sandbox worker: a pre-warmed interpreter that runs one program at a time, isolated.

Protocol on stdin/stdout: 4-byte big-endian length + JSON. Request {program, timeout, limits};
reply {status, reason, output, seconds}; status "error" means the sandbox itself failed.
Started by `sandbox.Sandbox`; not meant for humans.

Namespace mode: the zygote keeps one isolated namespace (nsworker.py) and has its PID 1 fork a
child per program, with fresh tmpfs and a kill sweep between programs; anything unusual (a
timeout, too much output, a set-up failure) ends that namespace with SIGKILL to its PID 1,
after which the kernel guarantees nothing of it is left, and the next program gets a new one.
Rlimits mode (no namespaces): one forked child per program in its own session, killed by group
and, as root, by a sweep of the worker's uid.
If the zygote itself dies, its children follow by PDEATHSIG (re-armed after every credential
change, which clears it). The zygote watches its protocol stdin during a run too: when the
evaluator goes away it ends the program and exits.
The verdict is decided here, outside the untrusted process: pass = the nonce arrived from the
process that ran the program, and that process then exited 0: sys.exit(0), os._exit(0) and
printed markers are failures.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import struct
import sys
import time

from codeling.evaluate import isolate
from codeling.evaluate.nsworker import Holder, HolderError
from codeling.evaluate.untrusted import (
    arm_pdeathsig,
    close_fds_except,
    drain,
    enter,
    redirect,
    run_untrusted,
)

# modules samples commonly import, imported once here so every fork has them for free (pickle:
# every HumanEval+ / MBPP+ check unpickles its expected outputs; 1.4-3 ms a program otherwise)
PREWARM = ("pickle", "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
           "typing", "random", "statistics", "fractions", "decimal", "operator", "copy", "json",
           "hashlib", "datetime", "array", "cmath", "numbers", "textwrap", "unicodedata",
           "dataclasses", "enum", "abc", "io", "struct", "calendar", "traceback", "ast",
           "socket")
GONE_WAIT = 5.0  # seconds a killed namespace may take to empty before we call it an error


def _write_msg(fd: int, obj: dict) -> None:
    body = json.dumps(obj).encode()
    os.write(fd, struct.pack(">I", len(body)) + body)


class Zygote:
    def __init__(self, mode: str, uid: int, gid: int, worker: int, proto_in: int):
        self.mode, self.uid, self.gid, self.worker = mode, uid, gid, worker
        self.as_root = os.geteuid() == 0
        self.pid = os.getpid()
        self.proto_in = proto_in
        self.pending = b""  # request bytes that arrived while a program ran
        self.lost = False  # the evaluator closed our stdin
        self.ns: Holder | None = None

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
    def run(self, req: dict) -> dict:
        program, timeout, limits = req["program"], float(req["timeout"]), req["limits"]
        if self.mode == "namespaces":
            return self._run_ns(program, timeout, limits)
        return self._run_forked(program, timeout, limits)

    def _watch(self, out_r: int, v_r: int, ctl: tuple[int, object] | None, deadline: float,
               limits: dict, st: dict) -> str:
        """Collect output and verdict until `ctl`'s handler says done; returns why it stopped
        early ("" when done): a timeout, too much output, the evaluator gone."""
        sel = selectors.DefaultSelector()
        for fd, name in ((out_r, "out"), (v_r, "v"), (self.proto_in, "proto")):
            sel.register(fd, selectors.EVENT_READ, name)
        if ctl is not None:
            sel.register(ctl[0], selectors.EVENT_READ, "ctl")
        try:
            while True:
                left = deadline() - time.monotonic()
                if left <= 0:
                    return "timed out"
                for key, _ in sel.select(left):
                    if key.data == "ctl":
                        if ctl[1]():
                            return ""
                        continue
                    chunk = os.read(key.fd, 65536)
                    if key.data == "proto":
                        if not chunk:  # the evaluator is gone: end the program, then ourselves
                            self.lost = True
                            return "evaluator gone"
                        self.pending += chunk
                    elif not chunk:
                        sel.unregister(key.fd)
                    elif key.data == "v":
                        st["verdict"] += chunk[:1024]
                    else:
                        st["output"] += chunk
                        if len(st["output"]) > limits["output_bytes"]:
                            return "output limit exceeded"
        finally:
            sel.close()

    def _run_ns(self, program: str, timeout: float, limits: dict) -> dict:
        start = time.monotonic()
        if self.ns is None:
            try:
                self.ns = Holder(self.pid, self.as_root, self.uid, self.gid)
            except HolderError as e:
                return {"status": "error", "reason": str(e)[:300], "output": "", "seconds": 0.0}
        ns = self.ns
        out_r, out_w = os.pipe()
        v_r, v_w = os.pipe()  # verdict, from the program's process
        n_r, n_w = os.pipe()  # nonce, read by the program's process once the program returned
        nonce = secrets.token_hex(16).encode()
        os.write(n_w, nonce)
        os.close(n_w)
        st = {"verdict": b"", "output": b"", "pid": None, "status": None, "setup": b""}
        try:
            ns.send(program, timeout, limits, (out_w, v_w, n_r))
        except OSError as e:
            st["setup"] = f"the namespace's PID 1 is gone ({e})".encode()
        for fd in (out_w, v_w, n_r):
            os.close(fd)
        ends = [start + timeout]

        def on_ctl() -> bool:  # B's lines: C<pid>, S<failure>, X<status>, D
            while (line := ns.line(0.0)) is not None:
                kind, rest = line[:1], line[1:]
                if kind == b"C":
                    st["pid"] = rest
                elif kind == b"X":
                    st["status"] = int(rest)
                    ends[0] = max(ends[0], time.monotonic() + GONE_WAIT)  # the sweep's time
                elif kind == b"D":
                    return True
                else:
                    st["setup"] = rest or b"the namespace failed"
                    return True
            return False

        why = "" if st["setup"] else self._watch(out_r, v_r, (ns.sock.fileno(), on_ctl),
                                                  lambda: ends[0], limits, st)
        if why or st["setup"] or st["status"] is None:
            self.ns = None
            if not ns.close(GONE_WAIT):
                why = "error: the sandbox's processes did not stop after SIGKILL"
        st["verdict"] += drain(v_r, 1024)
        st["output"] += drain(out_r, max(0, limits["output_bytes"] + 1 - len(st["output"])))
        os.close(out_r)
        os.close(v_r)
        if not why and len(st["output"]) > limits["output_bytes"]:
            why = "output limit exceeded"
        if st["setup"] and not why.startswith("error"):
            why = "error: " + st["setup"].decode("utf-8", "replace")
        status = st["status"] if st["status"] is not None else 137 << 8
        return self._verdict(why, st["verdict"], nonce, status,
                             st["output"][:limits.get("reply_bytes", 2048)], start,
                             st["pid"] or b"?")

    def _run_forked(self, program: str, timeout: float, limits: dict) -> dict:
        """Rlimits mode: one child in its own session (and, as root, the worker's uid)."""
        start = time.monotonic()
        out_r, out_w = os.pipe()
        v_r, v_w = os.pipe()
        n_r, n_w = os.pipe()
        c_r, c_w = os.pipe()  # the child's set-up failure
        nonce = secrets.token_hex(16).encode()
        os.write(n_w, nonce)
        os.close(n_w)
        pid = os.fork()
        if pid == 0:
            self._forked_child(program, timeout, limits, out_w, v_w, n_r, c_w)
        for fd in (out_w, v_w, n_r, c_w):
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        st = {"verdict": b"", "output": b""}
        why = self._watch(out_r, v_r, (pidfd, lambda: True), lambda: start + timeout, limits,
                          st)
        self._kill_forked(pid)
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        st["verdict"] += drain(v_r, 1024)
        st["output"] += drain(out_r, max(0, limits["output_bytes"] + 1 - len(st["output"])))
        failed = drain(c_r, 300)
        for fd in (out_r, v_r, c_r):
            os.close(fd)
        if not why and len(st["output"]) > limits["output_bytes"]:
            why = "output limit exceeded"
        if failed:
            why = "error: " + failed.decode("utf-8", "replace")
        return self._verdict(why, st["verdict"], nonce, status,
                             st["output"][:limits.get("reply_bytes", 2048)], start, None)

    def _forked_child(self, program, timeout, limits, out_w, v_w, n_r, c_w) -> None:
        try:
            isolate.null_stdio()
            close_fds_except((out_w, v_w, n_r, c_w))  # incl. the protocol pipes
            arm_pdeathsig(self.pid)
            os.setsid()
            cwd = f"/tmp/codeling-sandbox-{self.worker}-{os.getpid()}"
            os.makedirs(cwd, mode=0o700)
            if self.as_root:
                os.chown(cwd, self.uid, self.gid)
                isolate.drop_privileges(True, self.uid, self.gid)
                arm_pdeathsig(self.pid)  # setresuid cleared it
            enter(cwd, limits, timeout)
            redirect(out_w)
            os.close(c_w)
        except BaseException as e:
            try:
                os.write(c_w, f"sandbox setup failed: {e}"[:300].encode())
            finally:
                os._exit(70)
        run_untrusted(program, v_w, n_r)

    def _kill_forked(self, pid: int) -> None:
        """End a rlimits-mode program's whole tree: its group, and as root its uid."""
        for kill in (os.kill, os.killpg):
            try:
                kill(pid, signal.SIGKILL)
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

    def close(self) -> None:
        if self.ns is not None:
            self.ns.close(GONE_WAIT)
            self.ns = None

    @staticmethod
    def _verdict(why, verdict, nonce, status, output, start, expected_pid) -> dict:
        seconds = round(time.monotonic() - start, 4)
        exited_ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        res = {"output": output.decode("utf-8", "replace"), "seconds": seconds}
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
                zyg.close()
                reply = {"status": "error", "reason": f"sandbox worker: {e!r}"[:300],
                         "output": "", "seconds": 0.0}
            if zyg.lost:
                break
            _write_msg(proto_out, reply)
    except BrokenPipeError:
        pass  # the evaluator went away between two programs
    finally:
        zyg.close()


if __name__ == "__main__":
    main()
