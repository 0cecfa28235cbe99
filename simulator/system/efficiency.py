"""Power-model parameters, calibration profiles, and where the step time came from.

The step time always comes from the performance model (`simulator.execution.steptime` via
`simulator.execution.performance`) with `PerfParams` from, most specific last: the catalog's priors, a
calibration profile's `perf` (`[efficiency] profile = "file.toml"`, written by `trainsim calibrate
fit`), the scenario's `[efficiency] perf`; or from `training.device_hours` when the scenario gives
it (`time_source` names which). There is no MFU input: a measured MFU in a profile is information
only (`quality.best_measured_mfu`).

Power parameters come from a calibration profile, else the catalog prior.

Power model (energy roofline, Choi et al. IPDPS 2013, FLOP term only):
    P_device = idle_w + dynamic_w_per_tflops * achieved_hardware_tflops, capped at tdp_w.
The catalog prior sets dynamic_w_per_tflops so that P reaches TDP at `hfu_at_tdp` of peak.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hardware_catalog.files import loads_toml, read_user_text
from hardware_catalog.schema import Accelerator
from simulator.errors import ScenarioError
from simulator.system.perf_params import PerfParams, check_overrides

log = logging.getLogger(__name__)

# Where an older profile's top-level `mfu` (best measured MFU) now lives: fit quality, information only.
MEASURED_MFU_KEY = "best_measured_mfu"


class ProfileFile(BaseModel):
    """A calibration profile (`trainsim calibrate fit`): fitted efficiency and power for one device.

    `perf` overrides `PerfParams` fields; `device` (catalog accelerator format) describes a device
    the catalog does not have, e.g. the CPU a profile was measured on. `quality` is information
    (fit errors, intervals, the best measured MFU); the simulator reads no time from it.

    Profiles written before the performance model had a top-level `mfu`; it still loads, moved to
    `quality.best_measured_mfu` with a note, and the step time ignores it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    schema_version: Literal[1] = 1
    accelerator: str
    source: str = Field(min_length=3)
    idle_w: float = Field(gt=0)
    dynamic_w_per_tflops: float = Field(ge=0)
    notes: str | None = None
    perf: dict[str, float] = {}
    quality: dict[str, float | int | str] = {}
    device: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_mfu(cls, data: Any) -> Any:
        """An older profile's top-level `mfu`: kept as information in `quality`, not used for time."""
        if not isinstance(data, dict) or "mfu" not in data:
            return data
        data = dict(data)
        mfu = data.pop("mfu")
        quality = dict(data.get("quality") or {})
        quality.setdefault(MEASURED_MFU_KEY, mfu)
        data["quality"] = quality
        note = (f"top-level mfu = {mfu} (older profile format) moved to quality.{MEASURED_MFU_KEY}: "
                "information only, the step time comes from the performance model and `perf`")
        data["notes"] = f"{data['notes']}; {note}" if data.get("notes") else note
        log.info("calibration profile: %s", note)
        return data

    @model_validator(mode="after")
    def _perf_keys(self) -> ProfileFile:
        check_overrides(self.perf, "perf")
        return self


@dataclass(frozen=True)
class Efficiency:
    """Resolved power-curve parameters (the energy roofline of the module docstring) and their source.

    Time is not here: the step time comes from the performance model (`time_source`).
    """

    idle_w: float
    dynamic_w_per_tflops: float
    tdp_w: float
    source: str

    def device_power_w(self, hardware_tflops: float) -> float:
        """Average device power (W) at an achieved hardware throughput (TFLOP/s per device)."""
        return min(self.tdp_w, self.idle_w + self.dynamic_w_per_tflops * hardware_tflops)


def load_profile(path: str | Path) -> ProfileFile:
    """Read a calibration profile TOML; ScenarioError names the file and field."""
    p = Path(path)
    try:
        text = read_user_text(p, "calibration profile", ScenarioError)
        data = loads_toml(text, str(p), ScenarioError)
        return ProfileFile.model_validate(data)
    except ScenarioError as exc:
        raise ScenarioError(f"efficiency.profile: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ScenarioError(f"efficiency.profile: {p}: {loc}: {first['msg']}") from None


def resolve_efficiency(acc: Accelerator, profile: ProfileFile | None = None,
                       profile_path: str | None = "") -> Efficiency:
    """Power parameters for `acc`: calibration profile > catalog prior."""
    tdp_w = acc.power.tdp_w.value
    idle_w = acc.power.idle_w.value
    peak_tflops = acc.peak_tflops_dense["bf16"].value
    dyn = (tdp_w - idle_w) / (peak_tflops * acc.efficiency.hfu_at_tdp.value)
    eff = Efficiency(idle_w, dyn, tdp_w, f"catalog prior ({acc.id})")
    if profile is not None:
        if profile.accelerator != acc.id and profile.accelerator not in acc.aliases:
            raise ScenarioError(
                f"efficiency.profile: {profile_path} was fitted on '{profile.accelerator}', "
                f"but cluster.accelerator is '{acc.id}'"
            )
        eff = Efficiency(profile.idle_w, profile.dynamic_w_per_tflops, tdp_w, f"calibration profile {profile_path}")
    return eff


def time_source(perf: PerfParams, profile: ProfileFile | None = None, profile_path: str | None = "",
                scenario_perf: dict[str, float] | None = None, device_hours_given: bool = False) -> str:
    """What set the step time (the `efficiency_source` output): `training.device_hours` when the
    scenario gives it, else the performance model with its parameters, most specific first
    (scenario `efficiency.perf`, a calibration profile's `perf`, the priors' `PerfParams.source`)."""
    if device_hours_given:
        return "training.device_hours"
    layers = []
    if scenario_perf:
        layers.append(f"scenario efficiency.perf ({', '.join(sorted(scenario_perf))})")
    if profile is not None and profile.perf:
        layers.append(f"calibration profile {profile_path}")
    layers.append(f"performance model: {perf.source}")
    return " over ".join(layers)
