"""`codeling sft`: instruction tuning on task/solution pairs, LoRA (peft) or full, in THE loop.

    codeling sft --init runs/base/checkpoints/final --tasks data/tasks --run-dir runs/sft \\
        [--lora | --full] [--preset cpu-sft] [key=value ...] [--resume]

- Each example is `tokens(prompt + solution) + <|endoftext|>`, tokenized whole; the loss covers
  the solution and the end-of-text token (plus the prompt's last token, which generation's token
  healing regenerates); the rest of the prompt's labels are IGNORE. The model learns to stop.
- Dynamic padding: each batch is padded to its own longest example, never to a fixed length.
  Padding sits on the right, where causal attention cannot see it, and carries no loss.
- Examples longer than `sft.seq_len + 1` tokens are dropped (a cut solution would teach the
  model to stop mid-function) and counted in `run.json`.
- Every `eval_every` steps: validation loss on `val.jsonl`, then mini-HumanEval by greedy
  generation in the sandbox (pass count, syntax validity, collapse; `evals/step_N.json`). The
  best step by pass count, then validation loss, is kept as `checkpoints/best`.
- LoRA checkpoints are peft adapter dirs (plus the tokenizer); `sft.merge=true` also writes
  `RUN_DIR/merged`, a plain HF checkpoint. Resume (`--resume`) is exact on CPU in both modes.
- `sft.curriculum = [{levels=[1], steps=N}, ...]` phases the task pool by level.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from codeling.config import ConfigError, add_config_arguments, config_from_args, load_config
from codeling.io import atomic_write_json
from codeling.objectives import IGNORE
from codeling.tasks.schema import Task, read_tasks


def encode_example(tokenizer, task: Task, max_tokens: int) -> tuple[list[int], int] | None:
    """(ids, n_context) for prompt + solution + EOT, or None when longer than max_tokens.

    The text is tokenized whole, as pretraining saw code, so the token that joins the prompt's
    last newline to the body's indentation is learned. Generation heals the prompt's last token
    (drops it and constrains the first new token to start with its text), so the context here
    is the tokens wholly inside the prompt minus the last one: training and inference see the
    same boundary."""
    enc = tokenizer.tok.encode(task.prompt + task.canonical_solution)
    inside = sum(1 for _, end in enc.offsets if end <= len(task.prompt))
    ids = [*enc.ids, tokenizer.eot_id]
    return (ids, max(1, inside - 1)) if len(ids) <= max_tokens else None


def collate(examples: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example; labels are shifted and masked outside the solution."""
    width = max(len(ids) for ids, _ in examples) - 1
    inputs = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, (ids, n_prompt) in enumerate(examples):
        t = torch.tensor(ids, dtype=torch.long)
        inputs[row, :len(ids) - 1] = t[:-1]
        # label at position i is token i+1: the first kept label predicts the first solution token
        labels[row, n_prompt - 1:len(ids) - 1] = t[n_prompt:]
    return {"input_ids": inputs, "labels": labels}


