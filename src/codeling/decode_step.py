"""The model's forward for decode steps, with few ops: what `decode.decode_batch` and `codeling
serve`'s engine call once per generated token.

At the cpu preset's size (6 layers, d=192) a step's weight products take 0.6-1.3 ms at batch 1
(by machine load), but `CodelingLM.forward` took ~3.6 ms: 393 torch calls (1,384 ops counted
with the nested ones) under 55 nn.Module calls, RoPE recomputed from the positions, a mask
rebuilt and cloned, q, k and v projected apart, nn.Linear's (out, in) weights. This runs the
same computation as plain functions over weights gathered once (274 torch calls, 921 ops;
~2.3 ms):
  - q, k and v come from one matrix product (their weights concatenated), as do SwiGLU's gate
    and up, with weights stored (in, out): at one row the CPU's BLAS streams that layout ~1.6x
    faster than nn.Linear's (out, in) (a matrix-vector kernel whose last bits differ; from ~5
    rows both layouts give the same bits);
  - RoPE's cos and sin are a table over all positions, indexed once per step for every layer;
    rotate-half is a roll and a sign folded into the sin table (the same products, bit for bit);
  - new keys and values are copied into the preallocated `KVCache` in place, and attention
    reads only its filled columns (views, no copy);
  - with no left padding in the batch (batch 1, equal prompts) attention runs unmasked;
    otherwise the key mask becomes one additive bias per step, and attention is written out as
    two matrix products and a softmax (at q length 1 twice as fast as the CPU's
    flash-attention kernel with a mask), group by group where `KVCache.groups` says so.
Logits agree with the module forward's to ~1e-6 (tests/test_decode_step.py); greedy tokens
matched the old decoder's on every bench/generate.py row.

The gathered weights follow the model: `for_model` rebuilds them when a parameter changed
(in-training dev evals between optimizer steps). Matrix weights are kept in the compute dtype
(bf16 under autocast on a GPU: the cast autocast would do per step, done once).
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F

from codeling.model import (
    CodelingLM,
    KVCache,
    attention_mask,
    rope_cos_sin,
    value_embed_table,
)


def _rms(x: torch.Tensor, w: torch.Tensor | None, eps: float) -> torch.Tensor:
    # exactly model.RMSNorm's ops (fp32 statistics), without the two no-op casts for fp32
    if x.dtype == torch.float32:
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    else:
        h = x.float()
        h = (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
    return h if w is None else w * h


def _in_out(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # (in, out) row-major: at one row the CPU's product streams it ~1.6x faster than nn.Linear's
    # (out, in) (a different kernel: last bits differ there; from ~5 rows on both are the same)
    return weight.to(dtype).t().contiguous()


class DecodeStep:
    """Inference-only forward of a CodelingLM over a KVCache (see the module docstring)."""

    def __init__(self, model: CodelingLM, dtype: torch.dtype | None = None):
        cfg = self.cfg = model.config
        m = model.model
        mat = dtype or next(model.parameters()).dtype  # matrix weights' dtype
        with torch.no_grad():
            self.layers = []
            for i, block in enumerate(m.layers):
                a, f = block.self_attn, block.mlp
                qkv = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight])
                up = (torch.cat([f.gate_proj.weight, f.up_proj.weight]) if f.gated
                      else f.up_proj.weight)
                self.layers.append((
                    block.input_layernorm.weight, _in_out(qkv, mat), _in_out(a.o_proj.weight, mat),
                    block.post_attention_layernorm.weight, _in_out(up, mat),
                    _in_out(f.down_proj.weight, mat),
                    (a.q_norm.weight, a.k_norm.weight) if cfg.qk_norm else None,
                    value_embed_table(cfg, i), getattr(a, "ve_lambdas", None)))
            self.gated = cfg.mlp == "swiglu"
            self.embed = m.embed_tokens.weight
            self.head = _in_out(model.lm_head.weight, mat)
            self.norm = m.norm.weight
            self.embed_norm = m.embed_norm.weight if cfg.embed_norm else None
            self.ves = [t.weight for t in m.value_embeds] if cfg.value_embeds else []
            self.resid = (m.resid_lambdas, m.x0_lambdas) if cfg.resid_scalars else None
            device = self.embed.device
            positions = torch.arange(cfg.max_seq_len, device=device)[None]
            cos, sin = rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta, mat)
            if not cfg.norm_weights:  # as CodelingLM.forward: nanochat's rotation direction
                sin = -sin
            half = cfg.head_dim // 2
            # rotate_half(x) * sin == roll(x, half) * (sin with its first half negated)
            sin = torch.cat([-sin[..., :half], sin[..., half:]], -1)
            self.cos, self.sin = cos[0, 0], sin[0, 0]  # (max_seq_len, head_dim)
        self.half = half
        self.scale = cfg.head_dim ** -0.5

    def bias(self, key_mask: torch.Tensor | None, end: int, T: int) -> torch.Tensor | None:
        """Additive attention bias (B, 1, T, end) for T new tokens ending at column `end`, 0
        where `model.attention_mask` (CodelingLM.forward's mask) sees the key, -inf elsewhere.
        None when nothing is masked (no key mask, T=1)."""
        if key_mask is None and T == 1:
            return None
        seen = attention_mask(key_mask, end, T, self.cos.device)
        zero = torch.zeros((), dtype=self.cos.dtype, device=self.cos.device)
        return zero.masked_fill(~seen, float("-inf"))

    def __call__(self, input_ids: torch.Tensor, positions: torch.Tensor, cache: KVCache,
                 bias: torch.Tensor | None) -> torch.Tensor:
        """Logits (B, T, vocab) of T new tokens at RoPE `positions` (B, T), appended to the
        cache; `bias` from `bias()` (None: every filled column is seen)."""
        cfg = self.cfg
        B, T = input_ids.shape
        nh, nkv, hd = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        past = cache.pos
        end = past + T
        if end > cache.max_len:
            raise ValueError(f"KV cache overflow: {end} > {cache.max_len} positions")
        x = F.embedding(input_ids, self.embed)
        cos, sin = self.cos[positions][:, :, None], self.sin[positions][:, :, None]
        if cfg.embed_norm:
            x = _rms(x, self.embed_norm, cfg.norm_eps)
        x0 = x
        ves = [F.embedding(input_ids, t) for t in self.ves]
        eps = cfg.norm_eps
        ks, vs = cache.k.unbind(0), cache.v.unbind(0)  # one op for every layer's view
        for i, (n1, qkv_w, o_w, n2, up_w, down_w, qkn, ve_i, ve_lam) in enumerate(self.layers):
            if self.resid is not None:
                x = self.resid[0][i] * x + self.resid[1][i] * x0
            qkv = torch.matmul(_rms(x, n1, eps), qkv_w).view(B, T, nh + 2 * nkv, hd)
            if qkn is None:
                qk = qkv[:, :, :nh + nkv]
            else:
                qk = torch.cat([_rms(qkv[:, :, :nh], qkn[0], eps),
                                _rms(qkv[:, :, nh:nh + nkv], qkn[1], eps)], 2)
            qk = qk * cos + qk.roll(self.half, -1) * sin
            q, k = qk[:, :, :nh].transpose(1, 2), qk[:, :, nh:].transpose(1, 2)
            v = qkv[:, :, nh + nkv:].transpose(1, 2)
            if ve_i is not None:
                ve = ves[ve_i].view(B, T, nkv, hd).transpose(1, 2).to(v.dtype)
                v = ve_lam[0] * v + ve_lam[1] * ve
            ck, cv = ks[i], vs[i]
            ck[:, :, past:end] = k
            cv[:, :, past:end] = v
            y = self._attend(q, ck[:, :, :end], cv[:, :, :end], bias, cache.groups)
            y = y.view(B, T, nh * hd) if T == 1 else y.transpose(1, 2).reshape(B, T, nh * hd)
            x = x + torch.matmul(y, o_w)
            h = torch.matmul(_rms(x, n2, eps), up_w)
            if self.gated:
                g, u = h.chunk(2, -1)
                h = F.silu(g) * u
            else:
                h = F.relu(h).square()
            x = x + torch.matmul(h, down_w)
        cache.pos = end
        logits = torch.matmul(_rms(x, self.norm, eps), self.head)
        if cfg.logit_softcap:
            logits = torch.tanh(logits / cfg.logit_softcap) * cfg.logit_softcap
        return logits

    def _attend(self, q, k, v, bias, groups) -> torch.Tensor:
        if bias is None:
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=k.shape[1] != q.shape[1])
        if not groups or q.shape[2] != 1:
            return self._masked(q, k, v, bias)
        # rows a:b attend from column c on: their left padding is skipped, not just masked
        return torch.cat([self._masked(q[a:b], k[a:b, :, c:], v[a:b, :, c:], bias[a:b, ..., c:])
                          for a, b, c in groups])

    def _masked(self, q, k, v, bias) -> torch.Tensor:
        B, nh, T, hd = q.shape
        nkv = k.shape[1]
        if q.device.type != "cpu":  # fused attention kernels take the bias as it is there
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype),
                                                  enable_gqa=nkv != nh)
        if nkv != nh and T == 1:  # grouped-query: a group's queries share their kv head
            s = torch.matmul(q.view(B, nkv, nh // nkv, hd), k.transpose(-1, -2))
            s = (s * self.scale + bias).softmax(-1)
            return torch.matmul(s.to(v.dtype), v).view(B, nh, 1, hd)
        if nkv != nh:
            k = k.repeat_interleave(nh // nkv, dim=1)
            v = v.repeat_interleave(nh // nkv, dim=1)
        s = (torch.matmul(q, k.transpose(-1, -2)) * self.scale + bias).softmax(-1)
        return torch.matmul(s.to(v.dtype), v)


_BUILT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def for_model(model: CodelingLM, dtype: torch.dtype | None = None) -> DecodeStep:
    """The model's DecodeStep, rebuilt only when a parameter changed since it was made."""
    # (inference tensors keep no version counter: made under inference_mode, seen as fixed)
    key = (dtype, tuple((p.data_ptr(), -1 if p.is_inference() else p._version)
                        for p in model.parameters()))
    built = _BUILT.get(model)
    if built is None or built[0] != key:
        built = _BUILT[model] = (key, DecodeStep(model, dtype))
    return built[1]
