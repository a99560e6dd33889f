"""`codeling serve` under concurrent load: requests batched by the engine against the same
requests one after another (what a server with one lock around the model gives at best).

A random model of the cpu preset's shape (6 x 192, vocab 4096, so each step costs what the
real one does) with a tokenizer trained on a few stdlib files; greedy, `ignore_eos`, so every
request makes exactly --tokens tokens. It prints the one-request latency, the serial and the
concurrent wall time for --requests requests and their ratio, time to first streamed token,
and checks the concurrent answers equal the serial ones.

    .venv/bin/python bench/serve.py [--requests 8] [--tokens 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import string
import textwrap
import threading
import time
from pathlib import Path

import openai
import torch

from codeling.config import ModelConfig
from codeling.model import CodelingLM
from codeling.serve import make_server
from codeling.tokenizer import train_tokenizer

PROMPTS = ["def add(a, b):\n", "class Stack:\n    def push(self, item):\n",
           'def read_lines(path):\n    """Return the lines of a file."""\n', "import os\n\n"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    texts = [Path(m.__file__).read_text() for m in (json, string, textwrap, argparse)]
    tok = train_tokenizer(texts, vocab_size=4096)
    torch.manual_seed(0)
    model = CodelingLM(ModelConfig(vocab_size=tok.vocab_size, n_layer=6, n_head=4, n_kv_head=4,
                                   d_model=192, max_seq_len=512)).eval()
    server = make_server(model, tok, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    clients = [openai.OpenAI(base_url=url, api_key="-", max_retries=0, timeout=600)
               for _ in range(args.requests)]
    prompts = [PROMPTS[i % len(PROMPTS)] + "#" * (i // len(PROMPTS)) for i in range(args.requests)]
    kw = {"model": "codeling", "max_tokens": args.tokens, "temperature": 0,
          "extra_body": {"ignore_eos": True}}

    def ask(i: int, out: dict) -> None:
        out[i] = clients[i].completions.create(prompt=prompts[i], **kw).choices[0].text

    ask(0, {})  # warm-up
    serial: dict[int, str] = {}
    t = time.perf_counter()
    for i in range(args.requests):
        ask(i, serial)
    t_serial = time.perf_counter() - t
    together: dict[int, str] = {}
    threads = [threading.Thread(target=ask, args=(i, together)) for i in range(args.requests)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t_together = time.perf_counter() - t
    t = time.perf_counter()
    stream = clients[0].completions.create(prompt=prompts[0], stream=True, **kw)
    first = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].text:
            first = time.perf_counter() - t
    t_stream = time.perf_counter() - t
    print(json.dumps({
        "requests": args.requests, "tokens_each": args.tokens, "threads": args.threads,
        "one_request_s": round(t_serial / args.requests, 3),
        "serial_s": round(t_serial, 3), "concurrent_s": round(t_together, 3),
        "speedup": round(t_serial / t_together, 2),
        "concurrent_over_one": round(t_together / (t_serial / args.requests), 2),
        "peak_batch": server.app.engine.stats["peak_batch"],
        "stream_first_token_s": round(first or 0.0, 3), "stream_total_s": round(t_stream, 3),
        "same_answers": serial == together}))
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
