"""The parts of the one training loop (`codeling.train.train` puts them together).

- `dist`: the process group, the device, collective helpers;
- `optim`: parameter groups, AdamW, the warmup-cosine schedule, curriculum phases, autocast;
- `step`: one optimizer step (gradient accumulation, DDP no_sync) and the NaN guard;
- `checkpoints`: `checkpoints/step_N` (resume state, newest keep_n), `best/`, `final/`;
- `evals`: when to evaluate, validation loss, the evaluator, best selection, early stop;
- `metrics_log`: `metrics.jsonl`, the optional loggers and the progress bar.
"""
