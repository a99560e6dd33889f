"""The config system: per-stage sections are checked, the one resume rule, flags as overrides."""

from __future__ import annotations

import tomllib

import pytest
import tomli_w

from codeling.cli import build_parser
from codeling.cli import main as cli_main
from codeling.config import (
    ConfigError,
    config_from_args,
    config_to_dict,
    list_presets,
    load_config,
    read_config,
    resolve_run_config,
    save_config,
)


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_resolves(preset):
    cfg = load_config(preset)
    assert cfg.preset == cfg.name  # each preset names itself
    assert cfg.model.vocab_size == cfg.tokenizer.vocab_size


@pytest.mark.parametrize("override, owner", [
    ("pretrain.kd_alpha=0.5", "[distill] (distill.kd_alpha)"),
    ("pretrain.curriculum=[]", "[sft] (sft.curriculum), [distill] (distill.curriculum)"),
    ("pretrain.mode=full", "[sft] (sft.mode)"),
    ("distill.merge=true", "[sft] (sft.merge)"),
    ("sft.kd_temperature=1.0", "[distill]"),
    ("pretrain.near_dup_threshold=0.5", "[corpus]"),
])
def test_a_key_of_another_stage_names_its_section(override, owner):
    with pytest.raises(ConfigError, match="its stage does not use it") as e:
        load_config("smoke", [override])
    assert override.split("=")[0] in str(e.value) and owner in str(e.value)


def test_pretrain_cli_rejects_a_distill_key(tmp_path, capsys):
    """The real command: `codeling pretrain ... pretrain.kd_alpha=0.5` exits 2 naming the key."""
    rc = cli_main(["pretrain", "--preset", "smoke", "--run-dir", str(tmp_path / "run"),
                   "--corpus", str(tmp_path / "c"), "--tokenizer", str(tmp_path / "t"),
                   "pretrain.kd_alpha=0.5"])
    err = capsys.readouterr().err
    assert rc == 2 and "pretrain.kd_alpha" in err and "[distill]" in err
    assert not (tmp_path / "run" / "checkpoints").exists()
    rc = cli_main(["pretrain", "--preset", "smoke", "--run-dir", str(tmp_path / "run"),
                   "--corpus", str(tmp_path / "c"), "--tokenizer", str(tmp_path / "t"),
                   "kd_alpha=0.5"])  # a bare key addresses the stage's own section
    assert rc == 2 and "pretrain.kd_alpha" in capsys.readouterr().err


def test_the_loop_still_reads_curriculum_on_every_stage():
    cfg = load_config("v2-distill")
    assert cfg.pretrain.curriculum == () and len(cfg.distill.curriculum) == 3
    assert "curriculum" not in config_to_dict(cfg)["pretrain"]


def saved_run(tmp_path, preset="smoke", overrides=()):
    run = tmp_path / "run"
    run.mkdir()
    save_config(load_config(preset, list(overrides)), run / "config.toml")
    return run


def test_resume_is_the_saved_config_plus_new_overrides(tmp_path):
    run = saved_run(tmp_path, overrides=["sft.steps=7", "model.n_layer=3"])
    cfg = resolve_run_config(run, None, ["lr=0.01"], "sft")
    assert (cfg.sft.steps, cfg.sft.lr, cfg.model.n_layer) == (7, 0.01, 3)
    # the same preset, and shape keys repeated with their saved values (as the pipeline does)
    cfg = resolve_run_config(run, "smoke", ["model.n_layer=3", "sft.warmup=1"], "sft")
    assert (cfg.model.n_layer, cfg.sft.warmup, cfg.sft.steps) == (3, 1, 7)
    # a new run ignores what is not there
    fresh = resolve_run_config(tmp_path / "new", "smoke", ["sft.steps=9"], "sft")
    assert fresh.sft.steps == 9 and fresh.model.n_layer == 2
    assert resolve_run_config(run, "smoke", [], "sft", resume=False).sft.steps == 40


def test_resume_with_another_preset_names_both(tmp_path):
    run = saved_run(tmp_path, "smoke")
    with pytest.raises(ConfigError, match=r"preset 'smoke', not 'cpu' \(--preset cpu\)"):
        resolve_run_config(run, "cpu", [], "pretrain")


