"""The scenario file (DESIGN section 4): a strict pydantic schema, TOML loading and `--set` overrides.

Only `[model]`, `[training]` and `[cluster]` are required. Unknown keys are errors, so a typo never
becomes a silently ignored setting. Errors name the file and the dotted field.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hardware_catalog.files import field_path, loads_toml, read_user_text
from simulator.errors import ScenarioError
from simulator.model.finetune import ATTN_TARGETS, Tuning, tuning_for
from simulator.execution.inference import DEFAULT_MAX_BATCH, DEFAULT_PREFILL_CHUNK_TOKENS
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
PosInt = Field(default=None, gt=0, le=MAX_COUNT)


class _Section(BaseModel):
    # strict: `true` is not a device count and "64" is not a number; no inf/nan anywhere
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ModelSection(_Section):
    """Either `preset`, `params` alone (-> ModelSpec.from_params), or the full shape."""

    preset: str | None = None
    params: float | None = Field(default=None, gt=0, le=1e16)
    layers: int | None = Field(default=None, gt=0, le=MAX_LAYERS)
    d_model: int | None = PosInt
    heads: int | None = PosInt
    kv_heads: int | None = PosInt
    ffn_dim: int | None = PosInt
    vocab: int | None = PosInt
    head_dim: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    gated_mlp: bool | None = None
    tied_embeddings: bool | None = None
    experts: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    experts_per_token: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    shared_experts: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    expert_ffn_dim: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    moe_layers: int | None = Field(default=None, ge=0, le=MAX_LAYERS)
    seq_len: int | None = Field(default=None, gt=0, le=MAX_SEQ_LEN)

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
    tokens: float | None = Field(default=None, gt=0, le=MAX_TOKENS)  # required, except with [rlhf]
    global_batch_tokens: float | None = Field(default=None, gt=0, le=MAX_TOKENS)
    precision: Precision = "bf16"
    device_hours: float | None = Field(default=None, gt=0, le=MAX_HOURS)


class ClusterSection(_Section):
    accelerator: str = Field(min_length=1, max_length=200)
    devices: int = Field(gt=0, le=MAX_DEVICES)


class ParallelismSection(_Section):
    tp: int | None = PosInt
    pp: int | None = PosInt
    cp: int | None = PosInt
    ep: int | None = PosInt
    dp: int | None = PosInt
    microbatch: int | None = PosInt
    zero: int | None = Field(default=None, ge=0, le=3)
    recompute: Literal["none", "selective", "full"] | None = None
    interleave: int | None = PosInt  # virtual pipeline stages per device
    sequence_parallel: bool | None = None  # default true with tp > 1
    flash_attention: bool = True  # false: unfused attention (pre-2022 Megatron-LM)
    overlap_comm: bool = True  # false: no TP/DP comm overlap (Megatron-LM 2021, DeepSpeed 2021)
    # context parallelism's K/V exchange: "p2p" ring, hidden behind attention (Megatron-LM /
    # Transformer Engine default), or "all_gather" of K and V, exposed (Llama 3 sec. 3.3.2)
    cp_comm: Literal["p2p", "all_gather"] = "p2p"
    # the software stack whose fitted parameters the catalog's [perf] table gives: none = the
    # table's reference stack (Megatron-Core/NeMo on GPUs, MaxText on TPUs); "fsdp" = PyTorch FSDP
    # stacks such as llm-foundry ([perf.stacks.fsdp] where the public tables measured one)
    stack: Literal["megatron", "fsdp", "maxtext"] | None = None
    objective: Literal["time", "cost", "energy", "memory"] = "time"  # what the plan search minimises


class FinetuneSection(_Section):
    """What the run trains (simulator/model/finetune.py): every weight ("full": pre-training or full
    fine-tuning) or LoRA adapters of `lora_rank` on `lora_targets` (q k v o gate up down, or "all")
    over a frozen base stored at `base_weight_bytes` per parameter (2 = bf16, 0.5 = 4-bit QLoRA)."""

    method: Literal["full", "lora"] = "full"
    lora_rank: int = Field(default=16, gt=0, le=MAX_COUNT)
    lora_targets: list[str] | Literal["all"] = list(ATTN_TARGETS)
    base_weight_bytes: float = Field(default=2.0, gt=0, le=8.0)

    def tuning(self, model: ModelSpec) -> Tuning:
        targets = self.lora_targets if self.lora_targets == "all" else tuple(self.lora_targets)
        return tuning_for(model, self.method, self.lora_rank, targets, self.base_weight_bytes)


class ServingSection(_Section):
    """Inference serving for a period (simulator/workloads/serving.py). Traffic: `requests_per_s` (each of
    `prompt_tokens` in, `output_tokens` out) or `output_tokens_per_day`; none = full load."""

    prompt_tokens: int = Field(default=1024, gt=0, le=MAX_SEQ_LEN)
    output_tokens: int = Field(default=256, gt=0, le=MAX_SEQ_LEN)
    requests_per_s: float | None = Field(default=None, gt=0, le=1e9)
    output_tokens_per_day: float | None = Field(default=None, gt=0, le=MAX_TOKENS)
    peak_to_average: float = Field(default=1.0, ge=1.0, le=1000.0)  # the fleet must serve the peak
    months: float = Field(default=1.0, gt=0, le=1200.0)
    tp: int | None = PosInt  # devices per replica; default: the TP group with the most tokens/s per device
    batch: int | None = PosInt  # sequences in flight per replica; default: searched up to max_batch
    max_batch: int = Field(default=DEFAULT_MAX_BATCH, gt=0, le=MAX_COUNT)  # engine limit (inference.py)
    prefill_chunk_tokens: int = Field(default=DEFAULT_PREFILL_CHUNK_TOKENS, gt=0, le=MAX_SEQ_LEN)
    min_tokens_per_s_per_user: float = Field(default=20.0, ge=0, le=1e6)
    dtype: str = "bf16"
    kv_dtype: str = "bf16"

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

    algorithm: Literal["ppo", "grpo", "dpo"] = "ppo"
    prompts: float = Field(gt=0, le=1e12)  # prompts over the whole run
    prompt_tokens: int = Field(default=256, gt=0, le=MAX_SEQ_LEN)
    response_tokens: int = Field(default=256, gt=0, le=MAX_SEQ_LEN)
    samples_per_prompt: int | None = PosInt  # default: 1 (ppo), 8 (grpo), 2 (dpo)
    epochs: int = Field(default=1, gt=0, le=10_000)  # optimisation passes over each batch of rollouts
    reward_model: str | float | None = None  # a preset or a parameter count; default: the policy's shape
    critic_model: str | float | None = None  # ppo; default: the reward model
    generation_dtype: str = "bf16"
    generation_batch_per_device: int | None = PosInt  # sequences in flight; default: as many as fit

    def samples(self) -> int:
        return self.samples_per_prompt or {"ppo": 1, "grpo": 8, "dpo": 2}[self.algorithm]


class DatacenterSection(_Section):
    region: str = "WORLD"
    carbon_intensity_kg_per_kwh: float | None = Field(default=None, ge=0, le=5.0)  # coal: ~1
    pue: float | None = Field(default=None, ge=1.0, le=10.0)
    wue_l_per_kwh: float | None = Field(default=None, ge=0, le=100.0)
    power_model: Literal["calibrated", "tdp"] = "calibrated"
    carbon_profile: str | None = None  # hourly grid-intensity CSV (simulator/footprint/carbon_profile.py)
    start_utc: str | None = None  # when the run starts, ISO 8601; default: the profile's first hour


class PricingSection(_Section):
    mode: Literal["cloud", "owned"] = "cloud"
    price: Literal["market", "on_demand"] = "market"
    usd_per_device_hour: float | None = Field(default=None, ge=0, le=1e4)
    electricity_usd_per_kwh: float | None = Field(default=None, ge=0, le=100.0)
    purchase_usd_per_device: float | None = Field(default=None, ge=0, le=1e9)
    amortisation_years: float | None = Field(default=None, gt=0, le=100.0)


class EfficiencySection(_Section):
    """Where the performance model's parameters come from (the step time always comes from the
    model, or from `training.device_hours`; there is no MFU input)."""

    profile: str | None = None
    # performance-model parameters (simulator/system/perf_params.py) set by hand, over the profile's and
    # the priors, e.g. {flash_attn_eff = 0.35} for FlashAttention-2 on an H100
    perf: dict[str, float] = {}

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
    failures_per_device_hour: float | None = Field(default=None, ge=0, le=1.0)
    checkpoint_write_s: float | None = Field(default=None, ge=0, le=1e6)
    restart_s: float | None = Field(default=None, ge=0, le=1e6)


class UncertaintySection(_Section):
    """Spreads of the uncertain inputs (see simulator.footprint.uncertainty for the defaults and sources)."""

    throughput: float | None = Field(default=None, ge=0, le=5.0)  # log-sigma
    power: float | None = Field(default=None, ge=0, le=5.0)
    failure_rate: float | None = Field(default=None, ge=0, le=5.0)
    pue: float | None = Field(default=None, ge=0, le=5.0)  # absolute standard deviation
    carbon_intensity: float | None = Field(default=None, ge=0, le=5.0)
    price: float | None = Field(default=None, ge=0, le=5.0)
    samples: int = Field(default=0, ge=0, le=MAX_SAMPLES)  # > 0: Monte Carlo P10/P50/P90 with the estimate

    @model_validator(mode="after")
    def _enough_samples(self) -> UncertaintySection:
        if 0 < self.samples < MIN_SAMPLES:
            raise ValueError(f"samples: {self.samples} draws give no P10/P90 worth quoting: 0 (no Monte Carlo) "
                             f"or {MIN_SAMPLES}..{MAX_SAMPLES}")
        return self


class Scenario(_Section):
    """A training run to estimate. Build it in code or with `load_scenario`."""

    name: str = Field(default="scenario", max_length=200)
    model: ModelSection
    training: TrainingSection | None = None  # required, except for a serving scenario
    cluster: ClusterSection
    parallelism: ParallelismSection = ParallelismSection()
    finetune: FinetuneSection = FinetuneSection()
    serving: ServingSection | None = None
    rlhf: RLHFSection | None = None
    datacenter: DatacenterSection = DatacenterSection()
    pricing: PricingSection = PricingSection()
    efficiency: EfficiencySection = EfficiencySection()
    reliability: ReliabilitySection = ReliabilitySection()
    uncertainty: UncertaintySection = UncertaintySection()

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        self.finetune.tuning(self.model.spec())  # raises ScenarioError on a bad preset/shape or LoRA target
        if self.serving is None:
            if self.training is None:
                raise ScenarioError("training: required but missing")
            if self.training.tokens is None and self.rlhf is None:
                raise ScenarioError("training.tokens: required but missing")
            if self.training.tokens is not None and self.rlhf is not None:
                raise ScenarioError("training.tokens: with [rlhf] the trained tokens follow from rlhf.prompts "
                                    "(x samples x (prompt + response tokens) x epochs): remove training.tokens")
            if self.rlhf is not None and self.finetune.method != "full":
                raise ScenarioError("finetune.method: LoRA inside [rlhf] is not modelled; use method = \"full\"")
        elif self.rlhf is not None:
            raise ScenarioError("rlhf: a serving scenario cannot have [rlhf] (serve and train in separate scenarios)")
        elif self.training is not None:
            raise ScenarioError("serving: a serving scenario has no [training] section (serve and train in "
                                "separate scenarios, or as stages of a project)")
        return self

    def to_toml(self) -> str:
        """The scenario as TOML text (round-trips through `load_scenario`)."""
        lines = [f'name = "{self.name}"']
        for section, values in self.model_dump(exclude={"name"}, exclude_none=True).items():
            if not values:
                continue
            lines.append(f"\n[{section}]")
            for key, value in values.items():
                if value != {}:  # an empty table (e.g. efficiency.perf) is the default
                    lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _format_error(err: ValidationError, origin: str) -> str:
    parts = []
    for e in err.errors():
        loc = field_path(e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        if e["type"] == "missing":
            msg = "required but missing"
        msg = msg.removeprefix("Value error, ")  # our own validators' messages
        parts.append(f"{loc}: {msg}" if loc and not msg.startswith(loc + ".") else msg)
    return f"{origin}: " + "; ".join(parts)


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ScenarioError(f"--set {item!r}: expected key.path=value, e.g. cluster.devices=8192")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words are strings: --set cluster.accelerator=nvidia-b200
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides (values parsed as TOML, bare words as strings) to a copy."""
    out = copy.deepcopy(data)
    for item in overrides:
        path, value = _parse_override(item)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ScenarioError(f"--set {item!r}: '{part}' is not a section")
        node[path[-1]] = value
    return out


def scenario_from_dict(data: dict[str, Any], origin: str = "<scenario>") -> Scenario:
    """Validate a parsed scenario mapping; ScenarioError names `origin` and the field."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_error(exc, origin)) from None
    except ScenarioError as exc:
        raise ScenarioError(f"{origin}: {exc}") from None


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read a scenario TOML file, apply `--set` overrides, validate."""
    p = Path(path)
    data = loads_toml(read_user_text(p, "scenario file", ScenarioError), str(p), ScenarioError)
    return scenario_from_dict(apply_overrides(data, overrides or []), str(p))

