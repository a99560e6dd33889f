"""evaluate/live.py: the dev-set evaluator on real tasks, a real tiny model and the real sandbox;
its breakdown keys are the ones metrics.summarize writes."""

from __future__ import annotations

import json

import pytest
import torch

from codeling.config import SftConfig
from codeling.evaluate.harness import judge
from codeling.evaluate.live import dev_evaluator, eval_result
from codeling.evaluate.metrics import summarize
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.evaluate.solution_loss import solution_loss, task_losses
from codeling.io import iter_jsonl
from codeling.objectives import SFTObjective
from codeling.pairs import collate, encode_example
from codeling.tasks.dev import dev_subset
from codeling.tasks.schema import write_tasks
from helpers import tiny_model_and_tokenizer
from test_runs import dev_tasks


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on 2 shared cores thrash
    yield
    torch.set_num_threads(before)


def test_eval_result_reads_the_real_summary_keys():
    tasks = dev_tasks(8)
    samples = [{"task_id": t.task_id,
                "completion": t.canonical_solution if i < 3 else "    return return\n"}
               for i, t in enumerate(tasks)]
    with Sandbox(Limits(timeout=5.0), workers=1) as sb:
        rows = judge({t.task_id: t for t in tasks}, samples, sb)
    res = eval_result(rows, tasks, "dev")
    s = summarize(rows, tasks, [1])
    assert res["score"] == res["pass"] == 3 and res["selected_on"] == "dev"
    assert res["per_category"] == s["per_category"]  # the summary's own key, not by_category
    assert set(res["per_category"]) == {t.category for t in tasks}
    assert sum(v["pass@1"] * v["n_tasks"] for v in res["per_category"].values()) == \
        pytest.approx(3, abs=1e-3)
    if "per_style" in s:  # metrics.summarize gains per_style (docs/formats.md summary.json)
        assert res["per_style"] == s["per_style"]
    info = eval_result(rows, tasks, "mini", selects=False)
    assert "score" not in info and "selected_on" not in info


def test_dev_evaluator_generates_on_dev_jsonl(tmp_path):
    model, tok = tiny_model_and_tokenizer()
    tasks = dev_tasks(6)
    write_tasks(tmp_path / "tasks" / "dev.jsonl", tasks)
    cfg = SftConfig(eval_max_new_tokens=12)
    ev = dev_evaluator(tok, cfg, tmp_path / "run", tmp_path / "tasks")
    res = ev(model, 7)
    json.dumps(res)  # goes to evals/step_N.json as is
    rows = [r for _, r in iter_jsonl(tmp_path / "run" / "evals" / "samples_step_7.jsonl")]
    assert [r["task_id"] for r in rows] == [t.task_id for t in tasks]
    assert rows[0]["prompt"] == tasks[0].prompt  # examples in reports read whole functions
    assert res["score"] == res["pass"] == sum(r["passed"] for r in rows)
    assert res["n_tasks"] == 6 and res["eval_set"] == "dev"
    assert set(res["per_category"]) == {t.category for t in tasks}
    assert "mini_info" not in res  # off by default
    # no dev set, another rank, or generation evals off: no evaluator (selection on val loss)
    assert dev_evaluator(tok, cfg, tmp_path / "run", tmp_path / "nowhere") is None
    assert dev_evaluator(tok, cfg, tmp_path / "run", tmp_path / "tasks", rank=1) is None
    off = SftConfig(eval_mini=False)
    assert dev_evaluator(tok, off, tmp_path / "run", tmp_path / "tasks") is None


def test_mini_info_is_labelled_and_never_scores(tmp_path):
    model, tok = tiny_model_and_tokenizer()
    write_tasks(tmp_path / "dev.jsonl", dev_tasks(3))
    ev = dev_evaluator(tok, SftConfig(eval_max_new_tokens=4), tmp_path / "run", tmp_path,
                       mini_info=True)
    res = ev(model, 1)
    assert res["mini_info"]["used_for_selection"] is False
    assert res["mini_info"]["n_tasks"] == 20 and "score" not in res["mini_info"]
    assert res["score"] == res["pass"]  # the dev count alone
    assert (tmp_path / "run" / "evals" / "samples_mini_step_1.jsonl").is_file()


