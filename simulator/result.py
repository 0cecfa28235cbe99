"""What an estimate returns (docs/design.md section 4): `Estimate` (headline values, plan, breakdown,
assumptions, P10-P90 bands) and `Basis`, the inputs that uncertainty propagation varies.

Every workload (training, serving, RLHF) builds one; `estimate()` only routes to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from simulator.scenario import Scenario

T = TypeVar("T")

CONTRACT_KEYS = (
    "train_flops", "model_flops_per_token", "mfu", "hfu", "model_tflops_per_device",
    "hardware_tflops_per_device", "step_time_s", "tokens_per_s", "wall_clock_days", "device_hours",
    "goodput", "memory_gb_per_device", "energy_it_mwh", "energy_mwh", "co2e_t", "embodied_co2e_t",
    "cost_usd", "water_m3", "plan", "breakdown",
)


@dataclass(frozen=True)
class Basis:
    """The point estimate's inputs that uncertainty propagation varies (see simulator.footprint.uncertainty)."""

    devices: int
    compute_s: float  # productive (failure-free) training seconds
    wall_s: float
    time_fixed: bool  # device-hours given by the scenario: time is not modelled
    hardware_tflops: float
    active_w: float
    idle_w: float
    host_w: float
    tdp_model: bool
    pue: float
    carbon_intensity_kg_per_kwh: float
    wue_l_per_kwh: float
    usd_per_device_hour: float
    usd_per_kwh: float
    failures_per_device_hour: float
    checkpoint_write_s: float
    restart_s: float
    embodied_kg_per_device: float
    lifetime_years: float
    dynamic_w_per_tflops: float
    tdp_w: float
    # Serving: the share of the (fixed) period the fleet is busy at full load; None for training.
    busy_fraction: float | None = None
    infra_w: float = 0.0  # network and storage W per device, over the whole wall clock as host_w
    # log-sigma of the throughput multiplier: the accelerator's held-out error (simulator.validation.spread)
    throughput_spread: float | None = None

    def device_power_w(self, hardware_tflops):
        """Device power (W) at an achieved hardware TFLOP/s (array or float): the efficiency's
        energy roofline capped at TDP, or the active power under the `tdp` reporting convention."""
        t = np.asarray(hardware_tflops, dtype=float)
        if self.tdp_model:
            return np.full_like(t, self.active_w)
        return np.minimum(self.tdp_w, self.idle_w + self.dynamic_w_per_tflops * t)


def uncertainty_bands(scenario: Scenario, basis: Basis) -> dict[str, dict[str, float]]:
    """P10/P50/P90 of the headline figures when the scenario asks for Monte Carlo samples."""
    if not scenario.uncertainty.samples:
        return {}
    from simulator.footprint.uncertainty import Spreads, monte_carlo

    spreads = Spreads.for_basis(basis, scenario.uncertainty.model_dump(exclude={"samples"}))
    return monte_carlo(basis, scenario.uncertainty.samples, spreads).summary()


class Value(Generic[T]):
    """A typed, read-only figure of an `Estimate`, read from its `values` under the attribute's name
    (`est.mfu` is `est.values["mfu"]`). `optional`: a figure only some workloads give (serving,
    RLHF, an hourly carbon profile): None when absent."""

    def __init__(self, doc: str, optional: bool = False) -> None:
        self.__doc__, self.optional, self.key = doc, optional, ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = name

    def __get__(self, obj: Any, objtype: type | None = None) -> T:
        if obj is None:
            return self  # type: ignore[return-value]  (the class attribute: for help() and docs)
        if self.optional:
            return obj.values.get(self.key)
        try:
            return obj.values[self.key]
        except KeyError:
            raise AttributeError(f"this estimate has no {self.key}") from None


