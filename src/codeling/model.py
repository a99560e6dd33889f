"""A compact decoder-only transformer whose weights are Hugging Face Llama weights.

Pre-norm RMSNorm, RoPE (HF's rotate-half layout), SwiGLU, no biases, tied embeddings, optional
grouped-query attention. Module names follow LlamaForCausalLM exactly, so a checkpoint saved by
`checkpoint.save_model` loads in `transformers.AutoModelForCausalLM` and peft's LoRA targets
(`q_proj`, `v_proj`, ...) mean the same thing here and there. ModelConfig's block options
(QK-norm, ReLU², gain-free norms, soft-capped logits, ...) are off by default; hf_arch.py names
the HF architecture (Qwen3, Arcee, Apertus, NanoChat) whose weights each combination matches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from codeling.config import ModelConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, weight: bool = True):
        super().__init__()
        # a gain-free norm (ModelConfig.norm_weights = false) holds no parameter, as HF's NanoChat
        self.weight = nn.Parameter(torch.ones(dim)) if weight else None
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # computed in fp32 as HF does, so logits match under bf16 autocast too
        h = x.float()
        h = (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)
        return h if self.weight is None else self.weight * h


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float,
                 dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape (B, 1, T, head_dim) for integer positions of shape (B, T)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device,
                                             dtype=torch.float32) / head_dim))
    freqs = positions.float()[..., None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)[:, None]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class KVCache:
    """Preallocated keys/values for all layers; `pos` is how many positions are filled."""

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, device: torch.device,
                 dtype: torch.dtype):
        shape = (cfg.n_layer, batch, cfg.n_kv_head, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0
        self.max_len = max_len
        # (first row, end row, first column) of row groups whose decode steps attend only from
        # that column on (their left padding skipped, not just masked); empty: one group
        self.groups: list[tuple[int, int, int]] = []

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        end = self.pos + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache overflow: {end} > {self.max_len} positions")
        self.k[layer, :, :, self.pos:end] = k
        self.v[layer, :, :, self.pos:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def select(self, rows: torch.Tensor) -> None:
        """Keep only some batch rows (finished sequences drop out of a batched generate)."""
        self.k = self.k[:, rows]
        self.v = self.v[:, rows]

    def window(self, rows: slice, start: int) -> KVCache:
        """A cache over some rows whose column 0 is column `start` here, sharing its storage:
        a group of prompts prefilled into it lands in place (decode._prefill)."""
        part = object.__new__(KVCache)
        part.k, part.v = self.k[:, rows, :, start:], self.v[:, rows, :, start:]
        part.pos, part.max_len, part.groups = 0, self.max_len - start, []
        return part

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
        """A decode step's attention, group by group (see `groups`)."""
        return torch.cat([F.scaled_dot_product_attention(q[a:b], k[a:b, :, c:], v[a:b, :, c:],
                                                         attn_mask=mask[a:b, :, :, c:])
                          for a, b, c in self.groups])


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.cfg, self.layer = cfg, layer
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.d_model, cfg.n_head * hd, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, cfg.n_kv_head * hd, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, cfg.n_kv_head * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_head * hd, cfg.d_model, bias=False)
        if cfg.qk_norm:  # per head, before RoPE, as Qwen3: attention logits stay bounded
            self.q_norm = RMSNorm(hd, cfg.norm_eps, cfg.norm_weights)
            self.k_norm = RMSNorm(hd, cfg.norm_eps, cfg.norm_weights)
        if value_embed_table(cfg, layer) is not None:
            # v = a·v + b·value_embedding(token), a and b learnt (modded-nanogpt starts both at .5)
            self.ve_lambdas = nn.Parameter(torch.full((2,), 0.5))

    def forward(self, x, cos, sin, cache: KVCache | None, mask: torch.Tensor | None,
                ve: torch.Tensor | None = None):
        B, T, _ = x.shape
        hd, nh, nkv = self.cfg.head_dim, self.cfg.n_head, self.cfg.n_kv_head
        q = self.q_proj(x).view(B, T, nh, hd)
        k = self.k_proj(x).view(B, T, nkv, hd)
        if self.cfg.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = self.v_proj(x).view(B, T, nkv, hd).transpose(1, 2)
        if ve is not None:
            ve = ve.view(B, T, nkv, hd).transpose(1, 2).to(v.dtype)
            v = self.ve_lambdas[0] * v + self.ve_lambdas[1] * ve
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer, k, v)
        if nkv != nh:
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif cache is not None and cache.groups and T == 1:
            y = cache.attend(q, k, v, mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, nh * hd))


