"""`codeling tasks`: real MBPP + synthetic data through the real sandbox, decontamination (n-gram
and behavioural twins) and the dev split."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from codeling.tasks.benchmarks import load_benchmark
from codeling.tasks.build import build_tasks
from codeling.tasks.schema import read_tasks
from codeling.tasks.twins import find_twins

CLI = [sys.executable, "-m", "codeling.cli"]
EVALS = ["mini", "humaneval", "mbpp"]  # the plus sets add time, not coverage, to this test


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One small real build: MBPP, 200 synthetic tasks and a teacher file with a leaked copy."""
    tmp = tmp_path_factory.mktemp("tasks")
    he = load_benchmark("humaneval")[7]
    leaked = he.to_dict() | {"task_id": "teacher/leak", "source": "teacher",
                             "category": "lists", "level": 2}
    for key in ("prompt", "canonical_solution", "test"):
        leaked[key] = re.sub(rf"\b{he.entry_point}\b", "renamed_fn", leaked[key])
    leaked["entry_point"] = "renamed_fn"
    (tmp / "teacher.jsonl").write_text(json.dumps(leaked) + "\n")
    report = build_tasks(tmp / "out", ["mbpp", "synthetic", str(tmp / "teacher.jsonl")],
                         n=200, seed=1, eval_sets=EVALS, progress=False)
    return report, {s: read_tasks(tmp / f"out/{s}.jsonl") for s in ("train", "val", "dev")}, he


def test_build_mixes_sources_and_reports(built):
    report, split, he = built
    train, val = split["train"], split["val"]
    assert report["n_train"] == len(train) and report["n_val"] == len(val)
    assert {"mbpp", "synthetic"} <= set(report["by_source"])
    assert "teacher/leak" not in {t.task_id for t in train + val + split["dev"]}
    assert any(h["task_id"] == "teacher/leak" and h["eval_task_id"] == he.task_id
               for h in report["contamination"]["tasks"])
    mbpp_ids = [int(t.task_id.split("/")[-1]) for t in train + val if t.source == "mbpp"]
    assert mbpp_ids and min(mbpp_ids) >= 511  # the test split is never training data
    assert all(len(t.canonical_solution.strip().splitlines()) <= 20
               for t in train + val if t.source == "mbpp")
    assert report["dropped"].get("mbpp: solution longer than max_solution_lines", 0) > 0
    assert set(report["lengths"]) == {"prompt_chars", "solution_chars", "solution_lines"}
    assert report["indirect_refs"] == {"configured": 0.0, "share": 0.0}
    assert report["novel_names"] == {"configured": 0.0, "share": 0.0}


def test_behavioural_twins_are_dropped_and_reported(built):
    report, split, _ = built
    assert report["contaminated"] is False and report["twin_check"]["enabled"]
    mini = report["twins"]["mini"]
    assert mini["eval_tasks_with_twin"] > 0  # the generator does make twins; none survive
    assert mini["train_tasks_dropped"] == mini["train_tasks_with_twin"] > 0
    assert mini["train_tasks_kept"] == 0 and mini["examples"]["pairs"]
    assert set(report["twins"]) == set(EVALS)
    dropped = {k: v for k, v in report["dropped"].items() if k.startswith("behavioural twin")}
    assert sum(dropped.values()) >= mini["train_tasks_dropped"]
    assert all(re.fullmatch(r"behavioural twin of \S+", k) for k in dropped)
    # what was written has no twin left: checked again, from the files, by the real check
    left = split["train"] + split["val"] + split["dev"]
    assert find_twins(left, {"mini": load_benchmark("mini"),
                             "humaneval": load_benchmark("humaneval")}) == {}


