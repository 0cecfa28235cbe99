"""Efficiency parameters the time and power models use, and where they came from.

Three sources, most specific first: a scenario's `[efficiency] mfu`, a calibration profile
(`[efficiency] profile = "file.toml"`, written by `trainsim calibrate fit`), the catalog prior.

Power model (energy roofline, Choi et al. IPDPS 2013, FLOP term only):
    P_device = idle_w + dynamic_w_per_tflops * achieved_hardware_tflops, capped at tdp_w.
The catalog prior sets dynamic_w_per_tflops so that P reaches TDP at `hfu_at_tdp` of peak.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hardware_catalog.schema import Accelerator
from simulator.errors import ScenarioError
from simulator.perf_params import check_overrides

# Transformer Engine FP8 end-to-end speed-up over BF16 for large GPT training; NVIDIA reports
# 1.3-1.5x at the model level (NeMo/Megatron performance pages). Unverified here: a prior.
FP8_SPEEDUP_OVER_BF16 = 1.3


class ProfileFile(BaseModel):
    """A calibration profile (`trainsim calibrate fit`): fitted efficiency and power for one device.

    `perf` overrides `PerfParams` fields; `device` (catalog accelerator format) describes a device
    the catalog does not have, e.g. the CPU a profile was measured on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = 1
    accelerator: str
    source: str = Field(min_length=3)
    mfu: float = Field(gt=0, le=1)
    idle_w: float = Field(gt=0)
    dynamic_w_per_tflops: float = Field(ge=0)
    notes: str | None = None
    perf: dict[str, float] = {}
    quality: dict[str, float | int | str] = {}
    device: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _perf_keys(self) -> ProfileFile:
        check_overrides(self.perf, "perf")
        return self


@dataclass(frozen=True)
class Efficiency:
    """Resolved efficiency: MFU and the power-curve parameters.

    `mfu_bf16` is a prior or fit measured against the bf16 peak; `mfu_override` (from the
    scenario) is MFU against the dense peak of the scenario's own precision (DESIGN sec. 2).
    """

    mfu_bf16: float
    idle_w: float
    dynamic_w_per_tflops: float
    tdp_w: float
    source: str
    mfu_override: float | None = None

    def model_flops_per_s(self, acc: Accelerator, precision: str) -> float:
        """Achieved model FLOP/s per device for `precision`."""
        if self.mfu_override is not None:
            return self.mfu_override * acc.peak_flops(precision)
        bf16 = self.mfu_bf16 * acc.peak_flops("bf16")
        if precision == "fp8":
            return min(bf16 * FP8_SPEEDUP_OVER_BF16, self.mfu_bf16 * acc.peak_flops("fp8"))
        if precision == "tf32":
            return self.mfu_bf16 * acc.peak_flops("tf32")
        return bf16

    def device_power_w(self, hardware_tflops: float) -> float:
        """Average device power (W) at an achieved hardware throughput (TFLOP/s per device)."""
        return min(self.tdp_w, self.idle_w + self.dynamic_w_per_tflops * hardware_tflops)


def load_profile(path: str | Path) -> ProfileFile:
    """Read a calibration profile TOML; ScenarioError names the file and field."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
        return ProfileFile.model_validate(data)
    except OSError as exc:
        raise ScenarioError(f"efficiency.profile: cannot read {p} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"efficiency.profile: {p} is not valid TOML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ScenarioError(f"efficiency.profile: {p}: {loc}: {first['msg']}") from None


def resolve_efficiency(acc: Accelerator, mfu: float | None, profile: ProfileFile | None,
                       profile_path: str = "") -> Efficiency:
    """Efficiency for `acc`: scenario MFU override > calibration profile > catalog prior."""
    tdp_w = acc.power.tdp_w.value
    idle_w = acc.power.idle_w.value
    peak_tflops = acc.peak_tflops_dense["bf16"].value
    dyn = (tdp_w - idle_w) / (peak_tflops * acc.efficiency.hfu_at_tdp.value)
    eff = Efficiency(acc.efficiency.mfu.value, idle_w, dyn, tdp_w, f"catalog prior ({acc.id})")
    if profile is not None:
        if profile.accelerator != acc.id and profile.accelerator not in acc.aliases:
            raise ScenarioError(
                f"efficiency.profile: {profile_path} was fitted on '{profile.accelerator}', "
                f"but cluster.accelerator is '{acc.id}'"
            )
        eff = Efficiency(profile.mfu, profile.idle_w, profile.dynamic_w_per_tflops, tdp_w, f"profile {profile_path}")
    if mfu is not None:
        eff = Efficiency(eff.mfu_bf16, eff.idle_w, eff.dynamic_w_per_tflops, tdp_w, "mfu from scenario", mfu)
    return eff
