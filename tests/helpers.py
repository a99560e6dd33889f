"""Shared test fixtures: a real tokenizer trained in about a second and a tiny real model."""

from __future__ import annotations

import json
import string
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from codeling.checkpoint import save_model
from codeling.config import ModelConfig
from codeling.model import CodelingLM
from codeling.tokenizer import train_tokenizer


def tiny_model_and_tokenizer(seed: int = 0, vocab_size: int = 400):
    """A BPE tokenizer trained on a few stdlib files and a random smoke-size model whose logits
    are peaked enough that argmax ties never decide a test."""
    texts = [Path(m.__file__).read_text() for m in (json, string, textwrap)]
    tok = train_tokenizer(texts, vocab_size=vocab_size)
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_kv_head=2, d_model=64,
                      max_seq_len=256, init_std=0.3)
    return CodelingLM(cfg).eval(), tok


def save_tiny_checkpoint(path: Path) -> Path:
    model, tok = tiny_model_and_tokenizer()
    return save_model(model, path, tok)


SHARED_TMP: Path | None = None  # set by conftest.py: the test run's folder shared by workers


def real_task_report(allow_contamination: bool = False) -> dict:
    """report.json of a real (small, synthetic-only, checked against mini and HumanEval)
    `codeling tasks` build, made once per test run and shared by pytest-xdist workers through a
    lock; allow_contamination keeps the behavioural twins, as that flag does."""
    from filelock import FileLock

    from codeling.tasks.build import build_tasks

    assert SHARED_TMP is not None, "tests/conftest.py sets helpers.SHARED_TMP"
    out = SHARED_TMP / ("tasks-contaminated" if allow_contamination else "tasks-clean")
    with FileLock(str(out) + ".lock"):
        if not (out / "report.json").exists():
            build_tasks(out, sources=("synthetic",), n=60, seed=0, levels=(1, 2), dev=False,
                        eval_sets=["mini", "humaneval"],
                        allow_contamination=allow_contamination, workers=1, progress=False)
    return json.loads((out / "report.json").read_text())


@contextmanager
def serving(model, tok, **kw) -> Iterator[str]:
    """A real `codeling serve` of `model` on 127.0.0.1 while the block runs: its http://host:port."""
    from codeling.serve import make_server

    server = make_server(model, tok, "127.0.0.1", 0, model_name="tiny", quiet=True, **kw)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
