"""Surface forms: names, type hints, docstring layouts, example styles, solutions and tests.

Everything here is about *how* a task is phrased, never what it computes; the variety is the
point (a tiny model trained on one docstring shape falls apart on another).
"""

from __future__ import annotations

import random
import re
import textwrap
from string import Template
from typing import Any

from codeling.tasks.synthetic import names as vocab
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


def _literal(fam: Family, sol: str) -> set[str]:
    """Identifiers the solution template or the setup use literally: never a chosen name."""
    return literal_names(sol, fam.setup) | {"self"}


def pick_names(fam: Family, sol: str, consts: dict[str, Any], r: random.Random) -> dict[str, str]:
    """Choose the function name, argument names and local names (vocab: names.py), all distinct and
    never clashing with identifiers the templates or the setup use literally."""
    taken = _literal(fam, sol)
    mapping: dict[str, str] = {"fn": vocab.fn_name(fam.names, taken, r)}
    taken.add(mapping["fn"])
    for a in fam.args:
        mapping[a.role] = vocab.arg_name(a.role, NAMES[a.role], taken, r)
        taken.add(mapping[a.role])
    for key in dict.fromkeys(_PLACEHOLDER.findall(sol)):
        if key in LOCALS and key not in mapping:
            mapping[key] = vocab.local_name(key, LOCALS[key], taken, r)
            taken.add(mapping[key])
    for key, value in consts.items():
        mapping[key] = repr(value)
    return mapping


def novel_arguments(fam: Family, sol: str, names: dict[str, str], r: random.Random
                    ) -> dict[str, str]:
    """`names` with every argument renamed to a pseudo-word (names.novel_arg_name), still
    distinct from each other and from every other name of the task."""
    arg_roles = {a.role for a in fam.args}
    taken = _literal(fam, sol) | {v for k, v in names.items() if k not in arg_roles}
    out = dict(names)
    for a in fam.args:
        out[a.role] = vocab.novel_arg_name(a.role, taken, r)
        taken.add(out[a.role])
    return out


def render_type(t: str, style: str) -> str:
    if style == "builtin":
        t = re.sub(r"\b(List|Dict|Tuple|Set)\[", lambda m: m.group(1).lower() + "[", t)
        t = re.sub(r"Optional\[([^\[\]]*(?:\[[^\]]*\])?)\]", r"\1 | None", t)
    return t


def signature_text(fn: str, params: list[tuple[str, str]], ret: str, style: str) -> str:
    if style == "none":
        return f"def {fn}({', '.join(n for n, _ in params)}):"
    typed = ", ".join(f"{n}: {render_type(t, style)}" for n, t in params)
    return f"def {fn}({typed}) -> {render_type(ret, style)}:"


def signature(fam: Family, names: dict[str, str], style: str) -> str:
    return signature_text(names["fn"], [(names[a.role], a.type) for a in fam.args], fam.ret, style)


def typing_line(types: list[str], style: str) -> str:
    """`from typing import ...` for the typing-style hints these types need, else ""."""
    if style != "typing":
        return ""
    used = [n for n in TYPING_NAMES if re.search(rf"\b{n}\[", " ".join(types))]
    return f"from typing import {', '.join(used)}\n" if used else ""


def call(fn: str, args: tuple) -> str:
    return f"{fn}({', '.join(map(repr, args))})"


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
