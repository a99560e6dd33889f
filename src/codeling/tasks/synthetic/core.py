"""Task families: the declarative spec every category module registers into FAMILIES.

A family is one skill ("sum of a list") with many surface forms. Its spec holds:
- `names`: synonyms for the function name;
- `args`: "role" or "role:Type:kind" strings. The role picks the argument-name pool (NAMES),
  the type is written typing-style ("List[int]") and re-rendered per hint style, the kind
  picks the random-input generator and default edge cases (KINDS);
- `docs`: several descriptions, `$role` placeholders for argument names and constants;
- `sols`: several correct bodies (column 0), `$role`, `$fn` (the function's own name) and
  `$local` placeholders (LOCALS pools, so loop variables vary too);
- `consts`: per-task constants (`$k`) that vary the behaviour, drawn by a callable;
- `gen`/`edges`: custom inputs where the kind defaults don't fit.

Expected outputs are never written by hand: the sampler runs the rendered solution.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ["arithmetic", "lists", "strings", "algorithms", "data_structures", "logic",
              "loops", "file_io", "error_handling", "oop"]

# Argument-name pools per role: type and kind default from ROLE_DEFAULTS.
NAMES: dict[str, list[str]] = {
    "nums": ["nums", "numbers", "values", "lst", "arr", "xs", "items", "data", "seq",
             "num_list", "int_list", "elements"],
    "xs2": ["other", "ys", "second", "b", "rhs", "list2"],
    "a": ["a", "x", "m", "first", "num1", "left"],
    "b": ["b", "y", "n", "second", "num2", "right"],
    "c": ["c", "z", "third", "num3"],
    "n": ["n", "num", "number", "value", "x", "k"],
    "k": ["k", "threshold", "limit", "bound", "target", "cutoff"],
    "s": ["s", "text", "string", "word", "sentence", "input_str", "txt"],
    "s2": ["t", "other", "suffix", "sub", "pattern", "part"],
    "ch": ["ch", "char", "c", "letter", "symbol"],
    "words": ["words", "strings", "names", "tokens", "items", "str_list"],
    "d": ["d", "mapping", "table", "counts", "scores", "dct"],
    "d2": ["other", "extra", "more", "d2", "updates"],
    "objs": ["items", "products", "cart", "things", "entries", "goods"],
    "rects": ["rects", "rectangles", "shapes", "boxes", "plots"],
    "p": ["p", "a", "start", "point", "p1", "src"],
    "q": ["q", "b", "end", "other", "p2", "dst"],
    "flags": ["flags", "votes", "answers", "results", "bits"],
    "matrix": ["matrix", "grid", "rows", "table", "m"],
    "path": ["path", "filename", "file_path", "fname", "filepath"],
    "idx": ["i", "index", "idx", "pos", "position", "n"],
    "x": ["x", "f", "value", "val", "num"],
    "lo": ["lo", "low", "lower", "min_val", "minimum", "start"],
    "hi": ["hi", "high", "upper", "max_val", "maximum", "stop"],
    "default": ["default", "fallback", "otherwise"],
    "sep": ["sep", "separator", "delimiter", "glue"],
    "key": ["key", "name", "k", "field"],
    "flag": ["flag", "p", "a", "first", "left"],
    "flag2": ["other", "q", "b", "second", "right"],
}
ROLE_DEFAULTS: dict[str, tuple[str, str]] = {
    "nums": ("List[int]", "ints"), "xs2": ("List[int]", "ints"), "a": ("int", "int"),
    "b": ("int", "int"), "c": ("int", "int"), "n": ("int", "int"), "k": ("int", "small"),
    "s": ("str", "word"), "s2": ("str", "word"), "ch": ("str", "char"),
    "words": ("List[str]", "words"), "d": ("Dict[str, int]", "dict"),
    "d2": ("Dict[str, int]", "dict"), "flags": ("List[bool]", "bools"),
    "matrix": ("List[List[int]]", "matrix"), "path": ("str", "file"), "idx": ("int", "index"),
    "x": ("float", "float"), "key": ("str", "key"), "flag": ("bool", "bool"),
    "lo": ("int", "int"), "hi": ("int", "int"), "default": ("int", "int"),
    "sep": ("str", "sep"),
}
LOCALS: dict[str, list[str]] = {
    "v": ["x", "num", "value", "v", "item", "elem", "n"],
    "w": ["w", "word", "token", "item", "part"],
    "cc": ["ch", "c", "char", "letter"],
    "acc": ["total", "acc", "result", "s", "running"],
    "cnt": ["count", "cnt", "total", "n", "counter"],
    "res": ["result", "res", "out", "output", "kept", "ans"],
    "row": ["row", "line", "r", "sub"],
    "best": ["best", "current", "m", "champion", "top"],
    "key": ["key", "k", "name", "label"],
    "val": ["value", "val", "v", "amount"],
    "f": ["f", "fh", "handle", "fp", "infile"],
    # used by composed tasks (compose.py)
    "vals": ["vals", "kept", "picked", "values", "selected"],
    "parts": ["parts", "pieces", "chunks", "fields", "tokens"],
    "prev": ["prev", "last", "previous", "before"],
    "run": ["run", "streak", "length", "cur_len"],
    "i": ["i", "idx", "pos", "index"],
    "j": ["j", "col", "c", "jdx"],
    "dd": ["counts", "freq", "seen", "table", "tally"],
}

WORDS = ["apple", "banana", "cherry", "delta", "echo", "fox", "grape", "hello", "india", "jade", "kilo", "lemon", "mango", "night", "ocean", "piano", "queen", "river", "sun", "tiger", "umbra", "violet", "water", "xenon", "yellow", "zebra", "cat", "dog", "bird", "fish", "tree", "rock", "star", "moon", "code", "data", "list", "loop", "test", "node", "path"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _ints(r: random.Random, lo: int = -20, hi: int = 50, short: int = 3, long: int = 8) -> list:
    return [r.randint(lo, hi) for _ in range(r.randint(short, long))]


def _text(r: random.Random) -> str:
    return " ".join(r.choice(WORDS) for _ in range(r.randint(2, 6)))


def _mixed(r: random.Random) -> str:
    # letters of both cases, digits, spaces and punctuation, for character-class tasks
    pool = "abcdeiouxyzABCDEIOUXYZ0123456789  !?.,"
    return "".join(r.choice(pool) for _ in range(r.randint(4, 14)))


@dataclass
class FileArg:
    """A file argument: the test writes `text` to a temp file and passes its path."""
    text: str

    def __repr__(self) -> str:
        return f"write({self.text!r})"


@dataclass
class OutPath:
    """A path the function writes to; the test reads it back (see Family.writes)."""
    name: str = "out.txt"

    def __repr__(self) -> str:
        return repr(self.name)


@dataclass
class Obj:
    """A constructor call of a class defined in the prompt, e.g. Point(1, 2)."""
    cls: str
    args: tuple

    def __repr__(self) -> str:
        return f"{self.cls}({', '.join(map(repr, self.args))})"


# kind -> (random generator, default edge values)
KINDS: dict[str, tuple[Callable[[random.Random], Any], list]] = {
    "ints": (_ints, [[], [7], [-4, -1, -9], [0, 0, 0], [-3]]),
    "pos": (lambda r: _ints(r, 1, 60), [[], [5], [1, 1]]),
    "sorted": (lambda r: sorted(_ints(r, -10, 40)), [[], [3], [-5, -2]]),
    "floats": (lambda r: [round(r.uniform(-10, 30), 1) for _ in range(r.randint(2, 6))],
               [[], [2.5], [-1.5, -0.5]]),
    "int": (lambda r: r.randint(-40, 99), [0, -7, 1, -1]),
    "posint": (lambda r: r.randint(2, 60), [1, 2]),
    "nat": (lambda r: r.randint(2, 12), [0, 1]),
    "small": (lambda r: r.randint(2, 9), [1, 0]),
    "index": (lambda r: r.randint(0, 3), [0]),
    "big": (lambda r: r.randint(10, 99999), [0, 7]),
    "float": (lambda r: round(r.uniform(-20, 80), 2), [0.0, -1.5]),
    "bool": (lambda r: r.random() < 0.5, [True, False]),
    "word": (lambda r: r.choice(WORDS) + r.choice(["", r.choice(WORDS)]), ["", "a"]),
    "text": (_text, ["", "word", "  spaced   out  "]),
    "mixed": (_mixed, ["", "A", "7"]),
    "char": (lambda r: r.choice("aeiostxn"), ["a", "z"]),
    "bools": (lambda r: [r.random() < 0.5 for _ in range(r.randint(1, 7))],
              [[], [True], [True, False]]),
    "words": (lambda r: r.sample(WORDS, r.randint(2, 6)), [[], ["one"]]),
    "dict": (lambda r: {w: r.randint(-5, 30) for w in r.sample(WORDS, r.randint(2, 5))},
             [{}, {"x": 0}]),
    "matrix": (lambda r: [_ints(r, -9, 20, 2, 2 + k % 2) for k in range(r.randint(2, 4))],
               [[], [[1]], [[0, -1], [2, 3]]]),
    "key": (lambda r: r.choice(WORDS), ["", "zzz"]),
    "sep": (lambda r: r.choice([", ", "-", " ", "|", "; ", "/"]), [""]),
    "file": (lambda r: "\n".join(_text(r) for _ in range(r.randint(1, 5))) + "\n",
             ["", "single line\n", "\n\n"]),
    "outpath": (lambda r: OutPath(), [OutPath()]),
}


@dataclass
class Arg:
    role: str
    type: str
    kind: str


@dataclass
class Family:
    name: str
    category: str
    level: int
    names: list[str]
    args: list[Arg]
    ret: str
    docs: list[str]
    sols: list[str]
    consts: dict[str, Callable[[random.Random], Any]] = field(default_factory=dict)
    gen: Callable[[random.Random], tuple] | None = None
    # edge inputs, or a function of the task's constants returning them (boundary values such
    # as the threshold itself); a function's first input is always used in the tests
    edges: list[tuple] | Callable[[dict], list[tuple]] | None = None
    notes: list[str] = field(default_factory=list)
    setup: str = ""  # code before the def in the prompt: imports, helper classes
    raises: bool = False  # exceptions from the reference become try/except checks
    writes: bool = False  # the function writes its OutPath argument; tests read it back
    nonempty: bool = False  # drop empty default edge values (max of [] is not a task)

    def typical(self, r: random.Random) -> tuple:
        if self.gen is not None:
            return tuple(self.gen(r))
        return tuple(KINDS[a.kind][0](r) for a in self.args)

    def edge_cases(self, r: random.Random, consts: dict | None = None) -> list[tuple]:
        """Inputs that probe the edges: the family's own, or one argument swapped for an
        edge value of its kind while the others stay typical."""
        if callable(self.edges):
            return [tuple(e) for e in self.edges(consts or {})]
        if self.edges is not None:
            return [tuple(e) for e in self.edges]
        base = self.typical(r)
        out = []
        for i, a in enumerate(self.args):
            for v in KINDS[a.kind][1]:
                if self.nonempty and hasattr(v, "__len__") and len(v) == 0:
                    continue
                out.append((*base[:i], v, *base[i + 1:]))
        return out


FAMILIES: dict[str, Family] = {}
_IDENT = re.compile(r"(?<![$\w.])[A-Za-z_]\w*")


def literal_names(*templates: str) -> set[str]:
    """Identifiers written literally (not as $placeholders) in templates: never reuse them."""
    return {m.group(0) for t in templates for m in _IDENT.finditer(t)}


def _arg(spec: str) -> Arg:
    role, _, rest = spec.partition(":")
    typ, kind = ROLE_DEFAULTS.get(role, ("", ""))
    if rest:
        parts = rest.split(":")
        typ = parts[0] or typ
        kind = parts[1] if len(parts) > 1 else kind
    if role not in NAMES or kind not in KINDS:
        raise ValueError(f"bad argument spec {spec!r}")
    return Arg(role, typ, kind)


def family(name: str, category: str, level: int, *, names: list[str] | str,
           args: list[str] | str, ret: str, docs: list[str], sols: list[str] | str,
           **kw: Any) -> Family:
    """Register one family (see the module docstring for the fields)."""
    if name in FAMILIES:
        raise ValueError(f"duplicate family {name!r}")
    if category not in CATEGORIES or level not in (1, 2, 3):
        raise ValueError(f"family {name!r}: bad category {category!r} or level {level}")
    names = names.split() if isinstance(names, str) else names
    args_l = args.split() if isinstance(args, str) else args
    sols = [sols] if isinstance(sols, str) else sols
    fam = Family(name, category, level, names, [_arg(a) for a in args_l], ret,
                 list(docs), [s.strip("\n") for s in sols], **kw)
    FAMILIES[name] = fam
    return fam
