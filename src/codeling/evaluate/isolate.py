"""Linux isolation primitives for the sandbox: namespaces, mounts, privileges, rlimits.

Everything here runs inside a freshly forked child of the zygote, before untrusted code starts.
Only the standard library and ctypes are used, so no helper binary (bwrap) is needed; where the
kernel refuses namespaces, the sandbox falls back to rlimits alone and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 32, 4096, 16384, 1 << 18)
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(src: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(_libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "prctl(PDEATHSIG)")


def no_new_privs() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Clear every capability (used in user-namespace mode, where we keep our uid)."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def namespace_flags(as_root: bool) -> int:
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    return flags if as_root else flags | CLONE_NEWUSER


def enter_namespaces(as_root: bool, uid: int, gid: int) -> None:
    """Unshare; the caller's next child is PID 1 of a new PID namespace."""
    unshare(namespace_flags(as_root))
    if not as_root:
        # map our own ids; we keep full capabilities inside until drop_capabilities()
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")


def _mountpoints() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].encode().decode("unicode_escape") for line in f]
    return sorted(set(points), key=len)


def _needed_paths() -> list[str]:
    """Interpreter paths the sandboxed code must still import from."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted({os.path.realpath(p) for p in paths})


def _hidden_dirs() -> list[str]:
    dirs = {"/root", "/home", os.path.expanduser("~")}
    return sorted(d for d in dirs if d != "/" and os.path.isdir(d))


def _covered(path: str, dirs: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


TMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
MNT_DETACH = 2


def prepare_root() -> list[tuple[str, int]]:
    """Read-only host, home directories hidden, our own /proc (a new mount namespace).

    Returns the interpreter paths that a tmpfs from `fresh_tmp` will cover (a venv in /tmp,
    /root/.pyenv), each with an O_PATH fd to bind it back from.
    """
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    hidden = _hidden_dirs()
    tmps = [d for d in TMP_DIRS if os.path.isdir(d)]
    # keep the interpreter importable where a tmpfs will cover it (/root/.pyenv, a venv in /tmp)
    needed = [p for p in _needed_paths() if _covered(p, hidden + tmps)]
    needed = [p for p in needed if not _covered(p, [q for q in needed if q != p])]
    keep = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in needed]
    for mp in _mountpoints():
        try:
            mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        except OSError:
            pass  # locked or special mounts; the unprivileged uid still cannot write them
    for d in hidden:
        mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path, fd in keep:
        if _covered(path, hidden):
            _bind_back(path, fd)
            os.close(fd)
    for d in hidden:
        mount(None, d, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    try:  # our own /proc: the host's processes are invisible
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV)
    except OSError:
        mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
    return [(p, fd) for p, fd in keep if not _covered(p, hidden)]


def _bind_back(path: str, fd: int) -> None:
    os.makedirs(path, exist_ok=True)
    mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def fresh_tmp(tmpfs_mb: int, keep: list[tuple[str, int]], first: bool = False) -> str:
    """Empty private tmpfs on /tmp, /var/tmp and /dev/shm (the previous ones, and whatever a
    program left in them, are detached); returns the sample's working directory."""
    opts = f"size={tmpfs_mb}m,mode=1777"
    for d in TMP_DIRS:
        if not os.path.isdir(d):
            continue
        if not first:
            _check(_libc.umount2(d.encode(), MNT_DETACH), f"umount {d}")
        mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, opts)
    for path, fd in keep:
        _bind_back(path, fd)
    os.makedirs("/tmp/sample", mode=0o777, exist_ok=True)
    os.chmod("/tmp/sample", 0o777)
    return "/tmp/sample"


def setup_filesystem(tmpfs_mb: int) -> str:
    """`prepare_root` and one `fresh_tmp`; returns the sample's working directory."""
    keep = prepare_root()
    cwd = fresh_tmp(tmpfs_mb, keep, first=True)
    for _, fd in keep:
        os.close(fd)
    return cwd


def drop_privileges(as_root: bool, uid: int, gid: int) -> None:
    if as_root:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    else:
        drop_capabilities()
    no_new_privs()


def set_limits(memory_mb: int, cpu_s: int, fsize_mb: int, nproc: int, nofile: int) -> None:
    def lim(which: int, value: int) -> None:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    lim(resource.RLIMIT_AS, memory_mb << 20)
    lim(resource.RLIMIT_CPU, cpu_s)
    lim(resource.RLIMIT_FSIZE, fsize_mb << 20)
    lim(resource.RLIMIT_NPROC, nproc)
    lim(resource.RLIMIT_NOFILE, nofile)
    lim(resource.RLIMIT_CORE, 0)


def null_stdio() -> None:
    """fds 0-2 of a fresh child are the zygote's, i.e. the evaluator's stderr: a caller that
    captures it would wait for every process holding it, so children never keep them."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def probe(mode: str) -> str:
    """Try namespace isolation once in a throwaway child; returns the mode that works."""
    if mode != "namespaces":
        return mode
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            null_stdio()
            enter_namespaces(os.geteuid() == 0, os.getuid(), os.getgid())
            b = os.fork()
            if b == 0:
                setup_filesystem(tmpfs_mb=1)
                os._exit(0)
            _, st = os.waitpid(b, 0)
            os.write(w, b"ok" if st == 0 else b"no")
        except BaseException:
            os.write(w, b"no")
        os._exit(0)
    os.close(w)
    ok = os.read(r, 2) == b"ok"
    os.close(r)
    os.waitpid(pid, 0)
    return "namespaces" if ok else "rlimits"
