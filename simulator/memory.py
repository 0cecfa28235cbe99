"""Memory per device for parallelism plans, vectorised over a `PlanGrid`.

Static memory, mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, sec. 3; Megatron-LM
`theoretical_memory_usage.py`): bf16 weights 2 B, fp32 main gradients 4 B, fp32 master weights
plus Adam m and v 12 B per parameter = 18 B; ZeRO-1 (Megatron's distributed optimizer) shards the
12 B over DP, ZeRO-2 also the gradients, ZeRO-3/FSDP also the weights, and keeps no separate fp32
gradient buffer: 16 B per parameter, all sharded (the ZeRO paper's 2 + 2 + 12 accounting; FSDP's
fp32 sharded parameter is the master copy: 4 + 4 + 8). The most loaded pipeline
stage holds ceil(layers / PP) layers plus the embedding; TP divides both. Routed experts follow
MoE parallel folding (plan.expert_tp; Liu et al. 2025): EP ranks divide the experts among them and
ETP ranks split each expert's matrices, so a device holds the stage's expert parameters / (EP x ETP);
ZeRO shards their states over the expert-data-parallel group, EDP = tp*cp*dp / (EP x ETP), not DP
(Megatron-Core's distributed optimizer shards the expert buffers over the expert-DP group).

Activations (Korthikanti et al. 2022, Table 2), bytes per layer per micro-batch, bf16:
    s b h (18 + 4 ffn_eff / h) / t   with sequence parallelism (= 34 sbh/t for ffn = 4h)
    s b h (10 + (8 + 4 ffn_eff / h) / t) without it (LayerNorm and dropout inputs replicated)
with FlashAttention-style kernels (no stored s x s scores); unfused attention adds the paper's
5 a s^2 b / t. Full recompute keeps 2 sbh/t per layer plus one layer's working set. Under 1F1B the
first stage holds min(PP, micro-batches) micro-batches in flight, each with its ceil(layers / PP)
layers' activations: about one whole model's worth at PP micro-batches (Korthikanti et al. 2022
sec. 4.2.3; Narayanan et al. 2021 sec. 2.2). Only the interleaved schedule (v > 1 model chunks)
raises this, by (1 + (PP - 1) / (PP v)); with v = 1 the factor is 1.
Communication buffers: DDP gradient buckets / ZeRO-3 prefetch of two layers' weights; with
all-gather context parallelism (`cp_comm = "all_gather"`), one layer's gathered full-sequence K and
V and their gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.finetune import BYTES_GRAD, BYTES_OPTIMIZER, BYTES_WEIGHT, FULL, Tuning
from simulator.models import ModelSpec
from simulator.plan import PlanGrid, expert_dp, expert_tp, microbatches

# "~5 GiB unexplained constant overhead in Megatron-DeepSpeed" (EleutherAI cookbook
# calc_transformer_mem.py, misc_mem_gib): CUDA context, NCCL buffers, allocator fragmentation.
OVERHEAD_GB = 5 * 1.073741824
BYTES_ACT = 2  # bf16 activations
BYTES_GRAD_ZERO3 = 2  # ZeRO-3/FSDP: 16 B per parameter in all (module docstring)
GIB = 2**30


def capacity_gb(acc) -> float:
    """Device memory in GB (1e9 B). Vendors' "GB" of HBM are binary: an H100 80GB shows 81,559 MiB in
    nvidia-smi and an A100 80GB 81,920 MiB, so the catalog's `hbm_gb` is read as GiB."""
    return acc.memory.hbm_gb.value * GIB / 1e9
DDP_BUCKET_BYTES = 2 * 40e6 * 4  # two 40M-element fp32 gradient buckets (Megatron bucket_size default)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per device on the most loaded rank, in GB (1e9 bytes); arrays over plans."""

    weights_gb: np.ndarray
    gradients_gb: np.ndarray
    optimizer_gb: np.ndarray
    activations_gb: np.ndarray
    buffers_gb: np.ndarray
    overhead_gb: float = OVERHEAD_GB

    @property
    def total_gb(self) -> np.ndarray:
        return (self.weights_gb + self.gradients_gb + self.optimizer_gb + self.activations_gb
                + self.buffers_gb + self.overhead_gb)

    def row(self, i: int) -> dict[str, float]:
        return {"weights_gb": float(self.weights_gb[i]), "gradients_gb": float(self.gradients_gb[i]),
                "optimizer_gb": float(self.optimizer_gb[i]), "activations_gb": float(self.activations_gb[i]),
                "buffers_gb": float(self.buffers_gb[i]), "overhead_gb": self.overhead_gb,
                "total_gb": float(self.total_gb[i])}


def _expert_params(model: ModelSpec) -> int:
    return model.moe_layers * model.experts * model._mlp_params(model.expert_ffn_dim) if model.is_moe else 0


