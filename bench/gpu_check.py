"""The first run on a GPU, in one command and at most 8 minutes: what a GPU user reads first.

    scripts/gpu_check.sh OUT_DIR [--tiny] [--budget-s S] [--device auto|cuda|cpu]

Writes OUT_DIR/gpu_check.json (every figure, each section's status, seconds and error) and
OUT_DIR/gpu_check.md (the same as tables), rewritten after every section, so a run cut short
keeps what it measured. Sections, in order (each guarded: a failure is recorded with its
traceback's tail and the rest still runs; once the budget is spent the rest is "skipped"):

- env: torch, CUDA, device name, compute capability, memory, bf16 support, CPU, git commit;
- peak: one device's peak FLOP/s for MFU: training/flops.py's table, else a bf16 (CUDA) or
  fp32 (CPU) matmul measured here;
- pretrain/PRESET/eager for v1-29m, v2-52m, v2-88m, v2-105m: the real training loop
  (`codeling.train.train`) on random tokens at the preset's batch and seq_len: tokens/s after
  the warm-up steps, MFU, peak memory allocated and reserved;
- fit_24gb: v2-105m at its longest sequence (max_seq_len) and the preset's batch: whether the
  peak reserved memory plus 1 GiB (CUDA context) fits a 24 GiB card (RTX 4090);
- generate: v2-105m's generation tokens/s at batch 1 and 32 (random weights, end-of-text off,
  loaded through `generate.load_for_inference` as `codeling generate` does);
- pipeline: a shortened v1-29m `codeling pipeline` (corpus, tokenizer, pretrain, tasks, sft,
  evaluate on mini) as a subprocess; its log is OUT_DIR/pipeline.log;
- pretrain/PRESET/compiled: the same with `compile = true` (last: compiling costs the most).

--tiny runs the same code at tiny shapes on the CPU in one to two minutes (tests/test_gpu_check.py,
so it cannot rot), all but the compiled runs (inductor's CPU compile alone took ~2 minutes).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch

from codeling.checkpoint import save_model
from codeling.config import TasksConfig, load_config
from codeling.data import RandomWindows
from codeling.generate import complete, load_for_inference
from codeling.io import atomic_write_json, atomic_write_text
from codeling.model import CodelingLM
from codeling.objectives import LMObjective
from codeling.tokenizer import train_tokenizer
from codeling.train import read_metrics, resolve_device, seed_everything, train
from codeling.training.flops import flops_per_token, peak_flops

PRESETS = ("v1-29m", "v2-52m", "v2-88m", "v2-105m")
GIB = 1024.0  # MiB per GiB
CARD_MIB = 24 * 1024  # an RTX 4090's 24 GiB
CONTEXT_MIB = 1024  # CUDA context and fragmentation beyond the allocator's reserve
TINY_MODEL = ["model.n_layer=2", "model.d_model=32", "model.n_head=2", "model.n_kv_head=2",
              "model.vocab_size=512", "model.max_seq_len=512"]


class Check:
    """Runs sections under a time budget and rewrites both reports after each."""

    def __init__(self, out: Path, budget_s: float, meta: dict):
        self.out, self.budget, self.t0 = out, budget_s, time.perf_counter()
        self.report = {**meta, "sections": {}}

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)

    def skip(self, name: str, reason: str) -> None:
        self.run(name, lambda: {}, reason)

    def run(self, name: str, fn: Callable[[], dict], skip: str = "") -> dict | None:
        rec: dict = {"status": "skipped", "reason": skip or "the time budget was spent"}
        if self.left() > 0 and not skip:
            t = time.perf_counter()
            try:
                rec = {"status": "ok", **fn()}
            except Exception as e:  # one failure is recorded; the rest still runs
                rec = {"status": "error", "error": f"{type(e).__name__}: {e}"[:500],
                       "traceback": traceback.format_exc()[-3000:]}
            rec["seconds"] = round(time.perf_counter() - t, 2)
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        self.report["sections"][name] = rec
        self.report["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        atomic_write_json(self.out / "gpu_check.json", self.report)
        atomic_write_text(self.out / "gpu_check.md", markdown(self.report))
        print(f"gpu_check: {name}: {rec['status']} ({rec.get('seconds', 0)} s)"
              + (f": {rec['error']}" if "error" in rec else ""), flush=True)
        return rec if rec["status"] == "ok" else None


# ---- sections ----

def env(device: torch.device) -> dict:
    from codeling.training.hardware import cpu_info

    rec = {"torch": str(torch.__version__), "cuda": torch.version.cuda, "device": str(device),
           "python": platform.python_version(), "cpu": cpu_info()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        rec.update(device_name=p.name, capability=f"{p.major}.{p.minor}",
                   memory_gib=round(p.total_memory / 2**30, 1),
                   bf16=torch.cuda.is_bf16_supported(), gpus=torch.cuda.device_count())
    else:
        rec.update(device_name=rec["cpu"]["name"], bf16="avx512_bf16" in rec["cpu"]["flags"])
    try:
        rec["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], text=True,
                                       capture_output=True, timeout=10).stdout.strip()
    except OSError:
        pass
    return rec


def measured_matmul_flops(device: torch.device, seconds: float = 0.5) -> float:
    """Dense matmul FLOP/s here: bf16 on CUDA, fp32 on CPU (a stand-in for an unlisted peak)."""
    n = 8192 if device.type == "cuda" else 512
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def peak(device: torch.device) -> dict:
    table = peak_flops(device)
    if table:
        return {"peak_flops": table, "source": "training/flops.py's table (dense bf16)"}
    return {"peak_flops": measured_matmul_flops(device),
            "source": "measured here: a dense matmul loop (no table entry for this device)"}


def shard(vocab: int, n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, vocab, n).astype(np.uint16)


def pretrain_speed(preset: str, device: torch.device, tiny: bool, peak_fl: float | None,
                   compile_: bool, seq_len: int = 0, batch: int = 0, timed: int = 0) -> dict:
    """The real loop at the preset's shape; tokens/s over the steps after the warm-up."""
    tiny_over = [*TINY_MODEL, "pretrain.batch_size=2", "pretrain.seq_len=32",
                 "pretrain.dtype=fp32", "pretrain.threads=1"]
    cfg = load_config(preset, tiny_over if tiny else [])
    tc = cfg.pretrain
    warm, timed = (2, timed or 3) if tiny else (5 if not compile_ else 8, timed or 20)
    tc.seq_len, tc.batch_size = seq_len or tc.seq_len, batch or tc.batch_size
    tc.steps, tc.log_every, tc.warmup = warm + timed, warm, 2
    tc.eval_every, tc.save_every, tc.time_budget_s = 0, 0, 0.0
    tc.device, tc.compile, tc.peak_flops = str(device), compile_, peak_fl or 0.0
    seed_everything(0)
    model = CodelingLM(cfg.model)
    data = shard(cfg.model.vocab_size, max(200_000, 4 * tc.batch_size * (tc.seq_len + 1)))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as run_dir:
        t0 = time.perf_counter()
        train(model, LMObjective(), RandomWindows(data, tc.batch_size, tc.seq_len, seed=0), tc,
              run_dir, save_fn=lambda m, d: None, progress=False)  # no weights: speed only
        total_s = time.perf_counter() - t0
        rows = [r for r in read_metrics(run_dir) if "loss" in r]
    after = rows[1:]  # the first line's window holds the warm-up (and compiling)
    tokens = sum(b["tokens"] - a["tokens"] for a, b in pairwise(rows))
    rate = tokens / sum((b["tokens"] - a["tokens"]) / b["tokens_per_s"]
                        for a, b in pairwise(rows))
    per_token = flops_per_token(model, tc.seq_len)
    rec = {"params": model.num_params(), "batch": tc.batch_size, "seq_len": tc.seq_len,
           "steps": tc.steps, "timed_steps": timed, "compile": compile_,
           "dtype": "fp32" if tiny else "bf16 autocast", "tokens_per_s": round(rate, 1),
           "step_ms": round(1000 * tc.batch_size * tc.seq_len / rate, 2),
           "flops_per_token": per_token,
           "mfu": round(rate * per_token / peak_fl, 4) if peak_fl else None,
           "logged_mfu": after[-1].get("mfu"), "peak_mem_mb": after[-1].get("peak_mem_mb"),
           "warmup_window_s": round(rows[0]["tokens"] / rows[0]["tokens_per_s"], 2),
           "total_s": round(total_s, 2)}
    if device.type == "cuda":
        rec["peak_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
    return rec


def fit_24gb(device: torch.device, tiny: bool, peak_fl: float | None) -> dict:
    cfg = load_config("v2-105m", TINY_MODEL if tiny else [])
    seq = cfg.model.max_seq_len
    try:
        rec = pretrain_speed("v2-105m", device, tiny, peak_fl, False, seq_len=seq, timed=3)
    except torch.cuda.OutOfMemoryError as e:
        return {"seq_len": seq, "fits_24gb": False, "error": f"out of memory: {e}"[:300]}
    need = rec.get("peak_reserved_mb", rec["peak_mem_mb"]) + CONTEXT_MIB
    return {**rec, "needs_mb": round(need, 1), "card_mb": CARD_MIB, "fits_24gb": need <= CARD_MIB}


def stdlib_texts(n: int = 40) -> list[str]:
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:n]
    return [f.read_text(errors="replace") for f in files]


