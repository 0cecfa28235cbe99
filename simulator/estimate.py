"""`estimate(scenario) -> Estimate`: the pure function at the centre of trainsim (DESIGN sec. 1).

flops -> plan and memory -> step time -> goodput -> wall clock, device-hours -> power -> energy
(IT x PUE) -> CO2e (+ embodied) -> water -> $.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hardware_catalog import Catalog, CatalogError, load_catalog
from simulator import cost, energy, reliability
from simulator.efficiency import load_profile, resolve_efficiency, time_source
from simulator.errors import ScenarioError
from simulator.finetune import flops_per_token
from simulator.flops import param_flops_per_token
from simulator.perf_params import perf_params_for
from simulator.memory import capacity_gb
from simulator.performance import StepTime, choose_plan
from simulator.scenario import Scenario

DEFAULT_GLOBAL_BATCH_TOKENS = 4 * 1024 * 1024  # Llama 2 (Touvron et al. 2023 Table 1): 4M tokens

CONTRACT_KEYS = (
    "train_flops", "model_flops_per_token", "mfu", "hfu", "model_tflops_per_device",
    "hardware_tflops_per_device", "step_time_s", "tokens_per_s", "wall_clock_days", "device_hours",
    "goodput", "memory_gb_per_device", "energy_it_mwh", "energy_mwh", "co2e_t", "embodied_co2e_t",
    "cost_usd", "water_m3", "plan", "breakdown",
)


@dataclass(frozen=True)
class Basis:
    """The point estimate's inputs that uncertainty propagation varies (see simulator.uncertainty)."""

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
    from simulator.uncertainty import Spreads, monte_carlo

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


def batch_sequences(global_batch_tokens: float, seq_len: int) -> int:
    """Sequences per global batch: whole sequences, at least one."""
    return max(1, round(global_batch_tokens / seq_len))


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


def _resolve(catalog: Catalog, kind: str, field_name: str, key: str):
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
    acc = _resolve(catalog, "accelerator", "cluster.accelerator", scenario.cluster.accelerator)
    return catalog, acc, profile, perf_params_for(acc, profile.perf if profile else None, scenario.efficiency.perf,
                                                  stack=scenario.parallelism.stack)


def estimate(scenario: Scenario, catalog: Catalog | None = None) -> Estimate:
    """Estimate time, energy, carbon, water and cost of `scenario` (a pure function). Without a
    price (none in the scenario or the catalog) every other figure is given and the cost is empty
    (None), with a note."""
    cat = catalog or load_catalog()
    est = _estimate(scenario, cat)
    acc = resolve_device(scenario, cat)[1]
    if scenario.pricing.mode == "cloud" and _catalog_price(scenario.pricing, acc) is None:
        return _without_cost(est, acc.id)
    return est


def _without_cost(est: Estimate, acc_id: str) -> Estimate:
    """`est` with its cost figures emptied (None): there was no price to compute them from."""
    values = {**est.values, "cost_usd": None, "usd_per_device_hour": None}
    breakdown = [{**row, "cost_usd": None} for row in est.breakdown]
    bands = {k: v for k, v in est.uncertainty.items() if k != "cost_usd"}
    note = (f"cost: no price for {acc_id} in the catalog; cost_usd is empty: give pricing.usd_per_device_hour "
            "(or pricing.mode = \"owned\" with a purchase price)")
    return replace(est, values=values, breakdown=breakdown, assumptions=[*est.assumptions, note],
                               uncertainty=bands)


def _catalog_price(pr, acc) -> float | None:
    """USD per device-hour: the scenario's, else the catalog's (market or on-demand first); None if neither."""
    if pr.usd_per_device_hour is not None:
        return pr.usd_per_device_hour
    order = (acc.prices.reserved_usd_per_hour, acc.prices.on_demand_usd_per_hour)
    if pr.price == "on_demand":
        order = order[::-1]
    return next((p.value for p in order if p is not None), None)


