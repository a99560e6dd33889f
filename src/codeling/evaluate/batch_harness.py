"""The batch harness: not imported, but sent as program text by batch.py after a line
`_CB_CONFIG = (programs, codes, timeout, output_bytes)`.

It runs each program as the sandbox runs one alone: its own globals named `__main__`, an empty
working directory, stdout/stderr of its own, a wall-clock alarm of `timeout` seconds. After
each it writes one character to a private copy of stdout: "p" if it ran to the end, the code of
its exception's type name from `codes` if running it alone fails the same way, "?" for anything
else (a timeout, too much output, another exception: batch.py judges those alone).
What a program changes that the next could notice is put back: the recursion limit, sys.path,
the environment, builtins, warning filters, the decimal context (not attributes it sets on a
module it imported: the programs are of known origin, see batch.py). What cannot be put back (a
thread left running, our alarm handler replaced, files outside its directory) ends the batch
before its record is written, so batch.py judges that program alone and the rest in a new batch.
"""
import _signal as _cb_signal  # the C module: signal.signal's enum wrapping costs per call
import builtins as _cb_builtins
import decimal as _cb_decimal
import gc as _cb_gc
import io as _cb_io
import os as _cb_os
import shutil as _cb_shutil
import sys as _cb_sys
import threading as _cb_threading
import warnings as _cb_warnings

_CB_PROGS, _CB_CODES, _CB_TIMEOUT, _CB_OUT = globals().get("_CB_CONFIG", ([], {}, 1.0, 1))
_CB_FD = 121  # records go to a private copy of stdout; fds 1 and 2 go to /dev/null
_cb_fires = [0]
_cb_forked = [False]  # alone, a fork's child would report a verdict of its own


class _CbTimeout(BaseException):
    pass


def _cb_on_alarm(signum, frame):
    _cb_fires[0] += 1
    if _cb_fires[0] > 20:  # the program swallows the alarm: batch.py judges it alone
        _cb_os._exit(3)
    raise _CbTimeout()


def _cb_one(program):
    """The program's code ('p', an exception's code or '?'), and its output."""
    sink = _cb_io.StringIO()
    _cb_sys.stdout = _cb_sys.stderr = sink
    _cb_fires[0] = 0
    try:
        try:
            _cb_signal.setitimer(_cb_signal.ITIMER_REAL, _CB_TIMEOUT, 0.05)
            exec(compile(program, "<sample>", "exec"),
                 {"__name__": "__main__", "__builtins__": _cb_builtins})
            code = "p"
        except _CbTimeout:
            code = "?"
        except BaseException as e:  # what the program raised is its verdict
            code = _CB_CODES.get(type(e).__name__, "?")
        finally:
            _cb_signal.setitimer(_cb_signal.ITIMER_REAL, 0)
    except _CbTimeout:  # fired between the program's end and the timer's reset
        code = "?"
    return code, sink


def _cb_main():
    _cb_os.dup2(1, _CB_FD)
    null = _cb_os.open(_cb_os.devnull, _cb_os.O_WRONLY)
    _cb_os.dup2(null, 1)  # a program's os.write(1, ...) must not reach the records
    _cb_os.dup2(null, 2)
    out, err = _cb_sys.stdout, _cb_sys.stderr
    pid, base = _cb_os.getpid(), _cb_os.getcwd()
    present = sorted(_cb_os.listdir(base))
    limit, path, env = _cb_sys.getrecursionlimit(), list(_cb_sys.path), dict(_cb_os.environ)
    digits, filters = _cb_sys.get_int_max_str_digits(), list(_cb_warnings.filters)
    context = _cb_decimal.getcontext().copy()
    names = vars(_cb_builtins)
    kept = dict(names)
    _cb_signal.signal(_cb_signal.SIGALRM, _cb_on_alarm)
    _cb_os.register_at_fork(after_in_parent=lambda: _cb_forked.__setitem__(0, True))
    for i, program in enumerate(_CB_PROGS):
        work = _cb_os.path.join(base, f"_cb{i}")
        _cb_os.mkdir(work)
        _cb_os.chdir(work)
        code, sink = _cb_one(program)
        if _cb_os.getpid() != pid:  # a fork of the program's returned here: it has no say
            _cb_os._exit(0)
        _cb_sys.stdout, _cb_sys.stderr = out, err
        if sink.tell() * 4 > _CB_OUT or _cb_forked[0]:  # alone: the byte limit, a forged verdict
            code = "?"
            _cb_forked[0] = False
        _cb_os.chdir(base)
        _cb_shutil.rmtree(work, ignore_errors=True)
        _cb_sys.setrecursionlimit(limit)
        _cb_sys.set_int_max_str_digits(digits)
        _cb_warnings.filters[:] = filters
        _cb_decimal.setcontext(context.copy())
        _cb_sys.path[:] = path
        if _cb_os.environ != env:
            _cb_os.environ.clear()
            _cb_os.environ.update(env)
        if names != kept:
            for k in [k for k in names if k not in kept]:
                del names[k]
            names.update(kept)
        tainted = (_cb_threading.active_count() > 1 or sorted(_cb_os.listdir(base)) != present
                   or _cb_signal.getsignal(_cb_signal.SIGALRM) is not _cb_on_alarm)
        if tainted:
            _cb_os._exit(0)
        _cb_os.write(_CB_FD, code.encode())
        if i % 64 == 63:  # programs' namespaces are cycles: free them (and their files)
            _cb_gc.collect()


if "_CB_CONFIG" in globals():
    _cb_main()
