"""Prompt styles: the shapes a task's prompt takes around the same signature and description.

A model trained on one docstring shape falls apart on another (a comment above the `def`, an
MBPP "Write a function ..." with asserts, prose without examples), so every task picks one of
STYLES and records it in `task.extra["style"]`. Whatever the style, the prompt ends where the
function body starts, so the program is still `prompt + completion + test`.
"""

from __future__ import annotations

import random
import re
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from codeling.tasks.synthetic.render import _PLACEHOLDER, call

STYLES = ("doctest", "prose", "google", "numpy", "rest", "mbpp", "comment", "oneline",
          "preamble", "arrow")
# doctest is what HumanEval prompts look like: twice the others, which are about 9% each
WEIGHTS = {"doctest": 2.0}
NEEDS_EXAMPLES = frozenset({"doctest", "mbpp", "arrow"})
_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean",
               "List[int]": "a list of integers", "List[str]": "a list of strings",
               "List[float]": "a list of numbers", "List[List[int]]": "a grid of integers",
               "Dict[str, int]": "a dictionary from strings to integers",
               "Optional[int]": "an integer or None", "List[bool]": "a list of booleans"}
_NOT_IMPERATIVE = {"Given", "If", "This", "A", "An", "The", "Each", "For", "When", "In"}
IMPORTS = ("import math", "import re", "import itertools", "import string", "import os",
           "from collections import Counter", "from collections import defaultdict",
           "from functools import reduce")
HELPERS = (
    'def _clamp(value, low, high):\n    """Limit value to the range [low, high]."""\n'
    "    return max(low, min(value, high))",
    "def _is_blank(text):\n    return not text or text.isspace()",
    'def _pairs(seq):\n    """Adjacent pairs of seq, in order."""\n    return list(zip(seq, seq[1:]))',
    "def _safe_div(a, b, default=0):\n    if b == 0:\n        return default\n    return a / b",
    "def _normalize(word):\n    return word.strip().lower()",
)
CLASSES = (
    'class Config:\n    """Settings shared by the functions in this module."""\n\n'
    "    def __init__(self, verbose=False):\n        self.verbose = verbose",
    'class ValidationError(ValueError):\n    """Raised when an input is malformed."""',
    'class Record:\n    def __init__(self, key, value):\n        self.key = key\n'
    "        self.value = value\n\n    def __repr__(self):\n"
    '        return f"Record({self.key!r}, {self.value!r})"',
)
CONSTANTS = ("MAX_ITEMS = 1000", 'DEFAULT_SEP = ", "', "EPSILON = 1e-9", 'VERSION = "1.2"',
             "DEBUG = False")


@dataclass
class Spec:
    """What a prompt says, independent of its style."""
    fn: str
    params: list[tuple[str, str]]  # (name, typing-style type)
    ret: str
    desc: str
    examples: list[tuple[tuple, Any]] = field(default_factory=list)
    setup: str = ""


@dataclass(frozen=True)
class Surface:
    """How the generator may phrase tasks (`tasks.styles`, `tasks.indirect_refs`,
    `tasks.novel_names`)."""
    styles: tuple[str, ...] = ()  # the prompt styles allowed; empty: all of STYLES
    indirect: float = 0.0  # share of tasks whose description calls arguments by their type
    novel: float = 0.0  # share of tasks whose arguments have pseudo-word names


ANY = Surface()  # every style, names in every description


# kinds whose argument plays a role its type does not say (a path, a separator, a key)
_NAMED_KINDS = frozenset({"file", "outpath", "char", "key", "sep", "index"})
# a use that reads as a noun phrase: not `$nums[i]`, `|$x|` or `($a, $b)`
_PLAIN_USE = re.compile(r"(?:^|(?<=\s))\$(\w+)(?=$|[\s.,;:!?])")
# ...and is not inside one: after a noun it names ("the sorted list $xs", "an integer $n") or
# before the noun it counts ("$n times", "$k elements"), "the list" would not read
_NOUN_BEFORE = frozenset((
    "the", "a", "an", "given", "list", "lists", "integer", "integers", "string", "strings",
    "file", "first", "last", "letters", "index", "power", "size", "score", "character",
    "range", "positive", "negative", "exponent", "digits", "matrix", "items", "max", "min",
    "value", "values", "vectors", "each", "every", "interval", "aged", "difference", "ratio",
    "base", "position", "temperature", "year", "divisors", "word", "words", "points", "point",
    "vowels", "spaces", "substring", "final", "dictionary", "numbers", "number", "grid",
    "text", "sentence", "key", "limit", "threshold"))
_NOUN_AFTER = frozenset((
    "elements", "element", "numbers", "items", "item", "characters", "lines", "times",
    "hours", "minutes", "seconds", "key", "positions", "multiples", "terms", "degrees",
    "digits", "places", "steps", "letters", "words", "rows", "columns", "th", "i", "j", "idx",
    "x", "y", "n", "f", "one"))


