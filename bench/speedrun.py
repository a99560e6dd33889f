"""Pretraining recipes side by side on one machine: val loss against wall time and tokens.

    .venv/bin/python bench/speedrun.py --out docs/speedrun/NAME [--preset cpu]
        [--corpus DIR --tokenizer DIR]            (else built once with codeling's own stages)
        --arm base: --arm muon:optimizer=muon,muon_lr=0.02 --arm wsd:schedule=wsd ...
        [--common model.n_layer=4 ...] [--budget 600] [--slice 60] [--threads 1]
        --arm half:optimizer=muon,time_budget_s=300     (an arm's own, shorter budget)

Every arm is the preset plus its overrides (plus `--common`, for all arms alike), pretrained by
codeling's own loop for `--budget` seconds of its wall clock (`pretrain.time_budget_s`, so its
schedule anneals over the budget), or for its own `time_budget_s` when it sets one: a recipe given
half the baseline's time, its schedule fitted to that half, ending at or below the baseline's final
loss reaches the target in ≤ 0.5× the time, as a speedrun record is measured. The first arm is the
baseline. The arms run interleaved: each trains `--slice` seconds of its budget, pauses
(`train(pause_at_s=...)`, a saved step) and the next takes over, in the order A B C, then C B A,
..., so machine drift and other load hit every arm alike. Same seed, same data order (the same
windows at the same step), same eval windows: a repeated run differs only by timing. The compute
dtype is resolved once for all arms by training/hardware.py (the `auto` rule) unless an arm sets
it.

Per arm: the val loss and bits per byte (val loss in bits × the val split's tokens per byte) at
every eval against wall time (the loop's elapsed_s: steps and evals) and tokens; tokens/s; and
time-to-target: the wall time at which the arm's val loss first reaches the baseline's final val
loss (linear between evals), with its ratio to the baseline's whole time, and likewise tokens.
It writes OUT/speedrun.json and OUT/speedrun.png (both panels, the target as a line).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from codeling.config import load_config
from codeling.data import corpus_batches
from codeling.io import atomic_write_json, iter_jsonl
from codeling.model import CodelingLM
from codeling.objectives import LMObjective
from codeling.tokenizer import load_tokenizer
from codeling.train import read_metrics, seed_everything, train
from codeling.training.hardware import choose_cpu_dtype, cpu_info


def parse_arm(text: str) -> tuple[str, list[str]]:
    name, sep, rest = text.partition(":")
    if not sep or not name:
        raise SystemExit(f"--arm {text!r}: expected NAME:key=value,key=value (or NAME:)")
    return name, [o for o in rest.split(",") if o]


def build_data(work: Path, preset: str, corpus_mb: float) -> tuple[Path, Path]:
    """A corpus and a tokenizer made by codeling's own stages, once (reused when present)."""
    corpus, tok = work / "data" / "corpus", work / "data" / "tokenizer"
    cli = [sys.executable, "-m", "codeling.cli"]
    if not (corpus / "val.jsonl").exists():
        subprocess.run([*cli, "corpus", "--out", str(corpus), "--preset", preset, "--max-mb",
                        str(corpus_mb), "--no-progress"], check=True)
    if not (tok / "tokenizer.json").exists():
        subprocess.run([*cli, "tokenizer", "--corpus", str(corpus), "--out", str(tok),
                        "--preset", preset], check=True)
    return corpus, tok


def tokens_per_byte(corpus: Path, shards: Path) -> float:
    """The val split's tokens per UTF-8 byte (EOT tokens included): nats/token → bits/byte."""
    text_bytes = sum(len(row["text"].encode()) for _, row in iter_jsonl(corpus / "val.jsonl"))
    meta = json.loads((shards / "meta.json").read_text())
    return meta["tokens"]["val"] / max(text_bytes, 1)


