"""The training workload (pre-training and fine-tuning, full or LoRA) as named stages:

    batch -> plan and step time (execution) -> run time with failures (goodput) -> footprint
    (power, energy = IT x PUE, CO2e + embodied, water, cost) -> values, breakdown, Monte Carlo basis

Formulas and their sources sit with the stages' modules: FLOPs in `flops`/`finetune` (PaLM App. B),
step time in `steptime`, goodput in `reliability` (Young/Daly), energy and carbon in `energy`, cost
in `cost`. `estimate()` (simulator/estimate.py) routes a scenario here after the resolve stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from simulator.footprint import cost, energy, reliability
from simulator.errors import ScenarioError
from simulator.model.finetune import flops_per_token
from simulator.model.flops import attention_flops_per_token, model_flops_per_token, param_flops_per_token
from simulator.execution.collectives import tp_beyond_domain_note
from simulator.execution.memory import capacity_gb
from simulator.execution.moe_comm import MoeSetup
from simulator.execution.performance import Choice, StepTime, choose_plan
from simulator.result import Basis, Estimate, uncertainty_bands
from simulator.scenario import Scenario
from simulator.site import Site
from simulator.system.perf_params import own_rate_missing, weak_priors
from simulator.validation.spread import throughput_spread

DEFAULT_GLOBAL_BATCH_TOKENS = 4 * 1024 * 1024  # Llama 2 (Touvron et al. 2023 Table 1): 4M tokens


def batch_sequences(global_batch_tokens: float, seq_len: int) -> int:
    """Sequences per global batch: whole sequences, at least one."""
    return max(1, round(global_batch_tokens / seq_len))


@dataclass(frozen=True)
class RunTime:
    """The run's time: the step (or the time implied by reported device-hours) and the goodput."""

    step: StepTime
    compute_s: float  # productive training seconds
    wall_s: float  # with checkpoints, failures and restarts
    failures_per_device_hour: float
    checkpoint_write_s: float
    restart_s: float


@dataclass(frozen=True)
class Footprint:
    """Power, energy, carbon and cost of the run."""

    active_w: float
    idle_w: float
    en: energy.EnergyParts
    co2e_t: float
    embodied_t: float
    embodied_kg_per_device: float
    capex_usd: float
    electricity_usd: float


def prelude(scenario: Scenario, site: Site, model) -> list[str]:
    """Checks and notes every workload shares: a multi-device cluster needs an interconnect; a model
    built from `params` alone says which shape it got. Returns the assumptions so far."""
    devices, acc = scenario.cluster.devices, site.acc
    if devices > 1 and acc.scale_up.gb_per_s_bidir is None and acc.scale_out.gbit_per_s is None:
        raise ScenarioError(f"cluster.devices: {acc.id} has no interconnect bandwidth in the catalog "
                            "(scale_up.gb_per_s_bidir or scale_out.gbit_per_s), so only devices = 1 can be simulated")
    notes = list(site.infra_notes)
    if scenario.model.from_params():
        notes.insert(0, f"model.params {scenario.model.params:.3g}: built the closest Llama-style shape, "
                        f"{model.layers} layers x d_model {model.d_model}, {model.params_total():.3g} parameters")
    return notes


def _batch(scenario: Scenario, seq_len: int, assumptions: list[str]) -> int:
    """Global batch in whole sequences (Llama 2's 4M tokens when not given, noted)."""
    batch_tokens = scenario.training.global_batch_tokens
    if batch_tokens is None:
        batch_tokens = DEFAULT_GLOBAL_BATCH_TOKENS
        assumptions.append(f"training.global_batch_tokens not given: {batch_tokens} (Llama 2's 4M tokens)")
    return batch_sequences(batch_tokens, seq_len)