@dataclass(frozen=True)
class Estimate:
    """The result of `estimate()`: headline numbers (`values`, also as typed attributes below),
    the plan, a named breakdown, the assumptions made and, when asked, P10-P90 bands."""

    values: dict[str, Any]
    plan: dict[str, Any]
    breakdown: list[dict[str, Any]]
    assumptions: list[str] = field(default_factory=list)
    search: Any = field(default=None, repr=False, compare=False)  # the SearchResult behind the plan
    basis: Basis | None = field(default=None, repr=False, compare=False)  # inputs for uncertainty propagation
    uncertainty: dict[str, dict[str, float]] = field(default_factory=dict)  # p10/p50/p90 when requested
    warnings: list[str] = field(default_factory=list)  # implausible inputs (simulator.plausibility)

    # what was estimated
    name = Value[str]("the scenario's name")
    model = Value[str]("the model's name")
    accelerator = Value[str]("catalog id of the accelerator")
    devices = Value[int]("accelerators in the cluster")
    region = Value[str]("catalog id of the region")
    precision = Value[str]("training or serving precision")
    params_total = Value[int]("parameters")
    params_active = Value[int]("parameters active per token (MoE)")
    finetune_method = Value[str]("full or lora")
    trained_params = Value[int]("parameters that get gradients")
    workload = Value["str | None"]("serving or rlhf-<algorithm>; None for training", optional=True)
    # compute and time
    tokens = Value[float]("tokens trained (or served)")
    global_batch_tokens = Value[int]("tokens per optimizer step (serving: sequences in flight)")
    train_flops = Value[float]("model FLOPs of the run (PaLM App. B convention)")
    param_flops = Value[float]("6 N D: the weights' share of the model FLOPs")
    model_flops_per_token = Value[float]("model FLOPs per trained token")
    mfu = Value[float]("model FLOPs utilisation (full attention counted)")
    hfu = Value[float]("hardware FLOPs utilisation (what the devices execute; <= 1)")
    model_tflops_per_device = Value[float]("achieved model TFLOP/s per device")
    hardware_tflops_per_device = Value[float]("achieved hardware TFLOP/s per device")
    step_time_s = Value[float]("seconds per optimizer step (serving: per decode cycle)")
    tokens_per_s = Value[float]("tokens per second of the cluster")
    wall_clock_days = Value[float]("days from start to end, failures included")
    device_hours = Value[float]("devices x wall-clock hours")
    goodput = Value[float]("productive share of the wall clock (Young/Daly)")
    plans_evaluated = Value[int]("parallelism plans the search evaluated")
    efficiency_source = Value[str]("what set the step time")
    # memory
    memory_gb_per_device = Value[float]("memory per device of the chosen plan (GB)")
    memory_capacity_gb = Value[float]("the device's memory (GB)")
    memory_weights_gb = Value[float]("weights per device (GB)")
    memory_gradients_gb = Value[float]("gradients per device (GB)")
    memory_optimizer_gb = Value[float]("optimizer states per device (GB)")
    memory_activations_gb = Value[float]("activations per device (GB)")
    memory_buffers_gb = Value[float]("communication buffers per device (GB)")
    memory_overhead_gb = Value[float]("runtime overhead per device (GB)")
    # footprint
    power_w_per_device = Value[float]("average device power while computing (W)")
    power_source = Value[str]("where the power model comes from")
    energy_it_mwh = Value[float]("IT energy: devices and hosts (MWh)")
    energy_mwh = Value[float]("facility energy: IT x PUE (MWh)")
    pue = Value[float]("power usage effectiveness")
    carbon_intensity_kg_per_kwh = Value[float]("grid intensity (kg CO2e per kWh)")
    co2e_t = Value[float]("operational CO2e at the annual-average intensity (t)")
    co2e_t_hourly = Value["float | None"]("operational CO2e against an hourly profile (t)", optional=True)
    run_start_utc = Value["str | None"]("the run's start against the hourly profile", optional=True)
    embodied_co2e_t = Value[float]("embodied CO2e of the devices' share of their life (t)")
    water_m3 = Value[float]("water (m3)")
    cost_usd = Value["float | None"]("cost (USD); None without a price")
    usd_per_device_hour = Value["float | None"]("USD per device-hour, electricity included; None without a price")
    # serving
    utilisation = Value["float | None"]("share of the period the fleet is busy", optional=True)
    capacity_tokens_per_s = Value["float | None"]("output tokens/s of the fleet at full load", optional=True)
    tokens_per_s_per_user = Value["float | None"]("output tokens/s one user sees", optional=True)
    ttft_s = Value["float | None"]("time to first token on an idle replica (s)", optional=True)
    output_mtok = Value["float | None"]("output tokens served (millions)", optional=True)
    usd_per_mtok = Value["float | None"]("USD per million output tokens", optional=True)
    decode_memory_bound = Value["bool | None"]("whether decode is bound by memory bandwidth", optional=True)
    tp = Value["int | None"]("devices per serving replica", optional=True)
    batch = Value["int | None"]("sequences in flight per replica", optional=True)
    replicas = Value["int | None"]("serving replicas", optional=True)
    devices_needed = Value["int | None"]("devices the traffic's peak needs", optional=True)
    decode_step_s = Value["float | None"]("seconds per decode step", optional=True)
    prefill_s = Value["float | None"]("seconds per prefill of one batch", optional=True)
    kwh_per_mtok = Value["float | None"]("facility kWh per million output tokens", optional=True)
    kgco2e_per_mtok = Value["float | None"]("kg CO2e per million output tokens", optional=True)
    tokens_per_s_per_device = Value["float | None"]("output tokens/s per device at full load", optional=True)
    # rlhf
    rlhf_sequences = Value["float | None"]("rollout sequences: prompts x samples", optional=True)
    rlhf_generation_s = Value["float | None"]("seconds of rollout generation", optional=True)
    rlhf_generation_tflops_per_device = Value["float | None"]("rollout hardware TFLOP/s per device", optional=True)
    rlhf_generation_share = Value["float | None"]("rollout generation's share of the time", optional=True)
    rlhf_generation_flops_share = Value["float | None"]("rollout generation's share of the FLOPs", optional=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: flat numbers, `plan`, `breakdown`, `assumptions`, `warnings` (docs/design.md section 4)."""
        return {**self.values, "plan": dict(self.plan), "breakdown": [dict(b) for b in self.breakdown],
                "assumptions": list(self.assumptions), "warnings": list(self.warnings),
                **{k: dict(v) for k, v in self.uncertainty.items()}}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def flat(self) -> dict[str, Any]:
        """One flat row (plan fields prefixed `plan_`), for CSV and tables."""
        return {**self.values, **{f"plan_{k}": v for k, v in self.plan.items()}}

    def breakdown_frame(self):
        """The breakdown as a pandas DataFrame (component, seconds, energy_kwh, cost_usd, co2e_kg)."""
        import pandas as pd

        return pd.DataFrame(self.breakdown)
