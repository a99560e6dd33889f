"""Generation with the KV cache against plain full-forward decoding, on a tiny real model."""

import json

import pytest
import torch

from codeling import cli
from codeling.generate import complete, generate, generate_samples, load_for_inference
from codeling.model import CodelingLM
from codeling.tasks.schema import Task, write_tasks
from helpers import save_tiny_checkpoint, tiny_model_and_tokenizer

PROMPTS = [
    "def add(a, b):\n",
    'import os\n\n\ndef read_lines(path):\n    """Return the lines of a file."""\n',
    "x",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):",
]


@pytest.fixture(scope="module")
def lm():
    return tiny_model_and_tokenizer()


def reference_greedy(model, tok, prompt: str, max_new: int) -> list[int]:
    """Greedy decoding by re-running the whole sequence each step: no cache, no padding."""
    ids, out = tok.encode(prompt), []
    with torch.no_grad():
        for _ in range(max_new):
            t = int(model(torch.tensor([ids + out]))[0, -1].argmax())
            if t in (tok.eot_id, tok.pad_id):
                break
            out.append(t)
    return out


def test_greedy_matches_full_forward_with_left_padding(lm):
    model, tok = lm
    got = complete(model, tok, PROMPTS, max_new_tokens=20, heal=False, batch_size=len(PROMPTS))
    assert len({len(tok.encode(p)) for p in PROMPTS}) == len(PROMPTS)  # really padded
    for prompt, c in zip(PROMPTS, got):
        want = reference_greedy(model, tok, prompt, 20)
        assert c.token_ids == want
        assert c.text == tok.decode(want)
        assert c.prompt_tokens == len(tok.encode(prompt))
        assert c.finish_reason == ("length" if len(want) == 20 else "stop")


def test_batched_equals_one_by_one_with_stops(lm):
    model, tok = lm
    free = generate(model, tok, PROMPTS, max_new_tokens=24, heal=False)
    # stop sequences taken from the middle of two completions, so those rows finish early
    # and drop out of the batch while the others go on
    stop = [free[0][5:8], free[3][10:12]]
    batched = complete(model, tok, PROMPTS, max_new_tokens=24, stop=stop, batch_size=4)
    alone = [complete(model, tok, [p], max_new_tokens=24, stop=stop, batch_size=1)[0]
             for p in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in alone]
    assert [c.token_ids for c in batched] == [c.token_ids for c in alone]


def test_stop_sequence_truncates(lm):
    model, tok = lm
    free = complete(model, tok, PROMPTS[:2], max_new_tokens=30, heal=False)
    assert all(c.finish_reason == "length" and len(c.text) > 12 for c in free)
    stop = free[0].text[6:9]
    cut = complete(model, tok, PROMPTS[:1], max_new_tokens=30, stop=[stop], heal=False)[0]
    assert cut.text == free[0].text[:free[0].text.find(stop)]
    assert stop not in cut.text and cut.finish_reason == "stop"
    assert cut.completion_tokens < 30  # it stopped generating, not just cut the text


def test_token_healing_constrains_first_token(lm):
    model, tok = lm
    prompt = PROMPTS[1]
    ids = tok.encode(prompt)
    last = tok.decode(ids[-1:])
    got = complete(model, tok, [prompt], max_new_tokens=6)[0]
    first = tok.decode(got.token_ids[:1])
    assert first.startswith(last)
    assert prompt + got.text == prompt[:-len(last)] + tok.decode(got.token_ids)
    # reference: the same constraint applied by hand on a full forward
    allowed = torch.tensor([i not in (tok.eot_id, tok.pad_id) and tok.decode([i]).startswith(last)
                            for i in range(model.config.vocab_size)])
    with torch.no_grad():
        logits = model(torch.tensor([ids[:-1]]))[0, -1]
    assert got.token_ids[0] == int(logits.masked_fill(~allowed, float("-inf")).argmax())