def _estimate(scenario: Scenario, cat: Catalog) -> Estimate:
    """`estimate` with a price of 0 where none is known (`estimate` empties the cost then)."""
    if scenario.rlhf is not None:
        from simulator.rlhf import estimate_rlhf

        return estimate_rlhf(scenario, cat)
    cat, acc, profile, perf = resolve_device(scenario, cat)
    profile_path = scenario.efficiency.profile
    dc, tr, pr = scenario.datacenter, scenario.training, scenario.pricing
    region = _resolve(cat, "region", "datacenter.region", dc.region)
    model = scenario.model.spec()
    devices = scenario.cluster.devices
    if devices > 1 and acc.scale_up.gb_per_s_bidir is None and acc.scale_out.gbit_per_s is None:
        raise ScenarioError(f"cluster.devices: {acc.id} has no interconnect bandwidth in the catalog "
                            "(scale_up.gb_per_s_bidir or scale_out.gbit_per_s), so only devices = 1 can be simulated")
    assumptions: list[str] = []
    if scenario.model.from_params():
        assumptions.append(f"model.params {scenario.model.params:.3g}: built the closest Llama-style shape, "
                           f"{model.layers} layers x d_model {model.d_model}, {model.params_total():.3g} parameters")
    eff = resolve_efficiency(acc, profile, profile_path or "")
    usd_per_device_hour, usd_per_kwh, pricing_mode = _rates(pr, acc, region)
    pue = dc.pue if dc.pue is not None else region.pue.value
    host_w = 0.0 if dc.power_model == "tdp" else acc.node.host_power_w_per_device.value
    ci = (dc.carbon_intensity_kg_per_kwh if dc.carbon_intensity_kg_per_kwh is not None
          else region.carbon_intensity_kg_per_kwh.value)
    wue = dc.wue_l_per_kwh if dc.wue_l_per_kwh is not None else region.wue_l_per_kwh.value
    if scenario.serving is not None:
        from simulator.serving import estimate_serving

        return estimate_serving(scenario, model, acc, region, eff, perf, usd_per_device_hour, usd_per_kwh, pue,
                                ci, wue, host_w, assumptions,
                                time_source(perf, profile, profile_path, scenario.efficiency.perf))

    batch_tokens = tr.global_batch_tokens
    if batch_tokens is None:
        batch_tokens = DEFAULT_GLOBAL_BATCH_TOKENS
        assumptions.append(f"training.global_batch_tokens not given: {batch_tokens} (Llama 2's 4M tokens)")
    batch_seqs = batch_sequences(batch_tokens, model.seq_len)
    batch_tokens = batch_seqs * model.seq_len

    par = scenario.parallelism
    fixed = par.model_dump(exclude={"objective", "flash_attention", "overlap_comm", "cp_comm", "stack"})
    tuning = scenario.finetune.tuning(model)
    choice = choose_plan(model, acc, devices, batch_seqs, tr.precision, perf, eff, fixed,
                         par.flash_attention, par.objective, par.overlap_comm,
                         rates=(usd_per_device_hour, usd_per_kwh * pue, host_w), tuning=tuning,
                         cp_comm=par.cp_comm, stack=par.stack)
    plan, mem = choice.plan, choice.memory_gb
    mfpt = flops_per_token(model, tuning)
    hw_ratio = choice.step.hardware_flops_per_s_per_device / choice.step.model_flops_per_s_per_device
    train_flops = mfpt * tr.tokens
    peak = acc.peak_flops(tr.precision)

    rel = scenario.reliability
    failure_rate = (reliability.FAILURES_PER_DEVICE_HOUR if rel.failures_per_device_hour is None
                    else rel.failures_per_device_hour)
    ckpt_s = reliability.CHECKPOINT_WRITE_S if rel.checkpoint_write_s is None else rel.checkpoint_write_s
    restart_s = reliability.RESTART_S if rel.restart_s is None else rel.restart_s
    gp = reliability.young_daly(devices, failure_rate, ckpt_s, restart_s)

    if tr.device_hours is not None:  # measured/reported device-hours: skip the time model
        wall_s = tr.device_hours * 3600.0 / devices
        compute_s = wall_s * gp.goodput
        _check_compute_bound(tr.device_hours * gp.goodput, train_flops * hw_ratio, peak, acc.id, tr.precision)
        model_fps = train_flops / (devices * compute_s)
        st = StepTime({"compute": batch_tokens * mfpt / (devices * model_fps)}, model_fps, model_fps * hw_ratio)
        assumptions.append("training.device_hours given: time model skipped, throughput implied by it")
    else:
        st = choice.step
        compute_s = tr.tokens / batch_tokens * st.step_time_s
        wall_s = compute_s / gp.goodput
    overhead_s = wall_s - compute_s
    wall_h, compute_h, overhead_h = wall_s / 3600, compute_s / 3600, overhead_s / 3600
    device_hours = devices * wall_h
    hw_tflops = st.hardware_flops_per_s_per_device / 1e12

    if dc.power_model == "tdp":
        active_w = idle_w = acc.power.tdp_w.value
        assumptions.append("power_model = tdp: device-hours x TDP, host power excluded (reporting convention)")
    else:
        active_w, idle_w = eff.device_power_w(hw_tflops), eff.idle_w
    en = energy.run_energy(devices, compute_h, overhead_h, active_w, idle_w, host_w, pue)
    co2e_t = energy.operational_co2e_t(en.facility_kwh, ci)
    emb = acc.embodied
    emb_kg = emb.kgco2e_per_device.value if emb.kgco2e_per_device else 0.0
    if emb.kgco2e_per_device is None:
        assumptions.append(f"no embodied-carbon figure for {acc.id}: embodied_co2e_t = 0")
    embodied_t = energy.embodied_co2e_t(devices, emb_kg, wall_h, emb.lifetime_years.value)

    capex_usd, electricity_usd = cost.run_cost_usd(device_hours, usd_per_device_hour, en.facility_kwh, usd_per_kwh)
    cost_usd = capex_usd + electricity_usd
    price = cost_usd / device_hours

    tokens_per_s = devices * st.model_flops_per_s_per_device / mfpt
    values = {
        "name": scenario.name,
        "model": model.name,
        "accelerator": acc.id,
        "devices": devices,
        "region": region.id,
        "precision": tr.precision,
        "params_total": model.params_total(),
        "params_active": model.params_active(),
        "finetune_method": tuning.method,
        "trained_params": tuning.lora_params if tuning.frozen_base else model.params_total(),
        "tokens": tr.tokens,
        "global_batch_tokens": batch_tokens,
        "train_flops": train_flops,
        "param_flops": param_flops_per_token(model) * tr.tokens,
        "model_flops_per_token": mfpt,
        "mfu": st.model_flops_per_s_per_device / peak,
        "hfu": st.hardware_flops_per_s_per_device / peak,
        "model_tflops_per_device": st.model_flops_per_s_per_device / 1e12,
        "hardware_tflops_per_device": hw_tflops,
        "step_time_s": st.step_time_s,
        "tokens_per_s": tokens_per_s,
        "wall_clock_days": wall_h / 24,
        "device_hours": device_hours,
        "goodput": compute_s / wall_s,
        "memory_gb_per_device": mem["total_gb"],
        **{f"memory_{k}": v for k, v in mem.items() if k != "total_gb"},
        "memory_capacity_gb": capacity_gb(acc),
        "power_w_per_device": active_w,
        "energy_it_mwh": en.it_kwh / 1e3,
        "energy_mwh": en.facility_kwh / 1e3,
        "pue": pue,
        "carbon_intensity_kg_per_kwh": ci,
        "co2e_t": co2e_t,
        "embodied_co2e_t": embodied_t,
        "usd_per_device_hour": price,
        "cost_usd": cost_usd,
        "water_m3": energy.water_m3(en.it_kwh, wue),
        "efficiency_source": time_source(perf, profile, profile_path, scenario.efficiency.perf,
                                         device_hours_given=tr.device_hours is not None),
        "power_source": eff.source,
        "plans_evaluated": choice.search.plans_evaluated,
    }
    overhead_share = overhead_s / wall_s
    breakdown = [  # step parts scaled to the whole run, at the devices' computing power
        _row(name, part_s / st.step_time_s * compute_s, part_s / st.step_time_s * en.devices_compute_kwh,
             cost_usd * part_s / st.step_time_s * compute_s / wall_s, ci)
        for name, part_s in st.parts_s.items()
    ] + [
        _row("checkpoint_and_failures", overhead_s, en.devices_idle_kwh, cost_usd * overhead_share, ci),
        _row("host", 0.0, en.host_kwh, 0.0, ci),
        _row("facility_overhead", 0.0, en.facility_overhead_kwh, 0.0, ci),
        {"component": "embodied", "seconds": 0.0, "energy_kwh": 0.0, "cost_usd": 0.0, "co2e_kg": embodied_t * 1e3},
    ]
    if pricing_mode == "owned":  # split cost into capex and electricity rather than by time
        for row in breakdown:
            row["cost_usd"] = 0.0
        breakdown.append({"component": "capex", "seconds": 0.0, "energy_kwh": 0.0,
                          "cost_usd": capex_usd, "co2e_kg": 0.0})
        breakdown.append({"component": "electricity", "seconds": 0.0, "energy_kwh": 0.0,
                          "cost_usd": electricity_usd, "co2e_kg": 0.0})
    basis = Basis(devices=devices, compute_s=compute_s, wall_s=wall_s, time_fixed=tr.device_hours is not None,
                  hardware_tflops=hw_tflops, active_w=active_w, idle_w=idle_w, host_w=host_w,
                  tdp_model=dc.power_model == "tdp", pue=pue, carbon_intensity_kg_per_kwh=ci, wue_l_per_kwh=wue,
                  usd_per_device_hour=usd_per_device_hour, usd_per_kwh=usd_per_kwh,
                  failures_per_device_hour=failure_rate, checkpoint_write_s=ckpt_s, restart_s=restart_s,
                  embodied_kg_per_device=emb_kg, lifetime_years=emb.lifetime_years.value,
                  dynamic_w_per_tflops=eff.dynamic_w_per_tflops, tdp_w=eff.tdp_w)
    if dc.carbon_profile:  # time-varying grid intensity: co2e_t stays the annual-average figure
        from simulator.carbon_profile import load_profile_csv, run_co2e_t

        try:
            prof = load_profile_csv(dc.carbon_profile)
            start = dc.start_utc or prof.first_hour
            values["co2e_t_hourly"] = float(run_co2e_t(prof, start, en.facility_kwh / 1e3 / wall_h, wall_h))
        except ScenarioError as exc:
            raise ScenarioError(f"datacenter.carbon_profile: {exc}") from None
        values["run_start_utc"] = str(start)
        assumptions.append("co2e_t_hourly: constant facility power over the run against the hourly profile")
    check_physics(values, scenario, assumptions)
    bands = uncertainty_bands(scenario, basis)
    return Estimate(values, plan.to_dict(), breakdown, assumptions, choice.search, basis, bands)


