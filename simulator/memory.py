"""Memory per device for a parallelism plan.

Static memory, mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, sec. 3; Megatron-LM
`theoretical_memory_usage.py`): bf16 weights 2 B, fp32 main gradients 4 B, fp32 master weights
plus Adam m and v 12 B per parameter = 18 B; ZeRO-1 shards the 12 B over DP, ZeRO-2 also the
gradients, ZeRO-3/FSDP also the weights. The most loaded pipeline stage holds 1/PP of the layers
plus the embedding; tensor parallelism divides both; expert parallelism divides expert weights.

Activations (Korthikanti et al. 2022, Table 2, bytes per layer with TP + sequence parallelism):
    s * b * h * (18 + 4 * ffn_eff / h) / t      (= 34 sbh/t for a GPT MLP, ffn = 4h)
assuming FlashAttention-style kernels that never store the s x s score matrix (so the
5 a s^2 b / t term of the paper is absent). Full recompute keeps only each layer's input, 2 sbh/t,
plus one layer's working set. The first pipeline stage holds min(PP, micro-batches) micro-batches
in flight (1F1B schedule, Narayanan et al. 2021 sec. 2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.models import ModelSpec
from simulator.plan import Plan

BYTES_WEIGHT, BYTES_GRAD, BYTES_OPTIMIZER = 2, 4, 12
# "~5 GiB unexplained constant overhead in Megatron-DeepSpeed" (EleutherAI cookbook
# calc_transformer_mem.py, misc_mem_gib): CUDA context, NCCL buffers, allocator fragmentation.
OVERHEAD_GB = 5 * 1.073741824


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per device on the most loaded rank, in GB (1e9 bytes)."""

    weights_gb: float
    gradients_gb: float
    optimizer_gb: float
    activations_gb: float
    overhead_gb: float

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.gradients_gb + self.optimizer_gb + self.activations_gb + self.overhead_gb


def params_per_device(model: ModelSpec, plan: Plan) -> float:
    """Parameters held by the most loaded device before ZeRO sharding."""
    expert = model.moe_layers * model.experts * model._mlp_params(model.expert_ffn_dim) if model.is_moe else 0
    other_layers = model.params_total() - model.embedding_params() - expert
    per_stage = (other_layers + expert / plan.ep) / plan.pp
    return (per_stage + model.vocab * model.d_model) / plan.tp


def activation_bytes_per_layer(model: ModelSpec, plan: Plan) -> float:
    """Korthikanti 2022 Table 2 (TP + SP) for one micro-batch on one layer, bf16."""
    s, b, h = model.seq_len / plan.cp, plan.microbatch, model.d_model
    gate = 1.5 if model.gated_mlp else 1.0
    if model.is_moe:
        ffn_eff = (model.experts_per_token + model.shared_experts) * model.expert_ffn_dim * gate
    else:
        ffn_eff = model.ffn_dim * gate
    full = s * b * h * (18 + 4 * ffn_eff / h) / plan.tp
    return 2 * s * b * h / plan.tp if plan.recompute == "full" else full


def memory_per_device(model: ModelSpec, plan: Plan, global_batch_seqs: int) -> MemoryBreakdown:
    """Per-device memory of `plan` (see module docstring for the formulas)."""
    n = params_per_device(model, plan)
    dp = plan.dp
    opt = BYTES_OPTIMIZER * n / (dp if plan.zero >= 1 else 1)
    grads = BYTES_GRAD * n / (dp if plan.zero >= 2 else 1)
    weights = BYTES_WEIGHT * n / (dp if plan.zero >= 3 else 1)
    n_micro = max(1, global_batch_seqs // (dp * plan.microbatch))
    in_flight = min(plan.pp, n_micro)
    layers_per_stage = -(-model.layers // plan.pp)
    act = activation_bytes_per_layer(model, plan) * layers_per_stage * in_flight
    if plan.recompute == "full":  # one layer's working set is live during its recomputation
        full_plan = Plan(**{**plan.__dict__, "recompute": "none"})
        act += activation_bytes_per_layer(model, full_plan)
    if plan.pp == 1:  # logits (bf16 + fp32 softmax) live on the only stage
        act += 6 * model.seq_len / plan.cp * plan.microbatch * model.vocab / plan.tp
    return MemoryBreakdown(weights / 1e9, grads / 1e9, opt / 1e9, act / 1e9, OVERHEAD_GB)
