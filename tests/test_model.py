"""The model: HF compatibility (Llama and each block option's architecture), KV cache, presets."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch
import transformers

from codeling.checkpoint import load_model, read_model_config, save_model
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


def decode_in_parts(model: CodelingLM) -> tuple[torch.Tensor, list[torch.Tensor], KVCache]:
    """Logits of 20 random tokens in one forward, and as a 12-token prefill + 8 cached steps."""
    ids = torch.randint(0, 128, (2, 20))
    with torch.no_grad():
        full = model(ids)
        cache = KVCache(model.config, 2, 32, ids.device, torch.float32)
        parts = [model(ids[:, :12], cache=cache)]
        parts += [model(ids[:, t:t + 1], cache=cache) for t in range(12, 20)]
    return full, parts, cache


def test_kv_cache_forward_equals_full_forward():
    model = tiny(n_kv_head=2)
    full, parts, cache = decode_in_parts(model)
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


# ---- block options (ModelConfig's option keys; hf_arch.py maps them to HF architectures) ----

NANOCHAT = {"norm_weights": False, "embed_norm": True, "qk_norm": True, "mlp": "relu2"}
UNTIED = {"tie_embeddings": False}
# each option, alone or in the combination an HF architecture needs, with the class it loads as
# in transformers (None: no architecture computes it, so the checkpoint is for codeling only)
BLOCKS = {
    "qk_norm": ({"qk_norm": True}, "Qwen3ForCausalLM"),
    "relu2": ({"mlp": "relu2"}, "ArceeForCausalLM"),
    "qk_norm+relu2": ({"qk_norm": True, "mlp": "relu2", "n_kv_head": 2}, "ApertusForCausalLM"),
    "nanochat": ({**NANOCHAT, "n_kv_head": 2}, "NanoChatForCausalLM"),
    "nanochat+softcap": ({**NANOCHAT, **UNTIED, "logit_softcap": 5.0}, "NanoChatForCausalLM"),
    "zero_init": ({**UNTIED, "zero_init_proj": True, "zero_init_head": True},
                  "LlamaForCausalLM"),
    "softcap": ({"logit_softcap": 5.0}, None),
    "embed_norm": ({"embed_norm": True}, None),
    "value_embeds": ({"value_embeds": 1, "n_kv_head": 2}, None),
    "resid_scalars": ({"resid_scalars": True}, None),
}


def tiny_trained(**kw) -> CodelingLM:
    """A tiny model whose every weight is random, as after training: gains away from 1, the
    zero-initialised projections and scalars away from their start, so a mapping that drops or
    misplaces any of them changes the logits."""
    model = tiny(**kw)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p + torch.randn_like(p) * (0.3 if p.dim() < 2 else 0.05))
    return model


@pytest.mark.parametrize("name", list(BLOCKS))
def test_block_option_checkpoint_loads_in_transformers_or_refuses(tmp_path, name):
    options, hf_class = BLOCKS[name]
    ours = tiny_trained(**options)
    save_model(ours, tmp_path)
    ids = torch.randint(0, 128, (2, 24))
    if hf_class is None:
        assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "codeling"
        with pytest.raises(ValueError, match="codeling"):
            transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    else:
        hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
        assert type(hf).__name__ == hf_class
        with torch.no_grad():
            assert torch.allclose(hf(ids).logits, ours(ids), atol=1e-4)
    # codeling itself reloads every option: the same config and logits
    assert read_model_config(tmp_path) == ours.config
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path)(ids), ours(ids))


@pytest.mark.parametrize("name", [n for n, (_, cls) in BLOCKS.items() if cls])
def test_plain_hf_config_reads_back_the_block(tmp_path, name):
    """A config.json without our "codeling" section (written by another tool) still names the
    block: hf_arch's reading inverts its writing."""
    options, _ = BLOCKS[name]
    ours = tiny_trained(**options)
    save_model(ours, tmp_path)
    path = tmp_path / "config.json"
    data = json.loads(path.read_text())
    del data["codeling"]
    path.write_text(json.dumps(data))
    init_only = {"zero_init_proj": False, "zero_init_head": False}
    assert read_model_config(tmp_path) == dataclasses.replace(ours.config, **init_only,
                                                              d_ff=ours.config.ffn_dim)
    with torch.no_grad():
        ids = torch.randint(0, 128, (1, 16))
        assert torch.equal(load_model(tmp_path)(ids), ours(ids))


