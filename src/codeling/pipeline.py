"""`codeling pipeline --preset NAME --run-dir DIR`: every stage, end to end, fingerprinted.

    corpus → tokenizer → pretrain → tasks → sft → evaluate (mini, humaneval, ...) → report

Layout of DIR:
  data/corpus/  data/tokenizer/  data/tasks/     (or pipeline.data_dir, to share data)
  pretrain/  sft/                                 (training runs)
  eval/<benchmark>/samples.jsonl, results.jsonl, summary.json
  eval/<benchmark>/filtered/                      (eval.filtered_k > 0: K sampled candidates
                                                   per task, --select examples, judged)
  report/report.md (+ .html, plots)
  stale/<stage>-<old fingerprint>/                (outputs a changed config replaced)
  pipeline.json                                   (per-stage status, changed keys, wall time)
Each stage's output folder holds `fingerprint.json`: a hash of the config sections the stage
reads (DEPENDS) and of its inputs' fingerprints. On a rerun a stage whose fingerprint matches is
reused (or, if it was interrupted, resumed: training from its newest checkpoint); one whose
fingerprint changed is moved aside to stale/ and rebuilt, and so, through their inputs'
fingerprints, is everything downstream. `--force STAGE` rebuilds a stage and its downstream.
Each stage runs through the same CLI a user would type, with the preset and the
`section.key=value` overrides passed on (stages read their settings from the config, never
from flags the pipeline translates), and the exact command is logged in pipeline.json.

pipeline.json `results[<benchmark>]`: the greedy (eval.n, eval.temperature) `pass@k`,
`syntax_valid`, `collapse_rate`, `name_error_rate`; with eval.filtered_k = K > 0 also
`filtered@K` (one of K samples chosen by the prompt's own examples; never called pass@1) and
`raw_pass@k` (unbiased pass@k of those K raw samples, k <= K), each under its own name, and
`filtered` (k, temperature, top_p, how the selection went). Greedy pass@1 stays the headline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from pathlib import Path

from codeling.config import (
    ConfigError,
    ModelConfig,
    add_config_arguments,
    config_from_args,
    config_to_dict,
)
from codeling.io import atomic_write_json

STAGES = ["corpus", "tokenizer", "pretrain", "tasks", "sft", "evaluate", "report"]
# stage -> (config sections that decide its output, stages whose output it reads)
DEPENDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "corpus": (("corpus",), ()),
    "tokenizer": (("tokenizer",), ("corpus",)),
    "pretrain": (("model", "pretrain"), ("corpus", "tokenizer")),
    "tasks": (("tasks",), ()),
    "sft": (("sft", "lora"), ("pretrain", "tasks")),
    "evaluate": (("eval",), ("sft",)),  # ("pretrain",) when the pipeline has no sft stage
    "report": ((), ("pretrain", "sft", "evaluate")),
}
# ModelConfig's block options (hf_arch.py): at their defaults (the Llama block) they stay out of
# the fingerprint, so a run from before the options keeps its own
BLOCK_OPTIONS = ("qk_norm", "mlp", "norm_weights", "embed_norm", "logit_softcap",
                 "zero_init_proj", "zero_init_head", "value_embeds", "resid_scalars")
# keys that change how fast a stage runs or what it prints, not what it makes
NOT_FINGERPRINTED = {"log_every", "threads", "loggers", "workers", "peak_flops"}
# eval keys that only matter when eval.filtered_k > 0 (off: left out, so old runs keep theirs)
FILTERED_KEYS = ("filtered_k", "filtered_temperature", "filtered_top_p")
FINGERPRINT = "fingerprint.json"
# corpus keys of the function-level mixture (left out while it is off), and the [tasks] keys
# that decide which dev families and recipes the corpus's exercises keep out
CORPUS_MIX_KEYS = ("units", "exercises", "quality", "anneal_mb", "unit_max_lines",
                   "unit_min_resolved", "twin_check")
DEV_KEYS = ("seed", "levels", "categories", "dev_from")


def best_checkpoint(run: Path) -> Path:
    for name in ("best", "final"):
        if (run / "checkpoints" / name).is_dir():
            return run / "checkpoints" / name
    raise FileNotFoundError(f"{run}: no best or final checkpoint")


def _flat(d: dict, prefix: str = "") -> dict:
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_keys(old: dict | None, new: dict) -> list[str]:
    """What differs between two fingerprint records: config keys, then changed inputs."""
    if not old:
        return ["(no fingerprint: built before fingerprints)"]
    a, b = _flat(old.get("config", {})), _flat(new["config"])
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    inputs = sorted(s for s in old.get("inputs", {}).keys() | new["inputs"].keys()
                    if old.get("inputs", {}).get(s) != new["inputs"].get(s))
    return keys + [f"input {s}" for s in inputs]


class Pipeline:
    def __init__(self, args: argparse.Namespace):
        self.cfg = config_from_args(args)
        bad = [o for o in args.overrides if "=" in o and "." not in o.split("=", 1)[0]]
        if bad:
            raise ConfigError(f"pipeline overrides need a section, e.g. sft.lr=1e-3: {bad}")
        self.args, self.run = args, Path(args.run_dir)
        self.active = self.cfg.pipeline.stages
        unknown = [s for s in self.active + list(args.force or []) if s not in STAGES]
        if unknown:
            raise ConfigError(f"unknown pipeline stages {unknown}; valid: {STAGES}")
        self.data = Path(self.cfg.pipeline.data_dir) if self.cfg.pipeline.data_dir \
            else self.run / "data"
        self.state_path = self.run / "pipeline.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {
            "stages": {}}
        self.state.update({"preset": args.preset, "overrides": args.overrides,
                           "force": list(args.force or []),
                           "host": {"machine": platform.machine(),
                                    "processor": platform.processor(),
                                    "python": platform.python_version()}})
        self.fingerprints: dict[str, str] = {}
        self.forced = self._downstream(set(args.force or []))

    def _inputs(self, stage: str) -> tuple[str, ...]:
        ins = DEPENDS[stage][1]
        if stage == "evaluate" and "sft" not in self.active:
            ins = ("pretrain",)
        return tuple(s for s in ins if s in self.active)

    def _downstream(self, roots: set[str]) -> set[str]:
        out = set(roots)
        for stage in STAGES:  # in order, so an input is decided before its readers
            if any(s in out for s in DEPENDS[stage][1]) or (
                    stage == "evaluate" and "pretrain" in out):
                out.add(stage)
        return out

    def out(self, stage: str) -> Path:
        return {"corpus": self.data / "corpus", "tokenizer": self.data / "tokenizer",
                "tasks": self.data / "tasks", "evaluate": self.run / "eval"}.get(
            stage, self.run / stage)

    def record(self, stage: str) -> dict:
        """This stage's fingerprint record: its config sections and its inputs' fingerprints."""
        full = config_to_dict(self.cfg)
        sections = {s: {k: v for k, v in full[s].items() if k not in NOT_FINGERPRINTED}
                    for s in DEPENDS[stage][0]}
        if "eval" in sections and not sections["eval"].get("filtered_k"):
            for key in FILTERED_KEYS:
                sections["eval"].pop(key, None)
        corpus = sections.get("corpus", {})
        if corpus and not (corpus["units"] or corpus["exercises"] or corpus["quality"] < 1
                           or corpus["anneal_mb"]):
            for key in CORPUS_MIX_KEYS:  # files only, as before: old runs keep theirs
                corpus.pop(key, None)
        if corpus.get("exercises"):  # exercises keep out the dev families these keys draw
            sections["tasks"] = {k: full["tasks"][k] for k in DEV_KEYS}
        if "pretrain" in sections and not sections["pretrain"].get("anneal"):
            sections["pretrain"].pop("anneal", None)
        if "model" in sections:
            default = ModelConfig()
            for key in BLOCK_OPTIONS:
                if sections["model"].get(key) == getattr(default, key):
                    sections["model"].pop(key)
        rec = {"stage": stage, "config": sections,
               "inputs": {s: self.fingerprints[s] for s in self._inputs(stage)}}
        blob = json.dumps(rec, sort_keys=True).encode()
        return {"fingerprint": hashlib.sha256(blob).hexdigest()[:16], **rec}

    def common(self) -> list[str]:
        return ["--preset", self.args.preset, *self.args.overrides]

    def cli(self, stage: str, argv: list[str]) -> None:
        from codeling.cli import main

        start = time.time()
        rec = self.state["stages"].setdefault(stage, {})
        rec.setdefault("commands", []).append("codeling " + " ".join(argv))
        self.save()
        print(f"\n=== pipeline: codeling {' '.join(argv)}", flush=True)
        rc = main(argv)
        rec["seconds"] = round(rec.get("seconds", 0) + time.time() - start, 1)
        if rc != 0:
            rec["status"] = f"failed (exit {rc}); rerun to resume"
            self.save()
            raise SystemExit(f"codeling pipeline: stage {stage} failed (exit {rc}); fix it and "
                             "rerun the same command to resume")

    def save(self) -> None:
        self.state["wall_seconds"] = round(sum(s.get("seconds", 0)
                                               for s in self.state["stages"].values()), 1)
        atomic_write_json(self.state_path, self.state)

    def move_aside(self, out: Path, old: dict | None) -> Path:
        tag = (old or {}).get("fingerprint", "unfingerprinted")[:8]
        stale = out.parent / "stale" if out.parent != self.run else self.run / "stale"
        dest, i = stale / f"{out.name}-{tag}", 1
        while dest.exists():
            i += 1
            dest = stale / f"{out.name}-{tag}-{i}"
        stale.mkdir(parents=True, exist_ok=True)
        out.rename(dest)
        return dest

    def step(self, stage: str) -> None:
        """Reuse, resume or (re)build one stage according to its fingerprint."""
        out, new = self.out(stage), self.record(stage)
        self.fingerprints[stage] = new["fingerprint"]
        path = out / FINGERPRINT
        old = json.loads(path.read_text()) if path.exists() else None
        prev = self.state["stages"].get(stage, {})
        matches = old is not None and old["fingerprint"] == new["fingerprint"]
        if matches and stage not in self.forced:
            if old.get("complete"):
                self.state["stages"][stage] = {**prev, "status": "reused", "changed": [],
                                               "fingerprint": new["fingerprint"]}
                print(f"=== pipeline: {stage}: fingerprint {new['fingerprint']} matches, reused",
                      flush=True)
                return self.save()
            status, changed = "resumed", []
        elif out.exists() and any(out.iterdir()):
            changed = ["--force"] if matches else changed_keys(old, new)
            aside = self.move_aside(out, old)
            print(f"=== pipeline: {stage}: {', '.join(changed)} changed; the old output is "
                  f"in {aside}, rebuilding", flush=True)
            status = "rebuilt"
            prev = {"moved_aside": str(aside)}
        else:
            status, changed, prev = "built", [], {}
        if status == "resumed":  # keeps its commands and seconds so far
            self.state["stages"][stage] = {**prev, "status": status, "changed": []}
        else:
            self.state["stages"][stage] = {"status": status, "changed": changed,
                                           "fingerprint": new["fingerprint"], **prev}
            if stage == "evaluate":
                self.state.pop("results", None)  # they were the old model's
        rec = self.state["stages"][stage]
        rec["status"] = f"running ({status})"  # what a crash or Ctrl-C leaves in pipeline.json
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {**new, "complete": False})
        getattr(self, f"run_{stage}")(out)
        atomic_write_json(path, {**new, "complete": True})
        rec["status"] = status
        self.save()

    # ---- stages ----
    def run_corpus(self, out: Path) -> None:
        self.cli("corpus", ["corpus", "--out", str(out), "--no-progress", *self.common()])

    def run_tokenizer(self, out: Path) -> None:
        self.cli("tokenizer", ["tokenizer", "--corpus", str(self.out("corpus")), "--out",
                               str(out), *self.common()])

    def _train(self, stage: str, argv: list[str]) -> None:
        from codeling.checkpoint import latest_checkpoint

        resume = latest_checkpoint(self.out(stage) / "checkpoints") is not None
        self.cli(stage, argv + ["--no-progress", *self.common()] + (["--resume"] if resume else []))

    def run_pretrain(self, out: Path) -> None:
        self._train("pretrain", ["pretrain", "--run-dir", str(out), "--corpus",
                                 str(self.out("corpus")), "--tokenizer", str(self.out("tokenizer"))])

    def run_tasks(self, out: Path) -> None:
        self.cli("tasks", ["tasks", "--out", str(out), "--quiet", *self.common()])

    def run_sft(self, out: Path) -> None:
        self._train("sft", ["sft", "--init", str(self.pretrained()), "--tasks",
                            str(self.out("tasks")), "--run-dir", str(out)])

    def pretrained(self) -> Path:
        return self.out("pretrain") / "checkpoints" / "final"

    def final_model(self) -> Path:
        """The checkpoint the benchmarks judge: the one the sft run selected (checkpoints/best)."""
        if "sft" in self.active:
            return best_checkpoint(self.out("sft"))
        return self.pretrained()

    def selected_on(self) -> str:
        best = self.out("sft") / "best.json"
        if "sft" not in self.active:
            return "pretrain final"
        return json.loads(best.read_text()).get("selected_on", "") if best.exists() else "final"

    def run_evaluate(self, out: Path) -> None:
        model = self.final_model()
        for bench in self.cfg.eval.benchmarks:
            where = out / bench
            if (where / "summary.json").exists():  # an interrupted stage keeps what it finished
                print(f"=== pipeline: evaluate {bench}: already evaluated", flush=True)
            else:
                where.mkdir(parents=True, exist_ok=True)
                samples = where / "samples.jsonl"
                if not samples.exists():
                    self.cli("evaluate", ["generate", "--checkpoint", str(model), "--benchmark",
                                          bench, "--out", str(samples), "--quiet",
                                          *self.common()])
                self.cli("evaluate", ["evaluate", "--benchmark", bench, "--samples",
                                      str(samples), "--out", str(where), "--quiet", "--resume",
                                      *self.common()])
            summary = json.loads((where / "summary.json").read_text())
            keep = ("syntax_valid", "collapse_rate", "name_error_rate")
            result = {k: v for k, v in summary.items() if k.startswith("pass@") or k in keep}
            if self.cfg.eval.filtered_k > 0:
                result.update(self.run_filtered(bench, where / "filtered", model))
            self.state.setdefault("results", {})[bench] = {
                **result,
                "checkpoint": str(model.relative_to(self.run) if model.is_relative_to(self.run)
                                  else model),
                "selected_on": self.selected_on()}
            self.save()

    def run_filtered(self, bench: str, where: Path, model: Path) -> dict:
        """K sampled candidates per task, selected by the prompt's examples (filtered@K), and
        the raw candidates' pass@k: the numbers that go beside greedy pass@1, renamed."""
        from codeling.generate import candidates_path

        e = self.cfg.eval
        if e.filtered_temperature <= 0:
            raise ConfigError("eval.filtered_k needs eval.filtered_temperature > 0, got "
                              f"{e.filtered_temperature}")
        if not (where / "summary.json").exists():  # an interrupted stage keeps what it finished
            where.mkdir(parents=True, exist_ok=True)
            samples = where / "samples.jsonl"
            candidates = candidates_path(samples)
            if not (samples.exists() and candidates.exists()):
                self.cli("evaluate", [
                    "generate", "--checkpoint", str(model), "--benchmark", bench, "--out",
                    str(samples), "--quiet", *self.common(), "--n", str(e.filtered_k),
                    "--temperature", str(e.filtered_temperature), "--top-p",
                    str(e.filtered_top_p), "--select", "examples"])
            self.cli("evaluate", ["evaluate", "--benchmark", bench, "--samples",
                                  str(candidates), "--out", str(where), "--quiet", "--resume",
                                  *self.common()])
        summary = json.loads((where / "summary.json").read_text())
        k = e.filtered_k
        if f"filtered@{k}" not in summary:
            raise ConfigError(f"{where / 'summary.json'}: no filtered@{k} (were the candidates "
                              "judged against the prompts' examples?)")
        out = {key: v for key, v in summary.items() if key.startswith("filtered@")}
        out.update({f"raw_{key}": v for key, v in summary.items() if key.startswith("pass@")})
        out["filtered"] = {"k": k, "temperature": e.filtered_temperature,
                           "top_p": e.filtered_top_p, "selection": summary.get(f"selection@{k}"),
                           "dir": str(where.relative_to(self.run))}
        return out

    def run_report(self, out: Path) -> None:
        runs = [str(self.out(s)) for s in ("pretrain", "sft") if s in self.active]
        self.cli("report", ["report", *runs, "--out", str(out)])

    def go(self) -> int:
        self.run.mkdir(parents=True, exist_ok=True)
        start = time.time()
        for stage in STAGES:
            if stage in self.active:
                self.step(stage)
        self.save()
        summary = {s: self.state["stages"][s]["status"] for s in STAGES if s in self.active}
        print(f"\n=== pipeline done in {time.time() - start:.0f} s this call "
              f"({self.state['wall_seconds']:.0f} s of stage time in all); stages: "
              f"{json.dumps(summary)}; results: {json.dumps(self.state.get('results', {}))}")
        return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, default_preset="smoke")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--force", action="append", metavar="STAGE",
                   help=f"rebuild STAGE and everything downstream (repeatable; {', '.join(STAGES)})")


def main(args: argparse.Namespace) -> int:
    return Pipeline(args).go()
