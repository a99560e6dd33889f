"""codeling report: plots are real PNGs drawn from the evaluator's real output, report.md/.html
hold every section (selection and twins per benchmark included), several runs overlay, and bad
input gives a clear error. Run folders come from test_runs' builders (real tiny runs)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from codeling.cli import main as cli_main
from codeling.config import ConfigError, SftConfig
from codeling.evaluate.live import dev_evaluator
from codeling.io import DataError, atomic_write_json
from codeling.report import write_report
from codeling.reporting.doc import Doc
from codeling.reporting.plots import plot_breakdown, plot_evals, plot_losses, plot_solution_loss
from codeling.runs import collect_runs
from codeling.tasks.schema import write_tasks
from helpers import real_task_report, tiny_model_and_tokenizer
from test_runs import dev_tasks, make_pipeline, make_pretrain, make_sft, tiny_train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = ["# codeling report card", "## Runs", "## Final metrics",
            "## Selection and contamination", "## Plots", "## Data", "## Wall time and tokens",
            "## Hardware", "## Example generations", "## Config"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def section(md: str, start: str, end: str) -> str:
    return md[md.index(start):md.index(end)]


def test_pipeline_report(tmp_path):
    root = make_pipeline(tmp_path / "cpu", [0, 3, 2], mini=4, humaneval=5)
    md_path = write_report([root])
    out = root / "report"
    assert md_path == out / "report.md"
    for name in ("loss.png", "evals.png", "categories.png"):
        w, h = png_size(out / name)
        assert w > 300 and h > 200
    md = md_path.read_text()
    positions = [md.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    for img in ("loss.png", "evals.png", "categories.png"):
        assert f"]({img})" in md
    runs_table = section(md, "## Runs", "## Final metrics")
    assert "| sft | sft | pretrain/final |" in runs_table and "| dev @8 | 3/12 ±1.5 | 4/20 |" in runs_table
    assert "partial: more data or Option B" in runs_table and "n/a" in runs_table
    assert "3.0% ±1.3" in md  # humaneval 5/164 in the final-metrics table, with its error
    sel = section(md, "## Selection and contamination", "## Plots")
    rep = real_task_report(False)  # the tasks/report.json of a real, clean build
    dropped = {b: v["train_tasks_dropped"] for b, v in rep["twins"].items()}
    assert dropped["mini"] > 0  # twins were found and dropped: none is left in training
    assert (f"| sft | mini | 20.0% ±8.9 | 0 | {dropped['mini']} | chosen on the dev set (never "
            "reported) |") in sel
    assert f"| sft | humaneval | 3.0% ±1.3 | 0 | {dropped['humaneval']} |" in sel
    assert "| pretrain |  |  |  |  | chosen on validation loss (no dev set) |" in sel
    assert "CONTAMINATED" not in md
    data = section(md, "## Data", "## Wall time")
    assert (f"train {rep['n_train']}, val {rep['n_val']}, dev {rep['dev']['n']}; sources: "
            f"synthetic {rep['by_source']['synthetic']}") in data
    assert f"{rep['contamination']['hits']} hits against mini, humaneval (dropped)" in data
    twin_drops = [k for k in rep["dropped"] if k.startswith("behavioural twin of ")]
    assert twin_drops and all(f"{k}: {rep['dropped'][k]}" in data for k in twin_drops)
    assert "?" not in data and "2.5M tokens" in data  # every field was found in the real report
    assert "| pretrain |" in section(md, "## Wall time", "## Hardware")
    examples = section(md, "## Example generations", "## Config")
    task = dev_tasks()[0]  # from evals/samples_step_8.jsonl, which carries the prompt
    assert f"sft · {task.task_id} · passed (passed)" in examples
    assert task.prompt.strip().splitlines()[0] in examples
    assert "failed (failed: SyntaxError" in examples and "return return" in examples
    assert "[pretrain]" in md[md.index("## Config"):] and "torch" in md
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and '<img src="loss.png"' in page
    assert "<h2>Example generations</h2>" in page and "<td>dev @8</td>" in page
    assert page.count("<table>") == 4  # runs, final metrics, selection, wall time


def test_contaminated_data_is_said_loudly(tmp_path):
    root = make_pipeline(tmp_path / "c", [1], contaminated=True)
    mini = real_task_report(True)["twins"]["mini"]
    n, kept = mini["eval_tasks_with_twin"], mini["train_tasks_kept"]
    assert n > 0 and kept >= n and mini["train_tasks_dropped"] == 0
    md = write_report([root]).read_text()
    sel = section(md, "## Selection and contamination", "## Plots")
    assert f"| sft | mini | 5.0% ±4.9 | CONTAMINATED: mini {n} | 0 |" in sel  # kept, none dropped
    assert "CONTAMINATED: its training data kept behavioural twins" in sel
    assert "CONTAMINATED: humaneval " in section(md, "## Runs", "## Final metrics")


def test_categories_from_a_real_dev_evaluator_run(tmp_path):
    """The loop + dev_evaluator + a real tiny model: the breakdown reaches categories.png."""
    model, tok = tiny_model_and_tokenizer()
    tasks = dev_tasks(4)
    write_tasks(tmp_path / "tasks" / "dev.jsonl", tasks)
    d = tmp_path / "sft"
    ev = dev_evaluator(tok, SftConfig(eval_max_new_tokens=6), d, tmp_path / "tasks")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # the evaluator generates with its own model: the tiny loop trains a stand-in
        tiny_train(d, 4, None, lambda _m, step: ev(model, step))
    finally:
        torch.set_num_threads(threads)
    best = json.loads((d / "best.json").read_text())
    assert best["selected_on"] == "dev" and best["eval"]["n_tasks"] == 4
    assert set(best["eval"]["per_category"]) == {t.category for t in tasks}
    (run,) = collect_runs([d])
    assert plot_breakdown([run], tmp_path / "c.png") == ["sft"]
    png_size(tmp_path / "c.png")
    assert run.selected_on == "dev" and run.dev_n == 4
    # the solution loss of every dev task, logged at each eval and plotted
    # (tasks longer than sft.seq_len + 1 tokens are left out, as training leaves them out)
    assert best["eval"]["solution_loss"] > 0 and 0 < best["eval"]["solution_loss_tasks"] <= 4
    assert run.solution_loss == best["eval"]["solution_loss"]
    assert [m["solution_loss"] for m in run.metrics if "solution_loss" in m]  # metrics lines
    assert plot_solution_loss([run], tmp_path / "s.png") == ["sft"]
    w, h = png_size(tmp_path / "s.png")
    assert w > 300 and h > 200


def test_several_runs_overlay_with_out(tmp_path):
    a = make_sft(tmp_path / "a", [0, 1])
    b = make_sft(tmp_path / "b", [2, 7, 6])
    base = make_pretrain(tmp_path / "base")
    runs = collect_runs([a, b, base])
    assert plot_losses(runs, tmp_path / "l.png") == ["a", "b", "base"]
    assert plot_evals(runs, tmp_path / "e.png") == ["a", "b"]  # base has no generation evals
    assert plot_breakdown(runs, tmp_path / "c.png") == ["a", "b"]
    assert plot_evals(runs[2:], tmp_path / "none.png") == []
    assert not (tmp_path / "none.png").exists()
    both = write_report([a, b], tmp_path / "both")
    for name in ("loss.png", "evals.png", "categories.png"):
        png_size(both.parent / name)
    md = both.read_text()
    assert "| a | sft |" in md and "| b | sft |" in md and "| dev @8 | 7/12 ±1.7 |" in md
    with pytest.raises(ConfigError, match="--out"):
        write_report([a, b])


def test_pretrain_only_report_skips_eval_plots(tmp_path):
    run = make_pretrain(tmp_path / "base")
    md = write_report([run]).read_text()
    assert (run / "report" / "loss.png").exists()
    assert not (run / "report" / "evals.png").exists()
    assert not (run / "report" / "categories.png").exists()
    assert "No generation evals" in md and "scratch" in md


def test_cli_and_errors(tmp_path, capsys):
    root = make_pipeline(tmp_path / "p", [1])
    assert cli_main(["report", str(root), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").exists()
    assert "report.md" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli_main(["report", str(empty)]) == 2
    assert "no run folders" in capsys.readouterr().err
    atomic_write_json(root / "tasks" / "report.json", {"twins": {"mini": "three"}})
    with pytest.raises(DataError, match=r"report\.json.*twins"):
        write_report([root])
    with (root / "sft" / "metrics.jsonl").open("a") as f:
        f.write("{oops\n\n")
    with pytest.raises(DataError, match=r"sft/metrics\.jsonl:"):
        write_report([root])
    assert cli_main(["report", str(root)]) == 2


def test_doc_renders_markdown_and_escaped_html():
    doc = Doc()
    doc.heading("T", 1)
    doc.table(["a", "b"], [["x|y", "<b>"]])
    doc.code("print('```')")
    md, page = doc.markdown(), doc.html("t")
    assert "| x\\|y | <b> |" in md and "````\nprint('```')\n````" in md
    assert "<td>&lt;b&gt;</td>" in page and "<b>" not in page.split("<body>")[1]
    json.dumps(doc.blocks)  # plain data


def test_pipeline_calls_report_with_its_stage_runs(tmp_path):
    """pipeline.py runs `codeling report RUN/pretrain RUN/sft --out RUN/report`."""
    root = make_pipeline(tmp_path / "p", [0, 4], humaneval=2)
    md = write_report([root / "pretrain", root / "sft"], root / "report").read_text()
    assert "| sft | sft | pretrain/final |" in md and "| pretrain | pretrain |" in md
    hits = real_task_report(False)["contamination"]["hits"]
    assert "1.2% ±0.9" in md and f"{hits} hits against" in md  # eval/ and tasks/ beside the runs


def test_wall_time_table_shows_training_speed_and_peak_memory(tmp_path):
    run = make_pretrain(tmp_path / "base")
    part = section(write_report([run]).read_text(), "## Wall time and tokens", "## Hardware")
    header, _, row = [ln for ln in part.splitlines() if ln.startswith("|")][:3]
    assert "training tokens/s (median)" in header and "MFU (median)" in header
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] and cells[6].endswith(" GiB")  # tokens/s and this process's peak memory
    assert cells[5] == ""  # no MFU on a CPU without pretrain.peak_flops: blank, not a guess
