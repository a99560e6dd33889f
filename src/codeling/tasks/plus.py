"""evalplus records (HumanEval+, MBPP+) → tasks whose `check` runs the base, then the plus inputs.

evalplus ships inputs, not outputs: expected outputs are whatever the canonical solution
returns. Two forms of the same check:
- `plus_test(record)`: self-contained. `check(candidate)` runs the reference (in its own
  namespace, on a deep copy) before the candidate on every input. Any harness can run it.
- `judged_test(record, oracle)`: the expected outputs and per-input limits were measured once
  (`oracle_program`, run in the sandbox; evaluate/plus_oracle.py caches them per machine), so
  only the candidate runs. This is what `codeling evaluate` uses. An output over DIGEST_OVER
  pickled bytes that is compared exactly travels as a sha256 digest of its value
  (`_cl_digest`: equal exactly when `==` is), not as the value, and as the sha256 of its
  pickle (`_cl_fast_digest`): a candidate output with the same pickle is equal at C speed,
  any other is judged by `_cl_digest`'s element-by-element walk.
Both compare as evalplus 0.3.1 does:
- equal (`==`), or for a float result (a float or a list/tuple of floats, or a task with a
  non-zero `atol`) the same type and length and every number within `atol` (1e-6 when the
  record says 0) + 1e-7 x |expected| (numpy.allclose's rule);
- evalplus's special oracles: MBPP+ tasks compared as sets (its list, and any whose published
  assert wraps the call in `set(...)`), tasks whose output only has to be "not None", Mbpp/164
  (any output), 295 (0 also accepted), 581 and 558 (an alternative reading of the task);
- HumanEval/32 (`find_zero`) accepts any x with |poly(xs, x)| <= atol, as the original test
  does (any root is right; evalplus 0.3.1 cannot pass this task: its `continue` skips the
  input's success mark).
Each candidate call gets max(1 s, 4 x the reference's time on that input) of CPU time
(evalplus's floor and factor; CPU time, not wall time, so a busy machine cannot turn a correct
sample into a timeout); the first failing input ends the check, as evalplus's fast check does,
with `AssertionError: <base|plus> input <i>: <why>`, which `split_status` reads back.

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
from collections import Counter

from codeling.tasks.mbpp import guess_category
from codeling.tasks.plus_runtime import JUDGED, ORACLE, RUNTIME, SELF_CONTAINED
from codeling.tasks.schema import Task

# evalplus 0.3.1's special oracles (evalplus/eval/_special_oracle.py), by task
SPECIAL = {"Mbpp/164": "any", "Mbpp/295": "zero", "Mbpp/581": "surface_area",
           "Mbpp/558": "digit_distance"}
# evalplus's oracles that accept answers regardless of the input: only `codeling evaluate`
# applies them; the self-contained check (and so the decontamination twin check) does not
LENIENT = ("any", "zero")
NOT_NONE_ENTRIES = ("check_str", "text_match_three", "text_starta_endb")
SET_ENTRIES = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
               "larg_nnum", "intersection_array", "find_dissimilar", "Diff")
FLOOR_S, FACTOR = 1.0, 4.0  # evalplus's per-input limit: max(floor, factor x reference time)
TIMEOUT_CAP_S = 60.0  # evalplus's EVALPLUS_TIMEOUT_PER_TASK
DIGEST_OVER = 4096  # pickled bytes above which an exactly compared output is kept as a digest


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
    """The self-contained `test` source (defining `check(candidate)`) for one evalplus record."""
    entry = record["entry_point"]
    shape, as_set = None, entry in SET_ENTRIES
    if "assertion" in record:  # MBPP+: restore tuples/complex from the published example
        call, in_set = _first_call(record["assertion"], entry)
        as_set |= in_set
        if call is not None:
            shape = [_shape(a) for a in call.args]
    special = SPECIAL.get(record["task_id"], "")
    if special in LENIENT:
        special = ""  # judged_test's alone: every function would be a twin of Mbpp/164
    if record["task_id"].startswith("Mbpp/") and entry in NOT_NONE_ENTRIES:
        special = "not_none"
    inputs = list(record["base_input"]) + list(record["plus_input"])
    return RUNTIME.format(
        ref_src=record["prompt"] + record["canonical_solution"], entry=entry,
        atol=record.get("atol") or 0, mode="set" if as_set else "eq", special=special,
        n_base=len(record["base_input"]), shape=json.dumps(shape),
        inputs=json.dumps(inputs)) + SELF_CONTAINED


def _runtime(task: Task) -> str | None:
    return task.test[:-len(SELF_CONTAINED)] if task.test.endswith(SELF_CONTAINED) else None


def is_plus(task: Task) -> bool:
    """Whether the task's test is a plus check this module built (and can judge faster)."""
    return _runtime(task) is not None


