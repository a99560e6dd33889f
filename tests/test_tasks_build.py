"""`codeling tasks`: real MBPP + synthetic data through the real sandbox and decontamination."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.build import build_tasks
from codeling.tasks.schema import read_tasks

CLI = [sys.executable, "-m", "codeling.cli"]


def test_build_mixes_sources_and_reports(tmp_path):
    he = load_benchmark("humaneval")[7]
    leaked = he.to_dict() | {"task_id": "teacher/leak", "source": "teacher",
                             "category": "lists", "level": 2}
    for key in ("prompt", "canonical_solution", "test"):
        leaked[key] = re.sub(rf"\b{he.entry_point}\b", "renamed_fn", leaked[key])
    leaked["entry_point"] = "renamed_fn"
    src = tmp_path / "teacher.jsonl"
    src.write_text(json.dumps(leaked) + "\n")
    report = build_tasks(tmp_path / "out", ["mbpp", "synthetic", str(src)], n=500, seed=1,
                         progress=False)
    train = read_tasks(tmp_path / "out/train.jsonl")
    val = read_tasks(tmp_path / "out/val.jsonl")
    assert report["n_train"] == len(train) and report["n_val"] == len(val)
    assert len(train) + len(val) >= 500 + 300
    assert {"mbpp", "synthetic"} <= set(report["by_source"])
    ids = {t.task_id for t in train + val}
    assert "teacher/leak" not in ids
    assert any(h["task_id"] == "teacher/leak" and h["eval_task_id"] == he.task_id
               for h in report["contamination"]["tasks"])
    mbpp_ids = [int(t.task_id.split("/")[-1]) for t in train + val if t.source == "mbpp"]
    assert mbpp_ids and min(mbpp_ids) >= 511  # the test split is never training data
    assert all(len(t.canonical_solution.strip().splitlines()) <= 20
               for t in train + val if t.source == "mbpp")
    assert report["dropped"].get("mbpp: solution longer than max_solution_lines", 0) > 0
    assert set(report["lengths"]) == {"prompt_chars", "solution_chars", "solution_lines"}


def test_allow_contamination_keeps_with_warning(tmp_path):
    he = load_benchmark("humaneval")[3]
    src = tmp_path / "t.jsonl"
    src.write_text(json.dumps(he.to_dict() | {"task_id": "teacher/copy"}) + "\n")
    res = subprocess.run([*CLI, "tasks", "--sources", str(src), "--out", str(tmp_path / "o"),
                          "--allow-contamination", "--quiet"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "allow-contamination" in res.stderr
    report = json.loads((tmp_path / "o/report.json").read_text())
    assert report["contamination"]["hits"] == 1
    kept = read_tasks(tmp_path / "o/train.jsonl") + read_tasks(tmp_path / "o/val.jsonl")
    assert [t.task_id for t in kept] == ["teacher/copy"]


def test_bad_inputs_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "a", "prompt": "def f():\\n", "entry_point": "f", '
                   '"canonical_solution": "    return 1\\n", "test": ""}\n{"task_id": "b"}\n')
    res = subprocess.run([*CLI, "tasks", "--sources", str(bad), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "bad.jsonl" in res.stderr and "bad.jsonl:2" in res.stderr
    res = subprocess.run([*CLI, "tasks", "--sources", "synthetic", "--categories", "lists,nope",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "nope" in res.stderr and "strings" in res.stderr
