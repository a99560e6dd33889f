"""codeling pipeline: fingerprinted stages. One real smoke run (shrunk by overrides) is shared by
the module; each test reruns it with one change and checks what was reused and what rebuilt."""

from __future__ import annotations

import json
import shutil

import pytest

from codeling.cli import main as cli_main
from codeling.pipeline import STAGES

# smaller than the smoke preset: the machine running the tests has 2 shared cores
SMALL = ["corpus.max_mb=0.5", "tokenizer.train_mb=0.5", "pretrain.steps=8",
         "pretrain.eval_every=4", "pretrain.save_every=4", "tasks.n=30", "sft.steps=6",
         "sft.eval_every=3", "sft.save_every=3", "sft.eval_max_new_tokens=8",
         "eval.max_new_tokens=16", 'pipeline.stages=["corpus","tokenizer","pretrain","tasks",'
         '"sft","evaluate"]']


def pipeline(run, *overrides: str, force: str = "") -> dict:
    flags = ["--force", force] if force else []
    argv = ["pipeline", "--preset", "smoke", "--run-dir", str(run), *flags, *SMALL, *overrides]
    assert cli_main(argv) == 0
    return json.loads((run / "pipeline.json").read_text())


def statuses(state: dict) -> dict[str, str]:
    return {s: state["stages"][s]["status"] for s in STAGES if s in state["stages"]}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    run = tmp_path_factory.mktemp("pipe") / "run"
    state = pipeline(run)
    assert set(statuses(state).values()) == {"built"}
    return run, state


def test_first_run_fingerprints_every_stage(smoke):
    run, state = smoke
    for stage, where in [("corpus", "data/corpus"), ("tokenizer", "data/tokenizer"),
                         ("pretrain", "pretrain"), ("tasks", "data/tasks"), ("sft", "sft"),
                         ("evaluate", "eval")]:
        fp = json.loads((run / where / "fingerprint.json").read_text())
        assert fp["complete"] and fp["fingerprint"] == state["stages"][stage]["fingerprint"]
    sft = json.loads((run / "sft/fingerprint.json").read_text())
    assert sft["config"]["sft"]["steps"] == 6 and set(sft["inputs"]) == {"pretrain", "tasks"}
    assert "threads" not in sft["config"]["sft"]  # how fast, not what
    mini = state["results"]["mini"]
    assert mini["checkpoint"] in ("sft/checkpoints/best", "sft/checkpoints/final")
    best = json.loads((run / "sft/best.json").read_text())
    assert mini["selected_on"] == best["selected_on"] and "pass@1" in mini


def test_same_config_reuses_everything(smoke):
    run, first = smoke
    state = pipeline(run)
    assert set(statuses(state).values()) == {"reused"}
    assert state["results"] == first["results"]


def test_changed_sft_steps_rebuilds_sft_and_evaluate(smoke):
    run, _ = smoke
    state = pipeline(run, "sft.steps=7")
    assert statuses(state) == {"corpus": "reused", "tokenizer": "reused", "pretrain": "reused",
                               "tasks": "reused", "sft": "rebuilt", "evaluate": "rebuilt"}
    assert state["stages"]["sft"]["changed"] == ["sft.steps"]
    assert state["stages"]["evaluate"]["changed"] == ["input sft"]
    old = run / state["stages"]["sft"]["moved_aside"]
    assert old.parent == run / "stale" and (old / "checkpoints/final").is_dir()
    assert json.loads((run / "sft/run.json").read_text())  # a fresh run, not mixed
    assert json.loads((run / "sft/fingerprint.json").read_text())["config"]["sft"]["steps"] == 7
    assert "mini" in state["results"]


def test_changed_tasks_n_rebuilds_tasks_sft_and_evaluate(smoke):
    run, _ = smoke
    state = pipeline(run, "sft.steps=7", "tasks.n=40")
    assert statuses(state) == {"corpus": "reused", "tokenizer": "reused", "pretrain": "reused",
                               "tasks": "rebuilt", "sft": "rebuilt", "evaluate": "rebuilt"}
    assert state["stages"]["tasks"]["changed"] == ["tasks.n"]
    assert "input tasks" in state["stages"]["sft"]["changed"]
    assert json.loads((run / "data/tasks/report.json").read_text())["n_requested"] == 40
    assert (run / "data/stale").is_dir()  # data stages keep their stale folders beside them


def test_force_rebuilds_a_stage_and_its_downstream(smoke):
    run, _ = smoke
    state = pipeline(run, "sft.steps=7", "tasks.n=40", force="evaluate")
    assert statuses(state)["evaluate"] == "rebuilt" and statuses(state)["sft"] == "reused"
    assert state["stages"]["evaluate"]["changed"] == ["--force"]


def test_interrupted_training_resumes_when_the_fingerprint_matches(smoke):
    run, _ = smoke
    fp_path = run / "sft/fingerprint.json"
    fp = json.loads(fp_path.read_text())
    fp_path.write_text(json.dumps({**fp, "complete": False}))  # as a killed pipeline leaves it
    shutil.rmtree(run / "sft/checkpoints/final")
    state = pipeline(run, "sft.steps=7", "tasks.n=40")
    assert statuses(state)["sft"] == "resumed" and statuses(state)["tasks"] == "reused"
    assert state["stages"]["sft"]["commands"][-1].endswith("--resume")
    assert (run / "sft/checkpoints/final").is_dir()
    assert statuses(state)["evaluate"] == "reused"  # the same fingerprint: sft's did not change


def test_unknown_stage_is_an_error(tmp_path, capsys):
    assert cli_main(["pipeline", "--run-dir", str(tmp_path), "--force", "sfft"]) == 2
    assert "sfft" in capsys.readouterr().err
