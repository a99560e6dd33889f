"""codeling report: plots are real PNGs, report.md/.html hold every section, several runs
overlay, and bad input gives a clear error. Run folders come from test_runs' builders."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from codeling.cli import main as cli_main
from codeling.config import ConfigError
from codeling.io import DataError
from codeling.report import Doc, plot_categories, plot_evals, plot_losses, write_report
from codeling.runs import collect_runs
from test_runs import make_pipeline, make_pretrain, make_sft

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTIONS = ["# codeling report card", "## Runs", "## Final metrics", "## Plots", "## Data",
            "## Wall time and tokens", "## Hardware", "## Example generations", "## Config"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def test_pipeline_report(tmp_path):
    root = make_pipeline(tmp_path / "cpu", [0, 3, 2], humaneval=5)
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
    runs_table = md[md.index("## Runs"):md.index("## Final metrics")]
    assert "| sft | sft | pretrain/final |" in runs_table and "3/20 @40" in runs_table
    assert "partial: more data or Option B" in runs_table and "n/a" in runs_table
    assert "3.0%" in md  # humaneval 5/164 in the final-metrics table
    data = md[md.index("## Data"):md.index("## Wall time")]
    assert "train 950, val 50" in data and "contamination: 4 hits against mini, humaneval" in data
    assert "contaminated: 4" in data and "2.5M tokens" in data
    assert "| pretrain | 0m45s | 410k |" in md  # elapsed 45 s, 100 × 4096 tokens
    examples = md[md.index("## Example generations"):md.index("## Config")]
    assert "sft · mini/0 · passed (passed)" in examples  # from evals/samples_step_40.jsonl
    assert "mini/3 · failed (failed: AssertionError; collapse: return return)" in examples
    assert "    return return" in examples
    assert "[pretrain]" in md[md.index("## Config"):] and "torch" in md
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and '<img src="loss.png"' in page
    assert "<h2>Example generations</h2>" in page and "<td>3/20 @40</td>" in page
    assert page.count("<table>") == 3  # runs, final metrics, wall time


def test_several_runs_overlay_with_out(tmp_path):
    a = make_sft(tmp_path / "a", [0, 1])
    b = make_sft(tmp_path / "b", [2, 7, 6])
    base = make_pretrain(tmp_path / "base")
    runs = collect_runs([a, b, base])
    assert plot_losses(runs, tmp_path / "l.png") == ["a", "b", "base"]
    assert plot_evals(runs, tmp_path / "e.png") == ["a", "b"]  # base has no generation evals
    assert plot_categories(runs, tmp_path / "c.png") == ["a", "b"]
    assert plot_evals(runs[2:], tmp_path / "none.png") == []
    assert not (tmp_path / "none.png").exists()
    both = write_report([a, b], tmp_path / "both")
    for name in ("loss.png", "evals.png", "categories.png"):
        png_size(both.parent / name)
    md = both.read_text()
    assert "| a | sft |" in md and "| b | sft |" in md and "7/20 @40" in md
    with pytest.raises(ConfigError, match="--out"):
        write_report([a, b])


def test_pretrain_only_report_skips_eval_plots(tmp_path):
    run = make_pretrain(tmp_path / "base")
    md = write_report([run]).read_text()
    assert (run / "report" / "loss.png").exists()
    assert not (run / "report" / "evals.png").exists()
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
    with (root / "sft" / "metrics.jsonl").open("a") as f:
        f.write("{oops\n\n")
    with pytest.raises(DataError, match=r"sft/metrics\.jsonl:2"):
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
    assert "1.2%" in md and "contamination: 4 hits" in md  # eval/ and tasks/ beside the runs
