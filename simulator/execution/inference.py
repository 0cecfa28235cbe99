"""Inference: prefill and decode on a tensor-parallel group, and the KV cache (serving.py builds on them).

Units are in the names; GB = 1e9 bytes, as in memory.py. `batch` may be a numpy array: the
serving search (serving.py) evaluates every batch size at once.

Decode step (roofline, Williams et al. 2009, CACM 52(4); the JAX scaling book, Austin et al. 2025,
"All about Transformer Inference"), `batch` sequences on a TP group of `devices`:
    bytes/device = (B_w * params_active + KV bytes) / devices
    FLOPs/device = batch * (2 N_matmul_active + 4 L d_attn context_len) / devices
    time_s       = max(bytes / (HBM B/s * mem_bw_eff), FLOPs / (peak * gemm_kernel_max))
                   + 2 L all-reduces of batch * d_model activations (Megatron TP: one after
                     attention, one after the MLP; Shoeybi et al. 2019 sec. 3)
                   + L * decode_layer_overhead_s (kernel gaps, not bandwidth)
At small batch the bytes term wins: decode is memory-bandwidth-bound. The all-reduces are tiny
and latency-bound: NCCL's own cost model for a ring all-reduce with the LL protocol inside one
NVLink domain is base 3.6 us + 2(n-1) x 0.47 us per hop (NCCL src/graph/tuning.cc, baseLat and
hwLat tables), i.e. ~10 us on 8 GPUs, plus the bandwidth term over the scale-up fabric. A TP group
may reach past the domain to the whole node (PCIe cards, `tp_reach`): a hop between domains then
costs NCCL's PCI figure, 1.0 us, and the bytes cross the slower tier (the NIC figure, or the PCIe
link where the catalog lists none).
Compute runs at `gemm_kernel_max`, the tuned-kernel GEMM ceiling (maximum achievable matmul) that
inference engines approach, not the training stacks' `gemm_eff_max` (perf_params.py).
MoE: all experts are resident; a step reads the experts its tokens pick (`weights_read`, uniform
routing). Not modelled: speculative decoding, quantisation kernels' own overheads, CPU scheduling,
expert-parallel all-to-alls (experts are split by TP here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware_catalog.schema import Accelerator
from simulator.errors import InfeasiblePlanError, ScenarioError
from simulator.model.shapes import ModelSpec
from simulator.system.perf_params import PerfParams
from simulator.execution.memory import capacity_gb
from simulator.execution.collectives import Network, all_reduce_bandwidth_s, group_layout, tp_reach

# Bytes per element of weights / KV cache for an inference dtype.
DTYPE_BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5}
DEFAULT_PERF = PerfParams()
# NCCL ring all-reduce latency, LL protocol (src/graph/tuning.cc: baseLat ring LL 3.6 us; hwLat
# NVLink ring LL 0.47 us per step; 2(n-1) steps).
NCCL_LL_BASE_S = 3.6e-6
NCCL_LL_NVLINK_HOP_S = 0.47e-6
# A ring step over PCIe, from one scale-up domain to the next inside a node (PCIe cards: every step):
# NCCL src/graph/tuning.cc hwLat, PCI ring LL 1.0 us (NVLink 0.4 us in the same table).
NCCL_LL_PCI_HOP_S = 1.0e-6
# Fixed time per layer per decode step: ~12 kernels (norms, QKV, RoPE, attention, projection,
# MLP GEMMs, activation, residuals) x ~3 us of launch/tail gap each even under CUDA Graphs.
# Unverified engineering prior; calibration would fit it.
DECODE_LAYER_OVERHEAD_S = 36e-6
# Engine limits a deployment starts from (the defaults of serving.max_batch and
# serving.prefill_chunk_tokens): vLLM's long-standing default max_num_seqs = 256 sequences in
# flight, and TensorRT-LLM's default max_num_tokens = 8192 tokens per forward, which batches short
# prompts' prefills together. Both recalled from the engines' documentation, not verified here.
DEFAULT_MAX_BATCH = 256
DEFAULT_PREFILL_CHUNK_TOKENS = 8192


def dtype_bytes(dtype: str, field: str = "inference.dtype") -> float:
    """Bytes per element of `dtype`; ScenarioError naming `field` for an unknown one."""
    if dtype not in DTYPE_BYTES:
        raise ScenarioError(f"{field}: unknown '{dtype}' (known: {', '.join(DTYPE_BYTES)})")
    return DTYPE_BYTES[dtype]


def kv_cache_bytes(model: ModelSpec, context_len, batch, bytes_per_elem: float = 2.0):
    """Whole KV cache: 2 (K and V) x layers x kv_heads x head_dim x context_len x batch x bytes.

    MLA caches one latent of kv_lora_rank + rope_head_dim per token per layer (DeepSeek-V2 sec. 2.1.2).
    """
    per_token_layer = (model.kv_lora_rank + model.rope_head_dim) if model.is_mla else 2 * model.kv_heads * model.hd
    return per_token_layer * model.layers * context_len * batch * bytes_per_elem


def kv_shards(model: ModelSpec, devices: int) -> int:
    """Devices the KV cache is split over: TP splits KV heads, so beyond kv_heads they are replicated;
    an MLA latent is not split by heads and is replicated on every TP rank."""
    return 1 if model.is_mla else min(devices, model.kv_heads)


def compute_peak_dtype(acc: Accelerator, dtype: str) -> str:
    """The precision a weight dtype's matmuls run at: its own where the catalog has a rate for it, else
    the next wider format the device computes in (weight-only int8/fp4 quantisation dequantises to fp8
    or bf16); `dtype` itself when none is listed (peak_flops then names what the catalog has)."""
    for key in {"int8": ("int8", "fp8", "bf16"), "fp4": ("fp4", "fp8", "bf16"), "fp8": ("fp8", "bf16"),
                "fp32": ("fp32", "tf32", "bf16"), "tf32": ("tf32", "bf16")}.get(dtype, (dtype, "bf16")):
        if key in acc.peak_tflops_dense or (key == "fp16" and "bf16" in acc.peak_tflops_dense):
            return key
    return dtype


def compute_peak_flops(acc: Accelerator, dtype: str) -> float:
    """Dense peak for a weight dtype's matmuls (`compute_peak_dtype`)."""
    return acc.peak_flops(compute_peak_dtype(acc, dtype))  # raises CatalogError naming what the catalog has


