"""Memory per device for parallelism plans, vectorised over a `PlanGrid`.

Static memory, mixed-precision Adam (Rajbhandari et al. 2020, ZeRO, sec. 3; Megatron-LM
`theoretical_memory_usage.py`): bf16 weights 2 B, fp32 main gradients 4 B, fp32 master weights
plus Adam m and v 12 B per parameter = 18 B; ZeRO-1 (Megatron's distributed optimizer) shards the
12 B, ZeRO-2 also the gradients, ZeRO-3/FSDP also the weights, and keeps no separate fp32
gradient buffer: 16 B per parameter, all sharded (the ZeRO paper's 2 + 2 + 12 accounting; FSDP's
fp32 sharded parameter is the master copy: 4 + 4 + 8; MaxText keeps fp32 weights, fp32 gradients
and fp32 Adam moments, sharded: 4 + 4 + 8 too).
- ZeRO (any stage) shards over every rank holding a replica of the weights: DP x CP, since context-parallel
  ranks hold the same weights (Megatron-Core builds the distributed optimizer and the gradient
  buffers on `get_data_parallel_group(with_context_parallel=True)`).
- Gradient buffer dtype (`grad_reduce_in_fp32`): Megatron-LM forces fp32 gradient accumulation and
  all-reduce for bf16 (`arguments.py`: "accumulate and all-reduce gradients in fp32 for bfloat16
  data type"), and NeMo 2's `bf16_mixed()` sets `grad_reduce_in_fp32=True`: 4 B, the default.
  Megatron-Core's `DistributedDataParallelConfig.grad_reduce_in_fp32` itself defaults to False and
  its gradient buffer then takes the parameter dtype, 2 B: NeMo 1.x sets it from
  `optim.grad_sync_dtype` (`grad_reduce_in_fp32 = grad_sync_dtype == 'fp32'`), and NVIDIA's
  performance configurations set `grad_sync_dtype: bf16` (NeMo-Framework-Launcher
  `conf/training/gpt3/20b_fp8_performance.yaml`, `nemotron/nemotron_340b.yaml`, the `llama3_70b`
  examples) or `grad_reduce_in_fp32 = False` (NeMo 2 `scripts/performance`, FP8 runs).
TP divides a stage's parameters (pipeline stages below). Routed experts follow MoE parallel folding
(plan.expert_tp; Liu et al. 2025): EP ranks divide the experts among them and ETP ranks split each
expert's matrices, so a device holds the stage's expert parameters / (EP x ETP); ZeRO shards their
states over the expert-data-parallel group, EDP = tp*cp*dp / (EP x ETP) (Megatron-Core's distributed
optimizer shards the expert buffers over the expert-DP group).

Pipeline stages. Stage r of PP holds L_r layers and, under 1F1B, min(PP - r, m) micro-batches in
flight (Narayanan et al. 2021 sec. 2.2; Korthikanti et al. 2022 sec. 4.2.3); under the interleaved
schedule with v model chunks, Megatron-Core's warm-up (`get_pp_rank_microbatches`:
2 (PP - r - 1) + (v - 1) PP chunk-forwards, plus one) gives L_r (PP + (PP - 2r - 1) / v) layers'
worth (for r = 0: the paper's factor 1 + (PP - 1) / (PP v)). Its group of contiguous micro-batches
per chunk, `microbatch_group_size_per_vp_stage` (N, the PP above), defaults to PP and must lie in
[PP, M] (`forward_backward_pipelining_with_interleaving` raises otherwise); a larger N warms up
more, so this is the least its interleaved schedule holds. When PP x ceil(layers / PP) exceeds the
layers, the first stage and then the last hold one layer fewer: Llama 3 (Dubey et al. 2024 sec.
3.3.2: "we reduce one Transformer layer each from the first and the last stages", because "the first
stage consumes more memory due to the embedding and the warm-up micro-batches") and Megatron-Core's
`account_for_embedding_in_pipeline_split` / `account_for_loss_in_pipeline_split`. The first stage
holds the input embedding (and learned positions), the last the output layer (a copy of the word
embedding when tied) and the logits. Stages 0, 1 and PP - 1 are evaluated and the most loaded one is
reported.

Activations per layer and micro-batch, and what each recompute level keeps: activations.py.
Logits, on the last stage only, for one micro-batch: bytes per vocabulary entry per token, by
software `stack`:
- "megatron"/"other": 6 (bf16 logits plus the fp32 copy `vocab_parallel_cross_entropy` makes with
  `.float()` and turns into the softmax in place; both live while the copy is made);
- "fsdp" (llm-foundry): 4 (`loss_fn: fused_crossentropy` is flash-attn's Triton cross entropy, which
  saves the bf16 logits and allocates bf16 `dlogits = torch.empty_like(logits)` for the backward);
- "maxtext": 4 (fp32 logits: `logits_dot_in_fp32`, the embedding's `attend_dtype=jnp.float32`); the
  other residuals of `cross_entropy_with_logits`'s custom VJP (`exp_shifted`, `log_softmax`, the
  one-hot targets) are elementwise functions of the logits and labels, which XLA fuses into the
  backward or recomputes when the step would not fit (HloRematerialization), and `log_softmax` only
  feeds the targets' gradient, which the jitted step discards.
The logits live from the end of the last layer's forward until the output layer's backward, before
any layer's recomputation starts: under full recompute the peak is the larger of the logits and one
layer's working set, not their sum; without it, all stored activations and the logits coexist.
Communication buffers: DDP gradient buckets / ZeRO-3 prefetch of two layers' weights; with
all-gather context parallelism (`cp_comm = "all_gather"`), one layer's gathered full-sequence K and
V and their gradients.
Runtime overhead: PyTorch on CUDA/ROCm, "~5 GiB unexplained constant overhead in
Megatron-DeepSpeed" (EleutherAI cookbook `calc_transformer_mem.py`, misc_mem_gib: CUDA context, NCCL
buffers, allocator fragmentation). XLA on TPU (`stack="maxtext"`) plans every buffer of the step
at compile time, has no CUDA context, NCCL buffers or caching allocator; the TPU runtime keeps HBM
minus `Device.memory_stats()['bytes_limit']`: 32 GiB - 33,014,415,360 B = 1.25 GiB on a 32 GiB TPU
(jax-ml/jax#1491), the largest such reservation reported (pytorch/xla#7086: 0.25 GiB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import ScenarioError
from simulator.model.finetune import BYTES_GRAD, BYTES_OPTIMIZER, BYTES_WEIGHT, FULL, Tuning
from simulator.model.shapes import ModelSpec
from simulator.execution.activations import BYTES_ACT, activation_bytes_per_layer, kv_chunk_bytes, recompute_bytes
from simulator.execution.plan import PlanGrid, expert_dp, expert_tp, microbatches

GIB = 2**30
# "~5 GiB unexplained constant overhead in Megatron-DeepSpeed" (EleutherAI cookbook
# calc_transformer_mem.py, misc_mem_gib): CUDA context, NCCL buffers, allocator fragmentation.
OVERHEAD_GB = 5 * GIB / 1e9
# TPU runtime reservation: 32 GiB of HBM minus the bytes_limit JAX reports (jax-ml/jax#1491).
TPU_RUNTIME_GB = (32 * GIB - 33_014_415_360) / 1e9
BYTES_GRAD_ZERO3 = 2  # ZeRO-3/FSDP: 16 B per parameter in all (module docstring)
STACKS = ("megatron", "fsdp", "maxtext", "other")
# Bytes per vocabulary entry per token while the logits are live (module docstring).
LOGIT_BYTES = {"megatron": 6, "other": 6, "fsdp": 4, "maxtext": 4}


def capacity_gb(acc) -> float:
    """Device memory in GB (1e9 B). Vendors' "GB" of HBM are binary: an H100 80GB shows 81,559 MiB in
    nvidia-smi and an A100 80GB 81,920 MiB, so the catalog's `hbm_gb` is read as GiB."""
    return acc.memory.hbm_gb.value * GIB / 1e9


