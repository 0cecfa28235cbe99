"""Dollar cost: cloud rental or owned hardware (TCO).

- Cloud: device-hours x price per device-hour (Epoch AI, "How much does it cost to train
  frontier AI models?", method 2: hardware rental); electricity is in the price.
- Owned: device-hours x purchase price / (amortisation years x hours per year) (Epoch AI
  method 1, amortised hardware capex) + electricity price x facility energy.
"""

from __future__ import annotations


def run_cost_usd(device_hours: float, usd_per_device_hour: float, facility_kwh: float,
                 usd_per_kwh: float) -> tuple[float, float]:
    """(hardware: rental or amortised capex, electricity) in USD."""
    return device_hours * usd_per_device_hour, facility_kwh * usd_per_kwh
