"""The model: HF Llama compatibility, KV cache, preset sizes."""

from __future__ import annotations

import re

import pytest
import torch
import transformers

from codeling.checkpoint import save_model
from codeling.config import ModelConfig, list_presets, load_config
from codeling.model import CodelingLM, KVCache


def tiny(**kw) -> CodelingLM:
    torch.manual_seed(0)
    base = dict(vocab_size=128, n_layer=2, n_head=4, n_kv_head=4, d_model=64, max_seq_len=64)
    return CodelingLM(ModelConfig(**{**base, **kw})).eval()


@pytest.mark.parametrize("shape", [{}, {"n_kv_head": 2}, {"n_kv_head": 1, "tie_embeddings": False}],
                         ids=["mha", "gqa", "mqa-untied"])
def test_transformers_loads_our_checkpoint_with_equal_logits(tmp_path, shape):
    ours = tiny(**shape)
    save_model(ours, tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    ids = torch.randint(0, 128, (2, 24))
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, ours(ids), atol=1e-4)


def test_kv_cache_forward_equals_full_forward():
    model = tiny(n_kv_head=2)
    ids = torch.randint(0, 128, (2, 20))
    with torch.no_grad():
        full = model(ids)
        cache = KVCache(model.config, 2, 32, ids.device, torch.float32)
        parts = [model(ids[:, :12], cache=cache)]
        parts += [model(ids[:, t:t + 1], cache=cache) for t in range(12, 20)]
    assert cache.pos == 20
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_left_padded_batch_matches_unpadded_rows():
    model = tiny()
    a = torch.randint(2, 128, (1, 10))
    b = torch.randint(2, 128, (1, 6))
    padded = torch.cat([torch.cat([torch.zeros(1, 4, dtype=torch.long), b], 1), a])
    key_mask = (torch.arange(10)[None] >= torch.tensor([[4], [0]])).long()
    positions = (key_mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        cache = KVCache(model.config, 2, 16, a.device, torch.float32)
        out = model(padded, position_ids=positions, cache=cache, key_mask=key_mask)
        assert torch.allclose(out[1], model(a)[0], atol=1e-5)
        assert torch.allclose(out[0, 4:], model(b)[0], atol=1e-5)


def test_preset_parameter_counts(capsys):
    counts = {}
    for name in list_presets():
        cfg = load_config(name).model
        with torch.device("meta"):  # count without allocating the big ones
            counts[name] = CodelingLM(cfg).num_params()
    with capsys.disabled():
        print("\n" + ", ".join(f"{k}: {v / 1e6:.2f}M" for k, v in counts.items()))
    # a size in the name ("v2-105m") is the true count within 5%; the rest are the CPU track
    sized = {n: int(m.group(1)) * 1e6 for n in counts
             if (m := re.search(r"-(\d+)m$", n))}
    assert set(sized) >= {"v1-29m", "v2-52m", "v2-88m", "v2-105m"}
    for name, size in sized.items():
        assert abs(counts[name] - size) <= 0.05 * size, (name, counts[name])
    assert counts["smoke"] < 1e6 and counts["cpu"] < 10e6  # the CPU track stays below 10M
