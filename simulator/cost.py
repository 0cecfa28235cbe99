"""Dollar cost: cloud rental or owned hardware (TCO).

- Cloud: device-hours x price per device-hour (Epoch AI, "How much does it cost to train
  frontier AI models?", method 2: hardware rental).
- Owned: capex amortised linearly over `amortisation_years` for the run's duration (Epoch AI
  method 1, amortised hardware capex) + electricity price x facility energy.
"""

from __future__ import annotations

from simulator.energy import HOURS_PER_YEAR


def cloud_cost_usd(device_hours: float, usd_per_device_hour: float) -> float:
    return device_hours * usd_per_device_hour


def owned_cost_usd(devices: int, purchase_usd_per_device: float, run_h: float, amortisation_years: float,
                   facility_kwh: float, electricity_usd_per_kwh: float) -> tuple[float, float]:
    """(capex share, electricity) in USD for a run of `run_h` hours on owned hardware."""
    capex = devices * purchase_usd_per_device * run_h / (amortisation_years * HOURS_PER_YEAR)
    return capex, facility_kwh * electricity_usd_per_kwh
