"""evalplus records (HumanEval+, MBPP+) → tasks whose `check` runs the base and plus inputs.

evalplus ships inputs, not outputs: expected outputs are whatever the canonical solution
returns. So the generated test embeds the reference source and the inputs, and `check(candidate)`
runs, for every input, the reference (in its own namespace) and the candidate on deep copies of
the arguments, then compares:
- equal (`==`), or for float results (a float or a list/tuple of floats, or a task with a
  non-zero `atol`) every number within `atol` (1e-6 when the record says 0) plus a relative
  1e-7, with matching types and lengths, as evalplus does;
- MBPP+ tasks whose published assert wraps the call in `set(...)` compare as sets;
- a reference that returns a `re.Match` only fixes whether a match exists (None or not);
- HumanEval/32 (`find_zero`) accepts any x with |poly(xs, x)| <= atol, as the original test
  does (any root is right; evalplus 0.3.1 cannot pass this task).

JSON has no tuples, complex numbers or sets, so MBPP+ inputs lose their types. They are restored
by following the literal types of the arguments in the task's first published assert (a tuple
literal → the JSON list becomes a tuple, recursively when tuples nest; a numeric literal whose
JSON value is a string → `complex` if it has a `j`, else `float`). This replaces evalplus's
hand-written per-task table with a rule; expected values come from the reference run on the
same restored inputs, so both sides always see identical arguments.
"""

from __future__ import annotations

import ast
import json
import re

from codeling.tasks.mbpp import guess_category
from codeling.tasks.schema import Task

# The runtime half lives inside every test program (it runs in the sandbox, not here).
_CHECK = r'''
import copy as _cl_copy
import json as _cl_json
import math as _cl_math
import re as _cl_re
import signal as _cl_signal
import time as _cl_time

_CL_REF_SRC = {ref_src!r}
_CL_ENTRY = {entry!r}
_CL_ATOL = {atol!r}
_CL_MODE = {mode!r}
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


def _cl_floats(x):
    if isinstance(x, float):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(i, float) for i in x)


def _cl_num_close(a, b, atol):
    try:
        if _cl_math.isnan(a) and _cl_math.isnan(b):
            return True
        return _cl_math.isclose(a, b, rel_tol=1e-7, abs_tol=atol)
    except TypeError:
        return False


def _cl_same(got, exp):
    if _CL_MODE == "set":
        try:
            return set(got) == set(exp)
        except TypeError:
            return False
    if isinstance(exp, _cl_re.Match) or exp is None and isinstance(got, _cl_re.Match):
        return (got is None) == (exp is None)
    try:
        if bool(got == exp):
            return True
    except Exception:
        return False
    atol = _CL_ATOL or (1e-6 if _cl_floats(exp) else 0)
    if not atol or type(got) is not type(exp):
        return False
    if isinstance(exp, (list, tuple)):
        return len(got) == len(exp) and all(_cl_num_close(g, e, atol) for g, e in zip(got, exp))
    return _cl_num_close(got, exp, atol)


def _cl_alarm(signum, frame):
    raise TimeoutError("slower than the per-input limit")


def check(candidate):
    ref_ns = {{"__name__": "_codeling_reference"}}
    exec(_CL_REF_SRC, ref_ns)
    reference = ref_ns[_CL_ENTRY]
    _cl_signal.signal(_cl_signal.SIGALRM, _cl_alarm)
    for i, args in enumerate(_CL_INPUTS):
        args = [_cl_restore(a, s, True) for a, s in zip(args, _CL_SHAPE)] if _CL_SHAPE else args
        start = _cl_time.perf_counter()
        exp = reference(*_cl_copy.deepcopy(args))
        # evalplus's rule: each input may take max(1 s, 4 x the reference's time)
        _cl_signal.setitimer(_cl_signal.ITIMER_REAL, max(1.0, 4 * (_cl_time.perf_counter() - start)))
        try:
            got = candidate(*_cl_copy.deepcopy(args))
        finally:
            _cl_signal.setitimer(_cl_signal.ITIMER_REAL, 0)
        if _CL_ENTRY == "find_zero":
            assert abs(ref_ns["poly"](args[0], got)) <= _CL_ATOL, f"input {{i}}: not a root"
            continue
        assert _cl_same(got, exp), f"input {{i}}: wrong output"
'''


def _shape(node: ast.expr) -> list | None:
    """The type shape of an argument literal: what JSON lost, to put back."""
    if isinstance(node, ast.Tuple | ast.List):
        kind = "tuple" if isinstance(node, ast.Tuple) else "list"
        inner = [s for s in map(_shape, node.elts) if s is not None]
        if kind == "tuple" and any(s[0] in ("tuple", "tuple*") for s in inner):
            return ["tuple*"]  # nested tuples: every list below becomes a tuple
        return [kind, max(inner, key=lambda s: len(json.dumps(s))) if inner else None] \
            if inner or kind == "tuple" else None
    if isinstance(node, ast.Dict):
        inner = [s for s in map(_shape, node.values) if s is not None]
        return ["dict", inner[0]] if inner else None
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | complex) \
            and not isinstance(node.value, bool):
        return ["num"]
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        return _shape(node.operand)
    if isinstance(node, ast.BinOp):  # e.g. 3+4j
        return ["num"]
    return None


def _first_call(assertion: str, entry: str) -> tuple[ast.Call | None, bool]:
    """The entry-point call in the first assert, and whether it is compared as a set."""
    for stmt in ast.parse(assertion).body:
        if not isinstance(stmt, ast.Assert):
            continue
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "set" and node.args \
                    and isinstance(node.args[0], ast.Call) \
                    and getattr(node.args[0].func, "id", None) == entry:
                return node.args[0], True
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == entry:
                return node, False
    return None, False


def plus_test(record: dict) -> str:
    """The `test` source (defining `check(candidate)`) for one evalplus record."""
    entry = record["entry_point"]
    shape, mode = None, "eq"
    if "assertion" in record:  # MBPP+: restore tuples/complex from the published example
        call, as_set = _first_call(record["assertion"], entry)
        mode = "set" if as_set else "eq"
        if call is not None:
            shape = [_shape(a) for a in call.args]
    inputs = list(record["base_input"]) + list(record["plus_input"])
    return _CHECK.format(ref_src=record["prompt"] + record["canonical_solution"], entry=entry,
                         atol=record.get("atol") or 0, mode=mode, shape=json.dumps(shape),
                         inputs=json.dumps(inputs))


def _avoid_check_clash(record: dict) -> dict:
    """A function named `check` (Mbpp/56) would be shadowed by the test's own `check`: rename
    it to `check_input` in the prompt and the reference, as codeling's MBPP loader does."""
    if record["entry_point"] != "check":
        return record
    fix = re.compile(r"\bcheck\(")
    return {**record, "entry_point": "check_input",
            "prompt": fix.sub("check_input(", record["prompt"]),
            "canonical_solution": fix.sub("check_input(", record["canonical_solution"]),
            "assertion": fix.sub("check_input(", record.get("assertion", ""))}


def plus_to_task(record: dict, source: str, level: int = 2) -> Task:
    """A Task whose prompt and canonical solution are published ones and whose test is plus."""
    record = _avoid_check_clash(record)
    text = record["prompt"]
    return Task(task_id=record["task_id"], prompt=record["prompt"],
                entry_point=record["entry_point"],
                canonical_solution=record["canonical_solution"], test=plus_test(record),
                category=guess_category(text), level=level, source=source,
                extra={"n_inputs": len(record["base_input"]) + len(record["plus_input"]),
                       "atol": record.get("atol") or 0})
