"""The function-level corpus: units, ranking, exercises, twins, mixture, anneal, rebuilds."""

from __future__ import annotations

import calendar
import json
import shutil
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest

from codeling import data
from codeling.corpus import build_corpus
from codeling.corpus_exercises import exercise_tasks, held_out, render_exercise
from codeling.corpus_quality import file_signals, score, unit_signals
from codeling.corpus_sources import expand, fetch_pip, resolve
from codeling.corpus_units import extract_units, file_facts, parse
from codeling.io import DataError, read_jsonl
from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.dev import is_dev_recipe

STDLIB = Path(sysconfig.get_paths()["stdlib"])
JSON_PKG = STDLIB / "json"


def units_of(module) -> dict:
    text = Path(module.__file__).read_text()
    return {u.qualname: u for u in extract_units(text, module.__name__)}


# ---- units -----------------------------------------------------------------------------------

def test_units_of_a_real_module_and_why_they_drop() -> None:
    got = units_of(textwrap)
    assert got["indent"].reason is None and got["indent"].unresolved == []
    assert got["dedent"].reason == "not_self_contained"
    assert got["dedent"].unresolved == ["_leading_whitespace_re", "_whitespace_only_re"]
    assert got["wrap"].unresolved == ["TextWrapper"]  # a class of the same module
    assert got["TextWrapper.__init__"].reason == "no_docstring"
    assert got["TextWrapper._wrap_chunks"].reason == "too_long"
    assert got["TextWrapper.wrap"].is_method and got["TextWrapper.wrap"].reason is None
    # a kept unit runs on its own: defined alone, it behaves as the module's function
    ns: dict = {}
    exec(got["indent"].text, ns)
    assert ns["indent"]("a\n\nb\n", "> ") == textwrap.indent("a\n\nb\n", "> ")


def test_a_unit_carries_the_stdlib_imports_it_uses() -> None:
    unit = units_of(calendar)["weekday"]
    assert unit.reason is None and unit.text.startswith("import datetime\n\n\ndef weekday(")
    ns: dict = {}
    exec(unit.text, ns)
    assert ns["weekday"](2024, 2, 29) == calendar.weekday(2024, 2, 29)


def test_stub_and_non_stdlib_names() -> None:
    text = ('import numpy as np\nfrom . import sibling\nimport os\n\n\n'
            'def stub(x):\n    """Nothing yet."""\n    raise NotImplementedError\n\n\n'
            'def arr(x):\n    """As an array."""\n    return np.asarray(x)\n\n\n'
            'def rel(x):\n    """Via a sibling module."""\n    return sibling.f(x)\n\n\n'
            'def home(user):\n    """A home folder."""\n    return os.path.join("/home", user)\n')
    got = {u.name: u for u in extract_units(text, "m.py")}
    assert got["stub"].reason == "stub"
    assert got["arr"].unresolved == ["np"] and got["rel"].unresolved == ["sibling"]
    assert got["home"].reason is None and got["home"].text.startswith("import os\n")


# ---- ranking ---------------------------------------------------------------------------------

def test_documented_function_ranks_above_a_bare_method() -> None:
    got = units_of(textwrap)
    assert score(unit_signals(got["indent"])) > score(unit_signals(got["TextWrapper.fill"]))
    assert unit_signals(got["TextWrapper.fill"])["standalone"] == 0.5


def test_test_suite_and_vendored_files_rank_low() -> None:
    def file_score(path: Path, label: str) -> tuple[float, dict]:
        text = path.read_text()
        tree = parse(text)
        sig = file_signals(label, file_facts(text, tree, extract_units(text, label, tree=tree)))
        return score(sig), sig

    good, good_sig = file_score(STDLIB / "textwrap.py", "stdlib/textwrap.py")
    test, test_sig = file_score(STDLIB / "test" / "test_textwrap.py",
                                "stdlib/test/test_textwrap.py")
    assert test_sig["not_generated"] == 0.0 and good_sig["not_generated"] == 1.0
    assert good > test
    _, vendored = file_score(STDLIB / "textwrap.py", "site-packages/pip/_vendor/x/textwrap.py")
    assert vendored["not_generated"] == 0.0


