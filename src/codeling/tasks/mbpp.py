"""MBPP records → HumanEval-style tasks (a signature and a docstring; the model writes the body).

For a record with `text`, `code`, `test_list` and `test_setup_code`:
- prompt: the reference's top-level imports, then `def <entry>(<args>):` and a docstring made of
  `text` and ONE example taken from `test_list[0]`. An assert of the shape
  `assert <entry>(...) == <literal>` becomes a doctest (`>>> <entry>(...)` then the value's
  repr); any other shape (`math.isclose(...)`, `set(...) == ...`) is quoted as the assert line.
- canonical_solution: the reference function's body; any other top-level code of the reference
  (helpers, classes, constants) follows it at module level, so `prompt + canonical_solution` is
  one valid program. The reference is parsed and re-emitted with `ast.unparse`, which
  normalises MBPP's `\\r\\n` endings and mixed tabs/spaces to 4-space indentation (comments in
  the reference are lost; docstrings of the target function are dropped).
- test: `test_setup_code`, then `def check(candidate):` running every assert of `test_list`.
  The asserts call the function by its own name, which the program defines globally.
- entry_point: the function called in the first assert (and defined in the reference).
"""

from __future__ import annotations

import ast
import re
import textwrap

from codeling.io import DataError
from codeling.tasks.schema import Task

_CATEGORIES = (  # first match wins; a cheap heuristic, good enough for a per-category breakdown
    ("strings", r"\b(string|strings|character|characters|char|word|words|vowel|substring|"
                r"regex|uppercase|lowercase|text|sentence)\b"),
    ("lists", r"\b(list|lists|array|arrays|tuple|tuples|matrix|dictionary|dict|set|sets|"
              r"element|elements|sequence|sort|sorted)\b"),
    ("arithmetic", r"\b(number|numbers|sum|digit|digits|prime|factorial|integer|integers|"
                   r"divisible|gcd|lcm|square|cube|power|even|odd|binary|decimal|fibonacci)\b"),
    ("geometry", r"\b(area|perimeter|volume|circle|triangle|rectangle|radius|angle)\b"),
)


def guess_category(text: str) -> str:
    lowered = text.lower()
    for name, pattern in _CATEGORIES:
        if re.search(pattern, lowered):
            return name
    return "other"


def _normalise(code: str) -> str:
    return code.replace("\r\n", "\n").replace("\r", "\n")


def entry_point_of(record: dict, tree: ast.Module) -> str:
    """The function called in the first assert that the reference defines at top level."""
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(ast.parse(record["test_list"][0].strip())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in defined:
            return node.func.id
    raise DataError("mbpp", f"task {record['task_id']}: no function defined in `code` is "
                    "called in the first assert", field="test_list")


def _example(assert_src: str, entry: str) -> str:
    """`>>> call` + repr(value) for `assert entry(...) == literal`, else the assert itself."""
    src = assert_src.strip()
    node = ast.parse(src).body[0]
    if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) \
            and isinstance(node.test.ops[0], ast.Eq) and len(node.test.ops) == 1:
        call, value = node.test.left, node.test.comparators[0]
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) \
                and call.func.id == entry:
            try:
                shown = repr(ast.literal_eval(value))
            except ValueError:
                shown = ast.unparse(value)
            return f">>> {ast.unparse(call)}\n{shown}"
    return src


def _safe(s: str) -> str:  # the docstring is not raw: keep backslashes and quotes literal
    return s.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _docstring(text: str, example: str) -> str:
    lines = [_safe(" ".join(text.split())), *_safe(example).split("\n")]
    return '    """ ' + "\n    ".join(lines) + '\n    """\n'


# prompt augmentation: the same task (tests unchanged) with its text in other shapes
STYLES = ("default", "doctest", "mbpp", "comment", "prose", "oneline")