def overhead_gb(stack: str = "megatron") -> float:
    """Runtime memory outside the model's tensors (module docstring): 5 GiB for PyTorch on
    CUDA/ROCm, the TPU runtime's 1.25 GiB for MaxText (XLA on TPU)."""
    return TPU_RUNTIME_GB if _stack(stack) == "maxtext" else OVERHEAD_GB


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

    def take(self, idx: np.ndarray) -> MemoryBreakdown:
        """The plans at `idx` (overhead kept)."""
        return MemoryBreakdown(self.weights_gb[idx], self.gradients_gb[idx], self.optimizer_gb[idx],
                               self.activations_gb[idx], self.buffers_gb[idx], self.overhead_gb)

    def row(self, i: int) -> dict[str, float]:
        return {"weights_gb": float(self.weights_gb[i]), "gradients_gb": float(self.gradients_gb[i]),
                "optimizer_gb": float(self.optimizer_gb[i]), "activations_gb": float(self.activations_gb[i]),
                "buffers_gb": float(self.buffers_gb[i]), "overhead_gb": self.overhead_gb,
                "total_gb": float(self.total_gb[i])}


def _stack(stack: str) -> str:
    if stack not in STACKS:
        raise ScenarioError(f"parallelism.stack: expected one of {', '.join(STACKS)} for memory, got '{stack}'")
    return stack