def test_resume_with_an_unknown_key_names_it(tmp_path):
    run = saved_run(tmp_path)
    with pytest.raises(ConfigError, match=r"\[sft\] has no key 'kd_alpha'.*\[distill\]"):
        resolve_run_config(run, None, ["kd_alpha=0.5"], "sft")


@pytest.mark.parametrize("override, fixed, why", [
    ("model.n_layer=4", (), "weights of this architecture"),
    ("tokenizer.vocab_size=1024", (), "vocabulary"),
    ("lora.r=4", ("lora",), "rank"),
    ("mode=full", ("sft.mode",), "LoRA and full"),
])
def test_resume_refuses_to_change_the_runs_shape(tmp_path, override, fixed, why):
    run = saved_run(tmp_path)
    with pytest.raises(ConfigError, match="cannot change") as e:
        resolve_run_config(run, None, [override], "sft", fixed=fixed)
    assert why in str(e.value) and "new --run-dir" in str(e.value)


def test_saved_configs_from_before_the_split_still_read(tmp_path):
    """config.toml files written when every training section carried every stage's keys."""
    data = config_to_dict(load_config("smoke"))
    for section in ("pretrain", "sft", "distill"):
        data[section] |= {"mode": "full", "merge": False, "eval_mini": True, "kd_alpha": 0.5,
                          "kd_temperature": 2.0, "curriculum": [], "eval_max_new_tokens": 160}
    del data["preset"]
    (tmp_path / "config.toml").write_text(tomli_w.dumps(data))
    cfg = read_config(tmp_path / "config.toml")
    assert cfg.sft.mode == "full" and cfg.distill.kd_alpha == 0.5
    assert resolve_run_config(tmp_path, "smoke", [], "sft").name == "smoke"  # name stands in
    (tmp_path / "config.toml").write_text("[pretrain\n")
    with pytest.raises(ConfigError, match=r"config\.toml: invalid TOML"):
        read_config(tmp_path / "config.toml")


def parse(argv):
    args, rest = build_parser(argv).parse_known_args(argv)
    args.overrides = [*(args.overrides or []), *(a for a in rest if "=" in a)]
    return args


def test_stage_flags_are_overrides_with_the_configs_defaults():
    args = parse(["tasks", "--out", "o", "--preset", "smoke"])
    t = config_from_args(args, "tasks").tasks
    assert (t.n, t.levels, t.timeout) == (200, [1, 2], 5.0)  # smoke's, not argparse's
    args = parse(["tasks", "--out", "o", "--n", "50", "--levels", "1,3", "--sources",
                  "mbpp,x.jsonl", "--allow-contamination", "--timeout", "2", "seed=4"])
    t = config_from_args(args, "tasks").tasks
    assert (t.n, t.levels, t.sources, t.allow_contamination, t.timeout, t.seed) == (
        50, [1, 3], ["mbpp", "x.jsonl"], True, 2.0, 4)
    args = parse(["tasks", "--out", "o", "--n", "50", "tasks.n=60"])
    assert config_from_args(args, "tasks").tasks.n == 50  # the flag is the most specific
    args = parse(["evaluate", "--benchmark", "mini", "--samples", "s", "--out", "o",
                  "--timeout", "3", "--workers", "2"])
    e = config_from_args(args, "eval").eval
    assert (e.timeout, e.workers, e.memory_mb) == (3.0, 2, 0)
    args = parse(["generate", "--checkpoint", "c", "--benchmark", "mini", "--out", "o",
                  "--preset", "cpu", "--n", "3"])
    e = config_from_args(args, "eval").eval
    assert (e.n, e.max_new_tokens) == (3, 256)
    with pytest.raises(ConfigError, match=r"tasks\.n: expected int"):
        config_from_args(parse(["tasks", "--out", "o", "--n", "many"]), "tasks")


def test_help_shows_the_configs_default(capsys):
    with pytest.raises(SystemExit):
        cli_main(["tasks", "--help"])
    out = capsys.readouterr().out
    assert "tasks.n (default 1000)" in out and "tasks.timeout (default 5.0)" in out


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("v2-distill", ["sft.steps=3"])
    save_config(cfg, tmp_path / "config.toml")
    assert read_config(tmp_path / "config.toml") == cfg
    assert tomllib.loads((tmp_path / "config.toml").read_text())["preset"] == "v2-distill"
