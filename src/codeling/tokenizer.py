"""Byte-level BPE tokenizer (HF `tokenizers`), saved so `AutoTokenizer.from_pretrained` loads it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from codeling.io import atomic_write_json, atomic_write_text

EOT = "<|endoftext|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = [EOT, PAD]


class CodelingTokenizer:
    """A thin wrapper: encode/decode plus the ids of the special tokens."""

    def __init__(self, tok: Tokenizer):
        self.tok = tok
        self.eot_id = tok.token_to_id(EOT)
        self.pad_id = tok.token_to_id(PAD)
        if self.eot_id is None or self.pad_id is None:
            raise ValueError(f"tokenizer lacks the special tokens {SPECIAL_TOKENS}")

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "tokenizer.json", self.tok.to_str())
        # what transformers' AutoTokenizer needs to load tokenizer.json as a fast tokenizer
        atomic_write_json(out / "tokenizer_config.json", {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": EOT, "bos_token": EOT, "unk_token": EOT, "pad_token": PAD,
            "model_max_length": 1_000_000, "clean_up_tokenization_spaces": False,
            "add_prefix_space": False,
        })
        atomic_write_json(out / "special_tokens_map.json",
                          {"eos_token": EOT, "bos_token": EOT, "unk_token": EOT,
                           "pad_token": PAD})


def new_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    # GPT-2's byte-level split keeps runs of spaces together, so indentation becomes single tokens
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192,
                    min_frequency: int = 2) -> CodelingTokenizer:
    tok = new_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return CodelingTokenizer(tok)


def load_tokenizer(path: str | Path) -> CodelingTokenizer:
    """From a directory holding tokenizer.json, or the file itself."""
    p = Path(path)
    f = p / "tokenizer.json" if p.is_dir() else p
    if not f.exists():
        raise FileNotFoundError(f"{f}: no tokenizer.json here")
    try:
        return CodelingTokenizer(Tokenizer.from_file(str(f)))
    except Exception as e:  # tokenizers raises a bare Exception on a corrupt file
        raise ValueError(f"{f}: not a valid tokenizer file ({e})") from e


def tokenizer_info(path: str | Path) -> dict:
    return json.loads((Path(path) / "tokenizer_config.json").read_text())
