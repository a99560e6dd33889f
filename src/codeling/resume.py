"""The one rule for a resumed run's config, used by every training stage (stage.open_stage).

A resumed run is its saved config.toml plus the key=value overrides given now. Another --preset
is an error naming both; so is a change of a key that fixes the run's shape (the model, the
tokenizer, a stage's own `fixed` keys), with the reason. `codeling.config` re-exports these.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codeling.config import (
    Config,
    ConfigError,
    _apply_override,
    _override_path,
    load_config,
    read_config,
)
from codeling.presets import preset_name

# Why a key fixes a run's shape: its checkpoints (and optimizer state) only make sense with it.
SHAPE_REASONS = {
    "model": "the checkpoints hold weights of this architecture",
    "tokenizer": "the model's embeddings index this tokenizer's vocabulary",
    "corpus": "the token shards and the data order were made from this corpus",
    "lora": "the adapter weights and optimizer state have this rank and these target modules",
    "sft.mode": "LoRA and full fine-tuning save different weights",
    "selftrain.seed": "the pools and samples of the rounds so far were drawn with this seed",
    "selftrain.chunk": "progress.jsonl counts finished chunks of this many prompts",
    "selftrain.k": "the rounds so far sampled this many completions per prompt",
}
FIXED_ON_RESUME = ("model", "tokenizer")  # every training stage; a stage adds its own


def resolve_run_config(run_dir: str | Path, preset: str | None,
                       overrides: Sequence[str] = (), section: str | None = None,
                       resume: bool = True, fixed: Sequence[str] = ()) -> Config:
    """The one rule for a resumed run: its saved config.toml plus the new key=value overrides.

    A --preset other than the one the run was made with is an error naming both; an override
    that changes a key fixing the run's shape (FIXED_ON_RESUME plus the stage's `fixed`, e.g.
    "lora" or "sft.mode") is an error saying why; one that repeats the saved value is accepted
    (the pipeline passes every override on). A new run (no `resume` or no saved config.toml)
    is `load_config(preset, overrides, section)`.
    """
    saved = Path(run_dir) / "config.toml"
    if not (resume and saved.exists()):
        return load_config(preset, overrides, section)
    cfg = read_config(saved)
    was = cfg.preset or cfg.name  # config.toml files from before `preset` was recorded
    if preset and preset_name(preset) != was:
        raise ConfigError(f"{saved}: this run was made with preset '{was}', not "
                          f"'{preset_name(preset)}' (--preset {preset}); resume without --preset "
                          "or with the same one, or start a new --run-dir")
    shape = (*FIXED_ON_RESUME, *fixed)
    for text in overrides:
        path, value = _override_path(text, section)
        key = ".".join(path)
        owner = next((f for f in shape if key == f or key.startswith(f + ".")), None)
        before = _get(cfg, path)
        _apply_override(cfg, path, value)
        if owner and _get(cfg, path) != before:
            why = SHAPE_REASONS.get(owner, "the run's checkpoints were written for it")
            raise ConfigError(f"{key}={value!r}: cannot change {key} (saved: {before!r}) when "
                              f"resuming {run_dir}: {why}. Start a new --run-dir instead")
    return cfg


def _get(cfg: Config, path: list[str]) -> Any:
    obj: Any = cfg
    for part in path:
        obj = getattr(obj, part, None)  # an unknown key: _apply_override names it
    return obj
