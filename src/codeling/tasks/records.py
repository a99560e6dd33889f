"""Task files in either shape: task records (schema.py) or plan records (docs/formats.md),
{"id", "prompt", "solution"} with tests in `tests`/`test_list` (asserts) or `test` (a
`check(candidate)` function). A prompt that is an instruction rather than a signature becomes
the docstring of the solution's signature (the MBPP converter's `function_task`).
"""

from __future__ import annotations

import ast
import os
import re
import textwrap

from codeling.io import DataError, iter_jsonl
from codeling.tasks.mbpp import function_task
from codeling.tasks.schema import Task, unique_tasks

_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.M)


def _split_solution(solution: str, entry: str) -> str:
    """A completion for a prompt that already has the signature: the solution's body when it
    is the whole function, else the solution itself, indented as a body."""
    try:
        tree = ast.parse(solution)
    except SyntaxError:
        tree = None
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry),
              None) if tree else None
    if fn is None:
        first = next((ln for ln in solution.splitlines() if ln.strip()), "")
        return solution if first[:1].isspace() else textwrap.indent(solution, "    ")
    body = list(fn.body)
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the prompt carries the docstring
    rest = [n for n in tree.body if n is not fn and not isinstance(n, ast.Import | ast.ImportFrom)]
    out = textwrap.indent(ast.unparse(ast.Module(body=body, type_ignores=[])), "    ") + "\n"
    return out + ("\n\n" + ast.unparse(ast.Module(body=rest, type_ignores=[])) + "\n" if rest else "")


def plan_record_to_task(d: dict, path: str | os.PathLike = "<dict>", line: int | None = None
                        ) -> Task:
    """One plan record as a Task; a record without tests is refused (every pair is verified)."""
    for name in ("id", "prompt", "solution"):
        if not isinstance(d.get(name), str | int) or (name != "id" and not d[name].strip()):
            raise DataError(path, "missing or empty", line=line, field=name)
    asserts = d.get("tests", d.get("test_list"))
    check = d.get("test")
    if isinstance(check, list):
        asserts, check = check, None
    if asserts is not None and (not isinstance(asserts, list)
                                or not all(isinstance(a, str) for a in asserts)):
        raise DataError(path, "expected a list of assert strings", line=line, field="tests")
    if not asserts and not (isinstance(check, str) and check.strip()):
        raise DataError(path, "record has no tests: give `tests`/`test_list` (asserts) or `test` "
                        "(a check function); every pair must be verified", line=line,
                        field="tests")
    task_id, prompt, solution = str(d["id"]), d["prompt"], d["solution"]
    keep = {k: v for k, v in d.items() if k not in ("id", "prompt", "solution", "tests",
                                                    "test_list", "test", "entry_point")}
    entry = d.get("entry_point")
    defs = _DEF.findall(prompt)
    try:
        if defs:  # a signature prompt: the model writes the body
            entry = entry or defs[-1]
            if check:
                test = check.strip() + "\n"
            else:
                test = "def check(candidate):\n" + textwrap.indent(
                    "\n".join(a.strip() for a in asserts), "    ") + "\n"
            task = Task(task_id, prompt if prompt.endswith("\n") else prompt + "\n", entry,
                        _split_solution(solution, entry), test, source="plan")
        else:  # an instruction: it becomes the docstring of the solution's signature
            if check and not entry:
                found = _DEF.findall(solution)
                entry = found[-1] if found else None
            task = function_task(task_id, prompt, solution, list(asserts or []),
                                 d.get("test_setup_code") or "", check or "", entry,
                                 source="plan", style="prose" if check else "default",
                                 where=str(path))
    except DataError as e:  # say which line of this file, keeping the field it names
        text = str(e)
        text = text[len(e.path) + 2:] if text.startswith(e.path + ": ") else text
        raise DataError(path, text, line=line) from e
    task.category = str(keep.pop("category", task.category or ""))
    level = keep.pop("level", 1)
    task.level = level if isinstance(level, int) and 1 <= level <= 3 else 1
    task.extra.update(keep)
    return task


def read_task_records(path: str | os.PathLike) -> list[Task]:
    """Read a JSONL of tasks or of plan records ({"id", "prompt", "solution", tests},
    docs/formats.md), one or the other on each line. Errors name the file, line and field."""

    def parse(line: int, obj: dict) -> Task:
        if "task_id" in obj or ("entry_point" in obj and "canonical_solution" in obj):
            return Task.from_dict(obj, path, line)
        if "id" in obj or "solution" in obj:
            return plan_record_to_task(obj, path, line)
        raise DataError(path, "neither a task (task_id, prompt, entry_point, "
                        "canonical_solution, test) nor a plan record (id, prompt, solution)",
                        line=line)

    return unique_tasks(path, ((line, parse(line, obj)) for line, obj in iter_jsonl(path)), "id")
