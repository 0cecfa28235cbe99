"""Calibration profiles: the fit written as TOML the simulator reads (`[efficiency] profile`).

The file validates as `simulator.system.efficiency.ProfileFile`: the accelerator it applies to, the
fitted `perf` parameters (overriding `PerfParams`: what sets the step time), the power curve, fit
quality (with the best measured MFU, as information), and for a device the catalog does not have
(a CPU), the device itself in the catalog's accelerator format.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

from calibrate.errors import MeasurementError
from calibrate.fit import FIT_BOUNDS, FitReport, accelerator_for, usable
from calibrate.records import RunRecord
from simulator.system.efficiency import MEASURED_MFU_KEY, ProfileFile, resolve_efficiency


def build_profile(report: FitReport, records: list[RunRecord], origin: str) -> dict[str, Any]:
    recs = usable(records)
    acc = accelerator_for(recs[0])
    mfus = [r.mfu for r in recs if r.mfu]
    if report.power is not None:
        idle_w, dyn, power_note = report.power.idle_w, report.power.dynamic_w_per_tflops, "power fitted"
    else:
        prior = resolve_efficiency(acc)
        idle_w, dyn, power_note = prior.idle_w, prior.dynamic_w_per_tflops, "no energy readings: power from the catalog prior"
    quality: dict[str, Any] = {"n_configs": report.n_configs,
                               "step_time_loco_mape_pct": round(report.step_loco_mape, 3)}
    if mfus:  # information only: the simulator takes time from `perf`, never from an MFU
        quality[MEASURED_MFU_KEY] = min(1.0, max(mfus))
    if report.energy_loco_pct:
        quality["energy_loco_mape_pct"] = round(report.energy_loco_mape, 3)
    if report.power is not None and report.power.memory_term:
        quality.update({f"power2_{k}": v for k, v in report.power.memory_term.items()})
    for name, (lo, hi) in report.intervals.items():
        quality[f"{name}_p05"] = lo
        quality[f"{name}_p95"] = hi
    profile: dict[str, Any] = {
        "schema_version": 1,
        "accelerator": acc.id,
        "source": f"trainsim calibrate fit of {report.n_configs} configs in {origin} on {recs[0].device.get('name')}, "
                  f"{dt.date.today().isoformat()}",
        "idle_w": idle_w,
        "dynamic_w_per_tflops": dyn,
        "notes": f"step time from the fitted perf parameters; {power_note}",
        "perf": {n: getattr(report.params, n) for n in FIT_BOUNDS},
        "quality": quality,
    }
    profile["perf"].update(_collective_fit(records, acc, quality))
    if not recs[0].device.get("catalog_id"):
        profile["device"] = acc.model_dump(exclude_none=True, exclude={"override", "schema_version"})
    ProfileFile.model_validate(profile)  # what we write is what the simulator reads
    return profile


def _collective_fit(records: list[RunRecord], acc, quality: dict[str, Any]) -> dict[str, float]:
    """Scale-up fabric efficiency and per-step latency from multi-GPU all-reduce probes.

    The probe's alpha-beta fit (calibrate.collective_probe.fit_alpha_beta) gives bus bandwidth B_bus and
    latency alpha; the simulator's ring all-reduce moves 2 (n-1)/n S at eta x the catalog's
    per-direction fabric bandwidth and waits 2 (n-1) steps, so eta = B_bus / B_fabric and the
    per-step latency is alpha / (2 (n-1)). Only single-node groups (the scale-up domain) count.
    """
    from calibrate.collective_probe import fit_alpha_beta

    probes = [r for r in records if r.status == "ok" and r.world_size > 1 and r.collectives
              and r.software.get("distributed", {}).get("nnodes", 1) == 1]
    if not probes or acc.scale_up.gb_per_s_bidir is None or not records[0].device.get("catalog_id"):
        return {}
    fabric = acc.scale_up.gb_per_s_bidir.value / 2 * 1e9
    try:
        fit = fit_alpha_beta(probes[-1].collectives, "all_reduce")
    except MeasurementError:
        return {}
    if not fit.get("busbw_gb_per_s"):
        return {}
    n = probes[-1].world_size
    quality["allreduce_busbw_gb_per_s"] = fit["busbw_gb_per_s"]
    return {"scaleup_eff": min(1.0, fit["busbw_gb_per_s"] * 1e9 / fabric),
            "scaleup_latency_s": max(0.0, fit["alpha_s"]) / (2 * (n - 1))}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps(profile: dict[str, Any]) -> str:
    """TOML text: top-level scalars, then one table per nested mapping (inline tables inside)."""
    lines = [f"{k} = {_toml(v)}" for k, v in profile.items() if not isinstance(v, dict)]
    for key, table in profile.items():
        if isinstance(table, dict):
            lines.append(f"\n[{key}]")
            lines += [f"{k} = {_toml(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def write_profile(path: str | Path, profile: dict[str, Any]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = dumps(profile)
    ProfileFile.model_validate(tomllib.loads(text))
    p.write_text(text, encoding="utf-8")
    return p


def read_profile(path: str | Path) -> ProfileFile:
    from simulator.system.efficiency import load_profile
    from simulator.errors import ScenarioError

    try:
        return load_profile(path)
    except ScenarioError as exc:
        raise MeasurementError(str(exc).replace("efficiency.profile: ", "")) from None
