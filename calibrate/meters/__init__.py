"""Power meters for calibration windows: one small interface, several devices, fakes and replays.

The package's modules import only `base`, never each other or this module (no import cycle):

- `base`: the interface (`PowerMeter`, `MeterReading`), the quality analysis of a window's samples,
  `FakeClock`, and `NullMeter`: durations only (`--meter none`).
- `nvml`: `NvmlMeter`, NVIDIA board energy from the cumulative counter
  `nvmlDeviceGetTotalEnergyConsumption` (mJ, Volta+) read at the window edges, plus a 10-20 Hz
  sampler of instant power, counter, SM clock, temperature, utilisation and clock-event (throttle)
  reasons for cross-checks and traces (Zeus `ZeusMonitor` pattern; measurement.md sections 0, 2, 7);
  `FakeMeter` / `FakeNvmlBackend`, the same NvmlMeter logic driven by a scripted power trace on an
  injected clock (100 ms counter quantisation, injectable faults), for tests without a GPU.
- `codecarbon`: the host meters. `CodeCarbonMeter`, one `OfflineEmissionsTracker` per window,
  `pue=1`, never the network (CPU/RAM figures are models, so readings say `estimated=True`);
  `CpuMeter`, Linux RAPL package counters (`/sys/class/powercap/intel-rapl:N/energy_uj`).
- `replay`: `ReplayMeter`, windows over a recorded trace CSV (`write_trace_csv` / `read_trace_csv`).

This module chooses a meter by its CLI name (`make_meter`, `METER_NAMES`) and re-exports the names
above, so `from calibrate.meters import X` is the one import the rest of the trainer needs.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from calibrate.errors import MeasurementError
from calibrate.meters.base import (
    CORE_COLUMNS,
    FLAGS,
    HW_POWER_BRAKE,
    HW_SLOWDOWN,
    HW_THERMAL,
    POWER_CAP_MASK,
    SAMPLE_COLUMNS,
    SW_POWER_CAP,
    SW_THERMAL,
    THERMAL_MASK,
    FakeClock,
    MeterReading,
    NullMeter,
    PowerMeter,
    QualityThresholds,
    analyse_samples,
    reading_from_samples,
    trapezoid,
)
from calibrate.meters.codecarbon import CodeCarbonMeter, CpuMeter
from calibrate.meters.nvml import FakeMeter, FakeNvmlBackend, NvmlBackend, NvmlMeter, NvmlNotSupported
from calibrate.meters.replay import ReplayMeter, read_trace_csv, write_trace_csv

__all__ = [
    "CORE_COLUMNS", "FLAGS", "HW_POWER_BRAKE", "HW_SLOWDOWN", "HW_THERMAL", "METER_NAMES", "POWER_CAP_MASK",
    "SAMPLE_COLUMNS", "SW_POWER_CAP", "SW_THERMAL", "THERMAL_MASK", "CodeCarbonMeter", "CpuMeter", "FakeClock",
    "FakeMeter", "FakeNvmlBackend", "MeterReading", "NullMeter", "NvmlBackend", "NvmlMeter", "NvmlNotSupported",
    "PowerMeter", "QualityThresholds", "ReplayMeter", "analyse_samples", "make_meter", "read_trace_csv",
    "reading_from_samples", "trapezoid", "write_trace_csv",
]

METER_NAMES = ("auto", "nvml", "codecarbon", "rapl", "none", "fake")
METER_CLASSES: dict[str, type] = {"nvml": NvmlMeter, "codecarbon": CodeCarbonMeter, "rapl": CpuMeter,
                                  "none": NullMeter, "fake": FakeMeter}
AUTO_ORDER = ("nvml", "rapl", "codecarbon")  # what `--meter auto` tries, first that opens wins


def _build(cls: type, kw: dict[str, Any], strict: bool) -> PowerMeter:
    """`cls(**kw)`; bad options are a MeasurementError (not `strict`: options `cls` lacks are dropped)."""
    sig = inspect.signature(cls)
    if not strict:
        kw = {k: v for k, v in kw.items() if k in sig.parameters}
    try:
        sig.bind_partial(**kw)
    except TypeError as exc:
        raise MeasurementError(f"meter {cls.name!r}: bad options {sorted(kw)}: {exc}") from exc
    return cls(**kw)


def _auto_meter(kw: dict[str, Any]) -> PowerMeter:
    """The first meter of AUTO_ORDER that opens, with the failures before it in `meter.auto_tried`."""
    tried: list[str] = []
    for cand in AUTO_ORDER:
        try:
            meter = _build(METER_CLASSES[cand], kw, strict=False)
        except MeasurementError as exc:
            tried.append(f"{cand}: {exc}")
            continue
        meter.auto_tried = tried
        return meter
    raise MeasurementError("no power meter works here (" + " | ".join(tried) + "); use --meter none")


def make_meter(name: str, **kw: Any) -> PowerMeter:
    """Build a meter by CLI name: nvml | codecarbon | rapl | none | fake | auto; `kw` go to its class.

    fake: a FakeMeter (300 W unless power_fn= is given) on the real clock with its sampler thread.

    auto: NVML if it initialises, else RAPL if readable, else CodeCarbon; each try's failure is
    kept in `meter.auto_tried`, and a MeasurementError lists them all when nothing works.
    """
    key = str(name).strip().lower()
    if key == "auto":
        return _auto_meter(kw)
    if key not in METER_CLASSES:
        raise MeasurementError(f"unknown meter {name!r}: expected one of {', '.join(METER_NAMES)}")
    if key == "fake":  # from the CLI/bench: real time and the sampler thread (tests pass a FakeClock)
        kw.setdefault("clock", time.monotonic)
    return _build(METER_CLASSES[key], kw, strict=True)
