"""Optional loggers: off by default, a clear error when a package is missing or a name is wrong,
and real TensorBoard event files (tensorboard is a dev dependency, so this always runs)."""

from __future__ import annotations

import sys

import pytest

from codeling.config import ConfigError, load_config
from codeling.loggers import make_loggers, scalars


def test_off_by_default(tmp_path):
    cfg = load_config("smoke")
    assert cfg.pretrain.loggers == [] and cfg.sft.loggers == []
    assert make_loggers(cfg.pretrain, tmp_path / "run") == []


def test_config_key_and_unknown_name(tmp_path):
    cfg = load_config("smoke", ["pretrain.loggers=['tensorbaord']"])
    with pytest.raises(ConfigError, match="unknown logger 'tensorbaord'; choose from tensorboard"):
        make_loggers(cfg.pretrain, tmp_path)


def test_missing_package_says_what_to_install(tmp_path, monkeypatch):
    # None in sys.modules is Python's own way to make an import fail (ImportError)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        make_loggers(["tensorboard"], tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing created before the check


def test_only_numbers_are_logged():
    row = {"step": 5, "loss": 1.5, "pass": 3, "phase": "warm", "ok": True, "x": None}
    assert scalars(row) == {"loss": 1.5, "pass": 3.0}


def test_tensorboard_writes_events(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (lg,) = make_loggers(["tensorboard"], tmp_path)
    lg.log({"step": 1, "loss": 2.0, "phase": "warm"}, 1)
    lg.log({"step": 2, "loss": 1.5, "pass@1": 0.25}, 2)
    lg.close()
    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["loss", "pass@1"]
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 2.0), (2, 1.5)]
