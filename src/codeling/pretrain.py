"""`codeling pretrain`: causal-LM pretraining of a fresh model on a corpus.

    codeling pretrain --preset cpu --run-dir runs/cpu --corpus data/corpus \\
        --tokenizer data/tokenizer [--resume] [key=value ...]
    torchrun --nproc_per_node 2 -m codeling.cli pretrain ...   (DDP; gloo on CPU)

The corpus splits are tokenized once into uint16 shards (`--shards`, default `RUN_DIR/shards`)
and reused while corpus and tokenizer are unchanged. The model comes from the preset's [model]
section; training settings from [pretrain]. The run dir gets `run.json` (parameter count,
corpus, tokenizer, shard token counts) beside what `train.train` writes. On `--resume` without
--preset or overrides, the run's own `config.toml`, corpus and tokenizer are reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codeling.config import Config, ConfigError, add_config_arguments, config_from_args, read_config
from codeling.io import atomic_write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--run-dir", required=True, help="where config, metrics, checkpoints go")
    parser.add_argument("--corpus", help="a `codeling corpus` folder (train.jsonl, val.jsonl)")
    parser.add_argument("--tokenizer", help="a `codeling tokenizer` folder")
    parser.add_argument("--shards", help="token shard cache (default: RUN_DIR/shards)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in RUN_DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def resolve_inputs(args: argparse.Namespace) -> tuple[Config, Path, Path, Path]:
    """Config, corpus, tokenizer and shard dir: from the arguments or the run being resumed."""
    run_dir = Path(args.run_dir)
    recorded = {}
    if args.resume and (run_dir / "run.json").exists():
        recorded = json.loads((run_dir / "run.json").read_text())
    if args.resume and not args.preset and not args.overrides and (
            run_dir / "config.toml").exists():
        cfg = read_config(run_dir / "config.toml")
    else:
        if not args.preset:
            raise ConfigError("--preset is required (e.g. smoke, cpu, v1-29m)")
        cfg = config_from_args(args, section="pretrain")
    corpus = args.corpus or recorded.get("corpus")
    tokenizer = args.tokenizer or recorded.get("tokenizer")
    if not corpus or not tokenizer:
        raise ConfigError("--corpus and --tokenizer are required for a new run")
    shards = args.shards or recorded.get("shards") or run_dir / "shards"
    return cfg, Path(corpus), Path(tokenizer), Path(shards)


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
    import torch

    from codeling import data
    from codeling.model import CodelingLM
    from codeling.objectives import LMObjective
    from codeling.tokenizer import load_tokenizer
    from codeling.train import init_distributed, seed_everything, train

    cfg, corpus, tok_dir, shards = resolve_inputs(args)
    tc = cfg.pretrain
    tokenizer = load_tokenizer(tok_dir)
    check_shapes(cfg, tokenizer.vocab_size, tok_dir)
    run_dir = Path(args.run_dir)
    rank, world = init_distributed()
    train_data, val_data, meta = data.corpus_batches(corpus, tokenizer, shards, tc, rank, world)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)  # the same initial weights on every rank and every rerun
    model = CodelingLM(cfg.model)
    n_params = model.num_params()
    if rank == 0:
        print(f"model: {n_params:,} parameters ({n_params / 1e6:.2f}M); "
              f"{meta['tokens']['train']:,} train tokens, world size {world}, global batch "
              f"{tc.batch_size * tc.grad_accum * world} × {tc.seq_len} tokens")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "run.json", {
            "stage": "pretrain", "params": n_params, "corpus": str(corpus.resolve()),
            "tokenizer": str(tok_dir.resolve()), "shards": str(shards.resolve()),
            "tokens": meta["tokens"], "world_size": world})
    result = train(model, LMObjective(tc.label_smoothing), train_data, tc, run_dir,
                   val_data=val_data, resume=args.resume, tokenizer=tokenizer, config=cfg,
                   progress=not args.no_progress)
    if rank == 0:
        val = result.last_val or {}
        print(f"done: step {result.step}, val_loss {val.get('val_loss', float('nan')):.4f}; "
              f"final checkpoint {result.final_dir}")
    return 0


def main(args: argparse.Namespace) -> int:
    from codeling.checkpoint import CheckpointError
    from codeling.train import TrainingError

    try:
        return run_pretrain(args)
    except (TrainingError, CheckpointError, FileExistsError) as e:
        print(f"codeling pretrain: error: {e}", file=sys.stderr)
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
