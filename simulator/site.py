"""The resolve stage of `estimate()`: what the scenario names, looked up once. The accelerator (and a
calibration profile's own device), its performance parameters and power model, the region's grid,
PUE and water, and the price of a device-hour (cloud rental, or owned hardware's amortised capex
plus electricity, Epoch AI's method).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardware_catalog import Catalog, CatalogError
from simulator.footprint import energy
from simulator.system.efficiency import Efficiency, load_profile, resolve_efficiency, time_source
from simulator.errors import ScenarioError
from simulator.system.perf_params import PerfParams, perf_params_for
from simulator.scenario import Scenario


def _with_profile_device(cat: Catalog, profile, path: str) -> Catalog:
    """The catalog plus the device a calibration profile describes (replacing a same-id entry)."""
    from pydantic import ValidationError

    from hardware_catalog import Accelerator

    try:
        acc = Accelerator.model_validate({**profile.device, "override": True})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ScenarioError(f"efficiency.profile: {path}: device.{'.'.join(map(str, first['loc']))}: "
                            f"{first['msg']}") from None
    return cat.with_entries([(acc, path)])


def lookup(catalog: Catalog, kind: str, field_name: str, key: str):
    """`catalog.<kind>(key)`, a CatalogError becoming a ScenarioError that names `field_name`."""
    try:
        return getattr(catalog, kind)(key)
    except CatalogError as exc:
        raise ScenarioError(f"{field_name}: {exc}") from None


def resolve_device(scenario: Scenario, catalog: Catalog):
    """(catalog, accelerator, calibration profile or None, performance parameters) of `scenario`: a
    profile's own device joins the catalog (e.g. a CPU it lacks); the parameters are the priors, then
    the profile's `perf`, then the scenario's `efficiency.perf`."""
    path = scenario.efficiency.profile
    profile = load_profile(path) if path else None
    if profile is not None and profile.device is not None:
        catalog = _with_profile_device(catalog, profile, path)
    acc = lookup(catalog, "accelerator", "cluster.accelerator", scenario.cluster.accelerator)
    return catalog, acc, profile, perf_params_for(acc, profile.perf if profile else None, scenario.efficiency.perf,
                                                  stack=scenario.parallelism.stack)


def catalog_price(pr, acc) -> float | None:
    """USD per device-hour: the scenario's, else the catalog's (market or on-demand first); None if neither."""
    if pr.usd_per_device_hour is not None:
        return pr.usd_per_device_hour
    order = (acc.prices.reserved_usd_per_hour, acc.prices.on_demand_usd_per_hour)
    if pr.price == "on_demand":
        order = order[::-1]
    return next((p.value for p in order if p is not None), None)


def rates(pr, acc, region) -> tuple[float, float, str]:
    """(USD per device-hour, USD per facility kWh, what they are) for cloud or owned hardware.

    Cloud: the rental price, electricity included (0 where none is known: `estimate` then empties
    the cost). Owned: purchase price amortised linearly over `amortisation_years` (Epoch AI's
    amortised-capex method) plus the electricity price.
    """
    if pr.mode == "owned":
        purchase = pr.purchase_usd_per_device or (acc.prices.purchase_usd.value if acc.prices.purchase_usd else None)
        if purchase is None:
            raise ScenarioError(f"pricing.purchase_usd_per_device: required for mode = \"owned\" "
                                f"(the catalog has no purchase price for {acc.id})")
        elec = pr.electricity_usd_per_kwh or (region.electricity_usd_per_kwh.value
                                              if region.electricity_usd_per_kwh else None)
        if elec is None:
            raise ScenarioError(f"pricing.electricity_usd_per_kwh: required for mode = \"owned\" "
                                f"(the catalog has no electricity price for region {region.id})")
        years = pr.amortisation_years or acc.embodied.lifetime_years.value
        return purchase / (years * energy.HOURS_PER_YEAR), elec, "owned"
    price = catalog_price(pr, acc)
    return (0.0 if price is None else price), 0.0, "cloud"


@dataclass(frozen=True)
class Site:
    """Everything `scenario` names, resolved: hardware, performance and power models, grid, prices."""

    catalog: Catalog
    acc: Any  # hardware_catalog.Accelerator
    region: Any  # hardware_catalog.Region
    perf: PerfParams
    eff: Efficiency
    time_source: str  # what sets the step time (efficiency_source in the output)
    pue: float
    carbon_intensity_kg_per_kwh: float
    wue_l_per_kwh: float
    host_w: float
    usd_per_device_hour: float
    usd_per_kwh: float
    pricing_mode: str  # cloud | owned
    priced: bool  # False: no price anywhere, the cost is emptied


def resolve(scenario: Scenario, catalog: Catalog) -> Site:
    """The resolve stage: catalog entries, scenario overrides over the region's defaults."""
    cat, acc, profile, perf = resolve_device(scenario, catalog)
    dc, pr = scenario.datacenter, scenario.pricing
    region = lookup(cat, "region", "datacenter.region", dc.region)
    path = scenario.efficiency.profile
    usd_per_device_hour, usd_per_kwh, mode = rates(pr, acc, region)
    return Site(
        catalog=cat, acc=acc, region=region, perf=perf, eff=resolve_efficiency(acc, profile, path or ""),
        time_source=time_source(perf, profile, path, scenario.efficiency.perf,
                                device_hours_given=scenario.training is not None
                                and scenario.training.device_hours is not None),
        pue=dc.pue if dc.pue is not None else region.pue.value,
        carbon_intensity_kg_per_kwh=(dc.carbon_intensity_kg_per_kwh if dc.carbon_intensity_kg_per_kwh is not None
                                     else region.carbon_intensity_kg_per_kwh.value),
        wue_l_per_kwh=dc.wue_l_per_kwh if dc.wue_l_per_kwh is not None else region.wue_l_per_kwh.value,
        host_w=0.0 if dc.power_model == "tdp" else acc.node.host_power_w_per_device.value,
        usd_per_device_hour=usd_per_device_hour, usd_per_kwh=usd_per_kwh, pricing_mode=mode,
        priced=mode == "owned" or catalog_price(pr, acc) is not None)
