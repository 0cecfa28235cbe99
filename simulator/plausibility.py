"""Plausibility warnings: inputs the schema accepts (they are within its bounds) but that no real
run has, so the figures are probably not what the user meant. Every estimate carries them
(`Estimate.warnings`); the CLI prints them as `warning:` lines and the dashboard shows them beside
the figures, so both say the same thing.

A warning never changes a figure; refusals are the schema's and the workloads' job. Each
threshold cites what it is measured against.
"""

from __future__ import annotations

from hardware_catalog import Catalog
from simulator.scenario import Scenario
from simulator.site import Site
from simulator.system.perf_params import own_rate_missing

# Llama 3 405B's longest pre-training stage used 131,072-token sequences (Dubey et al. 2024,
# sec. 3.4.2); warn an order of magnitude beyond, where no published run trains whole sequences.
LONGEST_PUBLISHED_CONTEXT = 131_072
CONTEXT_WARN_FACTOR = 8  # warn above 8 x 131,072 = 1,048,576 tokens per sequence

# Industry-average PUE 1.56 (Uptime Institute 2024 survey; 1.55-1.59 since ~2020), hyperscale
# fleets ~1.08-1.1 (Google, Meta 2024 reports): ../shared/reference/hardware-sources.md.
INDUSTRY_PUE = 1.56
PUE_WARN = 3.0

# Coal generation's life-cycle intensity, IPCC AR5 WG3 Annex III (2014) median 0.82 kg CO2e/kWh;
# no grid averages above ~1 kg/kWh (the catalog's highest region is the reference point).
COAL_KG_PER_KWH = 0.82
INTENSITY_WARN_KG_PER_KWH = 1.2

PRICE_WARN_FACTOR = 5  # a device-hour price 5 x the catalog's highest cloud price


def plausibility_warnings(scenario: Scenario, site: Site, catalog: Catalog, seq_len: int) -> list[str]:
    """The warnings for `scenario` (resolved as `site`; `seq_len` the model's sequence length)."""
    checks = (_context(seq_len), _batch(scenario, seq_len), _precision(scenario, site), _pue(site),
              _intensity(site), _price(scenario, site, catalog))
    return [w for w in checks if w]


def _context(seq_len: int) -> str | None:
    if seq_len <= CONTEXT_WARN_FACTOR * LONGEST_PUBLISHED_CONTEXT:
        return None
    return (f"model.seq_len {seq_len:,}: {seq_len / LONGEST_PUBLISHED_CONTEXT:,.0f}x the longest published "
            f"training context (Llama 3: {LONGEST_PUBLISHED_CONTEXT:,} tokens); the memory and attention "
            "figures extrapolate far beyond any measured run")


def _batch(scenario: Scenario, seq_len: int) -> str | None:
    training = scenario.training
    if training is None or training.global_batch_tokens is None or scenario.serving is not None:
        return None
    if training.global_batch_tokens >= seq_len:
        return None
    return (f"training.global_batch_tokens {training.global_batch_tokens:,.0f} is less than one sequence "
            f"(model.seq_len {seq_len:,}): each step trains one whole sequence of {seq_len:,} tokens; the "
            "figures use that")


def _precision(scenario: Scenario, site: Site) -> str | None:
    """Low-precision training on a part whose catalog lists no faster rate for it than bf16's."""
    training = scenario.training
    if training is None or scenario.serving is not None or training.precision not in ("fp8", "fp4"):
        return None
    precision, acc = training.precision, site.acc
    if not own_rate_missing(acc, precision):
        return None
    peak = acc.peak_tflops_dense[precision]
    why = f' ("{peak.note}")' if peak.note else ""
    return (f"training.precision {precision}: {acc.id}'s {precision} peak, {peak.value:g} TFLOP/s, is no higher than "
            f"its bf16 peak (catalog{why}): {precision} buys no matmul speed here, and the estimate charges its casts")


def _pue(site: Site) -> str | None:
    if site.pue <= PUE_WARN:
        return None
    return (f"datacenter.pue {site.pue:g}: cooling and power losses would use {site.pue - 1:g}x the IT energy; "
            f"the industry average is {INDUSTRY_PUE} (Uptime Institute 2024) and large AI sites report ~1.1")


def _intensity(site: Site) -> str | None:
    ci = site.carbon_intensity_kg_per_kwh
    if ci <= INTENSITY_WARN_KG_PER_KWH:
        return None
    return (f"datacenter.carbon_intensity_kg_per_kwh {ci:g}: above coal generation itself "
            f"({COAL_KG_PER_KWH} kg/kWh life-cycle median, IPCC AR5); check the unit (kg per kWh, not g)")


def _price(scenario: Scenario, site: Site, catalog: Catalog) -> str | None:
    given = scenario.pricing.usd_per_device_hour
    prices = [(p.value, a.id) for a in catalog.accelerators.values()
              for p in (a.prices.on_demand_usd_per_hour, a.prices.reserved_usd_per_hour) if p is not None]
    if given is None or not prices:
        return None
    top, top_id = max(prices)
    if given <= PRICE_WARN_FACTOR * top:
        return None
    return (f"pricing.usd_per_device_hour {given:g}: {given / top:,.0f}x the catalog's highest cloud price "
            f"(${top:g} per device-hour, {top_id}); check the unit (per device, per hour)")