def oracle_program(task: Task) -> str:
    """A program that runs the reference on every input and prints one JSON line: the CPU
    seconds of each call and the pickled outputs (base64), which `judged_test` embeds."""
    return _runtime(task) + ORACLE.format(big=DIGEST_OVER)


def limits_from(times: list[float], floor: float = FLOOR_S, factor: float = FACTOR
                ) -> list[float]:
    """evalplus's per-input limit, max(floor, factor x the reference's time), in CPU seconds."""
    low = round(floor, 4)  # most inputs: a HumanEval+ run has 124k, so round only the others
    return [low if factor * t <= floor else round(factor * t, 4) for t in times]


def task_timeout(limits: list[float]) -> float:
    """The whole program's wall-clock limit, evalplus's: min(60 s, sum of the limits) + 1,
    and 1 s more for both the base and the plus run of evalplus being one run here."""
    return min(TIMEOUT_CAP_S, sum(limits)) + 2.0


def judged_test(task: Task, expected_b64: str, digests: dict[str, str], limits: list[float],
                base_only: bool = False, fast: dict[str, str | None] | None = None) -> str:
    """The task's check with the reference's outputs (or digests) and per-input limits
    measured once; with `base_only`, over the base inputs alone. `fast` holds, per digested
    output, the sha256 of its pickle: a candidate output that pickles to the same bytes is
    equal without the slower walk of `digests`' hash."""
    special = SPECIAL.get(task.task_id, "")
    if special not in LENIENT:
        special = _special_of(task)
    stop = task.extra.get("n_base", 0) if base_only else None
    common = Counter(limits).most_common(1)[0][0] if limits else 1.0
    others = {i: x for i, x in enumerate(limits) if x != common}
    return _runtime(task) + JUDGED.format(expected=expected_b64, digests=digests,
                                          fast=fast or {}, limit=common, limits=others,
                                          special=special, stop=stop)


def _special_of(task: Task) -> str:
    line = next(ln for ln in _runtime(task).splitlines() if ln.startswith("_CL_SPECIAL = "))
    return ast.literal_eval(line.split("=", 1)[1].strip())


_FAIL = re.compile(r"AssertionError: (base|plus) input (\d+): (.*)", re.S)


def split_status(status: str, reason: str) -> tuple[str, str | None, tuple[str, int] | None]:
    """(base_status, plus_status, first failing input as (part, index)) of one plus result,
    in evalplus's words ("pass", "fail", "timeout"; plus is None where base did not pass and
    so was not run). `status`/`reason` are the sandbox's (sandbox.ExecResult)."""
    if status == "passed":
        return "pass", "pass", None
    m = _FAIL.match(reason or "")
    if status == "failed" and m:
        part, index = m.group(1), int(m.group(2))
        if part == "plus":
            return "pass", "fail", (part, index)
        return "fail", None, (part, index)
    return ("timeout" if status == "timed out" else "fail"), None, None


def plus_inputs(task: Task) -> dict[str, list]:
    """{"base": [...], "plus": [...]}: the task's argument lists as the record gives them."""
    found = {}
    for line in (_runtime(task) or "").splitlines():  # each is one line of the runtime
        if line.startswith("_CL_INPUTS = _cl_json.loads("):
            found["inputs"] = json.loads(ast.literal_eval(line[len("_CL_INPUTS = _cl_json.loads("):-1]))
        elif line.startswith("_CL_N_BASE = "):
            found["n_base"] = int(line.split("=", 1)[1])
    inputs, n_base = found.get("inputs", []), found.get("n_base", 0)
    return {"base": inputs[:n_base], "plus": inputs[n_base:]}


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
                       "n_base": len(record["base_input"]), "atol": record.get("atol") or 0})
