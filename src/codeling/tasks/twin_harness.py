"""The twin-check harness: not imported, but sent as program text to the sandbox by twins.py,
after a line `_TW_CONFIG = (evals, candidates, tag, mark, control)`.

It defines each evaluation task once (prompt + canonical solution + test, each in its own
namespace), then each candidate in its own namespace, binds it under the evaluation's entry
point and calls `check`, every call under a CPU-time budget. It writes to a private copy of
stdout, space-separated: `.` after each candidate, preceded by `H<i>:<e>,<e>` (hex) for the
evaluation tasks candidate i passed; `B<i>` if candidate i swallowed its alarm (then it exits),
`C<chars>` for calibration (one character per evaluation task) and `E<tag>` when complete.
"""
import _signal as _tw_signal  # the C module: signal.signal's enum wrapping costs per call
import copy as _tw_copy
import io as _tw_io
import os as _tw_os
import sys as _tw_sys
import time as _tw_time

_TW_EVALS, _TW_CANDS, _TW_TAG, _TW_CONTROL = globals().get("_TW_CONFIG", ([], [], "", False))


class _TwTimeout(BaseException):
    pass


# alarm fires in this call, current candidate, call timed out, its CPU start, its CPU budget
_tw_state = [0, -1, False, 0.0, 1.0]
_tw_clock = _tw_time.process_time
_TW_FD = 120  # results go to a private copy of stdout (made in _tw_main)
_tw_open = open


def _tw_safe_open(file, *args, **kwargs):
    if isinstance(file, int):  # evaluation inputs are often small ints: not our descriptors
        raise OSError("integer file descriptors are not available here")
    return _tw_open(file, *args, **kwargs)


_TW_BUILTINS = dict(__builtins__ if isinstance(__builtins__, dict) else vars(__builtins__))
_TW_BUILTINS["open"] = _tw_safe_open


def _tw_on_alarm(signum, frame):
    if _tw_clock() - _tw_state[3] < _tw_state[4]:
        return  # the machine was busy, not the candidate: the interval timer fires again
    _tw_state[0] += 1
    _tw_state[2] = True
    if _tw_state[0] > 20:  # the candidate swallows the alarm: give up on it, name it
        _tw_os.write(_TW_FD, f" B{_tw_state[1]}".encode())
        _tw_os._exit(3)
    raise _TwTimeout()


def _tw_call(thunk, alarm, install=True):
    """thunk() under a CPU-time budget of `alarm` seconds; None if it raised or ran over."""
    _tw_state[0], _tw_state[2], _tw_state[4] = 0, False, alarm
    try:
        try:
            if install:
                _tw_signal.signal(_tw_signal.SIGALRM, _tw_on_alarm)
            _tw_state[3] = _tw_clock()
            # a wall-clock timer, checked against CPU time; it re-fires if swallowed
            _tw_signal.setitimer(_tw_signal.ITIMER_REAL, alarm, max(alarm / 4, 0.0005))
            return thunk()
        finally:
            _tw_signal.setitimer(_tw_signal.ITIMER_REAL, 0)
    except BaseException:
        return None


def _tw_plus_screen(ns, entry):
    """evalplus: the first input, compared as the full check compares it."""
    need = ("_CL_INPUTS", "_CL_SHAPE", "_CL_REF_SRC", "_cl_restore", "_cl_same")
    if entry == "find_zero" or not all(k in ns for k in need) or not ns["_CL_INPUTS"]:
        return None
    args, shape = ns["_CL_INPUTS"][0], ns["_CL_SHAPE"]
    if shape:
        args = [ns["_cl_restore"](a, s, True) for a, s in zip(args, shape)]
    ref = {"__name__": "_tw_reference"}
    exec(ns["_CL_REF_SRC"], ref)
    exp = ref[ns["_CL_ENTRY"]](*_tw_copy.deepcopy(args))
    same = ns["_cl_same"]
    if all(map(_tw_frozen, args)):  # nothing the candidate could mutate: skip the copy
        return lambda fn: same(fn(*args), exp)
    if all(_tw_frozen(a) or (type(a) is list and all(map(_tw_frozen, a))) for a in args):
        return lambda fn: same(fn(*[a if type(a) is not list else a[:] for a in args]), exp)
    return lambda fn: same(fn(*_tw_copy.deepcopy(args)), exp)


