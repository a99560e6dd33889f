"""CPU-specific choices made for the machine at hand: the compute dtype and the thread count
(and what they were based on).

`pretrain.dtype = "auto"` on CPU runs `choose_cpu_dtype` at start-up:

- a CPU that reports no native bf16 (neither AVX512-BF16 nor AMX) trains in fp32 without
  measuring: bf16 autocast there is emulated and was measured 14x slower than fp32 (an AVX2-only
  AMD EPYC, docs/RESULTS.md);
- otherwise a few forward+backward steps of each dtype on a copy of the real model at the run's
  batch shape (`measure_dtype_speeds`, a few seconds) decide; bf16 must beat fp32 by
  `BF16_MARGIN`, since it also costs precision.

`decide_dtype` takes the measured speeds as numbers, so the rule is testable without a mock.
The choice, its reason, the speeds and the CPU are recorded in run.json (`hardware`), and a
resumed run keeps the dtype its checkpoint was trained with (bit-exact resume).
Threads: `threads = 0` keeps torch's default (one per core); `threads = -1` ("auto") measures
one thread and every core (each with each dtype that `dtype` allows) and keeps the fastest pair
(`decide_threads`): on a 2-core EPYC under load, one thread of bf16 trained 2.7x faster than two
of fp32 (docs/RESULTS.md), and which dtype wins depended on the thread count. More threads must
beat fewer by `THREADS_MARGIN`, since they also take the cores from everything else. The count
in use is recorded; a resume keeps the recorded count (bit-exact resume).
Compile is never switched on automatically: on CPU it costs tens of seconds of the budget.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from codeling.io import atomic_write_json
from codeling.objectives import forward_logits, lm_loss

BF16_MARGIN = 1.10  # bf16 must be this much faster than fp32 to be chosen
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
THREADS_MARGIN = 1.10  # more threads must be this much faster than fewer to be chosen
AUTO_THREADS = -1


def cpu_info() -> dict:
    """The CPU's model name, core count and bf16-related flags (from /proc/cpuinfo on Linux)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name in ("", platform.machine(),
                                                        platform.processor()):
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", *NATIVE_BF16_FLAGS)
    return {"name": name, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags],
            "torch": str(torch.__version__)}


def native_bf16(info: dict) -> bool:
    return any(f in info.get("flags", []) for f in NATIVE_BF16_FLAGS)


def decide_dtype(speeds: dict[str, float] | None, native: bool) -> tuple[str, str]:
    """(dtype, reason) from measured tokens/s per dtype and whether the CPU has native bf16."""
    if not native:
        return "fp32", "the CPU has no native bf16 (no AVX512-BF16 or AMX): emulated bf16 is slow"
    if not speeds or "fp32" not in speeds or "bf16" not in speeds:
        return "fp32", "no measurement of both dtypes: fp32 is the safe default"
    ratio = speeds["bf16"] / max(speeds["fp32"], 1e-9)
    if ratio >= BF16_MARGIN:
        return "bf16", f"bf16 autocast measured {ratio:.2f}x the fp32 tokens/s"
    return "fp32", (f"bf16 autocast measured {ratio:.2f}x the fp32 tokens/s "
                    f"(below the {BF16_MARGIN:.2f}x needed)")


