"""Bits per byte of checkpoints on one text set: a loss that compares models with different
tokenizers (issue 27's data arms each train their own BPE on their own corpus, so their val
losses are per token of different vocabularies, on different val splits).

    .venv/bin/python bench/bits_per_byte.py --text runs/cpu/data/corpus/val.jsonl \\
        --checkpoint base=runs/cpu/pretrain/checkpoints/final --checkpoint mix=... [--seq-len 256]

Each document is encoded alone with the checkpoint's own tokenizer, preceded by
<|endoftext|> as in the pretraining shards, and scored in non-overlapping windows of
`--seq-len` tokens (the first token of each window predicted from that end-of-text or the
previous window's last token); summed cross-entropy in bits over the UTF-8 bytes of the texts.
A corpus's val split is held out of every arm built from the same sources (split by file key,
corpus_units.split_is_val), so the baseline's val.jsonl is a fair common set.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from codeling.generate import load_for_inference
from codeling.io import iter_jsonl


@torch.no_grad()
def bits_per_byte(ckpt: Path, texts: list[str], seq_len: int) -> dict:
    model, tok = load_for_inference(ckpt)
    nats, n_bytes, n_tokens = 0.0, 0, 0
    for text in texts:
        ids = [tok.eot_id, *tok.encode(text)]
        n_bytes += len(text.encode())
        n_tokens += len(ids) - 1
        for start in range(0, len(ids) - 1, seq_len):
            window = torch.tensor([ids[start:start + seq_len + 1]])
            logits = model(window[:, :-1]).float()
            nats += F.cross_entropy(logits[0], window[0, 1:], reduction="sum").item()
    return {"bits_per_byte": nats / math.log(2) / n_bytes, "tokens_per_byte": n_tokens / n_bytes,
            "loss_per_token": nats / n_tokens, "bytes": n_bytes}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", type=Path, required=True, help="a jsonl of {'text': ...} rows")
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=DIR")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--max-docs", type=int, default=0, help="the first N documents (0: all)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    texts = [row["text"] for _, row in iter_jsonl(args.text)][:args.max_docs or None]
    print(f"{len(texts)} documents, {sum(len(t.encode()) for t in texts):,} bytes of {args.text}")
    print(f"{'checkpoint':<12} {'bits/byte':>9} {'tokens/byte':>11} {'nats/token':>10} {'s':>6}")
    for spec in args.checkpoint:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--checkpoint {spec!r}: expected NAME=DIR")
        t0 = time.perf_counter()
        r = bits_per_byte(Path(path), texts, args.seq_len)
        print(f"{name:<12} {r['bits_per_byte']:9.4f} {r['tokens_per_byte']:11.4f} "
              f"{r['loss_per_token']:10.4f} {time.perf_counter() - t0:6.0f}", flush=True)


if __name__ == "__main__":
    main()
