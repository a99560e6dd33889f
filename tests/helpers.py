"""Shared test fixtures: a real tokenizer trained in about a second and a tiny real model."""

from __future__ import annotations

import json
import string
import textwrap
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
