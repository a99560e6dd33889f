"""scripts/gpu_check.sh --tiny: the GPU check's every section at tiny shapes on the CPU, through
the one command a GPU user runs, so the script cannot rot before a GPU is at hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402  (bench/ is scripts, not a package)


def test_a_failing_section_is_recorded_and_the_rest_still_runs(tmp_path):
    check = gpu_check.Check(tmp_path, 60.0, {"started": "now", "mode": "tiny", "budget_s": 60.0,
                                              "command": "test"})
    assert check.run("env", lambda: 1 / 0) is None
    assert check.run("peak", lambda: {"peak_flops": 1e12, "source": "test"})["peak_flops"] == 1e12
    check.budget = 0.0
    assert check.run("generate", lambda: {"batch_1": {}}) is None
    rep = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    assert rep["env"]["status"] == "error" and "ZeroDivisionError" in rep["env"]["error"]
    assert rep["peak"]["status"] == "ok"
    assert rep["generate"] == {"status": "skipped", "reason": "the time budget was spent"}
    md = (tmp_path / "gpu_check.md").read_text()
    assert "- env: error: ZeroDivisionError" in md and "- generate: skipped" in md


@pytest.mark.slow
def test_tiny_check_writes_both_files_with_every_figure(tmp_path):
    out = tmp_path / "check"
    res = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(out), "--tiny"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rep = json.loads((out / "gpu_check.json").read_text())
    s = rep["sections"]
    assert s["env"]["torch"] and s["env"]["device"] == "cpu" and "bf16" in s["env"]
    assert s["peak"]["peak_flops"] > 0  # measured: no CPU is in the table
    for preset in gpu_check.PRESETS:
        r = s[f"pretrain/{preset}/eager"]
        assert r["status"] == "ok" and r["tokens_per_s"] > 0 and r["peak_mem_mb"] > 0
        assert r["mfu"] > 0 and r["logged_mfu"] is not None  # the loop logs it too
        assert s[f"pretrain/{preset}/compiled"]["status"] == "skipped"
    assert s["fit_24gb"]["fits_24gb"] is True and s["fit_24gb"]["seq_len"] == 512
    gen = s["generate"]
    assert gen["batch_1"]["tokens"] == gen["new_tokens"]
    assert gen["batch_32"]["tokens"] == 32 * gen["new_tokens"]
    assert s["pipeline"]["green"] and set(s["pipeline"]["stages"]) == {
        "corpus", "tokenizer", "pretrain", "tasks", "sft", "evaluate"}
    assert "pass@1" in s["pipeline"]["results"]["mini"]
    md = (out / "gpu_check.md").read_text()
    for heading in ("## Environment", "## Pretraining speed", "## v2-105m at its longest",
                    "## Generation", "## Shortened v1-29m pipeline", "## Errors and skips"):
        assert heading in md
