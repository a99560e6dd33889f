"""Which Hugging Face architecture a model's block loads as: its config fields and weight names.

Every combination of ModelConfig's block options that some remote-code-free transformers
architecture computes exactly is saved as that architecture, so `AutoModelForCausalLM` loads the
checkpoint with the same logits:

  options set                                   architecture   differences handled here
  none (SwiGLU)                                 llama          -
  qk_norm                                       qwen3          -
  mlp = "relu2"                                 arcee          -
  qk_norm, mlp = "relu2"                        apertus        norm names
  norm_weights = false, embed_norm, qk_norm,    nanochat       MLP names; RoPE direction
    mlp = "relu2", logit_softcap >= 0                          (model.py rotates as it does)

zero_init_proj and zero_init_head change the initialisation only, so any architecture holds
them. No architecture has value embeddings or learnable residual scalars, and HF's NanoChat is the
only one with gain-free norms, an embedding norm and a logit soft cap inside an otherwise
matching block (Gemma 2's cap comes with scaled embeddings, sandwich norms and GeGLU); a model
outside the table is saved for codeling only, under `model_type = "codeling"`, which transformers
refuses with an error naming that type instead of loading a different function.

The architectures past Llama need a recent transformers (Qwen3 from 4.51, NanoChat from 5.0);
tests/test_model.py checks every row against the installed one.
"""

from __future__ import annotations

from codeling.config import ModelConfig

# our module names -> the architecture's, as substrings of state-dict keys
_RENAMES: dict[str, dict[str, str]] = {
    "apertus": {".input_layernorm.": ".attention_layernorm.",
                ".post_attention_layernorm.": ".feedforward_layernorm."},
    "nanochat": {".mlp.up_proj.": ".mlp.fc1.", ".mlp.down_proj.": ".mlp.fc2."},
}
_CLASSES = {"llama": "LlamaForCausalLM", "qwen3": "Qwen3ForCausalLM",
            "arcee": "ArceeForCausalLM", "apertus": "ApertusForCausalLM",
            "nanochat": "NanoChatForCausalLM"}


class NoHFArchitecture(ValueError):
    """The block has an option no transformers architecture computes."""


def hf_model_type(cfg: ModelConfig) -> str:
    """The transformers model_type this block loads as; NoHFArchitecture says why none does."""
    if cfg.value_embeds or cfg.resid_scalars:
        raise NoHFArchitecture("no transformers architecture has value embeddings "
                               "(model.value_embeds) or learnable residual scalars "
                               "(model.resid_scalars)")
    if not cfg.norm_weights or cfg.embed_norm or cfg.logit_softcap:
        need = {"norm_weights": False, "embed_norm": True, "qk_norm": True, "mlp": "relu2"}
        wrong = [f"{k} = {v!r}" for k, v in need.items() if getattr(cfg, k) != v]
        if wrong:
            raise NoHFArchitecture(
                "gain-free norms, an embedding norm and a logit soft cap load only as HF's "
                f"NanoChat, whose block also needs model.{', model.'.join(wrong)}")
        return "nanochat"
    if cfg.mlp == "relu2":
        return "apertus" if cfg.qk_norm else "arcee"
    return "qwen3" if cfg.qk_norm else "llama"


def hf_fields(cfg: ModelConfig, model_type: str) -> dict:
    """config.json fields of `model_type` for this model (beside the shared ones)."""
    fields: dict = {"architectures": [_CLASSES[model_type]], "model_type": model_type,
                    "hidden_act": "silu" if cfg.mlp == "swiglu" else "relu2"}
    if model_type != "llama":  # transformers 5 reads rope_parameters; llama keeps its old form
        fields["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if model_type in ("llama", "qwen3", "arcee"):
        fields["head_dim"] = cfg.head_dim  # the others derive it as hidden_size / heads
    if model_type in ("llama", "arcee"):
        fields["mlp_bias"] = False
    if model_type == "qwen3":
        fields["use_sliding_window"] = False
    if model_type == "nanochat":
        fields["final_logit_softcapping"] = cfg.logit_softcap or None
    return fields


def to_hf_names(state: dict, model_type: str | None) -> dict:
    return {_rename(k, _RENAMES.get(model_type, {})): v for k, v in state.items()}


def from_hf_names(state: dict, model_type: str | None) -> dict:
    back = {v: k for k, v in _RENAMES.get(model_type, {}).items()}
    return {_rename(k, back): v for k, v in state.items()}


def _rename(key: str, table: dict[str, str]) -> str:
    for ours, theirs in table.items():
        key = key.replace(ours, theirs)
    return key


def options_from_hf(model_type: str, hidden_act: str, softcap: float | None) -> dict:
    """The block options of a config.json written by another tool (no "codeling" section)."""
    if model_type not in _CLASSES:
        raise NoHFArchitecture(f"model_type {model_type!r} is not one codeling can build "
                               f"(known: {', '.join(_CLASSES)})")
    relu2 = model_type in ("arcee", "apertus", "nanochat")
    if hidden_act != ("relu2" if relu2 else "silu"):
        raise NoHFArchitecture(f"hidden_act {hidden_act!r} with model_type {model_type!r} is "
                               "not a block codeling builds (SwiGLU or ungated ReLU²)")
    opts: dict = {"mlp": "relu2" if relu2 else "swiglu",
                  "qk_norm": model_type in ("qwen3", "apertus", "nanochat")}
    if model_type == "nanochat":
        opts.update(norm_weights=False, embed_norm=True, logit_softcap=float(softcap or 0.0))
    return opts
