"""Quality ranking of corpus files and function units: cheap signals, each in [0, 1], explained.

A document's score is the mean of its signals, so every rank can be read back from them
(stats.json `ranking` shows the top and bottom documents with their signals; docs/corpus.md).

File signals:
- `docs`: docstring and comment lines per code line (0.4 or more scores 1);
- `functions`: median function length in the 4-40 line range scores 1, falling off outside;
- `self_contained`: the share of its functions whose free names all resolve (corpus_units);
- `not_generated`: 0 for vendored, generated or test-suite paths (VENDORED), else 1;
- `stdlib_imports`: the share of its imports that are stdlib modules (no imports: 1).

Unit signals:
- `docs`: docstring words per body line (2 or more scores 1);
- `length`: 4-40 lines scores 1, falling off outside;
- `uses_args`: the share of its arguments (other than self/cls) the body reads: functions that
  work from their signature's names, what the model is asked to write;
- `standalone`: 1 for a function, 0.5 for a method (it may lean on its class);
- `examples`: 1 when the docstring shows a doctest (`>>>`), else 0.5;
- `not_generated`: as for files, from the unit's source path.
"""

from __future__ import annotations

import ast
import re
import statistics

from codeling.corpus_units import Unit

# path parts that mark vendored, generated or test-suite code (lowercased, "/"-separated)
VENDORED = re.compile(r"(^|/)(_?vendor(ed)?|extern(als)?|third_party|_?generated|tests?|"
                      r"testing|test_support|idlelib/idle_test)(/|$)|_pb2\.py$|(^|/)test_[^/]*\.py$")


def _band(n: float, lo: float = 4, hi: float = 40) -> float:
    """1 inside [lo, hi], falling off linearly to 0 at lo/4 and at 4·hi."""
    if n < lo:
        return max(0.0, (n - lo / 4) / (lo - lo / 4))
    if n > hi:
        return max(0.0, 1 - (n - hi) / (3 * hi))
    return 1.0


def not_generated(path: str) -> float:
    return 0.0 if VENDORED.search(path.lower()) else 1.0


def file_signals(path: str, facts: dict) -> dict[str, float]:
    code = max(facts["lines"], 1)
    fl = facts["function_lines"]
    return {
        "docs": min(1.0, (facts["doc_lines"] + facts["comment_lines"]) / code / 0.4),
        "functions": _band(statistics.median(fl)) if fl else 0.0,
        "self_contained": facts["self_contained"] / facts["functions"] if facts["functions"]
        else 0.0,
        "not_generated": not_generated(path),
        "stdlib_imports": facts["stdlib_imports"] / facts["imports"] if facts["imports"] else 1.0,
    }


def unit_signals(unit: Unit) -> dict[str, float]:
    node = unit.node
    a = node.args
    args = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg)
            if x is not None and x.arg not in ("self", "cls")]
    read = {n.id for s in node.body for n in ast.walk(s)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    body_lines = max(unit.lines - unit.doc.count("\n") - 1, 1)
    return {
        "docs": min(1.0, len(unit.doc.split()) / body_lines / 2),
        "length": _band(unit.lines),
        "uses_args": sum(x in read for x in args) / len(args) if args else 0.5,
        "standalone": 0.5 if unit.is_method else 1.0,
        "examples": 1.0 if ">>>" in unit.doc else 0.5,
        "not_generated": not_generated(unit.path),
    }


def score(signals: dict[str, float]) -> float:
    return round(sum(signals.values()) / len(signals), 4)


def top_share(items: list, share: float, key) -> tuple[list, list]:
    """(the best `share` of items by key, descending, ties by position; the rest). The kept
    list is in the items' original order, so the corpus keeps its seeded visit order."""
    if share >= 1.0:
        return list(items), []
    order = sorted(range(len(items)), key=lambda i: (-key(items[i]), i))
    keep = set(order[:round(share * len(items))])
    return ([x for i, x in enumerate(items) if i in keep],
            [x for i, x in enumerate(items) if i not in keep])


def examples(docs: list[dict], n: int = 5, chars: int = 600) -> dict:
    """The n highest and lowest scored documents with their signals (stats.json `ranking`)."""
    order = sorted(docs, key=lambda d: (-d["score"], d["path"]))

    def show(d: dict) -> dict:
        return {"path": d["path"], "score": d["score"], "signals": d["signals"],
                "text": d["text"][:chars]}

    return {"top": [show(d) for d in order[:n]], "bottom": [show(d) for d in order[-n:][::-1]]}
