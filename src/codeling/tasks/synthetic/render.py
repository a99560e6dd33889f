"""Surface forms: names, type hints, docstring layouts, example styles, solutions and tests.

Everything here is about *how* a task is phrased, never what it computes; the variety is the
point (a tiny model trained on one docstring shape falls apart on another, see NOTES.md).
"""

from __future__ import annotations

import random
import re
import textwrap
from string import Template
from typing import Any

from codeling.tasks.synthetic.core import (
    LOCALS,
    NAMES,
    Family,
    FileArg,
    OutPath,
    literal_names,
)

HINT_STYLES = ("typing", "builtin", "none")
TYPING_NAMES = ("List", "Dict", "Tuple", "Set", "Optional")
_PLACEHOLDER = re.compile(r"\$(\w+)")
_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean",
               "List[int]": "a list of integers", "List[str]": "a list of strings",
               "List[float]": "a list of numbers", "List[List[int]]": "a list of rows",
               "Dict[str, int]": "a dictionary from strings to integers"}


def pick_names(fam: Family, sol: str, consts: dict[str, Any], r: random.Random) -> dict[str, str]:
    """Choose the function name, argument names and local names, all distinct and never
    clashing with identifiers the templates use literally."""
    taken = literal_names(sol) | {"self"}
    mapping: dict[str, str] = {}
    fn = r.choice([n for n in fam.names if n not in taken] or fam.names)
    mapping["fn"] = fn
    taken.add(fn)
    for a in fam.args:
        choices = [n for n in NAMES[a.role] if n not in taken]
        mapping[a.role] = r.choice(choices)
        taken.add(mapping[a.role])
    for key in dict.fromkeys(_PLACEHOLDER.findall(sol)):
        if key in LOCALS and key not in mapping:
            mapping[key] = r.choice([n for n in LOCALS[key] if n not in taken])
            taken.add(mapping[key])
    for key, value in consts.items():
        mapping[key] = repr(value)
    return mapping


def render_type(t: str, style: str) -> str:
    if style == "builtin":
        t = re.sub(r"\b(List|Dict|Tuple|Set)\[", lambda m: m.group(1).lower() + "[", t)
        t = re.sub(r"Optional\[([^\[\]]*(?:\[[^\]]*\])?)\]", r"\1 | None", t)
    return t


def signature(fam: Family, names: dict[str, str], style: str) -> str:
    if style == "none":
        params = ", ".join(names[a.role] for a in fam.args)
        return f"def {names['fn']}({params}):"
    params = ", ".join(f"{names[a.role]}: {render_type(a.type, style)}" for a in fam.args)
    return f"def {names['fn']}({params}) -> {render_type(fam.ret, style)}:"


def typing_imports(fam: Family, style: str) -> str:
    if style != "typing":
        return ""
    text = " ".join([fam.ret, *(a.type for a in fam.args)])
    used = [n for n in TYPING_NAMES if re.search(rf"\b{n}\[", text)]
    return f"from typing import {', '.join(used)}\n" if used else ""


def call(fn: str, args: tuple) -> str:
    return f"{fn}({', '.join(map(repr, args))})"


def _example_lines(fn: str, examples: list[tuple[tuple, Any]], style: str) -> list[str]:
    if style == "doctest":
        return [line for a, out in examples for line in (f">>> {call(fn, a)}", repr(out))]
    if style == "equals":
        return [f"{call(fn, a)} == {out!r}" for a, out in examples]
    if style == "arrow":
        return [f"{call(fn, a)} -> {out!r}" for a, out in examples]
    return [f"{call(fn, a)} returns {out!r}" for a, out in examples]  # "returns"


EXAMPLE_STYLES = ("doctest", "equals", "arrow", "returns")
EXAMPLE_HEADERS = ("", "For example:", "Example:", "Examples:", "e.g.")


