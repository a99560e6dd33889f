"""The examples a task's prompt states, as `Example`s (examples.py checks and selects by them).

Only the prompt is read, never the task's hidden `test`. The examples a prompt states are:
- doctests: `>>> f(x)` (with `...` continuation lines) and the expected output below it; a
  `>>>` line with no output is a setup statement run before the examples after it;
- `assert ...` lines that call the function (a boolean condition);
- `f(x) == y`, `f(x) -> y` (also `→`, `➞`, `=>`), `f(x) returns y`, `f(x) should return y`,
  anywhere in a line, so "For example, f(1) returns 2." and `# f(x) -> y` comments count;
- markdown table rows `| f(x) | y |`.
An expected value must look like a value (literals, containers, and calls or names the prompt
defines, such as a dataclass), so prose ("returns the sum") is not taken for an example. A
doctest output that is not such a value is compared with the result's repr() or str() text.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass

_ARROWS = r"==|->|→|➞|=>|should return|returns|gives"
_SEP = re.compile(rf"^\s*(?:{_ARROWS})\s*(.+)$")
_BUILTIN_VALUES = {"set", "frozenset", "tuple", "list", "dict", "float", "int", "str", "bytes",
                   "complex", "range", "inf", "nan", "math"}


@dataclass(frozen=True)
class Example:
    source: str  # an expression that calls the function (a condition when expected is None)
    expected: str | None  # an expression, the literal doctest output, or None (a condition)
    kind: str  # "doctest" | "assert" | "inline" | "table"
    literal: bool = False  # expected is doctest output text, compared with repr()/str()
    setup: tuple[str, ...] = ()  # doctest statements to run first


def _defined_names(prompt: str) -> set[str]:
    names = set(re.findall(r"^(?:class|def)\s+(\w+)", prompt, re.M))
    names |= set(re.findall(r"^(\w+)\s*[:=]", prompt, re.M))
    for line in re.findall(r"^(?:from\s+\S+\s+)?import\s+(.+)$", prompt, re.M):
        names |= {p.split(" as ")[-1].strip() for p in line.split(",")}
    return names


def _value_like(node: ast.AST, known: set[str]) -> bool:
    """Literals, containers, arithmetic on them, and calls/names the prompt or builtins give."""
    ok_names = known | _BUILTIN_VALUES
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id not in ok_names:
            return False
        if isinstance(sub, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.Compare,
                            ast.BoolOp, ast.IfExp, ast.ListComp, ast.GeneratorExp, ast.Subscript,
                            ast.Starred)):
            return False
    return True


def _parse_expr(text: str) -> ast.expr | None:
    with warnings.catch_warnings():  # prose with backslashes: "invalid escape sequence"
        warnings.simplefilter("ignore")
        try:
            return ast.parse(text.strip(), mode="eval").body
        except (SyntaxError, ValueError):
            return None


def _calls(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
               for n in ast.walk(node))


def _args_known(node: ast.AST, name: str, known: set[str]) -> bool:
    """Every call of `name` in node has value-like arguments (no variable the prompt never
    defines, as MBPP's `f(root)` whose `root` lives in the hidden test setup)."""
    calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id == name]
    return bool(calls) and all(_value_like(a, known) for c in calls
                               for a in [*c.args, *(k.value for k in c.keywords)])


def _call_end(line: str, start: int) -> int:
    """Index just past the parenthesis closing the call that opens at line[start:] ('(' found
    after the name), or -1. String literals are skipped so '(' inside them do not count."""
    depth, i, quote = 0, line.index("(", start), ""
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _expected_value(rest: str, known: set[str]) -> str | None:
    """The value at the start of `rest` ("2, and f(3) ..." -> "2"): the whole text first, then
    ever longer prefixes cut at spaces, commas and semicolons."""
    rest = rest.strip()
    cuts = [len(rest)] + [m.start() for m in re.finditer(r"[ ,;]", rest)]
    seen = set()
    for cut in cuts:
        text = rest[:cut].strip().rstrip(".,;:")
        if not text or text in seen:
            continue
        seen.add(text)
        node = _parse_expr(text)
        if node is not None and _value_like(node, known):
            return ast.unparse(node)  # a trailing comment would swallow the rest of a line
    return None