def memory_stack(acc, stack: str | None = None) -> str:
    """The software stack whose storage `memory_per_device` models: `stack` (the scenario's
    `parallelism.stack`, a public row's `framework`) or, when None, the catalog's reference stack for
    the device: MaxText on TPUs, Megatron-Core/NeMo elsewhere."""
    return _stack(stack) if stack is not None else ("maxtext" if acc.kind == "tpu" else "megatron")


def _expert_params(model: ModelSpec) -> int:
    return model.moe_layers * model.experts * model._mlp_params(model.expert_ffn_dim) if model.is_moe else 0


def split_params_per_device(model: ModelSpec, grid: PlanGrid) -> tuple[np.ndarray, np.ndarray | float]:
    """(non-expert, routed-expert) parameters on the most loaded device before ZeRO sharding, an upper
    bound over the stages: ceil(layers / PP) layers plus the output layer (the step-time model's
    busiest stage; `memory_per_device` evaluates the stages one by one).

    Non-expert (attention, dense MLPs, shared experts, routers, norms, embeddings): / TP. Routed
    experts: / (EP x ETP) (module docstring). Expert parameters are spread evenly over the layers.
    """
    layers_per_stage = -(-model.layers // grid.pp)
    # The first stage holds the input embedding, the last the output layer; with one stage (or tied
    # weights) a device holds all of embedding_params().
    head = model.vocab * model.d_model
    embedding = np.where(grid.pp == 1, model.embedding_params(), head)
    return _stage_params(model, grid, layers_per_stage, embedding)


def _stage_params(model: ModelSpec, grid: PlanGrid, layers, embedding) -> tuple[np.ndarray, np.ndarray | float]:
    """(non-expert, routed-expert) parameters on one device of a stage of `layers` layers holding
    `embedding` embedding parameters (before TP)."""
    expert = _expert_params(model)
    layer_params = model.params_total() - model.embedding_params() - expert
    dense = (layer_params / model.layers * layers + embedding) / grid.tp
    if not expert:
        return dense, 0.0
    return dense, expert / model.layers * layers / (grid.ep * expert_tp(grid))


def params_per_device(model: ModelSpec, grid: PlanGrid) -> np.ndarray:
    """Parameters on the most loaded device before ZeRO sharding."""
    dense, expert = split_params_per_device(model, grid)
    return dense + expert


def _stages(model: ModelSpec, grid: PlanGrid, m: np.ndarray) -> list[dict]:
    """Stages 0, 1 and PP - 1 of every plan (module docstring): layers, embedding parameters,
    layers' worth of activations in flight per layer, and whether it holds the logits."""
    pp = grid.pp
    c = -(-model.layers // pp)
    short = pp * c - model.layers
    first = c - (short >= 1)
    last = c - (short >= 2)
    words = model.vocab * model.d_model
    embed_first = np.where(pp == 1, model.embedding_params(), model.embedding_params() - (
        0 if model.tied_embeddings else words))
    v = grid.v

    def in_flight(r):
        one_f_one_b = np.minimum(pp - r, m)
        interleaved = np.minimum(pp + (pp - 2 * r - 1) / np.maximum(v, 1), m)
        return np.where(v > 1, interleaved, one_f_one_b).astype(float)

    single = pp == 1
    stages = [dict(layers=np.where(single, model.layers, first), embedding=embed_first,
                   in_flight=in_flight(0), logits=single)]
    if (pp > 1).any():
        stages.append(dict(layers=np.where(pp == 2, last, c), embedding=np.where(pp == 2, words, 0),
                           in_flight=in_flight(1), logits=pp == 2))
        stages.append(dict(layers=last, embedding=words, in_flight=in_flight(pp - 1), logits=pp >= 2))
    return stages


def _stage_parts(model: ModelSpec, grid: PlanGrid, st: dict, tuning: Tuning, shard, grad_bytes, kept, working,
                 logits, cp_comm: str) -> list[np.ndarray]:
    """Bytes of one pipeline stage (`_stages`) per device: weights, gradients, optimizer states,
    activations, buffers (module docstring); `shard(dense, expert, stage)` applies ZeRO."""
    layers = st["layers"]
    dense, expert = _stage_params(model, grid, layers, st["embedding"])
    n = dense + expert
    trained = tuning.trained_params(model, n, layers)  # LoRA: adapters, on top of the base
    if tuning.frozen_base:  # adapters (sharded over DP) train; the base, experts included, is frozen
        trained_d, trained_e = trained, 0.0
        unsharded_weights = BYTES_WEIGHT * trained + tuning.base_weight_bytes * n
        frozen_weights = tuning.base_weight_bytes * shard(dense, expert, 3)
    else:
        trained_d, trained_e = dense, expert
        unsharded_weights = BYTES_WEIGHT * n
        frozen_weights = 0.0
    opt = BYTES_OPTIMIZER * shard(trained_d, trained_e, 1)
    grads = grad_bytes * shard(trained_d, trained_e, 2)
    weights = BYTES_WEIGHT * shard(trained_d, trained_e, 3) + frozen_weights
    out = np.where(st["logits"], logits, 0.0)
    act = kept * layers * st["in_flight"] + np.where(working > 0, np.maximum(working, out), out)
    layer_weights = unsharded_weights / np.maximum(layers, 1)
    buffers = np.where(grid.zero >= 3, 2 * layer_weights, np.minimum(DDP_BUCKET_BYTES, BYTES_GRAD * trained))
    if cp_comm == "all_gather":  # K and V of the whole sequence, and their gradients, for one layer
        buffers = buffers + np.where(grid.cp > 1, 2 * grid.cp * kv_chunk_bytes(model, grid), 0.0)
    return [np.broadcast_to(np.asarray(x, dtype=float), grid.tp.shape) for x in (weights, grads, opt, act, buffers)]


def memory_per_device(model: ModelSpec, grid: PlanGrid, batch_seqs: int, flash: bool = True,
                      tuning: Tuning = FULL, cp_comm: str = "p2p", *, stack: str = "megatron",
                      grad_reduce_in_fp32: bool = True, dropout: bool = False,
                      precision: str = "bf16", moe_padding: float = 1.0) -> MemoryBreakdown:
    """Per-device memory of every plan in `grid` on its most loaded pipeline stage (module docstring).

    `stack`: the software that stores the tensors ("megatron" = Megatron-Core/NeMo, the default;
    "fsdp" = PyTorch FSDP as llm-foundry runs it; "maxtext" = MaxText on TPU; "other"; `memory_stack`
    resolves the scenario's `parallelism.stack`): the logits' bytes, the runtime overhead and
    MaxText's remat policies. `grad_reduce_in_fp32`: fp32 (4 B) or bf16 (2 B)
    gradient buffer below ZeRO-3. `dropout`: whether the model trains with dropout (its masks are
    stored). `precision`: "fp8" keeps GEMM inputs in FP8 (Transformer Engine). `moe_padding`: the
    capacity factor of token-dropping MoE, whose expert buffers are padded to it (moe_comm.MoeSetup;
    1 when dropless). With LoRA (`tuning`),
    the frozen base keeps only its weights (at
    `tuning.base_weight_bytes`) and the adapters carry the gradients and optimizer states
    (finetune.py)."""
    stack = _stack(stack)
    replicas = grid.dp * grid.cp  # ranks holding the same non-expert weights
    edp = expert_dp(grid) if model.is_moe else 1
    m = microbatches(grid, batch_seqs)
    grad_bytes = np.where(grid.zero >= 3, BYTES_GRAD_ZERO3, BYTES_GRAD if grad_reduce_in_fp32 else BYTES_WEIGHT)

    def shard(d, e, stage):  # ZeRO-`stage` and above: non-expert state over DP x CP, expert over EDP
        on = grid.zero >= stage
        out = d / np.where(on, replicas, 1)
        return out if np.isscalar(e) else out + e / np.where(on, edp, 1)

    # activations of one layer and one micro-batch: stored, and the whole working set
    per_layer = activation_bytes_per_layer(model, grid, flash, dropout, precision, moe_padding)
    kept, working = recompute_bytes(model, grid, per_layer, stack, precision, moe_padding)
    logits = LOGIT_BYTES[stack] * model.seq_len / grid.cp * grid.mb * model.vocab / grid.tp

    best, best_total = None, None
    for st in _stages(model, grid, m):
        parts = _stage_parts(model, grid, st, tuning, shard, grad_bytes, kept, working, logits, cp_comm)
        total = sum(parts)
        if best is None:
            best, best_total = parts, total
        else:  # per plan, the most loaded stage
            more = total > best_total
            best = [np.where(more, new, old) for new, old in zip(parts, best, strict=True)]
            best_total = np.maximum(total, best_total)
    weights, grads, opt, act, buffers = best
    return MemoryBreakdown(weights / 1e9, grads / 1e9, opt / 1e9, act / 1e9, buffers / 1e9,
                           overhead_gb(stack))
