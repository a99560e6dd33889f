"""Optional experiment loggers beside `metrics.jsonl` (which is always written): off by default.

    loggers = make_loggers(cfg.pretrain, run_dir)   # cfg.<section>.loggers = ["tensorboard"]
    for lg in loggers: lg.log(row, step)            # each metrics line the loop writes
    for lg in loggers: lg.close()

- "tensorboard": event files in `RUN_DIR/tensorboard/` (`tensorboard --logdir RUN_DIR`); needs
  the `tensorboard` package.
The package is not a codeling dependency (it is a dev one, so the tests run it): asking for a
logger whose package is missing is a ConfigError that says what to install, raised before training starts. Only numeric values are
logged (strings such as a phase name and booleans are skipped).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from codeling.config import ConfigError


class Logger(Protocol):
    def log(self, metrics: dict, step: int) -> None: ...

    def close(self) -> None: ...


def scalars(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step"}


class TensorBoardLogger:
    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter  # the training loop has torch already

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, metrics: dict, step: int) -> None:
        for key, value in scalars(metrics).items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


# name -> (package that must be importable, class)
# (MLflow was here once; no test could run it, so it went rather than rot)
LOGGERS: dict[str, tuple[str, type]] = {"tensorboard": ("tensorboard", TensorBoardLogger)}


def make_loggers(cfg, run_dir: str | Path) -> list[Logger]:
    """The loggers named in `cfg.loggers` (a TrainConfig section, or a list of names)."""
    names = cfg if isinstance(cfg, (list, tuple)) else getattr(cfg, "loggers", [])
    for name in names:  # check all before creating any, so a typo leaves no half-made logger
        if name not in LOGGERS:
            raise ConfigError(f"loggers: unknown logger {name!r}; choose from "
                              f"{', '.join(LOGGERS)}")
        package = LOGGERS[name][0]
        try:
            importlib.import_module(package)
        except ImportError as e:
            raise ConfigError(f"loggers: {name!r} needs the {package} package, which is not "
                              f"installed: pip install {package} (or remove it from loggers)") from e
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return [LOGGERS[name][1](run_dir) for name in dict.fromkeys(names)]
