"""Prompt-lookup decoding: its drafts, and that it gives plain greedy decoding's tokens."""

import pytest
import torch

from codeling.config import ModelConfig
from codeling.decode import _make_rows, _prefill
from codeling.decode_step import for_model
from codeling.generate import complete
from codeling.lookup import Drafter, decode_lookup
from codeling.model import CodelingLM
from helpers import tiny_model_and_tokenizer
from test_decode import PROMPTS, reference


@pytest.fixture(scope="module")
def lm():
    return tiny_model_and_tokenizer()


def test_drafts_follow_the_latest_earlier_occurrence_of_the_longest_suffix():
    d = Drafter([5, 1, 2, 9, 1, 2, 3, 4, 7, 1, 2], k=3)
    assert d.draft(10) == [3, 4, 7]  # (1, 2) last ended at index 5, not 2
    assert d.draft(2) == [3, 4]  # no further than the budget
    d.append(8)
    assert d.draft(10) == []  # 8 never occurred before
    d.append(1)
    assert d.draft(10) == []  # (8, 1) never occurred; a lone token is not enough
    d.append(2)
    assert d.draft(3) == [8, 1, 2]  # (8, 1, 2) is new, (1, 2) last ended before the 8
    d = Drafter([4, 4, 4], k=2)
    assert d.draft(10) == [4, 4]  # the tail is no match for itself; a repeat goes on
    assert Drafter([1, 2, 3, 1, 2], k=5).draft(10) == [3, 1, 2, 3, 1]


def test_lookup_gives_greedy_tokens_in_fewer_forwards(lm):
    model, tok = lm
    stop = ["\n\n\n"]
    for prompt in PROMPTS:
        want = reference(model, tok, prompt, 40, stop)[0]
        for k in (1, 4, 8):
            got = complete(model, tok, [prompt], max_new_tokens=40, stop=stop, heal=False,
                           batch_size=1, lookup=k)[0]
            plain = complete(model, tok, [prompt], max_new_tokens=40, stop=stop, heal=False,
                             batch_size=1, lookup=0)[0]
            assert got.token_ids == want == plain.token_ids
            assert got.finish_reason == plain.finish_reason
            assert got.logprobs == pytest.approx(plain.logprobs, abs=1e-4)


@torch.inference_mode()
def test_lookup_accepts_drafts(lm):
    """A small-init random model repeats its input's last token, so drafts are kept: fewer
    forwards than tokens."""
    _, tok = lm
    torch.manual_seed(0)
    model = CodelingLM(ModelConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=4,
                                   n_kv_head=2, d_model=64, max_seq_len=256)).eval()
    row = _make_rows(tok, [PROMPTS[3]], 200, False, None, False)[0]
    logits, cache, _, positions = _prefill(model, tok.pad_id, [row], 48, torch.float32)
    step = for_model(model)
    calls, got = [], []

    def counted(*args):
        calls.append(args[0].shape[1])
        return step(*args)
    counted.bias = step.bias
    decode_lookup(counted, cache, logits[0], int(positions[0]), row.context, 48, 8,
                  lambda t, lp: got.append(t) is not None)
    assert got == reference(model, tok, PROMPTS[3], 48, [])[0][:len(got)]
    assert len(got) == 48
    assert len(calls) <= 10 and max(calls) == 9  # drafts checked several tokens at a time