def _plan(scenario: Scenario, site: Site, model, batch_seqs: int) -> Choice:
    """The execution stage: the best plan the scenario allows, with its step time."""
    par = scenario.parallelism
    fixed = par.model_dump(exclude={"objective", "flash_attention", "overlap_comm", "cp_comm", "stack",
                                    "moe_dispatcher"})
    return choose_plan(model, site.acc, scenario.cluster.devices, batch_seqs, scenario.training.precision,
                       site.perf, site.eff, fixed, par.flash_attention, par.objective, par.overlap_comm,
                       rates=(site.usd_per_device_hour, site.usd_per_kwh * site.pue, site.constant_w),
                       tuning=scenario.finetune.tuning(model), cp_comm=par.cp_comm, stack=par.stack,
                       moe=moe_setup(scenario))


def moe_setup(scenario: Scenario) -> MoeSetup:
    """How the scenario routes MoE tokens: its dispatcher and token dropping (moe_comm.MoeSetup)."""
    return MoeSetup(scenario.parallelism.moe_dispatcher, scenario.training.moe_capacity_factor)


def _run_time(scenario: Scenario, site: Site, choice: Choice, mfpt: float, batch_tokens: int,
              assumptions: list[str]) -> RunTime:
    """Wall clock from the step time and Young/Daly goodput, or from reported device-hours (which
    must not beat the devices' peak: `check_compute_bound`)."""
    tr, rel, devices = scenario.training, scenario.reliability, scenario.cluster.devices
    rate = reliability.FAILURES_PER_DEVICE_HOUR if rel.failures_per_device_hour is None else rel.failures_per_device_hour
    ckpt_s = reliability.CHECKPOINT_WRITE_S if rel.checkpoint_write_s is None else rel.checkpoint_write_s
    restart_s = reliability.RESTART_S if rel.restart_s is None else rel.restart_s
    gp = reliability.young_daly(devices, rate, ckpt_s, restart_s)
    st = choice.step
    if tr.device_hours is not None:  # measured/reported device-hours: skip the time model
        hw_ratio = st.hardware_flops_per_s_per_device / st.model_flops_per_s_per_device
        wall_s = tr.device_hours * 3600.0 / devices
        compute_s = wall_s * gp.goodput
        peak = site.acc.peak_flops(tr.precision)
        check_compute_bound(tr.device_hours * gp.goodput, mfpt * tr.tokens * hw_ratio, peak, site.acc.id, tr.precision)
        model_fps = mfpt * tr.tokens / (devices * compute_s)
        st = StepTime({"compute": batch_tokens * mfpt / (devices * model_fps)}, model_fps, model_fps * hw_ratio)
        assumptions.append("training.device_hours given: time model skipped, throughput implied by it")
    else:
        compute_s = tr.tokens / batch_tokens * st.step_time_s
        wall_s = compute_s / gp.goodput
    return RunTime(st, compute_s, wall_s, rate, ckpt_s, restart_s)


def _footprint(scenario: Scenario, site: Site, rt: RunTime, assumptions: list[str]) -> Footprint:
    """Device power from the achieved hardware FLOP/s (or TDP under that reporting convention),
    energy, operational and embodied CO2e, and cost."""
    acc, devices = site.acc, scenario.cluster.devices
    if scenario.datacenter.power_model == "tdp":
        active_w = idle_w = acc.power.tdp_w.value
        assumptions.append("power_model = tdp: device-hours x TDP, host, network and storage power excluded "
                           "(reporting convention)")
    else:
        active_w, idle_w = site.eff.device_power_w(rt.step.hardware_flops_per_s_per_device / 1e12), site.eff.idle_w
    wall_h, compute_h = rt.wall_s / 3600, rt.compute_s / 3600
    en = energy.run_energy(devices, compute_h, wall_h - compute_h, active_w, idle_w, site.host_w, site.pue,
                           site.network_w, site.storage_w)
    emb = acc.embodied
    emb_kg = emb.kgco2e_per_device.value if emb.kgco2e_per_device else 0.0
    if emb.kgco2e_per_device is None:
        assumptions.append(f"no embodied-carbon figure for {acc.id}: embodied_co2e_t = 0")
    capex, electricity = cost.run_cost_usd(devices * wall_h, site.usd_per_device_hour, en.facility_kwh,
                                           site.usd_per_kwh)
    return Footprint(active_w, idle_w, en, energy.operational_co2e_t(en.facility_kwh, site.carbon_intensity_kg_per_kwh),
                     energy.embodied_co2e_t(devices, emb_kg, wall_h, emb.lifetime_years.value), emb_kg, capex,
                     electricity)


