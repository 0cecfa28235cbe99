"""Fit the simulator's performance and power parameters to measured runs.

Step time: the simulator's own single-device model (`simulator.execution.steptime.step_parts`, plan
tp = pp = dp = 1) is the model being fitted, so a profile means exactly what the simulator does
with it. Parameters: GEMM efficiency ceiling and half-efficiency size, attention efficiency,
memory-bandwidth efficiency (the per-layer overhead is collinear with the half-size: FIT_BOUNDS). Residuals are log(predicted / measured) step
times, minimised with `scipy.optimize.least_squares` (bounded, robust soft-L1 loss), as
../shared/reference/measurement.md sec. 5.4 recommends for relative errors.

Power: P = idle_w + dynamic_w_per_tflops x achieved hardware TFLOP/s, the FLOP term of the energy
roofline (Choi et al. IPDPS 2013), by non-negative weighted linear least squares
(`scipy.optimize.lsq_linear`, weights 1/P for relative residuals); the simulator uses this curve.
The two-term fit with the memory-traffic proxy (activation elements/s, measurement.md 5.4) is
reported in the profile's quality table for comparison.

Quality: leave-one-config-out (LOCO) errors of step time and energy per step, and bootstrap
(resampling configurations) 5-95% intervals of every fitted parameter.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares, lsq_linear

from calibrate.errors import MeasurementError
from calibrate.records import RunRecord
from hardware_catalog import Accelerator, load_catalog
from simulator.model.shapes import ModelSpec
from simulator.system.perf_params import PerfParams
from simulator.execution.moe_comm import MoeSetup
from simulator.execution.plan import Plan, PlanGrid
from simulator.execution.steptime import step_parts

# layer_overhead_s is not fitted from whole-step timings: under the curve a GEMM takes
# flops / (peak * max) + half * 1e9 / (peak * max), so the half-efficiency size already acts as a
# fixed cost per GEMM, collinear with a per-layer overhead (a fixed number of GEMMs per layer).
# The half-size (Calculon's shape) absorbs both; the overhead stays 0.
FIT_BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_eff_max": (0.02, 1.0),
    "gemm_half_gflop": (1e-4, 1e3),
    "flash_attn_eff": (0.02, 1.0),
    "mem_bw_eff": (0.02, 1.0),
}
# Further parameters a fit over many-device published runs can identify (calibrate/published.py).
EXTRA_BOUNDS: dict[str, tuple[float, float]] = {
    "layer_overhead_s": (1e-7, 3e-3),
    "fp8_gemm_eff": (0.3, 1.0),
    "grouped_gemm_eff": (0.1, 1.0),
    "moe_imbalance": (1.0, 2.0),
    "scaleout_eff": (0.05, 1.0),
    "scaleup_eff": (0.05, 1.0),
    "elementwise_bytes": (5.0, 200.0),
    "scaleout_latency_s": (1e-6, 1e-3),
}
ALL_BOUNDS = {**FIT_BOUNDS, **EXTRA_BOUNDS}
LOG_PARAMS = {"gemm_half_gflop", "layer_overhead_s", "elementwise_bytes", "scaleout_latency_s"}


def device_accelerator(device: dict[str, Any], peak_flops: float) -> Accelerator:
    """A catalog-format entry for a measured device the catalog lacks (e.g. this CPU)."""
    src = f"measured by trainsim calibrate on {device.get('host', 'this machine')}"
    unknown = {"source": "not measured by the bench", "verified": False}
    peak = {"value": peak_flops / 1e12, "source": src + " (matmul probe, a lower bound of the peak)"}
    bw = device.get("mem_bw_gb_per_s") or 10.0
    dev_id = re.sub(r"[^a-z0-9.\-]", "-", str(device["name"]).lower()).strip("-.") or "measured-device"
    return Accelerator.model_validate({
        "id": dev_id, "name": device["name"], "vendor": "measured", "kind": "gpu" if device["kind"] == "cuda" else "npu",
        "launch_year": {"value": 2026, **unknown},
        "peak_tflops_dense": {"bf16": peak, "tf32": peak},
        "memory": {"hbm_gb": {"value": device.get("memory_gb") or 16.0, **unknown},
                   "hbm_tb_per_s": {"value": bw / 1e3, "source": src + " (copy probe)"}},
        "power": {"tdp_w": {"value": 300.0, **unknown}, "idle_w": {"value": 10.0, **unknown}},
        "scale_up": {"name": "none", "domain_devices": {"value": 1, "source": src}},
        "scale_out": {},
        "node": {"devices_per_node": {"value": 1, "source": src}, "host_power_w_per_device": {"value": 1.0, **unknown}},
        "prices": {},
        "embodied": {"lifetime_years": {"value": 5, "source": "LLMCarbon (Faiz et al., ICLR 2024) default"}},
        "efficiency": {"hfu_at_tdp": {"value": 0.7, **unknown}},
    })


def accelerator_for(record: RunRecord) -> Accelerator:
    cid = record.device.get("catalog_id")
    if cid:
        return load_catalog().accelerator(cid)
    return device_accelerator(record.device, record.peak_flops or 1e12)


def _spec(record: RunRecord) -> ModelSpec:
    from calibrate.workload import WorkloadConfig

    return WorkloadConfig.from_dict(record.config).model_spec()


def _precision(record: RunRecord) -> str:
    return "bf16" if record.config.get("dtype", "bf16") == "bf16" else "tf32"


@dataclass(frozen=True)
class Case:
    """One measured step: a run record of ours, or a published row (calibrate/published.py).

    `group` is its provenance for held-out errors (a record's config name; a published row's
    source and table)."""

    model: ModelSpec
    grid: PlanGrid
    acc: Accelerator
    precision: str
    batch: int
    measured_s: float
    flash: bool = True
    overlap: bool = True
    cp_comm: str = "p2p"
    group: str = ""
    software: str = ""  # the software stack, for parameters fitted per stack
    moe: MoeSetup = MoeSetup()  # MoE dispatch and token dropping (simulator.execution.moe_comm)


def cases_for(records: list[RunRecord]) -> list[Case]:
    cases = []
    for r in records:
        batch = int(r.config["batch_size"])
        plan = Plan(tp=1, pp=1, dp=1, microbatch=batch, zero=0, recompute="none", sequence_parallel=False)
        cases.append(Case(_spec(r), PlanGrid.from_plans([plan]), accelerator_for(r), _precision(r), batch,
                           float(r.step_time_s)))
    return cases


def predict_step_times(cases: list[Case], params: PerfParams | dict[str, PerfParams]) -> np.ndarray:
    """Step time of every case under `params` (one set, or one per `Case.software`).

    A case whose grid holds several plans (fields its source leaves to the framework's tuning, e.g.
    the pipeline schedule) takes the fastest of them, as the search does."""
    pick = (lambda c: params[c.software]) if isinstance(params, dict) else (lambda c: params)  # noqa: E731
    return np.array([float(np.min(step_parts(c.model, c.grid, c.acc, pick(c), c.precision, c.batch, flash=c.flash,
                                             overlap=c.overlap, cp_comm=c.cp_comm,
                                             stack=c.software or "megatron", moe=c.moe).total_s)) for c in cases])


def _to_vec(params: PerfParams, names: tuple[str, ...]) -> np.ndarray:
    def v(n):
        x = getattr(params, n)
        return np.log(max(x, ALL_BOUNDS[n][0])) if n in LOG_PARAMS else x
    return np.array([v(n) for n in names])


def _from_vec(base: PerfParams, names: tuple[str, ...], vec: np.ndarray) -> PerfParams:
    values = {n: float(np.exp(v)) if n in LOG_PARAMS else float(v) for n, v in zip(names, vec, strict=True)}
    return dataclasses.replace(base, **values)


def prior_residuals(names: tuple[str, ...], vec: np.ndarray, centre: np.ndarray, weight: float) -> np.ndarray:
    """The prior's residuals, weight x log(x / x_prior) for every parameter (`fit_step_time`): the
    fit's vector holds size-like parameters (LOG_PARAMS) as logs already, efficiencies as they are."""
    linear = np.array([n not in LOG_PARAMS for n in names])

    def log_of(v):
        return np.where(linear, np.log(np.maximum(v, 1e-12)), v)
    return weight * (log_of(np.asarray(vec, dtype=float)) - log_of(np.asarray(centre, dtype=float)))