def indirect_names(args: Sequence[Any], template: str, names: dict[str, str],
                   r: random.Random) -> dict[str, str]:
    """`names` with each argument the description can call by its type ("the given list") in
    place of its name, so that the name is only in the signature and a model must read it
    there, as with docstrings that never spell their parameters out. An argument qualifies when
    no other argument has its type, its kind is not a role of its own, and every use of it in
    `template` reads as a noun phrase; the others keep their names. Unchanged: no argument
    qualifies."""
    same_type = Counter(a.type for a in args)
    uses, plain = Counter(_PLACEHOLDER.findall(template)), Counter(
        m.group(1) for m in _PLAIN_USE.finditer(template) if _reads_alone(template, m))
    out = dict(names)
    for a in args:
        noun = _TYPE_WORDS.get(a.type, "").split(" ", 1)[-1]  # "a list of integers" -> "list of ..."
        if (noun and same_type[a.type] == 1 and a.kind not in _NAMED_KINDS and uses[a.role]
                and plain[a.role] == uses[a.role]):
            noun = r.choice((noun, noun.split()[0]))  # "list of integers" or "list"
            out[a.role] = r.choice(("the given ", "the ", "the input ")) + noun
    return out


def _reads_alone(template: str, m: re.Match) -> bool:
    before = re.search(r"(\w+) +$", template[:m.start()])
    after = re.match(r" +(\w+)", template[m.end():])
    return not ((before and before.group(1).lower() in _NOUN_BEFORE)
                or (after and (after.group(1).lower() in _NOUN_AFTER or after.group(1).isdigit())))


def capitalize_sentences(text: str) -> str:
    """A sentence that now starts with an inserted "the ..." starts with a capital."""
    return re.sub(r"(^|[.!?]\s+)the\b", lambda m: m.group(1) + "The", text)


def choose_style(r: random.Random, has_examples: bool, allowed: Sequence[str] = ()) -> str:
    """A style by WEIGHTS; `allowed` narrows the draw (`tasks.styles`, an ablation). A task with
    no examples whose allowed styles all need them is written as prose."""
    pool = [s for s in (allowed or STYLES) if has_examples or s not in NEEDS_EXAMPLES] or ["prose"]
    return r.choices(pool, [WEIGHTS.get(s, 1.0) for s in pool])[0]


def type_words(t: str) -> str:
    return _TYPE_WORDS.get(t, "the value")


def mbpp_sentence(desc: str, r: random.Random) -> str:
    """The description as MBPP phrases its tasks: "Write a function to ..."."""
    lead = r.choice(("Write a function", "Write a function", "Write a python function",
                     "Write a Python function", "Create a function"))
    first = desc.split()[0] if desc.split() else ""
    if first[:1].isupper() and first.strip(",") not in _NOT_IMPERATIVE:
        return f"{lead} to {first.lower()}{desc[len(first):]}"
    return f"{lead} for this task. {desc}"


def _wrap(text: str, r: random.Random) -> list[str]:
    return textwrap.wrap(text, r.choice((68, 76, 84))) or [text]


def _doctest(spec: Spec) -> list[str]:
    return [ln for a, out in spec.examples for ln in (f">>> {call(spec.fn, a)}", repr(out))]


def _examples_block(spec: Spec, r: random.Random, header: str | None = None) -> list[str]:
    head = header if header is not None else r.choice(("", "Example:", "Examples:", "For example:"))
    return ["", *([head] if head else []), *_doctest(spec)]


def _arrow(spec: Spec, r: random.Random) -> list[str]:
    form = r.randrange(3)
    if form == 0:
        return ["", *([r.choice(("Examples:", "e.g."))] if r.random() < 0.5 else []),
                *(f"{call(spec.fn, a)} -> {out!r}" for a, out in spec.examples)]
    if form == 1:
        said = [f"{call(spec.fn, a)} returns {out!r}" for a, out in spec.examples]
        text = "For example, " + (", and ".join(said) if len(said) < 3
                                  else ", ".join(said[:-1]) + ", and " + said[-1]) + "."
        return ["", *_wrap(text, r)]
    head = r.choice((("call", "result"), ("input", "output"), ("example", "expected")))
    rows = [(call(spec.fn, a), repr(out)) for a, out in spec.examples]
    w0 = max(len(head[0]), *(len(a) for a, _ in rows))
    w1 = max(len(head[1]), *(len(b) for _, b in rows))
    line = lambda a, b: f"| {a.ljust(w0)} | {b.ljust(w1)} |"
    return ["", line(*head), f"|{'-' * (w0 + 2)}|{'-' * (w1 + 2)}|",
            *(line(a, b) for a, b in rows)]


