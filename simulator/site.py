"""The resolve stage of `estimate()`: what the scenario names, looked up once. The accelerator (and a
calibration profile's own device), its performance parameters and power model, the region's grid,
PUE and water, and the price of a device-hour (cloud rental, or owned hardware's amortised capex
plus electricity, Epoch AI's method).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hardware_catalog import Catalog, CatalogError
from hardware_catalog.loader import infrastructure_defaults
from simulator.footprint import energy, infrastructure
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
    network_w: float = 0.0  # scale-out switches and optics, W per device
    storage_w: float = 0.0  # high-speed storage, W per device (the cluster's / devices)
    infra_notes: tuple[str, ...] = ()  # how the network and storage power were sized

    @property
    def constant_w(self) -> float:
        """W per device drawn over the whole wall clock: host, network and storage."""
        return self.host_w + self.network_w + self.storage_w


def _network(scenario: Scenario, acc, infra) -> tuple[float, str]:
    """(W per device, note) of the scale-out network: the scenario's, else the fat tree of the
    accelerator's (or the catalog's default) switches (simulator.footprint.infrastructure)."""
    dc, devices = scenario.datacenter, scenario.cluster.devices
    if dc.network_w_per_device is not None:
        return dc.network_w_per_device, f"network: {dc.network_w_per_device:,.4g} W per device (datacenter.network_w_per_device)"
    net = acc.network or infra.network
    nic = acc.scale_out.gbit_per_s.value if acc.scale_out.gbit_per_s else None
    domain = acc.scale_up.domain_devices.value
    fab = infrastructure.fabric(devices, domain, nic, net.port_gbit_per_s.value, int(net.switch_ports.value),
                                net.switch_w.value, net.optics_w_per_port.value)
    if fab.tiers == 0:
        why = f"inside one scale-up domain of {domain:,.0f}" if devices <= domain else "no scale-out NIC in the catalog"
        return 0.0, f"network: no scale-out fabric ({devices:,} devices {why})"
    return fab.w_per_device, (
        f"network: {fab.links:,.4g} links of {net.port_gbit_per_s.value:g} Gb/s in a non-blocking {fab.tiers}-tier fat tree of "
        f"{net.switch_ports.value:g}-port switches ({net.name.split(':')[0]}): {fab.switches:,} "
        f"switch{'es' if fab.switches > 1 else ''}, "
        f"{fab.w_per_device:,.0f} W per device with their optics (NICs are in the host power)")


def _storage(scenario: Scenario, infra) -> tuple[float, str]:
    """(W per device, note) of the high-speed storage: the scenario's PB and W per PB, else the
    catalog's TB per device and W per PB."""
    dc, devices, st = scenario.datacenter, scenario.cluster.devices, infra.storage
    pb = dc.storage_pb if dc.storage_pb is not None else devices * st.tb_per_device.value / 1e3
    w_per_pb = dc.storage_w_per_pb if dc.storage_w_per_pb is not None else st.w_per_pb.value
    watts = infrastructure.storage_w(pb, w_per_pb)
    return watts / devices, (f"storage: {pb:,.4g} PB of high-speed storage at {w_per_pb:,.0f} W per PB, "
                             f"{watts / 1e3:,.4g} kW ({watts / devices:,.1f} W per device)")


def network_and_storage(scenario: Scenario, cat: Catalog, acc) -> tuple[float, float, tuple[str, ...]]:
    """(network W per device, storage W per device, notes); none under the `tdp` convention. The
    defaults are the catalog's (`infrastructure.toml`, or a user's file replacing it)."""
    if scenario.datacenter.power_model == "tdp":
        return 0.0, 0.0, ()
    infra = cat.infrastructure or infrastructure_defaults()
    network_w, net_note = _network(scenario, acc, infra)
    storage_w, storage_note = _storage(scenario, infra)
    return network_w, storage_w, (net_note, storage_note)


def resolve(scenario: Scenario, catalog: Catalog) -> Site:
    """The resolve stage: catalog entries, scenario overrides over the region's defaults."""
    cat, acc, profile, perf = resolve_device(scenario, catalog)
    dc, pr = scenario.datacenter, scenario.pricing
    region = lookup(cat, "region", "datacenter.region", dc.region)
    path = scenario.efficiency.profile
    usd_per_device_hour, usd_per_kwh, mode = rates(pr, acc, region)
    network_w, storage_w, infra_notes = network_and_storage(scenario, cat, acc)
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
        priced=mode == "owned" or catalog_price(pr, acc) is not None,
        network_w=network_w, storage_w=storage_w, infra_notes=infra_notes)
