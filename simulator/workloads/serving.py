"""Inference serving for a period: throughput per device, fleet, energy, CO2e and cost per token.

A scenario with a `[serving]` section (and no `[training]` needed) goes through `estimate()` to
`estimate_serving`, which returns an `Estimate` with the same headline keys as a training run
(docs/design.md section 4: the serving period as `wall_clock_days`, `train_flops` = 0) plus serving keys
(`usd_per_mtok`, `kwh_per_mtok`, `kgco2e_per_mtok`, `tokens_per_s_per_device`, `devices_needed`, ...).

Continuous batching (Yu et al. 2022, Orca; Kwon et al. 2023, vLLM) on one replica of `tp` devices
with `b` sequences in flight: every decode step emits b tokens, and each sequence needs one prefill
per `output_tokens` output tokens. The prefill's forward pass emits the first of them (TTFT; vLLM and
TensorRT-LLM count it among the output tokens), so a sequence takes output - 1 decode steps, and per
output token on average:

    t_cycle(b)        = (output - 1) / output x t_decode(b, context = prompt + output / 2)
                        + b / output x t_prefill(prompt)
    t_prefill(prompt) = prefill time of a chunk of max(1, chunk_tokens // prompt) prompts / that count
    tokens/s (output) = b / t_cycle(b)         per-user tokens/s = 1 / t_cycle(b)

(inference.py for t_decode and t_prefill). The batch is the one with the most tokens/s among those
whose KV cache (at the full context) fits beside the weights and whose per-user speed meets
`min_tokens_per_s_per_user`; all batch sizes are evaluated at once with numpy. Without
`serving.tp`, every TP group (power of two within the scale-up domain, or the node for PCIe cards:
`tp_reach`) that holds a sequence and
divides the fleet is tried, and the one with the most output tokens/s per device wins. The fleet is
`cluster.devices` (whole replicas); with `requests_per_s` or `output_tokens_per_day` it must cover
the traffic's peak (`peak_to_average` x the mean), and it runs at utilisation = mean traffic /
capacity: busy at full-load power that share of the time, idle the rest (energy.run_energy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware_catalog.schema import Accelerator
from simulator.footprint import cost, energy
from simulator.errors import InfeasiblePlanError, ScenarioError
from simulator.execution.inference import (
    DEFAULT_PREFILL_CHUNK_TOKENS,
    DTYPE_BYTES,
    DecodeStep,
    compute_peak_dtype,
    compute_peak_flops,
    decode_step,
    dtype_bytes,
    kv_cache_bytes,
    kv_shards,
    prefill_flops,
    prefill_time_s,
)
from simulator.execution.collectives import tp_beyond_domain_note, tp_reach
from simulator.execution.memory import OVERHEAD_GB
from simulator.model.shapes import ModelSpec
from simulator.system.perf_params import PerfParams
from simulator.result import Basis, Estimate, uncertainty_bands

HOURS_PER_MONTH = 365.25 * 24 / 12  # 730.5 h
MAX_BATCH = 2048  # upper end of the batch search when the memory allows more


def _tp_options(model: ModelSpec, acc: Accelerator) -> list[int]:
    """Powers of two within the part's reach for TP (scale-up domain or node, `tp_reach`) that split
    the heads and the KV heads evenly."""
    return [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= tp_reach(acc) and model.heads % t == 0
            and (model.kv_heads % t == 0 or t % model.kv_heads == 0)]


def _kv_per_seq_per_device(model: ModelSpec, tp: int, context: int, kv_dtype: str) -> float:
    return kv_cache_bytes(model, context, 1, DTYPE_BYTES[kv_dtype]) / kv_shards(model, tp)


def max_batch(model: ModelSpec, acc: Accelerator, tp: int, context: int, dtype: str, kv_dtype: str) -> int:
    """Sequences whose KV cache at `context` fits beside the weights and the framework overhead."""
    free = acc.memory.hbm_gb.value * 1e9 - OVERHEAD_GB * 1e9 - DTYPE_BYTES[dtype] * model.params_total() / tp
    return int(min(MAX_BATCH, max(0.0, free) // _kv_per_seq_per_device(model, tp, context, kv_dtype)))


def choose_tp(model: ModelSpec, acc: Accelerator, context: int, dtype: str, kv_dtype: str) -> int:
    """The smallest TP group (power of two within `tp_reach`) that holds one sequence."""
    for tp in _tp_options(model, acc):
        if max_batch(model, acc, tp, context, dtype, kv_dtype) >= 1:
            return tp
    need = DTYPE_BYTES[dtype] * model.params_total() / 1e9
    raise InfeasiblePlanError(
        f"serving.tp: {model.name} ({need:.0f} GB of {dtype} weights) does not fit on the {tp_reach(acc)} "
        f"{acc.id} (a scale-up domain or node, {acc.memory.hbm_gb.value:g} GB each) a TP group may span; use a "
        "lower serving.dtype or a larger accelerator")


@dataclass(frozen=True)
class BatchCurve:
    """Throughput and per-user speed of one replica for each batch size (arrays over `batch`)."""

    batch: np.ndarray
    decode: DecodeStep
    prefill_s: float
    cycle_s: np.ndarray
    decode_share: float  # decode steps per output token: (output - 1) / output (module docstring)

    @property
    def tokens_per_s(self) -> np.ndarray:
        return self.batch / self.cycle_s

    @property
    def tokens_per_s_per_user(self) -> np.ndarray:
        return 1.0 / self.cycle_s


def batch_curve(model: ModelSpec, acc: Accelerator, tp: int, batch, prompt_tokens: int, output_tokens: int,
                perf: PerfParams, dtype: str = "bf16", kv_dtype: str = "bf16",
                prefill_chunk_tokens: int = DEFAULT_PREFILL_CHUNK_TOKENS) -> BatchCurve:
    """t_cycle(b) of the module docstring for every batch size in `batch` (memory not checked here)."""
    b = np.asarray(batch)
    dec = decode_step(model, acc, tp, b, prompt_tokens + output_tokens // 2, perf, dtype, kv_dtype, check_memory=False)
    chunk = max(1, prefill_chunk_tokens // prompt_tokens)
    t_prefill = prefill_time_s(model, acc, tp, prompt_tokens, chunk, perf, dtype) / chunk
    decode_share = (output_tokens - 1) / output_tokens  # the prefill emits the first token
    return BatchCurve(b, dec, t_prefill, decode_share * dec.time_s + b / output_tokens * t_prefill, decode_share)


def _best_batch(model: ModelSpec, acc: Accelerator, tp: int, sv, perf: PerfParams):
    """(tp, curve, index, note): the batch with the most tokens/s meeting the per-user speed on `tp`."""
    ctx_max = sv.prompt_tokens + sv.output_tokens
    b_max = max_batch(model, acc, tp, ctx_max, sv.dtype, sv.kv_dtype)
    if b_max < 1:
        raise InfeasiblePlanError(f"serving.tp: {model.name} with a {ctx_max}-token context does not fit on tp = {tp} "
                                  f"x {acc.id} ({acc.memory.hbm_gb.value:g} GB each); raise serving.tp")
    if sv.batch is not None and sv.batch > b_max:
        raise InfeasiblePlanError(f"serving.batch: {sv.batch} sequences of {ctx_max} tokens need more KV cache than "
                                  f"fits beside the weights on tp = {tp} x {acc.id}: at most {b_max}")
    batches = np.array([sv.batch]) if sv.batch else np.arange(1, min(b_max, sv.max_batch) + 1)
    curve = batch_curve(model, acc, tp, batches, sv.prompt_tokens, sv.output_tokens, perf, sv.dtype, sv.kv_dtype,
                        sv.prefill_chunk_tokens)
    ok = curve.tokens_per_s_per_user >= sv.min_tokens_per_s_per_user
    note = ""
    if not ok.any():
        note = (f"serving: no batch meets {sv.min_tokens_per_s_per_user:g} tokens/s per user on tp = {tp}; "
                f"batch = {batches[0]} ({curve.tokens_per_s_per_user[0]:.1f} tokens/s per user)")
        ok = batches == batches[0]
    i = int(np.flatnonzero(ok)[np.argmax(curve.tokens_per_s[ok])])
    return tp, curve, i, note


def _tp_candidates(model: ModelSpec, acc: Accelerator, sv, devices: int) -> list[int]:
    """The scenario's serving.tp, checked; else every TP group that holds a sequence and divides the
    fleet (the most tokens/s per device wins later)."""
    ctx_max = sv.prompt_tokens + sv.output_tokens
    if sv.tp is not None:
        if sv.tp not in _tp_options(model, acc):
            raise ScenarioError(f"serving.tp: {sv.tp} must be a power of two within {acc.id}'s reach for tensor "
                                f"parallelism ({tp_reach(acc)} devices: its scale-up domain or node) that "
                                f"divides the {model.heads} heads and divides or is divided by the {model.kv_heads} "
                                "KV heads")
        if devices % sv.tp:
            raise ScenarioError(f"cluster.devices: {devices} is not a whole number of replicas of tp = {sv.tp}")
        return [sv.tp]
    choose_tp(model, acc, ctx_max, sv.dtype, sv.kv_dtype)  # raises when no TP group holds the model
    candidates = [t for t in _tp_options(model, acc) if devices % t == 0
                  and max_batch(model, acc, t, ctx_max, sv.dtype, sv.kv_dtype) >= 1]
    if not candidates:
        raise ScenarioError(f"cluster.devices: {devices} devices cannot hold a replica of {model.name} "
                            f"(smallest TP group: {choose_tp(model, acc, ctx_max, sv.dtype, sv.kv_dtype)})")
    return candidates


def _fleet_load(sv, replica_tokens_per_s: float, tp: int, devices: int) -> tuple[float, float | None, int, float]:
    """(fleet capacity in output tokens/s, mean traffic or None, devices the peak needs, utilisation);
    a peak above capacity is refused with the devices it needs."""
    replicas = devices // tp
    capacity = replicas * replica_tokens_per_s  # output tokens/s of the fleet at full load
    traffic = sv.traffic_tokens_per_s()
    peak = traffic * sv.peak_to_average if traffic is not None else None
    devices_needed = tp * math.ceil(peak / replica_tokens_per_s) if peak is not None else devices
    if peak is not None and peak > capacity * (1 + 1e-12):
        raise InfeasiblePlanError(
            f"cluster.devices: {devices} devices ({replicas} replicas of tp = {tp}) serve at most {capacity:,.0f} "
            f"output tokens/s; the traffic's peak needs {peak:,.0f}: use at least {devices_needed} devices")
    return capacity, traffic, devices_needed, traffic / capacity if traffic is not None else 1.0


def _breakdown(parts: dict[str, float], utilisation: float, hours: float, en, capex: float, electricity: float,
               ci: float, embodied_t: float) -> list[dict[str, Any]]:
    """The busy time split by the cycle's parts, then idle capacity, host, network, storage, facility,
    electricity and embodied carbon; device time (rental or amortised capex) is split by time,
    electricity is its own row."""
    busy_s, cycle = utilisation * hours * 3600, sum(parts.values())
    rows = [{"component": k, "seconds": busy_s * v / cycle, "energy_kwh": en.devices_compute_kwh * v / cycle,
             "cost_usd": capex * utilisation * v / cycle, "co2e_kg": en.devices_compute_kwh * v / cycle * ci}
            for k, v in parts.items()]
    return rows + [
        {"component": "idle_capacity", "seconds": (1 - utilisation) * hours * 3600, "energy_kwh": en.devices_idle_kwh,
         "cost_usd": capex * (1 - utilisation), "co2e_kg": en.devices_idle_kwh * ci},
        {"component": "host", "seconds": 0.0, "energy_kwh": en.host_kwh, "cost_usd": 0.0, "co2e_kg": en.host_kwh * ci},
        {"component": "network", "seconds": 0.0, "energy_kwh": en.network_kwh, "cost_usd": 0.0,
         "co2e_kg": en.network_kwh * ci},
        {"component": "storage", "seconds": 0.0, "energy_kwh": en.storage_kwh, "cost_usd": 0.0,
         "co2e_kg": en.storage_kwh * ci},
        {"component": "facility_overhead", "seconds": 0.0, "energy_kwh": en.facility_overhead_kwh, "cost_usd": 0.0,
         "co2e_kg": en.facility_overhead_kwh * ci},
        {"component": "electricity", "seconds": 0.0, "energy_kwh": 0.0, "cost_usd": electricity, "co2e_kg": 0.0},
        {"component": "embodied", "seconds": 0.0, "energy_kwh": 0.0, "cost_usd": 0.0, "co2e_kg": embodied_t * 1e3},
    ]


def _site_values(scenario, model: ModelSpec, site, achieved_fps: float, tp: int, batch: int,
                 ctx_max: int) -> dict[str, Any]:
    """The figures a serving estimate shares with training's keys: what was run where, utilisation
    (no recomputation in inference: MFU = HFU), memory per device, and where the figures came from."""
    sv, acc = scenario.serving, site.acc
    peak_flops = compute_peak_flops(acc, sv.dtype)
    mem_gb = (DTYPE_BYTES[sv.dtype] * model.params_total() / tp
              + _kv_per_seq_per_device(model, tp, ctx_max, sv.kv_dtype) * batch) / 1e9 + OVERHEAD_GB
    return {
        "name": scenario.name, "model": model.name, "accelerator": acc.id, "devices": scenario.cluster.devices,
        "region": site.region.id, "precision": sv.dtype, "params_total": model.params_total(),
        "params_active": model.params_active(), "workload": "serving", "global_batch_tokens": batch,
        "train_flops": 0.0, "mfu": achieved_fps / peak_flops, "hfu": achieved_fps / peak_flops,
        "model_tflops_per_device": achieved_fps / 1e12, "hardware_tflops_per_device": achieved_fps / 1e12,
        "goodput": 1.0, "memory_gb_per_device": mem_gb, "memory_capacity_gb": acc.memory.hbm_gb.value,
        "pue": site.pue, "carbon_intensity_kg_per_kwh": site.carbon_intensity_kg_per_kwh,
        "efficiency_source": site.time_source or f"performance model: {site.perf.source}",
        "power_source": site.eff.source,
    }


@dataclass(frozen=True)
class _Replica:
    """The chosen replica: its TP group, its batch curve and the chosen batch (index `i` into the curve)."""

    tp: int
    curve: BatchCurve
    i: int
    plans_evaluated: int

    @property
    def batch(self) -> int:
        return int(self.curve.batch[self.i])


def _choose_replica(model: ModelSpec, acc: Accelerator, sv, perf: PerfParams, devices: int,
                    assumptions: list[str]) -> _Replica:
    """The TP group and batch meeting the per-user speed first, then with the most tokens/s per device
    (ties: the smaller TP, listed first)."""
    options = [_best_batch(model, acc, t, sv, perf) for t in _tp_candidates(model, acc, sv, devices)]
    tp, curve, i, note = max(options, key=lambda o: (not o[3], float(o[1].tokens_per_s[o[2]]) / o[0]))
    if note:
        assumptions.append(note)
    return _Replica(tp, curve, i, sum(len(o[1].batch) for o in options))


@dataclass(frozen=True)
class _FleetRun:
    """The fleet over the period: load, power, energy and cost (module docstring, last paragraph)."""

    capacity: float  # output tokens/s at full load
    traffic: float | None  # mean output tokens/s asked for, None: full load
    devices_needed: int
    utilisation: float
    flops_per_out_token: float
    full_tflops: float  # TFLOP/s per device at full load
    active_w: float
    idle_w: float
    hours: float
    en: energy.EnergyParts
    capex_usd: float
    electricity_usd: float

    @property
    def served_tokens_per_s(self) -> float:
        return self.capacity * self.utilisation


def _run_fleet(scenario, model: ModelSpec, site, rep: _Replica) -> _FleetRun:
    """Load the fleet with the traffic, then its power (busy at full load `utilisation` of the period), energy
    and cost."""
    sv, eff, devices, i = scenario.serving, site.eff, scenario.cluster.devices, rep.i
    capacity, traffic, devices_needed, utilisation = _fleet_load(sv, float(rep.curve.tokens_per_s[i]), rep.tp, devices)
    flops_per_out_token = (rep.curve.decode_share * float(rep.curve.decode.flops_per_device[i]) * rep.tp / rep.batch
                           + prefill_flops(model, sv.prompt_tokens) / sv.output_tokens)
    full_tflops = capacity * flops_per_out_token / devices / 1e12
    tdp_model = scenario.datacenter.power_model == "tdp"
    active_w = eff.tdp_w if tdp_model else eff.device_power_w(full_tflops)
    idle_w = eff.tdp_w if tdp_model else eff.idle_w
    hours = sv.months * HOURS_PER_MONTH
    en = energy.run_energy(devices, utilisation * hours, (1 - utilisation) * hours, active_w, idle_w, site.host_w,
                           site.pue, site.network_w, site.storage_w)
    capex, electricity = cost.run_cost_usd(devices * hours, site.usd_per_device_hour, en.facility_kwh, site.usd_per_kwh)
    return _FleetRun(capacity, traffic, devices_needed, utilisation, flops_per_out_token, full_tflops, active_w,
                     idle_w, hours, en, capex, electricity)


def _serving_values(scenario, model: ModelSpec, site, rep: _Replica, run: _FleetRun) -> dict[str, Any]:
    """The estimate's values: the keys shared with training (_site_values and the footprint), then serving's."""
    sv, acc, devices, i, dec = scenario.serving, site.acc, scenario.cluster.devices, rep.i, rep.curve.decode
    en, hours, served = run.en, run.hours, run.served_tokens_per_s
    device_hours = devices * hours
    cost_usd = run.capex_usd + run.electricity_usd
    mtok = served * hours * 3600 / 1e6
    emb = acc.embodied
    emb_kg = emb.kgco2e_per_device.value if emb.kgco2e_per_device else 0.0
    co2e_t = energy.operational_co2e_t(en.facility_kwh, site.carbon_intensity_kg_per_kwh)
    achieved_fps = served * run.flops_per_out_token / devices  # FLOP/s per device averaged over the period
    per_mtok = (lambda x: x / mtok) if mtok else (lambda x: math.inf)
    return {
        **_site_values(scenario, model, site, achieved_fps, rep.tp, rep.batch, sv.prompt_tokens + sv.output_tokens),
        "tokens": served * hours * 3600, "model_flops_per_token": run.flops_per_out_token,
        "step_time_s": float(rep.curve.cycle_s[i]), "tokens_per_s": served, "wall_clock_days": hours / 24,
        "device_hours": device_hours, "power_w_per_device": run.active_w,
        "energy_it_mwh": en.it_kwh / 1e3, "energy_mwh": en.facility_kwh / 1e3, "co2e_t": co2e_t,
        "embodied_co2e_t": energy.embodied_co2e_t(devices, emb_kg, hours, emb.lifetime_years.value),
        "usd_per_device_hour": cost_usd / device_hours, "cost_usd": cost_usd,
        "water_m3": energy.water_m3(en.it_kwh, site.wue_l_per_kwh),
        # serving figures
        "tp": rep.tp, "batch": rep.batch, "replicas": devices // rep.tp, "devices_needed": run.devices_needed,
        "utilisation": run.utilisation, "capacity_tokens_per_s": run.capacity,
        "tokens_per_s_per_device": run.capacity / devices,
        "tokens_per_s_per_user": float(rep.curve.tokens_per_s_per_user[i]),
        "decode_step_s": float(dec.time_s[i]), "prefill_s": rep.curve.prefill_s,
        "ttft_s": prefill_time_s(model, acc, rep.tp, sv.prompt_tokens, 1, site.perf, sv.dtype),
        "decode_memory_bound": bool(dec.memory_bound[i]), "output_mtok": mtok,
        "usd_per_mtok": per_mtok(cost_usd), "kwh_per_mtok": per_mtok(en.facility_kwh),
        "kgco2e_per_mtok": per_mtok(co2e_t * 1e3), "plans_evaluated": rep.plans_evaluated,
    }


def _serving_basis(scenario, site, run: _FleetRun) -> Basis:
    """Monte Carlo basis: the period is fixed; the fleet is busy `utilisation` of it at full-load power."""
    acc, eff, devices, period_s = site.acc, site.eff, scenario.cluster.devices, run.hours * 3600
    emb = acc.embodied
    emb_kg = emb.kgco2e_per_device.value if emb.kgco2e_per_device else 0.0
    return Basis(devices, run.utilisation * period_s, period_s, True, run.full_tflops, run.active_w, run.idle_w,
                 site.host_w, scenario.datacenter.power_model == "tdp", site.pue, site.carbon_intensity_kg_per_kwh,
                 site.wue_l_per_kwh, site.usd_per_device_hour, site.usd_per_kwh, 0.0, 0.0, 0.0, emb_kg,
                 emb.lifetime_years.value, eff.dynamic_w_per_tflops, eff.tdp_w, busy_fraction=run.utilisation,
                 infra_w=site.network_w + site.storage_w)


def estimate_serving(scenario, model: ModelSpec, site, assumptions: list[str]):
    """The serving `Estimate` of `scenario` (module docstring) at the resolved `site` (simulator.site):
    the TP group and batch with the most tokens/s per device, the fleet load, then the footprint."""
    sv = scenario.serving
    dtype_bytes(sv.dtype, "serving.dtype")
    dtype_bytes(sv.kv_dtype, "serving.kv_dtype")
    rep = _choose_replica(model, site.acc, sv, site.perf, scenario.cluster.devices, assumptions)
    run = _run_fleet(scenario, model, site, rep)
    values = _serving_values(scenario, model, site, rep, run)
    dec = rep.curve.decode
    share = rep.curve.decode_share  # decode steps per output token
    parts = {"decode": share * float(np.maximum(dec.memory_time_s, dec.compute_time_s)[rep.i]),
             "tp_comm": share * float(dec.comm_time_s[rep.i]), "kernel_overhead": share * dec.overhead_time_s,
             "prefill": rep.batch / sv.output_tokens * rep.curve.prefill_s}
    breakdown = _breakdown(parts, run.utilisation, run.hours, run.en, run.capex_usd, run.electricity_usd,
                           site.carbon_intensity_kg_per_kwh, values["embodied_co2e_t"])
    plan = {"tp": rep.tp, "pp": 1, "cp": 1, "ep": 1, "dp": values["replicas"], "microbatch": rep.batch, "zero": 0,
            "recompute": "none"}
    if run.traffic is None:
        assumptions.append("serving: no traffic given (requests_per_s or output_tokens_per_day): the fleet runs at full load")
    caveat = site.acc.peak_caveat(compute_peak_dtype(site.acc, sv.dtype))
    if caveat:
        assumptions.append(f"peak: {caveat}")
    beyond = tp_beyond_domain_note(site.acc, rep.tp)
    if beyond:
        assumptions.append(beyond)
    if dec.memory_bound[rep.i]:
        assumptions.append(energy.memory_bound_note("serving power", run.active_w, site.eff.tdp_w,
                                                    scenario.cluster.devices * run.utilisation * run.hours, site.pue,
                                                    run.en.facility_kwh / 1e3))
    basis = _serving_basis(scenario, site, run)
    return Estimate(values, plan, breakdown, assumptions, basis=basis, uncertainty=uncertainty_bands(scenario, basis))
