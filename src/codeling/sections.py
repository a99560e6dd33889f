"""The config sections: one dataclass per stage (config.py composes them into `Config`).

To add a key: a typed field with its default and a short comment, in the section of the stage
that reads it (a training stage's own class: PretrainConfig, SftConfig, DistillConfig;
TrainConfig only for what the loop itself reads). See config.py for presets and overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class CorpusConfig:
    sources: list[str] = field(default_factory=list)  # empty: this Python's stdlib + site-packages
    max_mb: float = 100.0  # stop harvesting after this many MB of kept code
    val_fraction: float = 0.02  # split by file
    near_dup_threshold: float = 0.85  # MinHash Jaccard, as codeparrot
    num_perm: int = 128
    shingle_size: int = 5  # word n-grams hashed into the MinHash
    min_chars: int = 100  # smaller files (empty __init__.py, one import) are dropped
    max_file_kb: float = 1000.0  # one huge file should not become a big share of the corpus
    seed: int = 0
    # the function-level corpus (corpus_mix.py; the defaults: files only, as before): shares
    # of bytes that are function units and exercises (never of [tasks]' dev families)
    units: float = 0.0
    exercises: float = 0.0
    quality: float = 1.0  # top share of files and of units by quality score kept
    anneal_mb: float = 0.0  # anneal.jsonl: the best-ranked train documents (pretrain.anneal)
    unit_max_lines: int = 80
    unit_min_resolved: float = 1.0  # share of a unit's free names that must resolve
    twin_check: bool = True  # behavioural twin check of units, exercises (when mixing)
    workers: int = 0  # sandbox workers for the checks; 0: one per core


@dataclass
class TokenizerConfig:
    vocab_size: int = 8192
    min_frequency: int = 2
    train_mb: float = 50.0  # BPE is trained on at most this much of the train split
    pretokenizer: str = "python"  # python | gpt2 (see tokenizer.PRETOKENIZERS)


@dataclass
class ModelConfig:
    vocab_size: int = 8192
    n_layer: int = 8
    n_head: int = 8
    n_kv_head: int = 8
    d_model: int = 512
    d_ff: int = 0  # 0: SwiGLU width 8/3·d_model rounded up to a multiple of 64
    max_seq_len: int = 1024
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True  # small vocabulary: tying saves a big share of the parameters
    init_std: float = 0.02
    # Block options (the modded-nanogpt / nanochat speedrun block); all off is the Llama block.
    # hf_arch.py names the HF architecture each combination loads as, or why none does.
    qk_norm: bool = False  # RMSNorm on each head's q and k before RoPE (Qwen3's q_norm/k_norm)
    mlp: str = "swiglu"  # swiglu | relu2 (ungated ReLU², 1.5x as wide: the same parameters)
    norm_weights: bool = True  # false: RMSNorms without gains, as nanochat and modded-nanogpt
    embed_norm: bool = False  # RMSNorm on the token embeddings before the first block
    logit_softcap: float = 0.0  # logits = c·tanh(logits / c); 0: off
    zero_init_proj: bool = False  # o_proj and down_proj start at zero (init only)
    zero_init_head: bool = False  # an untied lm_head starts at zero (init only)
    # no HF architecture has these two, so a model with them saves for codeling only:
    value_embeds: int = 0  # embedding tables mixed into v of the first and last this-many layers
    resid_scalars: bool = False  # learnable per-layer weights of the residual and of x0

    @property
    def ffn_dim(self) -> int:
        if self.d_ff:
            return self.d_ff
        swiglu = -(-int(8 * self.d_model / 3) // 64) * 64
        # ReLU² has two matrices to SwiGLU's three: 1.5x the width keeps the parameter count
        return swiglu * 3 // 2 if self.mlp == "relu2" else swiglu

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


@dataclass
class TrainConfig:
    """What the one training loop reads; every training section has these keys.

    A stage adds its own keys in a subclass (PretrainConfig, SftConfig, DistillConfig), so a
    key another stage owns (`pretrain.kd_alpha`) is an error instead of a silent no-op.
    """

    steps: int = 1000
    batch_size: int = 16  # sequences per micro-batch per process
    grad_accum: int = 1
    seq_len: int = 256
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decays to lr·min_lr_ratio
    warmup: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    log_every: int = 10
    eval_every: int = 200  # val loss (and, for sft/distill, dev tasks by generation)
    eval_batches: int = 20
    save_every: int = 500
    keep_checkpoints: int = 2
    early_stop: int = 0  # stop after this many evals without improvement (0: never)
    # wall seconds the loop may take (steps, evals, checkpoint writes; over resumes); 0: off.
    # Training ends at `steps` or here, whichever comes first, and the cosine anneals over
    # whichever is nearer, so a slower machine trains fewer steps, not an unfinished schedule
    time_budget_s: float = 0.0
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "auto"  # auto (bf16 autocast on CUDA) | fp32 | bf16
    compile: bool = False
    threads: int = 0  # torch CPU threads; 0 leaves torch's default; -1 ("auto") measures 1 and all
    # cores (with each dtype `dtype` allows) at start-up and keeps the fastest (hardware.py)
    # one device's peak FLOP/s for the logged MFU; 0: training/flops.py's table of CUDA devices
    # (none for CPUs: MFU is then null)
    peak_flops: float = 0.0
    loggers: list[str] = field(default_factory=list)  # extra sinks: "tensorboard"
    # the lr after warmup: "cosine" down to lr·min_lr_ratio, or "wsd" (warmup-stable-decay):
    # flat, then down to lr·min_lr_ratio over the last decay_share of the steps or time budget,
    # linearly or as 1-sqrt (decay_shape); training/optim.py lr_at
    schedule: str = "cosine"
    decay_share: float = 0.2
    decay_shape: str = "linear"  # linear | sqrt
    # the loop reads these on every stage; only task stages may set curriculum (a field there)
    # and only pretraining the optimizer (Muon was tuned on pretraining alone; SFT keeps AdamW)
    curriculum: ClassVar[tuple] = ()
    optimizer: ClassVar[str] = "adamw"


@dataclass
class PretrainConfig(TrainConfig):
    # "adamw" on every weight, or "muon": torch.optim.Muon on the blocks' 2-D matrices at
    # muon_lr (its momentum warmed up from 0.85 over muon_momentum_warmup steps), AdamW at lr on
    # embeddings, head, norms and scalars (training/optim.py make_optimizer)
    optimizer: str = "adamw"
    muon_lr: float = 0.02
    muon_momentum: float = 0.95
    muon_momentum_warmup: int = 300
    muon_weight_decay: float = 0.0
    # the last share of the budget (steps or time budget) draws from the corpus's anneal.jsonl
    anneal: float = 0.0


@dataclass
class TaskTrainConfig(TrainConfig):
    """Training on task/solution pairs (sft, distill): evaluation by generation, curriculum."""

    eval_mini: bool = True  # generate + execute the dev tasks at each eval
    eval_max_new_tokens: int = 160
    # generate on a fixed stratified subset of this many dev tasks at each eval (0: all); the
    # last eval generates the whole dev set too (evaluate/live.py)
    eval_dev_subset: int = 0
    eval_solution_loss: bool = True  # teacher-forced loss of every dev solution at each eval
    # also pass@1 from this many samples per subset task at eval_temperature (0: off)
    eval_samples: int = 0
    eval_temperature: float = 0.8
    # batch widths round up to a multiple of this (1: each batch to its longest example); it
    # keeps bf16 autocast's CPU step steady over a run, but was not faster than fp32 with exact
    # widths here (docs/RESULTS.md runs 19-20)
    pad_multiple: int = 1
    # curriculum phases, e.g. [{levels=[1], steps=500}, {levels=[1,2], steps=1000}]
    curriculum: list[dict] = field(default_factory=list)


@dataclass
class SftConfig(TaskTrainConfig):
    mode: str = "lora"  # lora | full
    merge: bool = False  # write a merged checkpoint at the end of LoRA training
    mix_pretrain: float = 0.0  # share of batches that are pretraining windows (0: off)


@dataclass
class DistillConfig(TaskTrainConfig):
    kd_alpha: float = 0.5  # weight of the teacher's distribution vs the solution tokens
    kd_temperature: float = 2.0


@dataclass
class LoraSection:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class TasksConfig:
    sources: list[str] = field(default_factory=lambda: ["mbpp", "synthetic"])
    n: int = 1000  # synthetic tasks requested
    seed: int = 0
    levels: list[int] = field(default_factory=lambda: [1, 2, 3])
    categories: list[str] = field(default_factory=list)  # empty: all
    val_fraction: float = 0.05
    mbpp_max_lines: int = 20
    allow_contamination: bool = False
    timeout: float = 5.0  # seconds per validation run of a canonical solution
    workers: int = 0  # sandbox workers for validation; 0: one per core
    composed_ratio: float = 0.4  # share of synthetic tasks composed of 2-4 steps (compose.py)
    # ablations of the prompt-shape levers; dev keeps every style either way
    styles: list[str] = field(default_factory=list)  # synthetic prompt styles; empty: all
    mbpp_styles: bool = True  # MBPP train/val prompts rendered in several styles (augmentation)
    # share of synthetic tasks whose description calls the arguments by their type ("the given
    # list"), so the names are only in the signature (styles.indirect_names); dev: names always
    indirect_refs: float = 0.0
    # share of synthetic tasks whose arguments are pseudo-words (names.novel_arg_name), which
    # only the signature can supply; dev: never
    novel_names: float = 0.0
    dev_from: str = ""  # an earlier build's folder: reuse its dev set (one dev for ablations)
    # the dev set (tasks/dev.py): its size, how many of it are held-out MBPP tasks, and the
    # share of its synthetic tasks composed from held-out composition recipes
    dev_size: int = 100
    dev_mbpp: int = 40
    dev_composed: float = 0.0


@dataclass
class EvalConfig:
    benchmarks: list[str] = field(default_factory=lambda: ["mini"])
    n: int = 1  # samples per task
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    max_new_tokens: int = 384
    batch_size: int = 16
    timeout: float = 0.0  # seconds per sample; 0: the benchmark's own (5 s for a task file)
    memory_mb: int = 0  # address-space limit per sample; 0: the benchmark's own (else 1024)
    workers: int = 0  # sandbox workers; 0: one per core
    select: str = ""  # "" | "examples": n samples, the prompt's examples pick one (filtered@n)
    # pipeline: also sample filtered_k per task and report filtered@K beside greedy pass@1 (0: off)
    filtered_k: int = 0
    filtered_temperature: float = 0.8
    filtered_top_p: float = 0.95


@dataclass
class SelftrainConfig:
    """`codeling selftrain`: sample, keep what passes the task's tests, fine-tune (selftrain.py)."""

    rounds: int = 2
    k: int = 4  # samples per prompt per round
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    batch_size: int = 16
    fresh_tasks: int = 200  # new generator tasks per round (families of the dev set excluded)
    max_prompts: int = 0  # cap on the pool per round (0: all)
    mix_ratio: float = 1.0  # original training examples per accepted solution in the fine-tune
    max_per_task: int = 2  # accepted solutions kept per task per round
    timeout: float = 5.0  # seconds per sandboxed test run
    workers: int = 0  # sandbox workers; 0: one per core
    seed: int = 0
    chunk: int = 32  # prompts sampled and judged per resumable step
    stop: list[str] = field(default_factory=list)  # empty: HumanEval's stop sequences
    eval_sets: list[str] = field(default_factory=list)  # decontaminate against; empty: all


@dataclass
class PipelineConfig:
    stages: list[str] = field(default_factory=lambda: [
        "corpus", "tokenizer", "pretrain", "tasks", "sft", "evaluate", "report"])
    data_dir: str = ""  # empty: <run-dir>/data
