"""The sections of a scenario file (docs/design.md section 4): one strict pydantic model per TOML table.

Every field carries its one-line meaning as `Field(description=...)`: docs/scenario-keys.md is
generated from these (`python -m simulator.reference_docs`), and a test fails on a field without
one. `simulator.scenario` puts the sections together as `Scenario` and re-exports them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.errors import ScenarioError
from simulator.execution.inference import (
    DEFAULT_MAX_BATCH,
    DEFAULT_PREFILL_CHUNK_TOKENS,
    DTYPE_BYTES,
)
from simulator.footprint import reliability
from simulator.footprint.uncertainty import Spreads
from simulator.model.finetune import ALL_TARGETS, ATTN_TARGETS, Tuning, tuning_for
from simulator.model.shapes import ModelSpec, get_preset
from simulator.system.perf_params import check_overrides

Precision = Literal["bf16", "fp8", "fp4", "fp16", "tf32"]

# Upper bounds of the inputs (README "Limits"): far beyond any run built or planned today, low enough
# that no input makes the search, the Monte Carlo or an integer conversion run away.
MAX_DEVICES = 10_000_000  # accelerators in one cluster (the largest announced today: ~10^6)
MAX_COUNT = 10_000_000  # shape counts: d_model, ffn_dim, vocab, heads, experts, parallel degrees
MAX_LAYERS = 100_000
MAX_SEQ_LEN = 100_000_000  # tokens per sequence (the longest contexts trained today: ~10^7)
MAX_TOKENS = 1e18  # tokens per run (frontier runs today: ~4e13)
MAX_HOURS = 1e12  # device-hours
MAX_SAMPLES = 1_000_000  # Monte Carlo draws (about 130 MB of arrays)
MIN_SAMPLES = 100  # fewer draws give no P10/P90 worth quoting
DTYPES = ", ".join(DTYPE_BYTES)
SPREADS = Spreads()


def _pos_int(description: str) -> Any:
    """An optional positive count up to MAX_COUNT (unset: chosen by the simulator)."""
    return Field(default=None, gt=0, le=MAX_COUNT, description=description)


def _count(description: str, le: int = MAX_COUNT) -> Any:
    """An optional count that may be 0, up to `le`."""
    return Field(default=None, ge=0, le=le, description=description)


class _Section(BaseModel):
    # strict: `true` is not a device count and "64" is not a number; no inf/nan anywhere
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ModelSection(_Section):
    """Either `preset`, `params` alone (-> ModelSpec.from_params), or the full shape."""

    preset: str | None = Field(default=None, description=(
        "a preset by name (simulator/model/shapes.py: gpt3-175b, llama3-70b, mixtral-8x7b, deepseek-v3, ...); "
        "shape keys given as well override the preset's"))
    params: float | None = Field(default=None, gt=0, le=1e16, description=(
        "total parameters: alone, the closest Llama-style shape is built (the assumptions say which); "
        "not used with a preset or a shape"))
    layers: int | None = Field(default=None, gt=0, le=MAX_LAYERS, description="transformer layers")
    d_model: int | None = _pos_int("hidden size (model width)")
    heads: int | None = _pos_int("attention (query) heads")
    kv_heads: int | None = _pos_int("key/value heads (grouped-query attention); default: heads")
    ffn_dim: int | None = _pos_int("MLP inner dimension of a dense layer")
    vocab: int | None = _pos_int("vocabulary size (tokens)")
    head_dim: int | None = _count("dimension per attention head; 0 or unset: d_model / heads")
    gated_mlp: bool | None = Field(default=None, description=(
        "gated MLP (SwiGLU: three matrices) rather than two matrices; default true"))
    tied_embeddings: bool | None = Field(default=None, description=(
        "the output projection shares the input embedding's weights; default false"))
    experts: int | None = _count("routed experts per MoE layer (0: a dense model)")
    experts_per_token: int | None = _count("routed experts each token goes to (top-k)")
    shared_experts: int | None = _count("experts every token goes to, besides the routed ones (DeepSeek-style)")
    expert_ffn_dim: int | None = _count("MLP inner dimension of one expert")
    moe_layers: int | None = _count("how many layers are MoE layers (the last ones); the rest are dense",
                                   le=MAX_LAYERS)
    expert_groups: int | None = _count("node-limited routing: equal groups the experts are divided into (0: none)")
    expert_groups_per_token: int | None = _count("node-limited routing: groups a token's experts may lie in")
    seq_len: int | None = Field(default=None, gt=0, le=MAX_SEQ_LEN, description=(
        "training sequence length (tokens); default: the preset's, 2048 for a shape, 4096 from params"))

    def _shape(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude={"preset", "params", "seq_len"}).items() if v is not None}

    def from_params(self) -> bool:
        """Whether the shape is built from `params` alone (ModelSpec.from_params)."""
        return self.preset is None and not self._shape() and self.params is not None

    def spec(self) -> ModelSpec:
        """Resolve to a `ModelSpec` (preset, then shape fields override it; or from params)."""
        shape = self._shape()
        if self.preset is not None:
            base = get_preset(self.preset)
            spec = ModelSpec(**{**base.__dict__, **shape}) if shape else base
        elif shape:
            missing = [f for f in ("layers", "d_model", "heads", "ffn_dim", "vocab") if f not in shape]
            if missing:
                raise ScenarioError(
                    f"model: a custom shape needs {', '.join('model.' + m for m in missing)} "
                    "(or give model.preset, or model.params alone)"
                )
            shape.setdefault("kv_heads", shape["heads"])
            name = f"custom-{shape['layers']}x{shape['d_model']}"
            spec = ModelSpec(name=name, seq_len=self.seq_len or 2048, **shape)
        elif self.params is not None:
            spec = ModelSpec.from_params(self.params, seq_len=self.seq_len or 4096)
        else:
            raise ScenarioError("model: give model.preset, model.params, or the shape (layers, d_model, heads, ...)")
        return spec.with_seq_len(self.seq_len) if self.seq_len else spec


class TrainingSection(_Section):
    tokens: float | None = Field(default=None, gt=0, le=MAX_TOKENS, description=(
        "tokens to train on; required, except with [rlhf] (there they follow from the prompts)"))
    global_batch_tokens: float | None = Field(default=None, gt=0, le=MAX_TOKENS, description=(
        "tokens per optimizer step, rounded to whole sequences; default: 4M (Llama 2's), noted in the assumptions"))
    precision: Precision = Field(default="bf16", description=(
        "number format of the matmuls: sets the device's peak FLOP/s"))
    device_hours: float | None = Field(default=None, gt=0, le=MAX_HOURS, description=(
        "the run's reported device-hours: replaces the time model; energy, CO2e and cost follow from them"))
    moe_capacity_factor: float | None = Field(default=None, gt=0, le=1000, description=(
        "MoE token dropping: each expert takes at most this x its mean share of tokens and its input is padded "
        "to it (Megatron-Core --moe-expert-capacity-factor with padding, MaxText capacity_factor); unset: dropless"))


class ClusterSection(_Section):
    accelerator: str = Field(min_length=1, max_length=200, description=(
        "catalog id or alias of the accelerator, e.g. nvidia-h100-sxm-80gb or h100 (`trainsim catalog list`)"))
    devices: int = Field(gt=0, le=MAX_DEVICES, description="accelerators in the cluster, all used by the run")


class ParallelismSection(_Section):
    """Keys left out are chosen by the plan search (`trainsim search` shows every plan)."""

    tp: int | None = _pos_int("tensor-parallel degree (each layer's matrices split over tp devices)")
    pp: int | None = _pos_int("pipeline-parallel stages")
    cp: int | None = _pos_int("context-parallel degree (each sequence split over cp devices)")
    ep: int | None = _pos_int("expert-parallel degree (MoE experts spread over ep devices)")
    dp: int | None = _pos_int("data-parallel degree; default: devices / (tp x pp x cp)")
    microbatch: int | None = _pos_int("sequences per micro-batch")
    zero: int | None = Field(default=None, ge=0, le=3, description=(
        "ZeRO stage: optimizer states (1), gradients (2) and weights (3, FSDP; not with pp > 1) sharded over DP"))
    recompute: Literal["none", "selective", "mlp", "full", "offload"] | None = Field(default=None, description=(
        "activation recomputation: none, selective (the attention core), mlp (the attention core and the MLP), "
        "full (the whole forward) or offload (MaxText: layer input, Q, K, V in host memory, the rest "
        "recomputed; never chosen by the plan search)"))
    interleave: int | None = _pos_int("virtual pipeline stages per device (interleaved 1F1B schedule)")
    sequence_parallel: bool | None = Field(default=None, description=(
        "Megatron sequence parallelism (activations outside the matmuls split over TP); default: true with tp > 1"))
    flash_attention: bool = Field(default=True, description=(
        "fused (Flash) attention; false: unfused attention, as pre-2022 Megatron-LM"))
    overlap_comm: bool = Field(default=True, description=(
        "TP and DP communication overlapped with compute; false: no overlap (Megatron-LM 2021, DeepSpeed 2021)"))
    cp_comm: Literal["p2p", "all_gather"] = Field(default="p2p", description=(
        "context parallelism's K/V exchange: p2p ring hidden behind attention (Megatron-LM / Transformer Engine "
        "default), or all_gather of K and V, exposed (Llama 3 sec. 3.3.2)"))
    moe_dispatcher: Literal["alltoall", "deepep"] = Field(default="alltoall", description=(
        "MoE token exchange: alltoall (Megatron-Core's alltoall dispatcher: every token-expert pair sent "
        "separately, bf16) or deepep (DeepSeek's DeepEP, Megatron-Core's flex dispatcher: once per destination "
        "node, then NVLink; FP8 dispatch with fp8 training)"))
    stack: Literal["megatron", "fsdp", "maxtext"] | None = Field(default=None, description=(
        "software stack whose fitted parameters the catalog's [perf] table gives; unset: the table's reference "
        "stack (Megatron-Core/NeMo on GPUs, MaxText on TPUs); fsdp: PyTorch FSDP stacks such as llm-foundry "
        "([perf.stacks.fsdp] where the public tables measured one)"))
    objective: Literal["time", "cost", "energy", "memory"] = Field(default="time", description=(
        "what the plan search minimises"))


class FinetuneSection(_Section):
    """What the run trains (simulator/model/finetune.py): every weight ("full": pre-training or full
    fine-tuning) or LoRA adapters of `lora_rank` on `lora_targets` (q k v o gate up down, or "all")
    over a frozen base stored at `base_weight_bytes` per parameter (2 = bf16, 0.5 = 4-bit QLoRA)."""

    method: Literal["full", "lora"] = Field(default="full", description=(
        "full: every weight gets gradients; lora: adapters on a frozen base (Hu et al. 2021)"))
    lora_rank: int = Field(default=16, gt=0, le=MAX_COUNT, description="rank of the LoRA adapters")
    lora_targets: list[str] | Literal["all"] = Field(default=list(ATTN_TARGETS), description=(
        f"matrices that get adapters: any of {' '.join(ALL_TARGETS)}, or \"all\""))
    base_weight_bytes: float = Field(default=2.0, gt=0, le=8.0, description=(
        "bytes per frozen base weight under LoRA (2 = bf16, 0.5 = 4-bit QLoRA)"))

    def tuning(self, model: ModelSpec) -> Tuning:
        targets = self.lora_targets if self.lora_targets == "all" else tuple(self.lora_targets)
        return tuning_for(model, self.method, self.lora_rank, targets, self.base_weight_bytes)


class ServingSection(_Section):
    """Inference serving for a period (simulator/workloads/serving.py). Traffic: `requests_per_s` (each of
    `prompt_tokens` in, `output_tokens` out) or `output_tokens_per_day`; none = full load."""

    prompt_tokens: int = Field(default=1024, gt=0, le=MAX_SEQ_LEN, description="prompt (input) tokens per request")
    output_tokens: int = Field(default=256, gt=0, le=MAX_SEQ_LEN, description="generated tokens per request")
    requests_per_s: float | None = Field(default=None, gt=0, le=1e9, description=(
        "mean requests per second (or output_tokens_per_day, not both; neither: the fleet at full load)"))
    output_tokens_per_day: float | None = Field(default=None, gt=0, le=MAX_TOKENS, description=(
        "mean output tokens per day (or requests_per_s, not both)"))
    peak_to_average: float = Field(default=1.0, ge=1.0, le=1000.0, description=(
        "peak over mean traffic: the fleet (cluster.devices) must serve the peak"))
    months: float = Field(default=1.0, gt=0, le=1200.0, description="length of the period (months of 730.5 h)")
    tp: int | None = _pos_int("devices per replica; default: the TP group with the most tokens/s per device")
    batch: int | None = _pos_int("sequences in flight per replica; default: searched up to max_batch")
    max_batch: int = Field(default=DEFAULT_MAX_BATCH, gt=0, le=MAX_COUNT, description=(
        "the serving engine's limit on sequences in flight per replica"))
    prefill_chunk_tokens: int = Field(default=DEFAULT_PREFILL_CHUNK_TOKENS, gt=0, le=MAX_SEQ_LEN, description=(
        "prompt tokens per prefill chunk (chunked prefill)"))
    min_tokens_per_s_per_user: float = Field(default=20.0, ge=0, le=1e6, description=(
        "slowest generation one user may see (output tokens/s): the batch search keeps to it"))
    dtype: str = Field(default="bf16", description=f"number format of the served weights: {DTYPES}")
    kv_dtype: str = Field(default="bf16", description=f"number format of the KV cache: {DTYPES}")

    @model_validator(mode="after")
    def _one_traffic(self) -> ServingSection:
        if self.requests_per_s is not None and self.output_tokens_per_day is not None:
            raise ValueError("give requests_per_s or output_tokens_per_day, not both")
        return self

    def traffic_tokens_per_s(self) -> float | None:
        """Mean output tokens per second the traffic asks for (None: no traffic given)."""
        if self.requests_per_s is not None:
            return self.requests_per_s * self.output_tokens
        return self.output_tokens_per_day / 86400.0 if self.output_tokens_per_day is not None else None


class RLHFSection(_Section):
    """Post-training with reinforcement learning or preference optimisation (simulator/workloads/rlhf.py).

    ppo: actor, critic, reward and reference models (Ouyang et al. 2022); grpo: no critic, groups
    of `samples_per_prompt` responses (Shao et al. 2024); dpo: no generation, preference pairs
    (Rafailov et al. 2023; samples_per_prompt = 2: chosen and rejected)."""

    algorithm: Literal["ppo", "grpo", "dpo"] = Field(default="ppo", description="the post-training algorithm")
    prompts: float = Field(gt=0, le=1e12, description="prompts over the whole run")
    prompt_tokens: int = Field(default=256, gt=0, le=MAX_SEQ_LEN, description="tokens per prompt")
    response_tokens: int = Field(default=256, gt=0, le=MAX_SEQ_LEN, description="tokens per generated response")
    samples_per_prompt: int | None = _pos_int("responses per prompt; default: 1 (ppo), 8 (grpo), 2 (dpo)")
    epochs: int = Field(default=1, gt=0, le=10_000, description="optimisation passes over each batch of rollouts")
    reward_model: str | float | None = Field(default=None, description=(
        "the reward model: a preset or a parameter count; default: the policy's shape"))
    critic_model: str | float | None = Field(default=None, description=(
        "the critic (ppo): a preset or a parameter count; default: the reward model"))
    generation_dtype: str = Field(default="bf16", description=f"number format of rollout generation: {DTYPES}")
    generation_batch_per_device: int | None = _pos_int("sequences in flight per device in rollouts; default: as many "
                                                     "as fit")

    def samples(self) -> int:
        return self.samples_per_prompt or {"ppo": 1, "grpo": 8, "dpo": 2}[self.algorithm]


class DatacenterSection(_Section):
    region: str = Field(default="WORLD", description=(
        "grid region: ISO country code (US, FR, SE, ...), WORLD, or a named one such as us-virginia or "
        "gcp-europe-west4 (`trainsim catalog list --kind regions`)"))
    carbon_intensity_kg_per_kwh: float | None = Field(default=None, ge=0, le=5.0, description=(
        "grid intensity (kg CO2e per kWh; coal: ~1); default: the region's"))
    pue: float | None = Field(default=None, ge=1.0, le=10.0, description=(
        "power usage effectiveness (facility energy / IT energy); default: the region's"))
    wue_l_per_kwh: float | None = Field(default=None, ge=0, le=100.0, description=(
        "water usage effectiveness (litres per IT kWh); default: the region's"))
    power_model: Literal["calibrated", "tdp"] = Field(default="calibrated", description=(
        "calibrated: device power from achieved TFLOP/s plus host, network and storage power; tdp: "
        "device-hours x TDP, hosts, network and storage excluded (the common reporting convention)"))
    network_w_per_device: float | None = Field(default=None, ge=0, le=1e5, description=(
        "scale-out network power per device (W: switches and their optics; NICs are in the host power); "
        "default: a fat tree of the catalog's switches for the cluster's size (0 inside one scale-up domain)"))
    storage_pb: float | None = Field(default=None, ge=0, le=1e7, description=(
        "high-speed storage the run keeps powered (PB); default: devices x the catalog's TB per device "
        "(Llama 3's 240 PB for 24,576 GPUs)"))
    storage_w_per_pb: float | None = Field(default=None, ge=0, le=1e6, description=(
        "storage power per PB (W); default: the catalog's (hardware_catalog/infrastructure.toml)"))
    carbon_profile: str | None = Field(default=None, description=(
        "hourly grid-intensity CSV (simulator/footprint/hourly_profile.py) of datacenter.region (its "
        "'# region:' line; another region's is refused): adds co2e_t_hourly"))
    start_utc: str | None = Field(default=None, description=(
        "when the run starts against carbon_profile, ISO 8601; default: the profile's first hour"))


class PricingSection(_Section):
    mode: Literal["cloud", "owned"] = Field(default="cloud", description=(
        "cloud: rented device-hours; owned: purchase price amortised linearly, plus electricity (Epoch AI)"))
    price: Literal["market", "on_demand"] = Field(default="market", description=(
        "which catalog rental price (the other where it is missing)"))
    usd_per_device_hour: float | None = Field(default=None, ge=0, le=1e4, description=(
        "rental USD per device-hour (cloud), replacing the catalog's"))
    electricity_usd_per_kwh: float | None = Field(default=None, ge=0, le=100.0, description=(
        "electricity price (owned); default: the region's"))
    purchase_usd_per_device: float | None = Field(default=None, ge=0, le=1e9, description=(
        "purchase price of one device (owned); default: the catalog's"))
    amortisation_years: float | None = Field(default=None, gt=0, le=100.0, description=(
        "years the purchase is spread over (owned); default: the device's lifetime in the catalog"))


class EfficiencySection(_Section):
    """Where the performance model's parameters come from (the step time always comes from the
    model, or from `training.device_hours`; there is no MFU input)."""

    profile: str | None = Field(default=None, description=(
        "calibration profile TOML (`trainsim calibrate fit`): fitted performance and power parameters"))
    perf: dict[str, float] = Field(default={}, description=(
        "performance-model parameters set by hand (simulator/system/perf_params.py), over the profile's "
        "and the priors, e.g. {flash_attn_eff = 0.35} for FlashAttention-2 on an H100"))

    @model_validator(mode="before")
    @classmethod
    def _no_mfu(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mfu" in data:
            raise ValueError(
                "efficiency.mfu: no longer an input (the step time comes from the performance model); "
                "set the model's parameters with [efficiency] perf = {gemm_eff_max = ..., ...} "
                "(or a calibration profile), or give the run's measured time as training.device_hours")
        return data

    @model_validator(mode="after")
    def _perf_keys(self) -> EfficiencySection:
        check_overrides(self.perf, "efficiency.perf")
        return self


class ReliabilitySection(_Section):
    """Failures and checkpoints: the Young/Daly goodput (simulator/footprint/reliability.py)."""

    failures_per_device_hour: float | None = Field(default=None, ge=0, le=1.0, description=(
        f"interruptions per device-hour; default {reliability.FAILURES_PER_DEVICE_HOUR:.3g} (Llama 3: 419 in "
        "54 days on 16,384 GPUs)"))
    checkpoint_write_s: float | None = Field(default=None, ge=0, le=1e6, description=(
        f"seconds to write a checkpoint; default {reliability.CHECKPOINT_WRITE_S:g}"))
    restart_s: float | None = Field(default=None, ge=0, le=1e6, description=(
        f"seconds from a failure to training again; default {reliability.RESTART_S:g}"))


def _spread(what: str, default: float, kind: str = "log-sigma of") -> Any:
    return Field(default=None, ge=0, le=5.0, description=f"{kind} {what}; default {default:g}")


class UncertaintySection(_Section):
    """Spreads of the uncertain inputs (see simulator.footprint.uncertainty for the defaults and sources)."""

    throughput: float | None = Field(default=None, ge=0, le=5.0, description=(
        "log-sigma of the throughput (step time) multiplier; default: the accelerator's held-out error "
        "in the public tables (0.063 for H100, 0.142 for a part with no rows of its own)"))
    power: float | None = _spread("the device power multiplier", SPREADS.power)
    failure_rate: float | None = _spread("the failure-rate multiplier", SPREADS.failure_rate)
    pue: float | None = _spread("PUE", SPREADS.pue, "absolute standard deviation of")
    carbon_intensity: float | None = _spread("the grid-intensity multiplier", SPREADS.carbon_intensity)
    price: float | None = _spread("the price multiplier", SPREADS.price)
    samples: int = Field(default=0, ge=0, le=MAX_SAMPLES, description=(
        f"Monte Carlo draws: 0 (none) or {MIN_SAMPLES} and more, adding p10/p50/p90 bands to the estimate"))

    @model_validator(mode="after")
    def _enough_samples(self) -> UncertaintySection:
        if 0 < self.samples < MIN_SAMPLES:
            raise ValueError(f"samples: {self.samples} draws give no P10/P90 worth quoting: 0 (no Monte Carlo) "
                             f"or {MIN_SAMPLES}..{MAX_SAMPLES}")
        return self