def docstring(desc: str, fn: str, examples: list[tuple[tuple, Any]], fam: Family,
              names: dict[str, str], style: str, r: random.Random) -> str:
    """The docstring block, indented 4 spaces and ending with a newline."""
    ind = "    "
    width = r.choice((72, 80, 88))
    body = textwrap.wrap(desc, width - 4) or [desc]
    if not examples and len(body) == 1 and len(desc) < 70 and r.random() < 0.4:
        return f'{ind}"""{desc}"""\n'
    lines = list(body)
    if style == "google":
        lines.append("")
        lines.append("Args:")
        lines += [f"    {names[a.role]}: {_TYPE_WORDS.get(a.type, 'the input')}." for a in fam.args]
        lines += ["", "Returns:", f"    {_TYPE_WORDS.get(fam.ret, 'the result').capitalize()}."]
    if examples:
        ex_style = r.choices(EXAMPLE_STYLES, (5, 2, 2, 1))[0]  # evaluation prompts use >>>
        header = r.choice(EXAMPLE_HEADERS)
        ex = _example_lines(fn, examples, ex_style)
        if header:
            lines += ["", header] if r.random() < 0.7 else [header]
            ex = ["    " + e for e in ex] if r.random() < 0.5 else ex
        elif r.random() < 0.5:
            lines.append("")
        lines += ex
    lead = r.choice(("", " ", "\n"))
    text = lines[0] if lead != "\n" else "\n" + ind + lines[0]
    if lead == " ":
        text = " " + text
    rest = "".join("\n" + (ind + ln if ln else "") for ln in lines[1:])
    return f'{ind}"""{text}{rest}\n{ind}"""\n'


def substitute(template: str, names: dict[str, str]) -> str:
    return Template(template).substitute(names)


def doc_substitute(template: str, names: dict[str, str], consts: dict[str, Any]) -> str:
    # constants read naturally in prose: 3 not '3' for numbers, 'a' for strings
    prose = {**names, **{k: (repr(v) if isinstance(v, str) else str(v)) for k, v in consts.items()}}
    return Template(template).substitute(prose)


def solution(template: str, names: dict[str, str]) -> str:
    return textwrap.indent(substitute(template, names), "    ") + "\n"


def _value_assert(expr: str, out: Any, r: random.Random) -> str:
    if out is None:
        return f"assert {expr} is None"
    if isinstance(out, bool):
        form = r.randrange(3)
        if form == 0:
            return f"assert {expr} == {out}"
        return f"assert {expr} is {out}" if form == 1 else f"assert {'' if out else 'not '}{expr}"
    if isinstance(out, float):
        return f"assert abs({expr} - {out!r}) < 1e-6"
    return f"assert {expr} == {out!r}"


def test_code(cases: list[tuple[tuple, str, Any]], r: random.Random) -> str:
    """`def check(candidate):` with one assert (or try/except block) per case.

    A case is (args, outcome, value): outcome "value" (returned), "raises" (an exception class
    name) or "file" (the text the function wrote to its OutPath argument)."""
    ind = "    "
    lines = ["def check(candidate):"]
    uses_write = any(isinstance(a, FileArg) for args, _, _ in cases for a in args)
    uses_read = any(kind == "file" for _, kind, _ in cases)
    if uses_write:
        tmp = f"tmp_{r.randrange(16 ** 6):06x}.txt"
        lines += [f"{ind}def write(text):", f"{ind}    with open({tmp!r}, 'w') as f:",
                  f"{ind}        f.write(text)", f"{ind}    return {tmp!r}", ""]
    if uses_read:
        lines += [f"{ind}def read(path):", f"{ind}    with open(path) as f:",
                  f"{ind}        return f.read()", ""]
    for args, kind, value in cases:
        expr = call("candidate", args)
        if kind == "raises":
            lines += [f"{ind}try:", f"{ind}    {expr}", f"{ind}except {value}:", f"{ind}    pass",
                      f"{ind}else:", f"{ind}    assert False, 'expected {value}'"]
        elif kind == "file":
            path = next(a for a in args if isinstance(a, OutPath))
            lines += [f"{ind}{expr}", f"{ind}assert read({path!r}) == {value!r}"]
        else:
            lines.append(ind + _value_assert(expr, value, r))
    return "\n".join(lines) + "\n"