class Arm:
    def __init__(self, name: str, overrides: list[str], args, corpus: Path, tok_dir: Path,
                 shards: Path):
        self.name, self.overrides = name, overrides
        self.cfg = load_config(args.preset, [*args.common, *overrides], section="pretrain")
        tc = self.cfg.pretrain
        self.own = any(o.split("=")[0].split(".")[-1] == "time_budget_s" for o in overrides)
        self.budget = tc.time_budget_s if self.own else args.budget
        if not 0 < self.budget <= args.budget:
            raise SystemExit(f"arm {name}: time_budget_s must be in (0, --budget]")
        tc.time_budget_s, tc.threads = self.budget, args.threads
        if tc.log_every and tc.eval_every % tc.log_every:
            raise SystemExit(f"arm {name}: eval_every must be a multiple of log_every (curves "
                             "take tokens and time from the eval's log line)")
        self.dir = args.work / "runs" / name
        self.corpus, self.tok_dir, self.shards = corpus, tok_dir, shards
        self.result = None

    def command(self, args) -> str:
        over = [*args.common, *self.overrides, *([] if self.own else
                                                 [f"time_budget_s={args.budget:g}"])]
        return (f"codeling pretrain --preset {args.preset} --run-dir RUN --corpus CORPUS "
                f"--tokenizer TOKENIZER {' '.join(over)}")

    def slice(self, until_s: float, first: bool) -> None:
        tc = self.cfg.pretrain
        tokenizer = load_tokenizer(self.tok_dir)
        seed_everything(tc.seed)  # the same initial weights as a plain pretrain run
        model = CodelingLM(self.cfg.model)
        train_data, val_data, _ = corpus_batches(self.corpus, tokenizer, self.shards, tc)
        self.result = train(model, LMObjective(tc.label_smoothing), train_data, tc, self.dir,
                            val_data=val_data, tokenizer=tokenizer, config=self.cfg,
                            resume=not first, progress=False, pause_at_s=until_s)

    def curve(self, tpb: float) -> list[dict]:
        return [{"step": r["step"], "tokens": r["tokens"], "elapsed_s": r["elapsed_s"],
                 "val_loss": r["val_loss"], "bpb": r["val_loss"] / math.log(2) * tpb}
                for r in read_metrics(self.dir) if "val_loss" in r and "tokens" in r]


def first_reach(curve: list[dict], target: float, key: str) -> float | None:
    """`key` (elapsed_s or tokens) where val loss first reaches `target`, linear between evals."""
    prev = None
    for point in curve:
        if point["val_loss"] <= target:
            if prev is None:
                return float(point[key])
            share = (prev["val_loss"] - target) / (prev["val_loss"] - point["val_loss"])
            return prev[key] + share * (point[key] - prev[key])
        prev = point
    return None


def summarise(arms: list[Arm], tpb: float) -> list[dict]:
    curves = [a.curve(tpb) for a in arms]
    base = curves[0][-1]
    out = []
    for arm, curve in zip(arms, curves):
        end = curve[-1]
        t_reach = first_reach(curve, base["val_loss"], "elapsed_s")
        n_reach = first_reach(curve, base["val_loss"], "tokens")
        out.append({
            "name": arm.name, "overrides": arm.overrides, "budget_s": arm.budget, "final": end,
            "tokens_per_s": end["tokens"] / end["elapsed_s"],
            "time_to_target_s": t_reach, "tokens_to_target": n_reach,
            "time_to_target_ratio": t_reach / base["elapsed_s"] if t_reach else None,
            "tokens_to_target_ratio": n_reach / base["tokens"] if n_reach else None,
            "curve": curve})
    return out


