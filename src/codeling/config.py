"""One config system for every stage: dataclass sections, TOML presets, key=value overrides.

A preset is a TOML file in `codeling/configs/` (the repo's `configs/` points there) holding any
subset of the sections below; `base = "other"` inherits another preset. Overrides on the command
line are `section.key=value` (values parsed as TOML, else taken as strings); a stage command also
accepts a bare `key=value` for its own section. Unknown presets, sections and keys are errors that
name the nearest valid spelling. The resolved config is saved with every run as `config.toml`.

Each stage has its own section and a key its stage does not read is an error naming the section
that does (`pretrain.kd_alpha` -> [distill]). To add a key: add a typed field with its default
and a short comment to the section's dataclass in sections.py (a training stage's own class: PretrainConfig,
SftConfig, DistillConfig; TrainConfig only for what the loop itself reads), read it where it is
used, and, if it changes a stage's output, nothing else: pipeline fingerprints hash whole
sections. A new section is a dataclass plus a field of `Config`. Resumed runs: resume.py
(`resolve_run_config`); flags and key=value arguments: configargs.py.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from codeling.configerror import ConfigError
from codeling.configerror import nearest as _nearest
from codeling.io import atomic_write_text
from codeling.presets import _load_preset_dict
from codeling.sections import (  # noqa: F401  (re-exported: codeling.config is their home)
    CorpusConfig,
    DistillConfig,
    EvalConfig,
    LoraSection,
    ModelConfig,
    PipelineConfig,
    PretrainConfig,
    SelftrainConfig,
    SftConfig,
    TasksConfig,
    TaskTrainConfig,
    TokenizerConfig,
    TrainConfig,
)


@dataclass
class Config:
    name: str = "default"
    preset: str = ""  # the preset's name this config was resolved from (checked on resume)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    sft: SftConfig = field(default_factory=lambda: SftConfig(
        lr=1e-4, warmup=500, batch_size=8, steps=10000, weight_decay=0.0, eval_every=2000,
        save_every=2000, seq_len=512))
    lora: LoraSection = field(default_factory=LoraSection)
    distill: DistillConfig = field(default_factory=DistillConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    selftrain: SelftrainConfig = field(default_factory=SelftrainConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)


def _apply(obj: Any, values: dict, where: str) -> None:
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in values.items():
        if key not in names:
            owners = [s for s in SECTIONS if key in section_keys(s)] if where else []
            if owners:
                raise ConfigError(
                    f"{where}.{key}: [{where}] has no key '{key}' (its stage does not use it); "
                    f"it belongs to {', '.join(f'[{o}] ({o}.{key})' for o in owners)}")
            raise ConfigError(f"{where or 'config'}: unknown key '{key}'.{_nearest(key, names)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{key}' is a section; expected a table")
            _apply(current, value, f"{where}.{key}" if where else key)
        else:
            setattr(obj, key, _coerce(value, current, f"{where}.{key}" if where else key))


def _coerce(value: Any, current: Any, where: str) -> Any:
    # ints are accepted where floats are expected; everything else must match its default's type
    if isinstance(current, bool) or current is None:
        ok = isinstance(value, bool) or current is None
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(current))
    if not ok:
        raise ConfigError(f"{where}: expected {type(current).__name__}, got {value!r}")
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare string
    return key.strip().split("."), value


def _override_path(text: str, section: str | None) -> tuple[list[str], Any]:
    path, value = parse_override(text)
    if len(path) == 1 and path[0] not in SECTIONS and section:
        path = [section, *path]
    if len(path) > 1 and path[0] not in SECTIONS:
        raise ConfigError(f"override '{text}': unknown section '{path[0]}'."
                          f"{_nearest(path[0], list(SECTIONS))}")
    return path, value


def _apply_override(cfg: Config, path: list[str], value: Any) -> None:
    nested: dict = {path[-1]: value}
    for part in reversed(path[:-1]):
        nested = {part: nested}
    _apply(cfg, nested, "")


def load_config(preset: str | None = None, overrides: list[str] | tuple[str, ...] = (),
                section: str | None = None) -> Config:
    """Resolve a preset plus overrides. `section` lets bare keys address a stage's own section."""
    cfg = Config()
    if preset:
        data = _load_preset_dict(preset)
        _apply(cfg, data, "")
        cfg.preset = str(data.get("name", Path(preset).stem))
        if "name" not in data:
            cfg.name = Path(preset).stem
    for text in overrides:
        _apply_override(cfg, *_override_path(text, section))
    return cfg


def section_keys(section: str) -> list[str]:
    """The keys a section accepts (its dataclass's fields)."""
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(data: dict, saved: bool = False) -> Config:
    """`saved=True` reads a config.toml written before the training sections were split,
    where every training section carried every stage's keys: those keys are dropped."""
    if saved:
        data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
        for name in TRAIN_SECTIONS:
            keys, every = set(section_keys(name)), set().union(*map(section_keys, TRAIN_SECTIONS))
            for key in list(data.get(name, {})):
                if key in every - keys:
                    del data[name][key]
    cfg = Config()
    _apply(cfg, data, "")
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    atomic_write_text(path, tomli_w.dumps(config_to_dict(cfg)))


def read_config(path: str | Path) -> Config:
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    try:
        return config_from_dict(data, saved=True)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


SECTIONS: dict[str, type] = {k: v for k, v in typing.get_type_hints(Config).items()
                             if dataclasses.is_dataclass(v)}
TRAIN_SECTIONS = ("pretrain", "sft", "distill")


# Names that live in their own modules, importable from here as before (PEP 562): the resume
# rule (resume.py), preset files (presets.py) and the command line side (configargs.py).
_ELSEWHERE = {"PRESET_DIR": "codeling.presets", "list_presets": "codeling.presets",
              "preset_path": "codeling.presets", "preset_name": "codeling.presets",
              "resolve_run_config": "codeling.resume", "SHAPE_REASONS": "codeling.resume",
              "FIXED_ON_RESUME": "codeling.resume", "add_config_arguments": "codeling.configargs",
              "config_from_args": "codeling.configargs", "flag_overrides": "codeling.configargs"}


def __getattr__(name: str) -> Any:
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