def _values(scenario: Scenario, site: Site, model, choice: Choice, rt: RunTime, fp: Footprint, mfpt: float,
            batch_tokens: int) -> dict[str, Any]:
    """The headline figures (docs/design.md section 4 keys)."""
    tr, devices, st, acc = scenario.training, scenario.cluster.devices, rt.step, site.acc
    tuning, mem, peak = scenario.finetune.tuning(model), choice.memory_gb, acc.peak_flops(tr.precision)
    device_hours = devices * rt.wall_s / 3600
    cost_usd = fp.capex_usd + fp.electricity_usd
    return {
        "name": scenario.name, "model": model.name, "accelerator": acc.id, "devices": devices,
        "region": site.region.id, "precision": tr.precision, "params_total": model.params_total(),
        "params_active": model.params_active(), "finetune_method": tuning.method,
        "trained_params": tuning.lora_params if tuning.frozen_base else model.params_total(),
        "tokens": tr.tokens, "global_batch_tokens": batch_tokens, "train_flops": mfpt * tr.tokens,
        "param_flops": param_flops_per_token(model) * tr.tokens, "model_flops_per_token": mfpt,
        "mfu": st.model_flops_per_s_per_device / peak, "hfu": st.hardware_flops_per_s_per_device / peak,
        "model_tflops_per_device": st.model_flops_per_s_per_device / 1e12,
        "hardware_tflops_per_device": st.hardware_flops_per_s_per_device / 1e12,
        "step_time_s": st.step_time_s, "tokens_per_s": devices * st.model_flops_per_s_per_device / mfpt,
        "wall_clock_days": rt.wall_s / 86400, "device_hours": device_hours, "goodput": rt.compute_s / rt.wall_s,
        "memory_gb_per_device": mem["total_gb"], **{f"memory_{k}": v for k, v in mem.items() if k != "total_gb"},
        "memory_capacity_gb": capacity_gb(acc), "power_w_per_device": fp.active_w,
        "energy_it_mwh": fp.en.it_kwh / 1e3, "energy_mwh": fp.en.facility_kwh / 1e3, "pue": site.pue,
        "carbon_intensity_kg_per_kwh": site.carbon_intensity_kg_per_kwh, "co2e_t": fp.co2e_t,
        "embodied_co2e_t": fp.embodied_t, "usd_per_device_hour": cost_usd / device_hours, "cost_usd": cost_usd,
        "water_m3": energy.water_m3(fp.en.it_kwh, site.wue_l_per_kwh), "efficiency_source": site.time_source,
        "power_source": site.eff.source, "plans_evaluated": choice.search.plans_evaluated,
    }


def _row(name: str, seconds: float, kwh: float, usd: float, ci: float) -> dict[str, Any]:
    return {"component": name, "seconds": seconds, "energy_kwh": kwh, "cost_usd": usd, "co2e_kg": kwh * ci}


def _breakdown(site: Site, rt: RunTime, fp: Footprint) -> list[dict[str, Any]]:
    """Time, energy, cost and CO2e by component: the step's parts scaled to the whole run, then the
    failure overhead, host, network, storage, facility overhead and embodied carbon (owned hardware: capex and
    electricity as their own rows)."""
    st, en, ci = rt.step, fp.en, site.carbon_intensity_kg_per_kwh
    cost_usd, overhead_s = fp.capex_usd + fp.electricity_usd, rt.wall_s - rt.compute_s
    rows = [_row(name, part_s / st.step_time_s * rt.compute_s, part_s / st.step_time_s * en.devices_compute_kwh,
                 cost_usd * part_s / st.step_time_s * rt.compute_s / rt.wall_s, ci)
            for name, part_s in st.parts_s.items()]
    rows += [_row("checkpoint_and_failures", overhead_s, en.devices_idle_kwh, cost_usd * overhead_s / rt.wall_s, ci),
             _row("host", 0.0, en.host_kwh, 0.0, ci),
             _row("network", 0.0, en.network_kwh, 0.0, ci),
             _row("storage", 0.0, en.storage_kwh, 0.0, ci),
             _row("facility_overhead", 0.0, en.facility_overhead_kwh, 0.0, ci),
             {"component": "embodied", "seconds": 0.0, "energy_kwh": 0.0, "cost_usd": 0.0,
              "co2e_kg": fp.embodied_t * 1e3}]
    if site.pricing_mode == "owned":  # split cost into capex and electricity rather than by time
        for row in rows:
            row["cost_usd"] = 0.0
        rows.append({"component": "capex", "seconds": 0.0, "energy_kwh": 0.0, "cost_usd": fp.capex_usd,
                     "co2e_kg": 0.0})
        rows.append({"component": "electricity", "seconds": 0.0, "energy_kwh": 0.0, "cost_usd": fp.electricity_usd,
                     "co2e_kg": 0.0})
    return rows


