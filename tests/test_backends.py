"""Generation backends: local transformers models of three architectures (`--model hf:PATH`)
and OpenAI-compatible endpoints (`--endpoint URL`): a real `codeling serve`, and a real
http.server on 127.0.0.1 that stalls and answers 500."""

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import transformers

from codeling import cli
from codeling.generate import generate, load_for_inference
from codeling.hf_backend import hf_complete, load_hf
from codeling.io import read_jsonl
from codeling.tasks.benchmarks import load_benchmark, stop_sequences
from helpers import save_tiny_checkpoint, serving, tiny_model_and_tokenizer
from test_generate import PROMPTS

ARCHS = {
    "gpt2": lambda v, tok: transformers.GPT2Config(
        vocab_size=v, n_positions=256, n_embd=32, n_layer=2, n_head=2, **tok),
    "llama": lambda v, tok: transformers.LlamaConfig(
        vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, **tok),
    "qwen2": lambda v, tok: transformers.Qwen2Config(
        vocab_size=v, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, **tok),
}
CLASSES = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on 2 shared cores thrash
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    """Random-init models saved as transformers folders with codeling's real BPE tokenizer
    (saved as a PreTrainedTokenizerFast); a large init spread makes argmax ties impossible."""
    _, tok = tiny_model_and_tokenizer()
    special = {"bos_token_id": tok.eot_id, "eos_token_id": tok.eot_id,
               "pad_token_id": tok.pad_id, "initializer_range": 0.5}
    dirs = {}
    for name, make in ARCHS.items():
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(make(tok.vocab_size, special))
        path = tmp_path_factory.mktemp(name)
        model.save_pretrained(path)
        tok.save(path)
        dirs[name] = path
    return dirs


@pytest.mark.parametrize("arch", list(ARCHS))
def test_hf_model_batched_with_stops(hf_dirs, arch):
    model, tok = load_hf(hf_dirs[arch])
    assert type(model).__name__ == CLASSES[arch]
    free = hf_complete(model, tok, PROMPTS, max_new_tokens=16, batch_size=4)
    # left padding: each prompt gets exactly what it gets alone
    alone = [hf_complete(model, tok, [p], max_new_tokens=16, batch_size=1)[0] for p in PROMPTS]
    assert free == alone
    assert all(r["finish_reason"] == "length" and r["n_tokens"] == 16 for r in free)
    text = free[1]["completion"]
    assert len(text) > 6
    stop = text[3:6]
    cut = hf_complete(model, tok, PROMPTS, stop=[stop, "\x00never"], max_new_tokens=16,
                      batch_size=4)
    assert cut[1]["completion"] == text[:text.find(stop)]
    assert cut[1]["finish_reason"] == "stop" and cut[1]["n_tokens"] < 16
    for c, f in zip(cut, free):  # the others: their own text, cut where the stop appears
        want = f["completion"].split(stop)[0]
        assert c["completion"] == want
    # sampling: seeded, n copies per prompt, reproducible
    s1 = hf_complete(model, tok, PROMPTS[:2], max_new_tokens=6, temperature=0.8, n=3, seed=4)
    s2 = hf_complete(model, tok, PROMPTS[:2], max_new_tokens=6, temperature=0.8, n=3, seed=4)
    assert len(s1) == 6 and s1 == s2
    assert len({r["completion"] for r in s1}) > 1


def test_hf_path_on_a_codeling_checkpoint_matches_codeling_generate(tmp_path):
    # a codeling checkpoint is a transformers Llama folder: the two implementations agree
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    model, tok = load_hf(ckpt)
    got = hf_complete(model, tok, PROMPTS, ["\ndef", "\n#"], 20, batch_size=4)
    own, own_tok = load_for_inference(ckpt)
    want = generate(own, own_tok, PROMPTS, 20, stop=["\ndef", "\n#"], heal=False)
    assert [g["completion"] for g in got] == want


