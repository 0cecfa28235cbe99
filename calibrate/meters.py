"""Power meters for calibration windows: one small interface, several devices, fakes and replays.

A meter measures one *window* at a time: the bench runner synchronises the device
(`torch.cuda.synchronize()`), calls `start_window()`, runs k training steps, synchronises again
and calls `end_window()`, which returns a `MeterReading`. Meters never import torch.

- `NvmlMeter` (`calibrate.meters_nvml`): NVIDIA board energy from the cumulative counter
  `nvmlDeviceGetTotalEnergyConsumption` (mJ, Volta+) read at the window edges, plus a 10-20 Hz
  sampler of instant power, counter, SM clock, temperature, utilisation and clock-event (throttle)
  reasons for cross-checks and traces (Zeus `ZeusMonitor` pattern; measurement.md sections 0, 2, 7).
- `FakeMeter` / `FakeNvmlBackend`: the same NvmlMeter logic driven by a scripted power trace on an
  injected clock (100 ms counter quantisation, injectable faults), for tests without a GPU.
- `CodeCarbonMeter` (`calibrate.meters_codecarbon`): one `OfflineEmissionsTracker` per window,
  `pue=1`, never the network; CPU/RAM figures are models, so readings say `estimated=True`.
- `CpuMeter` (`calibrate.meters_codecarbon`, with the other host meter): Linux RAPL package
  counters (`/sys/class/powercap/intel-rapl:N/energy_uj`).
- `ReplayMeter`: windows over a recorded trace CSV (`write_trace_csv` / `read_trace_csv`).
- `NullMeter`: durations only (`--meter none`).

Energy is in joules, power in watts, times in seconds; sample times `t_s` are relative to the
start of the window (or of the recording, for a trace file).
"""

from __future__ import annotations

import csv
import gzip
import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
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
        out = asdict(self)
        if not with_samples:
            out.pop("samples")
        return out


@runtime_checkable
class PowerMeter(Protocol):
    """A meter measuring one window at a time (the caller synchronises the device around calls)."""

    name: str

    def start_window(self) -> None: ...

    def end_window(self) -> MeterReading: ...

    def close(self) -> None: ...


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


# --- traces -----------------------------------------------------------------------------------------
def _open(path: Path, mode: str):
    return gzip.open(path, mode + "t", newline="") if path.suffix == ".gz" else open(path, mode, newline="")