def _sections(spec: Spec, style: str, r: random.Random, hint_types: bool) -> list[str]:
    params = spec.params
    if style == "google":
        head = r.choice(("Args:", "Args:", "Arguments:", "Parameters:"))
        out = ["", head]
        for name, t in params:
            typ = f" ({t})" if hint_types and r.random() < 0.5 else ""
            out.append(f"    {name}{typ}: {type_words(t).capitalize()}.")
        out += ["", "Returns:", f"    {type_words(spec.ret).capitalize()}."]
        return out
    if style == "numpy":
        out = ["", "Parameters", "----------"]
        for name, t in params:
            out += [f"{name} : {t}", f"    {type_words(t).capitalize()}."]
        return [*out, "", "Returns", "-------", spec.ret, f"    {type_words(spec.ret).capitalize()}."]
    with_types = r.random() < 0.6  # reST
    out = [""]
    for name, t in params:
        out.append(f":param {name}: {type_words(t)}")
        if with_types:
            out.append(f":type {name}: {t}")
    out.append(f":{r.choice(('return', 'returns'))}: {type_words(spec.ret)}")
    if with_types:
        out.append(f":rtype: {spec.ret}")
    return out


def _docstring(lines: list[str], r: random.Random) -> str:
    ind = "    "
    lead = r.choice(("", "", " ", "\n"))
    first = ("\n" + ind if lead == "\n" else lead) + lines[0]
    rest = "".join("\n" + (ind + ln if ln else "") for ln in lines[1:])
    return f'{ind}"""{first}{rest}\n{ind}"""\n'


def body(spec: Spec, style: str, r: random.Random, hint_types: bool = True) -> str:
    """The text after the signature line: a docstring, or "" for the comment style."""
    if style == "comment":
        return ""
    if style == "oneline":
        return f'    """{spec.desc}"""\n'
    if style == "mbpp":
        asserts = [f"assert {call(spec.fn, a)} == {out!r}" for a, out in spec.examples]
        head = ["Your code should pass these tests:"] if r.random() < 0.25 else []
        return _docstring([*_wrap(mbpp_sentence(spec.desc, r), r), *head, *asserts], r)
    lines = _wrap(spec.desc, r)
    if style == "doctest":
        lines += _examples_block(spec, r)
    elif style == "arrow":
        lines += _arrow(spec, r)
    elif style in ("google", "numpy", "rest"):
        lines += _sections(spec, style, r, hint_types)
        if spec.examples and r.random() < 0.3:
            lines += (["", "Examples", "--------", *_doctest(spec)] if style == "numpy"
                      else _examples_block(spec, r, "Examples:"))
    return _docstring(lines, r)


def comments(spec: Spec, r: random.Random) -> str:
    lines = textwrap.wrap(spec.desc, r.choice((70, 78))) or [spec.desc]
    if spec.examples and r.random() < 0.3:
        lines += [f"e.g. {call(spec.fn, a)} -> {out!r}" for a, out in spec.examples[:2]]
    return "".join(f"# {ln}\n" for ln in lines)


def _defined(block: str) -> str:
    words = block.replace("(", " ").replace(":", " ").split()
    return words[1] if words[0] in ("def", "class") else words[0]


def preamble(r: random.Random, taken: set[str]) -> tuple[list[str], list[str]]:
    """(import lines, top-level blocks) unrelated to the task: what real files have above a
    function. Their names never clash with the task's (vocabulary names are lower-case words)."""
    imports = r.sample(IMPORTS, r.randint(0, 2))
    pools = [HELPERS, CLASSES, CONSTANTS]
    blocks = [r.choice(pool) for pool in r.sample(pools, r.randint(1, 2))]
    if not imports and not blocks:
        blocks = [r.choice(HELPERS)]
    blocks = [b for b in blocks if _defined(b) not in taken]
    return imports, blocks or [r.choice(CONSTANTS)]


def prompt(spec: Spec, style: str, signature: str, typing_line: str, r: random.Random,
           taken: set[str], hint_types: bool = True) -> str:
    """The whole prompt: imports, setup, optional preamble, comments, signature, docstring."""
    imports = [typing_line.strip()] if typing_line.strip() else []
    blocks = [spec.setup.strip()] if spec.setup.strip() else []
    inner = style
    if style == "preamble":
        more_imports, more = preamble(r, taken)
        imports += more_imports
        blocks += more
        inner = r.choice(("doctest", "prose", "oneline", "google") if spec.examples
                         else ("prose", "oneline", "google"))
    head = "\n".join(imports)
    parts = ([head] if head else []) + blocks
    top = "\n\n\n".join(parts) + r.choice(("\n\n\n", "\n\n")) if parts else r.choice(("", "", "\n"))
    if style == "comment":
        return top + comments(spec, r) + signature + "\n"
    return top + signature + "\n" + body(spec, inner, r, hint_types)