def plot(rows: list[dict], target: float, path: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, label in ((axes[0], "elapsed_s", "wall time (s, steps and evals)"),
                           (axes[1], "tokens", "tokens")):
        for row in rows:
            ratio = row["time_to_target_ratio"]
            tag = f" (target at {ratio:.2f}x)" if ratio else " (target not reached)"
            ax.plot([p[key] for p in row["curve"]], [p["val_loss"] for p in row["curve"]],
                    marker=".", label=row["name"] + (tag if key == "elapsed_s" else ""))
        ax.axhline(target, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("val loss (nats/token)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="where speedrun.json/.png go")
    p.add_argument("--work", type=Path, default=Path("/tmp/speedrun"), help="runs and data")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--corpus", type=Path)
    p.add_argument("--tokenizer", type=Path)
    p.add_argument("--corpus-mb", type=float, default=8.0, help="size of a corpus built here")
    p.add_argument("--arm", action="append", required=True, help="NAME:key=value,... (first: "
                   "the baseline)")
    p.add_argument("--common", action="append", default=[], help="key=value for every arm")
    p.add_argument("--budget", type=float, default=600.0, help="wall seconds per arm")
    p.add_argument("--slice", type=float, default=60.0, help="seconds per turn")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    named = [parse_arm(a) for a in args.arm]
    if len(named) < 2 or len({n for n, _ in named}) != len(named):
        raise SystemExit("--arm: two or more arms with distinct names")
    if (args.corpus is None) != (args.tokenizer is None):
        raise SystemExit("--corpus and --tokenizer go together (or neither: built here)")
    corpus, tok_dir = ((args.corpus, args.tokenizer) if args.corpus
                       else build_data(args.work, args.preset, args.corpus_mb))
    shards = args.work / "shards"
    base = load_config(args.preset, args.common, section="pretrain")
    hardware = {"cpu": cpu_info(), "dtype": base.pretrain.dtype}
    if base.pretrain.dtype == "auto":  # one choice for all arms: the ratio measures the recipe
        seed_everything(0)
        hardware = choose_cpu_dtype(CodelingLM(base.model), base.pretrain.batch_size,
                                    base.pretrain.seq_len, base.model.vocab_size)
        args.common = [*args.common, f"pretrain.dtype={hardware['dtype']}"]
        print(f"dtype {hardware['dtype']}: {hardware['dtype_reason']} "
              f"{hardware.get('dtype_speeds')}", flush=True)
    arms = [Arm(n, o, args, corpus, tok_dir, shards) for n, o in named]
    for arm in arms:
        if (arm.dir / "checkpoints").exists():
            raise SystemExit(f"{arm.dir} holds a run: remove it or pick another --work")
    rounds = math.ceil(args.budget / args.slice)
    t0 = time.time()
    for r in range(rounds):
        for arm in arms if r % 2 == 0 else arms[::-1]:  # A B C, C B A, ...
            if r * args.slice >= arm.budget:
                continue  # a shorter budget already spent
            arm.slice(min((r + 1) * args.slice, arm.budget), first=r == 0)
            val = (arm.result.last_val or {}).get("val_loss")
            print(f"round {r + 1}/{rounds} {arm.name}: step {arm.result.step} "
                  f"({arm.result.stopped}) val {val}  [{time.time() - t0:.0f} s]", flush=True)
    tpb = tokens_per_byte(corpus, shards)
    rows = summarise(arms, tpb)
    target = rows[0]["final"]["val_loss"]
    report = {"cpu": hardware["cpu"], "dtype": {k: v for k, v in hardware.items() if k != "cpu"},
              "preset": args.preset, "common": args.common, "budget_s": args.budget,
              "slice_s": args.slice, "threads": args.threads, "corpus": str(corpus),
              "tokenizer": str(tok_dir), "tokens_per_byte": tpb, "target_val_loss": target,
              "wall_s": time.time() - t0, "commands": {a.name: a.command(args) for a in arms},
              "arms": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "speedrun.json", report)
    plot(rows, target, args.out / "speedrun.png",
         f"{args.preset} preset, {args.budget:g} s per arm, interleaved by {args.slice:g} s; "
         f"{hardware['cpu']['name']}, {args.threads} thread(s), {hardware['dtype']}")
    print(f"\n{'arm':<14} {'val loss':>8} {'bpb':>6} {'tokens':>10} {'tok/s':>7} "
          f"{'to target':>10} {'ratio':>6}")
    for row in rows:
        f, t, ratio = row["final"], row["time_to_target_s"], row["time_to_target_ratio"]
        print(f"{row['name']:<14} {f['val_loss']:8.4f} {f['bpb']:6.3f} {f['tokens']:10,} "
              f"{row['tokens_per_s']:7.0f} {(f'{t:.0f} s' if t else 'never'):>10} "
              f"{(f'{ratio:.2f}x' if ratio else '-'):>6}")
    print(f"\nwrote {args.out / 'speedrun.json'} and speedrun.png")


if __name__ == "__main__":
    main()
