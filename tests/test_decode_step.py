"""decode_step.DecodeStep against CodelingLM.forward over the same KV cache, for every block
option, with and without left padding, one and several new tokens, grouped attention."""

import pytest
import torch

from codeling.config import ModelConfig
from codeling.decode_step import DecodeStep, for_model
from codeling.model import CodelingLM, KVCache

OPTIONS = [{}, {"n_kv_head": 2}, {"qk_norm": True}, {"mlp": "relu2"}, {"norm_weights": False},
           {"embed_norm": True}, {"logit_softcap": 15.0}, {"value_embeds": 2},
           {"resid_scalars": True},
           {"n_kv_head": 1, "qk_norm": True, "value_embeds": 1, "resid_scalars": True}]


def model_with(options: dict) -> CodelingLM:
    torch.manual_seed(0)
    cfg = ModelConfig(**{"vocab_size": 300, "n_layer": 4, "n_head": 4, "n_kv_head": 4,
                         "d_model": 64, "max_seq_len": 64, **options})
    model = CodelingLM(cfg).eval()
    with torch.no_grad():  # norms, lambdas away from their init, so each one matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "default")
@pytest.mark.parametrize("T", [1, 3])
@pytest.mark.parametrize("grouped", [False, True])
@torch.inference_mode()
def test_step_matches_the_module_forward(options, T, grouped):
    model = model_with(options)
    step = DecodeStep(model)
    cfg, lengths, P = model.config, [10, 7, 4], 10
    ids = torch.randint(0, cfg.vocab_size, (3, P))
    key_mask = torch.ones(3, P + 8, dtype=torch.bool)
    positions = torch.zeros(3, P, dtype=torch.long)
    for b, n in enumerate(lengths):  # left padded, as decode._prefill lays prompts out
        key_mask[b, :P - n] = False
        positions[b, P - n:] = torch.arange(n)
    caches = [KVCache(cfg, 3, P + 8, "cpu", torch.float32) for _ in range(2)]
    for cache in caches:
        model(ids, positions, cache, key_mask, logits_to_keep=1)
        cache.groups = [(0, 1, 0), (1, 3, 3)] if grouped and T == 1 else []
    nxt = torch.tensor(lengths)[:, None]
    for _ in range(2):
        new = torch.randint(0, cfg.vocab_size, (3, T))
        pos = nxt + torch.arange(T)[None]
        want = model(new, pos, caches[0], key_mask)
        got = step(new, pos, caches[1], step.bias(key_mask, caches[1].pos + T, T))
        assert caches[1].pos == caches[0].pos
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        assert torch.equal(got.argmax(-1), want.argmax(-1))
        nxt = nxt + T
    torch.testing.assert_close(caches[1].k, caches[0].k, rtol=0, atol=1e-5)


@torch.inference_mode()
def test_unpadded_step_needs_no_mask():
    model = model_with({})
    step = DecodeStep(model)
    assert step.bias(None, 12, 1) is None
    caches = [KVCache(model.config, 1, 20, "cpu", torch.float32) for _ in range(2)]
    ids = torch.randint(0, 300, (1, 11))
    for cache in caches:
        model(ids, None, cache, torch.ones(1, 20, dtype=torch.bool), 1)
    new, pos = torch.tensor([[5]]), torch.tensor([[11]])
    want = model(new, pos, caches[0], torch.ones(1, 20, dtype=torch.bool))
    torch.testing.assert_close(step(new, pos, caches[1], None), want, rtol=0, atol=1e-5)


def test_for_model_rebuilds_after_a_parameter_changes():
    model = model_with({})
    first = for_model(model)
    assert for_model(model) is first
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight.mul_(2)  # as an optimizer step would
    second = for_model(model)
    assert second is not first
    q_cols = model.config.n_head * model.config.head_dim
    assert torch.equal(second.layers[0][1][:, :q_cols],
                       model.model.layers[0].self_attn.q_proj.weight.t())
