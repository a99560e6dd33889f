"""codeling.tokenizer: BPE training on a small real corpus, round trip, HF equivalence, CLI."""

from __future__ import annotations

import json
import json as json_pkg
from pathlib import Path

import pytest
import transformers

from codeling.cli import main as cli_main
from codeling.config import ConfigError
from codeling.corpus import build_corpus
from codeling.io import DataError, read_jsonl
from codeling.tokenizer import (
    EOT,
    PAD,
    build_tokenizer,
    line_tokens_by_indent,
    load_tokenizer,
    train_tokenizer,
)

STDLIB = Path(json_pkg.__file__).parent.parent
VOCAB = 1024

# strings a code tokenizer meets that stress byte-level handling
ODD = ["", " ", "\t\tx = 1\r\n", "  trailing   \n\n\n", "naïve = 'héllo wörld' # 日本語 🐍\n",
       "\x00\x01 control", f"a{EOT}b{PAD}c", "x" * 300, "    " * 20 + "deep()\n"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, [STDLIB / "json", STDLIB / "email", STDLIB / "logging"],
                 val_fraction=0.25, seed=1, progress=False)
    return out


@pytest.fixture(scope="module")
def built(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tok")
    return out, build_tokenizer(corpus, out, vocab_size=VOCAB)


def test_round_trip_on_every_val_file(corpus: Path, built: tuple[Path, dict]) -> None:
    out, stats = built
    tok = load_tokenizer(out)
    val = read_jsonl(corpus / "val.jsonl")
    assert len(val) >= 3
    for row in val:
        assert tok.decode(tok.encode(row["text"])) == row["text"], row["path"]
    assert stats["round_trip_failures"] == 0 and stats["val_files"] == len(val)


@pytest.mark.parametrize("text", ODD)
def test_round_trip_odd_strings(built: tuple[Path, dict], text: str) -> None:
    tok = load_tokenizer(built[0])
    assert tok.decode(tok.encode(text)) == text


def test_special_tokens(built: tuple[Path, dict]) -> None:
    tok = load_tokenizer(built[0])
    assert (tok.eot_id, tok.pad_id) == (0, 1)  # first in the vocabulary, stable across sizes
    assert tok.encode(EOT) == [tok.eot_id] and tok.encode(PAD) == [tok.pad_id]
    assert tok.vocab_size == VOCAB


def test_stats(corpus: Path, built: tuple[Path, dict]) -> None:
    out, stats = built
    assert json.loads((out / "stats.json").read_text()) == stats
    assert stats["vocab_size"] == VOCAB and stats["pretokenizer"] == "python"
    assert stats["val_bytes"] == sum(len(r["text"].encode()) for r in
                                     read_jsonl(corpus / "val.jsonl"))
    tok = load_tokenizer(out)
    assert stats["val_tokens"] == sum(len(tok.encode(r["text"])) for r in
                                      read_jsonl(corpus / "val.jsonl"))
    # even a 1k vocabulary compresses Python well below one token per byte
    assert 0.2 < stats["tokens_per_byte_val"] < 0.5


def test_indentation_is_compact(built: tuple[Path, dict]) -> None:
    tok = load_tokenizer(built[0])
    costs = line_tokens_by_indent(tok)
    assert len(set(costs.values())) == 1, costs  # deeper indentation costs no extra token
    for n in (4, 8, 12):  # a newline plus its indentation is one token (its last space joins
        pieces = [tok.decode([i]) for i in tok.encode(f"x\n{' ' * n}return value")]  # the word)
        assert "\n" + " " * (n - 1) in pieces, pieces


def test_python_pretokenizer_beats_gpt2(corpus: Path) -> None:
    train = [r["text"] for r in read_jsonl(corpus / "train.jsonl")]
    val = [r["text"] for r in read_jsonl(corpus / "val.jsonl")]

    def tokens(kind: str) -> int:
        tok = train_tokenizer(train, vocab_size=VOCAB, pretokenizer=kind)
        return sum(len(ids) for ids in tok.encode_batch(val))

    assert tokens("python") < tokens("gpt2")


def test_autotokenizer_encodes_identically(corpus: Path, built: tuple[Path, dict]) -> None:
    out = built[0]
    ours = load_tokenizer(out)
    hf = transformers.AutoTokenizer.from_pretrained(str(out))
    assert (hf.eos_token_id, hf.pad_token_id) == (ours.eot_id, ours.pad_id)
    for text in [r["text"] for r in read_jsonl(corpus / "val.jsonl")] + ODD:
        ids = hf(text, add_special_tokens=True)["input_ids"]
        assert ids == ours.encode(text)
        assert hf.decode(ids) == text


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train\.jsonl"):
        build_tokenizer(tmp_path / "nowhere", tmp_path / "out", vocab_size=300)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train.jsonl").write_text('{"path": "a.py", "text": "x = 1"}\n'
                                                '{"path": "b.py", "txt": "y = 2"}\n')
    (tmp_path / "c" / "val.jsonl").write_text("")
    with pytest.raises(DataError, match=r"train.jsonl:2: field 'text'"):
        build_tokenizer(tmp_path / "c", tmp_path / "out", vocab_size=300)
    with pytest.raises(ConfigError, match="pretokenizer"):
        train_tokenizer(["x = 1"], vocab_size=300, pretokenizer="gpt3")
    with pytest.raises(ConfigError, match="vocab_size"):
        train_tokenizer(["x = 1"], vocab_size=100)


def test_cli_end_to_end(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tok"
    rc = cli_main(["tokenizer", "--corpus", str(corpus), "--out", str(out), "--preset", "smoke",
                   "--vocab-size", "600", "train_mb=0.2"])
    assert rc == 0, capsys.readouterr().err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["vocab_size"] == 600 and stats["round_trip_failures"] == 0
    assert 200_000 <= stats["train_bytes"] < 400_000  # train_mb caps what BPE reads
    assert load_tokenizer(out).vocab_size == 600
    assert "tokens/byte" in capsys.readouterr().out
    assert cli_main(["tokenizer", "--corpus", str(tmp_path / "x"), "--out", str(out)]) == 2
    assert "train.jsonl" in capsys.readouterr().err