def test_evaluate_hf_model_end_to_end(hf_dirs, tmp_path):
    out = tmp_path / "ev"
    rc = cli.main(["evaluate", "--model", f"hf:{hf_dirs['llama']}", "--benchmark", "mini",
                   "--out", str(out), "--max-new-tokens", "8", "--workers", "1", "--quiet"])
    assert rc == 0
    tasks = load_benchmark("mini")
    samples = read_jsonl(out / "samples.jsonl")
    assert [s["task_id"] for s in samples] == [t.task_id for t in tasks]
    model, tok = load_hf(hf_dirs["llama"])
    want = hf_complete(model, tok, [t.prompt for t in tasks], stop_sequences("mini"), 8)
    assert [s["completion"] for s in samples] == [w["completion"] for w in want]
    results = read_jsonl(out / "results.jsonl")
    assert len(results) == len(tasks) and all("passed" in r for r in results)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pass@1"] == 0.0 and summary["benchmark"] == "mini"


def test_a_budget_past_the_context_is_capped_at_half(hf_dirs, capsys):
    model, tok = load_hf(hf_dirs["gpt2"])  # 256 positions
    (row,) = hf_complete(model, tok, ["def f():\n"], max_new_tokens=384)
    assert row["n_tokens"] <= 128 and (row["n_tokens"] == 128 or row["finish_reason"] == "stop")
    assert "generating at most 128 tokens" in capsys.readouterr().err


