"""The config system's error and its "did you mean" hint, below both config.py and presets.py
(each raises them; config.py loads presets)."""

from __future__ import annotations

import difflib


class ConfigError(ValueError):
    pass


def nearest(name: str, options: list[str]) -> str:
    """' Did you mean ...? Valid: ...' for an unknown `name` among `options`."""
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{hint} Valid: {', '.join(options)}."