def write_trace_csv(samples: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write samples as CSV (gzip when the name ends in .gz); `read_trace_csv` reads it back."""
    path = Path(path)
    keys = {k for s in samples for k in s}
    cols = list(CORE_COLUMNS) + [c for c in SAMPLE_COLUMNS[3:] if c in keys] + sorted(keys - set(SAMPLE_COLUMNS))
    with _open(path, "w") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for s in samples:
            w.writerow(["" if s.get(c) is None else repr(s[c]) if isinstance(s[c], float) else s[c] for c in cols])
    return path


def _parse(v: str) -> int | float | str | None:
    if v == "":
        return None
    for typ in (int, float):
        try:
            return typ(v)
        except ValueError:
            pass
    return v


def read_trace_csv(path: str | Path) -> list[dict[str, Any]]:
    """Samples from a trace CSV (columns t_s, power_w, energy_j, then optional ones)."""
    path = Path(path)
    try:
        with _open(path, "r") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise MeasurementError(f"cannot read trace {path}: {exc}") from exc
    if rows and not {"t_s", "power_w"} <= set(rows[0]):
        raise MeasurementError(f"trace {path}: expected columns t_s, power_w[, energy_j, ...], got {list(rows[0])}")
    out = []
    for row in rows:
        s = {k: _parse(v) for k, v in row.items() if k in CORE_COLUMNS or v != ""}
        s.setdefault("energy_j", None)
        out.append(s)
    return out


class ReplayMeter:
    """Windows over a recorded trace: replays H100 traces through the same analysis as NvmlMeter.

    Windows come from `windows` ([(t0, t1), ...] in trace time, used in order) or, when none are
    given, from `clock()` read at start_window/end_window (a FakeClock in trace time). The edge
    samples at t0 and t1 are linearly interpolated between recorded samples.
    """

    name = "replay"

    def __init__(self, trace_csv: str | Path | Sequence[dict[str, Any]], windows: Sequence[tuple[float, float]] = (),
                 clock: Callable[[], float] | None = None, sample_hz: float | None = None,
                 thresholds: QualityThresholds = QualityThresholds()):
        self.trace = read_trace_csv(trace_csv) if isinstance(trace_csv, (str, Path)) else list(trace_csv)
        if len(self.trace) < 2:
            raise MeasurementError(f"trace {trace_csv}: needs at least 2 samples, got {len(self.trace)}")
        self._windows, self._clock, self._t0 = list(windows), clock, None
        gaps = sorted(b["t_s"] - a["t_s"] for a, b in zip(self.trace, self.trace[1:]))
        self.nominal_period_s = 1.0 / sample_hz if sample_hz else gaps[len(gaps) // 2]
        self.thresholds = thresholds

    def _at(self, t: float) -> dict[str, Any]:
        tr = self.trace
        if not tr[0]["t_s"] <= t <= tr[-1]["t_s"]:
            raise MeasurementError(f"replay window edge {t} s outside the trace [{tr[0]['t_s']}, {tr[-1]['t_s']}] s")
        i = next(i for i, s in enumerate(tr) if s["t_s"] >= t)
        if tr[i]["t_s"] == t or i == 0:
            return dict(tr[i])
        a, b = tr[i - 1], tr[i]
        w = (t - a["t_s"]) / (b["t_s"] - a["t_s"])
        out = dict(a)
        for k in ("power_w", "energy_j"):
            out[k] = None if a.get(k) is None or b.get(k) is None else a[k] + w * (b[k] - a[k])
        out["t_s"] = t
        return out

    def reading(self, t0: float, t1: float) -> MeterReading:
        """The reading of window [t0, t1] (trace time, s); sample times become relative to t0."""
        if t1 < t0:
            raise MeasurementError(f"replay window end {t1} s before its start {t0} s")
        inner = [dict(s) for s in self.trace if t0 < s["t_s"] < t1]
        samples = [self._at(t0), *inner, self._at(t1)]
        for s in samples:
            s["t_s"] = s["t_s"] - t0
        return reading_from_samples(self.name, samples, nominal_period_s=self.nominal_period_s,
                                    thresholds=self.thresholds, details={"t0_s": t0})

    def start_window(self) -> None:
        if self._t0 is not None:
            raise MeasurementError("start_window called twice without end_window")
        if self._windows:
            self._t0 = self._windows[0][0]
        elif self._clock is not None:
            self._t0 = self._clock()
        else:
            raise MeasurementError("ReplayMeter has no windows left and no clock to take them from")

    def end_window(self) -> MeterReading:
        if self._t0 is None:
            raise MeasurementError("end_window called without start_window")
        t0, self._t0 = self._t0, None
        t1 = self._windows.pop(0)[1] if self._windows else self._clock()
        return self.reading(t0, t1)

    def close(self) -> None:
        self._t0 = None


# --- simple meters ----------------------------------------------------------------------------------
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


# --- factory and lazy re-exports -------------------------------------------------------------------
_NVML_NAMES = {"NvmlMeter", "NvmlBackend", "FakeNvmlBackend", "FakeMeter", "FakeClock", "NvmlNotSupported"}


def __getattr__(name: str):  # lazy, so meters_nvml / meters_codecarbon can import this module first
    if name in _NVML_NAMES:
        from calibrate import meters_nvml
        return getattr(meters_nvml, name)
    if name in ("CodeCarbonMeter", "CpuMeter"):
        from calibrate import meters_codecarbon
        return getattr(meters_codecarbon, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


METER_NAMES = ("auto", "nvml", "codecarbon", "rapl", "none", "fake")


def _build(cls, kw: dict[str, Any], strict: bool):
    sig = inspect.signature(cls)
    if not strict:
        kw = {k: v for k, v in kw.items() if k in sig.parameters}
    try:
        sig.bind_partial(**kw)
    except TypeError as exc:
        raise MeasurementError(f"meter {cls.name!r}: bad options {sorted(kw)}: {exc}") from exc
    return cls(**kw)


def make_meter(name: str, **kw: Any) -> PowerMeter:
    """Build a meter by CLI name: nvml | codecarbon | rapl | none | fake | auto; `kw` go to its class.

    fake: a FakeMeter (300 W unless power_fn= is given) on the real clock with its sampler thread.

    auto: NVML if it initialises, else RAPL if readable, else CodeCarbon; each try's failure is
    kept in `meter.auto_tried`, and a MeasurementError lists them all when nothing works.
    """
    classes = {"nvml": "NvmlMeter", "codecarbon": "CodeCarbonMeter", "rapl": "CpuMeter", "none": NullMeter,
               "fake": "FakeMeter"}
    key = str(name).strip().lower()
    if key == "auto":
        tried: list[str] = []
        for cand in ("nvml", "rapl", "codecarbon"):
            cls = classes[cand] if not isinstance(classes[cand], str) else __getattr__(classes[cand])
            try:
                meter = _build(cls, kw, strict=False)
            except MeasurementError as exc:
                tried.append(f"{cand}: {exc}")
                continue
            meter.auto_tried = tried
            return meter
        raise MeasurementError("no power meter works here (" + " | ".join(tried) + "); use --meter none")
    if key not in classes:
        raise MeasurementError(f"unknown meter {name!r}: expected one of {', '.join(METER_NAMES)}")
    cls = classes[key] if not isinstance(classes[key], str) else __getattr__(classes[key])
    if key == "fake":  # from the CLI/bench: real time and the sampler thread (tests pass a FakeClock)
        kw.setdefault("clock", time.monotonic)
    return _build(cls, kw, strict=True)
