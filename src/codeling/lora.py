"""LoRA through `peft`, and `codeling merge`.

    codeling merge --adapter runs/x/checkpoints/best --out runs/x/merged

An adapter directory is peft's own format (`adapter_config.json` + `adapter_model.safetensors`)
with `base_model_name_or_path` pointing at the HF-format base checkpoint, so it also loads with
`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter_dir)`. codeling
adds the tokenizer files, so an adapter directory is self-describing for `codeling generate`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from torch import nn

from codeling.config import LoraSection

ADAPTER_CONFIG = "adapter_config.json"


def apply_lora(model: nn.Module, cfg: LoraSection, base_path: str | Path | None = None
               ) -> nn.Module:
    """Freeze the base and wrap the target projections with LoRA; returns the PeftModel."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                        target_modules=list(cfg.target_modules), bias="none",
                        base_model_name_or_path=str(Path(base_path).resolve())
                        if base_path else None)
    model.name_or_path = config.base_model_name_or_path  # what peft records when saving
    return get_peft_model(model, config)


def prepare(model: nn.Module, cfg: LoraSection, base_path: str | Path, tokenizer=None):
    """(PeftModel, save_fn, load_fn) for the training loop: checkpoints are adapter dirs."""
    peft_model = apply_lora(model, cfg, base_path=base_path)

    def save_fn(m: nn.Module, d: Path) -> None:
        save_adapter(getattr(m, "module", m), d, tokenizer)  # the PeftModel inside DDP

    return peft_model, save_fn, load_adapter_weights


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(path: str | Path) -> Path:
    with open(Path(path) / ADAPTER_CONFIG) as f:
        base = json.load(f).get("base_model_name_or_path")
    if not base:
        raise FileNotFoundError(f"{Path(path) / ADAPTER_CONFIG}: no base_model_name_or_path")
    return Path(base)


def save_adapter(model: nn.Module, out_dir: str | Path, tokenizer=None) -> None:
    """peft's save_pretrained into `out_dir` (the caller makes the write atomic)."""
    model.save_pretrained(str(out_dir), save_embedding_layers=False)  # LoRA never resizes
    path = Path(out_dir) / ADAPTER_CONFIG
    cfg = json.loads(path.read_text())
    if not cfg.get("base_model_name_or_path"):  # older peft ignores name_or_path
        cfg["base_model_name_or_path"] = model.peft_config["default"].base_model_name_or_path
        path.write_text(json.dumps(cfg, indent=2))
    if tokenizer is not None:
        tokenizer.save(out_dir)


def load_adapter_weights(model: nn.Module, adapter_dir: str | Path) -> None:
    """Resume: put a saved adapter's weights back into a live PeftModel (strictly)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from codeling.checkpoint import CheckpointError

    path = Path(adapter_dir) / "adapter_model.safetensors"
    try:
        weights = load_file(str(path))
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable adapter weights ({e})") from e
    model = getattr(model, "module", model)
    result = set_peft_model_state_dict(model, weights)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{path}: adapter does not match the model (missing {missing[:3]}, "
                              f"unexpected {list(result.unexpected_keys)[:3]})")


def load_adapter(adapter_dir: str | Path, device: str = "cpu", trainable: bool = False
                 ) -> nn.Module:
    """The base checkpoint with this adapter applied (a PeftModel)."""
    from peft import PeftModel

    from codeling.checkpoint import load_model

    base = load_model(adapter_base(adapter_dir), device=device)
    return PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=trainable)


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Write base + adapter as one plain HF-format checkpoint (tokenizer included)."""
    from codeling.checkpoint import save_model

    merged = load_adapter(adapter_dir).merge_and_unload()  # not in place: use the return value
    save_model(merged, out_dir)
    base = adapter_base(adapter_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        src = Path(adapter_dir) / name if (Path(adapter_dir) / name).exists() else base / name
        if src.exists():
            shutil.copy(src, Path(out_dir) / name)
    return Path(out_dir)


def add_arguments(p) -> None:
    p.add_argument("--adapter", required=True, help="a LoRA adapter directory (peft format)")
    p.add_argument("--out", required=True, help="where to write the merged HF checkpoint")


def main(args) -> int:
    if not is_adapter_dir(args.adapter):
        raise FileNotFoundError(f"{args.adapter}: not a LoRA adapter dir (no {ADAPTER_CONFIG})")
    out = merge_adapter(args.adapter, args.out)
    print(f"merged {args.adapter} into {out}")
    return 0
