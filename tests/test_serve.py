"""`codeling serve` on 127.0.0.1, called with the official openai client and raw HTTP."""

import http.client
import json
import subprocess
import sys
import threading
import time

import openai
import pytest
import torch

from codeling.config import ModelConfig
from codeling.generate import complete, generate
from codeling.model import CodelingLM
from codeling.serve import make_server
from helpers import save_tiny_checkpoint, tiny_model_and_tokenizer
from test_generate import PROMPTS


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two intra-op threads on 2 shared cores thrash (each op waits for both cores), which
    would swamp what these tests measure: the batching."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def served():
    model, tok = tiny_model_and_tokenizer()
    server = make_server(model, tok, "127.0.0.1", 0, model_name="tiny", quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    client = openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="unused", max_retries=0,
                           timeout=60)
    yield client, model, tok, (host, port), server
    server.shutdown()
    server.server_close()


def start(model, tok, max_batch: int = 32):
    server = make_server(model, tok, "127.0.0.1", 0, model_name="tiny", quiet=True,
                         max_batch=max_batch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}/v1"


@pytest.fixture(scope="module")
def long_lm():
    """The tiny model with room for 2,000 new tokens, so a request outlives the client's
    reaction time by far."""
    _, tok = tiny_model_and_tokenizer()
    torch.manual_seed(1)
    cfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=4, n_kv_head=2, d_model=64,
                      max_seq_len=2048, init_std=0.3)
    return CodelingLM(cfg).eval(), tok


def raw(addr, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(*addr, timeout=30)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    status, payload = resp.status, json.loads(resp.read())
    conn.close()
    return status, payload


def test_models(served):
    client = served[0]
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert models.data[0].object == "model"


def test_completions_n_stop_seed(served):
    client, model, tok, *_ = served
    free = generate(model, tok, [PROMPTS[1]], max_new_tokens=20, temperature=0.9, seed=5)[0]
    stop = free[4:6]
    kw = {"model": "tiny", "prompt": PROMPTS[1], "max_tokens": 20, "temperature": 0.9, "n": 2,
          "seed": 5}
    r = client.completions.create(stop=stop, **kw)
    assert r.object == "text_completion" and r.model == "tiny" and r.id.startswith("cmpl-")
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].text == free[:free.find(stop)]  # the same seed, row 0: same sample
    assert r.choices[0].finish_reason == "stop"
    assert all(stop not in c.text for c in r.choices)
    assert r.usage.prompt_tokens == len(tok.encode(PROMPTS[1]))
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    again = client.completions.create(stop=[stop, "\n\n\n"], **kw)
    assert [c.text for c in again.choices] == [c.text for c in r.choices]
    other = client.completions.create(**{**kw, "seed": 6, "n": 1, "max_tokens": 8})
    assert other.choices[0].finish_reason in ("stop", "length")


def test_completions_greedy_list_of_prompts(served):
    client, model, tok, *_ = served
    r = client.completions.create(model="tiny", prompt=PROMPTS[:3], max_tokens=10,
                                  temperature=0)
    assert [c.text for c in r.choices] == generate(model, tok, PROMPTS[:3], max_new_tokens=10)
    assert all(c.finish_reason == "length" for c in r.choices if c.text)


def test_chat_completions(served):
    client, model, tok, *_ = served
    r = client.chat.completions.create(
        model="tiny", max_tokens=12, temperature=0,
        messages=[{"role": "system", "content": "You write Python."},
                  {"role": "user", "content": "ignored: not the last user message"},
                  {"role": "assistant", "content": "ok"},
                  {"role": "user", "content": PROMPTS[0]}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    msg = r.choices[0].message
    assert msg.role == "assistant"
    assert msg.content == generate(model, tok, [PROMPTS[0]], max_new_tokens=12)[0]
    assert r.usage.prompt_tokens == len(tok.encode(PROMPTS[0]))


def test_bad_requests(served):
    client, _, _, addr, _ = served
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="tiny", prompt="x", temperature=5)
    assert e.value.status_code == 400 and "temperature" in e.value.message
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt="x", max_tokens=100000)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="tiny", messages=[{"role": "system",
                                                                "content": "no user"}])
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4", prompt="x")
    assert e.value.body["code"] == "model_not_found"
    status, body = raw(addr, "POST", "/v1/completions", b"{not json")
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, body = raw(addr, "POST", "/v1/completions", json.dumps({"model": "tiny"}).encode())
    assert status == 400 and body["error"]["param"] == "prompt"
    status, body = raw(addr, "GET", "/v1/nothing")
    assert status == 404 and "message" in body["error"]
    # the server still answers after errors
    assert client.completions.create(model="tiny", prompt="x", max_tokens=2).choices


