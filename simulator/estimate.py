"""`estimate(scenario) -> Estimate`: the pure function at the centre of trainsim (docs/design.md section 1).

A short pipeline of named stages:

    resolve (simulator.site: hardware, performance and power models, grid, prices)
      -> workload (simulator.workloads.training: pre-training and fine-tuning; simulator.workloads.serving; simulator.workloads.rlhf)
         each runs execution (plan, memory, step time) and footprint (energy, CO2e, water, cost)
      -> no price anywhere: the cost emptied, with a note
      -> uncertainty (P10-P90 bands, simulator.footprint.uncertainty, when the scenario asks)

Workloads never import this module: it imports them.
"""

from __future__ import annotations

from dataclasses import replace

from hardware_catalog import Catalog, load_catalog
from simulator.plausibility import plausibility_warnings
from simulator.result import CONTRACT_KEYS, Basis, Estimate, uncertainty_bands
from simulator.workloads.rlhf import estimate_rlhf
from simulator.scenario import Scenario
from simulator.workloads.serving import estimate_serving
from simulator.site import Site, resolve
from simulator.workloads.training import estimate_training, prelude

__all__ = ["CONTRACT_KEYS", "Basis", "Estimate", "estimate", "uncertainty_bands"]


def estimate(scenario: Scenario, catalog: Catalog | None = None) -> Estimate:
    """Estimate time, energy, carbon, water and cost of `scenario` (a pure function). Without a
    price (none in the scenario or the catalog) every other figure is given and the cost is empty
    (None), with a note."""
    site = resolve(scenario, catalog or load_catalog())
    est = estimate_rlhf(scenario, site) if scenario.rlhf is not None else _workload(scenario, site)
    est = replace(est, warnings=plausibility_warnings(scenario, site, site.catalog, scenario.model.spec().seq_len))
    return est if site.priced else _without_cost(est, site.acc.id)


def _workload(scenario: Scenario, site: Site) -> Estimate:
    """The model, the checks every workload shares, then the serving or training workload."""
    model = scenario.model.spec()
    assumptions = prelude(scenario, site, model)
    if scenario.serving is not None:
        return estimate_serving(scenario, model, site, assumptions)
    return estimate_training(scenario, site, model, assumptions)


def _without_cost(est: Estimate, acc_id: str) -> Estimate:
    """`est` with its cost figures emptied (None): there was no price to compute them from."""
    values = {**est.values, "cost_usd": None, "usd_per_device_hour": None}
    breakdown = [{**row, "cost_usd": None} for row in est.breakdown]
    bands = {pct: {k: v for k, v in band.items() if k != "cost_usd"} for pct, band in est.uncertainty.items()}
    note = (f"cost: no price for {acc_id} in the catalog; cost_usd is empty: give pricing.usd_per_device_hour "
            "(or pricing.mode = \"owned\" with a purchase price)")
    return replace(est, values=values, breakdown=breakdown, assumptions=[*est.assumptions, note], uncertainty=bands)
