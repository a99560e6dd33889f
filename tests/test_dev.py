"""tasks/dev.py at size: a real small build with held-out composition recipes beside held-out
families and MBPP tasks, a `dev_from` rebuild that keeps them all out of training, and the
fixed stratified subset the in-training evals generate on."""

from __future__ import annotations

import pytest

from codeling.tasks.build import build_tasks
from codeling.tasks.dev import dev_subset, is_dev_recipe, task_kind
from codeling.tasks.schema import read_tasks

EVALS = ["mini", "humaneval"]
pytestmark = pytest.mark.slow  # two real builds (validation and twin checks in the sandbox)


def _split(out) -> dict:
    return {s: read_tasks(out / f"{s}.jsonl") for s in ("train", "val", "dev")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dev")
    report = build_tasks(tmp / "a", ["mbpp", "synthetic"], n=240, seed=3, levels=(1, 2),
                         eval_sets=EVALS, progress=False, workers=1, composed_ratio=0.5,
                         dev_size=70, dev_mbpp=10, dev_composed=0.5)
    return tmp, report, _split(tmp / "a")


def test_dev_size_composition_and_held_out_recipes(built):
    _, report, split = built
    dev, rest = split["dev"], split["train"] + split["val"]
    info = report["dev"]
    assert info["n"] == len(dev) == 70
    assert (info["n_mbpp"], info["n_composed"], info["n_synthetic"]) == (10, 30, 60)
    comp = [t for t in dev if t.extra.get("composed")]
    assert len(comp) == 30 and all(is_dev_recipe(3, t.extra["family"]) for t in comp)
    assert sorted({t.extra["family"] for t in comp}) == info["recipes"]
    trained = [t for t in rest if t.extra.get("composed")]
    assert trained  # training keeps composed tasks, of the other recipes only
    assert not {t.extra["family"] for t in trained} & set(info["recipes"])
    assert not set(info["families"]) & {t.extra.get("family") for t in rest}
    assert len({t.category for t in comp}) >= 4  # stratified by category
    assert len({t.extra.get("style") for t in dev if t.source == "synthetic"}) >= 8


def test_dev_from_keeps_the_old_dev_and_its_recipes_out(built):
    tmp, report, split = built
    again = build_tasks(tmp / "b", ["mbpp", "synthetic"], n=240, seed=4, levels=(1, 2),
                        eval_sets=EVALS, progress=False, workers=1, composed_ratio=0.5,
                        dev_from=tmp / "a")
    new = _split(tmp / "b")
    assert [t.to_dict() for t in new["dev"]] == [t.to_dict() for t in split["dev"]]
    assert again["dev"]["recipes"] == report["dev"]["recipes"]
    rest = new["train"] + new["val"]
    assert not {t.extra.get("family") for t in rest} & set(report["dev"]["recipes"])
    assert not {t.task_id for t in rest} & {t.task_id for t in split["dev"]}


def test_subset_is_proportional_by_kind_and_category(built):
    dev = built[2]["dev"]
    sub = dev_subset(dev, 35)
    assert len(sub) == 35 and sub == dev_subset(dev, 35)
    for kind in ("mbpp", "composed", "family"):
        share = sum(task_kind(t) == kind for t in dev) / len(dev)
        assert abs(sum(task_kind(t) == kind for t in sub) - 35 * share) <= 3
