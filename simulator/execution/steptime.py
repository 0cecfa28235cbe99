"""Step time as a sum of named parts, vectorised over a `PlanGrid`.

Per micro-batch and pipeline stage (Narayanan et al. 2021; Korthikanti et al. 2022):
- compute: every GEMM at an efficiency that grows with its size (`PerfParams`), attention
  (FlashAttention with causal skipping, or unfused batched GEMMs plus softmax traffic),
  elementwise ops at HBM bandwidth; backward = 2x forward; full recompute adds a forward,
  selective recompute the attention core (Korthikanti sec. 4.2), "mlp" the core and the MLP,
  "offload" the core, the output projection and the MLP input projections (plan.py; the host
  transfers of offloaded tensors are taken as hidden behind the layer's compute, as XLA's host
  offload streams them: an assumption, not a measurement);
- tp_comm: 2 all-reduce-equivalents forward and 2 backward per layer (all-gather + reduce-scatter
  with sequence parallelism, same volume), inside the scale-up domain when TP fits in it;
- cp_comm: ring attention's K/V exchange (`cp_comm = "p2p"`), hidden behind the attention
  compute when it can be; or (`"all_gather"`, Llama 3 sec. 3.3.2) an all-gather of K and V before
  each forward (and recomputed forward) and a reduce-scatter of their gradients, all exposed;
- ep_comm: MoE dispatch and combine, forward (again when recomputed) and backward (moe_comm.py),
  less `ep_overlap`;
- pp_comm: activation and gradient sends per micro-batch (v times with interleaving);
- bubble: (PP - 1) / v micro-batch times (1F1B and interleaved schedules, Narayanan sec. 2.2);
- dp_comm: gradient all-reduce (ZeRO-0), reduce-scatter + parameter all-gather (ZeRO-1/2), or
  per-micro-batch parameter all-gathers and gradient reduce-scatter (ZeRO-3), minus overlap;
  tp_comm and dp_comm are partly hidden when `overlap` (current software) is on, never more than the
  compute they run under (a micro-batch's for TP and EP together, the step's for DP: `_exposed`);
- optimizer: the AdamW update, memory-bound over the local shard.
With LoRA (`tuning`, finetune.py) the frozen base computes no weight gradients: backward =
activation gradients only (one forward's GEMMs, plus the attention core's second backward GEMM),
the adapters' skinny GEMMs run forward and backward, and only adapter gradients are reduced and
updated (ZeRO-3 still gathers the frozen weights).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from hardware_catalog.schema import Accelerator
from simulator.execution import collectives as coll
from simulator.execution.activations import BYTES_ACT, kv_chunk_bytes
from simulator.execution.memory import split_params_per_device
from simulator.execution.moe_comm import MoeSetup, dispatch_combine_s
from simulator.execution.plan import PlanGrid, expert_dp, expert_tp, microbatches
from simulator.model.finetune import BYTES_WEIGHT, FULL, Tuning
from simulator.model.shapes import ModelSpec
from simulator.system.perf_params import PerfParams


@dataclass(frozen=True)
class StepParts:
    """Seconds per optimizer step, one array entry per plan."""

    compute_s: np.ndarray
    tp_comm_s: np.ndarray
    cp_comm_s: np.ndarray
    ep_comm_s: np.ndarray
    pp_comm_s: np.ndarray
    bubble_s: np.ndarray
    dp_comm_s: np.ndarray
    optimizer_s: np.ndarray

    @property
    def total_s(self) -> np.ndarray:
        return sum(getattr(self, f.name) for f in fields(self))

    def row(self, i: int) -> dict[str, float]:
        return {f.name.removesuffix("_s"): float(getattr(self, f.name)[i]) for f in fields(self)}


class _Ops:
    """Roofline timing of GEMMs, attention and elementwise traffic on one device.

    GEMMs run at the scenario precision's dense peak; fp8/fp4 GEMMs at `fp8_gemm_eff` /
    `fp4_gemm_eff` x the bf16 ceiling, plus a cast of each activation input (`fp8_cast_bytes` per
    element; Transformer Engine keeps attention and elementwise ops in bf16, Micikevicius et al.
    2022 sec. 4). Attention runs at the bf16 peak for fp8/fp4.
    """

    def __init__(self, acc: Accelerator, p: PerfParams, precision: str):
        self.p = p
        self.peak = acc.peak_flops(precision)
        low = precision in ("fp8", "fp4")
        self.peak_attn = acc.peak_flops("bf16" if low else precision)
        self.low_eff = {"fp8": p.fp8_gemm_eff, "fp4": p.fp4_gemm_eff}.get(precision, 1.0)
        self.cast_bytes = p.fp8_cast_bytes if low else 0.0
        self.bw = acc.memory.hbm_tb_per_s.value * 1e12 * p.mem_bw_eff

    def eta(self, flops):
        g = flops / 1e9
        return self.p.gemm_eff_max * g / (g + self.p.gemm_half_gflop)

    def gemm(self, m, n, k, peak=None, scale=1.0):
        """Compute time plus operand traffic (Calculon's default `no_overlap` processing mode);
        `scale` multiplies the efficiency (grouped expert GEMMs)."""
        flops = 2.0 * m * n * k
        eta = self.eta(flops) * (self.low_eff if peak is None else 1.0) * scale
        compute = flops / ((peak or self.peak) * np.maximum(eta, 1e-9))
        memory = (BYTES_ACT * (m * k + k * n + m * n) + self.cast_bytes * m * k) / self.bw
        return compute + memory

    def traffic(self, nbytes):
        return nbytes / self.bw


@dataclass(frozen=True)
class _LayerTimes:
    """Forward seconds of one layer's parts (arrays over plans): a whole dense and MoE layer, the
    attention core, the attention output projection, and the MLP block of a dense and a MoE layer,
    whole and its input projections alone (recompute levels re-run these, `_recompute`)."""

    dense: np.ndarray
    moe: np.ndarray
    core: np.ndarray
    out_proj: np.ndarray
    dense_mlp: np.ndarray
    dense_mlp_in: np.ndarray
    moe_mlp: np.ndarray
    moe_mlp_in: np.ndarray


def _layer_forward(model: ModelSpec, grid: PlanGrid, ops: _Ops, flash: bool, etp, busiest: float) -> _LayerTimes:
    """Forward seconds of one dense layer, one MoE layer and their parts (`_LayerTimes`); the busiest
    expert rank's experts see `busiest` x their mean share of tokens (MoeSetup.busiest_share)."""
    h, tp, s = model.d_model, grid.tp, model.seq_len
    tok = grid.mb * s / grid.cp
    n_out = model.heads * model.v_hd
    n_in = (model.attention_params() - n_out * h) / h
    out_proj = ops.gemm(tok, h, n_out / tp)
    attn_proj = ops.gemm(tok, n_in / tp, h) + out_proj
    qk_v = model.hd + model.rope_head_dim + model.v_hd
    attn_flops = 2.0 * grid.mb * (s / grid.cp) * s * model.heads * qk_v / tp
    if flash:  # causal blocks above the diagonal are skipped
        core = 0.5 * attn_flops / (ops.peak_attn * ops.p.flash_attn_eff)
    else:
        per_head = 2.0 * (s / grid.cp) * s * model.hd
        core = attn_flops / (ops.peak_attn * ops.eta(per_head)) + ops.traffic(
            ops.p.softmax_bytes * grid.mb * model.heads / tp * (s / grid.cp) * s)
    sharded = grid.sp.astype(bool) | (tp == 1)
    elem_bytes = ops.p.elementwise_bytes * tok * h * np.where(sharded, 1 / tp, (30 + 16 / tp) / 46)
    common = attn_proj + core + ops.traffic(elem_bytes)
    g = 2 if model.gated_mlp else 1
    mlp_in = ops.gemm(tok, g * model.ffn_dim / tp, h)
    mlp = mlp_in + ops.gemm(tok, h, model.ffn_dim / tp)
    if not model.is_moe:
        return _LayerTimes(common + mlp, common + mlp, core, out_proj, mlp, mlp_in, mlp, mlp_in)
    # Experts: each of the E/ep local experts sees the rank's mean share of routed tokens times the
    # busiest rank's imbalance (dropless) or the capacity factor (padded), as grouped GEMMs
    # (module docstring of perf_params, MoE priors; moe_comm.MoeSetup).
    fe = model.expert_ffn_dim
    m_e = tok * etp / tp * model.experts_per_token * grid.ep / model.experts * busiest
    grouped = ops.p.grouped_gemm_eff
    experts_in = model.experts / grid.ep * ops.gemm(m_e, g * fe / etp, h, scale=grouped)
    experts = experts_in + model.experts / grid.ep * ops.gemm(m_e, h, fe / etp, scale=grouped)
    shared_in = ops.gemm(tok, g * fe * model.shared_experts / tp, h) if model.shared_experts else 0.0
    shared = shared_in + ops.gemm(tok, h, fe * model.shared_experts / tp) if model.shared_experts else 0.0
    moe_mlp = experts + shared + ops.gemm(tok, model.experts, h)
    return _LayerTimes(common + mlp, common + moe_mlp, core, out_proj, mlp, mlp_in, moe_mlp, experts_in + shared_in)


def _recompute(grid: PlanGrid, t: _LayerTimes, lps, moe_share: float, layers_fwd, stack: str):
    """Forward seconds re-run per micro-batch on the busiest stage, by recompute level (plan.py):
    full = the layers' forward; selective = the attention core; mlp = the core and the MLP block
    (Megatron-Core checkpoints the MLP module and re-runs all of it), with `stack="maxtext"` the core
    and the MLP input projections (`save_dot_except_mlpwi` saves the output projection's result);
    offload = the core, the attention output projection and the MLP input projections."""
    mix = lambda dense, moe: (1 - moe_share) * dense + moe_share * moe  # noqa: E731
    mlp = mix(t.dense_mlp_in, t.moe_mlp_in) if stack == "maxtext" else mix(t.dense_mlp, t.moe_mlp)
    levels = [0.0, lps * t.core, layers_fwd, lps * (t.core + mlp),
              lps * (t.core + t.out_proj + mix(t.dense_mlp_in, t.moe_mlp_in))]
    return np.choose(grid.rc, [np.broadcast_to(np.asarray(x, dtype=float), grid.tp.shape) for x in levels])


def _ep_exchange(model: ModelSpec, grid: PlanGrid, net, etp, tokens, precision: str, moe: MoeSetup):
    """MoE dispatch and combine seconds per layer of the stage and micro-batch, before overlap
    (moe_comm.py): across the EP group, whose ranks sit `expert_tp` apart (the TP group with the
    classic layout, adjacent when folded), `tokens` per rank; full, mlp and offload recompute re-run
    the forward exchanges. 0 for a dense model."""
    if not model.is_moe:
        return 0.0
    fwd, bwd = dispatch_combine_s(net, model, grid.ep, etp, tokens, precision, moe)
    return model.moe_layers / model.layers * (fwd * (1 + (grid.rc >= 2)) + bwd)


def _exposed(comm_s, overlap: float, compute_s):
    """The part of `comm_s` left after `overlap` of it hides behind computation, never more than
    `compute_s` (the compute it can run under: a micro-batch's for TP and EP, the step's for DP)."""
    return comm_s - np.minimum(overlap * comm_s, compute_s)


def _adapters_forward(tuning: Tuning, ops: _Ops, tok):
    """Forward seconds of one layer's LoRA adapters: x A^T (tok x r x d_in), then (. ) B^T (tok x d_out x r)."""
    r = tuning.lora_rank
    return sum(ops.gemm(tok, r, d_in) + ops.gemm(tok, d_out, r) for d_in, d_out in tuning.adapter_shapes)


def _regathered_share(model: ModelSpec, tp, reuse_params: float):
    """Share of a layer's weights gathered again for its backward after a full-recompute forward.

    DeepSpeed ZeRO-3 releases a gathered parameter unless the module is used again within
    `stage3_max_reuse_distance` parameters (default 1e9; DeepSpeed ZeRO-3 docs, and the trace-based
    `_keep_for_later` of its partitioned-parameter coordinator). Between a matrix's recomputed
    forward and its backward run the layer's later matrices, forward and then backward, so matrix j
    is kept when 2 x (the parameters of the matrices after it) < the distance. Matrices in forward
    order: attention in, attention out, MLP in, MLP out, per TP rank (dense layer shape).
    PyTorch FSDP skips the reshard after a forward run inside the backward (recompute), i.e.
    distance inf (as we read its post-forward hook; not re-checked here).
    """
    h = model.d_model
    n_out = model.heads * model.v_hd
    sizes = [model.attention_params() - n_out * h, n_out * h, (2 if model.gated_mlp else 1) * model.ffn_dim * h,
             model.ffn_dim * h]
    after = [sum(sizes[j + 1:]) for j in range(len(sizes))]
    tp = np.asarray(tp, dtype=float)
    released = sum(size * (2 * later / tp >= reuse_params) for size, later in zip(sizes, after, strict=True))
    return released / sum(sizes)


def _dp_sync(net, p: PerfParams, grid: PlanGrid, m, n, stride, trained, weight_bytes, grad_bytes, z3_calls,
             z3_gathers):
    """Data-parallel communication per step over `n` ranks `stride` apart (before overlap).

    ZeRO-0: gradient all-reduce; ZeRO-1/2: gradient reduce-scatter + parameter all-gather, in
    `dp_bucket_bytes` buckets; ZeRO-3 gathers each weight matrix (4 per layer) before the forward and
    the backward, and reduce-scatters its gradient, every micro-batch (Rajbhandari et al. 2020
    sec. 5: parameters are released after use and fetched again); with full recompute, the matrices
    released between the recomputed forward and the backward are gathered again (`z3_gathers`,
    `_regathered_share`); list-based collectives add `list_copy_overhead_s` per rank per call."""
    buckets = np.ceil(trained * grad_bytes / p.dp_bucket_bytes)
    return np.select(
        [grid.zero == 0, grid.zero <= 2],
        [coll.all_reduce(net, n, trained * grad_bytes, stride, buckets),
         coll.reduce_scatter(net, n, trained * grad_bytes, stride, buckets)
         + coll.reduce_scatter(net, n, trained * BYTES_WEIGHT, stride, buckets)],
        default=m * (z3_gathers * coll.reduce_scatter(net, n, weight_bytes, stride, z3_calls)
                     + coll.reduce_scatter(net, n, trained * grad_bytes, stride, z3_calls)
                     + (z3_gathers + 1) * z3_calls * n * p.list_copy_overhead_s),
    )


def _dp_and_optimizer(model: ModelSpec, grid: PlanGrid, net, ops, p: PerfParams, precision: str, tuning: Tuning,
                      m, lps, stack: str):
    """Data-parallel gradient sync before overlap (dense and expert groups, ZeRO stage, LoRA's trained
    share) and the optimizer step's memory traffic, per step, for every plan in `grid`. ZeRO-3
    collectives per layer and pass: PyTorch FSDP (`stack="fsdp"`) gathers a wrapped block's
    FlatParameter in one call (torch.distributed.fsdp: a wrapped module's parameters are flattened
    into one FlatParameter), the other stacks each of the 4 weight matrices."""
    grad_bytes = 2 if precision == "fp16" else 4  # Megatron reduces bf16 training's grads in fp32
    z3_gathers = 2 + (grid.rc == 2) * _regathered_share(model, grid.tp, p.zero3_reuse_params)
    z3_calls = (1 if stack == "fsdp" else 4) * lps

    def sync(n, stride, trained, weight_bytes):
        return _dp_sync(net, p, grid, m, n, stride, trained, weight_bytes, grad_bytes, z3_calls, z3_gathers)

    dense_local, expert_local = split_params_per_device(model, grid)
    if tuning.frozen_base or not model.is_moe:
        n_local = dense_local + expert_local
        trained = tuning.trained_params(model, n_local, lps)
        weight_bytes = n_local * tuning.base_weight_bytes + (trained * BYTES_WEIGHT if tuning.frozen_base else 0.0)
        dp = sync(grid.dp * grid.cp, grid.tp, trained, weight_bytes)
        opt_params = trained / np.where(grid.zero >= 1, grid.dp * grid.cp, 1)
    else:  # expert gradients reduce over the expert-DP ranks, `ep x etp` apart (plan.expert_dp)
        edp = expert_dp(grid)
        dp = (sync(grid.dp * grid.cp, grid.tp, dense_local, dense_local * BYTES_WEIGHT)
              + sync(edp, grid.ep * expert_tp(grid), expert_local, expert_local * BYTES_WEIGHT))
        opt_params = np.where(grid.zero >= 1, dense_local / (grid.dp * grid.cp) + expert_local / edp,
                              dense_local + expert_local)
    return dp, ops.traffic(opt_params * p.optimizer_bytes_per_param)


def step_parts(model: ModelSpec, grid: PlanGrid, acc: Accelerator, p: PerfParams, precision: str,
               batch_seqs: int, flash: bool = True, overlap: bool = True, tuning: Tuning = FULL,
               cp_comm: str = "p2p", stack: str = "megatron", moe: MoeSetup = MoeSetup()) -> StepParts:
    """Named parts of the step time of every plan in `grid` (module docstring); `stack` (memory.py's
    STACKS) says what the "mlp" recompute level re-runs; `moe` how MoE tokens travel and whether
    they are dropped (moe_comm.py)."""
    ops = _Ops(acc, p, precision)
    net = coll.Network.of(acc, p)
    h, tp, s = model.d_model, grid.tp, model.seq_len
    tok = grid.mb * s / grid.cp
    m = microbatches(grid, batch_seqs)
    lps = -(-model.layers // grid.pp)  # layers on the busiest stage
    moe_share = model.moe_layers / model.layers if model.is_moe else 0.0

    etp = expert_tp(grid)  # expert tensor parallelism (plan.expert_tp): TP, or less when EP is folded
    parts = _layer_forward(model, grid, ops, flash, etp, moe.busiest_share(p.moe_imbalance))
    core = parts.core
    layers_fwd = lps * ((1 - moe_share) * parts.dense + moe_share * parts.moe)
    logits_fwd = ops.gemm(tok, model.vocab / tp, h) + ops.traffic(10.0 * tok * model.vocab / tp)
    if tuning.frozen_base:  # LoRA: forward + activation gradients (module docstring)
        adapters_fwd = lps * _adapters_forward(tuning, ops, tok)
        layers_fwd = layers_fwd + adapters_fwd
        passes = 2 * (layers_fwd + logits_fwd) + lps * core + adapters_fwd  # + adapter weight grads
    else:
        passes = 3 * (layers_fwd + logits_fwd)
    recompute = _recompute(grid, parts, lps, moe_share, layers_fwd, stack)
    compute_mb = passes + 3 * lps * p.layer_overhead_s + recompute

    act_bytes = tok * h * BYTES_ACT
    ar = coll.all_reduce(net, tp, act_bytes, stride=1)
    # re-running a layer's or its MLP's forward repeats two TP collectives (an MLP's gather and scatter)
    tp_comm = lps * ar * (4 + np.where(grid.rc >= 2, 2, 0))
    tp_mb = _exposed(tp_comm, p.tp_overlap if overlap else 0.0, compute_mb)

    kv_bytes = kv_chunk_bytes(model, grid)
    if cp_comm == "all_gather":  # every rank gathers the whole sequence's K/V (cp x its chunk)
        gather = coll.reduce_scatter(net, grid.cp, kv_bytes * grid.cp, stride=grid.tp)
        cp_mb = lps * gather * (2 + (grid.rc == 2))
    else:
        ring = coll.p2p(net, kv_bytes, grid.tp * grid.cp <= net.domain) * (grid.cp - 1)
        cp_mb = lps * np.maximum(3 * ring - 3 * core, 0.0) * (grid.cp > 1)

    # TP and EP collectives hide behind the same micro-batch compute: EP gets what TP left of it
    ep_mb = _exposed(_ep_exchange(model, grid, net, etp, tok * etp / tp, precision, moe) * lps,
                     p.ep_overlap if overlap else 0.0, compute_mb - (tp_comm - tp_mb))

    pp_stride = grid.tp * grid.cp * grid.dp
    p2p = coll.p2p(net, act_bytes / tp, pp_stride * 2 <= net.domain)
    pp_mb = np.where(grid.pp > 1, 2 * grid.v * p2p, 0.0)

    t_mb = compute_mb + tp_mb + cp_mb + ep_mb + pp_mb
    bubble = (grid.pp - 1) / grid.v * t_mb

    dp, optimizer = _dp_and_optimizer(model, grid, net, ops, p, precision, tuning, m, lps, stack)
    dp = _exposed(dp, p.dp_overlap if overlap else 0.0, m * compute_mb)

    return StepParts(m * compute_mb, m * tp_mb, m * cp_mb, m * ep_mb, m * pp_mb, bubble, dp, optimizer)
