"""Decontamination: no training task may reproduce an evaluation task.

Two documented checks, against every evaluation set (mini, humaneval, humaneval+, the MBPP test
split, mbpp+):

1. **n-gram overlap.** Prompt + canonical solution are normalised (comments dropped, lowercased,
   split into identifier/number/punctuation tokens; string quotes and whitespace ignored; the
   task's own function name replaced by a placeholder) and cut
   into token n-grams (n=10). A training task is contaminated when it contains at least
   `threshold` (default 50%) of some evaluation task's n-grams. Renaming the function or its
   arguments changes only the few n-grams that contain the names, so a copied-and-renamed task
   still shares most of them; an independently written task of the same kind (another `is_prime`
   with its own docstring) shares only stock phrases such as `for i in range(len(xs))`.
2. **Entry point + docstring.** The same function name together with a matching normalised
   docstring (examples and punctuation dropped; equal, or a word-level Jaccard similarity of at
   least 0.8) is contamination too, whatever the code looks like.

Evaluation tasks with fewer than `min_ngrams` n-grams are still checked (tiny tasks are exactly
the ones a synthetic generator might reproduce).
"""

from __future__ import annotations

import builtins
import io
import keyword
import re
import tokenize
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from codeling.tasks.schema import Task

NGRAM = 10
THRESHOLD = 0.5
DOC_JACCARD = 0.8
EVAL_SETS = ("mini", "humaneval", "humaneval+", "mbpp", "mbpp+")
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+(?:\.\d+)?|[^\sA-Za-z_0-9'\"]")


def _strip_comments(code: str) -> str:
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(code).readline)
                if t.type != tokenize.COMMENT]
        return tokenize.untokenize(toks)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.sub(r"#[^\n]*", "", code)


def code_tokens(code: str, entry_point: str = "") -> list[str]:
    """Normalised tokens; the task's own function name becomes a placeholder, so renaming the
    function (which appears in every doctest line) does not hide a copy."""
    name = entry_point.lower()
    return ["<fn>" if t == name else t for t in _TOKEN.findall(_strip_comments(code).lower())]


def task_ngrams(task: Task, n: int = NGRAM) -> set[int]:
    return ngrams(code_tokens(task.prompt + "\n" + task.canonical_solution, task.entry_point), n)


def ngrams(tokens: Sequence[str], n: int = NGRAM) -> set[int]:
    if len(tokens) < n:
        return {hash(tuple(tokens))} if tokens else set()
    return {hash(tuple(tokens[i:i + n])) for i in range(len(tokens) - n + 1)}


def docstring_of(task: Task) -> str:
    """The prompt's docstring (or, for prompts without one, its comment/text lines)."""
    m = re.search(r'("""|\'\'\')(.*?)(\1|$)', task.prompt, re.S)
    return m.group(2) if m else task.prompt


def normalise_doc(doc: str) -> frozenset[str]:
    lines = [ln for ln in doc.splitlines() if not ln.strip().startswith((">>>", "assert"))]
    words = re.findall(r"[a-z0-9]+", " ".join(lines).lower())
    return frozenset(words)


@dataclass
class Hit:
    task_id: str
    eval_set: str
    eval_task_id: str
    check: str  # "ngram" | "docstring"
    score: float

    def to_dict(self) -> dict:
        return {"task_id": self.task_id, "eval_set": self.eval_set,
                "eval_task_id": self.eval_task_id, "check": self.check,
                "score": round(self.score, 3)}


