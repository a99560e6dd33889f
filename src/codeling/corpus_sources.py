"""Named corpus sources and the record of what was read, with versions.

`corpus.sources` entries are paths (a folder, a .py file, an archive) or names:
- `stdlib`: this Python's standard library (recorded with the Python version);
- `site-packages`: this Python's installed packages (recorded with every distribution's
  version); the default (no sources) is `stdlib` + `site-packages`, as before;
- `pip:NAME==VERSION`: that release's pure-Python wheel, fetched once with pip into the cache
  (`$CODELING_CACHE/sources`, default `~/.cache/codeling/sources`) and read from there offline
  afterwards; recorded with the archive's sha256, so two machines can check they read the same
  bytes;
- `pinned`: `stdlib` plus PINNED, a fixed list of documented pure-Python packages at fixed
  versions and wheel hashes: the same corpus on any machine with the same Python, whatever
  else is installed (built offline once the wheels are in the cache).
stats.json `sources_read` lists each source with its kind and versions or hash.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from codeling.io import DataError, sha256_file

ARCHIVES = (".whl", ".tar.gz", ".zip")
# well-documented pure-Python libraries of small functions, as pure wheels (the same bytes on
# every machine), with the sha256 of each wheel: a fetched file that differs is an error
PINNED = {
    "pip:more-itertools==10.5.0": "037b0d3203ce90cca8ab1defbbdac29d5f993fc20131f3664dc8d6acfa872aef",
    "pip:toolz==1.0.0": "292c8f1c4e7516bf9086f8850935c799a874039c8bcf959d47b600e4c44a6236",
    "pip:boltons==24.1.0": "a1776d47fdc387fb730fba1fe245f405ee184ee0be2fb447dd289773a84aed3b",
    "pip:sortedcontainers==2.4.0":
        "a163dcaede0f1c021485e957a39245190e74249897e2ae4b2aa38595db237ee0",
    "pip:python-dateutil==2.9.0.post0":
        "a8b2bc7bffae282281c8140a97d3aa9c14da0b136dfe83f850eea9a5f7470427",
    "pip:networkx==3.4.2": "df5d4365b724cf81b8c6a7312509d0c22386097011ad1abe274afd5e9d3bbc5f",
    "pip:sympy==1.13.3": "54612cf55a62755ee71824ce692986f23c88ffa77207b30c1368eda4a7060f73",
    "pip:attrs==24.2.0": "81921eb96de3191c8258c199618104dd27ac608d9366f5e35d011eae1867ede2",
}


def cache_dir() -> Path:
    root = os.environ.get("CODELING_CACHE") or Path.home() / ".cache" / "codeling"
    return Path(root) / "sources"


def fetch_pip(spec: str, cache: Path | None = None) -> Path:
    """The cached archive of `NAME==VERSION` (its pure-Python wheel, downloaded by pip on first
    use; a wheel or sdist put there by hand is read as well)."""
    name, sep, version = spec.partition("==")
    if not sep or not name or not version:
        raise DataError(f"pip:{spec}", "expected pip:NAME==VERSION (a pinned release)")
    cache = (cache or cache_dir()) / f"{name}-{version}"
    found = sorted(p for p in cache.glob("*") if p.name.endswith(ARCHIVES))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        # the pure-Python wheel: the same bytes on every platform, and no build step
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--platform", "any", "--implementation", "py", "--abi", "none",
               "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}",
               "--dest", str(cache), spec]
        run = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(p for p in cache.glob("*") if p.name.endswith(ARCHIVES))
        if run.returncode != 0 or not found:
            last = (run.stderr.strip().splitlines() or ["no archive"])[-1]
            raise DataError(f"pip:{spec}", f"cannot fetch its pure-Python wheel ({last}); "
                                           f"put the wheel or sdist in {cache} to build offline")
    return found[0]


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def _site_packages() -> list[Path]:
    paths = sysconfig.get_paths()
    out: list[Path] = []
    for key in ("purelib", "platlib"):
        p = Path(paths[key]).resolve()
        if p.is_dir() and p not in out:
            out.append(p)
    return out


def _distributions() -> dict[str, str]:
    dists = {}
    for d in metadata.distributions():
        name = d.metadata["Name"]
        if name:
            dists[name.lower()] = d.version
    return dict(sorted(dists.items()))


def expand(sources: list[str]) -> list[str]:
    """Names expanded: [] -> stdlib + site-packages; pinned -> stdlib + PINNED."""
    out: list[str] = []
    for s in sources or ["stdlib", "site-packages"]:
        out += ["stdlib", *PINNED] if s == "pinned" else [s]
    return out


def resolve(sources: list[str]) -> tuple[list[Path], list[str], list[dict]]:
    """(paths, labels, records) for every source; records say what was read, with versions."""
    paths, labels, records = [], [], []
    python = platform.python_version()
    for s in expand(sources):
        if s == "stdlib":
            paths.append(_stdlib())
            labels.append("stdlib")
            records.append({"source": s, "kind": "stdlib", "python": python})
        elif s == "site-packages":
            for p in _site_packages():
                if p not in paths:
                    paths.append(p)
                    labels.append("site-packages")
            records.append({"source": s, "kind": "site-packages", "python": python,
                            "distributions": _distributions()})
        elif s.startswith("pip:"):
            archive = fetch_pip(s[4:])
            name, _, version = s[4:].partition("==")
            paths.append(archive)
            labels.append(f"{name}-{version}")
            digest = sha256_file(archive)
            if s in PINNED and digest != PINNED[s]:
                raise DataError(archive, f"sha256 {digest} is not the pinned {PINNED[s]} of {s}")
            records.append({"source": s, "kind": "pip", "name": name, "version": version,
                            "archive": archive.name, "sha256": digest})
        else:
            p = Path(s)
            paths.append(p)
            labels.append(p.name)
            rec = {"source": s, "kind": "path"}
            if p.is_file():
                rec["sha256"] = sha256_file(p)
            records.append(rec)
    return paths, labels, records