def test_subset_each_eval_whole_set_at_the_end_and_solution_loss(tmp_path):
    """eval_dev_subset generates on a fixed stratified subset; final=True adds the whole set
    (`dev_full`); each eval scores the solution loss of what it generated on, per style and
    category."""
    model, tok = tiny_model_and_tokenizer()
    tasks = dev_tasks(8)
    write_tasks(tmp_path / "tasks" / "dev.jsonl", tasks)
    cfg = SftConfig(eval_max_new_tokens=6, eval_dev_subset=3, seq_len=250)
    ev = dev_evaluator(tok, cfg, tmp_path / "run", tmp_path / "tasks")
    first, again = ev(model, 1), ev(model, 2)
    assert first["n_tasks"] == again["n_tasks"] == 3 and "dev_full" not in first
    rows = [r for _, r in iter_jsonl(tmp_path / "run" / "evals" / "samples_step_1.jsonl")]
    assert {r["task_id"] for r in rows} == {t.task_id for t in ev.tasks}  # the same 3 each time
    last = ev(model, 3, final=True)
    full = last["dev_full"]
    assert last["n_tasks"] == 3 and full["n_tasks"] == 8
    assert full["pass@1_se"] >= 0 and "per_category" in full and "score" not in full
    rows = [r for _, r in iter_jsonl(tmp_path / "run" / "evals" / "samples_step_3.jsonl")]
    assert sorted(r["task_id"] for r in rows) == sorted(t.task_id for t in tasks)
    # the solution loss: token-weighted, equal to SFT's own loss on the same pairs; of the
    # subset, and of every task at the last eval
    fits = [t for t in tasks if encode_example(tok, t, 251) is not None]
    assert last["solution_loss_tasks"] == len(fits) > 0
    assert first["solution_loss_tasks"] == len([t for t in ev.tasks if t in fits])
    batch = collate([encode_example(tok, t, 251) for t in fits], tok.pad_id)
    with torch.no_grad():
        expected = SFTObjective(pad_id=tok.pad_id).val_loss(model, batch).item()
    assert last["solution_loss"] == pytest.approx(expected, abs=2e-4)
    assert first["solution_loss"] == again["solution_loss"]  # same weights and tasks, same loss
    styles = {t.extra.get("style") or "default" for t in fits}
    assert set(last["solution_loss_per_style"]) == styles
    assert set(last["solution_loss_per_category"]) == {t.category for t in fits}


def test_dev_subset_is_stratified_and_fixed():
    tasks = dev_tasks(40)
    sub = dev_subset(tasks, 10)
    assert len(sub) == 10 and sub == dev_subset(tasks, 10)
    assert [t.task_id for t in sub] == [t.task_id for t in tasks if t in sub]  # dev's order
    cats = {c: sum(t.category == c for t in tasks) for c in {t.category for t in tasks}}
    for c, n in cats.items():  # each category within one task of its proportional share
        assert abs(sum(t.category == c for t in sub) - 10 * n / 40) < 1
    assert dev_subset(tasks, 40) == tasks


def test_sampled_pass_at_1_beside_greedy(tmp_path):
    """eval_samples = n: pass@1 from n samples at a temperature (unbiased estimator, with its
    standard error), information beside the greedy score."""
    model, tok = tiny_model_and_tokenizer()
    tasks = dev_tasks(3)
    write_tasks(tmp_path / "tasks" / "dev.jsonl", tasks)
    cfg = SftConfig(eval_max_new_tokens=5, eval_samples=2, eval_temperature=1.0,
                    eval_solution_loss=False)
    res = dev_evaluator(tok, cfg, tmp_path / "run", tmp_path / "tasks")(model, 1)
    s = res["sampled"]
    assert (s["n"], s["temperature"], s["n_tasks"]) == (2, 1.0, 3)
    assert 0.0 <= s["pass@1"] <= 1.0 and s["pass@1_se"] >= 0.0
    assert "solution_loss" not in res and res["score"] == res["pass"]


def test_solution_loss_scores_only_solution_positions_and_takes_autocast():
    """The head runs only where a solution token is (logits_to_keep), which must not change
    the loss: it equals SFT's own loss on the same pairs, batched or one task at a time, and
    under bf16 autocast it stays close to the fp32 figure."""
    model, tok = tiny_model_and_tokenizer()
    tasks = [t for t in dev_tasks(12) if encode_example(tok, t, 251) is not None]
    full = solution_loss(model, tok, tasks, 251, batch_size=5)
    one = task_losses(model, tok, tasks, 251, batch_size=1)
    batch = collate([encode_example(tok, t, 251) for t in tasks], tok.pad_id)
    with torch.no_grad():
        expected = SFTObjective(pad_id=tok.pad_id).val_loss(model, batch).item()
    assert full["solution_loss"] == pytest.approx(expected, abs=2e-4)
    assert sum(s for s, _ in one.values()) / sum(n for _, n in one.values()) == \
        pytest.approx(expected, abs=2e-4)
    bf16 = solution_loss(model, tok, tasks, 251, batch_size=5,
                         autocast=torch.autocast("cpu", dtype=torch.bfloat16))
    assert bf16["solution_loss"] == pytest.approx(expected, rel=0.02)
    assert bf16["solution_loss_tasks"] == full["solution_loss_tasks"] == len(tasks)
