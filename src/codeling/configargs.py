"""The command line side of the config system: --preset, key=value overrides, and stage flags.

A stage's flags are spellings of overrides: `add_config_arguments(p, section="tasks",
flags={"--n": "n"})` makes `--n 50` mean `tasks.n=50`. The flag has no default of its own (it
shows the config's), so a default lives in one place: the section's dataclass in config.py.
Precedence: preset, then key=value overrides, then flags.
"""

from __future__ import annotations

import typing
from typing import Any

from codeling.config import Config, ConfigError, _apply_override, load_config
from codeling.presets import list_presets


def add_config_arguments(parser, default_preset: str | None = None, section: str | None = None,
                         flags: dict[str, str] | None = None) -> None:
    """--preset NAME and trailing key=value overrides, shared by every stage command.

    `flags` maps a flag to a key of `section`, e.g. {"--n": "n", "--max-solution-lines":
    "mbpp_max_lines"}: the flag is a spelling of the override `section.key=value`, so its
    default and its help text's default come from the config, never from argparse.
    """
    parser.add_argument("--preset", default=default_preset,
                        help=f"a preset name ({', '.join(list_presets())}) or a .toml path")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. lr=1e-3 model.n_layer=4")
    if not flags:
        return
    defaults = getattr(Config(), section)
    types = typing.get_type_hints(type(defaults))
    dests = []
    for flag, key in flags.items():
        default, kind = getattr(defaults, key), types[key]
        dest = f"cfg_{section}_{key}"
        if kind is bool:
            parser.add_argument(flag, dest=dest, action="store_const", const=True, default=None,
                                help=f"sets {section}.{key}=true")
        else:
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            parser.add_argument(flag, dest=dest, default=None, metavar=key.upper(),
                                help=f"{section}.{key} (default {shown!s})"
                                     + (", comma-separated" if isinstance(default, list) else ""))
        dests.append((dest, key, kind))
    parser.set_defaults(_config_flags=(section, dests))


def _flag_value(raw: Any, kind: Any, where: str) -> Any:
    if raw is True or kind is str:
        return raw
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        parts = [p.strip() for p in str(raw).split(",") if p.strip()]
        return [_flag_value(p, item, where) for p in parts]
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"{where}: expected {kind.__name__}, got {raw!r}") from None


def flag_overrides(args) -> dict[tuple[str, str], Any]:
    """{(section, key): value} for the config flags given on the command line."""
    section, dests = getattr(args, "_config_flags", (None, ()))
    out = {}
    for dest, key, kind in dests:
        raw = getattr(args, dest, None)
        if raw is not None:
            out[(section, key)] = _flag_value(raw, kind, f"{section}.{key}")
    return out


def config_from_args(args, section: str | None = None) -> Config:
    """Preset, then key=value overrides, then the stage's flags (the most specific spelling)."""
    cfg = load_config(getattr(args, "preset", None), getattr(args, "overrides", ()) or (),
                      section=section)
    for (sec, key), value in flag_overrides(args).items():
        _apply_override(cfg, [sec, key], value)
    return cfg
