"""Monte Carlo uncertainty of the headline figures, vectorised with numpy.

The point estimate's inputs (`Estimate.basis`) are perturbed by multipliers drawn from lognormal
distributions with median 1 (so the P50 stays at the point estimate) and an absolute normal
spread for PUE; the run is re-costed for every sample at once:

    compute time / throughput multiplier -> goodput (failure-rate multiplier, Young/Daly)
    (serving: the period is fixed and the busy share = utilisation / throughput multiplier, capped at 1)
    -> wall clock -> device power x power multiplier -> IT energy -> x PUE -> x grid intensity
    -> device-hours x price multiplier (+ electricity) -> water, embodied carbon.

Default spreads (log-sigma unless noted) and where they come from:
- throughput: per accelerator, from the public tables' held-out errors (the estimate's
  `Basis.throughput_spread`, simulator.validation.spread): 0.063 for a part fitted to many rows (A100,
  H100, and H200 and H800 with H100's compute), up to 0.254 (B200, one table), 0.142 for a part with no
  rows of its own (inherited `[perf]`);
  0.06 where no accelerator says (serving, a `Basis` built by hand): an unverified prior, since the
  public tables hold no serving throughput to read a spread from;
- power 0.15: default power model vs measured energy of published runs (median 13.6%);
- failure rate 0.5: interruption rates differ about 2x between large clusters (unverified prior;
  Llama 3 reports one run's rate);
- PUE +-0.05 absolute: hyperscaler fleet PUEs 1.08-1.18 (hardware-sources.md sec. 7);
- grid intensity 0.10: year-to-year change of annual averages (unverified prior);
- price 0.25: market vs on-demand prices differ 2-4x (catalog prices; unverified prior).
Users change them in a scenario's `[uncertainty]` section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from simulator.footprint.energy import HOURS_PER_YEAR
from simulator.footprint.reliability import goodput_fraction

HEADLINES = ("wall_clock_days", "device_hours", "cost_usd", "energy_it_mwh", "energy_mwh", "co2e_t",
             "embodied_co2e_t", "water_m3", "goodput")


@dataclass(frozen=True)
class Spreads:
    throughput: float = 0.06
    power: float = 0.15
    failure_rate: float = 0.5
    pue: float = 0.05  # absolute standard deviation
    carbon_intensity: float = 0.10
    price: float = 0.25

    def with_overrides(self, overrides: dict[str, float | None]) -> Spreads:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def for_basis(cls, basis, overrides: dict[str, float | None] | None = None) -> Spreads:
        """The defaults, with the estimate's own throughput spread (its accelerator's), then `overrides`
        (a scenario's `[uncertainty]`)."""
        base = cls(throughput=getattr(basis, "throughput_spread", None) or cls.throughput)
        return base.with_overrides(overrides or {})


def sample_multipliers(spreads: Spreads, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """n draws of every input's multiplier (PUE: an additive shift)."""
    out = {f.name: np.exp(getattr(spreads, f.name) * rng.standard_normal(n)) for f in fields(spreads) if f.name != "pue"}
    out["pue"] = spreads.pue * rng.standard_normal(n)
    return out


def neutral(n: int = 1) -> dict[str, np.ndarray]:
    """Multipliers that reproduce the point estimate."""
    ones = np.ones(n)
    return {"throughput": ones, "power": ones, "failure_rate": ones, "pue": np.zeros(n),
            "carbon_intensity": ones, "price": ones}


def propagate(b, m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Headline figures for input multipliers `m` (arrays), given the point estimate's basis `b`."""
    if b.busy_fraction is not None:  # serving: fixed period; capacity moves with throughput, so does busy time
        goodput = np.ones_like(m["throughput"], dtype=float)  # replicas fail over: no lost work modelled
        wall_s = np.full_like(goodput, b.wall_s)
        compute_s = wall_s * np.minimum(1.0, b.busy_fraction / m["throughput"])
        tflops = b.hardware_tflops * m["throughput"]
    else:
        goodput = np.clip(goodput_fraction(b.devices, b.failures_per_device_hour * m["failure_rate"],
                                           b.checkpoint_write_s, b.restart_s), 0.05, 1.0)
        if b.time_fixed:
            wall_s = np.full_like(goodput, b.wall_s)
            compute_s = wall_s * goodput
            tflops = b.hardware_tflops * np.ones_like(goodput)
        else:
            compute_s = b.compute_s / m["throughput"]
            wall_s = compute_s / goodput
            tflops = b.hardware_tflops * m["throughput"]
    active_w, idle_w = b.device_power_w(tflops) * m["power"], b.idle_w * m["power"]
    wall_h, compute_h = wall_s / 3600, compute_s / 3600
    it_kwh = b.devices * (active_w * compute_h + idle_w * (wall_h - compute_h) + (b.host_w + b.infra_w) * wall_h) / 1e3
    pue = np.maximum(1.0, b.pue + m["pue"])
    facility_kwh = it_kwh * pue
    device_hours = b.devices * wall_h
    return {
        "wall_clock_days": wall_h / 24,
        "device_hours": device_hours,
        "cost_usd": device_hours * b.usd_per_device_hour * m["price"] + facility_kwh * b.usd_per_kwh,
        "energy_it_mwh": it_kwh / 1e3,
        "energy_mwh": facility_kwh / 1e3,
        "co2e_t": facility_kwh * b.carbon_intensity_kg_per_kwh * m["carbon_intensity"] / 1e3,
        "embodied_co2e_t": b.devices * b.embodied_kg_per_device * wall_h / (b.lifetime_years * HOURS_PER_YEAR) / 1e3,
        "water_m3": it_kwh * b.wue_l_per_kwh / 1e3,
        "goodput": goodput if b.busy_fraction is not None else compute_s / wall_s,  # serving: busy share is not lost time
    }


@dataclass(frozen=True)
class Uncertainty:
    samples: dict[str, np.ndarray]
    spreads: Spreads

    def percentile(self, q: float) -> dict[str, float]:
        return {k: float(np.percentile(v, q)) for k, v in self.samples.items()}

    def summary(self) -> dict[str, dict[str, float]]:
        """`p10`, `p50`, `p90` objects keyed like the headline figures."""
        return {"p10": self.percentile(10), "p50": self.percentile(50), "p90": self.percentile(90)}


def monte_carlo(basis, n: int = 10_000, spreads: Spreads | None = None, seed: int = 0) -> Uncertainty:
    """Propagate `n` joint draws of the uncertain inputs (module docstring)."""
    if n < 2:
        raise ValueError(f"uncertainty samples: expected at least 2, got {n}")
    spreads = spreads or Spreads.for_basis(basis)
    rng = np.random.default_rng(seed)
    return Uncertainty(propagate(basis, sample_multipliers(spreads, n, rng)), spreads)


Z_P90 = 1.2815515655446004  # standard normal 90th percentile: a draw's P10 / P90 is -/+ Z_P90 sigma


def p10_p90(spreads: Spreads, name: str) -> tuple[float, float]:
    """Input `name`'s multiplier at its P10 and its P90 (PUE: the additive shift), as `sample_multipliers`
    draws it."""
    width = Z_P90 * getattr(spreads, name)
    return (-width, width) if name == "pue" else (float(np.exp(-width)), float(np.exp(width)))


def tornado(basis, metric: str | Callable[[dict[str, np.ndarray]], np.ndarray] = "cost_usd",
            spreads: Spreads | None = None) -> list[dict[str, float | str]]:
    """One input at a time at its P10 and P90 (others at their median): the swing of `metric`, a headline
    key or a function of `propagate`'s figures (e.g. the facility-overhead share).

    Sorted by the width of the swing, largest first: which input moves the result most.
    """
    spreads = spreads or Spreads.for_basis(basis)
    value = (lambda out: out[metric]) if isinstance(metric, str) else metric
    base = float(value(propagate(basis, neutral()))[0])
    rows = []
    for f in fields(spreads):
        values = []
        for shift in p10_p90(spreads, f.name):
            m = neutral()
            m[f.name] = np.array([shift])
            values.append(float(value(propagate(basis, m))[0]))
        rows.append({"input": f.name, "low": min(values), "high": max(values), "base": base,
                     "swing": max(values) - min(values)})
    return sorted(rows, key=lambda r: -r["swing"])


def input_ranges(basis, spreads: Spreads | None = None) -> dict[str, tuple[float, float]]:
    """Each uncertain input's P10 and P90 in its own unit, as the tornado sets them one at a time:
    throughput in hardware TFLOP/s per device, power in W per device (at the run's throughput),
    failure rate per million device-hours, PUE (at least 1, as `propagate` clips it), grid intensity in
    kgCO2e/kWh, price in USD per device-hour."""
    spreads = spreads or Spreads.for_basis(basis)
    medians = {"throughput": basis.hardware_tflops, "power": float(basis.device_power_w(basis.hardware_tflops)),
               "failure_rate": basis.failures_per_device_hour * 1e6, "pue": basis.pue,
               "carbon_intensity": basis.carbon_intensity_kg_per_kwh, "price": basis.usd_per_device_hour}
    out = {}
    for name, median in medians.items():
        low, high = p10_p90(spreads, name)
        out[name] = (max(1.0, median + low), median + high) if name == "pue" else (median * low, median * high)
    return out
