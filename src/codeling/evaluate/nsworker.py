"""One isolated namespace per sandbox worker, reused for many programs.

    zygote ──fork──▶ A: unshare(pid, mount, net, ipc, uts [, user]) ──fork──▶ B = PID 1 of the
    namespace ("the holder"): read-only root, hidden homes, own /proc, no network; it keeps its
    privileges inside, and for each program:
      1. detaches the tmpfs on /tmp, /var/tmp, /dev/shm and mounts fresh empty ones;
      2. forks C, which drops to the worker's unprivileged uid (or, without root, drops every
         capability), sets rlimits and runs the program (untrusted.run_untrusted);
      3. reports C's pid and exit status to the zygote, then sweeps: SIGKILL to every process
         of the namespace but itself, again until none is left, each reaped (orphans are its
         children), and only then says "done".
Creating the namespaces and mounts costs ~9 ms a program (bench/evaluator.py); reusing them
leaves a fork, three tmpfs mounts and the sweep.

The zygote talks to B over a socketpair that no program ever holds (C closes it before its set-up):
a request is a length-prefixed JSON header and the program, with the program's three pipe ends
passed as SCM_RIGHTS. B answers lines: "C<pid>", "S<set-up failure>", "X<wait status>", "D".
Anything unusual (a timeout, too much output, a set-up failure, a silent holder, the evaluator
going away) ends the whole namespace as before: SIGKILL to B through a pidfd, after which the
kernel has emptied it once the pidfd polls readable; the next program gets a fresh one.
What one program could leave for the next is gone by construction: its processes (the sweep),
its files (new tmpfs); everything else it can reach is read-only or outside its uid.
B is PID 1: signals from inside the namespace reach it only through handlers it installs (it
installs none), and C, with fewer privileges than B, can neither signal nor ptrace it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import time

from codeling.evaluate import isolate
from codeling.evaluate.untrusted import (
    arm_pdeathsig,
    close_fds_except,
    drain,
    enter,
    redirect,
    relay,
    run_untrusted,
)

START_WAIT = 10.0  # seconds a new namespace may take to become ready


class HolderError(RuntimeError):
    pass


class Holder:
    """The zygote's handle on one namespace (A, B and the socket to B)."""

    def __init__(self, zygote_pid: int, as_root: bool, uid: int, gid: int):
        self.sock, b_sock = socket.socketpair()
        c_r, c_w = os.pipe()  # from A: B's host pid, or A's set-up failure
        k_r, k_w = os.pipe()  # to A: we hold B's pidfd now, so A may reap B
        self.a = os.fork()
        if self.a == 0:
            _start_a(zygote_pid, as_root, uid, gid, b_sock.fileno(), c_w, k_r)
        b_sock.close()
        os.close(c_w)
        os.close(k_r)
        self.b_fd: int | None = None
        self.buf = b""
        try:
            ctl = _read_line(c_r, START_WAIT)
            if not ctl.startswith(b"B"):
                raise HolderError(ctl[1:].decode("utf-8", "replace") or "namespace set-up died")
            self.b_fd = os.pidfd_open(int(ctl[1:]))
            os.write(k_w, b"k")
            if self.line(START_WAIT) != b"R":
                raise HolderError("the namespace's PID 1 did not start")
        except (HolderError, OSError, ValueError) as e:
            self.close()
            raise HolderError(f"sandbox setup failed: {e}") from e
        finally:
            os.close(c_r)
            os.close(k_w)

    def send(self, program: str, timeout: float, limits: dict, fds: tuple[int, int, int]
             ) -> None:
        body = program.encode("utf-8", "surrogatepass")
        head = json.dumps({"timeout": timeout, "limits": limits, "n": len(body)}).encode()
        socket.send_fds(self.sock, [struct.pack(">I", len(head))], list(fds))
        self.sock.sendall(head + body)

    def line(self, wait: float) -> bytes | None:
        """B's next message line, or None when B stays silent (the caller ends the namespace)."""
        end = time.monotonic() + wait
        while b"\n" not in self.buf:
            left = max(0.0, end - time.monotonic())
            if not select.select([self.sock], [], [], left)[0]:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                return b"S" + b"the namespace's PID 1 died"
            self.buf += chunk
        out, _, self.buf = self.buf.partition(b"\n")
        return out

    def close(self, wait: float = 5.0) -> bool:
        """SIGKILL B (the kernel then kills the whole namespace) and reap A; True once empty."""
        gone = True
        if self.b_fd is not None:
            try:
                signal.pidfd_send_signal(self.b_fd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            gone = bool(select.select([self.b_fd], [], [], wait)[0])
            os.close(self.b_fd)
            self.b_fd = None
        try:
            os.kill(self.a, signal.SIGKILL)  # our own unreaped child: the pid is still ours
            os.waitpid(self.a, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.sock.close()
        return gone


def _read_line(fd: int, wait: float) -> bytes:
    buf = b""
    end = time.monotonic() + wait
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b"Stimed out"
        chunk = os.read(fd, 4096)
        if not chunk:
            return buf or b"S"
        buf += chunk
    return buf.split(b"\n", 1)[0]


def _start_a(zygote_pid, as_root, uid, gid, sock_fd, c_w, k_r) -> None:
    """A: unshare, fork B, tell the zygote B's pid, wait for B. Never returns."""
    try:
        isolate.null_stdio()
        close_fds_except((sock_fd, c_w, k_r))  # incl. the zygote's protocol pipes
        arm_pdeathsig(zygote_pid)
        isolate.enter_namespaces(as_root, uid, gid)
        arm_pdeathsig(zygote_pid)
        life_r, life_w = os.pipe()  # only A writes: EOF in B means A is gone
        b = os.fork()
        if b == 0:
            os.close(life_w)
            os.close(c_w)
            os.close(k_r)
            arm_pdeathsig(None, life_r)
            _holder(sock_fd, as_root, uid, gid)
        os.close(life_r)
        os.write(c_w, b"B%d\n" % b)
        os.read(k_r, 1)  # the zygote holds a pidfd for B now (or is gone: PDEATHSIG)
        relay(b, (sock_fd, c_w, k_r))
    except BaseException as e:
        try:
            os.write(c_w, b"S" + f"{e}"[:300].encode().replace(b"\n", b" ") + b"\n")
        finally:
            os._exit(70)


def _holder(sock_fd: int, as_root: bool, uid: int, gid: int) -> None:
    """B: set up the namespace once, then run programs one at a time. Never returns."""
    sock = socket.socket(fileno=sock_fd)
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # PID 1: no handler, no signal from inside
        keep = isolate.prepare_root()
        first = True
        sock.sendall(b"R\n")
        while (req := _recv(sock)) is not None:
            head, program, fds = req
            _one(sock, head, program, fds, keep, first, as_root, uid, gid)
            first = False
    except BaseException as e:
        try:
            sock.sendall(b"S" + f"{e}"[:300].encode().replace(b"\n", b" ") + b"\n")
        except BaseException:
            pass
    os._exit(0)


def _recv(sock: socket.socket) -> tuple[dict, str, list[int]] | None:
    data, fds, _, _ = socket.recv_fds(sock, 4, 3)
    while data and len(data) < 4:
        more = sock.recv(4 - len(data))
        if not more:
            break
        data += more
    if len(data) < 4 or len(fds) != 3:
        return None
    head = json.loads(_recv_exact(sock, struct.unpack(">I", data)[0]))
    program = _recv_exact(sock, head["n"]).decode("utf-8", "surrogatepass")
    return head, program, fds


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("the zygote went away")
        buf += chunk
    return bytes(buf)


def _one(sock, head, program, fds, keep, first, as_root, uid, gid) -> None:
    out_w, v_w, n_r = fds
    limits, timeout = head["limits"], float(head["timeout"])
    cwd = isolate.fresh_tmp(2 * limits["file_size_mb"] + 8, keep, first=first)
    s_r, s_w = os.pipe()  # C's set-up failure; closed before the program runs
    pid = os.fork()
    if pid == 0:
        _sample(program, timeout, limits, cwd, out_w, v_w, n_r, s_w, as_root, uid, gid)
    for fd in (out_w, v_w, n_r, s_w):
        os.close(fd)
    sock.sendall(b"C%d\n" % pid)
    _, status = os.waitpid(pid, 0)
    failed = drain(s_r, 300)
    os.close(s_r)
    if failed:
        sock.sendall(b"S" + failed.replace(b"\n", b" ") + b"\n")
    sock.sendall(b"X%d\n" % status)
    _sweep()
    sock.sendall(b"D\n")


def _sample(program, timeout, limits, cwd, out_w, v_w, n_r, s_w, as_root, uid, gid) -> None:
    """C: drop privileges, enter the sample's directory and limits, run. Never returns."""
    try:
        close_fds_except((out_w, v_w, n_r, s_w))  # the socket to the zygote above all
        isolate.set_pdeathsig()
        isolate.drop_privileges(as_root, uid, gid)
        isolate.set_pdeathsig()  # dropping privileges cleared it
        enter(cwd, limits, timeout)
        redirect(out_w)
        os.close(s_w)
    except BaseException as e:
        try:
            os.write(s_w, f"sandbox setup failed: {e}"[:300].encode())
        finally:
            os._exit(70)
    run_untrusted(program, v_w, n_r)


def _sweep() -> None:
    """Kill and reap every process of the namespace except PID 1 (us)."""
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return  # nothing left, zombies included
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:  # not yet reparented to us: a dying parent still holds it
            time.sleep(0.001)
