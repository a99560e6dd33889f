"""codeling runs: discovery, the experiments table, selection, twins, the decision rule, JSON/CSV.

Run folders come from the real components: tiny real training runs (`train.train`) whose
in-training evaluator is the real `GenerationEval` with scripted completions (a task's
canonical solution or a broken body) judged by the real sandbox, and `eval/<benchmark>/`
folders from real harness rows summarised by `metrics.summarize`. Only run.json (the stage
driver's) is written by hand; tasks/report.json comes from a real small build (helpers.real_task_report).
`make_pipeline` and `make_sft` are reused by test_report.py.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from codeling.cli import main as cli_main
from codeling.config import ModelConfig, TrainConfig, load_config
from codeling.data import EvalWindows, RandomWindows
from codeling.evaluate.harness import judge
from codeling.evaluate.live import GenerationEval
from codeling.evaluate.metrics import summarize
from codeling.evaluate.sandbox import Limits, Sandbox
from codeling.io import DataError, atomic_write_json, write_jsonl
from codeling.model import CodelingLM
from codeling.objectives import LMObjective
from codeling.runs import (
    VERDICTS,
    collect_runs,
    compare,
    format_table,
    status,
    to_csv,
    verdict,
)
from codeling.tasks.benchmarks import load_benchmark, mbpp_records, mbpp_to_task
from codeling.train import train
from helpers import real_task_report

EVERY = 4  # steps between in-training evals
BROKEN = "    return return\n"
SHARD = np.tile(np.arange(1, 13, dtype=np.uint16), 100)
EVAL_SETS = ["mini", "humaneval", "humaneval+", "mbpp", "mbpp+"]


@functools.cache
def dev_tasks(n: int = 12) -> list:
    """Held-out MBPP train-split tasks, as the dev set holds (besides held-out families)."""
    return [mbpp_to_task(r) for r in mbpp_records("train")[:n]]


def bench_tasks(name: str) -> list:
    return dev_tasks() if name == "dev" else load_benchmark(name)


@functools.cache
def verdicts(name: str) -> dict[tuple[str, str], dict]:
    """The real sandbox's rows for a broken body of every task and the canonical solution of
    the first 8, judged once per session: (task_id, completion) -> result row."""
    tasks = bench_tasks(name)
    samples = [{"task_id": t.task_id, "completion": BROKEN} for t in tasks]
    samples += [{"task_id": t.task_id, "completion": t.canonical_solution} for t in tasks[:8]]
    with Sandbox(Limits(timeout=10.0), workers=2) as sb:
        rows = judge({t.task_id: t for t in tasks}, samples, sb)
    assert sum(r["passed"] for r in rows) == 8  # canonical solutions pass, broken bodies fail
    return {(r["task_id"], r["completion"]): r for r in rows}


def results(name: str, passed: int) -> list[dict]:
    """Real result rows in which the first `passed` tasks pass."""
    v = verdicts(name)
    rows = []
    for i, t in enumerate(bench_tasks(name)):
        completion = t.canonical_solution if i < passed else BROKEN
        rows.append({**v[(t.task_id, completion)], "sample_index": i})
    return rows


class Scripted(GenerationEval):
    """The real dev GenerationEval, with the completions of each step scripted."""

    def __init__(self, passes: dict[int, int], out_dir: Path):
        super().__init__(dev_tasks(), tokenizer=None, stop=[], out_dir=out_dir)
        self.passes, self.step = passes, 0

    def __call__(self, model, step: int, final: bool = False, autocast=None) -> dict:
        self.step = step
        return super().__call__(model, step, final, autocast)

    def generate(self, model, tasks=None) -> list[dict]:
        return [{k: r[k] for k in ("task_id", "completion")}
                for r in results("dev", self.passes[self.step])]

    def judge(self, samples: list[dict], tasks=None) -> list[dict]:
        v = verdicts("dev")
        return [{**v[(s["task_id"], s["completion"])], "sample_index": i}
                for i, s in enumerate(samples)]


def tiny_train(d: Path, steps: int, config, evaluator=None, early_stop: int = 0,
               time_budget_s: float = 0.0) -> None:
    tc = TrainConfig(steps=steps, batch_size=2, seq_len=8, warmup=1, log_every=2,
                     eval_every=EVERY, eval_batches=1, save_every=EVERY, keep_checkpoints=1,
                     early_stop=early_stop, device="cpu", time_budget_s=time_budget_s)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on 2 shared cores thrash
    torch.manual_seed(0)
    model = CodelingLM(ModelConfig(vocab_size=16, n_layer=1, n_head=2, n_kv_head=1, d_model=16,
                                   max_seq_len=16))
    try:
        train(model, LMObjective(), RandomWindows(SHARD, 2, 8, seed=0), tc, d,
              val_data=EvalWindows(SHARD, 2, 8, 1), evaluator=evaluator, config=config,
              progress=False)
    finally:
        torch.set_num_threads(threads)


def make_pretrain(d: Path, steps: int = 20, final: bool = True, budget: float = 0.0) -> Path:
    atomic_write_json(d / "run.json", {
        "stage": "pretrain", "params": 1_300_000, "corpus": "/data/corpus",
        "tokenizer": "/data/tok", "tokens": {"train": 2_500_000, "val": 50_000}, "world_size": 1})
    tiny_train(d, steps, load_config(None, ["name=cpu", f"pretrain.steps={steps}",
                                            f"pretrain.time_budget_s={budget}"]),
               time_budget_s=budget)
    if not final:
        shutil.rmtree(d / "checkpoints" / "final")
    return d


def make_sft(d: Path, passes: list[int], init: Path | None = None, final: bool = True,
             target: int | None = None, early_stop: int = 0, tasks: Path | None = None) -> Path:
    """An SFT run with an in-training dev eval every EVERY steps scoring `passes` in turn."""
    atomic_write_json(d / "run.json", {
        "stage": "sft", "mode": "lora", "init": str(init or "/r/pretrain/checkpoints/final"),
        "tasks": str(tasks or d.parent / "tasks"), "params": 1_300_000,
        "trainable_params": 40_000, "n_train": 950, "n_val": 50, "dropped_too_long": 3})
    steps = EVERY * len(passes)
    config = load_config(None, ["name=cpu", f"sft.steps={target or steps}"])
    scripted = Scripted({EVERY * (i + 1): p for i, p in enumerate(passes)}, d / "evals")
    tiny_train(d, steps, config, scripted, early_stop)
    if not final:
        shutil.rmtree(d / "checkpoints" / "final")
    return d


def make_eval(d: Path, benchmark: str, passed: int) -> Path:
    """A `codeling evaluate --out` folder: real rows, summarised by metrics.summarize."""
    rows = results(benchmark, passed)
    write_jsonl(d / "results.jsonl", rows)
    atomic_write_json(d / "summary.json", {**summarize(rows, bench_tasks(benchmark)),
                                           "benchmark": benchmark})
    return d


def make_pipeline(root: Path, passes: list[int], mini: int | None = None,
                  humaneval: int | None = 3, contaminated: bool = False) -> Path:
    """A pipeline run dir: pretrain/, tasks/report.json (a real `codeling tasks` build's,
    `--allow-contamination` when `contaminated`), sft/, eval/{mini,humaneval}/."""
    make_pretrain(root / "pretrain")
    atomic_write_json(root / "tasks" / "report.json", real_task_report(contaminated))
    make_sft(root / "sft", passes, init=root / "pretrain" / "checkpoints" / "final")
    make_eval(root / "eval" / "mini", "mini", max(passes) if mini is None else mini)
    if humaneval is not None:
        make_eval(root / "eval" / "humaneval", "humaneval", humaneval)
    return root


def test_decision_rule_thresholds():
    assert verdict(7, 20) == verdict(5, 20) == VERDICTS["success"] == "success"
    assert verdict(3, 20) == verdict(1, 20) == VERDICTS["partial"]
    assert "Option B" in verdict(4, 20)
    assert verdict(0, 20) == VERDICTS["zero"] and "bigger model" in verdict(0, 20)
    assert verdict(None, None) == "n/a"
    assert verdict(9, 40) == VERDICTS["partial"] and verdict(10, 40) == "success"


def test_sft_runs_are_selected_on_dev(tmp_path):
    for name, passes in (("zero", [0, 0]), ("three", [1, 3, 2])):
        make_sft(tmp_path / "runs" / name, passes)
    make_pretrain(tmp_path / "runs" / "base")
    runs = {r.name: r for r in collect_runs([tmp_path / "runs"])}
    assert sorted(runs) == ["base", "three", "zero"]
    three = runs["three"]
    assert (three.selected_on, three.selected_step, three.dev_pass, three.dev_n) == (
        "dev", 8, 3, 12)
    assert three.best_pass is None and three.verdict == "n/a"  # no mini eval: no mini number
    assert three.syntax == pytest.approx(3 / 12) and three.collapse == pytest.approx(9 / 12)
    assert (three.stage, three.params, three.trainable_params) == ("sft", 1_300_000, 40_000)
    assert three.data == "950 tasks" and three.steps == 12 and three.status == "done"
    base = runs["base"]
    assert (base.selected_on, base.stage, base.base, base.data, base.steps,
            base.target_steps) == ("val_loss", "pretrain", "scratch", "2.5M tokens", 20, 20)
    assert base.tokens == 20 * 2 * 8 and base.elapsed_s > 0
    table = format_table(list(runs.values())).splitlines()
    assert table[0].split()[:3] == ["name", "stage", "base"]
    line = next(x for x in table if x.startswith("three"))
    assert "dev @8" in line and "3/12" in line and "12/12" in line
    assert "1.3M (40k trained)" in line


def test_pipeline_dir_attaches_evals_twins_and_names(tmp_path):
    make_pipeline(tmp_path / "cpu", [0, 2, 1], mini=6, humaneval=5)
    runs = {r.name: r for r in collect_runs([tmp_path / "cpu"])}
    assert sorted(runs) == ["pretrain", "sft"]  # tasks/ and eval/ are not runs
    sft = runs["sft"]
    assert set(sft.evals) == {"mini", "humaneval"} and not runs["pretrain"].evals
    assert sft.humaneval == pytest.approx(5 / 164, abs=1e-4)
    assert sft.base == "pretrain/final" and (sft.best_pass, sft.n_tasks) == (6, 20)
    assert sft.verdict == "success" and (sft.dev_pass, sft.selected_step) == (2, 8)
    assert sft.twin_counts() == dict.fromkeys(["mini", "humaneval"], 0)
    assert not sft.contaminated
    line = next(x for x in format_table(list(runs.values())).splitlines() if x.startswith("sft"))
    assert "  0  " in line and "CONTAMINATED" not in line
    assert runs["pretrain"].twins is None  # pretraining trains on no task set


def test_final_mini_eval_is_the_number_not_a_maximum(tmp_path):
    root = make_pipeline(tmp_path / "p", [0, 5], mini=2)
    (sft,) = [r for r in collect_runs([root]) if r.stage == "sft"]
    assert (sft.best_pass, sft.best_step, sft.verdict) == (2, None, VERDICTS["partial"])
    assert sft.dev_pass == 5  # dev is what chose the checkpoint, never the reported number
    assert sft.syntax == pytest.approx(0.1)  # the final mini eval's: 2 of 20 parse


def test_twins_and_contamination_cells(tmp_path):
    root = make_pipeline(tmp_path / "c", [1], contaminated=True)
    kept = {b: v["eval_tasks_with_twin"] for b, v in real_task_report(True)["twins"].items()}
    assert kept["mini"] > 0 and kept["humaneval"] > 0  # the real build kept some twins
    (sft,) = [r for r in collect_runs([root]) if r.stage == "sft"]
    cell = f"CONTAMINATED: humaneval {kept['humaneval']}, mini {kept['mini']}"
    assert format_table([sft]).count(cell) == 1
    assert sft.row()["twins"] == kept and sft.row()["contaminated"] is True
    old = make_pipeline(tmp_path / "old", [1])
    report = json.loads((old / "tasks" / "report.json").read_text())
    for key in ("twins", "twin_check", "contaminated"):  # as written before the twin check
        report.pop(key)
    atomic_write_json(old / "tasks" / "report.json", report)
    (sft,) = [r for r in collect_runs([old]) if r.stage == "sft"]
    assert sft.twins is None and "unchecked" in format_table([sft])


def test_pre_dev_runs_show_selection_on_mini(tmp_path):
    """Runs made before dev selection: evals without eval_set, best.json without selected_on."""
    d = make_sft(tmp_path / "legacy", [1, 3, 2])
    for f in [*(d / "evals").glob("step_*.json"), d / "best.json"]:
        obj = json.loads(f.read_text())
        for key in ("eval_set", "selected_on"):
            obj.pop(key, None)
            obj.get("metrics", {}).pop(key, None)
        f.write_text(json.dumps(obj))
    lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    write_jsonl(d / "metrics.jsonl", [{k: v for k, v in r.items() if k not in (
        "eval_set", "selected_on")} for r in lines])
    (run,) = collect_runs([d])
    assert (run.selected_on, run.best_pass, run.n_tasks, run.best_step) == ("mini", 3, 12, 8)
    assert run.dev_pass is None and "mini (test set) @8" in format_table([run])


def test_status_running_failed_early_stop(tmp_path):
    early = make_sft(tmp_path / "early", [1, 3, 2, 2, 2, 2], early_stop=2)
    (run,) = collect_runs([early])
    assert (run.status, run.steps, run.target_steps, run.selected_step) == (
        "early_stop", 16, 24, 8)
    crashed = make_sft(tmp_path / "crashed", [1], final=False)
    old = time.time() - 3600
    os.utime(crashed / "metrics.jsonl", (old, old))
    assert status(crashed, 4, 12) == "failed"
    assert status(crashed, 4, 12, now=old + 60) == "running"
    live = make_sft(tmp_path / "live", [1], final=False)
    assert collect_runs([live])[0].status == "running"
    timed = make_pretrain(tmp_path / "timed", steps=1_000_000, budget=0.5)
    (run,) = collect_runs([timed])
    assert run.status == "time_budget" and 0 < run.steps < run.target_steps == 1_000_000


def test_missing_files_give_blank_cells(tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    (d / "metrics.jsonl").write_text("")  # a run that has only just started
    (run,) = collect_runs([d])
    assert (run.stage, run.params, run.steps, run.best_pass, run.verdict) == ("", None, None,
                                                                              None, "n/a")
    assert format_table([run]).splitlines()[2].startswith("bare")


def test_malformed_metrics_line_names_file_and_line(tmp_path):
    d = make_sft(tmp_path / "bad", [1, 2])
    lines = (d / "metrics.jsonl").read_text().splitlines()
    lines.insert(1, "{not json")
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"metrics\.jsonl:2"):
        collect_runs([d])


def test_malformed_json_names_file(tmp_path):
    d = make_sft(tmp_path / "bad", [1])
    (d / "best.json").write_text("{")
    with pytest.raises(DataError, match=r"best\.json"):
        collect_runs([d])


def test_cli_json_csv_and_table(tmp_path, capsys):
    make_pipeline(tmp_path / "runs" / "cpu", [0, 3], mini=3)
    make_sft(tmp_path / "runs" / "big", [7])
    capsys.readouterr()  # what training printed
    assert cli_main(["runs", str(tmp_path / "runs"), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == ["big", "cpu/pretrain", "cpu/sft"]
    sft = rows["cpu/sft"]
    assert sft["best_pass"] == 3 and sft["verdict"].startswith("partial")
    assert (sft["selected_on"], sft["dev_pass"], sft["twins"]["humaneval"]) == ("dev", 3, 0)
    assert sft["evals"]["humaneval"]["pass@1"] == pytest.approx(3 / 164, abs=1e-4)
    assert rows["big"]["dev_pass"] == 7 and rows["big"]["verdict"] == "n/a"
    assert cli_main(["runs", str(tmp_path / "runs"), "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in table] == ["big", "cpu/pretrain", "cpu/sft"]
    assert table[2]["best_pass"] == "3" and table[1]["best_pass"] == ""
    assert float(table[2]["humaneval_pass@1"]) == pytest.approx(3 / 164, abs=1e-4)
    assert float(table[2]["mini pass@1"]) == pytest.approx(3 / 20)
    assert table[2]["mini twins"] == "0" and table[2]["selected_on"] == "dev"
    assert cli_main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "cpu/sft" in out and "3/20" in out and "1.8%" in out and "dev @8" in out
    assert cli_main(["runs", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_clashing_names_are_qualified(tmp_path):
    make_pipeline(tmp_path / "a", [1])
    make_pipeline(tmp_path / "b", [5])
    names = sorted(r.name for r in collect_runs([tmp_path / "a", tmp_path / "b"]))
    assert names == ["a/pretrain", "a/sft", "b/pretrain", "b/sft"]
    assert to_csv([]).startswith("name,")


def test_dev_pass_carries_its_standard_error(tmp_path):
    make_sft(tmp_path / "s", [3])
    (run,) = collect_runs([tmp_path / "s"])
    assert (run.dev_pass, run.dev_n) == (3, 12)
    assert run.dev_se == pytest.approx(math.sqrt(0.25 * 0.75 / 12), abs=1e-4)  # binomial
    assert "3/12 ±1.5" in format_table([run])
    assert run.row()["dev_se"] == pytest.approx(run.dev_se)


def test_compare_reads_tie_under_two_standard_errors(tmp_path, capsys):
    """Three recipes as real tiny SFT runs, one folder per recipe and one run per seed: a small
    difference is a tie, a large one names the better recipe (runs --compare)."""
    for recipe, passes in (("a", [1, 1, 2]), ("b", [2, 1, 2]), ("c", [6, 6, 7])):
        for seed, p in enumerate(passes):
            make_sft(tmp_path / recipe / f"seed_{seed}", [p])
    dirs = [str(tmp_path / r) for r in "abc"]
    capsys.readouterr()  # what training printed
    assert cli_main(["runs", *dirs, "--compare", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    a = out["recipes"][0]
    assert a["rates"] == pytest.approx([1 / 12, 1 / 12, 2 / 12], abs=1e-4)
    assert a["mean"] == pytest.approx(4 / 36, abs=1e-4)
    # se^2 = (seed variance + mean squared task se) / K
    seed_var = np.var([1 / 12, 1 / 12, 2 / 12], ddof=1)
    task_var = np.mean([p * (1 - p) / 12 for p in (1 / 12, 1 / 12, 2 / 12)])
    assert a["se"] == pytest.approx(math.sqrt((seed_var + task_var) / 3), abs=1e-4)
    ab, ac = out["comparisons"]
    assert abs(ab["diff"]) < 2 * ab["se"] and ab["verdict"] == "tie"
    assert ac["diff"] > 2 * ac["se"] and ac["verdict"] == f"{dirs[2]} better"
    assert cli_main(["runs", *dirs[:2], "--compare"]) == 0
    text = capsys.readouterr().out
    assert "-> tie (|diff| < 2 se)" in text and "over 3 run(s)" in text
    with pytest.raises(DataError, match="no run with a dev pass rate"):
        compare([tmp_path / "a", make_pretrain(tmp_path / "p")])