class Decontaminator:
    """Index evaluation tasks once, then check training tasks against them."""

    def __init__(self, eval_tasks: dict[str, Iterable[Task]], n: int = NGRAM,
                 threshold: float = THRESHOLD, doc_jaccard: float = DOC_JACCARD):
        self.n, self.threshold, self.doc_jaccard = n, threshold, doc_jaccard
        self.index: dict[int, list[int]] = defaultdict(list)
        self.sizes: list[int] = []
        self.names: list[tuple[str, str]] = []  # (eval_set, task_id)
        self.docs: dict[str, list[tuple[int, frozenset[str]]]] = defaultdict(list)
        for set_name, tasks in eval_tasks.items():
            for t in tasks:
                k = len(self.names)
                self.names.append((set_name, t.task_id))
                grams = task_ngrams(t, n)
                self.sizes.append(len(grams))
                for g in grams:
                    self.index[g].append(k)
                self.docs[t.entry_point.lower()].append((k, normalise_doc(docstring_of(t))))

    def check(self, task: Task) -> Hit | None:
        grams = task_ngrams(task, self.n)
        counts: Counter[int] = Counter()
        for g in grams:
            counts.update(self.index.get(g, ()))
        best = max(((c / max(self.sizes[k], 1), k) for k, c in counts.items()), default=None)
        if best and best[0] >= self.threshold:
            return Hit(task.task_id, *self.names[best[1]], "ngram", best[0])
        doc = normalise_doc(docstring_of(task))
        for k, other in self.docs.get(task.entry_point.lower(), ()):
            sim = len(doc & other) / max(len(doc | other), 1)
            if sim >= self.doc_jaccard:
                return Hit(task.task_id, *self.names[k], "docstring", sim)
        return None

    def split(self, tasks: Iterable[Task]) -> tuple[list[Task], list[Hit]]:
        clean, hits = [], []
        for t in tasks:
            hit = self.check(t)
            if hit is None:
                clean.append(t)
            else:
                hits.append(hit)
        return clean, hits


def load_eval_sets(names: Sequence[str] = EVAL_SETS, data_dir: str | None = None,
                   ) -> dict[str, list[Task]]:
    """The evaluation sets to protect. Missing optional files are an error, not a skip."""
    from codeling.tasks.benchmarks import load_benchmark

    return {name: load_benchmark(name, data_dir=data_dir) for name in names}


# Pretraining-corpus decontamination: a file is dropped when it contains a run of CORPUS_NGRAM
# consecutive normalised tokens of any evaluation task's prompt or canonical solution. 13 is
# the run length GPT-3's decontamination used: shorter runs are mostly stock code
# (`for i in range(len(xs)):` is 11 tokens), longer ones miss short solutions. Evaluation texts
# shorter than that cannot be matched and are skipped. Normalisation is cheap on purpose (a
# corpus is tens of MB): lowercase, `#` comments removed by regex, the decontam tokenizer.
# A run counts only with at least CONTENT_WORDS distinct words that are not Python keywords,
# builtins or one letter: number lists, `for i in range(len(l) - 1, -1, -1)` and other stock
# runs occur in any codebase.
CORPUS_NGRAM, CONTENT_WORDS = 13, 3
_COMMENT = re.compile(r"#[^\n]*")
_STOCK = frozenset(keyword.kwlist) | frozenset(w.lower() for w in dir(builtins)) | {"self", "cls"}


def _has_content(run: Sequence[str]) -> bool:
    words = {t for t in run if len(t) > 1 and t[0].isalpha() and t not in _STOCK}
    return len(words) >= CONTENT_WORDS


def corpus_tokens(text: str) -> list[str]:
    return _TOKEN.findall(_COMMENT.sub("", text.lower()))


class EvalNgramIndex:
    """Every CORPUS_NGRAM-token run of the evaluation tasks' prompts and solutions."""

    def __init__(self, eval_tasks: dict[str, Iterable[Task]], n: int = CORPUS_NGRAM):
        self.n = n
        self.owner: dict[int, str] = {}  # n-gram hash -> "eval_set:task_id"
        for set_name, tasks in eval_tasks.items():
            for t in tasks:
                for text in (t.prompt, t.prompt + t.canonical_solution):
                    toks = corpus_tokens(text)
                    for i in range(len(toks) - n + 1):
                        if _has_content(toks[i:i + n]):
                            self.owner.setdefault(hash(tuple(toks[i:i + n])),
                                                  f"{set_name}:{t.task_id}")

    def match(self, text: str) -> str | None:
        """The first evaluation task sharing a run with `text` ("eval_set:task_id"), or None."""
        toks, n, owner = corpus_tokens(text), self.n, self.owner
        for i in range(len(toks) - n + 1):
            hit = owner.get(hash(tuple(toks[i:i + n])))
            if hit is not None:
                return hit
        return None