class MLP(nn.Module):
    """SwiGLU (Llama), or ungated ReLU² (modded-nanogpt; Arcee, Apertus, NanoChat in HF)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gated = cfg.mlp == "swiglu"
        if self.gated:
            self.gate_proj = nn.Linear(cfg.d_model, cfg.ffn_dim, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.ffn_dim, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_dim, cfg.d_model, bias=False)

    def forward(self, x):
        if self.gated:
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(F.relu(self.up_proj(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps, cfg.norm_weights)
        self.self_attn = Attention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps, cfg.norm_weights)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, cache, mask, ve=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, mask, ve)
        return x + self.mlp(self.post_attention_layernorm(x))


def attention_mask(key_mask: torch.Tensor | None, end: int, T: int,
                   device: torch.device) -> torch.Tensor:
    """Which keys (columns 0..end) each of T new queries ending at column `end` sees, (B or 1,
    1, T, end) bool: a key is seen if `key_mask` marks it real and it is not after the query."""
    past = end - T
    cols = torch.arange(end, device=device)[None, :]
    q_pos = torch.arange(past, end, device=device)[:, None]
    seen = (cols <= q_pos)[None, None]
    if key_mask is not None:
        # a pad query attends to itself, so no row is fully masked (some CUDA kernels return
        # NaN there, which would then leak into later layers through V)
        seen = (seen & key_mask[:, None, None, :end].bool()) | (cols == q_pos)
    return seen


def value_embed_table(cfg: ModelConfig, layer: int) -> int | None:
    """Which value-embedding table feeds `layer`: table i serves layer i and layer
    n_layer - value_embeds + i (the first and last layers, as modded-nanogpt), others none."""
    k = cfg.value_embeds
    if layer < k:
        return layer
    if layer >= cfg.n_layer - k:
        return layer - (cfg.n_layer - k)
    return None


class Backbone(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps, cfg.norm_weights)
        # the options' modules come after the Llama ones, so a default model's state is unchanged
        if cfg.embed_norm:
            self.embed_norm = RMSNorm(cfg.d_model, cfg.norm_eps, cfg.norm_weights)
        if cfg.value_embeds:
            kv_dim = cfg.n_kv_head * cfg.head_dim
            self.value_embeds = nn.ModuleList(nn.Embedding(cfg.vocab_size, kv_dim)
                                              for _ in range(cfg.value_embeds))
        if cfg.resid_scalars:
            # before block i: x = resid_lambdas[i]·x + x0_lambdas[i]·x0 (nanochat); 1 and 0 at
            # init, so the model starts as the plain residual stream
            self.resid_lambdas = nn.Parameter(torch.ones(cfg.n_layer))
            self.x0_lambdas = nn.Parameter(torch.zeros(cfg.n_layer))


class CodelingLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.d_model % cfg.n_head or cfg.n_head % cfg.n_kv_head:
            raise ValueError(f"d_model {cfg.d_model} must divide by n_head {cfg.n_head}, and "
                             f"n_head by n_kv_head {cfg.n_kv_head}")
        check_block_options(cfg)
        self.config = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.reset_parameters()

    def reset_parameters(self) -> None:
        cfg = self.config
        std = cfg.init_std
        for name, p in self.named_parameters():
            if name.endswith("x0_lambdas"):
                nn.init.zeros_(p)
            elif name.endswith("ve_lambdas"):
                nn.init.constant_(p, 0.5)
            elif p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                if cfg.zero_init_proj:  # each block starts as identity (modded-nanogpt)
                    nn.init.zeros_(p)
                else:  # residual projections scaled down so deep stacks start near identity
                    nn.init.normal_(p, 0.0, std / math.sqrt(2 * cfg.n_layer))
            elif name == "lm_head.weight" and cfg.zero_init_head:  # untied: checked above
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, 0.0, std)

    def num_params(self, trainable_only: bool = False) -> int:
        """True count; tied embeddings counted once."""
        params = {id(p): p for p in self.parameters() if p.requires_grad or not trainable_only}
        return sum(p.numel() for p in params.values())

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None,
                cache: KVCache | None = None, key_mask: torch.Tensor | None = None,
                logits_to_keep: int = 0) -> torch.Tensor:
        """Logits (B, T, vocab), or (B, logits_to_keep, vocab) for the last positions only.

        Without a cache and key_mask this is plain causal attention (training). With a cache, the
        new tokens attend to all filled positions; `key_mask` (B, past+T) marks real tokens, so
        left-padded batches generate correctly. `logits_to_keep=1` spares a prefill the lm_head
        over every prompt position (as HF's argument of that name).
        """
        B, T = input_ids.shape
        past = cache.pos if cache is not None else 0
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=input_ids.device).expand(B, T)
        x = self.model.embed_tokens(input_ids)
        # cos/sin in the dtype q and k will have (bf16 under autocast), so RoPE does not promote
        # them to fp32 on their way into attention
        dev = x.device.type
        dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        cos, sin = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_theta,
                                dtype)
        if not self.config.norm_weights:
            # gain-free norms are nanochat's block, whose HF port rotates the other way round;
            # rotating as it does lets the checkpoint load there as is (either way learns alike)
            sin = -sin
        mask = None
        if cache is not None and key_mask is not None and T == 1:
            # a decode step: the new token sees every real key and itself (the general mask
            # below, built with fewer ops; it is on every step's path)
            mask = key_mask[:, :past + 1].bool().clone()
            mask[:, -1] = True
            mask = mask[:, None, None, :]
        elif cache is not None or key_mask is not None:
            mask = attention_mask(key_mask, past + T, T, x.device)
        cfg = self.config
        if cfg.embed_norm:
            x = self.model.embed_norm(x)
        x0 = x
        ves = [table(input_ids) for table in self.model.value_embeds] if cfg.value_embeds else []
        for i, block in enumerate(self.model.layers):
            if cfg.resid_scalars:
                x = self.model.resid_lambdas[i] * x + self.model.x0_lambdas[i] * x0
            table = value_embed_table(cfg, i)
            x = block(x, cos, sin, cache, mask, None if table is None else ves[table])
        if cache is not None:
            cache.pos += T
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(self.model.norm(x))
        if cfg.logit_softcap:  # tanh soft cap (Gemma 2, modded-nanogpt), in HF NanoChat's order
            logits = torch.tanh(logits / cfg.logit_softcap) * cfg.logit_softcap
        return logits


def check_block_options(cfg: ModelConfig) -> None:
    """A clear error for a block option that cannot be built (ModelConfig's option fields)."""
    if cfg.mlp not in ("swiglu", "relu2"):
        raise ValueError(f"model.mlp must be swiglu or relu2, got {cfg.mlp!r}")
    if cfg.zero_init_head and cfg.tie_embeddings:
        raise ValueError("model.zero_init_head needs model.tie_embeddings = false "
                         "(a tied head is the embedding table, which must not start at zero)")
    if not 0 <= 2 * cfg.value_embeds <= cfg.n_layer:
        raise ValueError(f"model.value_embeds must be between 0 and n_layer / 2 = "
                         f"{cfg.n_layer // 2}, got {cfg.value_embeds}")
    if cfg.logit_softcap < 0:
        raise ValueError(f"model.logit_softcap must be >= 0 (0: off), got {cfg.logit_softcap}")
