"""The checkpoint keeper: `checkpoints/step_N` (resumable, newest keep_n), `best/`, `final/`.

A step checkpoint holds the weights (`save_fn`) and `trainer_state.pt`: optimizer, schedule,
step, every RNG state, data position, best-so-far. Only rank 0 writes; every write is a temp
folder renamed into place, so a killed run leaves the last good checkpoint whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from codeling import checkpoint as ckpt
from codeling.config import Config, save_config
from codeling.training.dist import Dist

STATE_FORMAT = 1


class CheckpointKeeper:
    def __init__(self, run_dir: Path, model: nn.Module, save_fn: Callable[[nn.Module, Path], None],
                 load_fn: Callable[[nn.Module, Path], object], keep: int, save_every: int,
                 dist: Dist):
        self.run_dir, self.dir = run_dir, run_dir / "checkpoints"
        self.model, self.save_fn, self.load_fn = model, save_fn, load_fn
        self.keep, self.save_every, self.dist = keep, save_every, dist

    def prepare(self, config: Config | None) -> None:
        """Create the run dir and record the resolved config."""
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if config is not None:
                save_config(config, self.run_dir / "config.toml")
        self.dist.barrier()

    def due(self, step: int) -> bool:
        return self.save_every > 0 and step % self.save_every == 0

    def latest_state(self) -> tuple[Path, dict] | None:
        """Load the newest step_N's weights into the model; (its path, its trainer state)."""
        if self.dist.is_main:
            ckpt.remove_partial_dirs(self.dir)
        self.dist.barrier()
        path = ckpt.latest_checkpoint(self.dir)
        if path is None:
            return None
        state = ckpt.load_trainer_state(path)  # first: a corrupt state must not half-load
        self.load_fn(self.model, path)
        return path, state

    def refuse_existing(self) -> None:
        """A fresh run must not mix with another run's checkpoints."""
        if ckpt.step_checkpoints(self.dir):
            raise FileExistsError(f"{self.dir} already holds checkpoints: resume the run "
                                  "(--resume) or choose a new run dir")

    def has_step(self, step: int) -> bool:
        return (self.dir / f"step_{step}").exists()

    def save_step(self, step: int, state: dict) -> None:
        """checkpoints/step_N, then prune to the newest keep_n (every rank's state is alike)."""
        if self.dist.is_main:
            def fill(tmp: Path) -> None:
                self.save_fn(self.model, tmp)
                ckpt.save_trainer_state(tmp, {"format": STATE_FORMAT, **state})

            ckpt.write_dir_atomically(self.dir / f"step_{step}", fill)
            ckpt.prune_checkpoints(self.dir, self.keep)
        self.dist.barrier()

    def save_best(self) -> None:
        if self.dist.is_main:
            ckpt.write_dir_atomically(self.dir / "best", lambda d: self.save_fn(self.model, d))
        self.dist.barrier()

    def save_final(self) -> Path | None:
        final = None
        if self.dist.is_main:
            final = ckpt.write_dir_atomically(self.dir / "final",
                                              lambda d: self.save_fn(self.model, d))
        self.dist.barrier()
        return final
