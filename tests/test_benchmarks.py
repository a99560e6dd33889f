"""Benchmark loaders: counts, shapes, pinned hashes, precise errors; mini's tests really judge."""

from __future__ import annotations

import ast
import gzip
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codeling.io import DataError
from codeling.tasks.benchmarks import (
    BENCHMARKS,
    benchmark_names,
    content_hash,
    load_benchmark,
    locate,
    mbpp_records,
    mbpp_to_task,
    stop_sequences,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")


def run(program: str, timeout: float = 30) -> bool:
    return subprocess.run([sys.executable, "-c", program], capture_output=True,
                          timeout=timeout).returncode == 0


def test_names_and_stop_sequences():
    assert benchmark_names() == ["mini", "humaneval", "humaneval+", "mbpp", "mbpp+"]
    assert stop_sequences("humaneval") == ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
    assert "\ndef" not in stop_sequences("mbpp+")  # the model writes the def itself
    for s in BENCHMARKS.values():
        assert s.timeout > 0 and s.count > 0 and s.prompt_convention


def test_unknown_benchmark_suggests_nearest():
    with pytest.raises(ValueError, match=r"valid: mini, humaneval.*Did you mean 'humaneval'"):
        load_benchmark("humanevl")


@pytest.mark.parametrize("name,count", [("mini", 20), ("humaneval", 164)])
def test_packaged_counts(name, count):
    tasks = load_benchmark(name)
    assert len(tasks) == count and len({t.task_id for t in tasks}) == count
    for t in tasks:
        assert t.prompt.endswith("\n") and t.source == name and t.category
        assert f"def {t.entry_point}(" in t.prompt and "def check(candidate)" in t.test


@needs_shared
@pytest.mark.parametrize("name,count", [("humaneval+", 164), ("mbpp", 500), ("mbpp+", 378)])
def test_shared_counts(name, count):
    tasks = load_benchmark(name, data_dir=SHARED)
    assert len(tasks) == count
    for t in tasks:
        ast.parse(t.prompt + t.canonical_solution + "\n" + t.test)  # every program is Python


@needs_shared
def test_mbpp_prompt_shape_and_splits():
    sizes = {s: len(mbpp_records(s, data_dir=SHARED))
             for s in ("prompt", "test", "validation", "train")}
    assert sizes == {"prompt": 10, "test": 500, "validation": 90, "train": 374}
    task = mbpp_to_task(mbpp_records("test", data_dir=SHARED)[0])
    assert task.task_id == "mbpp/11" and task.entry_point == "remove_Occ"
    assert task.prompt == ('def remove_Occ(s, ch):\n    """ Write a python function to remove '
                           "first and last occurrence of a given character from the string.\n"
                           "    >>> remove_Occ('hello', 'l')\n    'heo'\n    \"\"\"\n")
    assert "\r" not in task.canonical_solution and "\t" not in task.canonical_solution
    assert task.test.count("assert remove_Occ(") == 3
    assert run(task.program(task.canonical_solution))
    assert not run(task.program("    return s\n"))


@needs_shared
def test_mbpp_keeps_imports_helpers_and_renames_check():
    recs = {r["task_id"]: r for r in mbpp_records("test", data_dir=SHARED)}
    t13 = mbpp_to_task(recs[13])  # `from collections import Counter` goes into the prompt
    assert t13.prompt.startswith("from collections import Counter\n")
    t56 = mbpp_to_task(recs[56])  # `check` would be shadowed by the test's check()
    assert t56.entry_point == "check_input" and "def check_input(" in t56.prompt
    for t in (t13, t56, mbpp_to_task(recs[367])):  # 367: helper class after the body
        assert run(t.program(t.canonical_solution)), t.task_id


@needs_shared
def test_plus_tests_judge_and_restore_types():
    tasks = {t.task_id: t for t in load_benchmark("mbpp+", data_dir=SHARED)}
    he = {t.task_id: t for t in load_benchmark("humaneval+", data_dir=SHARED)}
    for tid in ("Mbpp/2", "Mbpp/580", "Mbpp/124"):  # set compare; nested tuples; complex
        t = tasks[tid]
        assert run(t.program(t.canonical_solution)), tid
    wrong = f"def {tasks['Mbpp/2'].entry_point}(a, b):\n    return ()\n"
    assert not run(tasks["Mbpp/2"].program(wrong))
    zero = he["HumanEval/32"]  # any root passes, a non-root does not
    assert run(zero.program(zero.canonical_solution))
    assert not run(zero.program("    return 0.5\n"))


def _copy_shared(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / BENCHMARKS[name].filename
    shutil.copy(SHARED / BENCHMARKS[name].filename, dest)
    return dest


@needs_shared
def test_sha_mismatch_is_an_error(tmp_path):
    dest = _copy_shared(tmp_path, "mbpp+")
    data = bytearray(gzip.decompress(dest.read_bytes()))
    data[100:101] = b"X" if data[100:101] != b"X" else b"Y"
    dest.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_benchmark("mbpp+", data_dir=tmp_path)


@needs_shared
def test_mbpp_content_hash_accepts_reserialised_copy(tmp_path):
    recs = mbpp_records("prompt", data_dir=SHARED)  # warm check that the shared copy is fine
    assert recs[0]["task_id"] == 1
    dest = tmp_path / "mbpp.jsonl"  # same records, other bytes (as upstream's file is)
    rows = [json.loads(line) for line in (SHARED / "mbpp.jsonl").read_text().splitlines()]
    dest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    assert content_hash(rows) == BENCHMARKS["mbpp"].content_sha256
    assert locate("mbpp", data_dir=tmp_path) == dest
    rows[5]["text"] += "!"  # a changed record is not accepted
    dest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="sha256 mismatch"):
        locate("mbpp", data_dir=tmp_path)


def test_missing_file_in_explicit_dir(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_benchmark("humaneval+", data_dir=tmp_path)


def test_malformed_jsonl_names_file_line_field(tmp_path):
    from codeling.tasks.schema import read_tasks

    good = load_benchmark("mini")[0].to_dict()
    bad = dict(good, task_id="mini/x")
    del bad["entry_point"]
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=r"tasks\.jsonl:2: field 'entry_point'"):
        read_tasks(path)


def test_mini_canonical_pass_and_wrong_solutions_fail():
    tasks = load_benchmark("mini")
    wrong = ["    return 0\n", "    return None\n", "    return []\n", "    return ''\n"]
    programs = [t.program(t.canonical_solution) for t in tasks]
    for t in tasks:
        programs += [t.program(w) for w in wrong]
        # an off-by-one: the canonical answer plus one (or a list/str with an extra item)
        programs.append(t.program("    def _ref():\n" + textwrap.indent(t.canonical_solution, "    ")
            + "    r = _ref()\n    return r + 1 if isinstance(r, int) and not isinstance(r, bool)"
              " else (r + r[:1] if r else [0]) if isinstance(r, (list, str)) else not r\n"))
    script = "import subprocess, sys, json\n" \
             f"ps = {programs!r}\n" \
             "print(json.dumps([subprocess.run([sys.executable, '-c', p], capture_output=True)" \
             ".returncode == 0 for p in ps]))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=240)
    verdicts = json.loads(out.stdout)
    assert all(verdicts[:len(tasks)]), [t.task_id for t, v in zip(tasks, verdicts) if not v]
    wrong_passed = [i for i, v in enumerate(verdicts[len(tasks):]) if v]
    assert wrong_passed == [], wrong_passed


def test_mini_prompts_are_unambiguous():
    for t in load_benchmark("mini"):
        assert ">>>" in t.prompt and t.level in (1, 2)
        assert t.prompt.count('"""') == 2
    mv = next(t for t in load_benchmark("mini") if t.entry_point == "max_value")
    assert "None if the list is empty" in mv.prompt


@needs_shared
def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.delenv("CODELING_DATA_DIR", raising=False)
    # no argument, no env: found in the shared/data folder above the checkout
    assert locate("mbpp+", cache_dir=tmp_path).resolve() == (SHARED / "MbppPlus-v0.2.0.jsonl.gz").resolve()
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    copy = _copy_shared(env_dir, "mbpp+")  # the env folder wins over shared/data
    monkeypatch.setenv("CODELING_DATA_DIR", str(env_dir))
    assert locate("mbpp+", cache_dir=tmp_path) == copy
