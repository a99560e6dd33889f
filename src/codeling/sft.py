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
- Every `eval_every` steps: validation loss on `val.jsonl`, then the dev set (`dev.jsonl` beside
  the training tasks) by greedy generation in the sandbox (`evaluate.live.dev_evaluator`; pass
  count, syntax validity, collapse; `evals/step_N.json`). The best step by dev pass count, then
  validation loss, is kept as `checkpoints/best`; without a dev set, by validation loss.
- LoRA checkpoints are peft adapter dirs (plus the tokenizer); `sft.merge=true` also writes
  `RUN_DIR/merged`, a plain HF checkpoint. Resume (`--resume`) is exact on CPU in both modes.
- `sft.curriculum = [{levels=[1], steps=N}, ...]` phases the task pool by level.
- `sft.mix_pretrain = r` makes a share r of the batches pretraining windows (plain LM loss, from
  `--corpus` or the corpus --init was pretrained on), so tuning keeps some of pretraining's text.
- `--tasks FILE` trains on one JSONL file: codeling task records, or plan records
  `{"id", "prompt", "solution", tests}` (a record without tests is refused).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from codeling.config import ConfigError, add_config_arguments
from codeling.pairs import collate, encode_example
from codeling.stage import open_stage, run_main
from codeling.tasks.records import read_task_records
from codeling.tasks.schema import Task, read_tasks


class TaskBatches:
    """Shuffled epochs over the examples, resumable at the exact position, phased by level.

    Under DDP each rank takes rows rank::world of the same global batch."""

    def __init__(self, examples: list[tuple[list[int], int]], levels: list[int], batch_size: int,
                 pad_id: int, seed: int, curriculum: list[dict] | None = None,
                 rank: int = 0, world: int = 1, bucket: int = 16, pad_multiple: int = 1):
        self.examples, self.levels, self.bucket = examples, levels, bucket
        self.pad_multiple = pad_multiple
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
        return collate(rows[self.rank::self.world], self.pad_id, self.pad_multiple)

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
                 max_batches: int = 0, pad_multiple: int = 1):
        self.examples, self.batch_size, self.pad_id = examples, batch_size, pad_id
        self.pad_multiple = pad_multiple
        self.n = len(examples) // batch_size + bool(len(examples) % batch_size)
        if max_batches:
            self.n = min(self.n, max_batches)

    def __iter__(self):
        for b in range(self.n):
            yield collate(self.examples[b * self.batch_size:(b + 1) * self.batch_size],
                          self.pad_id, self.pad_multiple)

    def __len__(self) -> int:
        return self.n


def load_examples(tasks: list[Task], tokenizer, seq_len: int) -> tuple[list, list[int], int]:
    """(examples, their levels, how many were too long for seq_len and dropped)."""
    kept = [(encode_example(tokenizer, t, seq_len + 1), t.level) for t in tasks]
    good = [(e, lv) for e, lv in kept if e is not None]
    return [e for e, _ in good], [lv for _, lv in good], len(tasks) - len(good)


def read_task_source(path: Path) -> tuple[list[Task], list[Task]]:
    """(train, val) tasks: a `codeling tasks` folder, or one JSONL file (train only) of task
    records or of plan records `{"id", "prompt", "solution", tests}` (docs/formats.md)."""
    if path.is_dir():
        val = path / "val.jsonl"
        return read_tasks(path / "train.jsonl"), read_tasks(val) if val.exists() else []
    return read_task_records(path), []