def generation(device: torch.device, tiny: bool) -> dict:
    cfg = load_config("v2-105m", TINY_MODEL if tiny else [])
    texts = stdlib_texts(8 if tiny else 40)
    tok = train_tokenizer(texts, vocab_size=cfg.model.vocab_size)
    seed_everything(0)
    new = 16 if tiny else 128
    with tempfile.TemporaryDirectory() as d:
        ckpt = save_model(CodelingLM(cfg.model), Path(d) / "ckpt", tok)
        model, tok = load_for_inference(ckpt, device)  # as `codeling generate` loads it
        ids = tok.encode(texts[-1])
        width = 24 if tiny else 96
        prompts = [tok.decode(ids[i * 50:i * 50 + width]) for i in range(32)]
        rec = {"params": model.num_params(), "new_tokens": new, "prompt_tokens": width,
               "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}
        for batch in (1, 32):
            complete(model, tok, prompts[:batch], max_new_tokens=4, batch_size=batch,
                     ignore_eot=True)  # warm-up: kernels, allocator
            t0 = time.perf_counter()
            out = complete(model, tok, prompts[:batch], max_new_tokens=new, batch_size=batch,
                           ignore_eot=True)
            dt = time.perf_counter() - t0
            made = sum(c.completion_tokens for c in out)
            rec[f"batch_{batch}"] = {"tokens": made, "seconds": round(dt, 3),
                                     "tokens_per_s": round(made / dt, 1)}
    return rec


def pipeline_overrides(tiny: bool) -> list[str]:
    stages = 'pipeline.stages=["corpus","tokenizer","pretrain","tasks","sft","evaluate"]'
    if tiny:
        email = Path(sysconfig.get_paths()["stdlib"]) / "email"
        over = [*TINY_MODEL, f'corpus.sources=["{email}"]',
                "tokenizer.vocab_size=512",
                "pretrain.steps=6", "pretrain.batch_size=2", "pretrain.seq_len=32",
                "pretrain.eval_every=6", "pretrain.save_every=6", "pretrain.warmup=2",
                "pretrain.dtype=fp32", "pretrain.threads=1", 'tasks.sources=["synthetic"]',
                "tasks.n=8", "sft.steps=4", "sft.batch_size=2",
                "sft.seq_len=512", "sft.eval_every=4", "sft.save_every=4", "sft.warmup=1",
                "sft.dtype=fp32", "sft.threads=1", "sft.eval_max_new_tokens=8",
                "eval.max_new_tokens=16"]
        # a small dev set where this tree's [tasks] can size it
        fields = TasksConfig.__dataclass_fields__
        over += [o for o in ("tasks.dev_size=8", "tasks.dev_mbpp=0")
                 if o.split("=")[0].split(".")[1] in fields]
    else:  # v1-29m's shape and batch, shortened: ~3 minutes on one data-centre GPU
        over = ["corpus.max_mb=5", "tokenizer.train_mb=5", "pretrain.steps=600",
                "pretrain.warmup=100", "pretrain.eval_every=300", "pretrain.save_every=300",
                "tasks.n=300", "sft.steps=300", "sft.warmup=30", "sft.eval_every=300",
                "sft.save_every=300"]
    return [*over, 'eval.benchmarks=["mini"]', stages]


def pipeline(out: Path, tiny: bool, timeout: float) -> dict:
    import shutil

    run = out / "pipeline"
    shutil.rmtree(run, ignore_errors=True)  # a fresh run, never a reuse of an older check
    argv = [sys.executable, "-m", "codeling.cli", "pipeline", "--preset", "v1-29m",
            "--run-dir", str(run), *pipeline_overrides(tiny)]
    with open(out / "pipeline.log", "w") as log:
        rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT,
                            timeout=max(timeout, 30)).returncode
    state = json.loads((run / "pipeline.json").read_text()) if (
        run / "pipeline.json").exists() else {}
    stages = {k: {"status": v.get("status"), "seconds": v.get("seconds")}
              for k, v in state.get("stages", {}).items()}
    green = rc == 0 and bool(stages) and all(s["status"] in ("built", "reused")
                                             for s in stages.values())
    if not green:
        raise RuntimeError(f"pipeline exit {rc}, stages {stages}; see {out / 'pipeline.log'}")
    return {"green": green, "stages": stages, "results": state.get("results", {}),
            "overrides": pipeline_overrides(tiny)}


