"""The driver every training stage (pretrain, sft, distill train) runs through.

    stage = open_stage(args, "sft", inputs={"init": True, "tasks": True}, fixed=("lora",))
    stage.need("init", "tasks")               # required for a new run, recorded for a resume
    stage.begin()                             # process group, threads, seed
    ... build model and data (stage.cfg, stage.tc, stage.rank, stage.world, stage.path("init"))
    stage.record(params=n, ...)               # run.json on rank 0
    result = stage.train(model, objective, train_data, val_data=..., evaluator=...)

    def main(args): return run_main("sft", run_sft, args)

Resume follows the one rule of `config.resolve_run_config`: the saved config plus the
overrides given now; another --preset, or a changed key that fixes the run's shape (model,
tokenizer, the stage's `fixed` keys), is an error. Inputs work the same way: each is taken from
the arguments, else from the resumed run's run.json, and a different path is an error. A new
run into a run dir that already holds checkpoints is refused before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from codeling.config import Config, ConfigError, resolve_run_config


class Stage:
    """One training stage's resolved config, inputs and process group."""

    def __init__(self, name: str, args: argparse.Namespace, cfg: Config, run_dir: Path,
                 inputs: dict[str, str | None], recorded: dict):
        self.name, self.args, self.cfg, self.run_dir = name, args, cfg, run_dir
        self.inputs, self.recorded = inputs, recorded
        self.overrides: list[str] = []
        self.resume = bool(getattr(args, "resume", False))
        self.resuming = self.resume and (run_dir / "config.toml").exists()  # vs a new run
        self.rank, self.world = 0, 1

    @property
    def tc(self):
        """This stage's training section (cfg.pretrain / cfg.sft / cfg.distill)."""
        return getattr(self.cfg, self.name)

    def path(self, key: str) -> Path | None:
        value = self.inputs.get(key)
        return Path(value) if value else None

    def need(self, *keys: str) -> None:
        missing = [k for k in keys if not self.inputs.get(k)]
        if missing:
            flags = " and ".join(f"--{k.replace('_', '-')}" for k in missing)
            raise ConfigError(f"{flags} {'is' if len(missing) == 1 else 'are'} required for a "
                              "new run")

    def adopt_model(self, model_cfg, source: Path) -> None:
        """An --init run's model is its checkpoint's: a model.* override that disagrees with it
        is an error, not silently dropped."""
        from codeling.config import parse_override

        for text in self.overrides:
            path, value = parse_override(text)
            if len(path) == 2 and path[0] == "model" and getattr(model_cfg, path[1], value) != value:
                raise ConfigError(f"{text}: the model comes from {source}, which has "
                                  f"model.{path[1]}={getattr(model_cfg, path[1])!r}; drop the "
                                  "override or start from another checkpoint")
        self.cfg.model = model_cfg

    def begin(self) -> None:
        """Process group (torchrun), CPU threads, and the seed of the initial weights."""
        import torch

        from codeling.train import init_distributed, seed_everything

        self.rank, self.world = init_distributed(self.tc.device)  # its backend: the device's
        if self.tc.threads > 0:  # -1 ("auto"): the training loop measures and sets it
            torch.set_num_threads(self.tc.threads)
        seed_everything(self.tc.seed)  # the same initial weights on every rank and every rerun

    def record(self, **fields) -> None:
        """run.json: the stage, its inputs (what a resume reuses) and the stage's counts."""
        from codeling.io import atomic_write_json

        if self.rank != 0:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.run_dir / "run.json", {
            "stage": self.name, **self.inputs, "world_size": self.world, **fields})

    def train(self, model, objective, train_data, **kw):
        """`train.train` with this stage's section, run dir, resume flag and config."""
        from codeling.train import train

        return train(model, objective, train_data, self.tc, self.run_dir, resume=self.resume,
                     config=self.cfg, progress=not getattr(self.args, "no_progress", False), **kw)


def open_stage(args: argparse.Namespace, name: str, inputs: dict[str, bool],
               fixed: Sequence[str] = (), overrides: Sequence[str] = (),
               preset: str | None = None) -> Stage:
    """Resolve a stage's config and inputs by the one resume rule.

    `inputs` maps an argument name to whether it is a path; each is taken from the arguments,
    else from the resumed run's run.json. `overrides` are added after the command line's (a
    flag such as --lora is `sft.mode=lora`); `preset` replaces args.preset for a new run."""
    from codeling.checkpoint import step_checkpoints

    run_dir = Path(args.run_dir)
    resume = bool(getattr(args, "resume", False))
    if not resume and step_checkpoints(run_dir / "checkpoints"):
        raise FileExistsError(f"{run_dir / 'checkpoints'} already holds checkpoints: resume the "
                              "run (--resume) or choose a new run dir")
    recorded: dict = {}
    if resume and (run_dir / "run.json").exists():
        recorded = json.loads((run_dir / "run.json").read_text())
    resolved: dict[str, str | None] = {}
    for key, is_path in inputs.items():
        given = getattr(args, key, None)
        value = str(Path(given).resolve()) if given and is_path else given
        old = recorded.get(key)
        if value and old and value != old:
            raise ConfigError(f"--{key.replace('_', '-')} {given} but {run_dir} was started with "
                              f"{old}: a run's inputs are fixed; start a new run dir")
        resolved[key] = value or old
    all_overrides = [*(getattr(args, "overrides", None) or ()), *overrides]
    cfg = resolve_run_config(run_dir, preset or getattr(args, "preset", None), all_overrides,
                             name, resume, fixed)
    stage = Stage(name, args, cfg, run_dir, resolved, recorded)
    stage.overrides = all_overrides
    return stage


# A failed run (exit 1), as (module, class): only an imported module can have raised one, so
# looking them up in sys.modules keeps `codeling evaluate` free of torch.
RUNTIME_ERRORS = (("codeling.training.step", "TrainingError"),
                  ("codeling.checkpoint", "CheckpointError"),
                  ("codeling.evaluate.sandbox", "SandboxError"),
                  ("codeling.tasks.teacher", "TeacherError"),
                  ("codeling.backends", "SamplesFailed"))


def run_main(label: str, fn: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
             runtime_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Every stage's `main` (cli.main runs each through it): bad input or a run dir in the way
    exits 2, a failed run exits 1, each with one line on stderr and no traceback; a process
    group this run opened is always closed."""
    from codeling.io import DataError

    try:
        return int(fn(args) or 0)
    # ValueError too: torch, tokenizers and our own checks raise it for settings that cannot
    # work (a budget larger than the context, a bad top_p), and a newcomer needs the line
    except (ConfigError, DataError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"codeling {label}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        loaded = tuple(getattr(sys.modules[m], c) for m, c in RUNTIME_ERRORS if m in sys.modules)
        if not isinstance(e, (*loaded, *runtime_errors)):
            raise  # a bug: its traceback is the report
        print(f"codeling {label}: error: {e}", file=sys.stderr)
        return 1
    finally:
        dist = sys.modules.get("torch.distributed")
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
