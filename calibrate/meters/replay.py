"""Recorded power traces: trace CSV files and `ReplayMeter`, which replays one through the window analysis.

`write_trace_csv` / `read_trace_csv` store a window's samples (columns t_s, power_w, energy_j, then
the optional ones; gzip when the name ends in .gz). `ReplayMeter` cuts windows out of a recorded
trace (an H100 trace, or one a run wrote) and analyses them exactly as `NvmlMeter` analyses live
samples (`calibrate.meters.base.reading_from_samples`), so meter logic is tested on real data.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from calibrate.errors import MeasurementError
from calibrate.meters.base import CORE_COLUMNS, SAMPLE_COLUMNS, MeterReading, QualityThresholds, reading_from_samples


def _open(path: Path, mode: str):
    """A text handle on `path` (gzip-compressed when its name ends in .gz)."""
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
    """A CSV cell as int, float or text ('' is None)."""
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
        """The sample at trace time t, interpolated linearly between the recorded ones around it."""
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
