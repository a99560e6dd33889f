"""The batch decoder against a plain reference (a full forward per token, no cache, no padding,
stop sequences looked for in the whole decoded text), on a tiny real model."""

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from codeling.decode import _length_groups, _make_rows, _stop_watch, _token_strings, decode_batch
from codeling.generate import complete
from helpers import tiny_model_and_tokenizer

# ragged: 1 to ~30 tokens, so a batch is prefilled in several length groups
PROMPTS = [
    "def add(a, b):\n",
    'import os\n\n\ndef read_lines(path):\n    """Return the lines of a file."""\n',
    "x",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):",
    "for i in range(10):\n    print(",
    "import json\n",
    "def f(x):\n    return [y * 2 for y in x if y",
    "# sort a list\n",
]


@pytest.fixture(scope="module")
def lm():
    return tiny_model_and_tokenizer()


def reference(model, tok, prompt: str, max_new: int, stop: list[str]) -> tuple[list[int], str]:
    """(ids, finish reason) of greedy decoding by a full forward per token; a stop sequence
    ends it as soon as it appears anywhere in the decoded completion."""
    ids, out = tok.encode(prompt), []
    with torch.no_grad():
        for _ in range(max_new):
            t = int(model(torch.tensor([ids + out]))[0, -1].argmax())
            if t in (tok.eot_id, tok.pad_id):
                return out, "eot"
            out.append(t)
            if any(s in tok.decode(out) for s in stop):
                return out, "stop"
    return out, "length"


def test_prompts_fill_several_prefill_groups(lm):
    _, tok = lm
    lengths = sorted((len(ids) for ids in tok.encode_batch(PROMPTS)), reverse=True)
    groups = _length_groups(lengths)
    assert len(groups) >= 3
    assert [a for a, _ in groups][1:] == [b for _, b in groups][:-1]  # contiguous, all rows
    assert all(4 * lengths[b - 1] >= 3 * lengths[a] for a, b in groups)  # padding under 1/4


def test_greedy_equals_reference_across_batch_sizes_and_stops(lm):
    model, tok = lm
    free = [reference(model, tok, p, 24, [])[0] for p in PROMPTS]
    # stops cut from the middle of three completions, so those rows end early and leave the
    # batch while the others go on
    stop = [tok.decode(free[0])[4:7], tok.decode(free[3])[9:11], tok.decode(free[5])[2:5]]
    stop = [s for s in stop if s]
    want = [reference(model, tok, p, 24, stop) for p in PROMPTS]
    assert {reason for _, reason in want} >= {"stop", "length"}
    for batch_size in (1, 3, 8):
        got = complete(model, tok, PROMPTS, max_new_tokens=24, stop=stop, heal=False,
                       batch_size=batch_size)
        for c, (ids, reason) in zip(got, want):
            assert c.token_ids == ids
            assert c.finish_reason == ("length" if reason == "length" else "stop")
            text = tok.decode(ids)
            cut = min([i for i in (text.find(s) for s in stop) if i >= 0], default=len(text))
            assert c.text == text[:cut]
            assert c.completion_tokens == len(ids) + (reason == "eot")


def test_reading_back_every_few_steps_changes_nothing(lm):
    """The GPU reads picks back every 8 steps: rows that finish between reads run a few
    extra steps whose tokens are dropped. On the CPU it reads every step; both agree."""
    model, tok = lm
    stop = ["\n"]
    runs = []
    for sync_every in (1, 5):
        rows = _make_rows(tok, PROMPTS, 200, True, 3, True, 2)
        rows.sort(key=lambda r: (-len(r.context), r.index))
        decode_batch(model, tok, rows, 20, 0.9, 1.0, stop, False, sync_every=sync_every)
        rows.sort(key=lambda r: r.index)
        runs.append(rows)
    assert [(r.ids, r.done) for r in runs[0]] == [(r.ids, r.done) for r in runs[1]]
    assert {r.done for r in runs[0]} >= {"stop", "length"}
    for a, b in zip(*runs):  # rows leave the batch at other steps: matmul rounding only
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_stop_watch_holds_every_token_that_can_end_a_stop(lm):
    _, tok = lm
    stop = ("\ndef", "):")
    watch = _stop_watch(tok, stop)
    strings = _token_strings(tok)
    for i, s in enumerate(strings):
        if "f" in s or ":" in s or "\ufffd" in s:
            assert i in watch
        else:
            assert i not in watch
    assert 0 < len(watch) < len(strings) // 2  # most tokens skip the check


class _AttentionInputs(TorchFunctionMode):
    """Records the dtypes of q, k and v at each attention call (the real call still runs)."""

    def __init__(self):
        super().__init__()
        self.dtypes = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.scaled_dot_product_attention:
            self.dtypes.append(tuple(a.dtype for a in args[:3]))
        return func(*args, **(kwargs or {}))


def test_rope_keeps_bf16_into_attention_under_autocast(lm):
    model, tok = lm
    ids = torch.tensor([tok.encode(PROMPTS[1])])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), _AttentionInputs() as seen:
        model(ids)
    assert seen.dtypes and all(d == (torch.bfloat16,) * 3 for d in seen.dtypes)


def test_bf16_generation_runs_and_stays_close_to_fp32(lm):
    """The GPU's default (bf16 autocast) on the CPU: the same code path, outputs close to fp32
    (the same first tokens; log-probabilities within bf16's rounding). fp32 stays the CPU's
    default, whose outputs equal the reference above."""
    model, tok = lm
    fp32 = complete(model, tok, PROMPTS, max_new_tokens=8, heal=False, batch_size=8)
    bf16 = complete(model, tok, PROMPTS, max_new_tokens=8, heal=False, batch_size=8,
                    dtype=torch.bfloat16)
    assert sum(a.token_ids[:1] == b.token_ids[:1] for a, b in zip(fp32, bf16)) >= 7
    for a, b in zip(fp32, bf16):
        assert b.logprobs[0] == pytest.approx(a.logprobs[0], abs=0.15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_sampling_on_device_reproducible_and_batch_free(lm):
    model, tok = lm
    model = model.to("cuda")
    try:
        kw = {"max_new_tokens": 12, "temperature": 1.0, "heal": False, "seed": 4}
        a = complete(model, tok, PROMPTS, batch_size=8, **kw)
        b = complete(model, tok, PROMPTS, batch_size=1, **kw)
        assert [c.token_ids for c in a] == [c.token_ids for c in b]
        greedy = complete(model, tok, PROMPTS, max_new_tokens=12, heal=False,
                          dtype=torch.float32)
        want = complete(model.cpu(), tok, PROMPTS, max_new_tokens=12, heal=False)
        assert sum(x.token_ids == y.token_ids for x, y in zip(greedy, want)) >= 7
    finally:
        model.cpu()
