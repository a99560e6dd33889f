"""Generation tokens/s: codeling's `complete` against its own earlier implementation and against
`transformers` `generate`, with the same tokens out, and where a decode step's time goes.

Three runners, timed in one run on one checkpoint (random weights: speed does not depend on
what they learned), the same left-padded prompts (20-110 tokens), greedy, and exactly
`--new-tokens` new tokens each (end-of-text stopping off on every side, so the work is equal):
  - new: `codeling.generate.complete` as it is in this checkout;
  - baseline: `complete` and the model as they were at commit BASELINE (before the decode
    rework), loaded from git into temporary modules, with the same weights;
  - hf: `AutoModelForCausalLM.from_pretrained(checkpoint).generate` (LlamaForCausalLM, its
    default dynamic cache).
The runners alternate (a busy machine slows all alike) and each figure is the median of
`--repeats` runs: wall seconds, and CPU seconds of this process (steadier on a shared machine).
`same` counts rows whose tokens equal the baseline's.

Breakdown (per decode step, median of 5 runs of 16 steps, CPU ms): the model's forward alone at
one context length for every row (so it shows per-op costs, not what skipping padding saves),
split by the profiler into matmuls, attention and every other op (with the op count), and the
rest of a generation step (picking, stop checks, bookkeeping) as the total minus prefill minus
the forward.

Goals (issue 28): new >= 3x baseline at batch 1 and 32, new >= 2x hf. Measured (2026-12-03,
shared 2-core AMD EPYC, load ~15, 1 thread, CPU-time medians of 7): batch 1 0.99x baseline and
1.26x hf; batch 32 1.36x baseline (wall 1.54x) and 1.58x hf; same tokens as the baseline on
every row. Not reached: at batch 1 a step is ~60% matrix-vector products that stream 13.8 MB of
fp32 weights (~3 ms; the rest is ~1,300 small ops), at batch 32 matmuls and attention over the
cache are ~85% of a step; only lower precision (different outputs) would cut those.

    .venv/bin/python bench/generate.py [--shape cpu] [--batch-sizes 1,32] [--new-tokens 64]
                                       [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

from codeling.checkpoint import save_model
from codeling.config import load_config
from codeling.generate import complete, load_for_inference
from codeling.model import CodelingLM, KVCache
from codeling.tokenizer import train_tokenizer

BASELINE = "a940c93"  # the last commit with the old decode loop
REPO = Path(__file__).resolve().parents[1]


def stdlib_texts(n_files: int = 40) -> list[str]:
    root = Path(sys.modules["json"].__file__).parents[1]  # the stdlib folder
    files = sorted(root.glob("*.py"))[:n_files]
    return [f.read_text(errors="replace") for f in files]


def build_checkpoint(shape: str, out: Path) -> Path:
    cfg = load_config(shape).model
    tok = train_tokenizer(stdlib_texts(), vocab_size=cfg.vocab_size)
    torch.manual_seed(0)
    return save_model(CodelingLM(cfg), out / shape, tok)


def prompts_for(tok, batch: int) -> list[str]:
    """Real code snippets of different lengths (20-110 tokens), so padding is exercised."""
    ids = tok.encode(stdlib_texts(3)[2])
    return [tok.decode(ids[i * 97:i * 97 + 20 + (i * 13) % 90]) for i in range(batch)]


def _module(name: str, path: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{BASELINE}:{path}"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{BASELINE}:{path}", "exec"), module.__dict__)
    return module


def baseline(model: CodelingLM):
    """(complete, model) as at BASELINE: its generate.py run against its own model.py."""
    old_model = _module("codeling_baseline_model", "src/codeling/model.py")
    saved = sys.modules["codeling.model"]
    sys.modules["codeling.model"] = old_model  # old generate.py imports its own KVCache
    try:
        old_generate = _module("codeling_baseline_generate", "src/codeling/generate.py")
    finally:
        sys.modules["codeling.model"] = saved
    old = old_model.CodelingLM(model.config)
    old.load_state_dict(model.state_dict())
    return old_generate.complete, old.eval()


def runner(complete_fn, model, tok, prompts, new_tokens):
    def run():
        done = complete_fn(model, tok, prompts, max_new_tokens=new_tokens, heal=False,
                           ignore_eot=True, batch_size=len(prompts))
        return [c.token_ids for c in done]
    return run


def hf_runner(hf, tok, prompts, new_tokens):
    rows = tok.encode_batch(prompts)
    width = max(len(r) for r in rows)
    ids = torch.tensor([[tok.pad_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])

    def run():
        with torch.inference_mode():
            out = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                              do_sample=False, eos_token_id=None, pad_token_id=tok.pad_id)
        return [r[width:].tolist() for r in out]
    return run


def race(runners: list, repeats: int) -> tuple[list[float], list[float], list]:
    """Median wall and CPU seconds of each runner; runs alternate."""
    wall, cpu, outs = [[] for _ in runners], [[] for _ in runners], [None] * len(runners)
    for _ in range(repeats):
        for i, run in enumerate(runners):
            w, c = time.perf_counter(), time.process_time()
            outs[i] = run()
            wall[i].append(time.perf_counter() - w)
            cpu[i].append(time.process_time() - c)
    return ([statistics.median(t) for t in wall], [statistics.median(t) for t in cpu], outs)


@torch.inference_mode()
def forward_breakdown(model, batch: int, context: int, steps: int = 16) -> dict[str, float]:
    """CPU ms per decode step of the model's forward alone, and the profiler's split of it."""
    from torch.profiler import ProfilerActivity, profile

    cfg, device = model.config, next(model.parameters()).device
    cache = KVCache(cfg, batch, context + steps, device, torch.float32)
    key_mask = torch.ones(batch, context + steps, dtype=torch.bool)
    model(torch.randint(0, cfg.vocab_size, (batch, context)), None, cache, key_mask, 1)
    tokens, positions = torch.zeros(batch, 1, dtype=torch.long), torch.full((batch, 1), context)

    def run():
        cache.pos = context
        for s in range(steps):
            model(tokens, positions + s, cache, key_mask)
    run()
    times = []
    for _ in range(5):
        start = time.process_time()
        run()
        times.append((time.process_time() - start) / steps * 1000)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    split = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    ops = 0
    for e in prof.key_averages():
        kind = ("matmul" if e.key in ("aten::mm", "aten::addmm", "aten::bmm") else
                "attention" if "flash_attention" in e.key or "_efficient_attention" in e.key
                else "other")
        split[kind] += e.self_cpu_time_total / 1000 / steps
        ops += e.count
    total = sum(split.values())
    forward = statistics.median(times)
    return {"forward": forward, **{k: forward * v / total for k, v in split.items()},
            "ops": ops / steps}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="cpu")
    ap.add_argument("--batch-sizes", default="1,32")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_checkpoint(args.shape, Path(tmp))
        model, tok = load_for_inference(ckpt)
        old_complete, old_model = baseline(model)
        hf = AutoModelForCausalLM.from_pretrained(ckpt).eval()
        hf.generation_config.eos_token_id = None  # equal work: no early stop
        print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
              f"{torch.get_num_threads()} threads, shape {args.shape} "
              f"({model.num_params() / 1e6:.2f}M parameters), {args.new_tokens} new tokens, "
              f"greedy, median of {args.repeats}; baseline = commit {BASELINE}")
        print(f"{'batch':>5} {'':5} {'new tok/s':>10} {'base tok/s':>11} {'hf tok/s':>9} "
              f"{'new/base':>9} {'new/hf':>7} same")
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            prompts = prompts_for(tok, batch)
            runners = [runner(complete, model, tok, prompts, args.new_tokens),
                       runner(old_complete, old_model, tok, prompts, args.new_tokens),
                       hf_runner(hf, tok, prompts, args.new_tokens)]
            race([runner(complete, model, tok, prompts, 4),
                  runner(old_complete, old_model, tok, prompts, 4),
                  hf_runner(hf, tok, prompts, 4)], 1)  # untimed warm-up
            wall, cpu, (new, base, theirs) = race(runners, args.repeats)
            n = batch * args.new_tokens
            same = sum(a == b for a, b in zip(new, base))
            same_hf = sum(a == b for a, b in zip(new, theirs))
            for label, t in (("wall", wall), ("cpu", cpu)):
                print(f"{batch:5d} {label:5} {n / t[0]:10.0f} {n / t[1]:11.0f} {n / t[2]:9.0f} "
                      f"{t[1] / t[0]:8.2f}x {t[2] / t[0]:6.2f}x {same}/{batch} (hf {same_hf})",
                      flush=True)
            breakdown(args, batch, prompts, tok, model, old_model, old_complete, cpu[:2])
    return 0


def breakdown(args, batch, prompts, tok, model, old_model, old_complete, cpu) -> None:
    """Where a step's time goes, for both implementations (CPU ms per decode step)."""
    for label, fn, m, total in (("new", complete, model, cpu[0]),
                                ("baseline", old_complete, old_model, cpu[1])):
        prefill = []
        for _ in range(3):
            start = time.process_time()
            fn(m, tok, prompts, max_new_tokens=1, heal=False, ignore_eot=True,
               batch_size=batch)
            prefill.append(time.process_time() - start)
        context = max(len(ids) for ids in tok.encode_batch(prompts)) + args.new_tokens // 2
        f = forward_breakdown(m, batch, context)
        steps = args.new_tokens - 1
        rest = (total - statistics.median(prefill)) * 1000 / steps - f["forward"]
        print(f"      {label:9} per step: forward {f['forward']:.2f} ms (matmul "
              f"{f['matmul']:.2f}, attention {f['attention']:.2f}, other {f['other']:.2f} in "
              f"{f['ops']:.0f} ops), rest of the step {max(rest, 0):.2f} ms; prefill "
              f"{statistics.median(prefill) * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    sys.exit(main())