def test_dev_set_is_held_out_stratified_and_styled(built):
    report, split, _ = built
    dev, rest = split["dev"], split["train"] + split["val"]
    info = report["dev"]
    assert info["n"] == report["n_dev"] == len(dev) == info["n_synthetic"] + info["n_mbpp"]
    assert 50 <= info["n_synthetic"] <= 60 and info["n_mbpp"] == 40
    held = set(info["families"])
    assert held and {t.extra["family"] for t in dev if t.source == "synthetic"} <= held
    assert not held & {t.extra.get("family") for t in rest}  # held out of train/val entirely
    assert not {t.task_id for t in dev} & {t.task_id for t in rest}
    synth = [t for t in dev if t.source == "synthetic"]
    from codeling.tasks.synthetic import CATEGORIES, FAMILIES

    assert {FAMILIES[f].category for f in held} == set(CATEGORIES)
    assert {t.category for t in synth} == set(CATEGORIES)  # even after twins are dropped
    assert len({t.extra.get("style") for t in synth}) >= 8  # spread over the prompt styles
    assert all(int(t.task_id.split("/")[-1]) >= 511 for t in dev if t.source == "mbpp")
    assert info["by_category"] and sum(info["by_style"].values()) == len(dev)


def test_refilled_dev_families_keep_their_names_in_the_description():
    """A dev family taken from training (its held-out ones lost every task to the checks) leaves
    training whole, but only its tasks that name their arguments enter dev."""
    from codeling.tasks.dev import dev_family_order, refill_dev
    from codeling.tasks.synthetic import generate_tasks

    order = dev_family_order(0, (1, 2, 3), None)
    cat, (k, names) = next((c, o) for c, o in order.items() if len(o[1]) > o[0] + 1)
    nxt = names[k]
    rest = generate_tasks(60, seed=3, families=[nxt, names[-1]], indirect_refs=0.7,
                          novel_names=0.5)
    assert any(t.extra.get("refs") == "indirect" for t in rest if t.extra["family"] == nxt)
    assert any(t.extra.get("names") == "novel" for t in rest if t.extra["family"] == nxt)
    held: list[str] = []
    pool, rest2 = refill_dev([], rest, held, {cat: (k, names)})
    assert held == [nxt] and pool and all(t.extra["split"] == "dev" for t in pool)
    assert not any(t.extra.get("refs") or t.extra.get("names") for t in pool)
    assert nxt not in {t.extra["family"] for t in rest2}


def test_style_sweep_changes_only_the_prompt_shape(built):
    from codeling.tasks.build import validation_reasons
    from codeling.tasks.dev import style_sweep
    from codeling.tasks.mbpp import STYLES as MBPP_STYLES
    from codeling.tasks.synthetic.styles import STYLES

    report, split, _ = built
    sweep = style_sweep(split["dev"], per_style=5)
    held = set(report["dev"]["families"])
    bases: dict[str, list] = {}
    for t in sweep:
        bases.setdefault(t.extra["sweep"], []).append(t)
    synth = {b: ts for b, ts in bases.items() if ts[0].source == "synthetic"}
    assert len(synth) == 5 and {t.extra["family"] for ts in synth.values() for t in ts} <= held
    def cases(test: str) -> str:  # a boolean case is written `== True`, `is True` or bare
        test = re.sub(r"assert not (candidate\(.*\))$", r"assert \1 == False", test, flags=re.M)
        return re.sub(r" (?:is|==) True$", "", test.replace(" is False", " == False"),
                      flags=re.M)

    for ts in synth.values():  # one task in every style: the same names, solution and cases
        assert [t.extra["style"] for t in ts] == list(STYLES)
        assert len({(t.entry_point, t.canonical_solution, cases(t.test)) for t in ts}) == 1
        assert len({t.prompt for t in ts}) == len(STYLES)
    mbpp = [ts for b, ts in bases.items() if ts[0].source == "mbpp"]
    assert len(mbpp) == report["dev"]["n_mbpp"]
    assert all([t.extra["style"] for t in ts] == list(MBPP_STYLES) for ts in mbpp)
    assert not {t.task_id for t in sweep} & {t.task_id for s in split.values() for t in s}
    # every one runs: the canonical solution passes its tests in the sandbox in every shape
    picked = [t for ts in list(synth.values())[:2] + mbpp[:2] for t in ts]
    assert validation_reasons(picked, progress=False) == [None] * len(picked)