def fit_step_time(cases: list[Case], names: tuple[str, ...] = tuple(FIT_BOUNDS),
                  start: PerfParams | None = None, prior: PerfParams | None = None, prior_weight: float = 0.0,
                  bounds: dict[str, tuple[float, float]] | None = None, max_nfev: int | None = None) -> PerfParams:
    """Bounded robust least squares of log step time over `names` (module docstring).

    With `prior_weight` > 0, each parameter is also pulled towards `prior` by a residual
    prior_weight x log(x / x_prior), a relative distance for every parameter (an efficiency of 0.1
    against a prior of 0.3 is as far as a size 3x its prior): a weak Gaussian prior that keeps
    parameters the data cannot identify at their sourced values. `bounds` narrows ALL_BOUNDS
    per parameter (e.g. the GEMM ceiling at most the measured maximum achievable matmul)."""
    fitted = fit_step_time_by_software(cases, names, (), start, prior, prior_weight, bounds, max_nfev)
    return next(iter(fitted.values()))


def fit_step_time_by_software(cases: list[Case], shared: tuple[str, ...], per_software: tuple[str, ...],
                              start: PerfParams | None = None, prior: PerfParams | None = None,
                              prior_weight: float = 0.0, bounds: dict[str, tuple[float, float]] | None = None,
                              max_nfev: int | None = None) -> dict[str, PerfParams]:
    """`fit_step_time` with `per_software` parameters fitted separately for each `Case.software`
    (the hardware's parameters are shared; software stacks differ in attention kernels, fusion and
    per-layer overheads). Returns one PerfParams per software present in `cases`."""
    base = start or prior or PerfParams()
    softwares = sorted({c.software for c in cases})
    slots = [(None, n) for n in shared] + [(sw, n) for sw in softwares for n in per_software]
    box = {**ALL_BOUNDS, **(bounds or {})}
    names = tuple(n for _, n in slots)
    lo = np.array([np.log(box[n][0]) if n in LOG_PARAMS else box[n][0] for n in names])
    hi = np.array([np.log(box[n][1]) if n in LOG_PARAMS else box[n][1] for n in names])
    measured = np.array([c.measured_s for c in cases])
    x0 = np.clip(_to_vec(base, names), lo + 1e-9, hi - 1e-9)
    centre = np.clip(_to_vec(prior or base, names), lo, hi)

    def params_of(vec) -> dict[str, PerfParams]:
        out = {}
        for sw in softwares:
            idx = [i for i, (owner, _) in enumerate(slots) if owner in (None, sw)]
            out[sw] = _from_vec(base, tuple(names[i] for i in idx), vec[idx])
        return out

    def residuals(vec):
        fit = np.log(predict_step_times(cases, params_of(vec)) / measured)
        return np.concatenate([fit, prior_residuals(names, vec, centre, prior_weight)]) if prior_weight else fit

    sol = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.05, x_scale="jac", max_nfev=max_nfev)
    return params_of(sol.x)


