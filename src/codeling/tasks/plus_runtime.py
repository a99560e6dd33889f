"""The runtime half of the plus checks: program text that runs inside the sandbox.

tasks/plus.py fills `RUNTIME` in per task and appends one tail: `SELF_CONTAINED` (the
reference runs per sample), `JUDGED` (measured outputs embedded) or `ORACLE` (measures the
reference). The text is part of the reference cache's key (evaluate/plus_oracle.py): any edit
here measures every reference again.
"""

RUNTIME = r"""
import copy as _cl_copy
import hashlib as _cl_hashlib
import json as _cl_json
import math as _cl_math
import pickle as _cl_pickle
import signal as _cl_signal
import time as _cl_time

_CL_REF_SRC = {ref_src!r}
_CL_ENTRY = {entry!r}
_CL_ATOL = {atol!r}
_CL_MODE = {mode!r}
_CL_SPECIAL = {special!r}
_CL_N_BASE = {n_base!r}
_CL_SHAPE = _cl_json.loads({shape!r})
_CL_INPUTS = _cl_json.loads({inputs!r})


def _cl_restore(value, shape, top=False):
    if shape is None:
        return value
    kind = shape[0]
    if kind == "num":  # evalplus serialises complex (and some float) arguments as strings
        if top and isinstance(value, str):
            try:
                return complex(value) if "j" in value else float(value)
            except ValueError:
                return value
        return value
    if kind == "dict" and isinstance(value, dict):
        return {{k: _cl_restore(v, shape[1]) for k, v in value.items()}}
    if kind in ("tuple", "list", "tuple*") and isinstance(value, list):
        inner = shape if kind == "tuple*" else shape[1]
        items = [_cl_restore(v, inner) for v in value]
        return items if kind == "list" else tuple(items)
    return value


def _cl_args(i):
    args = _CL_INPUTS[i]
    return [_cl_restore(a, s, True) for a, s in zip(args, _CL_SHAPE)] if _CL_SHAPE else args


def _cl_floats(x):
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(i, float) for i in x)


def _cl_close(a, b, atol):
    # numpy.allclose(a, b, rtol=1e-7, atol=atol) on numbers and nested sequences of them
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_cl_close(x, y, atol) for x, y in zip(a, b))
    num = (bool, int, float, complex)
    if not isinstance(a, num) or not isinstance(b, num):
        return False
    try:
        return a == b or abs(a - b) <= atol + 1e-7 * abs(b)
    except (TypeError, OverflowError):
        return False


def _cl_same(got, exp, args=None):
    special = _CL_SPECIAL
    if special == "any":
        return True
    if special == "not_none":  # the reference's output is reduced to "is it not None"
        exp = exp if isinstance(exp, bool) else exp is not None
        return got == exp if isinstance(got, bool) else exp == (got is not None)
    if _CL_MODE == "set":
        try:
            return set(got) == set(exp)
        except TypeError:
            return False
    try:
        if bool(got == exp):
            return True
    except Exception:
        return False
    if special == "zero" and got == 0:
        return True
    if special in ("surface_area", "digit_distance") and args is not None:
        try:
            return got == exp or bool(_cl_alt(special, args, got))
        except Exception:
            return False
    atol = _CL_ATOL or (1e-6 if _cl_floats(exp) else 0)
    if not atol or type(got) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)) and len(got) != len(exp):
        return False
    return _cl_close(got, exp, atol)


def _cl_alt(special, args, got):
    if special == "surface_area":  # Mbpp/581: the height read as the pyramid's perpendicular
        edge, height = args
        slant = _cl_math.sqrt((edge / 2) ** 2 + height ** 2)
        return abs(got - round(edge ** 2 + 2 * edge * slant)) <= _CL_ATOL
    a, b = str(args[0]), str(args[1])  # Mbpp/558: the shorter number padded with zeros
    n = max(len(a), len(b))
    return got == sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(n), b.zfill(n)))


def _cl_digest(x):
    # sha256 of a value made of str, int, float, list, tuple, None: equal digests iff `==`
    # (an integral float counts as its int, as 2.0 == 2); None when x holds anything else
    h = _cl_hashlib.sha256()
    stack = [x]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str:
            b = v.encode("utf-8", "surrogatepass")
            h.update(b"s%d:" % len(b))
            h.update(b)
        elif t is int or t is bool or (t is float and v.is_integer()):
            n = int(v)
            h.update(b"i" + n.to_bytes(n.bit_length() // 8 + 1, "little", signed=True))
        elif t is float:
            h.update(b"f" + v.hex().encode())
        elif t is list or t is tuple:
            h.update(b"%s%d:" % (b"L" if t is list else b"T", len(v)))
            stack.extend(reversed(v))
        elif v is None:
            h.update(b"N")
        else:
            return None
    return h.hexdigest()


class _ClSha:
    # a file for pickle whose writes go into a sha256, so no copy of the pickle is kept
    def __init__(self):
        self.h = _cl_hashlib.sha256()
        self.write = self.h.update


def _cl_fast_digest(x):
    # sha256 of x's pickle without a memo (equal values pickle alike however they share
    # objects): same bytes means the same builtin types and values, so `==` holds (a few
    # C calls, where _cl_digest walks every element); other bytes prove nothing, and the
    # caller then takes _cl_digest's word (2 == 2.0, True == 1, -0.0 == 0.0)
    f = _ClSha()
    try:
        p = _cl_pickle.Pickler(f, 4)
        p.fast = True
        p.dump(x)
    except Exception:
        return None
    return f.h.hexdigest()


class _ClTimeout(BaseException):
    pass


def _cl_on_prof(signum, frame):
    raise _ClTimeout()


def _cl_call(fn, args, limit):
    # a CPU-time limit (ITIMER_PROF): a busy machine slows the wall clock, not this
    _cl_signal.setitimer(_cl_signal.ITIMER_PROF, limit)
    try:
        return fn(*args)
    finally:
        _cl_signal.setitimer(_cl_signal.ITIMER_PROF, 0)


def _cl_judge(candidate, i, exp, limit):
    part, k = ("base", i) if i < _CL_N_BASE else ("plus", i - _CL_N_BASE)
    args = _cl_args(i)
    try:
        got = _cl_call(candidate, args, limit)
    except _ClTimeout:
        raise AssertionError(f"{{part}} input {{k}}: timed out") from None
    except BaseException as e:  # what the candidate raised, whatever it is, fails this input
        raise AssertionError(f"{{part}} input {{k}}: {{type(e).__name__}}") from None
    if _CL_ENTRY == "find_zero":
        ok = abs(_CL_REF["poly"](args[0], got)) <= _CL_ATOL
    elif i in _CL_DIGESTS:  # a large output, kept as its digests: the fast one, then exact
        fast = _CL_FAST.get(i)
        ok = (fast is not None and _cl_fast_digest(got) == fast) \
            or _cl_digest(got) == _CL_DIGESTS[i]
    else:
        ok = _cl_same(got, exp, args)
    if not ok:
        raise AssertionError(f"{{part}} input {{k}}: wrong output")


_CL_REF = {{"__name__": "_codeling_reference"}}
exec(_CL_REF_SRC, _CL_REF)
_CL_DIGESTS = {{}}
_CL_FAST = {{}}
"""

