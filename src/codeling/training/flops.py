"""FLOPs per token, a device's peak FLOP/s, MFU and peak memory: what a GPU user reads first.

FLOPs per trained token (forward and backward), counted as nanochat and PaLM (Chowdhery et al.
2022, appendix B) count them:

    6·N + 12·L·H·Q·T

- N: the weights of the matrix multiplies, the model's nn.Linear weights: every projection and
  the output head (a tied head counted once, as the head's multiply; embedding lookups, value
  embeddings included, and the norms do no multiply), whatever the block options;
- 6·N: 2 FLOPs per weight forward (multiply and add), 4 backward (the input's and the weight's
  gradients);
- 12·L·H·Q·T: attention's scores and their product with V, 4·H·Q·T forward per layer (L
  layers, H heads of width Q, sequence length T, as if not causal), times 3 with backward.

MFU = tokens/s × FLOPs per token / (processes × one device's peak FLOP/s). LoRA runs do less
than 6·N (frozen weights get no gradient), so their MFU reads high; SFT batches are shorter than
seq_len, so T there is an upper bound. Peak FLOP/s: the dense bf16 tensor figure of the vendor's
data sheet (no sparsity) for the CUDA device's name, or the training section's `peak_flops`
(the only source for a CPU); unknown gives MFU null. Peak memory: CUDA's
max_memory_allocated for the device, else the process's peak resident set (ru_maxrss).
"""

from __future__ import annotations

import re
import resource
import sys

import torch
from torch import nn

from codeling.config import ModelConfig
from codeling.model import CodelingLM

# (name pattern, dense bf16 FLOP/s with fp32 accumulation), first match wins: the more specific
# names first ("H100 PCIe" before "H100", "L40S" before "L4")
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    (r"H100.*PCIe", 756e12),
    (r"H100.*NVL", 835e12),
    (r"GH200|H200|H100", 989e12),
    (r"B200", 2250e12),
    (r"A100", 312e12),
    (r"L40S", 362e12),
    (r"\bL4\b", 121e12),
    (r"RTX 5090", 209.5e12),
    (r"RTX 4090", 165.2e12),
    (r"RTX 3090", 71e12),
)


def matmul_params(model: nn.Module) -> int:
    """N: the weights that take part in a matrix multiply per token (see the module doc)."""
    weights = {id(m.weight): m.weight.numel() for m in model.modules()
               if isinstance(m, nn.Linear)}
    return sum(weights.values())


def flops_per_token(model: nn.Module, seq_len: int) -> int | None:
    """6·N + 12·L·H·Q·T for a model holding a CodelingLM (else None)."""
    cfg = model_config_of(model)
    if cfg is None:
        return None
    return 6 * matmul_params(model) + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len


def model_config_of(model: nn.Module) -> ModelConfig | None:
    """The CodelingLM's config inside `model` (bare, DDP- or peft-wrapped), else None."""
    for m in model.modules():
        if isinstance(m, CodelingLM):
            return m.config
    return None


def peak_flops(device: torch.device, override: float = 0.0) -> float | None:
    """One device's peak FLOP/s: the override when set, else the table's for a CUDA device."""
    if override > 0:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for pattern, flops in PEAK_BF16_FLOPS if re.search(pattern, name)), None)


def mfu(tokens_per_s: float, per_token: int | None, peak: float | None,
        world: int = 1) -> float | None:
    if not per_token or not peak:
        return None
    return tokens_per_s * per_token / (world * peak)


def peak_memory_mb(device: torch.device) -> float:
    """MiB: CUDA's peak allocated on `device`, else this process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