# ---- exercises -------------------------------------------------------------------------------

def test_exercises_avoid_dev_families_and_recipes() -> None:
    held = held_out(0, (1, 2, 3), None)
    assert held.families and not held.recipe_ok(next(
        r for r in (f"composed:step{i}" for i in range(200)) if is_dev_recipe(0, r)))
    tasks, info = exercise_tasks(40, 0, held, workers=1)
    assert tasks and info["kept"] == len(tasks)
    for t in tasks:
        assert t.extra["family"] not in held.families and t.task_id.startswith("exercise/")
        if t.extra.get("composed"):
            assert not is_dev_recipe(0, t.extra["family"])
    text = render_exercise(tasks[0])
    ns: dict = {}
    exec(text, ns)  # prompt + solution + a test function that calls it by name
    ns[f"test_{tasks[0].entry_point}"]()
    assert text.count("    assert ") <= 3 and "candidate" not in text


# ---- twins, mixture, determinism ------------------------------------------------------------

def _twin_sources(tmp_path: Path) -> Path:
    """json's files plus two of ours: a documented twin of HumanEval/13 (greatest common
    divisor, Euclid's) under other names, and a near miss one token away (`while b > 1`),
    which fails its tests and every other evaluation task's."""
    he = load_benchmark("humaneval")[13]
    assert he.entry_point == "greatest_common_divisor"
    d = tmp_path / "src"
    shutil.copytree(JSON_PKG, d, ignore=shutil.ignore_patterns("__pycache__"))
    twin = ('def shared_factor(a, b):\n    """The largest number that divides both a and b."""\n'
            '    while b:\n        a, b = b, a % b\n    return a\n')
    near = ('def shared_factor_above_one(a, b):\n'
            '    """Euclid\'s steps while the remainder is above one."""\n'
            '    while b > 1:\n        a, b = b, a % b\n    return a\n')
    (d / "numbers_a.py").write_text("# number helpers\n\n\n" + twin)
    (d / "numbers_b.py").write_text("# other helpers, kept apart\n\n\n" + near)
    return d