def _styled(style: str, text: str, asserts: list[str], entry: str, signature: str) -> str:
    """The signature and what describes it, in a prompt style ("default": text + one example,
    a doctest where the assert allows)."""
    flat = " ".join(text.split())

    def doc(lines: list[str]) -> str:
        return signature + '    """' + "".join((f"    {ln}" if ln else "") + "\n"
                                              for ln in lines).lstrip() + '    """\n'

    if style == "default":
        return signature + _docstring(text, _example(asserts[0], entry))
    if style == "doctest":
        examples = "\n".join(_example(a, entry) for a in asserts[:2])
        return doc([*textwrap.wrap(_safe(flat), 80), "", *_safe(examples).split("\n")])
    if style == "mbpp":  # as MBPP is published: the text and its first test
        return doc([_safe(flat), _safe(asserts[0].strip())])
    if style == "comment":
        return "".join(f"# {ln}\n" for ln in textwrap.wrap(flat, 76) or [flat]) + signature
    if style == "prose":
        return doc(["", *textwrap.wrap(_safe(flat), 80)])
    if style == "oneline":
        return signature + f'    """{_safe(flat)}"""\n'
    raise ValueError(f"unknown MBPP prompt style {style!r}; valid: {', '.join(STYLES)}")


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        if node.name == self.old:
            node.name = self.new
        return self.generic_visit(node)  # type: ignore[return-value]

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id == self.old:
            node.id = self.new
        return node


def _avoid_check_clash(record: dict, tree: ast.Module, entry: str) -> tuple[dict, str]:
    """A reference function named `check` would be shadowed by the test's `check(candidate)`:
    rename it (in the code and the asserts) to `check_input`."""
    if entry != "check":
        return record, entry
    new = "check_input"
    _Rename(entry, new).visit(tree)
    asserts = [ast.unparse(_Rename(entry, new).visit(ast.parse(_normalise(a).strip())))
               for a in record["test_list"]]
    return {**record, "test_list": asserts}, new


def function_task(task_id: str, text: str, code: str, asserts: list[str], setup: str = "",
                  check: str = "", entry: str | None = None, source: str = "mbpp",
                  style: str = "default", where: str = "mbpp") -> Task:
    """A task from an instruction, a reference program and its tests (asserts calling the
    function by name, or a `check(candidate)` function): the prompt is the reference's imports
    and the target's signature with the instruction; the solution is the body and any other
    top-level code. `entry` defaults to the function the first assert calls."""
    try:
        tree = ast.parse(_normalise(code))
    except SyntaxError as e:
        raise DataError(where, f"task {task_id}: reference does not parse ({e.msg})",
                        field="code") from e
    record = {"task_id": task_id, "test_list": asserts}
    if entry is None:
        record, entry = _avoid_check_clash(record, tree, entry_point_of(record, tree))
        asserts = record["test_list"]
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry), None)
    if fn is None:
        raise DataError(where, f"task {task_id}: `{entry}` is not defined in the solution",
                        field="solution")
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    rest = [n for n in tree.body if n is not fn and n not in imports]
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str) and len(body) > 1:
        body = body[1:]  # the reference's own docstring: ours replaces it
    header = "".join(ast.unparse(n) + "\n" for n in imports)
    returns = f" -> {ast.unparse(fn.returns)}" if fn.returns else ""
    signature = f"def {entry}({ast.unparse(fn.args)}){returns}:\n"
    if not asserts and style in ("default", "doctest", "mbpp"):
        style = "prose"  # only a check function: no example to show
    prompt = (header + "\n\n" if header else "") + _styled(style, text, asserts, entry, signature)
    solution = textwrap.indent(ast.unparse(ast.Module(body=body, type_ignores=[])), "    ")
    if rest:
        solution += "\n\n\n" + ast.unparse(ast.Module(body=rest, type_ignores=[]))
    setup = _normalise(setup or "").strip()
    if check:
        test = (setup + "\n\n\n" if setup else "") + _normalise(check).strip() + "\n"
    else:
        lines = textwrap.indent("\n".join(_normalise(a).strip() for a in asserts), "    ")
        test = (setup + "\n\n\n" if setup else "") + f"def check(candidate):\n{lines}\n"
    extra = {} if style == "default" else {"style": style}
    return Task(task_id=task_id, prompt=prompt, entry_point=entry,
                canonical_solution=solution + "\n", test=test, category=guess_category(text),
                level=1, source=source, extra=extra)


def mbpp_to_task(record: dict, source: str = "mbpp", style: str = "default") -> Task:
    """Convert one raw MBPP record (any split) into a HumanEval-style Task; `style` renders
    its prompt in another shape (STYLES; the tests are the same)."""
    return function_task(f"{source}/{record.get('task_id')}", record["text"], record["code"],
                         list(record["test_list"]), record.get("test_setup_code") or "",
                         source=source, style=style)


def pick_style(task_id: str, seed: int = 0) -> str:
    """A prompt style for one task, fixed by its id and the seed (for augmenting a split)."""
    import hashlib

    digest = hashlib.sha1(f"{seed}:{task_id}".encode()).digest()
    return STYLES[digest[0] % len(STYLES)]
