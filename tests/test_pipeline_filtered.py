"""eval.filtered_k in the pipeline: filtered@K and raw pass@K beside greedy pass@1, each under
its own name, in pipeline.json and on the report card; part of the evaluate fingerprint."""

from __future__ import annotations

import json

import pytest

from codeling.cli import main as cli_main
from codeling.io import read_jsonl, write_jsonl
from codeling.tasks.benchmarks import load_benchmark

# as small as the pipeline goes: the machine running the tests has 2 shared cores
TINY = ["corpus.max_mb=0.3", "tokenizer.train_mb=0.3", "pretrain.steps=4",
        "pretrain.eval_every=4", "pretrain.save_every=4", "tasks.n=20", "sft.steps=4",
        "sft.eval_every=4", "sft.save_every=4", "sft.eval_max_new_tokens=8",
        "eval.max_new_tokens=12", "eval.filtered_k=2", "eval.workers=1",
        'pipeline.stages=["corpus","tokenizer","pretrain","tasks","sft","evaluate","report"]']


def pipeline(run, *overrides: str) -> dict:
    argv = ["pipeline", "--preset", "smoke", "--run-dir", str(run), *TINY, *overrides]
    assert cli_main(argv) == 0
    return json.loads((run / "pipeline.json").read_text())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    run = tmp_path_factory.mktemp("filtered") / "run"
    pipeline(run)
    # a 4-step model passes nothing, greedy or filtered, and 0 == 0 proves no separation: make
    # the greedy samples pass 5 of 20 (the reference solutions, as if the model wrote them) and
    # resume the evaluate stage as a crash after generation would leave it
    refs = {t.task_id: t.canonical_solution for t in load_benchmark("mini")}
    samples = run / "eval/mini/samples.jsonl"
    rows = read_jsonl(samples)
    for r in rows[:5]:
        r["completion"] = refs[r["task_id"]]
    write_jsonl(samples, rows)
    for name in ("summary.json", "results.jsonl"):
        (run / "eval/mini" / name).unlink()
    fp = run / "eval/fingerprint.json"
    fp.write_text(json.dumps({**json.loads(fp.read_text()), "complete": False}))
    return run, pipeline(run)


def test_results_hold_greedy_and_filtered_under_their_own_names(smoke):
    run, state = smoke
    mini = state["results"]["mini"]
    greedy = json.loads((run / "eval/mini/summary.json").read_text())
    filtered = json.loads((run / "eval/mini/filtered/summary.json").read_text())
    assert state["stages"]["evaluate"]["status"] == "resumed"
    # the headline is the greedy number, untouched by the sampled candidates, and the other way
    assert mini["pass@1"] == greedy["pass@1"] == 0.25
    assert filtered["pass@1"] < 0.25 and mini["filtered@2"] < 0.25
    assert "name_error_rate" in mini and mini["name_error_rate"] == greedy["name_error_rate"]
    assert mini["filtered@2"] == filtered["filtered@2"]
    assert mini["raw_pass@1"] == filtered["pass@1"] and mini["raw_pass@2"] == filtered["pass@2"]
    assert mini["filtered"]["k"] == 2 and mini["filtered"]["temperature"] == 0.8
    assert mini["filtered"]["top_p"] == 0.95
    assert sum(mini["filtered"]["selection"].values()) == greedy["n_tasks"]
    # the judged candidates are K sampled rows per task, not the greedy samples
    rows = [json.loads(x) for x in (run / "eval/mini/filtered/results.jsonl").read_text()
            .splitlines()]
    assert len(rows) == 2 * greedy["n_tasks"] and all("examples_ok" in r for r in rows)
    cmds = state["stages"]["evaluate"]["commands"]
    assert any("--select examples" in c and "--n 2" in c for c in cmds)
    fp = json.loads((run / "eval/fingerprint.json").read_text())
    assert fp["config"]["eval"]["filtered_k"] == 2


def test_report_card_shows_filtered_beside_pass_at_1(smoke):
    run, _ = smoke
    md = (run / "report/report.md").read_text()
    assert "mini pass@1" in md and "mini filtered@2" in md


def test_filtered_settings_are_fingerprinted(smoke):
    run, _ = smoke
    state = pipeline(run, "eval.filtered_temperature=0.7")
    assert state["stages"]["evaluate"]["status"] == "rebuilt"
    assert state["stages"]["evaluate"]["changed"] == ["eval.filtered_temperature"]
    assert state["stages"]["sft"]["status"] == "reused"
    assert state["results"]["mini"]["filtered"]["temperature"] == 0.7
    # off: no filtered numbers, and the fingerprint is the one a run without the keys had
    state = pipeline(run, "eval.filtered_k=0")
    assert not any(k.startswith(("filtered", "raw_")) for k in state["results"]["mini"])
    fp = json.loads((run / "eval/fingerprint.json").read_text())
    assert not any(k.startswith("filtered") for k in fp["config"]["eval"])
