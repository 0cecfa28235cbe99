"""A published row's throughput as tokens/s per device, in the source's own FLOP convention.

One responsibility: turning a printed throughput into tokens/s. A published TFLOP/s (or MFU)
becomes tokens/s with *that source's own* FLOPs per token:
- llm-foundry (scripts/train/benchmarking/collect_results.py): 6 * NumParams + 12 * L * d * s
  (3x forward, attention in full, no recompute); its rows give tokens/s directly.
- Megatron-LM core_r0.8.0 (training.py `num_floating_point_operations`) and NeMo 24.x, which
  uses it (checked on every NeMo pre-training row: tokens/s x FLOPs = TFLOP/s within 0.5%):
  6 * N_matmul (logits included, no norms or biases) + 12 * L * H * hd * s, attention not halved.
- MaxText @76bd53b0f (train.py `calculate_training_tflops`): 6 * N_all_parameters
  + 12 * H * L * hd * s / 2 (causal halved); its MFU is TFLOP/s over 275/197/459 (v4/v5e/v5p).
- Llama 3 (Dubey et al. 2024 sec. 3.3.2, "BF16 MFU per Chowdhery et al."): PaLM App. B, i.e.
  `simulator.model.flops.model_flops_per_token` (docs/design.md section 2).
- NeMo 25.04 (the B200 long-sequence table) is read with the same Megatron formula (assumed: the
  H100 x B200 figures at 1M tokens are implausible with causal halving); those rows are unusable.
Rows that print tokens/s keep them (MegaScale, MLPerf and DeepSeek figures were derived in rows.csv).
"""

from __future__ import annotations

from collections.abc import Callable

from hardware_catalog import Catalog
from simulator.model.flops import model_flops_per_token
from simulator.model.shapes import ModelSpec
from simulator.validation.public_rows_csv import cell_num


# --- FLOPs per token, one function per published convention ------------------------------------
def llm_foundry_flops_per_token(spec: ModelSpec) -> float:
    """llm-foundry collect_results.py: (3 * 2 * n_params * s + 3 * L * 2 * 2 * d * s^2) / s."""
    return 6.0 * spec.params_total() + 12.0 * spec.layers * spec.d_model * spec.seq_len


def megatron_flops_per_token(spec: ModelSpec) -> float:
    """Megatron-LM core_r0.8.0 num_floating_point_operations / (batch * s) (NeMo 24.x alike):
    12 L h^2 [(1 + g/n + s/h) q/h + (f/h) topk (3/2 if swiglu)] + 6 V h; attention not halved."""
    d, hd, mlp_mult = spec.d_model, spec.hd, 3 if spec.gated_mlp else 2
    attn = 2 * d * spec.heads * hd + 2 * d * spec.kv_heads * hd
    mlp = mlp_mult * d * (spec.expert_ffn_dim * spec.experts_per_token if spec.is_moe else spec.ffn_dim)
    return 6.0 * (spec.layers * (attn + mlp) + spec.vocab * d) + 12.0 * spec.layers * spec.heads * hd * spec.seq_len


def maxtext_2023_flops_per_token(spec: ModelSpec) -> float:
    """MaxText train.py calculate_training_tflops @76bd53b0f: 6 N_params + 12 H L hd s / 2."""
    return 6.0 * spec.params_total() + 6.0 * spec.heads * spec.layers * spec.hd * spec.seq_len


def palm_flops_per_token(spec: ModelSpec) -> float:
    """Chowdhery et al. 2022 (PaLM) App. B, as Llama 3 reports MFU: the project convention."""
    return model_flops_per_token(spec)


def _convention(r: dict) -> Callable[[ModelSpec], float] | None:
    """The FLOPs-per-token function the row's source used, or None when it is not known."""
    src = r["source"]
    if src in ("NVIDIA/NeMo", "NVIDIA/Megatron-LM"):
        return megatron_flops_per_token
    if src == "AI-Hypercomputer/maxtext" and "76bd53b0f" in r["framework"]:
        return maxtext_2023_flops_per_token
    return palm_flops_per_token if src.startswith("Llama 3 Herd") else None


def tokens_per_s(r: dict, spec: ModelSpec | None, acc: str | None, precision: str, catalog: Catalog
                 ) -> tuple[float | None, str]:
    """(tokens/s per device, how it was obtained) in the source's own FLOP convention."""
    if r["tokens_per_s_per_device"]:
        derived = "derived" in r["tokens_per_s_per_device"]
        return cell_num(r["tokens_per_s_per_device"]), "tokens/s (derived in rows.csv)" if derived else "tokens/s"
    conv = _convention(r)
    if conv is None or spec is None:
        return None, ""
    tflops = cell_num(r["tflops_per_device"])
    if tflops:
        return tflops * 1e12 / conv(spec), f"TFLOP/s / {conv.__name__}"
    mfu = cell_num(r["mfu_pct"])
    if mfu and acc:
        peak = catalog.accelerators[acc].peak_flops(precision)
        return mfu / 100 * peak / conv(spec), f"MFU x catalog peak / {conv.__name__}"
    return None, ""
