"""name_error_rate (issue 12 §1) on rows the real sandbox judged, not hand-written verdicts."""

from __future__ import annotations

import json

from codeling.evaluate.harness import evaluate_samples
from codeling.evaluate.metrics import is_name_error
from codeling.evaluate.sandbox import Limits
from codeling.tasks.benchmarks import load_benchmark


def test_name_error_rate_from_real_sandbox_rows(tmp_path):
    mini = load_benchmark("mini")
    t0, t1 = mini[0], mini[3]  # two categories, so the per-category branch is exercised
    tasks = [t0, t1]
    assert t0.category != t1.category
    samples = [
        {"task_id": t0.task_id, "completion": t0.canonical_solution},  # passes
        # a name from a memorised pool, not the prompt's signature: NameError when called
        {"task_id": t0.task_id, "completion": "    return num_list_not_in_scope\n"},
        {"task_id": t1.task_id, "completion": "    return None\n"},  # fails, but not a NameError
    ]
    summary = evaluate_samples(tasks, samples, tmp_path, limits=Limits(timeout=5.0), workers=1,
                               progress=False)
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert rows[0]["passed"] and not is_name_error(rows[0])
    assert rows[1]["result"].startswith("failed: NameError"), rows[1]["result"]
    assert not rows[2]["passed"] and not is_name_error(rows[2]), rows[2]["result"]
    assert summary["name_error_rate"] == round(1 / 3, 4)
    assert summary["per_category"][t0.category]["name_error_rate"] == 0.5
    assert summary["per_category"][t1.category]["name_error_rate"] == 0.0
    for row in summary["per_style"].values():
        assert "name_error_rate" in row


def test_sandbox_errors_stay_out_of_the_rate():
    from codeling.evaluate.metrics import summarize

    t0 = load_benchmark("mini")[0]
    rows = [{"task_id": t0.task_id, "completion": "x", "passed": False, "error": True,
             "result": "error: worker died", "syntax_ok": True, "collapse": None},
            {"task_id": t0.task_id, "completion": "x", "passed": False, "error": False,
             "result": "failed: NameError: name 'q' is not defined", "syntax_ok": True,
             "collapse": None}]
    assert summarize(rows, [t0])["name_error_rate"] == 1.0