class TaskBatches:
    """Shuffled epochs over the examples, resumable at the exact position, phased by level.

    Under DDP each rank takes rows rank::world of the same global batch."""

    def __init__(self, examples: list[tuple[list[int], int]], levels: list[int], batch_size: int,
                 pad_id: int, seed: int, curriculum: list[dict] | None = None,
                 rank: int = 0, world: int = 1, bucket: int = 16):
        self.examples, self.levels, self.bucket = examples, levels, bucket
        self.batch_size, self.pad_id, self.rank, self.world = batch_size, pad_id, rank, world
        self.curriculum = curriculum or []
        self.gen = torch.Generator().manual_seed(seed)
        self.phase, self.pool, self.order, self.pos = -1, [], [], 0
        self.set_phase(0)

    def set_phase(self, phase: int) -> None:
        if phase == self.phase:
            return
        self.phase = phase
        want = set(self.curriculum[phase]["levels"]) if self.curriculum else None
        self.pool = [i for i, lv in enumerate(self.levels) if want is None or lv in want]
        if not self.pool:
            raise ConfigError(f"curriculum phase {phase} selects no task (levels {sorted(want)})")
        self.order, self.pos = [], 0

    def next_batch(self) -> dict[str, torch.Tensor]:
        rows = []
        for _ in range(self.batch_size * self.world):
            if self.pos >= len(self.order):
                self.order, self.pos = self._epoch_order(), 0
            rows.append(self.examples[self.order[self.pos]])
            self.pos += 1
        return collate(rows[self.rank::self.world], self.pad_id)

    def _epoch_order(self) -> list[int]:
        """A shuffled epoch in which each global batch holds examples of similar length.

        Examples are shuffled, sorted by length within windows of `bucket` batches, cut into
        batches, and the batches shuffled: padding drops to a few percent while the batch order
        stays random. The < one batch left over waits for the next epoch's shuffle."""
        g = self.batch_size * self.world
        idx = [self.pool[i] for i in torch.randperm(len(self.pool), generator=self.gen)]
        if len(idx) < g:
            return idx
        window = g * self.bucket
        batches = []
        for c in range(0, len(idx) - len(idx) % g, window):
            part = sorted(idx[c:c + window], key=lambda i: len(self.examples[i][0]))
            batches += [part[j:j + g] for j in range(0, len(part) - len(part) % g, g)]
        return [i for b in torch.randperm(len(batches), generator=self.gen) for i in batches[b]]

    def state_dict(self) -> dict:
        return {"phase": self.phase, "order": list(self.order), "pos": self.pos,
                "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.set_phase(state["phase"])
        self.order, self.pos = list(state["order"]), state["pos"]
        self.gen.set_state(state["gen"])


class TaskValBatches:
    """The validation tasks in fixed order, `batch_size` at a time (re-iterable)."""

    def __init__(self, examples: list[tuple[list[int], int]], batch_size: int, pad_id: int,
                 max_batches: int = 0):
        self.examples, self.batch_size, self.pad_id = examples, batch_size, pad_id
        self.n = len(examples) // batch_size + bool(len(examples) % batch_size)
        if max_batches:
            self.n = min(self.n, max_batches)

    def __iter__(self):
        for b in range(self.n):
            yield collate(self.examples[b * self.batch_size:(b + 1) * self.batch_size],
                          self.pad_id)

    def __len__(self) -> int:
        return self.n


def load_examples(path: Path, tokenizer, seq_len: int) -> tuple[list, list[int], int]:
    tasks = read_tasks(path)
    kept = [(encode_example(tokenizer, t, seq_len + 1), t.level) for t in tasks]
    good = [(e, lv) for e, lv in kept if e is not None]
    return [e for e, _ in good], [lv for _, lv in good], len(tasks) - len(good)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--init", help="the checkpoint to tune (HF-format dir, e.g. a pretrain final)")
    p.add_argument("--tasks", help="a `codeling tasks` folder (train.jsonl, val.jsonl)")
    p.add_argument("--run-dir", required=True)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lora", action="store_const", const="lora", dest="mode")
    mode.add_argument("--full", action="store_const", const="full", dest="mode")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def resolve(args: argparse.Namespace):
    run_dir = Path(args.run_dir)
    recorded = {}
    if args.resume and (run_dir / "run.json").exists():
        recorded = json.loads((run_dir / "run.json").read_text())
    saved = run_dir / "config.toml"
    if args.resume and not args.preset and saved.exists():
        # resume keeps the run's own config; overrides given now apply on top of it
        cfg = load_config(str(saved), args.overrides or (), section="sft")
    else:
        cfg = config_from_args(args, section="sft")
    if args.mode:
        cfg.sft.mode = args.mode
    if cfg.sft.mode not in ("lora", "full"):
        raise ConfigError(f"sft.mode must be lora or full, not {cfg.sft.mode!r}")
    init, tasks = args.init or recorded.get("init"), args.tasks or recorded.get("tasks")
    if not init or not tasks:
        raise ConfigError("--init and --tasks are required for a new run")
    return cfg, Path(init), Path(tasks), run_dir


def run_sft(args: argparse.Namespace) -> int:
    from codeling import checkpoint as ckpt
    from codeling import lora
    from codeling.objectives import LMObjective
    from codeling.tokenizer import load_tokenizer
    from codeling.train import init_distributed, seed_everything, train

    cfg, init, tasks_dir, run_dir = resolve(args)
    tc = cfg.sft
    tokenizer = load_tokenizer(init)
    model_cfg = ckpt.read_model_config(init)
    if tc.seq_len > model_cfg.max_seq_len:
        raise ConfigError(f"sft.seq_len={tc.seq_len} exceeds the model's max_seq_len "
                          f"{model_cfg.max_seq_len}")
    cfg.model = model_cfg
    rank, world = init_distributed()
    train_ex, levels, too_long = load_examples(tasks_dir / "train.jsonl", tokenizer, tc.seq_len)
    val_path = tasks_dir / "val.jsonl"
    val_ex = load_examples(val_path, tokenizer, tc.seq_len)[0] if val_path.exists() else []
    if not train_ex:
        raise ConfigError(f"{tasks_dir / 'train.jsonl'}: no task fits sft.seq_len={tc.seq_len}")
    if tc.threads:
        torch.set_num_threads(tc.threads)
    seed_everything(tc.seed)
    model = ckpt.load_model(init)
    save_fn = load_fn = None
    if tc.mode == "lora":
        model = lora.apply_lora(model, cfg.lora, base_path=init)

        def save_fn(m, d):
            lora.save_adapter(lora_model(m), d, tokenizer)

        load_fn = lora.load_adapter_weights
    trainable, total = lora.trainable_parameters(model)
    from codeling.evaluate.live import mini_evaluator

    evaluator = mini_evaluator(tokenizer, tc, run_dir, rank)
    if rank == 0:
        print(f"sft ({tc.mode}): {trainable:,} trainable of {total:,} parameters; "
              f"{len(train_ex)} train / {len(val_ex)} val tasks ({too_long} too long, dropped)")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "run.json", {
            "stage": "sft", "mode": tc.mode, "init": str(init.resolve()),
            "tasks": str(tasks_dir.resolve()), "params": total, "trainable_params": trainable,
            "n_train": len(train_ex), "n_val": len(val_ex), "dropped_too_long": too_long})
    train_data = TaskBatches(train_ex, levels, tc.batch_size, tokenizer.pad_id, tc.seed,
                             tc.curriculum, rank, world)
    val_data = TaskValBatches(val_ex, tc.batch_size, tokenizer.pad_id, tc.eval_batches) \
        if val_ex else None
    result = train(model, LMObjective(), train_data, tc, run_dir, val_data=val_data,
                   evaluator=evaluator, save_fn=save_fn, load_fn=load_fn, resume=args.resume,
                   tokenizer=tokenizer, config=cfg, progress=not args.no_progress)
    if rank == 0 and tc.mode == "lora" and tc.merge and result.final_dir is not None:
        best = run_dir / "checkpoints" / "best"
        lora.merge_adapter(best if best.exists() else result.final_dir, run_dir / "merged")
    if rank == 0:
        print(f"done: step {result.step} ({result.stopped}); best {result.best}")
    return 0


def lora_model(model):
    """The PeftModel inside a DDP wrapper."""
    return getattr(model, "module", model)


def main(args: argparse.Namespace) -> int:
    from codeling.checkpoint import CheckpointError
    from codeling.train import TrainingError

    try:
        return run_sft(args)
    except (CheckpointError, TrainingError) as e:
        print(f"codeling sft: error: {e}", file=__import__("sys").stderr)
        return 1