@pytest.mark.parametrize("name", list(BLOCKS))
def test_kv_cache_decode_equals_full_forward_with_each_option(name):
    model = tiny_trained(**BLOCKS[name][0])
    full, parts, _ = decode_in_parts(model)
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


def test_every_option_trains_under_bf16_autocast():
    """The preset's bf16 steps: mixed dtypes (fp32 gains and scalars, bf16 activations) must
    meet in attention without a dtype error, and every parameter gets a finite gradient."""
    for name, (options, _) in BLOCKS.items():
        model = tiny_trained(**options).train()
        ids = torch.randint(0, 128, (2, 16))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(ids[:, :-1])
        torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten()
                                          ).backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (name, pname)


def test_zero_init_options_start_at_zero_and_relu2_keeps_the_parameter_count():
    plain, zero = tiny(**UNTIED), tiny(**UNTIED, zero_init_proj=True, zero_init_head=True)
    for name, p in zero.named_parameters():
        is_zero = not p.detach().any()
        assert is_zero == name.endswith(("o_proj.weight", "down_proj.weight", "lm_head.weight")), \
            name
    assert all(p.detach().any() for p in plain.parameters())
    with torch.no_grad():  # a zero head: every token equally likely at step 0
        assert not zero(torch.randint(0, 128, (1, 8))).any()
    for d_model in (64, 192, 512):
        sizes = [CodelingLM(ModelConfig(vocab_size=128, n_layer=2, d_model=d_model, n_head=4,
                                        n_kv_head=4, mlp=mlp)).num_params()
                 for mlp in ("swiglu", "relu2")]
        assert sizes[0] == sizes[1], (d_model, sizes)


def test_block_options_that_cannot_be_built_are_clear_errors():
    with pytest.raises(ValueError, match="tie_embeddings"):
        tiny(zero_init_head=True)
    with pytest.raises(ValueError, match="swiglu or relu2"):
        tiny(mlp="gelu")
    with pytest.raises(ValueError, match="value_embeds"):
        tiny(value_embeds=2, n_layer=3)


def shrunk(cfg: ModelConfig) -> ModelConfig:
    """A preset's model at test size: every block option kept, widths and depth cut."""
    group = min(cfg.n_head // cfg.n_kv_head, 4)
    return dataclasses.replace(cfg, vocab_size=96, d_model=64, n_head=4, n_kv_head=4 // group,
                               n_layer=max(2, 2 * cfg.value_embeds), d_ff=48 if cfg.d_ff else 0,
                               max_seq_len=64)


def presets_by_block() -> dict[str, ModelConfig]:
    """Every preset's shrunk model, once per distinct one ("cpu+cpu-sft": the same block)."""
    names: dict[str, list[str]] = {}
    configs = {}
    for preset in list_presets():
        cfg = shrunk(load_config(preset).model)
        names.setdefault(repr(cfg), []).append(preset)
        configs[repr(cfg)] = cfg
    return {"+".join(names[key]): cfg for key, cfg in configs.items()}


PRESET_BLOCKS = presets_by_block()


@pytest.mark.parametrize("cfg", list(PRESET_BLOCKS.values()), ids=list(PRESET_BLOCKS))
def test_every_preset_checkpoint_loads_in_transformers_with_equal_logits(tmp_path, cfg):
    torch.manual_seed(0)
    ours = CodelingLM(cfg).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    save_model(ours, tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, 96, (2, 16))
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, ours(ids), atol=1e-4)