def weights_read(model: ModelSpec, batch):
    """Parameters a decode step reads: every dense weight, and of each MoE layer's routed experts the
    share some token of the batch picks, 1 - (1 - k/E)^batch (uniform routing), so from top-k at batch
    1 to all experts at large batch."""
    b = np.asarray(batch, dtype=float)
    if not model.is_moe:
        return model.params_active() + 0.0 * b
    routed = model.moe_layers * model.experts * model._mlp_params(model.expert_ffn_dim)
    share = 1.0 - (1.0 - model.experts_per_token / model.experts) ** b
    return model.params_total() - routed + routed * share


def tp_allreduce_s(acc: Accelerator, devices: int, size_bytes, params: PerfParams = DEFAULT_PERF):
    """One small all-reduce over a TP group of at most a node (`tp_reach`; module docstring): NCCL's
    LL ring latency, a hop inside the scale-up domain at the NVLink figure and a hop from one domain
    to the next at the PCI one, plus the bandwidth term (collectives.all_reduce_bandwidth_s)."""
    if devices <= 1:
        return 0.0 * np.asarray(size_bytes, dtype=float)
    if devices > tp_reach(acc):
        raise ScenarioError(f"serving.tp: {devices} devices per replica exceed {acc.id}'s reach for tensor "
                            f"parallelism ({tp_reach(acc)} devices: its scale-up domain or node)")
    net = Network.of(acc, params)
    _, outer = group_layout(net, devices, 1)
    hops = (devices - outer) * NCCL_LL_NVLINK_HOP_S + (outer - 1) * NCCL_LL_PCI_HOP_S
    return NCCL_LL_BASE_S + 2 * hops + all_reduce_bandwidth_s(net, devices, np.asarray(size_bytes, dtype=float))


@dataclass(frozen=True)
class DecodeStep:
    """One decode step (one new token for each of `batch` sequences), per device of the TP group.
    Array fields when `batch` was an array."""

    batch: np.ndarray | int
    context_len: int
    devices: int
    weight_bytes_per_device: float
    kv_bytes_per_device: np.ndarray | float
    flops_per_device: np.ndarray | float
    memory_time_s: np.ndarray | float
    compute_time_s: np.ndarray | float
    comm_time_s: np.ndarray | float
    overhead_time_s: float
    hbm_gb: float

    @property
    def time_s(self):
        return np.maximum(self.memory_time_s, self.compute_time_s) + self.comm_time_s + self.overhead_time_s

    @property
    def memory_bound(self):
        return self.memory_time_s >= self.compute_time_s

    @property
    def tokens_per_s(self):
        """Tokens/s of the whole group (all sequences)."""
        return self.batch / self.time_s

    @property
    def tokens_per_s_per_seq(self):
        return 1.0 / self.time_s

    @property
    def weights_gb(self) -> float:
        return self.weight_bytes_per_device / 1e9

    @property
    def kv_cache_gb(self):
        return self.kv_bytes_per_device / 1e9

    @property
    def achieved_tflops_per_device(self):
        return self.flops_per_device / self.time_s / 1e12