def test_sampling_reproducible_and_top_p_tiny_is_greedy(lm):
    model, tok = lm
    kw = {"max_new_tokens": 16, "temperature": 1.0, "heal": False}
    a = generate(model, tok, PROMPTS, seed=7, batch_size=4, **kw)
    b = generate(model, tok, PROMPTS, seed=7, batch_size=1, **kw)  # batching must not matter
    c = generate(model, tok, PROMPTS, seed=8, batch_size=4, **kw)
    assert a == b
    assert a != c
    twice = generate(model, tok, [PROMPTS[0]] * 2, seed=7, **kw)  # n samples of one prompt
    assert twice[0] != twice[1]
    nucleus = generate(model, tok, PROMPTS, seed=3, top_p=1e-6, **kw)
    greedy = generate(model, tok, PROMPTS, max_new_tokens=16, heal=False)
    assert nucleus == greedy


def test_bad_arguments(lm):
    model, tok = lm
    with pytest.raises(ValueError, match="max_new_tokens"):
        complete(model, tok, ["x"], max_new_tokens=0)
    with pytest.raises(ValueError, match="max_seq_len"):
        complete(model, tok, ["x"], max_new_tokens=256)
    with pytest.raises(ValueError, match="top_p"):
        complete(model, tok, ["x"], max_new_tokens=4, top_p=0.0)


def test_prompt_ending_in_special_token(lm):
    model, tok = lm
    prompt = "def f():<|endoftext|>"
    got = complete(model, tok, [prompt], max_new_tokens=4)[0]
    # nothing to heal after a special token: the first pick is the unconstrained argmax
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([tok.encode(prompt)]))[0, -1].float(), -1)
    first = int(logp.argmax())
    assert got.logprobs[0] == pytest.approx(float(logp[first]), abs=1e-4)
    assert got.token_ids[:1] == ([] if first == tok.eot_id else [first])


def test_generate_samples_greedy_n(lm):
    model, tok = lm
    tasks = [Task("t/0", PROMPTS[0], "add", "    return a + b\n", "def check(f): pass\n")]
    rows = generate_samples(model, tok, tasks, n=3, max_new_tokens=8)
    assert [r["sample_idx"] for r in rows] == [0, 1, 2]
    assert len({r["completion"] for r in rows}) == 1


def test_load_lora_adapter(tmp_path):
    from peft import LoraConfig, get_peft_model

    base_dir = save_tiny_checkpoint(tmp_path / "base")
    base, tok = load_for_inference(base_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    cfg_path = tmp_path / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(base_dir)
    cfg_path.write_text(json.dumps(cfg))
    x = torch.tensor([tok.encode(PROMPTS[1])])
    with torch.no_grad():
        want = peft_model(x)
        plain = load_for_inference(base_dir)[0](x)
    merged, tok2 = load_for_inference(tmp_path / "adapter")
    with torch.no_grad():
        got = merged(x)
    assert isinstance(merged, CodelingLM) and tok2.vocab_size == tok.vocab_size
    assert not torch.allclose(plain, want, atol=1e-3)  # the adapter really changes outputs
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_cli_writes_samples(tmp_path, capsys):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    tasks = [Task(f"t/{i}", p, "f", "    pass\n", "def check(f):\n    pass\n")
             for i, p in enumerate(PROMPTS[:3])]
    write_tasks(tmp_path / "tasks.jsonl", tasks)
    out = tmp_path / "samples.jsonl"
    rc = cli.main(["generate", "--checkpoint", str(ckpt), "--problems",
                   str(tmp_path / "tasks.jsonl"), "--out", str(out), "--n", "2",
                   "--temperature", "0.8", "--max-new-tokens", "12", "--seed", "1",
                   "--limit", "2", "--quiet"])
    assert rc == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["task_id"], r["sample_idx"]) for r in rows] == [
        ("t/0", 0), ("t/0", 1), ("t/1", 0), ("t/1", 1)]
    for r in rows:
        assert isinstance(r["completion"], str) and r["finish_reason"] in ("stop", "length")
        assert 1 <= r["n_tokens"] <= 12
        assert not any(s in r["completion"] for s in ("\ndef", "\nclass", "\nif", "\n#"))
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["samples"] == 4
    # the same seed gives the same file
    again = tmp_path / "again.jsonl"
    cli.main(["generate", "--checkpoint", str(ckpt), "--problems", str(tmp_path / "tasks.jsonl"),
              "--out", str(again), "--n", "2", "--temperature", "0.8", "--max-new-tokens", "12",
              "--seed", "1", "--limit", "2", "--quiet"])
    assert again.read_text() == out.read_text()


