"""Presets: TOML files in `codeling/configs/` (the repo's `configs/` points there), each any
subset of the config sections; `base = "other"` inherits another preset, key by key within a
section. `codeling.config` re-exports these names; the errors come from configerror.py, below both.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from codeling.configerror import ConfigError
from codeling.configerror import nearest as _nearest

PRESET_DIR = Path(__file__).parent / "configs"


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def preset_path(preset: str) -> Path:
    """A preset name from configs/, or a path to a TOML file."""
    p = Path(preset)
    if p.suffix == ".toml" and p.exists():
        return p
    q = PRESET_DIR / f"{preset}.toml"
    if q.exists():
        return q
    raise ConfigError(f"unknown preset '{preset}'.{_nearest(preset, list_presets())}")


def _load_preset_dict(preset: str, seen: tuple[str, ...] = ()) -> dict:
    path = preset_path(preset)
    if str(path) in seen:
        raise ConfigError(f"{path}: circular 'base' chain: {' -> '.join(seen)}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from e
    base = data.pop("base", None)
    if base is None:
        return data
    merged = _load_preset_dict(base, (*seen, str(path)))
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def preset_name(preset: str) -> str:
    """The name a preset gives its runs: its `name = ...`, else the file's stem."""
    return str(_load_preset_dict(preset).get("name", Path(preset).stem))
