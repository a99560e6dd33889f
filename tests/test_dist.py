"""The process group's backend and timeout, and shards built with no rank waiting in a collective
(two real gloo processes; the two-process training runs are in test_pretrain.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import torch

from codeling.training.dist import backend_for, resolve_device, timeout
from helpers import tiny_model_and_tokenizer


def test_backend_follows_the_resolved_device_not_cuda_presence(monkeypatch):
    # device=cpu on a machine with CUDA: gloo (NCCL cannot move CPU tensors)
    assert backend_for(resolve_device("cpu", cuda=True)) == "gloo"
    assert backend_for(resolve_device("auto", cuda=False)) == "gloo"
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto", cuda=True) == torch.device("cuda", 3)
    assert backend_for(resolve_device("cuda", cuda=True)) == "nccl"
    assert timeout().total_seconds() >= 1800  # longer than NCCL's 10-minute watchdog
    monkeypatch.setenv("CODELING_DIST_TIMEOUT_S", "5")
    assert timeout().total_seconds() == 5


RANK = r"""
import os, sys, time, datetime
from types import SimpleNamespace
import torch.distributed as dist
from codeling.data import corpus_batches
from codeling.tokenizer import load_tokenizer

corpus, tok_dir, shards = sys.argv[1:4]
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=2))
tok = load_tokenizer(tok_dir)
encode = tok.encode_batch
def slow(texts):  # a corpus that takes longer to tokenize than the group's timeout
    time.sleep(2.5)
    return encode(texts)
tok.encode_batch = slow
cfg = SimpleNamespace(seq_len=16, batch_size=2, seed=0, eval_batches=1)
train, val, meta = corpus_batches(corpus, tok, shards, cfg, dist.get_rank(), 2)
dist.barrier()
print("tokens", meta["tokens"]["train"], train.next_batch()["input_ids"].shape[0])
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_build_shards_without_waiting_in_a_collective(tmp_path):
    """Rank 0 used to tokenize while the others sat in a barrier, which the process group's
    timeout (NCCL's watchdog) kills on a large corpus; now no rank waits in a collective."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:6]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, part in (("train", files[:4]), ("val", files[4:])):
        (corpus / f"{name}.jsonl").write_text("".join(
            json.dumps({"path": f.name, "text": f.read_text(errors="replace")}) + "\n"
            for f in part))
    tiny_model_and_tokenizer()[1].save(tmp_path / "tok")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", RANK, str(corpus), str(tmp_path / "tok"),
                               str(tmp_path / "shards")], env={**env, "RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    assert outs[0][0].split()[:2] == outs[1][0].split()[:2]  # both read the one set of shards
    assert outs[0][0].split()[2] == "2"  # batch_size rows on each rank
