"""Function units: each documented function or method of a corpus file as a standalone document.

    units, info = extract_units(text, path)    # every def, kept or with its drop reason

A unit is the function's source (decorators left out, dedented) preceded by the module-level
stdlib imports it uses, so it runs on its own. Its *self-containment* is the share of its free
names (read but not bound inside it) that resolve to builtins or to a stdlib module the file
imports; its arguments and locals are bound by definition. A unit whose free names all resolve
can be defined and called in isolation, which is also what the behavioural twin check needs.

Drop reasons, in the order they are applied (UNIT_DROP_REASONS; stats.json `units.dropped`):
no_docstring, stub (nothing but the docstring, `pass`, `...` or a raise), too_long (over
`max_lines`), not_self_contained (resolved share under `min_resolved`); the corpus build adds
exact_duplicate, eval_ngram, behavioural_twin and not_selected (below the quality cut).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import re
import sys
import textwrap
from dataclasses import dataclass, field

UNIT_DROP_REASONS = ("no_docstring", "stub", "too_long", "not_self_contained",
                     "exact_duplicate", "eval_ngram", "behavioural_twin", "not_selected")
STDLIB = frozenset(sys.stdlib_module_names)
BUILTINS = frozenset(dir(builtins))
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_WHITESPACE = re.compile(r"\s+")


def exact_key(text: str) -> str:
    """codeparrot's normalised hash: md5 of the text with every whitespace character removed."""
    return hashlib.md5(_WHITESPACE.sub("", text).encode("utf-8")).hexdigest()


def split_is_val(key: str, seed: int, val_fraction: float) -> bool:
    """By a hash of the document's content, so it keeps its split when the budget changes."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


@dataclass
class Unit:
    path: str  # the source file's corpus path
    qualname: str  # Class.method or function
    name: str
    text: str  # stdlib imports it needs + the dedented def
    lines: int  # of the def itself
    is_method: bool
    free: list[str]  # free names, sorted
    unresolved: list[str]  # free names that are neither builtins nor imported stdlib modules
    doc: str  # the docstring
    node: ast.AST = field(repr=False, compare=False)
    reason: str | None = None  # why it was dropped (None: kept so far)
    score: float = 0.0
    signals: dict = field(default_factory=dict)

    @property
    def resolved_share(self) -> float:
        return 1.0 - len(self.unresolved) / len(self.free) if self.free else 1.0


def module_imports(tree: ast.Module) -> dict[str, tuple[str, str]]:
    """Top-level imports: bound name -> (top-level module, the import line that binds it).
    Relative imports map to "." (never the stdlib)."""
    out: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                bound = a.asname or a.name.split(".")[0]
                line = f"import {a.name}" + (f" as {a.asname}" if a.asname else "")
                out[bound] = (a.name.split(".")[0], line)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            root = "." if node.level else (node.module or "").split(".")[0]
            for a in node.names:
                if a.name == "*":
                    continue
                line = f"from {'.' * node.level}{node.module or ''} import {a.name}" + (
                    f" as {a.asname}" if a.asname else "")
                out[a.asname or a.name] = (root, line)
    return out


def bound_and_used(fn: ast.AST) -> tuple[set[str], set[str]]:
    """(names bound inside the function, names it reads), decorators excluded."""
    bound: set[str] = set()
    used: set[str] = set()
    a = fn.args
    for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
        if arg is not None:
            bound.add(arg.arg)
            if arg.annotation is not None:
                used |= _loads(arg.annotation)
    for d in [*a.defaults, *(d for d in a.kw_defaults if d is not None)]:
        used |= _loads(d)
    if fn.returns is not None:
        used |= _loads(fn.returns)
    for stmt in fn.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name):
                (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, (*_FUNCS, ast.ClassDef)):
                bound.add(node.name)
                if not isinstance(node, ast.ClassDef):
                    bound |= {x.arg for x in ast.walk(node.args) if isinstance(x, ast.arg)}
            elif isinstance(node, ast.Lambda):
                bound |= {x.arg for x in ast.walk(node.args) if isinstance(x, ast.arg)}
            elif isinstance(node, ast.Import | ast.ImportFrom):
                bound |= {(x.asname or x.name).split(".")[0] for x in node.names}
            elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
                bound.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                bound.add(node.rest)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                used |= set(node.names)  # module state: not the function's own
    return bound, used


def _loads(expr: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}


def _is_stub(fn: ast.AST) -> bool:
    body = fn.body[1:]  # after the docstring
    return all(isinstance(s, ast.Pass | ast.Raise) or (
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in body)


def _defs(tree: ast.Module):
    """(qualname, node, is_method) of top-level functions and the methods of top-level classes."""
    for node in tree.body:
        if isinstance(node, _FUNCS):
            yield node.name, node, False
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, _FUNCS):
                    yield f"{node.name}.{sub.name}", sub, True


def parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def extract_units(text: str, path: str, max_lines: int = 80, min_resolved: float = 1.0,
                  tree: ast.Module | None = None) -> list[Unit]:
    """Every top-level function and method of the file, each with its drop reason or None."""
    tree = tree or parse(text)
    if tree is None:
        return []
    imports = module_imports(tree)
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body)
    lines = text.splitlines()
    out = []
    for qualname, node, is_method in _defs(tree):
        doc = ast.get_docstring(node, clean=True) or ""
        src = textwrap.dedent("\n".join(lines[node.lineno - 1:node.end_lineno])) + "\n"
        bound, used = bound_and_used(node)
        free = sorted(used - bound)
        need = sorted({imports[n][1] for n in free if n in imports and imports[n][0] in STDLIB})
        unresolved = [n for n in free if n not in BUILTINS
                      and not (n in imports and imports[n][0] in STDLIB)]
        head = (["from __future__ import annotations"] if future and need else []) + need
        unit = Unit(path, qualname, node.name, ("\n".join(head) + "\n\n\n" if head else "") + src,
                    node.end_lineno - node.lineno + 1, is_method, free, unresolved, doc, node)
        if not doc:
            unit.reason = "no_docstring"
        elif _is_stub(node):
            unit.reason = "stub"
        elif unit.lines > max_lines:
            unit.reason = "too_long"
        elif unit.resolved_share < min_resolved:
            unit.reason = "not_self_contained"
        out.append(unit)
    return out


def file_facts(text: str, tree: ast.Module | None, units: list[Unit]) -> dict:
    """The raw counts a file's quality signals come from (corpus_quality.file_signals)."""
    lines = text.splitlines()
    code = [ln.strip() for ln in lines if ln.strip()]
    comments = sum(ln.startswith("#") for ln in code)
    doc_lines = 0
    roots: list[str] = []
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, *_FUNCS)):
                d = ast.get_docstring(node, clean=False)
                doc_lines += d.count("\n") + 1 if d else 0
            elif isinstance(node, ast.Import):
                roots += [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                roots.append("." if node.level else (node.module or "").split(".")[0])
    return {"lines": len(code), "comment_lines": comments, "doc_lines": doc_lines,
            "parsed": tree is not None, "functions": len(units),
            "function_lines": [u.lines for u in units],
            "self_contained": sum(not u.unresolved for u in units),
            "imports": len(roots), "stdlib_imports": sum(r in STDLIB for r in roots)}