def autocast_context(dtype: str, device: torch.device):
    if dtype == "fp32":
        return nullcontext()
    if dtype != "bf16":
        raise ValueError(f"train dtype must be auto, fp32 or bf16, got {dtype!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16)


def measure_dtype_speeds(model: nn.Module, batch_size: int, seq_len: int, vocab_size: int,
                         steps: int = 2, rounds: int = 1,
                         dtypes: tuple[str, ...] = ("fp32", "bf16")) -> dict[str, float]:
    """Tokens/s of forward+backward (plain next-token loss) per dtype on a copy of `model` (its
    weights, the RNG and its gradients untouched). Dtypes alternate `rounds` times; each keeps
    its best (the least disturbed by other load)."""
    probe = copy.deepcopy(model)
    device = next(probe.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ids = torch.randint(0, vocab_size, (batch_size, seq_len + 1), device=device)
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for dtype in dtypes:
            with autocast_context(dtype, device):
                lm_loss(forward_logits(probe, batch), batch["labels"]).backward()  # warm-up: kernels, allocations
            t0 = time.perf_counter()
            for _ in range(steps):
                with autocast_context(dtype, device):
                    loss = lm_loss(forward_logits(probe, batch), batch["labels"])
                loss.backward()
            rate = steps * batch_size * seq_len / (time.perf_counter() - t0)
            best[dtype] = max(best.get(dtype, 0.0), rate)
            probe.zero_grad(set_to_none=True)
    return {k: round(v, 1) for k, v in best.items()}


def decide_threads(speeds: dict[int, dict[str, float]]) -> tuple[int, str, str]:
    """(threads, dtype, reason) from measured tokens/s per thread count and dtype: per count
    the dtype `decide_dtype` would take, then the fastest count, where more threads must beat
    the best of fewer by `THREADS_MARGIN`."""
    if not speeds or not all(speeds.values()):
        raise ValueError("decide_threads needs a measured speed for every thread count")
    best = {}
    for n, by in speeds.items():
        dtype = decide_dtype(by, native=True)[0] if "fp32" in by else next(iter(by))
        best[n] = (dtype, by[dtype])
    counts = sorted(best)
    pick = counts[0]
    for n in counts[1:]:
        if best[n][1] >= THREADS_MARGIN * best[pick][1]:
            pick = n
    text = "; ".join(f"{n} thread{'s' * (n > 1)}: " + ", ".join(
        f"{d} {v:,.0f}" for d, v in speeds[n].items()) for n in counts)
    return pick, best[pick][0], f"fastest measured pair ({text} tokens/s)"


def usable_cores() -> int:
    """The cores this process may run on (taskset, cgroup cpusets), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def measure_thread_speeds(model: nn.Module, batch_size: int, seq_len: int, vocab_size: int,
                          dtypes: tuple[str, ...], rounds: int = 2) -> dict[int, dict[str, float]]:
    """Tokens/s per thread count (1 and every usable core) and dtype, the counts alternating
    `rounds` times, each pair keeping its best (the least disturbed by other load); torch's
    count is restored."""
    before = torch.get_num_threads()
    out: dict[int, dict[str, float]] = {}
    try:
        for _ in range(rounds):
            for n in sorted({1, usable_cores()}):
                torch.set_num_threads(n)
                got = measure_dtype_speeds(model, batch_size, seq_len, vocab_size, dtypes=dtypes)
                out[n] = {d: max(v, out.get(n, {}).get(d, 0.0)) for d, v in got.items()}
    finally:
        torch.set_num_threads(before)
    return out


def choose_cpu_dtype(model: nn.Module, batch_size: int, seq_len: int, vocab_size: int,
                     dtype: str = "auto", threads: int = 0) -> dict:
    """The `hardware` record: the CPU, the dtype (and with `threads = -1` the thread count)
    chosen for it, why, and the speeds measured."""
    info = cpu_info()
    native = native_bf16(info)
    rows = min(batch_size, 8)  # the ratio is what matters, and the probe should cost seconds
    if threads == AUTO_THREADS:
        if dtype != "auto":
            dtypes, dreason = (dtype,), "set in the config"
        elif not native:
            dtypes, dreason = ("fp32",), decide_dtype(None, native)[1]
        else:
            dtypes, dreason = ("fp32", "bf16"), ""
        speeds = measure_thread_speeds(model, rows, seq_len, vocab_size, dtypes)
        n, chosen, reason = decide_threads(speeds)
        return {"cpu": info, "dtype": chosen, "dtype_reason": dreason or reason,
                "dtype_speeds": speeds[n], "threads": n, "threads_reason": reason,
                "thread_speeds": {str(k): v for k, v in speeds.items()}}
    speeds_1 = measure_dtype_speeds(model, rows, seq_len, vocab_size) if native else None
    chosen, reason = decide_dtype(speeds_1, native)
    return {"cpu": info, "dtype": chosen, "dtype_reason": reason, "dtype_speeds": speeds_1,
            "threads": torch.get_num_threads()}


def resolve_dtype(dtype: str, device: torch.device, model: nn.Module, batch_size: int,
                  seq_len: int, recorded: dict | None = None, threads: int = 0) -> dict:
    """The `hardware` record of a run: on CPU with `dtype = "auto"` or `threads = -1` the
    measured choice (or, on resume, the `recorded` one, so neither changes mid-run); else the
    config's. Its `threads` is the count to run with: the caller sets it (train.py, on every
    rank), as it sets a configured count."""
    if device.type != "cpu":
        return {"dtype": "bf16" if dtype == "auto" else dtype, "device": str(device)}
    if threads < AUTO_THREADS:
        raise ValueError(f"threads must be -1 (auto), 0 (torch's default) or a count, got {threads}")
    if dtype not in ("auto", "fp32", "bf16"):
        raise ValueError(f"train dtype must be auto, fp32 or bf16, got {dtype!r}")
    auto_threads = threads == AUTO_THREADS
    if recorded and recorded.get("dtype") in ("fp32", "bf16") and (dtype == "auto" or
                                                                  auto_threads):
        kept = recorded.get("threads") if auto_threads else None
        return {**recorded, "cpu": cpu_info(), "threads": kept or torch.get_num_threads(),
                "dtype": recorded["dtype"] if dtype == "auto" else dtype,
                "dtype_reason": f"kept from the checkpoint ({recorded.get('dtype_reason')})"}
    if dtype != "auto" and not auto_threads:
        return {"cpu": cpu_info(), "dtype": dtype, "dtype_reason": "set in the config",
                "threads": torch.get_num_threads()}
    vocab = next(m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding))
    return choose_cpu_dtype(model, batch_size, seq_len, vocab, dtype, threads)


def record_hardware(run_dir: Path, hardware: dict) -> None:
    """Merge `hardware` into the run's run.json (written by the stage), and log the choice."""
    path = Path(run_dir) / "run.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    info["hardware"] = hardware
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, info)
    if hardware.get("threads_reason"):
        print(f"cpu: {hardware['cpu']['name']} ({', '.join(hardware['cpu']['flags'])}); "
              f"{hardware['threads']} threads, dtype {hardware['dtype']}: "
              f"{hardware['threads_reason']}")
    elif "cpu" in hardware:
        speeds = hardware.get("dtype_speeds")
        measured = (", measured " + ", ".join(f"{k} {v:,.0f} tokens/s" for k, v in
                                               speeds.items())) if speeds else ""
        print(f"cpu: {hardware['cpu']['name']} ({', '.join(hardware['cpu']['flags'])}); "
              f"dtype {hardware['dtype']}: {hardware['dtype_reason']}{measured}; "
              f"{hardware['threads']} threads")