# ---- the report ----

def _gib(mb: float | None) -> str:
    return f"{mb / GIB:.2f}" if isinstance(mb, (int, float)) else ""


def _pct(x: float | None) -> str:
    return f"{x:.1%}" if isinstance(x, (int, float)) else ""


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(str(c) for c in r) + " |" for r in rows], ""]


def markdown(rep: dict) -> str:
    s = rep["sections"]
    env_ = s.get("env", {})
    lines = [f"# gpu_check: {env_.get('device_name', '?')} ({rep['mode']})", "",
             f"{rep['started']}; {rep.get('elapsed_s', 0)} s of a {rep['budget_s']:g} s budget;"
             f" command: `{rep['command']}`", "", "## Environment", ""]
    lines += _table(["key", "value"], [[k, v] for k, v in env_.items()
                                       if k not in ("status", "cpu", "seconds")]
                    + [["cpu", (env_.get("cpu") or {}).get("name", "")],
                       ["peak FLOP/s (MFU's)", f"{s.get('peak', {}).get('peak_flops', 0):.3g}"
                        f" ({s.get('peak', {}).get('source', '')})"]])
    lines += ["## Pretraining speed (the training loop, random tokens)", ""]
    rows = []
    for name, r in s.items():
        if name.startswith("pretrain/"):
            _, preset, mode = name.split("/")
            if r["status"] != "ok":
                rows.append([preset, mode, r["status"], *[""] * 7])
                continue
            rows.append([preset, mode, r["status"], f"{r['params']:,}",
                         f"{r['batch']}×{r['seq_len']}",
                         f"{r['tokens_per_s']:,.0f}", _pct(r.get("mfu")),
                         _gib(r.get("peak_mem_mb")), _gib(r.get("peak_reserved_mb")),
                         r.get("warmup_window_s", "")])
    lines += _table(["preset", "mode", "status", "params", "batch×seq", "tokens/s", "MFU",
                     "peak alloc GiB", "peak reserved GiB", "warm-up window s"], rows)
    fit = s.get("fit_24gb", {})
    lines += ["## v2-105m at its longest sequence on a 24 GiB card", "",
              f"{fit.get('status', 'not run')}: batch {fit.get('batch', '?')} × seq "
              f"{fit.get('seq_len', '?')}, needs {_gib(fit.get('needs_mb'))} GiB (peak reserved "
              f"+ {CONTEXT_MIB / GIB:g} GiB context) of {CARD_MIB / GIB:g}: fits "
              f"{fit.get('fits_24gb', '?')}; {fit.get('tokens_per_s', 0):,.0f} tokens/s, MFU "
              f"{_pct(fit.get('mfu'))}", ""]
    gen = s.get("generate", {})
    lines += ["## Generation (v2-105m, random weights, end-of-text off)", ""]
    lines += _table(["batch", "new tokens each", "tokens/s"],
                    [[b, gen.get("new_tokens", ""), f"{gen[f'batch_{b}']['tokens_per_s']:,.0f}"]
                     for b in (1, 32) if f"batch_{b}" in gen])
    pipe = s.get("pipeline", {})
    lines += ["## Shortened v1-29m pipeline", "",
              f"{pipe.get('status', 'not run')}; green: {pipe.get('green', False)}", ""]
    lines += _table(["stage", "status", "seconds"],
                    [[k, v["status"], v["seconds"]] for k, v in pipe.get("stages", {}).items()])
    if pipe.get("results"):
        lines += [f"results: `{json.dumps(pipe['results'])}`", ""]
    bad = [(k, v) for k, v in s.items() if v["status"] != "ok"]
    lines += ["## Errors and skips", ""] + ([f"- {k}: {v['status']}: "
                                             f"{v.get('error') or v.get('reason', '')}"
                                             for k, v in bad] or ["none"])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder for gpu_check.json, gpu_check.md, the logs")
    p.add_argument("--tiny", action="store_true",
                   help="tiny shapes on the CPU: the same code paths in about a minute")
    p.add_argument("--device", default="", help="auto | cuda | cpu (default: cpu with --tiny)")
    p.add_argument("--budget-s", type=float, default=0.0,
                   help="stop starting sections after this many seconds (default 420; 170 tiny)")
    args = p.parse_args(argv)
    tiny = args.tiny
    device = resolve_device(args.device or ("cpu" if tiny else "auto"))
    budget = args.budget_s or (170.0 if tiny else 420.0)
    args.out.mkdir(parents=True, exist_ok=True)
    if tiny:
        torch.set_num_threads(1)
    check = Check(args.out, budget, {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "mode": "tiny" if tiny else "full",
        "budget_s": budget, "command": " ".join(["scripts/gpu_check.sh", *(argv or sys.argv[1:])])})
    check.run("env", lambda: env(device))
    pk = check.run("peak", lambda: peak(device))
    peak_fl = pk["peak_flops"] if pk else None
    for preset in PRESETS:
        check.run(f"pretrain/{preset}/eager",
                  lambda p=preset: pretrain_speed(p, device, tiny, peak_fl, False))
    check.run("fit_24gb", lambda: fit_24gb(device, tiny, peak_fl))
    check.run("generate", lambda: generation(device, tiny))
    # the pipeline may run past the budget's end (its own timeout), rather than be cut short
    check.run("pipeline", lambda: pipeline(args.out, tiny, max(check.left(), 240 if tiny else 210)))
    for preset in PRESETS:
        if tiny:  # inductor's CPU compile of even a tiny model took ~2 minutes here
            check.skip(f"pretrain/{preset}/compiled", "--tiny: compiling is measured on the GPU")
            continue
        check.run(f"pretrain/{preset}/compiled",
                  lambda p=preset: pretrain_speed(p, device, tiny, peak_fl, True))
    failed = [k for k, v in check.report["sections"].items() if v["status"] == "error"]
    print(f"gpu_check: {args.out / 'gpu_check.md'}; {len(failed)} failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