def _tw_frozen(x):
    if type(x) is tuple:
        return all(map(_tw_frozen, x))
    return type(x) in (int, float, str, bool, bytes, complex, type(None))


def _tw_env(src, entry, alarm, short):
    ns = {"__name__": "_tw_eval"}
    exec(compile(src, "<eval>", "exec"), ns)
    own_alarm = "_CL_REF_SRC" in ns  # evalplus checks install their own SIGALRM handler
    return (ns, entry, ns["check"], ns[entry], _tw_plus_screen(ns, entry), alarm, short,
            own_alarm)


def _tw_judge(env, fn):
    ns, entry, check, _, screen = env[:5]
    if screen is not None and not screen(fn):
        return False
    ns[entry] = fn
    check(fn)
    return True


def _tw_define(src, entry):
    """The candidate's function, from its own namespace (with the guarded `open`)."""
    ns = {"__name__": "_tw_candidate", "__builtins__": _TW_BUILTINS}
    exec(compile(src, "<candidate>", "exec"), ns)
    return ns[entry]


def _tw_bucket(seconds):
    """One character per calibrated task: '0' = cannot judge, else log2 of microseconds."""
    return chr(ord("a") + min(25, int(seconds * 1e6).bit_length()))


def _tw_cap_memory(headroom=1 << 30):
    """Cap the address space at what the evaluation tasks took plus `headroom`: a candidate's
    huge allocation then fails at once instead of grinding in C code no alarm interrupts."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * _tw_os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = size + headroom
        if (hard == resource.RLIM_INFINITY or want < hard) and \
                (soft == resource.RLIM_INFINITY or want < soft):
            resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    except (OSError, ValueError, ImportError):
        pass


def _tw_main():
    _tw_os.dup2(1, _TW_FD)  # `open(1)` on an integer input would close fd 1
    out = _tw_sys.stdout
    sink = _tw_io.StringIO()
    _tw_sys.stdout = _tw_sys.stderr = sink  # a candidate's prints must not fill the reply
    envs = [_tw_call(lambda a=a: _tw_env(*a), 10.0) for a in _TW_EVALS]
    _tw_cap_memory()
    if _TW_CONTROL:  # calibration: each evaluation task judged with its own solution
        marks = []
        for env in envs:
            t0 = _tw_time.perf_counter()
            ok = env is not None and _tw_call(lambda e=env: _tw_judge(e, e[3]), 10.0) is True
            marks.append(_tw_bucket(_tw_time.perf_counter() - t0) if ok else "0")
        _tw_os.write(_TW_FD, (" C" + "".join(marks)).encode())
    for ci, (src, entry) in enumerate(_TW_CANDS):
        _tw_state[1] = ci
        fn = _tw_call(lambda s=src, e=entry: _tw_define(s, e), 1.0)
        if fn is None:
            _tw_os.write(_TW_FD, b" .")
            continue
        strikes = 0  # a candidate that keeps timing out gets only a short alarm afterwards
        install = True  # our SIGALRM handler, again after anything that replaced it
        hits = []
        for ei, env in enumerate(envs):
            if env is None:
                continue
            alarm = env[5] if strikes < 3 else env[6]
            if _tw_call(lambda e=env, f=fn: _tw_judge(e, f), alarm, install) is True:
                hits.append(f"{ei:x}")
            elif _tw_state[2] or _tw_clock() - _tw_state[3] > env[6]:
                strikes += 1
            install = env[7]
        # one write per candidate: its hits (hex, the reply holds 2048 characters), then "."
        _tw_os.write(_TW_FD, (f" H{ci:x}:{','.join(hits)}" if hits else "").encode() + b" .")
        sink.seek(0)
        sink.truncate()
    _tw_sys.stdout = out
    _tw_os.write(_TW_FD, (" E" + _TW_TAG).encode())


if "_TW_CONFIG" in globals():
    _tw_main()
