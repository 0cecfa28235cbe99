"""Workloads other than pre-training: fine-tuning (full, LoRA) and inference (prefill, decode).

Not wired into `estimate()` yet. Units are in the names; GB = 1e9 bytes, as in memory.py.

Fine-tuning
-----------
Full fine-tuning is pre-training on fewer tokens: the project's model FLOPs per token
(flops.py, PaLM App. B) and memory.py's 18 B per parameter.

LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", sec. 4.1) freezes the
base weights W and trains W + B A with A: r x d_in, B: d_out x r on chosen matrices. Per token:
    base matmuls: forward 2N + activation gradient 2N, no weight gradient (-2N)  -> 4 N_matmul
    adapters: trained like any weight                                          -> 6 N_lora
    attention core (QK^T, AV): no weights, full forward + backward             -> 12 L d_attn T
so  FLOPs/token = 4 N_matmul_active + 6 N_lora + 12 L d_attn T.

Inference (roofline, Williams et al. 2009, CACM 52(4))
------------------------------------------------------
One decode step of `batch` sequences on a tensor-parallel group of `devices`:
    bytes/device = (B_w * params_active + KV bytes) / devices
    FLOPs/device = batch * (2 N_matmul_active + 4 L d_attn context_len) / devices
    time_s       = max(bytes / (HBM B/s * mem_bw_eff), FLOPs / (peak * gemm_eff_max))
At small batch the bytes term wins: decode is memory-bandwidth-bound (Austin et al. 2025,
"How to Scale Your Model" (the JAX scaling book), "All about Transformer Inference").
Not modelled: TP all-reduces (2 per layer), kernel-launch latency, the activations' own traffic;
the result is an upper bound on tokens/s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hardware_catalog.schema import Accelerator
from simulator.efficiency import Efficiency
from simulator.errors import InfeasiblePlanError, ScenarioError
from simulator.flops import attention_flops_per_token, model_flops_per_token
from simulator.memory import BYTES_GRAD, BYTES_OPTIMIZER, BYTES_WEIGHT
from simulator.models import ModelSpec
from simulator.perf_params import PerfParams

Method = Literal["full", "lora"]
ATTN_TARGETS = ("q", "k", "v", "o")
ALL_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
# Bytes per element of weights / KV cache for an inference dtype.
DTYPE_BYTES = {"fp32": 4.0, "tf32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5}
DEFAULT_PERF = PerfParams()
TRAINABLE_BYTES = BYTES_WEIGHT + BYTES_GRAD + BYTES_OPTIMIZER  # 18 B: memory.py's mixed-precision Adam


# --- fine-tuning ---------------------------------------------------------------------------------

def _targets(targets: tuple[str, ...] | str) -> tuple[str, ...]:
    if targets == "all":
        return ALL_TARGETS
    if isinstance(targets, str):
        targets = (targets,)
    bad = [t for t in targets if t not in ALL_TARGETS]
    if bad:
        raise ScenarioError(f"lora_targets: unknown target '{bad[0]}' (known: {', '.join(ALL_TARGETS)} or 'all')")
    return tuple(targets)


def lora_matrix_shapes(model: ModelSpec) -> dict[str, tuple[int, int]]:
    """(d_in, d_out) of each LoRA-targetable matrix in one layer (GQA: k and v are d -> K hd)."""
    if model.is_mla:
        raise ScenarioError(f"lora: MLA attention ({model.name}) is not supported")
    d, q_width, kv_width, f = model.d_model, model.heads * model.hd, model.kv_heads * model.hd, model.ffn_dim
    shapes = {"q": (d, q_width), "k": (d, kv_width), "v": (d, kv_width), "o": (q_width, d),
              "up": (d, f), "down": (f, d)}
    if model.gated_mlp:
        shapes["gate"] = (d, f)
    return shapes


def lora_trainable_params(model: ModelSpec, rank: int = 16,
                          targets: tuple[str, ...] | str = ATTN_TARGETS) -> int:
    """N_lora = layers * sum over targets of r * (d_in + d_out) (A is r x d_in, B is d_out x r).

    MLP targets on an MoE model are rejected (which experts get adapters is a design choice).
    A "gate" target on a non-gated MLP is skipped (there is no such matrix).
    """
    if rank <= 0:
        raise ScenarioError(f"lora_rank: expected a positive integer, got {rank}")
    names = _targets(targets)
    if model.is_moe and any(t in ("gate", "up", "down") for t in names):
        raise ScenarioError(f"lora_targets: MLP targets on an MoE model ({model.name}) are not supported")
    shapes = lora_matrix_shapes(model)
    per_layer = sum(rank * (shapes[t][0] + shapes[t][1]) for t in names if t in shapes)
    return model.layers * per_layer


def finetune_flops_per_token(model: ModelSpec, method: Method = "full", lora_rank: int = 16,
                             lora_targets: tuple[str, ...] | str = ATTN_TARGETS) -> float:
    """Model FLOPs per trained token.

    full: 6 N_matmul_active + 12 L d_attn T (flops.model_flops_per_token).
    lora: 4 N_matmul_active + 6 N_lora + 12 L d_attn T (module docstring; Hu et al. 2021).
    """
    if method == "full":
        return model_flops_per_token(model)
    if method == "lora":
        n_lora = lora_trainable_params(model, lora_rank, lora_targets)
        return 4.0 * model.matmul_params_active() + 6.0 * n_lora + attention_flops_per_token(model)
    raise ScenarioError(f"finetune.method: expected 'full' or 'lora', got '{method}'")


def finetune_memory_gb(model: ModelSpec, method: Method = "full", lora_rank: int = 16,
                       lora_targets: tuple[str, ...] | str = ATTN_TARGETS, bytes_weight: float = 2.0) -> float:
    """Static memory (weights + gradients + optimizer) on one device, no ZeRO, in GB.

    full: 18 B x params_total (memory.py: bf16 weight 2 + fp32 grad 4 + fp32 master, m, v 12).
    lora: bytes_weight x params_total frozen base (2 = bf16; 0.5 for 4-bit QLoRA, Dettmers et al.
    2023) + 18 B x N_lora. Activations, buffers and the CUDA overhead are excluded.
    """
    if method == "full":
        return TRAINABLE_BYTES * model.params_total() / 1e9
    if method == "lora":
        n_lora = lora_trainable_params(model, lora_rank, lora_targets)
        return (bytes_weight * model.params_total() + TRAINABLE_BYTES * n_lora) / 1e9
    raise ScenarioError(f"finetune.method: expected 'full' or 'lora', got '{method}'")


# --- inference -----------------------------------------------------------------------------------

def _dtype_bytes(dtype: str) -> float:
    if dtype not in DTYPE_BYTES:
        raise ScenarioError(f"inference.dtype: unknown '{dtype}' (known: {', '.join(DTYPE_BYTES)})")
    return DTYPE_BYTES[dtype]


def kv_cache_bytes(model: ModelSpec, context_len: int, batch: int, bytes_per_elem: float = 2.0) -> float:
    """Whole KV cache: 2 (K and V) x layers x kv_heads x head_dim x context_len x batch x bytes.

    MLA caches one latent of kv_lora_rank + rope_head_dim per token per layer (DeepSeek-V2 sec. 2.1.2).
    """
    per_token_layer = (model.kv_lora_rank + model.rope_head_dim) if model.is_mla else 2 * model.kv_heads * model.hd
    return per_token_layer * model.layers * context_len * batch * bytes_per_elem


def _kv_shards(model: ModelSpec, devices: int) -> int:
    """Devices the KV cache is split over: TP splits KV heads, so beyond kv_heads they are replicated;
    an MLA latent is not split by heads and is replicated on every TP rank."""
    return 1 if model.is_mla else min(devices, model.kv_heads)


@dataclass(frozen=True)
class DecodeStep:
    """One decode step (one new token for each of `batch` sequences), per device of the TP group."""

    batch: int
    context_len: int
    devices: int
    weight_bytes_per_device: float
    kv_bytes_per_device: float
    flops_per_device: float
    memory_time_s: float
    compute_time_s: float
    hbm_gb: float

    @property
    def time_s(self) -> float:
        return max(self.memory_time_s, self.compute_time_s)

    @property
    def memory_bound(self) -> bool:
        return self.memory_time_s >= self.compute_time_s

    @property
    def tokens_per_s(self) -> float:
        """Tokens/s of the whole group (all sequences)."""
        return self.batch / self.time_s

    @property
    def tokens_per_s_per_seq(self) -> float:
        return 1.0 / self.time_s

    @property
    def weights_gb(self) -> float:
        return self.weight_bytes_per_device / 1e9

    @property
    def kv_cache_gb(self) -> float:
        return self.kv_bytes_per_device / 1e9

    @property
    def achieved_tflops_per_device(self) -> float:
        return self.flops_per_device / self.time_s / 1e12


def decode_step(model: ModelSpec, acc: Accelerator, devices: int, batch: int, context_len: int,
                params: PerfParams = DEFAULT_PERF, dtype: str = "bf16", kv_dtype: str = "bf16") -> DecodeStep:
    """Roofline time of one decode step (module docstring for the formulas).

    Weights: B_w x params_active / devices (MoE: the top-k experts of one token, a lower bound at
    batch > 1). KV: kv_cache_bytes / min(devices, kv_heads). FLOPs: batch x (2 N_matmul_active +
    4 L d_attn context_len) / devices, i.e. the forward third of flops.py's convention.
    Raises InfeasiblePlanError when weights + KV cache exceed HBM per device (no other overhead).
    """
    if devices <= 0 or batch <= 0 or context_len <= 0:
        raise ScenarioError(f"decode: devices, batch and context_len must be positive "
                            f"(got {devices}, {batch}, {context_len})")
    weight_b = _dtype_bytes(dtype) * model.params_active() / devices
    kv_b = kv_cache_bytes(model, context_len, batch, _dtype_bytes(kv_dtype)) / _kv_shards(model, devices)
    hbm_gb = acc.memory.hbm_gb.value
    need_gb = (weight_b + kv_b) / 1e9
    if need_gb > hbm_gb:
        raise InfeasiblePlanError(
            f"decode: {model.name} needs {need_gb:.1f} GB per device (weights {weight_b / 1e9:.1f} + KV cache "
            f"{kv_b / 1e9:.1f}) on {devices} x {acc.id} with {hbm_gb:.0f} GB: over by {need_gb - hbm_gb:.1f} GB"
        )
    flops = batch * (2.0 * model.matmul_params_active() + 4.0 * model.layers * model.attn_width * context_len)
    flops_dev = flops / devices
    mem_s = (weight_b + kv_b) / (acc.memory.hbm_tb_per_s.value * 1e12 * params.mem_bw_eff)
    comp_s = flops_dev / (acc.peak_flops(dtype) * params.gemm_eff_max)
    return DecodeStep(batch, context_len, devices, weight_b, kv_b, flops_dev, mem_s, comp_s, hbm_gb)


def prefill_time_s(model: ModelSpec, acc: Accelerator, devices: int, prompt_tokens: int, batch: int = 1,
                   params: PerfParams = DEFAULT_PERF, dtype: str = "bf16") -> float:
    """Time to process `batch` prompts of `prompt_tokens`: compute-bound for any real prompt.

    FLOPs = batch x prompt_tokens x (2 N_matmul_active + 4 L d_attn prompt_tokens) / devices (forward
    of flops.py's convention, causal mask not halved); time = max(FLOPs / (peak x gemm_eff_max),
    weight bytes / effective HBM bandwidth).
    """
    if devices <= 0 or batch <= 0 or prompt_tokens <= 0:
        raise ScenarioError("prefill: devices, batch and prompt_tokens must be positive")
    flops = batch * prompt_tokens * (2.0 * model.matmul_params_active()
                                     + 4.0 * model.layers * model.attn_width * prompt_tokens) / devices
    weight_b = _dtype_bytes(dtype) * model.params_active() / devices
    return max(flops / (acc.peak_flops(dtype) * params.gemm_eff_max),
               weight_b / (acc.memory.hbm_tb_per_s.value * 1e12 * params.mem_bw_eff))


@dataclass(frozen=True)
class ServingCost:
    """Per million generated tokens, steady-state decode."""

    usd_per_mtok: float
    kwh_per_mtok: float  # facility energy (IT x PUE)
    kgco2e_per_mtok: float  # location-based operational emissions
    device_power_w: float


def serving_cost(decode: DecodeStep, acc: Accelerator, usd_per_device_hour: float, devices: int,
                 eff: Efficiency, pue: float, carbon_intensity_kg_per_kwh: float) -> ServingCost:
    """Cost, energy and carbon of 1e6 decoded tokens.

    hours = 1e6 / tokens_per_s / 3600; USD = devices x usd_per_device_hour x hours;
    kWh = devices x (P_device + host_w) x hours / 1e3 x PUE, P_device = eff.device_power_w(achieved
    TFLOP/s) (energy roofline, FLOP term only; HBM traffic power not modelled);
    kgCO2e = kWh x carbon intensity.
    """
    if devices != decode.devices:
        raise ScenarioError(f"serving_cost: devices ({devices}) differs from the decode step's ({decode.devices})")
    hours = 1e6 / decode.tokens_per_s / 3600.0
    power_w = eff.device_power_w(decode.achieved_tflops_per_device)
    host_w = acc.node.host_power_w_per_device.value
    kwh = devices * (power_w + host_w) * hours / 1e3 * pue
    return ServingCost(devices * usd_per_device_hour * hours, kwh, kwh * carbon_intensity_kg_per_kwh, power_w)
