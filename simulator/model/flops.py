"""Training FLOPs: the project's single convention (docs/design.md section 2).

Model FLOPs per token (Chowdhery et al. 2022, PaLM, Appendix B):

    6 * N_matmul_active + 12 * n_layers * d_attn * seq_len

- 6N: 2 FLOPs per multiply-add, forward (1x) + backward (2x) over every matmul weight a token
  touches (Kaplan et al. 2020 sec. 2.1);
- 12 L d_attn T: the QK^T and attention-times-V matmuls, counted in full (not halved for causal
  masking), forward + backward. For MLA d_attn = H (qk_dim + v_dim) / 2 (`ModelSpec.attn_width`).

Hardware FLOPs are what the devices execute (docs/design.md section 2): recomputation added (full
recompute runs the forward again, +1/3 of the model FLOPs; selective recompute, Korthikanti et al.
2022 sec. 4.2, re-runs only the attention core, +1/3 of the attention term; "mlp" re-runs the
attention core and the MLP, 2 FLOPs per MLP weight; "offload" the attention core, the attention
output projection and the MLP input projections: `recomputed_flops_per_token`), and attention as the
kernel runs it: a causal FlashAttention kernel skips the blocks above the diagonal, half of the
score and value matmuls (Dao 2023 sec. 3.1; `causal_skip`), where unfused attention computes the
masked scores too.
"""

from __future__ import annotations

from typing import Literal

from simulator.model.shapes import ModelSpec

Recompute = Literal["none", "selective", "full", "mlp", "offload"]
# Recompute levels, in the order of `PlanGrid.rc` (execution/plan.py says what each keeps).
RECOMPUTE: tuple[str, ...] = ("none", "selective", "full", "mlp", "offload")


def param_flops_per_token(model: ModelSpec) -> float:
    """6 * N_matmul_active (FLOPs per trained token from weights alone, Kaplan 2020)."""
    return 6.0 * model.matmul_params_active()


def attention_flops_per_token(model: ModelSpec) -> float:
    """12 * L * d_attn * T: attention scores and values, forward + backward (PaLM App. B)."""
    return 12.0 * model.layers * model.attn_width * model.seq_len


def model_flops_per_token(model: ModelSpec) -> float:
    """Model FLOPs per token (the MFU numerator), PaLM Appendix B convention."""
    return param_flops_per_token(model) + attention_flops_per_token(model)


def recomputed_flops_per_token(model: ModelSpec, recompute: Recompute) -> float:
    """Forward FLOPs per token run again before the backward, by recompute level: the attention core
    (4 L d_attn T, a third of the attention term) for every level but none; full adds every weight
    (2 N_matmul_active); "mlp" the MLP's weights (Megatron-Core re-runs the whole MLP module);
    "offload" the attention output projection and the MLP input projections (MaxText's custom policy
    saves the layer input, Q, K and V and recomputes the rest; the MLP output projection's result is
    not needed by the backward)."""
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute: expected one of {', '.join(RECOMPUTE)}, got '{recompute}'")
    core = attention_flops_per_token(model) / 3.0
    weights = {"none": 0.0, "selective": 0.0, "full": model.matmul_params_active(),
               "mlp": model.mlp_params_active(), "offload": model.attn_out_params() + model.mlp_input_params_active()}
    return 0.0 if recompute == "none" else core + 2.0 * weights[recompute]


def hardware_flops_per_token(model: ModelSpec, recompute: Recompute, causal_skip: bool = False) -> float:
    """FLOPs the devices actually execute per token: recomputation added, and with `causal_skip`
    (a causal FlashAttention kernel) half of every attention matmul, recomputed ones included."""
    attention = attention_flops_per_token(model) * (1.0 if recompute == "none" else 4.0 / 3.0)
    total = model_flops_per_token(model) + recomputed_flops_per_token(model, recompute)
    return total - attention / 2.0 if causal_skip else total


def train_flops(model: ModelSpec, tokens: float) -> float:
    """Model FLOPs of a whole run: model_flops_per_token * tokens."""
    return model_flops_per_token(model) * tokens
