"""A published row's model shape as a `ModelSpec`.

One responsibility: the model a row trained. Shapes the row prints are read from its cells; the
block style follows the model family (`_style`); shapes a row does not print come from
`NAMED_SHAPES` (NeMo: NeMo-Megatron launcher configs; each agrees with the row's TFLOP/s /
tokens/s under the Megatron formula within 0.5%, which tests check). What a row leaves out is
listed in its `assumptions`; a row whose shape cannot be completed gets a reason instead.
"""

from __future__ import annotations

from dataclasses import replace

from simulator.errors import ScenarioError
from simulator.model.shapes import PRESETS, ModelSpec
from simulator.validation.public_rows_csv import cell_int, note_int


def _gpt(name: str, layers: int, d: int, heads: int, vocab: int, seq: int, **kw) -> ModelSpec:
    """A GPT-style block (4d MLP, MHA, biases, LayerNorm, learned positions)."""
    return ModelSpec(name, layers, d, heads, heads, 4 * d, vocab, seq, gated_mlp=False, bias=True, layernorm=True,
                     learned_positions=True, **kw)


# Shapes the rows do not print. NeMo: NeMo-Megatron launcher configs; each agrees with the row's
# TFLOP/s / tokens/s under the Megatron formula within 0.5% (tests check it).
NAMED_SHAPES: dict[str, ModelSpec] = {
    "GPT3-5B": _gpt("GPT3-5B", 24, 4096, 32, 50257, 2048, tied_embeddings=True),
    "GPT3-20B": _gpt("GPT3-20B", 44, 6144, 48, 50257, 2048, tied_embeddings=True),
    "GPT3-175B": PRESETS["gpt3-175b"],
    "Nemotron-8B": ModelSpec("Nemotron-8B", 32, 4096, 32, 32, 16384, 256000, 4096, gated_mlp=False, layernorm=True),
    "Nemotron-22B": ModelSpec("Nemotron-22B", 40, 6144, 48, 48, 24576, 256000, 4096, gated_mlp=False,
                              layernorm=True),
    "Nemotron-340B": ModelSpec("Nemotron-340B", 96, 18432, 96, 8, 73728, 256000, 4096, gated_mlp=False,
                               layernorm=True),
    "GPT-3 175B (MLPerf gpt3, from checkpoint)": PRESETS["gpt3-175b"],
    # MegaScale Table 1: 128 heads of 96; GPT-3's 2k context (768 seqs x 2048 / 40.0 s = 39.3k tok/s).
    "GPT-3-style 175B": replace(PRESETS["gpt3-175b"], name="GPT-3-style 175B", heads=128, kv_heads=128),
    "GPT-3 175B (slightly >175B due to larger vocab; 177B in chart)":
        _gpt("GPT-3 177B (Megatron-LM)", 96, 12288, 96, 131072, 4096),
    "DeepSeek-V3 (671B total / 37B active MoE)": PRESETS["deepseek-v3"],
}
HEAD_DIM = {"Qwen3-235B-A22B": 128}  # maxtext qwen3-235b-a22b.yml: 64 heads of 128 on d = 4096


def _style(name: str) -> dict:
    """Block style by model family: MPT (llm-foundry benchmarks: learned positions, biases, tied;
    NumParams in the table match exactly), Megatron GPT (ffn 4d, MHA, untied), MaxText 2023
    synthetic (ReLU MLP, head_dim 256, tied), else Llama-like (SwiGLU, RMSNorm, untied)."""
    if name.startswith("MPT"):
        return dict(gated_mlp=False, tied_embeddings=True, learned_positions=True, bias=True, layernorm=True)
    if name.startswith("GPT-style"):
        return dict(gated_mlp=False, learned_positions=True, bias=True, layernorm=True)
    if name.startswith("MaxText synthetic"):
        return dict(gated_mlp=False, tied_embeddings=True, head_dim=256)
    return {}


def row_spec(r: dict, assumptions: list[str]) -> tuple[ModelSpec | None, str]:
    """(model shape, '') for the row, or (None, reason the shape is unknown)."""
    name = r["model"]
    seq = cell_int(r["seq_len"])
    if name in NAMED_SHAPES:
        spec = NAMED_SHAPES[name]
        assumptions.append(f"shape of {spec.name} (what the row does not print is filled from it)")
        return (spec.with_seq_len(seq) if seq else spec), ""
    style = _style(name)
    val = {c: cell_int(r[c]) for c in ("layers", "d_model", "heads", "kv_heads", "ffn_dim", "vocab", "experts",
                                       "experts_per_token")}
    if style.get("gated_mlp") is False and val["heads"]:
        for col, default in (("kv_heads", val["heads"]), ("ffn_dim", 4 * (val["d_model"] or 0))):
            if not val[col]:
                val[col] = default
                assumptions.append(f"{col} not printed: GPT default {default}")
    missing = [c for c in ("layers", "d_model", "heads", "kv_heads", "ffn_dim", "vocab") if not val[c]]
    if not seq:
        missing.append("seq_len")
    if missing:
        return None, f"no model shape: {', '.join(missing)} not stated"
    moe = {}
    if val["experts"]:
        moe = dict(experts=val["experts"], experts_per_token=val["experts_per_token"] or 1,
                   expert_ffn_dim=val["ffn_dim"], moe_layers=val["layers"])
    style_head_dim = style.pop("head_dim", 0)
    head_dim = HEAD_DIM.get(name) or note_int(r, "head_dim") or style_head_dim
    try:
        return ModelSpec(name, val["layers"], val["d_model"], val["heads"], val["kv_heads"], val["ffn_dim"],
                         val["vocab"], seq, head_dim=head_dim, **style, **moe), ""
    except ScenarioError as e:
        return None, f"no model shape: {e}"
