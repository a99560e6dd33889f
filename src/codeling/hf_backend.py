"""Generation with any local transformers causal LM: `--model hf:PATH` (GPT-2, Llama, Qwen2, ...).

    model, tok = load_hf("path/to/model", "cpu")
    rows = hf_complete(model, tok, prompts, stop=HUMANEVAL_STOP, max_new_tokens=256)

Prompts are sorted by length and batched with left padding (`model.generate` with an attention
mask, so each row gets the text it would get alone). A stopping criterion ends each row as soon
as its new text holds one of the benchmark's stop sequences, and the completion is cut before
the earliest one, as `codeling.generate` does for codeling's own checkpoints. The completion is
the decoded prompt + generation with the decoded prompt removed: sentencepiece tokenizers drop
a word's leading space when its tokens are decoded alone. Sampling is seeded per batch
(`seed + first row`), so the same seed and batch size give the same samples. Prompts longer than
the model's context less max_new_tokens keep their last tokens. Decoding is plain greedy or
temperature + top-p: a generation_config shipped with the model (top-k, repetition penalty) is
not applied, so a model is judged under the same decoding as every other backend.

transformers is an optional extra (`pip install 'codeling[hf]'`); without it, loading says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from codeling.config import ConfigError
from codeling.decode import fit_new_tokens
from codeling.endpoint import cut_at_stop

INSTALL_HINT = "pip install 'codeling[hf]'"


def require_transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"--model hf:PATH needs transformers, which is not installed: "
                          f"{INSTALL_HINT}") from None
    return transformers


def load_hf(path: str | Path, device: str | torch.device = "cpu"):
    """(model in eval mode, tokenizer padding on the left) from a transformers model folder."""
    transformers = require_transformers()
    path = Path(path)
    if not (path / "config.json").exists():
        raise ConfigError(f"{path}: no config.json here (not a transformers model folder)")
    tok = transformers.AutoTokenizer.from_pretrained(str(path))
    tok.padding_side = "left"  # generation continues every row from its last real token
    if tok.pad_token_id is None:
        if tok.eos_token_id is None:
            raise ConfigError(f"{path}: the tokenizer has neither a pad nor an eos token")
        tok.pad_token = tok.eos_token
    # the folder's own dtype ("auto"); the keyword was renamed in transformers 4.56
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path), **{key: "auto"})
    return model.to(device).eval(), tok


def _stop_criterion(tok, stop: Sequence[str], prompt_len: int):
    transformers = require_transformers()
    window = max((len(s.encode()) for s in stop), default=0) + 2

    class StopOnText(transformers.StoppingCriteria):
        """True for a row once its new text holds a stop sequence (only the newest tokens can
        complete one that was not there a step ago)."""

        def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
            start = max(prompt_len, input_ids.shape[1] - window)
            tails = tok.batch_decode(input_ids[:, start:], skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)
            return torch.tensor([any(s in t for s in stop) for t in tails],
                                device=input_ids.device)

    return transformers.StoppingCriteriaList([StopOnText()])


def fit_budget(model, max_new_tokens: int) -> tuple[int, int | None]:
    """(new tokens, prompt tokens kept): a budget that leaves no room for a prompt is capped
    at half the context, said on stderr, as `codeling generate` does."""
    cfg = model.config
    n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    if n is None:
        return max_new_tokens, None
    max_new_tokens = fit_new_tokens(max_new_tokens, n)
    return max_new_tokens, n - max_new_tokens


@torch.inference_mode()
def hf_complete(model, tok, prompts: Sequence[str], stop: Sequence[str] = (),
                max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0,
                n: int = 1, seed: int = 0, batch_size: int = 16) -> list[dict]:
    """n completions per prompt, prompt-major (prompt i, copy j at i*n + j), each a dict with
    completion, finish_reason ("stop" | "length") and n_tokens."""
    if max_new_tokens < 1 or n < 1:
        raise ValueError(f"need max_new_tokens >= 1 and n >= 1, got {max_new_tokens}, {n}")
    stop = [s for s in stop if s]
    max_new_tokens, limit = fit_budget(model, max_new_tokens)
    encoded = [ids[-limit:] if limit else ids
               for ids in tok(list(prompts), add_special_tokens=True)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    per_batch = max(1, batch_size // n)
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tok.eos_token_id
    ends = set(eos if isinstance(eos, list) else [eos]) | {tok.pad_token_id} - {None}
    # a fresh config, not the model's: plain greedy or temperature + top-p, as every backend
    # decodes; a shipped generation_config's top-k or repetition penalty would change the task
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0} \
        if temperature > 0 else {"do_sample": False}
    config = require_transformers().GenerationConfig(
        max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=eos,
        num_return_sequences=n, **sampling)
    out: list[dict | None] = [None] * (len(prompts) * n)
    device = next(model.parameters()).device
    for b in range(0, len(order), per_batch):
        idx = order[b:b + per_batch]
        batch = tok.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
        P = batch["input_ids"].shape[1]
        if temperature > 0:
            torch.manual_seed(seed + b * n)
        gen = model.generate(input_ids=batch["input_ids"].to(device),
                             attention_mask=batch["attention_mask"].to(device),
                             generation_config=config,
                             stopping_criteria=_stop_criterion(tok, stop, P) if stop else None
                             ).cpu()
        for r, row in enumerate(gen):
            i = idx[r // n]
            new = row[P:].tolist()
            used = next((k for k, t in enumerate(new) if t in ends), len(new))
            prompt_text = tok.decode(encoded[i], skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)
            full = tok.decode(encoded[i] + new[:used], skip_special_tokens=True,
                              clean_up_tokenization_spaces=False)
            text = (full[len(prompt_text):] if full.startswith(prompt_text) else
                    tok.decode(new[:used], skip_special_tokens=True,
                               clean_up_tokenization_spaces=False))
            text, stopped = cut_at_stop(text, stop)
            # a row that ended before the limit met an end token or a stop sequence
            out[i * n + r % n] = {"completion": text,
                                  "finish_reason": "stop" if stopped or used < max_new_tokens
                                  else "length",
                                  "n_tokens": used + (used < len(new) and not stopped)}
    return out  # type: ignore[return-value]