def _basis(scenario: Scenario, site: Site, rt: RunTime, fp: Footprint, throughput_sigma: float) -> Basis:
    """The inputs Monte Carlo propagation varies (simulator.footprint.uncertainty)."""
    return Basis(devices=scenario.cluster.devices, compute_s=rt.compute_s, wall_s=rt.wall_s,
                 time_fixed=scenario.training.device_hours is not None,
                 hardware_tflops=rt.step.hardware_flops_per_s_per_device / 1e12, active_w=fp.active_w,
                 idle_w=fp.idle_w, host_w=site.host_w, tdp_model=scenario.datacenter.power_model == "tdp",
                 pue=site.pue, carbon_intensity_kg_per_kwh=site.carbon_intensity_kg_per_kwh,
                 wue_l_per_kwh=site.wue_l_per_kwh, usd_per_device_hour=site.usd_per_device_hour,
                 usd_per_kwh=site.usd_per_kwh, failures_per_device_hour=rt.failures_per_device_hour,
                 checkpoint_write_s=rt.checkpoint_write_s, restart_s=rt.restart_s,
                 embodied_kg_per_device=fp.embodied_kg_per_device,
                 lifetime_years=site.acc.embodied.lifetime_years.value,
                 dynamic_w_per_tflops=site.eff.dynamic_w_per_tflops, tdp_w=site.eff.tdp_w,
                 infra_w=site.network_w + site.storage_w, throughput_spread=throughput_sigma)


def _hourly_carbon(scenario: Scenario, site: Site, rt: RunTime, fp: Footprint, values: dict,
                   assumptions: list[str]) -> None:
    """co2e_t_hourly against the scenario's hourly grid profile (co2e_t stays the annual average); a
    profile for another region is refused (simulator.footprint.carbon_profile.profile_notes)."""
    from simulator.footprint.carbon_profile import constant_power_mw, load_profile_csv, profile_notes, run_co2e_t

    dc, wall_h = scenario.datacenter, rt.wall_s / 3600
    try:
        prof = load_profile_csv(dc.carbon_profile)
    except ScenarioError as exc:
        raise ScenarioError(f"datacenter.carbon_profile: {exc}") from None
    notes = profile_notes(prof, site.region.id, site.carbon_intensity_kg_per_kwh, site.catalog)
    try:
        start = dc.start_utc or prof.first_hour
        power_mw = constant_power_mw(fp.en.facility_kwh / 1e3, wall_h)
        values["co2e_t_hourly"] = float(run_co2e_t(prof, start, power_mw, wall_h))
    except ScenarioError as exc:
        raise ScenarioError(f"datacenter.carbon_profile: {exc}") from None
    values["run_start_utc"] = str(start)
    assumptions.append("co2e_t_hourly: constant facility power over the run against the hourly profile")
    assumptions.extend(notes)