def test_cli_bad_problems_file(tmp_path, capsys):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    (tmp_path / "bad.jsonl").write_text('{"task_id": "a", "prompt": "x"}\n')
    rc = cli.main(["generate", "--checkpoint", str(ckpt), "--problems",
                   str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "s.jsonl")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:1" in err and "entry_point" in err
    assert not (tmp_path / "s.jsonl").exists()


def test_cli_benchmark_mini(tmp_path):
    from codeling.tasks.benchmarks import load_benchmark, stop_sequences

    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "samples.jsonl"
    assert cli.main(["generate", "--checkpoint", str(ckpt), "--benchmark", "mini", "--out",
                     str(out), "--max-new-tokens", "8", "--limit", "3", "--quiet"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["task_id"] for r in rows] == [t.task_id for t in load_benchmark("mini")[:3]]
    assert not any(s in r["completion"] for r in rows for s in stop_sequences("mini"))


def test_shared_prefill_equals_repeated_prompts(lm):
    """n copies of a prompt prefilled once give the same samples as the prompt repeated n times
    (per-copy prefill), whatever the batch size."""
    model, tok = lm
    kw = {"max_new_tokens": 16, "temperature": 1.0, "seed": 5}
    shared = complete(model, tok, PROMPTS, n=3, batch_size=6, **kw)
    repeated = complete(model, tok, [p for p in PROMPTS for _ in range(3)], batch_size=6, **kw)
    small = complete(model, tok, PROMPTS, n=3, batch_size=2, **kw)  # a group split over batches
    assert [c.token_ids for c in shared] == [c.token_ids for c in repeated]
    assert [c.token_ids for c in small] == [c.token_ids for c in repeated]
    assert len({tuple(c.token_ids) for c in shared[:3]}) > 1  # the copies really differ
    for a, b in zip(shared, repeated):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-5)


def test_logprobs_are_the_models_own(lm):
    """Each token's log-probability equals log_softmax of a plain full forward (no cache)."""
    model, tok = lm
    got = complete(model, tok, PROMPTS[:2], max_new_tokens=10, heal=False, temperature=0.7,
                   seed=1)
    for prompt, c in zip(PROMPTS[:2], got):
        ids = tok.encode(prompt)
        assert len(c.logprobs) == c.completion_tokens
        with torch.no_grad():
            full = torch.log_softmax(model(torch.tensor([ids + c.token_ids]))[0].float(), -1)
        want = [float(full[len(ids) - 1 + i, t]) for i, t in enumerate(c.token_ids)]
        assert c.logprobs[:len(want)] == pytest.approx(want, abs=1e-4)
        assert c.mean_logprob == pytest.approx(sum(c.logprobs) / len(c.logprobs))


def test_cli_defaults_fit_a_smoke_size_checkpoint(tmp_path, capsys):
    # the default budget (eval.max_new_tokens 384) exceeds this model's 256-token context
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "s.jsonl"
    rc = cli.main(["generate", "--checkpoint", str(ckpt), "--benchmark", "mini", "--out",
                   str(out), "--limit", "2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert err.count("max_new_tokens 384 leaves no room") == 1  # said once, not per batch
    assert "generating at most 128 tokens" in err and "Traceback" not in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(0 < r["n_tokens"] <= 128 for r in rows)


def test_cli_bad_setting_is_one_line_not_a_traceback(tmp_path, capsys):
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt")
    rc = cli.main(["generate", "--checkpoint", str(ckpt), "--benchmark", "mini", "--out",
                   str(tmp_path / "s.jsonl"), "--limit", "1", "--quiet", "--temperature", "0.5",
                   "eval.top_p=0.0"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("codeling generate: error: ") and "top_p" in last
