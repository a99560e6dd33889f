"""Checkpoints are Hugging Face model directories, written atomically.

A checkpoint directory holds:
  config.json            LlamaConfig fields (+ "codeling": our ModelConfig)
  model.safetensors      weights under Llama names (lm_head omitted when tied)
  tokenizer.json (+ tokenizer_config.json, special_tokens_map.json)
  trainer_state.pt       optional: optimizer, scheduler, RNG states, data position (train.py)

A directory is built under a temporary name beside its target and renamed into place, so a
crash never leaves a half-written checkpoint under the real name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from codeling.config import ModelConfig
from codeling.io import atomic_write_json
from codeling.model import CodelingLM


class CheckpointError(RuntimeError):
    pass


def hf_config(cfg: ModelConfig, eot_id: int | None = None, pad_id: int | None = None) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "num_key_value_heads": cfg.n_kv_head,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
        "pad_token_id": pad_id,
        "torch_dtype": "float32",
        "codeling": dataclasses.asdict(cfg),
    }


def write_dir_atomically(target: str | Path, fill: Callable[[Path], None]) -> Path:
    """Call fill(tmp_dir), then swap tmp_dir into place as target."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        fill(tmp)
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def model_state(model: CodelingLM) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    if model.config.tie_embeddings:
        sd.pop("lm_head.weight", None)  # safetensors refuses shared tensors; HF re-ties it
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items()}


def save_model(model: CodelingLM, out_dir: str | Path, tokenizer=None,
               extra: Callable[[Path], None] | None = None) -> Path:
    """Write an HF-format checkpoint directory atomically. `extra(tmp_dir)` adds more files."""
    def fill(tmp: Path) -> None:
        eot = tokenizer.eot_id if tokenizer is not None else None
        pad = tokenizer.pad_id if tokenizer is not None else None
        atomic_write_json(tmp / "config.json", hf_config(model.config, eot, pad))
        save_file(model_state(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        if tokenizer is not None:
            tokenizer.save(tmp)
        if extra is not None:
            extra(tmp)

    return write_dir_atomically(out_dir, fill)


def read_model_config(ckpt: str | Path) -> ModelConfig:
    path = Path(ckpt) / "config.json"
    if not path.exists():
        raise CheckpointError(f"{ckpt}: not a checkpoint directory (no config.json)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupt config.json ({e})") from e
    if "codeling" in data:
        return ModelConfig(**data["codeling"])
    # a plain Llama config written by another tool
    try:
        return ModelConfig(
            vocab_size=data["vocab_size"], n_layer=data["num_hidden_layers"],
            n_head=data["num_attention_heads"],
            n_kv_head=data.get("num_key_value_heads", data["num_attention_heads"]),
            d_model=data["hidden_size"], d_ff=data["intermediate_size"],
            max_seq_len=data.get("max_position_embeddings", 2048),
            rope_theta=data.get("rope_theta", 10000.0), norm_eps=data.get("rms_norm_eps", 1e-5),
            tie_embeddings=data.get("tie_word_embeddings", True))
    except KeyError as e:
        raise CheckpointError(f"{path}: field {e} missing") from e


def load_model(ckpt: str | Path, device: str | torch.device = "cpu") -> CodelingLM:
    """Load weights strictly; a truncated or mismatched file is an error, never a re-init."""
    cfg = read_model_config(ckpt)
    weights = Path(ckpt) / "model.safetensors"
    if not weights.exists():
        raise CheckpointError(f"{ckpt}: model.safetensors is missing")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: corrupt or truncated weights ({e})") from e
    model = CodelingLM(cfg)
    if cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (cfg.tie_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise CheckpointError(f"{weights}: weights do not match config.json "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    return model.to(device)
