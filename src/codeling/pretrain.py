"""`codeling pretrain`: causal-LM pretraining of a fresh model on a corpus.

    codeling pretrain --preset cpu --run-dir runs/cpu --corpus data/corpus \\
        --tokenizer data/tokenizer [--resume] [key=value ...]
    torchrun --nproc_per_node 2 -m codeling.cli pretrain ...   (DDP; gloo on CPU)

The corpus splits are tokenized once into uint16 shards (`--shards`, default `RUN_DIR/shards`)
and reused while corpus and tokenizer are unchanged. The model comes from the preset's [model]
section; training settings from [pretrain]. The run dir gets `run.json` (parameter count,
corpus, tokenizer, shard token counts) beside what `train.train` writes. `--resume` follows
the one rule of `codeling.stage`: the run's own config.toml and inputs plus new overrides.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from codeling.config import Config, ConfigError, add_config_arguments
from codeling.stage import open_stage, run_main


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--run-dir", required=True, help="where config, metrics, checkpoints go")
    parser.add_argument("--corpus", help="a `codeling corpus` folder (train.jsonl, val.jsonl)")
    parser.add_argument("--tokenizer", help="a `codeling tokenizer` folder")
    parser.add_argument("--shards", help="token shard cache (default: RUN_DIR/shards)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in RUN_DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_shapes(cfg: Config, vocab_size: int, tokenizer_dir: Path) -> None:
    if cfg.model.vocab_size != vocab_size:
        raise ConfigError(
            f"model.vocab_size={cfg.model.vocab_size} but the tokenizer in {tokenizer_dir} has "
            f"{vocab_size} tokens: pass model.vocab_size={vocab_size} or train a matching "
            "tokenizer")
    if cfg.pretrain.seq_len > cfg.model.max_seq_len:
        raise ConfigError(f"pretrain.seq_len={cfg.pretrain.seq_len} exceeds "
                          f"model.max_seq_len={cfg.model.max_seq_len}")


def run_pretrain(args: argparse.Namespace) -> int:
    from codeling import data
    from codeling.model import CodelingLM
    from codeling.objectives import LMObjective
    from codeling.tokenizer import load_tokenizer

    stage = open_stage(args, "pretrain", {"corpus": True, "tokenizer": True, "shards": True})
    if not stage.resuming and not args.preset:
        raise ConfigError("--preset is required for a new run (e.g. smoke, cpu, v1-29m)")
    stage.need("corpus", "tokenizer")
    cfg, tc = stage.cfg, stage.tc
    tok_dir = stage.path("tokenizer")
    tokenizer = load_tokenizer(tok_dir)
    check_shapes(cfg, tokenizer.vocab_size, tok_dir)
    shards = stage.path("shards") or stage.run_dir / "shards"
    stage.begin()
    model = CodelingLM(cfg.model)
    train_data, val_data, meta = data.corpus_batches(stage.path("corpus"), tokenizer, shards, tc,
                                                     stage.rank, stage.world)
    n_params = model.num_params()
    if stage.rank == 0:
        print(f"model: {n_params:,} parameters ({n_params / 1e6:.2f}M); "
              f"{meta['tokens']['train']:,} train tokens, world size {stage.world}, global "
              f"batch {tc.batch_size * tc.grad_accum * stage.world} × {tc.seq_len} tokens")
    stage.inputs["shards"] = str(shards.resolve())
    stage.record(params=n_params, tokens=meta["tokens"])
    result = stage.train(model, LMObjective(tc.label_smoothing), train_data, val_data=val_data,
                         tokenizer=tokenizer)
    if stage.rank == 0:
        val = result.last_val or {}
        print(f"done: step {result.step}, val_loss {val.get('val_loss', float('nan')):.4f}; "
              f"final checkpoint {result.final_dir}")
    return 0


def main(args: argparse.Namespace) -> int:
    return run_main("pretrain", run_pretrain, args)
