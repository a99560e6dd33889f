"""`codeling pipeline --preset NAME --run-dir DIR`: every stage, end to end, resumable.

    corpus → tokenizer → pretrain → tasks → sft → evaluate (mini, humaneval, ...) → report

Layout of DIR:
  data/corpus/  data/tokenizer/  data/tasks/     (or pipeline.data_dir, to share data)
  pretrain/  sft/                                 (training runs)
  eval/<benchmark>/samples.jsonl, results.jsonl, summary.json
  report/report.md (+ .html, plots)
  pipeline.json                                   (per-stage status and wall time)
A stage whose output is complete is skipped; an interrupted training stage resumes from its
newest checkpoint. Each stage runs through the same CLI a user would type, with the preset and
the `section.key=value` overrides passed on, and the exact command is logged in pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from codeling.config import ConfigError, add_config_arguments, config_from_args
from codeling.io import atomic_write_json


def _done_training(run: Path) -> bool:
    return (run / "checkpoints" / "final").is_dir()


def _started_training(run: Path) -> bool:
    from codeling.checkpoint import latest_checkpoint

    return latest_checkpoint(run / "checkpoints") is not None


def best_checkpoint(run: Path) -> Path:
    for name in ("best", "final"):
        if (run / "checkpoints" / name).is_dir():
            return run / "checkpoints" / name
    raise FileNotFoundError(f"{run}: no best or final checkpoint")


class Pipeline:
    def __init__(self, args: argparse.Namespace):
        self.cfg = config_from_args(args)
        bad = [o for o in args.overrides if "=" in o and "." not in o.split("=", 1)[0]]
        if bad:
            raise ConfigError(f"pipeline overrides need a section, e.g. sft.lr=1e-3: {bad}")
        self.args, self.run = args, Path(args.run_dir)
        self.data = Path(self.cfg.pipeline.data_dir) if self.cfg.pipeline.data_dir \
            else self.run / "data"
        self.state_path = self.run / "pipeline.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {
            "preset": args.preset, "overrides": args.overrides, "stages": {}}
        self.state["host"] = {"machine": platform.machine(), "processor": platform.processor(),
                              "python": platform.python_version()}

    def common(self) -> list[str]:
        return ["--preset", self.args.preset, *self.args.overrides]

    def cli(self, stage: str, argv: list[str]) -> None:
        from codeling.cli import main

        start = time.time()
        rec = self.state["stages"].setdefault(stage, {})
        rec.update({"command": "codeling " + " ".join(argv), "status": "running"})
        self.save()
        print(f"\n=== pipeline: codeling {' '.join(argv)}", flush=True)
        rc = main(argv)
        rec["seconds"] = round(rec.get("seconds", 0) + time.time() - start, 1)
        rec["status"] = "done" if rc == 0 else f"failed (exit {rc})"
        self.save()
        if rc != 0:
            raise SystemExit(f"codeling pipeline: stage {stage} failed (exit {rc}); fix it and "
                             "rerun the same command to resume")

    def skip(self, stage: str, why: str) -> None:
        print(f"=== pipeline: {stage}: {why}, skipped", flush=True)

    def save(self) -> None:
        self.state["wall_seconds"] = round(sum(s.get("seconds", 0)
                                               for s in self.state["stages"].values()), 1)
        atomic_write_json(self.state_path, self.state)

    # ---- stages ----
    def corpus(self) -> None:
        out = self.data / "corpus"
        if (out / "stats.json").exists():
            return self.skip("corpus", "already built")
        self.cli("corpus", ["corpus", "--out", str(out), "--no-progress", *self.common()])

    def tokenizer(self) -> None:
        out = self.data / "tokenizer"
        if (out / "tokenizer.json").exists() and (out / "stats.json").exists():
            return self.skip("tokenizer", "already trained")
        self.cli("tokenizer", ["tokenizer", "--corpus", str(self.data / "corpus"), "--out",
                               str(out), *self.common()])

    def pretrain(self) -> None:
        run = self.run / "pretrain"
        if _done_training(run):
            return self.skip("pretrain", "finished")
        argv = ["pretrain", "--run-dir", str(run), "--corpus", str(self.data / "corpus"),
                "--tokenizer", str(self.data / "tokenizer"), "--no-progress", *self.common()]
        self.cli("pretrain", argv + (["--resume"] if _started_training(run) else []))

    def tasks(self) -> None:
        out, t = self.data / "tasks", self.cfg.tasks
        if (out / "report.json").exists():
            return self.skip("tasks", "already built")
        argv = ["tasks", "--out", str(out), "--sources", ",".join(t.sources), "--n", str(t.n),
                "--seed", str(t.seed), "--levels", ",".join(map(str, t.levels)),
                "--max-solution-lines", str(t.mbpp_max_lines), "--val-fraction",
                str(t.val_fraction), "--quiet"]
        if t.categories:
            argv += ["--categories", ",".join(t.categories)]
        if t.allow_contamination:
            argv.append("--allow-contamination")
        self.cli("tasks", argv)

    def sft(self) -> None:
        run = self.run / "sft"
        if _done_training(run):
            return self.skip("sft", "finished")
        argv = ["sft", "--init", str(self.pretrained()), "--tasks", str(self.data / "tasks"),
                "--run-dir", str(run), "--no-progress", *self.common()]
        self.cli("sft", argv + (["--resume"] if _started_training(run) else []))

    def pretrained(self) -> Path:
        return self.run / "pretrain" / "checkpoints" / "final"

    def final_model(self) -> Path:
        if "sft" in self.cfg.pipeline.stages:
            return best_checkpoint(self.run / "sft")
        return self.pretrained()

    def evaluate(self) -> None:
        e = self.cfg.eval
        for bench in e.benchmarks:
            out = self.run / "eval" / bench
            if (out / "summary.json").exists():
                self.skip(f"evaluate {bench}", "already evaluated")
                continue
            out.mkdir(parents=True, exist_ok=True)
            samples = out / "samples.jsonl"
            if not samples.exists():
                self.cli(f"generate {bench}", [
                    "generate", "--checkpoint", str(self.final_model()), "--benchmark", bench,
                    "--out", str(samples), "--n", str(e.n), "--temperature", str(e.temperature),
                    "--top-p", str(e.top_p), "--max-new-tokens", str(e.max_new_tokens),
                    "--batch-size", str(e.batch_size), "--quiet"])
            self.cli(f"evaluate {bench}", [
                "evaluate", "--benchmark", bench, "--samples", str(samples), "--out", str(out),
                "--timeout", str(e.timeout), "--quiet", "--resume"])
            summary = json.loads((out / "summary.json").read_text())
            self.state.setdefault("results", {})[bench] = {
                k: v for k, v in summary.items()
                if k.startswith("pass@") or k in ("syntax_valid", "collapse_rate")}
            self.save()

    def report(self) -> None:
        runs = [str(p) for p in (self.run / "pretrain", self.run / "sft") if p.exists()]
        self.cli("report", ["report", *runs, "--out", str(self.run / "report")])

    def go(self) -> int:
        order = ["corpus", "tokenizer", "pretrain", "tasks", "sft", "evaluate", "report"]
        unknown = [s for s in self.cfg.pipeline.stages if s not in order]
        if unknown:
            raise ConfigError(f"unknown pipeline stages {unknown}; valid: {order}")
        self.run.mkdir(parents=True, exist_ok=True)
        start = time.time()
        for stage in order:
            if stage in self.cfg.pipeline.stages:
                getattr(self, stage)()
        self.save()
        print(f"\n=== pipeline done in {time.time() - start:.0f} s this call "
              f"({self.state['wall_seconds']:.0f} s of stage time in all); results: "
              f"{json.dumps(self.state.get('results', {}))}")
        return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, default_preset="smoke")
    p.add_argument("--run-dir", required=True)


def main(args: argparse.Namespace) -> int:
    return Pipeline(args).go()
