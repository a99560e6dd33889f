"""Optional loggers: off by default, a clear error when a package is missing or a name is wrong.

Neither tensorboard nor mlflow is installed in the project's environment; the logging path itself
is tested only where the package is present."""

from __future__ import annotations

import importlib.util

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


@pytest.mark.parametrize("name", ["tensorboard", "mlflow"])
def test_missing_package_says_what_to_install(tmp_path, name):
    if importlib.util.find_spec(name) is not None:
        pytest.skip(f"{name} is installed here")
    with pytest.raises(ConfigError, match=f"pip install {name}"):
        make_loggers([name], tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing created before the check


def test_only_numbers_are_logged():
    row = {"step": 5, "loss": 1.5, "pass": 3, "phase": "warm", "ok": True, "x": None}
    assert scalars(row) == {"loss": 1.5, "pass": 3.0}


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                    reason="tensorboard not installed")
def test_tensorboard_writes_events(tmp_path):
    (lg,) = make_loggers(["tensorboard"], tmp_path)
    lg.log({"step": 1, "loss": 2.0}, 1)
    lg.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
