"""Generation tokens/s: codeling's KV-cache `complete` against `transformers` `generate`.

Baseline: transformers' `AutoModelForCausalLM.generate` (LlamaForCausalLM, its default dynamic
cache), measured in the same run on the same checkpoint, the same left-padded prompts, greedy,
and exactly the same number of new tokens for both (end-of-text stopping is off on both sides,
so the work is equal). Weights are random: speed does not depend on what they learned. It also
checks that both produce the same tokens.

Shapes: `smoke` (2 layers, d_model 64, vocab 512) and `cpu` (6 layers, d_model 288, vocab 4096).
Goal: ratio ≥ 2× at batch 1 and batch 8.

Second table, shared prefill (`complete(prompts, n=K)`: each prompt prefilled once, its KV cache
copied to its K sequences) against the per-copy prefill baseline (the prompt repeated K times,
`n=1`), on the first HumanEval prompts, sampling at temperature 0.8 with the same seed (both
give the same tokens, which it checks), end-of-text off so the work is equal.

    .venv/bin/python bench/generate.py [--shapes smoke,cpu] [--batch-sizes 1,8]
                                       [--new-tokens 64] [--repeats 3] [--threads 2]
                                       [--shared-k 16] [--shared-prompts 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from codeling.checkpoint import save_model
from codeling.config import load_config
from codeling.generate import complete, load_for_inference
from codeling.model import CodelingLM
from codeling.tokenizer import train_tokenizer


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
    text = stdlib_texts(3)[2]
    ids = tok.encode(text)
    return [tok.decode(ids[i * 97:i * 97 + 20 + (i * 13) % 90]) for i in range(batch)]


def ours_runner(model, tok, prompts, new_tokens):
    def run():
        done = complete(model, tok, prompts, max_new_tokens=new_tokens, heal=False,
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


def sampling_runner(model, tok, prompts, new_tokens, k, shared, batch_size):
    def run():
        if shared:
            done = complete(model, tok, prompts, n=k, **kw)
        else:
            done = complete(model, tok, [p for p in prompts for _ in range(k)], **kw)
        return [c.token_ids for c in done]
    kw = {"max_new_tokens": new_tokens, "temperature": 0.8, "seed": 0, "ignore_eot": True,
          "batch_size": batch_size}
    return run


def race(runners: list, repeats: int) -> tuple[list[float], list]:
    """Best time of each runner; runs alternate, so a busy machine slows both alike."""
    best, outs = [float("inf")] * len(runners), [None] * len(runners)
    for _ in range(repeats):
        for i, run in enumerate(runners):
            start = time.perf_counter()
            outs[i] = run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best, outs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="smoke,cpu")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--shared-k", type=int, default=16, help="samples per prompt (0: skip)")
    ap.add_argument("--shared-prompts", type=int, default=8, help="HumanEval prompts")
    ap.add_argument("--shared-batch", type=int, default=16, help="sequences per batch")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers
    from transformers import AutoModelForCausalLM

    transformers.logging.set_verbosity_error()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} threads, {args.new_tokens} new tokens, greedy, "
          f"best of {args.repeats}")
    print(f"{'shape':6} {'batch':>5} {'ours tok/s':>11} {'HF tok/s':>10} {'ratio':>6} same")
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            ckpt = build_checkpoint(shape, Path(tmp))
            model, tok = load_for_inference(ckpt)
            hf = AutoModelForCausalLM.from_pretrained(ckpt).eval()
            hf.generation_config.eos_token_id = None  # equal work: no early stop
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                prompts = prompts_for(tok, batch)
                # an untimed warm-up each, so neither side pays first-call costs
                race([ours_runner(model, tok, prompts, 4), hf_runner(hf, tok, prompts, 4)], 1)
                (t_ours, t_hf), (ours, theirs) = race(
                    [ours_runner(model, tok, prompts, args.new_tokens),
                     hf_runner(hf, tok, prompts, args.new_tokens)], args.repeats)
                n = batch * args.new_tokens
                same = sum(a == b for a, b in zip(ours, theirs))
                print(f"{shape:6} {batch:5d} {n / t_ours:11.0f} {n / t_hf:10.0f} "
                      f"{t_hf / t_ours:5.2f}x {same}/{batch}", flush=True)
        if args.shared_k:
            shared_prefill(args, Path(tmp))
    return 0


def shared_prefill(args, tmp: Path) -> None:
    from codeling.tasks.benchmarks import load_benchmark

    prompts = [t.prompt for t in load_benchmark("humaneval")[:args.shared_prompts]]
    k, new = args.shared_k, args.new_tokens
    print(f"\nshared prefill: {len(prompts)} HumanEval prompts x {k} samples, {new} new tokens, "
          f"batch {args.shared_batch}; baseline: per-copy prefill (prompt repeated {k} times)")
    print(f"{'shape':6} {'shared s':>9} {'per-copy s':>11} {'ratio':>6} same")
    for shape in args.shapes.split(","):
        model, tok = load_for_inference(tmp / shape)
        runners = [sampling_runner(model, tok, prompts, new, k, shared, args.shared_batch)
                   for shared in (True, False)]
        race([sampling_runner(model, tok, prompts[:1], 2, 2, s, 2) for s in (True, False)], 1)
        (t_shared, t_copy), (a, b) = race(runners, args.repeats)
        same = sum(x == y for x, y in zip(a, b))
        print(f"{shape:6} {t_shared:9.2f} {t_copy:11.2f} {t_copy / t_shared:5.2f}x "
              f"{same}/{len(a)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
