"""What an estimate returns (DESIGN sec. 4): `Estimate` (headline values, plan, breakdown,
assumptions, P10-P90 bands) and `Basis`, the inputs that uncertainty propagation varies.

Every workload (training, serving, RLHF) builds one; `estimate()` only routes to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.scenario import Scenario

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

    spreads = Spreads().with_overrides(scenario.uncertainty.model_dump(exclude={"samples"}))
    return monte_carlo(basis, scenario.uncertainty.samples, spreads).summary()


@dataclass(frozen=True)
class Estimate:
    """The result of `estimate()`: headline numbers, the plan, and a named breakdown."""

    values: dict[str, Any]
    plan: dict[str, Any]
    breakdown: list[dict[str, Any]]
    assumptions: list[str] = field(default_factory=list)
    search: Any = field(default=None, repr=False, compare=False)  # the SearchResult behind the plan
    basis: Basis | None = field(default=None, repr=False, compare=False)  # inputs for uncertainty propagation
    uncertainty: dict[str, dict[str, float]] = field(default_factory=dict)  # p10/p50/p90 when requested

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: flat numbers, `plan`, `breakdown`, `assumptions` (DESIGN sec. 4)."""
        return {**self.values, "plan": dict(self.plan), "breakdown": [dict(b) for b in self.breakdown],
                "assumptions": list(self.assumptions), **{k: dict(v) for k, v in self.uncertainty.items()}}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def flat(self) -> dict[str, Any]:
        """One flat row (plan fields prefixed `plan_`), for CSV and tables."""
        return {**self.values, **{f"plan_{k}": v for k, v in self.plan.items()}}

    def breakdown_frame(self):
        """The breakdown as a pandas DataFrame (component, seconds, energy_kwh, cost_usd, co2e_kg)."""
        import pandas as pd

        return pd.DataFrame(self.breakdown)