def test_mbpp_augmentation_off_keeps_the_dev_prompts(tmp_path):
    """`tasks.mbpp_styles = false` trains on MBPP's own prompt shape, yet dev holds the same
    tasks with the same (augmented) prompts as the default build: the ablation is measured on
    one dev set."""
    builds = {}
    for styled in (True, False):
        report = build_tasks(tmp_path / str(styled), ["mbpp"], eval_sets=["mini"], seed=2,
                             progress=False, mbpp_styles=styled)
        assert report["mbpp_styles"] is styled
        builds[styled] = {s: read_tasks(tmp_path / f"{styled}/{s}.jsonl")
                          for s in ("train", "dev")}
    on, off = builds[True], builds[False]
    assert [(t.task_id, t.prompt) for t in off["dev"]] == [(t.task_id, t.prompt)
                                                           for t in on["dev"]]
    assert len({t.extra.get("style") for t in off["dev"]}) >= 4
    assert {t.extra.get("style") for t in off["train"]} == {None}  # MBPP's own rendering
    assert len({t.extra.get("style") for t in on["train"]}) >= 4
    assert [t.task_id for t in off["train"]] == [t.task_id for t in on["train"]]
    # `tasks.dev_from`: another seed draws another dev set; this one keeps the first build's
    report = build_tasks(tmp_path / "fixed", ["mbpp"], eval_sets=["mini"], seed=3,
                         progress=False, dev_from=tmp_path / "True")
    fixed = {s: read_tasks(tmp_path / f"fixed/{s}.jsonl") for s in ("train", "val", "dev")}
    assert [t.to_dict() for t in fixed["dev"]] == [t.to_dict() for t in on["dev"]]
    dev_ids = {t.task_id for t in on["dev"]}
    assert not dev_ids & {t.task_id for t in fixed["train"] + fixed["val"]}
    assert report["dev"]["from"] == str(tmp_path / "True")
    assert report["dev"]["kept_out_of_training"] == len(dev_ids)  # all 40 were drawable


def test_allow_contamination_keeps_and_marks(tmp_path):
    he = load_benchmark("humaneval")[3]
    src = tmp_path / "t.jsonl"
    src.write_text(json.dumps(he.to_dict() | {"task_id": "teacher/copy"}) + "\n")
    res = subprocess.run([*CLI, "tasks", "--sources", str(src), "--out", str(tmp_path / "o"),
                          "--allow-contamination", "--quiet"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "allow-contamination" in res.stderr and "CONTAMINATED" in res.stdout
    report = json.loads((tmp_path / "o/report.json").read_text())
    assert report["contamination"]["hits"] == 1 and report["contaminated"] is True
    he_twins = report["twins"]["humaneval"]
    assert he_twins["train_tasks_kept"] == 1 and he_twins["train_tasks_dropped"] == 0
    assert he_twins["examples"]["eval_tasks"] == [he.task_id]
    kept = read_tasks(tmp_path / "o/train.jsonl") + read_tasks(tmp_path / "o/val.jsonl")
    assert [t.task_id for t in kept] == ["teacher/copy"]
    assert he.task_id in kept[0].extra["twin_of"]
    assert report["n_dev"] == 0  # no synthetic or MBPP source: nothing to hold out


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
    res = subprocess.run([*CLI, "tasks", "--sources", "synthetic", "--out", str(tmp_path / "o"),
                          "tasks.indirect_refs=1.5"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "tasks.indirect_refs must be in [0, 1]" in res.stderr
    res = subprocess.run([*CLI, "tasks", "--sources", "synthetic", "--out", str(tmp_path / "o"),
                          "tasks.novel_names=2"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "tasks.novel_names must be in [0, 1]" in res.stderr
    assert not (tmp_path / "o").exists()
