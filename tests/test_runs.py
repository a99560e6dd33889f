"""codeling runs: discovery, the experiments table, the decision rule, JSON/CSV, bad files.

Run folders are written in the exact formats the stages write (train.py, pretrain.py, sft.py,
evaluate/live.py, evaluate/harness.py, tasks/build.py); `make_pipeline` is reused by
test_report.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import pytest

from codeling.cli import main as cli_main
from codeling.config import load_config, save_config
from codeling.io import DataError
from codeling.runs import VERDICTS, collect_runs, format_table, status, to_csv, verdict

CATS = ["string", "math", "list"]


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def write_lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_pretrain(d: Path, steps: int = 100, final: bool = True) -> Path:
    write_json(d / "run.json", {"stage": "pretrain", "params": 1_300_000,
                                "corpus": "/data/corpus", "tokenizer": "/data/tok",
                                "tokens": {"train": 2_500_000, "val": 50_000}, "world_size": 1})
    save_config(load_config(None, ["name=cpu", "pretrain.steps=100", "model.n_layer=2"]),
                d / "config.toml")  # a real resolved config, as train.py saves it
    rows = []
    for s in range(10, steps + 1, 10):
        rows.append({"step": s, "loss": 6.0 - s / 50, "lr": 1e-3, "grad_norm": 1.0,
                     "tokens": s * 4096, "tokens_per_s": 9000.0, "elapsed_s": s * 0.45,
                     "phase": 0})
        if s % 50 == 0:
            rows[-1].update(val_loss=6.1 - s / 50, val_ppl=2.7 ** (6.1 - s / 50))
    write_lines(d / "metrics.jsonl", rows)
    (d / "checkpoints" / f"step_{steps}").mkdir(parents=True)
    if final:
        (d / "checkpoints" / "final").mkdir()
    return d


def eval_dict(step: int, passed: int, n: int = 20) -> dict:
    return {"score": passed, "pass": passed, "n_tasks": n, "pass@1": passed / n,
            "syntax_valid": 0.5 + step / 1000, "collapse_rate": 0.25 - step / 1000,
            "by_category": {c: {"pass@1": (passed / n) * (i + 1) / 3, "n_tasks": 7}
                            for i, c in enumerate(CATS)}}


def samples(passed: int, n: int = 20) -> list[dict]:
    return [{"task_id": f"mini/{i}", "sample_idx": 0,
             "completion": f"    return x + {i}\n" if i < passed else "    return return\n",
             "passed": i < passed, "result": "passed" if i < passed else "failed: AssertionError",
             "syntax_ok": i < passed, "collapse": None if i < passed else "return return",
             "sample_index": i} for i in range(n)]


def make_sft(d: Path, passes: list[int], init: Path | None = None, final: bool = True,
             target: int = 60) -> Path:
    """An SFT run with one generation eval every 20 steps scoring `passes` in turn."""
    write_json(d / "run.json", {"stage": "sft", "mode": "lora",
                                "init": str(init or "/r/pretrain/checkpoints/final"),
                                "tasks": str(d.parent / "tasks"), "params": 1_300_000,
                                "trainable_params": 40_000, "n_train": 950, "n_val": 50,
                                "dropped_too_long": 3})
    save_config(load_config(None, ["name=cpu", f"sft.steps={target}"]), d / "config.toml")
    rows, best = [], None
    for i, p in enumerate(passes):
        step = 20 * (i + 1)
        ev = eval_dict(step, p)
        rows.append({"step": step, "loss": 2.0 - i * 0.3, "lr": 1e-4, "grad_norm": 0.5,
                     "tokens": step * 2000, "tokens_per_s": 3000.0, "elapsed_s": step * 1.5,
                     "val_loss": 2.1 - i * 0.3, "val_ppl": 8.0,
                     **{k: v for k, v in ev.items() if k != "by_category"}, "phase": 0})
        write_json(d / "evals" / f"step_{step}.json", {"step": step, "val_loss": 2.0, **ev})
        write_lines(d / "evals" / f"samples_step_{step}.jsonl", samples(p))
        if best is None or p > best["score"]:
            best = {"step": step, "score": p, "metrics": rows[-1]}
    write_lines(d / "metrics.jsonl", rows)
    if best:
        write_json(d / "best.json", best)
    (d / "checkpoints" / f"step_{20 * len(passes)}").mkdir(parents=True)
    if final:
        (d / "checkpoints" / "final").mkdir()
    return d


def make_eval(d: Path, benchmark: str, passed: int, n: int) -> Path:
    """A `codeling evaluate --out` folder."""
    write_lines(d / "results.jsonl", [{**r, "task_id": f"{benchmark}/{r['task_id']}"}
                                      for r in samples(passed, n)])
    write_json(d / "summary.json", {"benchmark": benchmark, "pass@1": passed / n,
                                    "syntax_valid": 0.9, "collapse_rate": 0.05,
                                    "n_tasks": n, "by_category": {}})
    return d


def make_pipeline(root: Path, passes: list[int], humaneval: int | None = 3) -> Path:
    """A pipeline run dir: pretrain/, tasks/report.json, sft/, eval/{mini,humaneval}/."""
    make_pretrain(root / "pretrain")
    write_json(root / "tasks" / "report.json", {
        "sources": ["mbpp", "synthetic"], "n_train": 950, "n_val": 50,
        "by_source": {"mbpp": 300, "synthetic": 700}, "by_category": {"math": 500},
        "dropped": {"contaminated": 4, "duplicate": 12},
        "contamination": {"checked_against": ["mini", "humaneval"], "hits": 4, "tasks": []}})
    make_sft(root / "sft", passes, init=root / "pretrain" / "checkpoints" / "final")
    make_eval(root / "eval" / "mini", "mini", max(passes), 20)
    if humaneval is not None:
        make_eval(root / "eval" / "humaneval", "humaneval", humaneval, 164)
    return root


def test_decision_rule_thresholds():
    assert verdict(7, 20) == verdict(5, 20) == VERDICTS["success"] == "success"
    assert verdict(3, 20) == verdict(1, 20) == VERDICTS["partial"]
    assert "Option B" in verdict(4, 20)
    assert verdict(0, 20) == VERDICTS["zero"] and "bigger model" in verdict(0, 20)
    assert verdict(None, None) == "n/a"
    assert verdict(9, 40) == VERDICTS["partial"] and verdict(10, 40) == "success"


def test_table_rows_and_verdicts(tmp_path):
    for name, passes in (("zero", [0, 0]), ("three", [1, 3, 2]), ("seven", [2, 7, 5])):
        make_sft(tmp_path / "runs" / name, passes)
    make_pretrain(tmp_path / "runs" / "base")
    runs = {r.name: r for r in collect_runs([tmp_path / "runs"])}
    assert sorted(runs) == ["base", "seven", "three", "zero"]
    assert runs["zero"].verdict.startswith("zero")
    assert runs["three"].verdict.startswith("partial") and runs["three"].best_pass == 3
    assert runs["three"].best_step == 40
    seven = runs["seven"]
    assert (seven.verdict, seven.best_pass, seven.n_tasks, seven.best_step) == ("success", 7, 20,
                                                                                 40)
    assert seven.syntax == pytest.approx(0.54) and seven.collapse == pytest.approx(0.21)
    assert (seven.stage, seven.params, seven.trainable_params) == ("sft", 1_300_000, 40_000)
    assert seven.data == "950 tasks" and seven.steps == 60 and seven.status == "done"
    base = runs["base"]
    assert (base.verdict, base.stage, base.base, base.data, base.steps, base.target_steps) == (
        "n/a", "pretrain", "scratch", "2.5M tokens", 100, 100)
    assert base.tokens == 100 * 4096 and base.elapsed_s == pytest.approx(45.0)
    table = format_table(list(runs.values())).splitlines()
    assert table[0].split()[:3] == ["name", "stage", "base"]
    line = next(x for x in table if x.startswith("seven"))
    assert "7/20 @40" in line and "success" in line and "54.0%" in line and "60/60" in line
    assert "1.3M (40k trained)" in line


def test_pipeline_dir_attaches_evals_and_names(tmp_path):
    make_pipeline(tmp_path / "cpu", [0, 2, 1], humaneval=5)
    runs = {r.name: r for r in collect_runs([tmp_path / "cpu"])}
    assert sorted(runs) == ["pretrain", "sft"]  # tasks/ and eval/ are not runs
    sft = runs["sft"]
    assert set(sft.evals) == {"mini", "humaneval"} and not runs["pretrain"].evals
    assert sft.humaneval == pytest.approx(5 / 164)
    assert sft.base == "pretrain/final" and sft.best_pass == 2


def test_final_mini_eval_can_raise_the_best(tmp_path):
    root = make_pipeline(tmp_path / "p", [0, 0])
    make_eval(root / "eval" / "mini", "mini", 6, 20)  # e.g. a merged model evaluated afterwards
    (sft,) = [r for r in collect_runs([root]) if r.stage == "sft"]
    assert (sft.best_pass, sft.best_step, sft.verdict) == (6, None, "success")
    assert sft.syntax == 0.9


def test_status_running_failed_early_stop(tmp_path):
    done = make_sft(tmp_path / "early", [1, 2], target=500)
    assert collect_runs([done])[0].status == "early_stop"
    crashed = make_sft(tmp_path / "crashed", [1], final=False)
    old = time.time() - 3600
    os.utime(crashed / "metrics.jsonl", (old, old))
    assert status(crashed, 20, 60) == "failed"
    assert status(crashed, 20, 60, now=old + 60) == "running"
    live = make_sft(tmp_path / "live", [1], final=False)
    assert collect_runs([live])[0].status == "running"


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
    make_pipeline(tmp_path / "runs" / "cpu", [0, 3])
    make_sft(tmp_path / "runs" / "big", [7])
    assert cli_main(["runs", str(tmp_path / "runs"), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == ["big", "cpu/pretrain", "cpu/sft"]
    assert rows["cpu/sft"]["best_pass"] == 3 and rows["cpu/sft"]["verdict"].startswith("partial")
    assert rows["cpu/sft"]["evals"]["humaneval"]["pass@1"] == pytest.approx(3 / 164)
    assert rows["big"]["verdict"] == "success"
    assert cli_main(["runs", str(tmp_path / "runs"), "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in table] == ["big", "cpu/pretrain", "cpu/sft"]
    assert table[2]["best_pass"] == "3" and table[1]["best_pass"] == ""
    assert float(table[2]["humaneval_pass@1"]) == pytest.approx(3 / 164)
    assert float(table[2]["mini pass@1"]) == pytest.approx(3 / 20)
    assert cli_main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "cpu/sft" in out and "3/20" in out and "1.8%" in out
    assert cli_main(["runs", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_clashing_names_are_qualified(tmp_path):
    make_pipeline(tmp_path / "a", [1])
    make_pipeline(tmp_path / "b", [5])
    names = sorted(r.name for r in collect_runs([tmp_path / "a", tmp_path / "b"]))
    assert names == ["a/pretrain", "a/sft", "b/pretrain", "b/sft"]
    assert to_csv([]).startswith("name,")


def test_a_real_tiny_training_run(tmp_path):
    """The loop's own files (train.train with an evaluator shaped like evaluate/live.py's)."""
    import numpy as np
    import torch

    from codeling.config import Config, ModelConfig, TrainConfig
    from codeling.data import EvalWindows, RandomWindows
    from codeling.model import CodelingLM
    from codeling.objectives import LMObjective
    from codeling.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on 2 shared cores thrash
    shard = np.tile(np.arange(1, 13, dtype=np.uint16), 100)
    tc = TrainConfig(steps=12, batch_size=2, seq_len=8, warmup=1, log_every=2, eval_every=2,
                     eval_batches=1, save_every=0, early_stop=2, device="cpu")
    config = Config(sft=tc)
    passes = {2: 1, 4: 3, 6: 2, 8: 2, 10: 2, 12: 2}

    def evaluator(model, step):
        return {**eval_dict(step, passes[step]), "score": passes[step]}

    d = tmp_path / "tiny"
    write_json(d / "run.json", {"stage": "sft", "params": 1000, "n_train": 12})
    torch.manual_seed(0)
    model = CodelingLM(ModelConfig(vocab_size=16, n_layer=1, n_head=2, n_kv_head=1, d_model=16,
                                   max_seq_len=16))
    try:
        train(model, LMObjective(), RandomWindows(shard, 2, 8, seed=0), tc, d,
              val_data=EvalWindows(shard, 2, 8, 1), evaluator=evaluator, config=config,
              progress=False)
    finally:
        torch.set_num_threads(threads)
    (run,) = collect_runs([d])
    assert (run.best_pass, run.best_step, run.steps, run.target_steps) == (3, 4, 8, 12)
    assert (run.status, run.verdict) == ("early_stop", VERDICTS["partial"])
    assert run.tokens == 8 * 2 * 8 and run.elapsed_s > 0