def decode_step(model: ModelSpec, acc: Accelerator, devices: int, batch, context_len: int,
                params: PerfParams = DEFAULT_PERF, dtype: str = "bf16", kv_dtype: str = "bf16",
                layer_overhead_s: float = DECODE_LAYER_OVERHEAD_S, check_memory: bool = True) -> DecodeStep:
    """Time of one decode step (module docstring for the formulas); `batch` may be an array.

    Weights read: B_w x weights_read / devices (MoE: the experts the batch's tokens pick); resident:
    B_w x params_total / devices. KV: kv_cache_bytes / min(devices, kv_heads). FLOPs: batch x (2 N_matmul_active +
    4 L d_attn context_len) / devices, i.e. the forward third of flops.py's convention.
    Raises InfeasiblePlanError when weights + KV cache exceed HBM per device (no other overhead).
    """
    b = np.asarray(batch)
    if devices <= 0 or np.any(b <= 0) or context_len <= 0:
        raise ScenarioError(f"decode: devices, batch and context_len must be positive "
                            f"(got {devices}, {batch}, {context_len})")
    resident_b = dtype_bytes(dtype) * model.params_total() / devices  # every expert stays in HBM
    weight_b = dtype_bytes(dtype) * weights_read(model, b) / devices
    kv_b = kv_cache_bytes(model, context_len, b, dtype_bytes(kv_dtype, "inference.kv_dtype")) / kv_shards(model, devices)
    hbm_gb = capacity_gb(acc)
    need_gb = (resident_b + np.max(kv_b)) / 1e9
    if check_memory and need_gb > hbm_gb:
        raise InfeasiblePlanError(
            f"decode: {model.name} needs {need_gb:.1f} GB per device (weights {resident_b / 1e9:.1f} + KV cache "
            f"{np.max(kv_b) / 1e9:.1f}) on {devices} x {acc.id} with {hbm_gb:.1f} GB: over by {need_gb - hbm_gb:.1f} GB"
        )
    flops_dev = b * (2.0 * model.matmul_params_active() + 4.0 * model.layers * model.attn_width * context_len) / devices
    mem_s = (weight_b + kv_b) / (acc.memory.hbm_tb_per_s.value * 1e12 * params.mem_bw_eff)
    comp_s = flops_dev / (compute_peak_flops(acc, dtype) * params.kernel_ceiling)
    comm_s = 2 * model.layers * tp_allreduce_s(acc, devices, b * model.d_model * 2.0, params)
    out = DecodeStep(batch, context_len, devices, weight_b, kv_b, flops_dev, mem_s, comp_s, comm_s,
                     model.layers * layer_overhead_s, hbm_gb)
    return out


def prefill_flops(model: ModelSpec, prompt_tokens: int) -> float:
    """FLOPs of one prompt's forward pass: P x (2 N_matmul_active + 4 L d_attn P) (forward third of
    flops.py's convention, causal mask not halved)."""
    return prompt_tokens * (2.0 * model.matmul_params_active() + 4.0 * model.layers * model.attn_width * prompt_tokens)


def prefill_time_s(model: ModelSpec, acc: Accelerator, devices: int, prompt_tokens: int, batch: int = 1,
                   params: PerfParams = DEFAULT_PERF, dtype: str = "bf16",
                   layer_overhead_s: float = DECODE_LAYER_OVERHEAD_S) -> float:
    """Time to process `batch` prompts of `prompt_tokens`: compute-bound for any real prompt.

    time = max(batch x prefill_flops / devices / (peak x gemm_kernel_max), weight bytes / effective
    HBM bandwidth) + 2 L TP all-reduces of batch x P x d_model activations + L x layer overhead.
    """
    if devices <= 0 or batch <= 0 or prompt_tokens <= 0:
        raise ScenarioError("prefill: devices, batch and prompt_tokens must be positive")
    flops = batch * prefill_flops(model, prompt_tokens) / devices
    weight_b = dtype_bytes(dtype) * model.params_active() / devices
    comm = 2 * model.layers * tp_allreduce_s(acc, devices, batch * prompt_tokens * model.d_model * 2.0, params)
    return float(max(flops / (compute_peak_flops(acc, dtype) * params.kernel_ceiling),
                     weight_b / (acc.memory.hbm_tb_per_s.value * 1e12 * params.mem_bw_eff))
                 + comm + model.layers * layer_overhead_s)