def test_missing_transformers_is_a_clear_error(hf_dirs, tmp_path):
    # transformers made unimportable in a child interpreter, as on an install without [hf]
    code = ("import sys; sys.modules['transformers'] = None; from codeling.cli import main; "
            f"sys.exit(main(['generate', '--model', 'hf:{hf_dirs['gpt2']}', '--benchmark', "
            f"'mini', '--out', '{tmp_path / 's.jsonl'}', '--quiet']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "pip install 'codeling[hf]'" in proc.stderr and "Traceback" not in proc.stderr


# ---- endpoints ----

@pytest.fixture(scope="module")
def served():
    model, tok = tiny_model_and_tokenizer()
    with serving(model, tok) as url:
        yield url, model, tok


def test_evaluate_endpoint_against_codeling_serve(served, tmp_path, capsys):
    url, model, tok = served
    out = tmp_path / "ev"
    # no --model: the first model the server lists; the URL without /v1 is completed
    rc = cli.main(["evaluate", "--endpoint", url, "--benchmark", "mini", "--out", str(out),
                   "--max-new-tokens", "8", "--temperature", "0", "--concurrency", "4",
                   "--workers", "1", "--quiet"])
    assert rc == 0
    tasks = load_benchmark("mini")
    samples = read_jsonl(out / "samples.jsonl")
    assert [s["task_id"] for s in samples] == [t.task_id for t in tasks]
    want = generate(model, tok, [t.prompt for t in tasks], max_new_tokens=8,
                    stop=stop_sequences("mini"))
    assert [s["completion"] for s in samples] == want
    assert len(read_jsonl(out / "results.jsonl")) == len(tasks)
    made = json.loads((out / "generation.json").read_text())
    assert made["model"] == "tiny" and made["samples"] == len(tasks)  # the listed model
    # a model the server does not have: refused at once, one line, exit 2
    bad = ["generate", "--endpoint", url, "--model", "gpt-4", "--benchmark", "mini",
           "--limit", "2", "--out", str(tmp_path / "bad.jsonl"), "--quiet"]
    capsys.readouterr()
    assert cli.main(bad) == 2
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "gpt-4" in err and "Traceback" not in err
    # sampled, n=2: one request per sample, seeded, both samples present
    rc = cli.main(["generate", "--endpoint", url + "/v1", "--model", "tiny", "--benchmark",
                   "mini", "--limit", "3", "--n", "2", "--temperature", "0.8",
                   "--max-new-tokens", "6", "--out", str(tmp_path / "s.jsonl"), "--quiet"])
    assert rc == 0
    rows = read_jsonl(tmp_path / "s.jsonl")
    assert [(r["task_id"], r["sample_idx"]) for r in rows] == [
        (t.task_id, j) for t in tasks[:3] for j in range(2)]


class Flaky(BaseHTTPRequestHandler):
    """An OpenAI-compatible stub with faults, chosen by the prompt's task: 'fail' answers 500
    that many times first, 'stall' sleeps past the client's timeout that many times first;
    'dead' always answers 500."""

    protocol_version = "HTTP/1.1"
    plan: ClassVar[dict[str, tuple[str, int]]] = {}
    prompts: ClassVar[dict[str, str]] = {}
    attempts: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        task = self.prompts[body["prompt"]]
        with self.lock:
            k = self.attempts[task] = self.attempts.get(task, 0) + 1
        fault, times = self.plan.get(task, ("", 0))
        try:
            if fault == "stall" and k <= times:
                time.sleep(1.5)  # longer than the client's 0.4 s deadline
            if (fault == "fail" and k <= times) or fault == "dead":
                return self._send(500, {"error": {"message": "overloaded"}})
            self._send(200, {"choices": [{"index": 0, "text": f"    return {k}\ndef more():",
                                          "finish_reason": "stop"}],
                             "usage": {"completion_tokens": 5}})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a stalled answer

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


def test_endpoint_stalls_and_500s_are_retried_reported_and_resumed(tmp_path, capsys):
    tasks = load_benchmark("mini")[:5]
    Flaky.prompts = {t.prompt: t.task_id for t in tasks}
    Flaky.plan = {"mini/1": ("fail", 2), "mini/2": ("stall", 1), "mini/3": ("dead", 0)}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    out = tmp_path / "s.jsonl"
    argv = ["generate", "--endpoint", url, "--model", "m", "--benchmark", "mini", "--limit",
            "5", "--out", str(out), "--retries", "2", "--request-timeout", "0.4",
            "--concurrency", "2", "--quiet"]
    try:
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "1 of 5 samples failed after 2 retries (first: mini/3 sample 0: HTTP 500" in err
        assert "--resume" in err
        assert Flaky.attempts == {"mini/0": 1, "mini/1": 3, "mini/2": 2, "mini/3": 3,
                                  "mini/4": 1}
        rows = read_jsonl(out)  # what was made is kept, and nothing for the failed sample
        assert sorted(r["task_id"] for r in rows) == ["mini/0", "mini/1", "mini/2", "mini/4"]
        by_task = {r["task_id"]: r for r in rows}
        assert by_task["mini/1"]["completion"] == "    return 3"  # cut at the stop "\ndef"
        assert by_task["mini/2"]["completion"] == "    return 2"
        # the endpoint recovers; --resume asks only for the missing sample (a line cut off
        # by a crash mid-append is dropped, not an error)
        Flaky.plan = {}
        with open(out, "a") as f:
            f.write('{"task_id": "mini/3", "sample_idx": 0, "compl')
        assert cli.main([*argv, "--resume"]) == 0
        assert json.loads(capsys.readouterr().out)["made"] == 1
        assert Flaky.attempts["mini/3"] == 4 and Flaky.attempts["mini/0"] == 1
        rows = read_jsonl(out)
        assert [r["task_id"] for r in rows] == [t.task_id for t in tasks]  # in task order
        assert rows[3]["completion"] == "    return 4"
        assert [r for r in rows if r["task_id"] != "mini/3"] == [
            by_task[t.task_id] for t in tasks if t.task_id != "mini/3"]
    finally:
        server.shutdown()
        server.server_close()


def test_bad_backend_arguments(tmp_path):
    base = ["generate", "--benchmark", "mini", "--out", str(tmp_path / "s.jsonl"), "--quiet"]
    assert cli.main([*base, "--model", str(tmp_path)]) == 2  # no hf: prefix
    assert cli.main([*base, "--model", f"hf:{tmp_path / 'nope'}"]) == 2
    assert cli.main([*base, "--model", f"hf:{tmp_path}"]) == 2  # no config.json
    assert cli.main([*base, "--endpoint", "ftp://x"]) == 2
    assert cli.main(base) == 2  # no source at all
    assert not Path(tmp_path / "s.jsonl").exists()
