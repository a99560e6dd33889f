"""Checkpoint directories: HF weights, trainer state, atomic writes, corrupt files."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from codeling import checkpoint as ck
from codeling.config import ModelConfig
from codeling.data import RandomWindows
from codeling.model import CodelingLM
from codeling.tokenizer import train_tokenizer

CFG = ModelConfig(vocab_size=300, n_layer=2, n_head=4, n_kv_head=2, d_model=32, max_seq_len=64)


@pytest.fixture(scope="module")
def tokenizer():
    texts = ["def f(x):\n    return x + 1\n", "class A:\n    pass\n"] * 50
    return train_tokenizer(texts, vocab_size=300)


def model(seed=0) -> CodelingLM:
    torch.manual_seed(seed)
    return CodelingLM(CFG)


def test_save_load_roundtrip(tmp_path, tokenizer):
    m = model()
    out = ck.save_model(m, tmp_path / "ckpt", tokenizer)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["num_key_value_heads"] == 2
    assert cfg["eos_token_id"] == tokenizer.eot_id
    assert (out / "tokenizer.json").exists()
    loaded = ck.load_model(out)
    x = torch.randint(0, 300, (2, 10))
    assert torch.equal(loaded(x), m(x))
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight  # still tied


def test_truncated_or_mismatched_weights_are_errors(tmp_path):
    out = ck.save_model(model(), tmp_path / "ckpt")
    w = out / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(ck.CheckpointError, match=r"model\.safetensors"):
        ck.load_model(out)
    w.unlink()
    with pytest.raises(ck.CheckpointError, match="missing"):
        ck.load_model(out)
    other = ck.save_model(CodelingLM(ModelConfig(**{**CFG.__dict__, "d_model": 64})),
                          tmp_path / "other")
    with pytest.raises(ck.CheckpointError, match="do not match"):
        ck.load_weights(model(), other)


def test_trainer_state_roundtrip_and_truncation(tmp_path):
    data = RandomWindows(np.arange(1000, dtype=np.uint16), 2, 8, seed=5)
    data.next_batch()
    state = {"step": 3, "rng": ck.rng_state(), "data": data.state_dict()}
    (tmp_path / "c").mkdir()
    ck.save_trainer_state(tmp_path / "c", state)
    back = ck.load_trainer_state(tmp_path / "c")  # weights_only: PCG64's 128-bit ints survive
    assert back["data"] == data.state_dict() and back["step"] == 3
    other = RandomWindows(np.arange(1000, dtype=np.uint16), 2, 8, seed=99)
    other.load_state_dict(back["data"])
    assert torch.equal(other.next_batch()["input_ids"], data.next_batch()["input_ids"])
    path = tmp_path / "c" / ck.TRAINER_STATE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ck.CheckpointError, match=r"trainer_state\.pt"):
        ck.load_trainer_state(tmp_path / "c")
    with pytest.raises(ck.CheckpointError, match="missing"):
        ck.load_trainer_state(tmp_path)


def test_rng_state_restores_every_generator():
    state = ck.rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    ck.set_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])


def test_listing_pruning_and_partial_dirs(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (5, 10, 15, 20):
        ck.write_dir_atomically(root / f"step_{step}",
                                lambda d: ck.save_trainer_state(d, {"step": 1}))
    (root / "step_25").mkdir()  # no trainer_state.pt: not a resumable checkpoint
    (root / "best").mkdir()
    (root / ".step_30.tmp-abc").mkdir()  # a write killed midway
    assert [s for s, _ in ck.step_checkpoints(root)] == [5, 10, 15, 20]
    assert ck.latest_checkpoint(root).name == "step_20"
    ck.prune_checkpoints(root, keep=2)
    assert [s for s, _ in ck.step_checkpoints(root)] == [15, 20]
    assert (root / "best").is_dir()
    ck.remove_partial_dirs(root)
    assert not (root / ".step_30.tmp-abc").exists()
    assert ck.latest_checkpoint(tmp_path / "nothing") is None


def test_write_dir_atomically_keeps_the_old_dir_on_failure(tmp_path):
    target = tmp_path / "ckpt"
    ck.write_dir_atomically(target, lambda d: (d / "a").write_text("old"))

    def broken(d):
        (d / "a").write_text("new, half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        ck.write_dir_atomically(target, broken)
    assert (target / "a").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert target.stat().st_mode & 0o005 == 0o005  # others can list and enter it


@pytest.fixture
def one_gpu(monkeypatch):
    """CUDA's RNG calls as on a machine with one visible GPU: a device index past the first
    fails as torch.cuda.default_generators[index] does (a CPU generator stands in for it)."""
    gens = (torch.Generator().manual_seed(7),)
    calls: list[int] = []

    def index(device) -> int:
        d = torch.device("cuda", device) if isinstance(device, int) else torch.device(device)
        calls.append(d.index or 0)
        return d.index or 0

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gens))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    for mod in (torch.cuda, torch.cuda.random):
        monkeypatch.setattr(mod, "get_rng_state", lambda device="cuda": gens[index(device)]
                            .get_state())
        monkeypatch.setattr(mod, "set_rng_state", lambda state, device="cuda": gens[
            index(device)].set_state(state))
        monkeypatch.setattr(mod, "get_rng_state_all", lambda: [g.get_state() for g in gens])
    return gens, calls


def test_rng_state_of_an_eight_gpu_run_resumes_on_one(one_gpu):
    gens, calls = one_gpu
    # an older trainer state: every visible GPU's generator, written on 8 GPUs
    eight = [torch.Generator().manual_seed(100 + i).get_state() for i in range(8)]
    state = {**ck.rng_state(), "cuda": eight}
    ck.set_rng_state(state, torch.device("cuda", 0))
    assert torch.equal(gens[0].get_state(), eight[0])
    assert set(calls) == {0}, "a generator other than this rank's own device was touched"
    # this format: the own device's state only, restored onto whichever device resumes
    gens[0].manual_seed(3)
    saved = ck.rng_state(torch.device("cuda", 0))
    first = torch.rand(3, generator=gens[0])
    ck.set_rng_state(saved, "cuda:0")
    assert torch.equal(torch.rand(3, generator=gens[0]), first)
    assert ck.cuda_rng_for(eight, 9) is None  # a rank index past the saved GPUs: left alone
    assert "cuda" not in ck.rng_state(torch.device("cpu"))  # device=cpu never touches CUDA
