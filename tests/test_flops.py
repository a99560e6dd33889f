"""FLOPs per token against a hand count and torch's own counter; MFU, peak memory and the clean
tokens/s in metrics.jsonl."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from codeling.config import ModelConfig, TrainConfig, load_config
from codeling.data import EvalWindows, RandomWindows
from codeling.model import CodelingLM
from codeling.objectives import LMObjective
from codeling.train import read_metrics, seed_everything, train
from codeling.training.flops import (
    flops_per_token,
    matmul_params,
    mfu,
    model_config_of,
    peak_flops,
)

SHARD = np.tile(np.arange(1, 13, dtype=np.uint16), 400)


def test_v1_29m_flops_per_token_by_hand():
    # v1-29m: 8 layers, d_model 512, 8 heads of 64 (8 kv heads), SwiGLU width 8/3·512 -> 1408
    # (rounded up to a multiple of 64), vocab 8192, tied head; trained at seq_len 512
    cfg = load_config("v1-29m")
    model = CodelingLM(cfg.model)
    per_layer = 4 * 512 * 512 + 3 * 512 * 1408  # q, k, v, o + gate, up, down = 3,211,264
    n = 8 * per_layer + 512 * 8192  # + the head: 29,884,416
    attention = 12 * 8 * 8 * 64 * 512  # 12·L·H·Q·T = 25,165,824
    assert matmul_params(model) == n == 29_884_416
    assert flops_per_token(model, cfg.pretrain.seq_len) == 6 * n + attention == 204_472_320
    # N is the parameter count less the norm weights (8 layers × 2 × 512, and the final 512)
    assert model.num_params() - (8 * 2 * 512 + 512) == n


@pytest.mark.parametrize("options", [{}, {"mlp": "relu2", "value_embeds": 1}])
def test_formula_matches_torchs_flop_counter_forward_and_backward(options):
    """torch counts every matmul of a real forward+backward (the math attention kernel, so the
    attention products are matmuls too): grouped-query heads, an odd vocabulary, and block
    options that change the weights (ReLU² MLP, value embeddings)."""
    cfg = ModelConfig(vocab_size=300, n_layer=2, n_head=4, n_kv_head=2, d_model=64,
                      max_seq_len=64, **options)
    model = CodelingLM(cfg)
    ids = torch.randint(0, 300, (2, 32))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(ids).float().sum().backward()
    assert counter.get_total_flops() == flops_per_token(model, 32) * ids.numel()


def test_peak_table_override_and_mfu():
    assert peak_flops(torch.device("cpu")) is None  # unknown: MFU null, never a guess
    assert peak_flops(torch.device("cpu"), 2e12) == 2e12
    assert mfu(1000.0, 10**9, 4e12, world=2) == pytest.approx(0.125)
    assert mfu(1000.0, 10**9, None) is None
    model = CodelingLM(ModelConfig(vocab_size=64, n_layer=1, n_head=2, n_kv_head=2, d_model=32))
    wrapped = torch.nn.Sequential(model)  # as DDP or peft hold it
    assert model_config_of(wrapped) is model.config


class SlowEval:
    """A real evaluator call that takes a second: the line after it must not count it."""

    def __call__(self, model, step: int) -> dict:
        time.sleep(1.0)
        return {"score": step}


def test_metrics_carry_mfu_peak_memory_and_tokens_per_s_without_eval_time(tmp_path):
    torch.set_num_threads(1)
    seed_everything(0)
    model = CodelingLM(ModelConfig(vocab_size=64, n_layer=1, n_head=2, n_kv_head=1, d_model=32,
                                   max_seq_len=32))
    cfg = TrainConfig(steps=12, batch_size=4, seq_len=16, warmup=2, log_every=3, eval_every=6,
                      eval_batches=1, save_every=6, device="cpu", dtype="fp32",
                      peak_flops=1e12)
    train(model, LMObjective(), RandomWindows(SHARD, 4, 16, seed=1), cfg, tmp_path,
          val_data=EvalWindows(SHARD, 4, 16, 1), evaluator=SlowEval(), progress=False)
    lines = [r for r in read_metrics(tmp_path) if "loss" in r]
    per_token = flops_per_token(model, 16)
    for r in lines:
        assert r["mfu"] == pytest.approx(r["tokens_per_s"] * per_token / 1e12, abs=1e-4)
        assert r["peak_mem_mb"] > 10  # this process's peak resident set, in MiB
    rates = {r["step"]: r["tokens_per_s"] for r in lines}
    # steps 7-9 follow the one-second eval at step 6 (and a checkpoint write): about as fast
    # as steps 4-6, not several times slower (3 steps of this model take ~0.05 s here)
    assert rates[9] > 0.3 * rates[6]