def split_params_per_device(model: ModelSpec, grid: PlanGrid) -> tuple[np.ndarray, np.ndarray | float]:
    """(non-expert, routed-expert) parameters on the most loaded device before ZeRO sharding.

    Non-expert (attention, dense MLPs, shared experts, routers, norms, embeddings): / TP. Routed
    experts: / (EP x ETP) (module docstring). Expert parameters are spread evenly over the layers.
    """
    expert = _expert_params(model)
    layer_params = model.params_total() - model.embedding_params() - expert
    layers_per_stage = -(-model.layers // grid.pp)
    # The first stage holds the input embedding, the last the output layer; with one stage (or tied
    # weights) a device holds all of embedding_params().
    head = model.vocab * model.d_model
    embedding = np.where(grid.pp == 1, model.embedding_params(), head)
    dense = (layer_params / model.layers * layers_per_stage + embedding) / grid.tp
    if not expert:
        return dense, 0.0
    return dense, expert / model.layers * layers_per_stage / (grid.ep * expert_tp(grid))


def params_per_device(model: ModelSpec, grid: PlanGrid) -> np.ndarray:
    """Parameters on the most loaded device before ZeRO sharding."""
    dense, expert = split_params_per_device(model, grid)
    return dense + expert


def ffn_effective(model: ModelSpec) -> float:
    """Width of the MLP activations a token creates (gated MLPs keep 1.5x: gate, up, product)."""
    gate = 1.5 if model.gated_mlp else 1.0
    if model.is_moe:
        return (model.experts_per_token + model.shared_experts) * model.expert_ffn_dim * gate
    return model.ffn_dim * gate


def kv_chunk_bytes(model: ModelSpec, grid: PlanGrid) -> np.ndarray:
    """K and V of one rank's sequence chunk, one micro-batch, one layer: 2 x mb x seq/cp x the KV
    heads on a TP rank (replicated beyond kv_heads) x head_dim x 2 B."""
    return 2 * grid.mb * (model.seq_len / grid.cp) * model.kv_heads * model.hd * BYTES_ACT / np.minimum(
        grid.tp, model.kv_heads)


def activation_bytes_per_layer(model: ModelSpec, grid: PlanGrid, flash: bool = True) -> np.ndarray:
    """Korthikanti 2022 Table 2 for one micro-batch on one layer (module docstring)."""
    s, b, h, t = model.seq_len / grid.cp, grid.mb, model.d_model, grid.tp
    f = ffn_effective(model) / h
    with_sp = s * b * h * (18 + 4 * f) / t
    without_sp = s * b * h * (10 + (8 + 4 * f) / t)
    stored = np.where(grid.sp.astype(bool) | (t == 1), with_sp, without_sp)
    if not flash:
        stored = stored + 5 * model.heads * s * model.seq_len * b / t * np.where(grid.rc >= 1, 0, 1)
    return stored


def memory_per_device(model: ModelSpec, grid: PlanGrid, batch_seqs: int, flash: bool = True,
                      tuning: Tuning = FULL, cp_comm: str = "p2p") -> MemoryBreakdown:
    """Per-device memory of every plan in `grid` (module docstring). With LoRA (`tuning`), the
    frozen base keeps only its weights (at `tuning.base_weight_bytes`) and the adapters carry the
    gradients and optimizer states (finetune.py)."""
    dense, expert = split_params_per_device(model, grid)
    n = dense + expert
    dp = grid.dp
    edp = expert_dp(grid) if model.is_moe else 1
    layers_per_stage = -(-model.layers // grid.pp)
    trained = tuning.trained_params(model, n, layers_per_stage)  # LoRA: adapters, on top of the base

    def shard(d, e, stage):  # ZeRO-`stage` and above: non-expert state over DP, expert state over EDP
        on = grid.zero >= stage
        out = d / np.where(on, dp, 1)
        return out if np.isscalar(e) else out + e / np.where(on, edp, 1)

    if tuning.frozen_base:  # adapters (sharded over DP) train; the base, experts included, is frozen
        trained_d, trained_e = trained, 0.0
        unsharded_weights = BYTES_WEIGHT * trained + tuning.base_weight_bytes * n
        frozen_weights = tuning.base_weight_bytes * shard(dense, expert, 3)
    else:
        trained_d, trained_e = dense, expert
        unsharded_weights = BYTES_WEIGHT * n
        frozen_weights = 0.0
    opt = BYTES_OPTIMIZER * shard(trained_d, trained_e, 1)
    grads = np.where(grid.zero >= 3, BYTES_GRAD_ZERO3, BYTES_GRAD) * shard(trained_d, trained_e, 2)
    weights = BYTES_WEIGHT * shard(trained_d, trained_e, 3) + frozen_weights
    m = microbatches(grid, batch_seqs)
    # 1F1B: min(PP, m) micro-batches of ceil(layers / PP) layers each; interleaving adds (PP-1)/(PP v)
    in_flight = np.minimum(grid.pp, m) * np.where(grid.v > 1, 1 + (grid.pp - 1) / (grid.pp * grid.v), 1.0)
    per_layer = activation_bytes_per_layer(model, grid, flash)
    full = grid.rc == 2
    kept = np.where(full, 2 * model.seq_len / grid.cp * grid.mb * model.d_model / grid.tp, per_layer)
    act = kept * layers_per_stage * in_flight + np.where(full, per_layer, 0)
    logits = 6 * model.seq_len / grid.cp * grid.mb * model.vocab / grid.tp  # bf16 + fp32 softmax
    act = act + np.where(grid.pp == 1, logits, 0)
    layer_weights = unsharded_weights / np.maximum(layers_per_stage, 1)
    buffers = np.where(grid.zero >= 3, 2 * layer_weights, np.minimum(DDP_BUCKET_BYTES, BYTES_GRAD * trained))
    if cp_comm == "all_gather":  # K and V of the whole sequence, and their gradients, for one layer
        buffers = buffers + np.where(grid.cp > 1, 2 * grid.cp * kv_chunk_bytes(model, grid), 0.0)
    return MemoryBreakdown(weights / 1e9, grads / 1e9, opt / 1e9, act / 1e9, buffers / 1e9)
