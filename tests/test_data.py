"""Batch sources: shard reuse checks and mixing pretraining windows into SFT (sft.mix_pretrain)."""

from __future__ import annotations

import hashlib
import json
import sysconfig
from pathlib import Path

import pytest
import torch

from codeling import data
from codeling.cli import main as cli_main
from codeling.io import read_jsonl, write_jsonl
from codeling.objectives import IGNORE
from codeling.sft import task_data
from codeling.tasks.schema import write_tasks
from codeling.tasks.synthetic import generate_tasks
from codeling.tokenizer import load_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A real corpus, tokenizer and 2-step pretraining run (its final checkpoint is --init),
    and a tasks folder."""
    root = tmp_path_factory.mktemp("mix")
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:24]
    rows = [{"path": f.name, "text": f.read_text(errors="replace")} for f in files]
    write_jsonl(root / "corpus/train.jsonl", rows[:20])
    write_jsonl(root / "corpus/val.jsonl", rows[20:])
    train_tokenizer([r["text"] for r in rows], vocab_size=512).save(root / "tok")
    rc = cli_main(["pretrain", "--no-progress", "--preset", "smoke", "--run-dir",
                   str(root / "pre"), "--corpus", str(root / "corpus"), "--tokenizer",
                   str(root / "tok"), "steps=2", "eval_every=2", "save_every=2", "threads=1"])
    assert rc == 0
    tasks = generate_tasks(40, seed=3, levels=(1,))
    write_tasks(root / "tasks/train.jsonl", tasks[:32])
    write_tasks(root / "tasks/val.jsonl", tasks[32:])
    return root


def sources(root: Path, ratio: float, seed: int = 5):
    from codeling.config import load_config

    tc = load_config("smoke", [f"sft.mix_pretrain={ratio}", f"sft.seed={seed}",
                               "sft.batch_size=4", "sft.seq_len=200"]).sft
    tok = load_tokenizer(root / "pre/checkpoints/final")
    tasks = task_data(root / "tasks", tok, tc)[0]
    windows = data.corpus_batches(root / "corpus", tok, root / "pre/shards", tc)[0]
    return tasks, windows


def is_window(batch: dict) -> bool:
    """Corpus windows carry a label on every token; task batches mask the prompt."""
    return not (batch["labels"] == IGNORE).any()


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_share_of_pretraining_batches_is_the_ratio(base, ratio):
    mixed = data.MixedBatches(*sources(base, ratio), ratio)
    kinds = [is_window(mixed.next_batch()) for _ in range(80)]
    for n in (10, 40, 80):  # every prefix holds the share to within one batch
        assert abs(sum(kinds[:n]) - ratio * n) <= 1
    windows = [b for b in kinds if b]
    assert windows and len(windows) < len(kinds)


def test_ratio_zero_is_the_task_batches_exactly(base):
    plain = sources(base, 0.0)[0]
    mixed = data.MixedBatches(*sources(base, 0.0), 0.0)
    for _ in range(20):
        a, b = plain.next_batch(), mixed.next_batch()
        assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="mixing ratio"):
        data.MixedBatches(plain, plain, 1.0)


def test_mixed_batches_resume_exactly(base):
    mixed = data.MixedBatches(*sources(base, 0.3), 0.3)
    for _ in range(7):
        mixed.next_batch()
    state = mixed.state_dict()
    want = [mixed.next_batch() for _ in range(8)]
    again = data.MixedBatches(*sources(base, 0.3, seed=99), 0.3)
    again.load_state_dict(state)
    got = [again.next_batch() for _ in range(8)]
    assert [is_window(b) for b in got] == [is_window(b) for b in want]
    assert all(torch.equal(x[k], y[k]) for x, y in zip(want, got) for k in x)


def test_shards_current_without_writing(base, tmp_path):
    tok = load_tokenizer(base / "tok")
    assert data.shards_current(base / "corpus", tok, base / "pre/shards")
    assert not data.shards_current(base / "corpus", tok, tmp_path / "none")
    assert not (tmp_path / "none").exists()
    other = train_tokenizer(["def f(x):\n    return x\n" * 40], vocab_size=300)
    assert not data.shards_current(base / "corpus", other, base / "pre/shards")


def sft(base: Path, run: str, *extra: str) -> int:
    return cli_main(["sft", "--init", str(base / "pre/checkpoints/final"), "--tasks",
                     str(base / "tasks"), "--run-dir", str(base / run), "--no-progress", "--full",
                     "steps=6", "batch_size=4", "seq_len=200", "warmup=1", "eval_every=6",
                     "save_every=6", "log_every=1", "threads=1", "eval_mini=false",
                     # a set dtype: "auto" measures bf16 against fp32 at start-up, and under load
                     # two runs of one config can choose differently (and so differ in weights)
                     "dtype=fp32", "eval_batches=1", *extra])


def test_sft_mixes_the_init_runs_corpus_through_the_one_loop(base, capsys):
    assert sft(base, "mixed", "mix_pretrain=0.5") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "50% of batches pretraining text" in out
    run = json.loads((base / "mixed/run.json").read_text())
    assert run["corpus"] == str((base / "corpus").resolve())
    assert not (base / "mixed/shards").exists()  # the pretraining run's shards were reused
    rows = [r for r in read_jsonl(base / "mixed/metrics.jsonl") if "loss" in r]
    assert len(rows) == 6 and all(r["loss"] == r["loss"] for r in rows)
    # off (the default): no corpus, and exactly the run an explicit 0.0 gives
    assert sft(base, "off") == 0 and sft(base, "zero", "mix_pretrain=0.0") == 0
    assert json.loads((base / "off/run.json").read_text())["corpus"] is None
    weights = [hashlib.sha256((base / d / "checkpoints/final/model.safetensors").read_bytes())
               .hexdigest() for d in ("off", "zero", "mixed")]  # a diff of the bytes takes minutes
    assert weights[0] == weights[1] != weights[2]
    assert sft(base, "bad", "mix_pretrain=1.5") == 2
    assert "sft.mix_pretrain must be in [0, 1)" in capsys.readouterr().err


def phased(root: Path, seed: int = 5) -> data.MixedBatches:
    """Task batches in two curriculum phases, with corpus windows mixed in."""
    from codeling.config import load_config

    tc = load_config("smoke", ["sft.curriculum=[{levels=[1], steps=4}, {levels=[1], steps=4}]",
                               f"sft.seed={seed}", "sft.batch_size=4", "sft.seq_len=200"]).sft
    tok = load_tokenizer(root / "pre/checkpoints/final")
    tasks = task_data(root / "tasks", tok, tc)[0]
    windows = data.corpus_batches(root / "corpus", tok, root / "pre/shards", tc)[0]
    return data.MixedBatches(tasks, windows, 0.3)


def test_prefetching_feed_gives_the_sources_batches_exactly(base):
    """The feed runs one batch ahead (as on CUDA); phases, checkpoints and resumes still see
    exactly what the bare source gives, and each batch's real tokens leave out the padding."""
    pad = load_tokenizer(base / "pre/checkpoints/final").pad_id
    plain, feed = phased(base), data.DeviceFeed(phased(base), torch.device("cpu"), prefetch=True)
    assert data.DeviceFeed(phased(base), torch.device("cpu")).prefetch is False  # CPU: on demand
    state, padded = None, 0
    for i in range(14):
        if i == 6:  # a curriculum phase change after the feed drew ahead
            plain.set_phase(1)
            feed.set_phase(1)
        if i == 9:
            state = feed.state_dict()
        want = plain.next_batch()
        got, real = feed.next()
        assert all(torch.equal(want[k], got[k]) for k in want), i
        assert real == int((want["input_ids"] != pad).sum())  # pad ids only ever pad
        padded += real < want["input_ids"].numel()
    assert padded  # some batches were padded, so the count was tested
    again = data.DeviceFeed(phased(base, seed=99), torch.device("cpu"), prefetch=True)
    again.load_state_dict(state)
    again.set_phase(1)
    replay = phased(base)
    replay.load_state_dict(state)
    for _ in range(5):
        want, (got, _) = replay.next_batch(), again.next()
        assert all(torch.equal(want[k], got[k]) for k in want)