def task_data(path: Path, tokenizer, tc, rank: int = 0, world: int = 1
              ) -> tuple[TaskBatches, TaskValBatches | None, dict]:
    """Prompt-masked train batches (phased by `tc.curriculum`), val batches and the counts
    run.json records: the task data sft and distill train on."""
    train_tasks, val_tasks = read_task_source(path)
    train_ex, levels, too_long = load_examples(train_tasks, tokenizer, tc.seq_len)
    if not train_ex:
        raise ConfigError(f"{path}: no training task fits seq_len={tc.seq_len}")
    val_ex = load_examples(val_tasks, tokenizer, tc.seq_len)[0]
    if tc.pad_multiple < 1 or tc.seq_len % tc.pad_multiple:  # widths stay within seq_len
        raise ConfigError(f"pad_multiple={tc.pad_multiple} must be >= 1 and divide "
                          f"seq_len={tc.seq_len}")
    train = TaskBatches(train_ex, levels, tc.batch_size, tokenizer.pad_id, tc.seed,
                        tc.curriculum, rank, world, pad_multiple=tc.pad_multiple)
    val = TaskValBatches(val_ex, tc.batch_size, tokenizer.pad_id, tc.eval_batches,
                         tc.pad_multiple) if val_ex else None
    return train, val, {"n_train": len(train_ex), "n_val": len(val_ex),
                        "dropped_too_long": too_long}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--init", help="the checkpoint to tune (HF-format dir, e.g. a pretrain final)")
    p.add_argument("--tasks", help="a `codeling tasks` folder (train.jsonl, val.jsonl, dev.jsonl)"
                                   " or one task JSONL file (also plan records: id/prompt/solution)")
    p.add_argument("--corpus", help="pretraining text for sft.mix_pretrain (default: the corpus "
                                    "of the --init checkpoint's pretraining run)")
    p.add_argument("--run-dir", required=True)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--lora", action="store_const", const="lora", dest="mode")
    mode.add_argument("--full", action="store_const", const="full", dest="mode")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def mixed_in_pretraining(stage, tokenizer, train_data):
    """`sft.mix_pretrain` of the batches become corpus windows (plain LM loss); 0 leaves the
    task batches as they are. The corpus defaults to the one --init was pretrained on."""
    from codeling import data

    tc = stage.tc
    if not tc.mix_pretrain:
        return train_data
    corpus, shards = stage.path("corpus"), stage.run_dir / "shards"
    init_run = stage.path("init").parent.parent / "run.json"
    if corpus is None and init_run.exists():
        rec = json.loads(init_run.read_text())
        corpus = Path(rec["corpus"]) if rec.get("corpus") else None
        if corpus and rec.get("shards") and data.shards_current(corpus, tokenizer, rec["shards"]):
            shards = Path(rec["shards"])  # the pretraining run's shards: no second tokenization
    if corpus is None:
        raise ConfigError(f"sft.mix_pretrain={tc.mix_pretrain} needs pretraining text: pass "
                          f"--corpus (no run.json with a corpus beside {stage.path('init')})")
    stage.inputs["corpus"] = str(corpus.resolve())
    windows = data.corpus_batches(corpus, tokenizer, shards, tc, stage.rank, stage.world)[0]
    return data.MixedBatches(train_data, windows, tc.mix_pretrain)


def run_sft(args: argparse.Namespace) -> int:
    from codeling import checkpoint as ckpt
    from codeling import lora
    from codeling.objectives import LMObjective
    from codeling.tokenizer import load_tokenizer

    stage = open_stage(args, "sft", {"init": True, "tasks": True, "corpus": True},
                       fixed=("lora", "sft.mode", "sft.mix_pretrain"),
                       overrides=[f"sft.mode={args.mode}"] if args.mode else [])
    stage.need("init", "tasks")
    tc, init, tasks = stage.tc, stage.path("init"), stage.path("tasks")
    if tc.mode not in ("lora", "full"):
        raise ConfigError(f"sft.mode must be lora or full, not {tc.mode!r}")
    if not 0.0 <= tc.mix_pretrain < 1.0:
        raise ConfigError(f"sft.mix_pretrain must be in [0, 1), not {tc.mix_pretrain}")
    tokenizer = load_tokenizer(init)
    stage.adopt_model(ckpt.read_model_config(init), init)
    if tc.seq_len > stage.cfg.model.max_seq_len:
        raise ConfigError(f"sft.seq_len={tc.seq_len} exceeds the model's max_seq_len "
                          f"{stage.cfg.model.max_seq_len}")
    stage.begin()
    model, save_fn, load_fn = ckpt.load_model(init), None, None
    if tc.mode == "lora":
        model, save_fn, load_fn = lora.prepare(model, stage.cfg.lora, init, tokenizer)
    train_data, val_data, counts = task_data(tasks, tokenizer, tc, stage.rank, stage.world)
    train_data = mixed_in_pretraining(stage, tokenizer, train_data)
    trainable, total = lora.trainable_parameters(model)
    from codeling.evaluate.live import dev_evaluator

    evaluator = dev_evaluator(tokenizer, tc, stage.run_dir,
                              tasks if tasks.is_dir() else tasks.parent, stage.rank)
    if stage.rank == 0:
        print(f"sft ({tc.mode}): {trainable:,} trainable of {total:,} parameters; "
              f"{counts['n_train']} train / {counts['n_val']} val tasks "
              f"({counts['dropped_too_long']} too long, dropped)"
              + (f"; {tc.mix_pretrain:.0%} of batches pretraining text" if tc.mix_pretrain
                 else ""))
    stage.record(mode=tc.mode, params=total, trainable_params=trainable, **counts)
    result = stage.train(model, LMObjective(), train_data, val_data=val_data,
                         evaluator=evaluator, save_fn=save_fn, load_fn=load_fn,
                         tokenizer=tokenizer)
    if stage.rank == 0 and tc.mode == "lora" and tc.merge and result.final_dir is not None:
        best = stage.run_dir / "checkpoints" / "best"
        lora.merge_adapter(best if best.exists() else result.final_dir, stage.run_dir / "merged")
    if stage.rank == 0:
        print(f"done: step {result.step} ({result.stopped}); best {result.best}")
    return 0


def main(args: argparse.Namespace) -> int:
    return run_main("sft", run_sft, args)
