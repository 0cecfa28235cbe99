"""Energy, carbon and water of a run.

- Device power while computing: `Efficiency.device_power_w` (idle + dynamic x achieved TFLOP/s,
  capped at TDP); while checkpointing, restarting or recomputing lost work: idle.
- Host (CPU, DRAM, NICs, fans) per device: the catalog's `node.host_power_w_per_device`.
- Network (scale-out switches and their optics) and storage: constant power over the whole wall
  clock, as the host (`simulator.footprint.infrastructure`); part of the IT energy, so PUE applies.
- `power_model = "tdp"` reproduces the common reporting convention: device-hours x TDP, host,
  network and storage excluded (e.g. Touvron et al. 2023 Table 15; Luccioni et al. 2023 sec. 4.2).
- Facility energy = IT energy x PUE (The Green Grid, PUE definition).
- Operational CO2e = facility energy x grid intensity (location-based; GHG Protocol Scope 2).
- Embodied CO2e = per-device manufacturing footprint x devices x run time / lifetime
  (linear amortisation as in LLMCarbon, Faiz et al. ICLR 2024, sec. 3.5).
- Water = WUE x IT energy (The Green Grid WUE: on-site litres per IT kWh).

Caveat (`memory_bound_note`): the device power curve has a FLOP term only. Memory-bound phases
(serving decode, RLHF rollout generation) move HBM traffic at low FLOP/s, so the curve prices them
near idle and errs low. A two-term model (FLOPs + memory traffic) is what `calibrate fit` reports
(`PowerFit.memory_term`), but its memory term is fitted per machine against a training proxy
(activation elements/s) and there is no sourced prior per accelerator family, so the library does
not use it: it states the caveat with its bound instead. The bound is TDP, the device's power limit:
the phase's true energy lies between the figure given and the phase's busy device-hours at TDP.
"""

from __future__ import annotations

from dataclasses import dataclass

HOURS_PER_YEAR = 8766.0  # 365.25 days


@dataclass(frozen=True)
class EnergyParts:
    """Joules are avoided: everything in kWh, for the whole run."""

    devices_compute_kwh: float
    devices_idle_kwh: float
    host_kwh: float
    facility_overhead_kwh: float
    network_kwh: float = 0.0
    storage_kwh: float = 0.0

    @property
    def it_kwh(self) -> float:
        return self.devices_compute_kwh + self.devices_idle_kwh + self.host_kwh + self.network_kwh + self.storage_kwh

    @property
    def facility_kwh(self) -> float:
        return self.it_kwh + self.facility_overhead_kwh


def run_energy(devices: int, compute_h: float, overhead_h: float, active_w: float, idle_w: float,
               host_w: float, pue: float, network_w: float = 0.0, storage_w: float = 0.0) -> EnergyParts:
    """Energy of `devices` computing for `compute_h` and idling for `overhead_h` hours (kWh); host,
    network and storage (W per device) draw over both."""
    compute = devices * active_w * compute_h / 1e3
    idle = devices * idle_w * overhead_h / 1e3
    host, network, storage = (devices * w * (compute_h + overhead_h) / 1e3 for w in (host_w, network_w, storage_w))
    it = compute + idle + host + network + storage
    return EnergyParts(compute, idle, host, it * (pue - 1.0), network, storage)


def operational_co2e_t(facility_kwh: float, carbon_intensity_kg_per_kwh: float) -> float:
    """Location-based operational emissions in tonnes CO2e."""
    return facility_kwh * carbon_intensity_kg_per_kwh / 1e3


def embodied_co2e_t(devices: int, kgco2e_per_device: float, run_h: float, lifetime_years: float) -> float:
    """Manufacturing emissions amortised linearly over the device lifetime, tonnes CO2e."""
    return devices * kgco2e_per_device * run_h / (lifetime_years * HOURS_PER_YEAR) / 1e3


def water_m3(it_kwh: float, wue_l_per_kwh: float) -> float:
    """On-site water use in cubic metres."""
    return it_kwh * wue_l_per_kwh / 1e3


MEMORY_BOUND_NOTE = "HBM traffic power not modelled"  # in every memory_bound_note (the dashboard finds it)


def memory_bound_note(phase: str, power_w: float, tdp_w: float, busy_device_h: float, pue: float,
                      facility_mwh: float) -> str:
    """The caveat for a memory-bound phase priced with the FLOP-only power curve (module docstring):
    its power per device, and how much facility energy it would add at TDP (the upper bound)."""
    if power_w >= tdp_w:  # the `tdp` convention or the cap: the missing term cannot raise it
        return (f"{phase}: {power_w:,.0f} W per device, the {tdp_w:,.0f} W TDP ({MEMORY_BOUND_NOTE}; "
                "at TDP it cannot raise the figure)")
    extra_mwh = busy_device_h * (tdp_w - power_w) * pue / 1e6
    share = f" (+{extra_mwh / facility_mwh:.0%} of energy_mwh)" if facility_mwh > 0 else ""
    return (f"{phase}: decode priced at {power_w:,.0f} W per device by the FLOP-only power curve "
            f"({MEMORY_BOUND_NOTE}), so its energy errs low: at the {tdp_w:,.0f} W TDP, the most a device "
            f"draws, it would add up to {extra_mwh:.3g} MWh{share}")
