"""Energy, carbon and water of a run.

- Device power while computing: `Efficiency.device_power_w` (idle + dynamic x achieved TFLOP/s,
  capped at TDP); while checkpointing, restarting or recomputing lost work: idle.
- Host (CPU, DRAM, NICs, fans) per device: the catalog's `node.host_power_w_per_device`.
- `power_model = "tdp"` reproduces the common reporting convention: device-hours x TDP, host
  excluded (e.g. Touvron et al. 2023 Table 15; Luccioni et al. 2023 sec. 4.2).
- Facility energy = IT energy x PUE (The Green Grid, PUE definition).
- Operational CO2e = facility energy x grid intensity (location-based; GHG Protocol Scope 2).
- Embodied CO2e = per-device manufacturing footprint x devices x run time / lifetime
  (linear amortisation as in LLMCarbon, Faiz et al. ICLR 2024, sec. 3.5).
- Water = WUE x IT energy (The Green Grid WUE: on-site litres per IT kWh).
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

    @property
    def it_kwh(self) -> float:
        return self.devices_compute_kwh + self.devices_idle_kwh + self.host_kwh

    @property
    def facility_kwh(self) -> float:
        return self.it_kwh + self.facility_overhead_kwh


def run_energy(devices: int, compute_h: float, overhead_h: float, active_w: float, idle_w: float,
               host_w: float, pue: float) -> EnergyParts:
    """Energy of `devices` computing for `compute_h` and idling for `overhead_h` hours (kWh)."""
    compute = devices * active_w * compute_h / 1e3
    idle = devices * idle_w * overhead_h / 1e3
    host = devices * host_w * (compute_h + overhead_h) / 1e3
    it = compute + idle + host
    return EnergyParts(compute, idle, host, it * (pue - 1.0))


def operational_co2e_t(facility_kwh: float, carbon_intensity_kg_per_kwh: float) -> float:
    """Location-based operational emissions in tonnes CO2e."""
    return facility_kwh * carbon_intensity_kg_per_kwh / 1e3


def embodied_co2e_t(devices: int, kgco2e_per_device: float, run_h: float, lifetime_years: float) -> float:
    """Manufacturing emissions amortised linearly over the device lifetime, tonnes CO2e."""
    return devices * kgco2e_per_device * run_h / (lifetime_years * HOURS_PER_YEAR) / 1e3


def water_m3(it_kwh: float, wue_l_per_kwh: float) -> float:
    """On-site water use in cubic metres."""
    return it_kwh * wue_l_per_kwh / 1e3