SELF_CONTAINED = r"""

def check(candidate):
    _cl_signal.signal(_cl_signal.SIGPROF, _cl_on_prof)
    reference = _CL_REF[_CL_ENTRY]
    for i in range(len(_CL_INPUTS)):
        start = _cl_time.process_time()
        exp = reference(*_cl_copy.deepcopy(_cl_args(i)))
        if _CL_SPECIAL == "not_none":
            exp = exp is not None
        _cl_judge(candidate, i, exp, max(1.0, 4 * (_cl_time.process_time() - start)))
"""

JUDGED = r"""
import base64 as _cl_base64

_CL_SPECIAL = {special!r}
_CL_EXPECTED = _cl_pickle.loads(_cl_base64.b64decode({expected!r}))
_CL_DIGESTS = {{int(k): v for k, v in {digests!r}.items()}}
_CL_FAST = {{int(k): v for k, v in {fast!r}.items()}}
_CL_LIMIT = {limit!r}  # CPU seconds per input, but for those in _CL_LIMITS (a long list
_CL_LIMITS = {limits!r}  # of float literals took as long to compile as the program)
_CL_STOP = {stop!r}  # None, or the number of inputs to run (the base inputs alone)


def check(candidate):
    _cl_signal.signal(_cl_signal.SIGPROF, _cl_on_prof)
    for i, exp in enumerate(_CL_EXPECTED[:_CL_STOP]):
        _cl_judge(candidate, i, exp, _CL_LIMITS.get(i, _CL_LIMIT))
"""

ORACLE = r"""
import base64 as _cl_base64

_cl_fn = _CL_REF[_CL_ENTRY]
_cl_out, _cl_times, _cl_digests, _cl_fast = [], [], {{}}, {{}}
_cl_plain = _CL_MODE == "eq" and not _CL_SPECIAL and not _CL_ATOL and _CL_ENTRY != "find_zero"
for _cl_i in range(len(_CL_INPUTS)):
    _cl_a = _cl_copy.deepcopy(_cl_args(_cl_i))
    _cl_t = _cl_time.process_time()
    _cl_r = _cl_fn(*_cl_a)
    _cl_times.append(_cl_time.process_time() - _cl_t)
    if _CL_SPECIAL == "not_none":
        _cl_r = _cl_r is not None
    # outputs too large to send with every sample (HumanEval/15's strings: 150 MB) go as digests
    if _cl_plain and len(_cl_pickle.dumps(_cl_r, 4)) > {big} \
            and (_cl_d := _cl_digest(_cl_r)) is not None:
        _cl_digests[_cl_i], _cl_fast[_cl_i], _cl_r = _cl_d, _cl_fast_digest(_cl_r), None
    _cl_out.append(_cl_r)
print(_cl_json.dumps({{"times": _cl_times, "digests": _cl_digests, "fast": _cl_fast,
                      "expected": _cl_base64.b64encode(_cl_pickle.dumps(_cl_out, 4)).decode()}}))
"""
