"""`codeling serve` on 127.0.0.1, called with the official openai client and raw HTTP."""

import http.client
import json
import subprocess
import sys
import threading

import openai
import pytest

from codeling.generate import generate
from codeling.serve import make_server
from helpers import save_tiny_checkpoint, tiny_model_and_tokenizer
from test_generate import PROMPTS


@pytest.fixture(scope="module")
def served():
    model, tok = tiny_model_and_tokenizer()
    server = make_server(model, tok, "127.0.0.1", 0, model_name="tiny", quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    client = openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="unused", max_retries=0,
                           timeout=60)
    yield client, model, tok, (host, port)
    server.shutdown()
    server.server_close()


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
    client, model, tok, _ = served
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
    client, model, tok, _ = served
    r = client.completions.create(model="tiny", prompt=PROMPTS[:3], max_tokens=10,
                                  temperature=0)
    assert [c.text for c in r.choices] == generate(model, tok, PROMPTS[:3], max_new_tokens=10)
    assert all(c.finish_reason == "length" for c in r.choices if c.text)


def test_chat_completions(served):
    client, model, tok, _ = served
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
    client, _, _, addr = served
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