@dataclass(frozen=True)
class PowerFit:
    """P = idle_w + dynamic_w_per_tflops x TFLOP/s (the simulator's curve), and the two-term fit
    P = idle + kF x TFLOP/s + kA x G activation elements/s (the energy roofline's memory term), reported."""

    idle_w: float
    dynamic_w_per_tflops: float
    memory_term: dict[str, float] | None = None


def power_points(records: list[RunRecord]) -> tuple[np.ndarray, np.ndarray]:
    tflops, power = [], []
    for r in records:
        if r.mean_power_w is not None and r.step_time_s and r.hardware_flops_per_step:
            tflops.append(r.hardware_flops_per_step / r.step_time_s / 1e12)
            power.append(r.mean_power_w)
    return np.array(tflops), np.array(power)


def _activation_rate(records: list[RunRecord]) -> np.ndarray:
    """G activation elements per second (measurement.md 5.4's memory-traffic proxy)."""
    from calibrate.workload import WorkloadConfig, activation_elements_per_step

    return np.array([activation_elements_per_step(WorkloadConfig.from_dict(r.config)) / r.step_time_s / 1e9
                     for r in records if r.mean_power_w is not None and r.step_time_s and r.hardware_flops_per_step])


def fit_power(records: list[RunRecord]) -> PowerFit:
    """Non-negative relative least squares (module docstring); needs two distinct throughputs."""
    tflops, power = power_points(records)
    if len(power) < 2 or np.ptp(tflops) <= 0:
        raise MeasurementError("calibrate fit: power needs at least two configurations with energy readings "
                               "and different throughputs (run with a meter: --meter nvml|codecarbon|rapl)")
    w = 1.0 / power
    sol = lsq_linear(np.stack([np.ones_like(tflops), tflops], axis=1) * w[:, None], power * w, bounds=(0, np.inf))
    memory_term = None
    if len(power) >= 4:
        act = _activation_rate(records)
        two = lsq_linear(np.stack([np.ones_like(tflops), tflops, act], axis=1) * w[:, None], power * w,
                         bounds=(0, np.inf))
        memory_term = {"idle_w": float(two.x[0]), "w_per_tflops": float(two.x[1]),
                       "w_per_gelem_per_s": float(two.x[2])}
    return PowerFit(max(float(sol.x[0]), 1e-3), float(sol.x[1]), memory_term)