def _check_compute_bound(busy_device_hours: float, hardware_flops: float, peak_flops_per_s: float,
                         acc_id: str, precision: str) -> None:
    """Reported hours cannot beat the devices' peak (HFU <= 1): the run's hardware FLOPs take at
    least hardware_flops / peak device-seconds of busy time."""
    floor_device_hours = hardware_flops / peak_flops_per_s / 3600.0
    if busy_device_hours * (1 + 1e-9) < floor_device_hours:
        raise ScenarioError(
            f"training.device_hours: the run's {hardware_flops:.3g} hardware FLOPs need at least "
            f"{floor_device_hours:.4g} device-hours at {acc_id}'s {precision} peak; the device-hours given leave "
            f"{busy_device_hours:.4g} busy (HFU above 1): check training.device_hours, training.tokens or the model")


def check_physics(values: dict[str, Any], scenario: Scenario, assumptions: list[str]) -> None:
    """The invariants every estimate keeps (DESIGN section 2): finite figures, HFU <= 1. MFU may
    exceed HFU (even 1) at long causal contexts, where the PaLM convention counts the masked half of
    attention that the kernel skips: the assumptions then say so."""
    bad = [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
    hfu, mfu = values["hfu"], values["mfu"]
    if bad or hfu > 1 + 1e-9:
        what = f"non-finite {', '.join(bad)}" if bad else f"HFU {hfu:.3f} above 1"
        raise ScenarioError(
            f"{scenario.name}: the estimate breaks physics ({what}) for model {values['model']}, "
            f"{values['devices']} x {values['accelerator']}, {values['precision']}, efficiency.perf "
            f"{dict(scenario.efficiency.perf) or 'none'}: check these inputs (a bug if they are sound)")
    if mfu > 1.1 * hfu or mfu > 1.0:
        assumptions.append(f"mfu {mfu:.3f} above hfu {hfu:.3f}: MFU counts attention in full (PaLM convention) "
                           "while the causal kernel skips the masked half; at this context that half is large")


def _row(name: str, seconds: float, kwh: float, usd: float, ci: float) -> dict[str, Any]:
    return {"component": name, "seconds": seconds, "energy_kwh": kwh, "cost_usd": usd, "co2e_kg": kwh * ci}


def _rates(pr, acc, region) -> tuple[float, float, str]:
    """(USD per device-hour, USD per facility kWh, what they are) for cloud or owned hardware.

    Cloud: the rental price, electricity included. Owned: purchase price amortised linearly over
    `amortisation_years` (Epoch AI's amortised-capex method) plus the electricity price.
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
    price = _catalog_price(pr, acc)
    return (0.0 if price is None else price), 0.0, "cloud"  # no price: `estimate` empties the cost