def estimate_training(scenario: Scenario, site: Site, model, assumptions: list[str]) -> Estimate:
    """A training run's `Estimate`: batch -> plan -> run time -> footprint -> figures (module docstring)."""
    batch_seqs = _batch(scenario, model.seq_len, assumptions)
    batch_tokens = batch_seqs * model.seq_len
    choice = _plan(scenario, site, model, batch_seqs)
    mfpt = flops_per_token(model, scenario.finetune.tuning(model))
    rt = _run_time(scenario, site, choice, mfpt, batch_tokens, assumptions)
    fp = _footprint(scenario, site, rt, assumptions)
    values = _values(scenario, site, model, choice, rt, fp, mfpt, batch_tokens)
    breakdown = _breakdown(site, rt, fp)
    sigma, spread_source = throughput_spread(site.acc, site.catalog)
    basis = _basis(scenario, site, rt, fp, sigma)
    if scenario.datacenter.carbon_profile:
        _hourly_carbon(scenario, site, rt, fp, values, assumptions)
    _note_weak_attention_prior(scenario, site, model, assumptions)
    _note_peak(site, scenario.training.precision, assumptions)
    beyond = tp_beyond_domain_note(site.acc, choice.plan.tp)
    if beyond:
        assumptions.append(beyond)
    if scenario.uncertainty.samples and scenario.uncertainty.throughput is None and not basis.time_fixed:
        assumptions.append(f"uncertainty: throughput log-sigma {sigma:.3f} from the public tables' held-out "
                           f"errors ({spread_source}); set uncertainty.throughput to change it")
    if choice.plan.recompute == "offload":
        assumptions.append("parallelism.recompute = offload: each layer's input, Q, K and V go to host memory and "
                           "back, taken as hidden behind the layer's compute (host-link bandwidth not modelled); "
                           "the attention core, output projection and MLP input projections are recomputed")
    check_physics(values, scenario, assumptions)
    return Estimate(values, choice.plan.to_dict(), breakdown, assumptions, choice.search, basis,
                    uncertainty_bands(scenario, basis))


ATTENTION_SHARE_NOTED = 0.10  # attention's share of the model FLOPs above which its prior is worth a word


def _note_weak_attention_prior(scenario: Scenario, site: Site, model, assumptions: list[str]) -> None:
    """Say so when the step time leans on an attention-kernel efficiency the accelerator's published
    rows barely inform (catalog note, `weak_priors`) and attention is a real share of the FLOPs."""
    acc, tr = site.acc, scenario.training
    if tr.device_hours is not None or "flash_attn_eff" in (scenario.efficiency.perf or {}):
        return
    stack = scenario.parallelism.stack
    if (acc.perf is not None and stack in acc.perf.stacks) or scenario.efficiency.profile:
        return  # another stack's own fitted value, or a calibration profile's
    sibling = site.catalog.accelerators.get(acc.perf.inherited_from) if acc.perf and acc.perf.inherited_from else None
    share = attention_flops_per_token(model) / model_flops_per_token(model)
    note = weak_priors(acc, sibling).get("flash_attn_eff")
    if note and share >= ATTENTION_SHARE_NOTED:
        eff = f"{site.perf.flash_attn_eff:.3g} of peak"
        how = "not identified" if note.startswith("not identified") else "weakly identified"
        which = (f"({eff}, inherited from {sibling.id}) is {how} by {sibling.id}'s published rows"
                 if sibling is not None else f"({eff}) is {how} by its published rows")
        assumptions.append(
            f"performance: attention is {share:.0%} of this run's model FLOPs and {acc.id}'s attention-kernel "
            f"efficiency {which} "
            "(catalog [perf] note): the step time leans on that prior; set efficiency.perf.flash_attn_eff or "
            "calibrate to pin it")


def _note_peak(site: Site, precision: str, assumptions: list[str]) -> None:
    """Quote the catalog's note on the dense peak the step time ran at: a derived figure (a vendor's
    sparse figure halved), a substitute (V100's FP16 rate stored as bf16) or an unverified one."""
    caveat = site.acc.peak_caveat(precision)
    if caveat and not own_rate_missing(site.acc, precision):  # plausibility.py's warning quotes that one
        assumptions.append(f"peak: {caveat}")


def check_compute_bound(busy_device_hours: float, hardware_flops: float, peak_flops_per_s: float,
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
    """The invariants every estimate keeps (docs/design.md section 2): finite figures, HFU <= 1. MFU may
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