@pytest.mark.slow
def test_twin_unit_dropped_and_near_miss_kept(tmp_path: Path) -> None:
    stats = build_corpus(tmp_path / "out", [_twin_sources(tmp_path)], units=0.5, seed=1,
                         val_fraction=0.0, progress=False, workers=2)
    rows = read_jsonl(tmp_path / "out" / "train.jsonl")
    paths = {r["path"] for r in rows}
    assert "src/numbers_b.py::shared_factor_above_one" in paths  # the near miss stays
    assert "src/numbers_b.py" in paths  # and its file
    assert not any("numbers_a.py" in p for p in paths)  # the twin and its file are gone
    tw = stats["twins"]
    twin = [e for e in tw["examples"] if e["doc"] == "src/numbers_a.py::shared_factor"]
    assert twin and "HumanEval/13" in twin[0]["eval_tasks"]
    assert tw["left"] == 0 and tw["files_dropped"] == 1 and tw["dropped"] == 1
    assert stats["units"]["dropped"]["behavioural_twin"] == 1
    assert stats["drops_per_eval_set"] == {"mini": {"units_twin": 1}}  # the first set hit
    assert {r["kind"] for r in rows} == {"file", "unit"}


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    src = _twin_sources(tmp_path)
    kw = dict(units=0.3, exercises=0.1, quality=0.8, anneal_mb=0.02, seed=3,
              val_fraction=0.1, progress=False, twin_check=False, workers=1)
    a = build_corpus(tmp_path / "a", [src], **kw)
    b = build_corpus(tmp_path / "b", [src], **kw)
    for name in ("train.jsonl", "val.jsonl", "anneal.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    def same(s: dict) -> dict:
        s = json.loads(json.dumps(s))
        for key in ("wall_seconds", "seconds"):
            s.pop(key, None)
        s["units"].pop("seconds")
        return s

    assert same(a) == same(b)
    shares = a["mixture"]["shares"]
    assert shares["unit"] > 0 and shares["exercise"] > 0 and shares["file"] > 0.5
    anneal = read_jsonl(tmp_path / "a" / "anneal.jsonl")
    train = read_jsonl(tmp_path / "a" / "train.jsonl")
    assert anneal and min(r["score"] for r in anneal) >= max(
        r["score"] for r in train if r not in anneal)
    assert a["files_ranked"]["dropped"]["below_quality"] > 0


def test_defaults_keep_the_file_corpus(tmp_path: Path) -> None:
    stats = build_corpus(tmp_path / "out", [JSON_PKG], progress=False)
    rows = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert set(rows[0]) == {"path", "text"} and "units" not in stats
    assert not (tmp_path / "out" / "anneal.jsonl").exists()
    assert stats["sources_read"] == [{"source": str(JSON_PKG), "kind": "path"}]


# ---- sources ---------------------------------------------------------------------------------

def test_named_sources_are_recorded_with_versions() -> None:
    paths, labels, read = resolve([])
    assert labels[0] == "stdlib" and paths[0] == STDLIB.resolve() and read[0]["python"]
    assert "datasketch" in read[1]["distributions"]
    assert expand(["pinned"])[0] == "stdlib" and all(
        s.startswith("pip:") and "==" in s for s in expand(["pinned"])[1:])


def test_pip_source_reads_the_cache_offline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CODELING_CACHE", str(tmp_path))
    cached = tmp_path / "sources" / "tiny-1.0"
    cached.mkdir(parents=True)
    shutil.make_archive(str(cached / "tiny-1.0"), "gztar", JSON_PKG.parent, "json")
    assert fetch_pip("tiny==1.0") == cached / "tiny-1.0.tar.gz"
    paths, labels, read = resolve(["pip:tiny==1.0"])
    assert paths == [cached / "tiny-1.0.tar.gz"] and labels == ["tiny-1.0"]
    assert read[0]["version"] == "1.0" and len(read[0]["sha256"]) == 64
    with pytest.raises(DataError, match="NAME==VERSION"):
        fetch_pip("tiny")


# ---- the anneal ------------------------------------------------------------------------------

def test_anneal_takes_the_last_share_of_the_batches() -> None:
    main = data.RandomWindows(np.zeros(400, dtype=np.uint16), 2, 8, seed=0)
    best = data.RandomWindows(np.ones(400, dtype=np.uint16), 2, 8, seed=1)
    mixed = data.AnnealBatches(main, best, 0.25, total_batches=20)
    got = [int(mixed.next_batch()["input_ids"][0, 0]) for _ in range(20)]
    assert got == [0] * 15 + [1] * 5
    # resumed from a state saved before the switch, it switches at the same batch
    again = data.AnnealBatches(data.RandomWindows(np.zeros(400, dtype=np.uint16), 2, 8, 0),
                               data.RandomWindows(np.ones(400, dtype=np.uint16), 2, 8, 1),
                               0.25, total_batches=20)
    for _ in range(10):
        again.next_batch()
    state = again.state_dict()
    again.load_state_dict(state)
    assert [int(again.next_batch()["input_ids"][0, 0]) for _ in range(10)] == got[10:]


def test_pretrain_anneals_on_the_anneal_set(tmp_path: Path, capsys) -> None:
    from codeling.checkpoint import load_trainer_state
    from codeling.cli import main as cli_main
    from codeling.tokenizer import train_tokenizer

    corpus = tmp_path / "corpus"
    build_corpus(corpus, [JSON_PKG, STDLIB / "email"], units=0.3, anneal_mb=0.02,
                 twin_check=False, val_fraction=0.2, progress=False)
    texts = [r["text"] for r in read_jsonl(corpus / "train.jsonl")]
    train_tokenizer(texts, vocab_size=512).save(tmp_path / "tok")
    argv = ["pretrain", "--no-progress", "--preset", "smoke", "--corpus", str(corpus),
            "--tokenizer", str(tmp_path / "tok"), "steps=4", "eval_every=4", "save_every=4",
            "threads=1", "anneal=0.5"]
    assert cli_main([*argv, "--run-dir", str(tmp_path / "pre")]) == 0
    state = load_trainer_state(tmp_path / "pre" / "checkpoints" / "step_4")["data"]
    assert state["annealing"] and state["batches"] == 4 and state["anneal"]["batches"] == 2
    assert (tmp_path / "pre" / "shards" / "anneal" / "anneal.bin").exists()
    (corpus / "anneal.jsonl").unlink()
    assert cli_main([*argv, "--run-dir", str(tmp_path / "pre2")]) != 0
    assert "corpus.anneal_mb" in capsys.readouterr().err


def test_pipeline_fingerprints_the_mixture_only_when_on(tmp_path: Path) -> None:
    import argparse

    from codeling.pipeline import Pipeline

    def record(*overrides: str) -> dict:
        args = argparse.Namespace(preset="smoke", overrides=list(overrides), force=None,
                                  run_dir=str(tmp_path / "run"))
        return Pipeline(args).record("corpus")

    off = record()
    assert "units" not in off["config"]["corpus"] and "tasks" not in off["config"]
    assert record("tasks.seed=5")["fingerprint"] == off["fingerprint"]
    on = record("corpus.exercises=0.1")
    assert on["config"]["corpus"]["units"] == 0.0 and on["config"]["tasks"]["seed"] == 0
    assert record("corpus.exercises=0.1", "tasks.seed=5")["fingerprint"] != on["fingerprint"]


@pytest.mark.slow
def test_default_sources_rebuild_byte_identical(tmp_path: Path) -> None:
    kw = dict(max_mb=0.5, units=0.3, quality=0.8, anneal_mb=0.01, twin_check=False,
              progress=False)
    a = build_corpus(tmp_path / "a", **kw)
    build_corpus(tmp_path / "b", **kw)
    for name in ("train.jsonl", "val.jsonl", "anneal.jsonl", "stats.json"):
        got = [(tmp_path / d / name).read_bytes() for d in "ab"]
        if name == "stats.json":  # all but the timings
            got = [json.dumps({k: v for k, v in json.loads(g).items() if "seconds" not in k}
                              | {"units": None}, sort_keys=True) for g in got]
        assert got[0] == got[1]
    assert [r["kind"] for r in a["sources_read"]] == ["stdlib", "site-packages"]
    assert a["units"]["kept"] > 0


def test_cli_builds_the_mixture(tmp_path: Path, capsys) -> None:
    from codeling.cli import main as cli_main

    out = tmp_path / "out"
    assert cli_main(["corpus", "--out", str(out), "--source", str(JSON_PKG), "--source",
                     str(STDLIB / "email"), "--preset", "smoke", "--no-progress", "units=0.4",
                     "twin_check=false", "anneal_mb=0.01"]) == 0
    printed = capsys.readouterr().out
    stats = json.loads((out / "stats.json").read_text())
    assert f"units {stats['units']['kept']} kept" in printed and stats["units"]["kept"] > 0
    assert (out / "anneal.jsonl").exists() and stats["twins"] == {
        "enabled": False, "dropped": 0, "files_dropped": 0, "left": 0, "examples": []}
    assert cli_main(["corpus", "--out", str(tmp_path / "bad"), "--source", str(JSON_PKG),
                     "units=0.8", "exercises=0.4"]) != 0
    assert "at most 1" in capsys.readouterr().err
