"""The training loop in-process on a tiny real model: schedule, resume, NaN guard, best, phases."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from codeling.checkpoint import CheckpointError, load_model
from codeling.config import ModelConfig, PretrainConfig, SftConfig, TrainConfig
from codeling.data import EvalWindows, RandomWindows
from codeling.model import CodelingLM
from codeling.objectives import (
    IGNORE,
    KDObjective,
    LMObjective,
    SFTObjective,
    lm_loss,
    prompt_masked_labels,
)
from codeling.runs import load_run
from codeling.train import (
    TrainingError,
    lr_at,
    param_groups,
    phase_at,
    read_metrics,
    seed_everything,
    train,
)
from codeling.training.hardware import cpu_info, decide_dtype, decide_threads, native_bf16
from codeling.training.optim import apply_schedule, make_optimizer

MODEL = ModelConfig(vocab_size=64, n_layer=1, n_head=2, n_kv_head=1, d_model=32, max_seq_len=32)
# a learnable stream: short repeated motifs
SHARD = np.tile(np.array([1, 5, 9, 2, 7, 3, 3, 8, 11, 4, 6, 10], dtype=np.uint16), 400)
TIMING = {"tokens_per_s", "elapsed_s", "mfu", "peak_mem_mb"}  # the clock and memory


@pytest.fixture(autouse=True)
def one_thread():
    # two threads on 2 shared cores thrash (10x slower here); one is also deterministic
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cfg(kind=TrainConfig, **kw) -> TrainConfig:
    # fp32 unless a test asks for "auto" (measured at start-up, so load could change the choice)
    base = dict(steps=8, batch_size=4, seq_len=16, lr=1e-2, warmup=2, log_every=1,
                eval_every=4, eval_batches=2, save_every=4, keep_checkpoints=2, device="cpu",
                dtype="fp32")
    return kind(**{**base, **kw})


def fresh_model(seed: int = 0) -> CodelingLM:
    seed_everything(seed)
    return CodelingLM(MODEL)


def run(tmp, model=None, c=None, **kw):
    c = c or cfg()
    return train(model or fresh_model(), LMObjective(), RandomWindows(SHARD, c.batch_size,
                 c.seq_len, seed=3), c, tmp, val_data=EvalWindows(SHARD, c.batch_size,
                 c.seq_len, c.eval_batches), progress=False, **kw)


def strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_loss_falls_and_run_dir_layout(tmp_path):
    result = run(tmp_path, c=cfg(steps=40, eval_every=20, save_every=20))
    rows = read_metrics(tmp_path)
    train_rows = [r for r in rows if "loss" in r]
    assert [r["step"] for r in train_rows] == list(range(1, 41))
    assert train_rows[-1]["loss"] < 0.5 * train_rows[0]["loss"]
    assert rows[-1]["val_loss"] < 2.0 and rows[-1]["val_ppl"] == pytest.approx(
        math.exp(rows[-1]["val_loss"]))
    assert {"lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s", "phase"} <= set(rows[0])
    assert rows[-1]["tokens"] == 40 * 4 * 16
    assert result.step == 40 and result.stopped == "done"
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["best", "final", "step_20", "step_40"]
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["step"] == 40 and best["score"] == pytest.approx(-rows[-1]["val_loss"])
    assert best["selected_on"] == "val_loss"  # no evaluator: chosen on validation loss
    weights = [(tmp_path / "checkpoints" / d / "model.safetensors").read_bytes()
               for d in ("final", "step_40")]
    assert weights[0] == weights[1]


def test_schedule_and_phases():
    c = cfg(steps=100, warmup=10, lr=1.0, min_lr_ratio=0.1)
    assert lr_at(0, c) == pytest.approx(0.1) and lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(55, c) == pytest.approx(0.55)  # the cosine's midpoint
    assert lr_at(100, c) == pytest.approx(0.1) and lr_at(500, c) == pytest.approx(0.1)
    phases = [{"levels": [1], "steps": 3}, {"levels": [1, 2], "steps": 2}]
    assert [phase_at(s, phases) for s in range(7)] == [0, 0, 0, 1, 1, 1, 1]
    assert phase_at(5, []) == 0


def test_time_budget_schedule():
    c = cfg(steps=100, warmup=10, lr=1.0, min_lr_ratio=0.1, time_budget_s=60.0)
    assert lr_at(55, c, wall=0.0) == pytest.approx(0.55)  # behind on time: the steps decide
    assert lr_at(20, c, wall=30.0) == pytest.approx(0.55)  # half the budget: the midpoint
    assert lr_at(20, c, wall=90.0) == pytest.approx(0.1)  # spent: the floor
    assert lr_at(5, c, wall=90.0) == pytest.approx(0.6)  # warmup stays counted in steps


def test_time_budget_ends_training_annealed_evaluated_and_resumable(tmp_path):
    c = cfg(steps=1_000_000, warmup=2, lr=1e-2, min_lr_ratio=0.1, log_every=10,
            eval_every=50, save_every=50, time_budget_s=1.5)
    result = run(tmp_path, c=c)
    # the clock stopped it, well short of the step cap (~100 steps quiet; 48 seen on a 2-core
    # machine shared with two training jobs, so the count itself is not asserted)
    assert result.stopped == "time_budget" and 2 < result.step < 1_000_000
    rows = read_metrics(tmp_path)
    lrs = [r["lr"] for r in rows if "lr" in r and r["step"] > 2]
    assert lrs == sorted(lrs, reverse=True)  # the cosine runs on the clock
    last = rows[-1]
    assert last["step"] == result.step and "val_loss" in last  # the stop is evaluated
    assert last["lr"] < 1e-3 * 1.05 + 1e-4  # and annealed to the floor (lr 1e-2 x 0.1)
    assert (tmp_path / "checkpoints" / f"step_{result.step}").is_dir()
    assert (tmp_path / "checkpoints" / "final").is_dir()
    # resumed with the same budget there is nothing left; with a larger one it goes on
    again = run(tmp_path, c=c, resume=True)
    assert again.step == result.step and again.stopped == "time_budget"
    more = run(tmp_path, c=dataclasses.replace(c, time_budget_s=2.5), resume=True)
    assert more.stopped == "time_budget" and more.step > result.step
    steps = [r["step"] for r in read_metrics(tmp_path) if "loss" in r]
    assert steps == sorted(set(steps))  # one line per logged step across the three runs


def test_param_groups_and_frozen_parameters(tmp_path):
    model = fresh_model()
    groups = param_groups(model, 0.1)
    no_decay = {id(p) for p in groups[1]["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in no_decay) == (p.dim() < 2 or "embed" in name), name
    # frozen base (as under LoRA): only trainable tensors reach AdamW and only they change
    for name, p in model.named_parameters():
        p.requires_grad_("mlp" in name)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert sum(len(g["params"]) for g in param_groups(model, 0.1)) == len(trainable)
    run(tmp_path, model=model, c=cfg(steps=3, eval_every=0, save_every=0))
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
    assert all(not torch.equal(params[n], v) for n, v in trainable.items())


def test_resume_is_exact_and_drops_later_metrics(tmp_path):
    run(tmp_path)  # 8 steps, checkpoints at 4 and 8
    reference = strip(read_metrics(tmp_path))
    final = (tmp_path / "checkpoints" / "final" / "model.safetensors").read_bytes()
    # as if killed after step 4's checkpoint: metrics already hold steps 5..8
    shutil.rmtree(tmp_path / "checkpoints" / "step_8")
    shutil.rmtree(tmp_path / "checkpoints" / "final")
    result = run(tmp_path, model=fresh_model(seed=99), resume=True)
    assert result.step == 8
    assert strip(read_metrics(tmp_path)) == reference  # same lines, none duplicated
    assert (tmp_path / "checkpoints" / "final" / "model.safetensors").read_bytes() == final


def test_fresh_run_refuses_a_dir_with_checkpoints(tmp_path):
    run(tmp_path, c=cfg(steps=4))
    with pytest.raises(FileExistsError, match="--resume"):
        run(tmp_path, c=cfg(steps=4))


@pytest.mark.parametrize("victim", ["model.safetensors", "trainer_state.pt"])
def test_corrupt_checkpoint_is_an_error_not_a_fresh_start(tmp_path, victim):
    run(tmp_path, c=cfg(steps=4))
    path = tmp_path / "checkpoints" / "step_4" / victim
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=victim):
        run(tmp_path, c=cfg(steps=8), resume=True)


class NaNAfter(LMObjective):
    """A real LM loss that turns NaN from the `at`-th optimizer step on."""

    def __init__(self, at: int):
        super().__init__()
        self.calls, self.at = 0, at

    def __call__(self, model, batch):
        self.calls += 1
        loss = super().__call__(model, batch)
        return loss * float("nan") if self.calls >= self.at else loss


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    c = cfg(steps=10, save_every=2, log_every=3, eval_every=0)
    with pytest.raises(TrainingError, match="step 5"):
        train(fresh_model(), NaNAfter(5), RandomWindows(SHARD, 4, 16, seed=3), c, tmp_path,
              progress=False)
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["step_2", "step_4"]
    good = load_model(tmp_path / "checkpoints" / "step_4")
    assert all(torch.isfinite(p).all() for p in good.parameters())
    # resuming after the fix continues from step 4
    result = run(tmp_path, c=dataclasses.replace(c, eval_every=0), resume=True)
    assert result.step == 10


def test_evaluator_best_checkpoint_and_early_stop(tmp_path):
    scores = {2: 1.0, 4: 3.0, 6: 3.0, 8: 2.5, 10: 2.0, 12: 9.0}  # step 6 ties: lower val loss wins
    seen = []

    def evaluator(model, step):
        assert not model.training  # generation-based evals run in eval mode
        seen.append(step)
        return {"score": scores[step], "pass": int(scores[step]), "selected_on": "dev",
                "per_category": {"a": 1}}

    result = run(tmp_path, c=cfg(steps=14, eval_every=2, save_every=0, early_stop=2),
                 evaluator=evaluator)
    assert result.stopped == "early_stop" and result.step == 10 and seen == [2, 4, 6, 8, 10]
    rows = {r["step"]: r for r in read_metrics(tmp_path) if "score" in r}
    best = json.loads((tmp_path / "best.json").read_text())
    assert rows[6]["val_loss"] < rows[4]["val_loss"]  # still learning, so the tie goes to 6
    assert best["step"] == 6 and best["score"] == 3.0 and best["metrics"]["pass"] == 3
    assert best["selected_on"] == "dev" and best["eval"]["per_category"] == {"a": 1}
    assert (tmp_path / "checkpoints" / "best" / "model.safetensors").exists()
    ev = json.loads((tmp_path / "evals" / "step_6.json").read_text())
    assert ev["per_category"] == {"a": 1} and "val_loss" in ev
    assert sorted(rows) == [2, 4, 6, 8, 10] and "per_category" not in rows[2]
    assert (tmp_path / "checkpoints" / "step_10").exists()  # resumable where it stopped


class PhasedWindows(RandomWindows):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.phases = []

    def set_phase(self, i: int) -> None:
        self.phases.append(i)


def test_curriculum_phase_reaches_data_and_metrics(tmp_path):
    c = cfg(SftConfig, steps=6, eval_every=0, save_every=0,
            curriculum=[{"levels": [1], "steps": 2}, {"levels": [1, 2], "steps": 10}])
    data = PhasedWindows(SHARD, 4, 16, seed=3)
    train(fresh_model(), LMObjective(), data, c, tmp_path, progress=False)
    assert data.phases == [0, 1]
    assert [r["phase"] for r in read_metrics(tmp_path)] == [0, 0, 1, 1, 1, 1]


# ---- objectives: pure functions of logits ----

def test_objectives():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    labels = torch.randint(0, 11, (2, 5))
    plain = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1))
    assert lm_loss(logits, labels) == pytest.approx(plain.item(), rel=1e-6)
    assert lm_loss(logits, labels, 0.1) > lm_loss(logits, labels)  # smoothing penalises
    assert lm_loss(logits, torch.full_like(labels, IGNORE)).item() == 0.0  # not NaN
    # SFT: position t predicts t+1; targets inside the prompt and padding carry no loss
    ids = torch.tensor([[10, 11, 12, 13, 14, 0], [20, 21, 22, 23, 0, 0]])
    got = prompt_masked_labels(ids, torch.tensor([3, 2]), pad_id=0)
    assert got.tolist() == [[IGNORE, IGNORE, 13, 14, IGNORE, IGNORE],
                            [IGNORE, 22, 23, IGNORE, IGNORE, IGNORE]]
    model = fresh_model()
    batch = {"input_ids": ids, "prompt_lens": torch.tensor([3, 2])}
    sft = SFTObjective(pad_id=0)
    assert sft(model, batch).item() == pytest.approx(
        lm_loss(model(ids), got).item(), rel=1e-6)
    # KD: zero KL when the student is the teacher, so the loss is (1-α)·CE
    lm_batch = {"input_ids": ids, "labels": got}
    kd = KDObjective(fresh_model(seed=5), alpha=0.7, temperature=2.0)
    ce = lm_loss(kd.teacher(ids), got).item()
    assert kd(kd.teacher, lm_batch).item() == pytest.approx(0.3 * ce, rel=1e-5)
    # another student: exactly (1-α)·CE + α·T²·KL(teacher‖student at T), KL averaged over the
    # target positions only, computed here position by position from the two softmaxes
    with torch.no_grad():
        s_logits, t_logits = model(ids), kd.teacher(ids)
    rows = [(b, t) for b in range(ids.size(0)) for t in range(ids.size(1)) if got[b, t] != IGNORE]
    kl = sum(float((p * (p.log() - q.log())).sum()) for p, q in (
        (torch.softmax(t_logits[b, t] / 2.0, -1), torch.softmax(s_logits[b, t] / 2.0, -1))
        for b, t in rows)) / len(rows)
    ce = sum(-float(torch.log_softmax(s_logits[b, t], -1)[got[b, t]]) for b, t in rows) / len(rows)
    assert kl > 1e-4  # two random models still disagree a little
    assert kd(model, lm_batch).item() == pytest.approx(0.3 * ce + 0.7 * 4.0 * kl, rel=1e-4)
    with pytest.raises(ValueError):
        KDObjective(model, alpha=1.5)


def test_bf16_autocast_on_cpu_learns_and_keeps_fp32_weights(tmp_path):
    """`dtype = "bf16"` on CPU (the cpu preset's; bench/shape.py: 1.68x the fp32 tokens/s on an
    AMX CPU): the matmuls run in bf16, the weights, optimizer state and checkpoints stay fp32,
    and it learns about as well as fp32 on the same data and seed."""
    losses = {}
    for dtype in ("fp32", "bf16"):
        run(tmp_path / dtype, c=cfg(steps=40, eval_every=20, save_every=20, dtype=dtype))
        rows = read_metrics(tmp_path / dtype)
        losses[dtype] = [r["loss"] for r in rows if "loss" in r]
        saved = load_file(tmp_path / dtype / "checkpoints" / "final" / "model.safetensors")
        assert {t.dtype for t in saved.values()} == {torch.float32}
    assert losses["bf16"][-1] < 0.5 * losses["bf16"][0]
    assert losses["bf16"] != losses["fp32"]  # it did compute in another precision
    assert abs(losses["bf16"][-1] - losses["fp32"][-1]) < 0.25 * losses["fp32"][-1] + 0.05
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        run(tmp_path / "bad", c=cfg(dtype="fp16"))


def test_auto_dtype_decision_takes_measured_speeds():
    # the AVX2-only EPYC of issue 26: bf16 autocast 179 tokens/s against fp32's 2,524
    assert decide_dtype({"fp32": 2524.0, "bf16": 179.0}, native=False)[0] == "fp32"
    assert decide_dtype(None, native=False) == ("fp32", decide_dtype({}, native=False)[1])
    # native bf16: the measurement decides, and bf16 must win by the margin
    assert decide_dtype({"fp32": 1000.0, "bf16": 1680.0}, native=True)[0] == "bf16"
    dtype, reason = decide_dtype({"fp32": 1000.0, "bf16": 1050.0}, native=True)
    assert dtype == "fp32" and "1.05x" in reason
    assert decide_dtype({"fp32": 2524.0}, native=True)[0] == "fp32"  # one dtype unmeasured
    assert native_bf16({"flags": ["avx2", "avx512_bf16"]}) and not native_bf16({"flags": ["avx2"]})


def test_auto_threads_decision_takes_measured_speeds():
    # the loaded 2-core EPYC of issue 26: 1 thread bf16 601 tokens/s, 2 threads fp32 222
    speeds = {1: {"fp32": 399.0, "bf16": 601.0}, 2: {"fp32": 222.0, "bf16": 103.0}}
    n, dtype, reason = decide_threads(speeds)
    assert (n, dtype) == (1, "bf16") and "2 threads: fp32 222" in reason
    # a quiet machine where two threads pay: the best pair wins, whatever its dtype
    assert decide_threads({1: {"fp32": 1000.0, "bf16": 900.0},
                           2: {"fp32": 1900.0, "bf16": 1200.0}})[:2] == (2, "fp32")
    # more threads must win by the margin: 5% is not worth taking the other core
    assert decide_threads({1: {"fp32": 1000.0}, 2: {"fp32": 1050.0}})[:2] == (1, "fp32")
    # and bf16 its own margin over fp32 at the same count
    assert decide_threads({1: {"fp32": 1000.0, "bf16": 1050.0}})[:2] == (1, "fp32")
    with pytest.raises(ValueError):
        decide_threads({})


def test_auto_threads_is_measured_recorded_and_kept_on_resume(tmp_path):
    before = torch.get_num_threads()
    try:
        run(tmp_path, c=cfg(dtype="auto", threads=-1))
        hw = json.loads((tmp_path / "run.json").read_text())["hardware"]
        cores = sorted({1, len(os.sched_getaffinity(0))})
        assert sorted(int(k) for k in hw["thread_speeds"]) == cores
        assert hw["threads"] in cores and hw["threads_reason"].startswith("fastest measured")
        chosen = hw["thread_speeds"][str(hw["threads"])]
        assert hw["dtype"] == decide_dtype(chosen, native=True)[0]
        shutil.rmtree(tmp_path / "checkpoints" / "step_8")
        shutil.rmtree(tmp_path / "checkpoints" / "final")
        torch.set_num_threads(before)
        run(tmp_path, c=cfg(dtype="auto", threads=-1), resume=True)
        again = json.loads((tmp_path / "run.json").read_text())["hardware"]
        assert (again["threads"], again["dtype"]) == (hw["threads"], hw["dtype"])
        assert again["dtype_reason"].startswith("kept from")
        with pytest.raises(ValueError, match="threads must be"):
            run(tmp_path / "bad", c=cfg(threads=-2))
    finally:
        torch.set_num_threads(before)


def test_auto_dtype_on_cpu_is_recorded_in_run_json_and_kept_on_resume(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"stage": "pretrain", "params": 1}))
    run(tmp_path, c=cfg(dtype="auto"))
    info = json.loads((tmp_path / "run.json").read_text())
    hw = info["hardware"]
    assert info["params"] == 1  # merged into the stage's run.json, not replacing it
    assert hw["cpu"]["name"] == cpu_info()["name"] and hw["threads"] == 1
    assert hw["dtype"] in ("fp32", "bf16") and hw["dtype_reason"]
    if native_bf16(hw["cpu"]):
        assert set(hw["dtype_speeds"]) == {"fp32", "bf16"}
    state = torch.load(tmp_path / "checkpoints" / "step_8" / "trainer_state.pt",
                       weights_only=False)
    assert state["hardware"]["dtype"] == hw["dtype"]
    assert load_run(tmp_path).row()["cpu"] == hw["cpu"]["name"]  # `codeling runs` shows it
    shutil.rmtree(tmp_path / "checkpoints" / "step_8")
    shutil.rmtree(tmp_path / "checkpoints" / "final")
    run(tmp_path, c=cfg(dtype="auto"), resume=True)
    again = json.loads((tmp_path / "run.json").read_text())["hardware"]
    assert again["dtype"] == hw["dtype"] and again["dtype_reason"].startswith("kept from")


def test_wsd_schedule_by_steps_and_by_the_clock():
    c = cfg(kind=PretrainConfig, steps=110, warmup=10, lr=1.0, min_lr_ratio=0.0,
            schedule="wsd", decay_share=0.2)
    assert lr_at(0, c) == pytest.approx(0.1) and lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(50, c) == pytest.approx(1.0) and lr_at(90, c) == pytest.approx(1.0)  # stable
    assert lr_at(100, c) == pytest.approx(0.5)  # halfway through the last 20 steps
    assert lr_at(105, c) == pytest.approx(0.25) and lr_at(110, c) == pytest.approx(0.0)
    sqrt = dataclasses.replace(c, decay_shape="sqrt", min_lr_ratio=0.1)
    assert lr_at(100, sqrt) == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(0.5)))
    assert lr_at(110, sqrt) == pytest.approx(0.1)
    clock = dataclasses.replace(c, steps=1_000_000, time_budget_s=100.0)
    assert lr_at(20, clock, wall=79.0) == pytest.approx(1.0)
    assert lr_at(20, clock, wall=90.0) == pytest.approx(0.5)  # the clock drives the decay
    assert lr_at(20, clock, wall=200.0) == pytest.approx(0.0)
    for bad in (dict(schedule="step"), dict(decay_shape="cos"), dict(decay_share=0.0)):
        with pytest.raises(ValueError):
            lr_at(50, dataclasses.replace(c, **bad))


def test_muon_on_hidden_matrices_adamw_on_the_rest(tmp_path):
    model = fresh_model()
    c = cfg(kind=PretrainConfig, optimizer="muon", muon_lr=0.05, muon_momentum_warmup=4)
    opt = make_optimizer(model, c, torch.device("cpu"))
    muon, adamw = opt.opts
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    in_muon = {id(p) for g in muon.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        hidden = p.dim() == 2 and "embed" not in name and "lm_head" not in name
        assert (id(p) in in_muon) == hidden, name
    assert len(in_muon) + sum(len(g["params"]) for g in adamw.param_groups) == len(
        {id(p) for p in model.parameters()})
    apply_schedule(opt, 1e-2, 2, c)  # the schedule's lr scaled per optimizer; momentum warming
    assert muon.param_groups[0]["lr"] == pytest.approx(0.05)
    assert muon.param_groups[0]["momentum"] == pytest.approx(0.9)
    assert all(g["lr"] == pytest.approx(1e-2) for g in adamw.param_groups)
    with pytest.raises(ValueError, match="optimizer"):
        opt.load_state_dict(torch.optim.AdamW(model.parameters()).state_dict())
    # it learns, and resuming from a checkpoint is bit-exact with Muon's state
    result = run(tmp_path, c=dataclasses.replace(c, steps=40, eval_every=20, save_every=20))
    losses = [r["loss"] for r in read_metrics(tmp_path) if "loss" in r]
    assert result.step == 40 and losses[-1] < losses[0] - 1.0
    reference = strip(read_metrics(tmp_path))
    final = (tmp_path / "checkpoints" / "final" / "model.safetensors").read_bytes()
    shutil.rmtree(tmp_path / "checkpoints" / "step_40")
    shutil.rmtree(tmp_path / "checkpoints" / "final")
    run(tmp_path, model=fresh_model(seed=99), resume=True,
        c=dataclasses.replace(c, steps=40, eval_every=20, save_every=20))
    assert strip(read_metrics(tmp_path)) == reference
    assert (tmp_path / "checkpoints" / "final" / "model.safetensors").read_bytes() == final


def test_pause_then_resume_finishes_the_budget(tmp_path):
    """bench/speedrun.py's slices: a paused run saves its step and writes no final checkpoint;
    resumed, it goes on with the schedule of the whole budget."""
    c = cfg(steps=1_000_000, log_every=5, eval_every=0, save_every=0, time_budget_s=1.5)
    first = run(tmp_path, c=c, pause_at_s=0.5)
    assert first.stopped == "paused" and first.final_dir is None and first.step > 0
    assert (tmp_path / "checkpoints" / f"step_{first.step}").is_dir()
    assert not (tmp_path / "checkpoints" / "final").exists()
    lr_paused = read_metrics(tmp_path)[-1]["lr"]
    assert 1e-3 < lr_paused < 1e-2  # mid-cosine: the budget, not the slice, sets the schedule
    done = run(tmp_path, c=c, resume=True)
    assert done.stopped == "time_budget" and done.step > first.step
    assert (tmp_path / "checkpoints" / "final").is_dir()
    steps = [r["step"] for r in read_metrics(tmp_path) if "loss" in r]
    assert steps == sorted(set(steps))