def _inline(line: str, entry: str, known: set[str]) -> list[Example]:
    out = []
    for m in re.finditer(rf"(?<![\w.]){re.escape(entry)}\s*\(", line):
        end = _call_end(line, m.start())
        if end < 0:
            continue
        sep = _SEP.match(line[end:])
        node = _parse_expr(line[m.start():end])
        if sep is None or node is None or not _args_known(node, entry, known):
            continue
        want = _expected_value(sep.group(1), known)
        if want is not None:
            out.append(Example(ast.unparse(node), want, "inline"))
    return out


def _table_row(text: str, entry: str, known: set[str]) -> list[Example]:
    cells = [c.strip() for c in text.strip("|").split("|")]
    if len(cells) != 2:
        return []
    call, want = _parse_expr(cells[0]), _parse_expr(cells[1])
    if call is None or want is None or not _args_known(call, entry, known) \
            or not _value_like(want, known):
        return []
    return [Example(ast.unparse(call), ast.unparse(want), "table")]


def _clean(line: str, commented: bool) -> str:
    text = line.strip()
    return text.lstrip("#").strip() if commented else text


def _strip_doc_end(text: str) -> str:
    return re.sub(r"('''|\"\"\")\s*$", "", text).rstrip()


def extract_examples(prompt: str, entry_point: str) -> list[Example]:
    """The input/output examples the prompt states for `entry_point`, in order, deduplicated."""
    with warnings.catch_warnings():  # prose with backslashes: "invalid escape sequence"
        warnings.simplefilter("ignore")
        return _extract(prompt, entry_point)


def _extract(prompt: str, entry_point: str) -> list[Example]:
    known = _defined_names(prompt) - {entry_point}
    lines = prompt.splitlines()
    out: list[Example] = []
    setup: list[str] = []
    i = 0
    while i < len(lines):
        commented = lines[i].lstrip().startswith("#")
        text = _clean(lines[i], commented)
        i += 1
        if text.startswith(">>>"):
            src = [text[3:].strip()]
            while i < len(lines) and _clean(lines[i], commented).startswith("..."):
                src.append(_clean(lines[i], commented)[3:].lstrip(" "))
                i += 1
            want = []
            while i < len(lines):
                nxt = _clean(lines[i], commented)
                if not nxt or nxt.startswith((">>>", '"""', "'''")):
                    break
                want.append(_strip_doc_end(nxt))
                i += 1
                if want[-1] != nxt:  # the docstring closed on this line
                    break
            out += _doctest("\n".join(src), "\n".join(w for w in want if w), entry_point,
                            known, setup)
            continue
        if text.startswith("assert ") and entry_point in text:
            try:
                stmt = ast.parse(_strip_doc_end(text)).body[0]
            except SyntaxError:
                stmt = None
            if isinstance(stmt, ast.Assert) and _calls(stmt.test, entry_point):
                out.append(Example(ast.unparse(stmt.test), None, "assert"))
                continue
        if text.startswith("|") and text.endswith("|"):  # a table row: | call | result |
            out += _table_row(text, entry_point, known)
            continue
        out += _inline(text, entry_point, known)
    return list(dict.fromkeys(out))


def _doctest(source: str, want: str, entry: str, known: set[str],
             setup: list[str]) -> list[Example]:
    if not want:  # a setup statement (an assignment, an import) for the examples after it
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return []
        setup.append(ast.unparse(tree))
        known |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                  and isinstance(n.ctx, ast.Store)}
        known |= {a.asname or a.name for n in ast.walk(tree)
                  if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        return []
    node = _parse_expr(source)
    if node is None or not _args_known(node, entry, known):
        return []
    source = ast.unparse(node)  # drops a trailing comment, joins continuation lines
    printed = (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id == "print" and len(node.args) == 1 and not node.keywords)
    if printed:
        return [Example(ast.unparse(node.args[0]), want, "doctest", True, tuple(setup))]
    value = _parse_expr(want)
    literal = value is None or not _value_like(value, known)
    want = want if literal else ast.unparse(value)
    return [Example(source, want, "doctest", literal, tuple(setup))]