@dataclass(frozen=True)
class FitReport:
    params: PerfParams
    power: PowerFit | None
    step_loco_pct: dict[str, float]  # record name -> held-out % error of step time
    energy_loco_pct: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    n_configs: int

    @property
    def step_loco_mape(self) -> float:
        return float(np.mean(np.abs(list(self.step_loco_pct.values())))) if self.step_loco_pct else float("nan")

    @property
    def energy_loco_mape(self) -> float:
        return float(np.mean(np.abs(list(self.energy_loco_pct.values())))) if self.energy_loco_pct else float("nan")


def usable(records: list[RunRecord]) -> list[RunRecord]:
    """Successful single-device records with a step time."""
    return [r for r in records if r.status == "ok" and r.parallel == "single" and r.step_time_s]


# Evaluations allowed to a leave-one-out or bootstrap refit. It starts at the full fit, and a well-posed
# subset converges in 4-18 evaluations (the shipped CPU sweep, calibrate/data/example_cpu_sweep); a subset with
# fewer configurations than fitted parameters cannot identify them and wandered to scipy's 100 x n limit
# (400), which made a 4-configuration fit take 15 s instead of 4.
REFIT_MAX_NFEV = 60


def fit_records(records: list[RunRecord], bootstrap: int = 30, seed: int = 0) -> FitReport:
    """Fit step time (and power when energy was measured), with LOCO errors and bootstrap intervals."""
    recs = usable(records)
    if len(recs) < 3:
        raise MeasurementError(f"calibrate fit: {len(recs)} usable configurations; at least 3 are needed "
                               "(successful, single-device runs)")
    if len({r.device.get("name") for r in recs}) > 1:
        raise MeasurementError("calibrate fit: the records come from several devices; fit one device at a time")
    cases = cases_for(recs)
    params = fit_step_time(cases)
    has_energy = sum(r.mean_power_w is not None for r in recs) >= 3
    power = fit_power(recs) if has_energy else None

    step_loco, energy_loco = {}, {}
    for i, r in enumerate(recs):  # leave one configuration out
        rest = [c for j, c in enumerate(cases) if j != i]
        p_i = fit_step_time(rest, start=params, max_nfev=REFIT_MAX_NFEV)
        t_pred = float(predict_step_times([cases[i]], p_i)[0])
        step_loco[r.config["name"]] = 100.0 * (t_pred / cases[i].measured_s - 1.0)
        if power is not None and r.energy_per_step_j:
            pw = fit_power([x for j, x in enumerate(recs) if j != i])
            hw_tflops = r.hardware_flops_per_step / t_pred / 1e12
            e_pred = (pw.idle_w + pw.dynamic_w_per_tflops * hw_tflops) * t_pred
            energy_loco[r.config["name"]] = 100.0 * (e_pred / r.energy_per_step_j - 1.0)

    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {n: [] for n in FIT_BOUNDS}
    for _ in range(bootstrap):
        idx = rng.integers(0, len(cases), len(cases))
        p_b = fit_step_time([cases[k] for k in idx], start=params, max_nfev=REFIT_MAX_NFEV)
        for n in FIT_BOUNDS:
            samples[n].append(getattr(p_b, n))
    intervals = {n: (float(np.percentile(v, 5)), float(np.percentile(v, 95))) for n, v in samples.items() if v}
    return FitReport(params, power, step_loco, energy_loco, intervals, len(recs))
