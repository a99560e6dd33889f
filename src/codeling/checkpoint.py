"""Checkpoints are Hugging Face model directories, written atomically.

A checkpoint directory holds:
  config.json            the HF architecture's fields (hf_arch.py: Llama unless a block option
                         asks for another) + "codeling": our ModelConfig
  model.safetensors      weights under that architecture's names (lm_head omitted when tied)
  tokenizer.json (+ tokenizer_config.json, special_tokens_map.json)
  trainer_state.pt       optional: optimizer, scheduler, RNG states, data position (train.py)

A training run keeps its checkpoints in `run_dir/checkpoints/`: `step_N/` (with trainer state,
for --resume), `best/` and `final/` (weights and tokenizer only).

A directory is built under a temporary name beside its target and renamed into place, so a
crash never leaves a half-written checkpoint under the real name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from codeling import hf_arch
from codeling.config import ModelConfig
from codeling.hf_arch import NoHFArchitecture
from codeling.io import atomic_write_json
from codeling.model import CodelingLM


class CheckpointError(RuntimeError):
    pass


def _model_type(cfg: ModelConfig) -> str | None:
    try:
        return hf_arch.hf_model_type(cfg)
    except NoHFArchitecture:
        return None


def hf_config(cfg: ModelConfig, eot_id: int | None = None, pad_id: int | None = None) -> dict:
    try:
        arch = hf_arch.hf_fields(cfg, hf_arch.hf_model_type(cfg))
    except NoHFArchitecture as e:
        # an unknown model_type makes transformers refuse by name instead of loading a model
        # that computes something else
        return {"architectures": ["CodelingLM"], "model_type": "codeling",
                "codeling_hf": f"not loadable in transformers: {e}",
                "codeling": dataclasses.asdict(cfg)}
    return {
        **arch,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layer,
        "num_attention_heads": cfg.n_head,
        "num_key_value_heads": cfg.n_kv_head,
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": False,
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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a checkpoint is shared like any dir
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


def write_model_files(model: CodelingLM, out_dir: str | Path, tokenizer=None) -> None:
    """Fill an existing (usually temporary) directory with config.json, weights and tokenizer."""
    out = Path(out_dir)
    eot = tokenizer.eot_id if tokenizer is not None else None
    pad = tokenizer.pad_id if tokenizer is not None else None
    atomic_write_json(out / "config.json", hf_config(model.config, eot, pad))
    state = hf_arch.to_hf_names(model_state(model), _model_type(model.config))
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save(out)


def save_model(model: CodelingLM, out_dir: str | Path, tokenizer=None,
               extra: Callable[[Path], None] | None = None) -> Path:
    """Write an HF-format checkpoint directory atomically. `extra(tmp_dir)` adds more files."""
    def fill(tmp: Path) -> None:
        write_model_files(model, tmp, tokenizer)
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
    # a plain Llama (or Qwen3, Arcee, Apertus, NanoChat) config written by another tool
    try:
        block = hf_arch.options_from_hf(data.get("model_type", "llama"),
                                        data.get("hidden_act", "silu"),
                                        data.get("final_logit_softcapping"))
    except NoHFArchitecture as e:
        raise CheckpointError(f"{path}: {e}") from e
    try:
        return ModelConfig(
            **block,
            vocab_size=data["vocab_size"], n_layer=data["num_hidden_layers"],
            n_head=data["num_attention_heads"],
            n_kv_head=data.get("num_key_value_heads", data["num_attention_heads"]),
            d_model=data["hidden_size"], d_ff=data["intermediate_size"],
            max_seq_len=data.get("max_position_embeddings", 2048),
            rope_theta=data.get("rope_theta", 10000.0), norm_eps=data.get("rms_norm_eps", 1e-5),
            tie_embeddings=data.get("tie_word_embeddings", True))
    except KeyError as e:
        raise CheckpointError(f"{path}: field {e} missing") from e


def load_weights(model: CodelingLM, ckpt: str | Path) -> CodelingLM:
    """Copy a checkpoint's weights into `model` strictly (resume uses this on the live model)."""
    weights = Path(ckpt) / "model.safetensors"
    if not weights.exists():
        raise CheckpointError(f"{ckpt}: model.safetensors is missing")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: corrupt or truncated weights ({e})") from e
    state = hf_arch.from_hf_names(state, _model_type(model.config))
    tied = model.config.tie_embeddings
    if tied:
        state.pop("lm_head.weight", None)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a shape mismatch
        raise CheckpointError(f"{weights}: weights do not match the model ({e})") from e
    missing = [k for k in missing if not (tied and k == "lm_head.weight")]
    if missing or unexpected:
        raise CheckpointError(f"{weights}: weights do not match config.json "
                              f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    return model


def load_model(ckpt: str | Path, device: str | torch.device = "cpu") -> CodelingLM:
    """Load weights strictly; a truncated or mismatched file is an error, never a re-init."""
    model = load_weights(CodelingLM(read_model_config(ckpt)), ckpt)
    return model.to(device)


# ---- trainer state: everything besides the weights that an exact resume needs ----

TRAINER_STATE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def rng_state(device: torch.device | str | None = None) -> dict:
    """Every RNG the loop touches: python, numpy's global, torch CPU, and the CUDA generator of
    this process's own `device` (one per rank under torchrun; other GPUs are never touched, so
    a run resumes with any number of GPUs visible)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
             "torch": torch.get_rng_state()}
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def cuda_rng_for(saved: torch.Tensor | list | tuple | None, index: int) -> torch.Tensor | None:
    """The saved CUDA generator state for device `index`: a state saved for one device (this
    format) applies to whichever device resumes it; from an older list of every visible GPU's
    state, the entry of the same index, or none when that many GPUs are no longer visible."""
    if saved is None or isinstance(saved, torch.Tensor):
        return saved
    return saved[index] if index < len(saved) else None


def set_rng_state(state: dict, device: torch.device | str | None = None) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        cuda = cuda_rng_for(state.get("cuda"), index)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, torch.device("cuda", index))


def save_trainer_state(out_dir: str | Path, state: dict) -> None:
    """Write trainer_state.pt into a (temporary) checkpoint directory."""
    torch.save(state, Path(out_dir) / TRAINER_STATE)


def load_trainer_state(ckpt: str | Path) -> dict:
    """Read trainer_state.pt; a missing or truncated file is a CheckpointError naming it."""
    path = Path(ckpt) / TRAINER_STATE
    if not path.exists():
        raise CheckpointError(f"{path}: missing; {ckpt} cannot be resumed from")
    try:
        # weights_only: tensors, numbers, strings and containers; nothing executable
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated zip archives
        raise CheckpointError(f"{path}: corrupt or truncated trainer state ({e})") from e


def step_checkpoints(ckpt_root: str | Path) -> list[tuple[int, Path]]:
    """(step, dir) of every complete `step_N` checkpoint, oldest first."""
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and d.is_dir() and (d / TRAINER_STATE).exists():
            found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    found = step_checkpoints(ckpt_root)
    return found[-1][1] if found else None


def prune_checkpoints(ckpt_root: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` step_N directories (best/ and final/ are never touched)."""
    found = step_checkpoints(ckpt_root)
    for _, d in found[:max(len(found) - max(keep, 1), 0)]:
        shutil.rmtree(d, ignore_errors=True)


def remove_partial_dirs(ckpt_root: str | Path) -> None:
    """Temp dirs left by a write that was killed midway (write_dir_atomically's names)."""
    root = Path(ckpt_root)
    if root.is_dir():
        for d in root.glob(".*.tmp-*"):
            shutil.rmtree(d, ignore_errors=True)