def test_cli_port_zero_prints_url(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    proc = subprocess.Popen([sys.executable, "-m", "codeling.cli", "serve", "--checkpoint",
                             str(ckpt), "--port", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "codeling serve: model 'ckpt' at http://127.0.0.1:" in line, proc.stderr.read()
        url = line.split(" at ")[1].strip()
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list().data] == ["ckpt"]
        assert len(client.completions.create(model="ckpt", prompt="def",
                                             max_tokens=3).choices) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_stream_yields_tokens_as_they_are_made(long_lm):
    model, tok = long_lm
    server, url = start(model, tok)
    try:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        stream = client.completions.create(model="tiny", prompt=PROMPTS[0], max_tokens=300,
                                           temperature=0, stream=True,
                                           extra_body={"ignore_eos": True})
        texts, live_at_first, finish = [], None, None
        for chunk in stream:
            (choice,) = chunk.choices
            if choice.text and live_at_first is None:
                live_at_first = server.app.engine.live()  # still generating the rest?
            texts.append(choice.text)
            finish = choice.finish_reason or finish
        assert live_at_first == 1
        assert sum(bool(t) for t in texts) > 10  # many pieces, not one at the end
        want = complete(model, tok, [PROMPTS[0]], 300, ignore_eot=True)[0]
        assert "".join(texts) == want.text and finish == "length"
        # the wire format: `data: {json}` events, the last one `data: [DONE]`
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("POST", "/v1/chat/completions", json.dumps({
            "model": "tiny", "messages": [{"role": "user", "content": PROMPTS[1]}],
            "max_tokens": 12, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}),
            {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.getheader("Content-Type") == "text/event-stream"
        events = [e for e in resp.read().decode().split("\n\n") if e]
        assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
        chunks = [json.loads(e[6:]) for e in events[:-1]]
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert chunks[-1]["usage"]["completion_tokens"] == 12
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
        assert text == generate(model, tok, [PROMPTS[1]], max_new_tokens=12)[0]
    finally:
        server.shutdown()
        server.server_close()


def test_concurrent_requests_are_batched(served):
    client, model, tok, _, server = served
    app_engine = server.app.engine
    kw = {"model": "tiny", "max_tokens": 48, "temperature": 0, "extra_body": {"ignore_eos": True}}
    prompts = [PROMPTS[i % len(PROMPTS)] + " " * (i // len(PROMPTS)) for i in range(8)]
    one = []
    for _ in range(2):
        t = time.perf_counter()
        client.completions.create(prompt=prompts[0], **kw)
        one.append(time.perf_counter() - t)
    results: dict[int, str] = {}
    clients = [openai.OpenAI(base_url=client.base_url, api_key="unused", max_retries=0,
                             timeout=60) for _ in range(8)]

    def ask(i: int) -> None:
        results[i] = clients[i].completions.create(prompt=prompts[i], **kw).choices[0].text

    app_engine.stats["peak_batch"] = 0
    t = time.perf_counter()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    eight = time.perf_counter() - t
    assert app_engine.stats["peak_batch"] >= 2  # requests really shared steps
    assert eight < 8 * min(one), (eight, one)
    # rows that joined the batch at different steps still get exactly their own completion
    want = complete(model, tok, prompts, 48, ignore_eot=True)
    assert [results[i] for i in range(8)] == [c.text for c in want]


def test_disconnect_mid_stream_frees_the_slot(long_lm):
    model, tok = long_lm
    server, url = start(model, tok, max_batch=1)
    try:
        engine = server.app.engine
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        stream = client.completions.create(model="tiny", prompt="x", max_tokens=2000,
                                           temperature=0, stream=True,
                                           extra_body={"ignore_eos": True})
        next(iter(stream))
        stream.close()  # hang up after the first chunk
        deadline = time.monotonic() + 20
        while engine.live() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.live() == 0 and engine.stats["cancelled_rows"] == 1
        assert engine.stats["tokens"] < 1500  # it stopped, rather than ran to max_tokens
        # the one slot is free: the next request is served
        r = client.completions.create(model="tiny", prompt="def", max_tokens=3, temperature=0)
        assert r.choices[0].finish_reason in ("stop", "length")
        # a client that hangs up while waiting for a whole (non-streamed) answer, too
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("POST", "/v1/completions", json.dumps({
            "model": "tiny", "prompt": "x", "max_tokens": 2000, "temperature": 0,
            "ignore_eos": True}), {"Content-Type": "application/json"})
        while not engine.live() and time.monotonic() < deadline:
            time.sleep(0.01)
        conn.close()
        deadline = time.monotonic() + 20
        while engine.live() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.live() == 0 and engine.stats["cancelled_rows"] == 2
    finally:
        server.shutdown()
        server.server_close()
