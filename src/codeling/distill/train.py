"""`codeling distill train`: a student trained on a frozen teacher's logits, in THE loop.

The loss is objectives.KDObjective: α·KL(teacher‖student at T)·T² + (1−α)·CE, the teacher in
eval mode under no_grad and never in the optimizer. The data is task data (sft's loader,
prompt-masked, phased by `distill.curriculum`) or a pretraining corpus. The student is a fresh
model of `--student-preset`'s [model] shape or an `--init` checkpoint; teacher and student must
share the tokenizer, and a mismatch is an error. Config, inputs and resume follow
`codeling.stage`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from codeling.config import ConfigError, load_config
from codeling.stage import Stage, open_stage

INPUTS = {"teacher": True, "init": True, "student_preset": False, "tokenizer": True,
          "tasks": True, "corpus": True}


def check_same_tokenizer(teacher_dir: Path, teacher_tok, student_dir: Path, student_tok) -> None:
    """Logit KD compares distributions over the same ids: the vocabularies must be identical."""
    from codeling.data import tokenizer_fingerprint

    tv, sv = teacher_tok.tok.get_vocab(), student_tok.tok.get_vocab()
    if tv != sv:
        differ = sum(sv.get(tok) != i for tok, i in tv.items())
        raise ConfigError(
            f"teacher and student tokenizers differ: {teacher_dir} has {len(tv)} tokens, "
            f"{student_dir} has {len(sv)} ({differ} teacher tokens missing or at other ids). "
            "Logit distillation needs one tokenizer: train the student with the teacher's.")
    if tokenizer_fingerprint(teacher_tok) != tokenizer_fingerprint(student_tok):
        raise ConfigError(f"teacher and student tokenizers ({teacher_dir}, {student_dir}) share "
                          "a vocabulary but not their merges or normalisation: they would "
                          "split text differently")


def open_distill(args: argparse.Namespace) -> Stage:
    """The stage, checked: one teacher, one student source, one data source."""
    resuming = args.resume and (Path(args.run_dir) / "config.toml").exists()
    # a new run's config comes from --preset, else from the student preset
    stage = open_stage(args, "distill", INPUTS,
                       preset=args.preset or (None if resuming else args.student_preset))
    stage.need("teacher")
    if bool(stage.inputs["init"]) == bool(stage.inputs["student_preset"]):
        raise ConfigError("give exactly one of --student-preset NAME or --init CKPT")
    if bool(stage.inputs["tasks"]) == bool(stage.inputs["corpus"]):
        raise ConfigError("give exactly one of --tasks DIR or --corpus DIR")
    if args.preset and args.student_preset and not resuming:
        # the student's shape is the student preset's, whatever --preset trains it with
        model_overrides = [o for o in stage.overrides if o.startswith("model.")]
        stage.cfg.model = load_config(args.student_preset, model_overrides).model
    return stage


def build_student(stage: Stage, teacher_dir: Path, teacher_tok):
    """(model, tokenizer): a fresh preset-shaped student, or the --init one."""
    from codeling import checkpoint as ckpt
    from codeling.model import CodelingLM
    from codeling.tokenizer import load_tokenizer

    cfg, init = stage.cfg, stage.path("init")
    if init:
        tok_dir = init
        tok = load_tokenizer(tok_dir)
        stage.adopt_model(ckpt.read_model_config(init), init)
        model = ckpt.load_model(init)
    else:
        tok_dir = stage.path("tokenizer") or teacher_dir
        tok = load_tokenizer(tok_dir)
        if cfg.model.vocab_size != tok.vocab_size:
            raise ConfigError(f"the student preset has model.vocab_size={cfg.model.vocab_size} "
                              f"but the tokenizer in {tok_dir} has {tok.vocab_size} tokens: pass "
                              f"model.vocab_size={tok.vocab_size}")
        model = CodelingLM(cfg.model)
    check_same_tokenizer(teacher_dir, teacher_tok, tok_dir, tok)
    return model, tok


def distill_data(stage: Stage, tok):
    """(train source, val source, counts) from task data or a pretraining corpus."""
    from codeling import data
    from codeling.sft import task_data

    tc = stage.tc
    if stage.inputs["tasks"]:
        return task_data(stage.path("tasks"), tok, tc, stage.rank, stage.world)
    if tc.curriculum:
        raise ConfigError("distill.curriculum phases task levels: it needs --tasks, not --corpus")
    train, val, meta = data.corpus_batches(stage.path("corpus"), tok, stage.run_dir / "shards",
                                           tc, stage.rank, stage.world)
    return train, val, {"tokens": meta["tokens"]}


def run_train(args: argparse.Namespace) -> int:
    from codeling import checkpoint as ckpt
    from codeling.objectives import KDObjective
    from codeling.tokenizer import load_tokenizer

    stage = open_distill(args)
    tc = stage.tc
    teacher_dir = stage.path("teacher")
    teacher_tok = load_tokenizer(teacher_dir)
    stage.begin()
    student, tok = build_student(stage, teacher_dir, teacher_tok)
    teacher = ckpt.load_model(teacher_dir)
    if teacher.config.vocab_size != student.config.vocab_size:
        raise ConfigError(f"teacher vocab_size {teacher.config.vocab_size} != student "
                          f"vocab_size {student.config.vocab_size}")
    for who, m in (("teacher", teacher), ("student", student)):
        if tc.seq_len > m.config.max_seq_len:
            raise ConfigError(f"distill.seq_len={tc.seq_len} exceeds the {who}'s max_seq_len "
                              f"{m.config.max_seq_len}")
    train_data, val_data, counts = distill_data(stage, tok)
    from codeling.evaluate.live import dev_evaluator

    evaluator = dev_evaluator(tok, tc, stage.run_dir, stage.path("tasks"), stage.rank)
    if stage.rank == 0:
        print(f"distill: student {student.num_params():,} parameters, teacher "
              f"{teacher.num_params():,}; kd_alpha={tc.kd_alpha} T={tc.kd_temperature}")
    stage.record(params=student.num_params(), teacher_params=teacher.num_params(), **counts)
    objective = KDObjective(teacher, tc.kd_alpha, tc.kd_temperature, tc.label_smoothing)
    result = stage.train(student, objective, train_data, val_data=val_data, evaluator=evaluator,
                         tokenizer=tok)
    if stage.rank == 0:
        print(f"done: step {result.step} ({result.stopped}); final {result.final_dir}")
    return 0
