"""The meter interface and what every meter shares: readings, window analysis, clocks, NullMeter.

A meter measures one *window* at a time: the bench runner synchronises the device
(`torch.cuda.synchronize()`), calls `start_window()`, runs k training steps, synchronises again
and calls `end_window()`, which returns a `MeterReading`. Meters never import torch.

This module is the small interface of the Zeus pattern and depends on no other meter: the
`PowerMeter` protocol, `MeterReading`, the quality analysis of a window's samples
(`analyse_samples`, `reading_from_samples`, `QualityThresholds`, `FLAGS`), `FakeClock` (time that
moves only when told, for fakes and replays in tests) and `NullMeter` (durations only). The device
meters (`nvml`, `codecarbon`) and the trace replay (`replay`) import from here; the package
`__init__` chooses among them.

Energy is in joules, power in watts, times in seconds; sample times `t_s` are relative to the
start of the window (or of the recording, for a trace file).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from calibrate.errors import MeasurementError

# NVML clock-event ("throttle") reason bits (nvmlClocksEventReason*, nvml.h); no pynvml import needed.
SW_POWER_CAP, HW_SLOWDOWN, SW_THERMAL, HW_THERMAL, HW_POWER_BRAKE = 0x4, 0x8, 0x20, 0x40, 0x80
POWER_CAP_MASK = SW_POWER_CAP | HW_POWER_BRAKE
THERMAL_MASK = SW_THERMAL | HW_THERMAL

SAMPLE_COLUMNS = ("t_s", "power_w", "energy_j", "clock_mhz", "temp_c", "util_pct", "throttle_reasons")
CORE_COLUMNS = SAMPLE_COLUMNS[:3]

#: Quality flags a reading can carry (see `analyse_samples`).
FLAGS = ("counter_vs_samples_disagree", "power_capped", "thermal_drift", "sampler_stalled",
         "few_samples", "counter_reset", "no_energy_counter", "counter_read_error", "sampler_error")


@dataclass(frozen=True)
class MeterReading:
    """What one meter measured over one window.

    energy_j: window energy in J (None when the meter measures none); duration_s: window length;
    mean_power_w = energy_j / duration_s; samples: dicts with t_s (s from window start), power_w,
    energy_j (cumulative counter, J) and optionally clock_mhz, temp_c, util_pct, throttle_reasons;
    flags: quality flags (`FLAGS`); estimated: True when the figure is a model (e.g. CodeCarbon
    CPU TDP/load mode, RAM DIMM model) rather than a sensor; details: JSON-friendly extras.
    """

    meter: str
    energy_j: float | None
    duration_s: float
    mean_power_w: float | None
    samples: list[dict[str, Any]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    estimated: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_samples: bool = False) -> dict[str, Any]:
        """The reading as JSON-friendly data (its samples only when `with_samples`)."""
        out = asdict(self)
        if not with_samples:
            out.pop("samples")
        return out


@runtime_checkable
class PowerMeter(Protocol):
    """A meter measuring one window at a time (the caller synchronises the device around calls)."""

    name: str

    def start_window(self) -> None:
        """Begin a window (the device is synchronised just before)."""

    def end_window(self) -> MeterReading:
        """End the window begun last (the device is synchronised just before) and return its reading."""

    def close(self) -> None:
        """Release the device, threads and files the meter holds."""


@dataclass(frozen=True)
class QualityThresholds:
    """Thresholds of the quality flags (measurement.md 7.2 item 7)."""

    disagree_rel: float = 0.05      # |E_counter - E_samples| / E_counter
    temp_rise_c: float = 5.0        # max temperature minus start temperature
    stall_factor: float = 3.0       # largest sample gap / nominal sampling period
    min_samples: int = 10
    power_cap_min_frac: float = 0.1  # fraction of samples with a power-cap reason


def trapezoid(ts: Sequence[float], ys: Sequence[float]) -> float:
    """Trapezoid integral of ys over ts (J when ys are W and ts are s)."""
    return sum(0.5 * (ys[i] + ys[i + 1]) * (ts[i + 1] - ts[i]) for i in range(len(ts) - 1))


def analyse_samples(samples: Sequence[dict[str, Any]], *, nominal_period_s: float | None,
                    thresholds: QualityThresholds = QualityThresholds()
                    ) -> tuple[float | None, list[str], dict[str, Any]]:
    """Window energy, quality flags and details from a window's samples (edges included).

    Energy is the counter difference between the edge samples; it falls back to the trapezoid of
    the power samples when the GPU has no counter, an edge read failed, or the counter went down
    (driver reload / wrap). Returns (energy_j, flags, details).
    """
    flags: list[str] = []
    pts = [s for s in samples if s.get("power_w") is not None]
    ts, ps = [s["t_s"] for s in pts], [s["power_w"] for s in pts]
    e_samples = trapezoid(ts, ps) if len(pts) >= 2 else None
    counter = [s.get("energy_j") for s in samples]
    known = [e for e in counter if e is not None]
    e_counter, source = None, "samples"
    if len(samples) < 2 or not known:
        flags.append("no_energy_counter")
    elif counter[0] is None or counter[-1] is None:
        flags.append("counter_read_error")
    elif any(b < a for a, b in zip(known, known[1:])):
        flags.append("counter_reset")
    else:
        e_counter, source = counter[-1] - counter[0], "counter"
        if e_samples is not None and (abs(e_counter - e_samples) > thresholds.disagree_rel * e_counter
                                      or (e_counter == 0 and e_samples > 0)):
            flags.append("counter_vs_samples_disagree")
    energy = e_counter if source == "counter" else e_samples
    all_ts = [s["t_s"] for s in samples]
    gaps = [b - a for a, b in zip(all_ts, all_ts[1:])]
    max_gap = max(gaps, default=0.0)
    if nominal_period_s and max_gap > thresholds.stall_factor * nominal_period_s:
        flags.append("sampler_stalled")
    if len(samples) < thresholds.min_samples:
        flags.append("few_samples")
    reasons = [int(s["throttle_reasons"]) for s in samples if s.get("throttle_reasons") is not None]
    frac_cap = sum(1 for r in reasons if r & POWER_CAP_MASK) / len(reasons) if reasons else 0.0
    frac_thermal = sum(1 for r in reasons if r & THERMAL_MASK) / len(reasons) if reasons else 0.0
    if frac_cap > thresholds.power_cap_min_frac:
        flags.append("power_capped")
    temps = [s["temp_c"] for s in samples if s.get("temp_c") is not None]
    if (temps and max(temps) - temps[0] > thresholds.temp_rise_c) or frac_thermal > 0:
        flags.append("thermal_drift")
    details: dict[str, Any] = {
        "energy_source": source, "energy_counter_j": e_counter, "energy_samples_j": e_samples,
        "n_samples": len(samples), "max_gap_s": max_gap, "nominal_period_s": nominal_period_s,
        "n_counter_updates": sum(1 for a, b in zip(known, known[1:]) if b != a),
        "power_max_w": max(ps, default=None), "frac_power_capped": frac_cap,
        "frac_thermal_throttle": frac_thermal,
        "frac_hw_slowdown": sum(1 for r in reasons if r & HW_SLOWDOWN) / len(reasons) if reasons else 0.0,
        "temp_start_c": temps[0] if temps else None, "temp_end_c": temps[-1] if temps else None,
        "temp_max_c": max(temps, default=None)}
    for key, out in (("clock_mhz", "sm_clock_mean_mhz"), ("util_pct", "util_mean_pct")):
        vals = [s[key] for s in samples if s.get(key) is not None]
        details[out] = sum(vals) / len(vals) if vals else None
    return energy, flags, details


def reading_from_samples(meter: str, samples: list[dict[str, Any]], *, nominal_period_s: float | None,
                         thresholds: QualityThresholds = QualityThresholds(),
                         details: dict[str, Any] | None = None, extra_flags: Iterable[str] = ()
                         ) -> MeterReading:
    """A `MeterReading` from a window's samples (see `analyse_samples`)."""
    energy, flags, info = analyse_samples(samples, nominal_period_s=nominal_period_s, thresholds=thresholds)
    flags += [f for f in extra_flags if f not in flags]
    duration = samples[-1]["t_s"] - samples[0]["t_s"] if samples else 0.0
    mean = energy / duration if energy is not None and duration > 0 else None
    return MeterReading(meter=meter, energy_j=energy, duration_s=duration, mean_power_w=mean,
                        samples=samples, flags=flags, estimated=False, details={**info, **(details or {})})


class FakeClock:
    """A clock that moves only when told (`advance`); call it to read the time in s."""

    def __init__(self, t: float = 0.0):
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t


class NullMeter:
    """No energy, only window durations (`--meter none`)."""

    name = "none"

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock, self._t0 = clock, None

    def start_window(self) -> None:
        self._t0 = self._clock()

    def end_window(self) -> MeterReading:
        if self._t0 is None:
            raise MeasurementError("end_window called without start_window")
        duration, self._t0 = self._clock() - self._t0, None
        return MeterReading(meter=self.name, energy_j=None, duration_s=duration, mean_power_w=None)

    def close(self) -> None:
        self._t0 = None
