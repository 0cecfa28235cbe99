"""Trend of frontier training compute: published FLOP over time and its doubling time (issue 16 item 3).

Data: `simulator/data/frontier_compute.csv`, one row per frontier language model (the largest published
training compute of its time): model, organisation, date, training FLOP, whether the figure is an
estimate (Epoch AI's, where the developer published none), whether it was checked against a stored
copy, and its source.

Fit: ordinary least squares of log10(FLOP) on the date in years, as Epoch AI fits its trends ("a simple
log-linear regression ... using the slope coefficient's standard errors to estimate a 90% confidence
interval", Epoch AI data insight, 2024-06-19). The slope s (orders of magnitude per year) gives the
growth 10^s per year and the doubling time 12 log10(2) / s months; the 90% interval of the doubling
time comes from the slope's t-interval with n - 2 degrees of freedom (a faster slope, a shorter
doubling).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import date
from importlib import resources

import numpy as np
from scipy import stats

from simulator.errors import DataFileError

COLUMNS = ("model", "organization", "date", "training_flop", "estimated", "verified", "source")
LEVEL = 0.90  # confidence of the doubling-time interval, as Epoch reports its trends


@dataclass(frozen=True)
class Point:
    model: str
    organization: str
    date: date
    training_flop: float
    estimated: bool
    verified: bool
    source: str

    @property
    def year(self) -> float:
        """The date as a decimal year."""
        start = date(self.date.year, 1, 1)
        days = (date(self.date.year + 1, 1, 1) - start).days
        return self.date.year + (self.date - start).days / days


@dataclass(frozen=True)
class TrendFit:
    """log10(FLOP) = intercept + slope x year, with the doubling time and its interval (months)."""

    slope: float  # orders of magnitude per year
    intercept: float
    slope_stderr: float
    r2: float
    n: int
    doubling_months: float
    doubling_low: float  # 90% interval: the doubling time at the steeper slope
    doubling_high: float  # and at the shallower slope (inf when the slope may be flat)

    @property
    def growth_per_year(self) -> float:
        return 10 ** self.slope

    def predict(self, year: float | np.ndarray) -> np.ndarray:
        """Fitted FLOP at decimal year(s)."""
        return 10 ** (self.intercept + self.slope * np.asarray(year, dtype=float))


def _flag(value: str, where: str, key: str) -> bool:
    if value not in ("true", "false"):
        raise DataFileError(f"{where}: key '{key}': expected true or false, got {value!r}")
    return value == "true"


def _point(row: dict[str, str], where: str) -> Point:
    try:
        when = date.fromisoformat(row["date"])
    except ValueError:
        raise DataFileError(f"{where}: key 'date': expected YYYY-MM-DD, got {row['date']!r}") from None
    try:
        flop = float(row["training_flop"])
    except ValueError:
        flop = float("nan")
    if not (math.isfinite(flop) and 1e10 < flop < 1e32):
        raise DataFileError(f"{where}: key 'training_flop': expected a FLOP count, got {row['training_flop']!r}")
    if not row["model"].strip() or not row["source"].strip():
        raise DataFileError(f"{where}: key '{'model' if not row['model'].strip() else 'source'}': empty")
    return Point(row["model"], row["organization"], when, flop, _flag(row["estimated"], where, "estimated"),
                 _flag(row["verified"], where, "verified"), row["source"])


def parse_points(text: str, origin: str = "frontier_compute.csv") -> list[Point]:
    """The rows of a frontier-compute CSV; DataFileError naming the row and column otherwise."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise DataFileError(f"{origin}: expected the columns {', '.join(COLUMNS)}, got {reader.fieldnames}")
    points = []
    for i, row in enumerate(reader, start=2):
        if None in row or None in row.values():
            raise DataFileError(f"{origin}: line {i}: expected {len(COLUMNS)} columns")
        points.append(_point(row, f"{origin}: line {i} ({row['model']})"))
    if len(points) < 3:
        raise DataFileError(f"{origin}: a trend needs at least 3 rows, got {len(points)}")
    return points


def load_points(name: str = "frontier_compute.csv") -> list[Point]:
    """The packaged `simulator/data/<name>`."""
    if "/" in name or "\\" in name or not name.endswith(".csv"):
        raise DataFileError(f"trend data {name!r}: expected a file name in simulator/data/ ending in .csv")
    ref = resources.files("simulator").joinpath(f"data/{name}")
    if not ref.is_file():
        raise DataFileError(f"trend data {name!r}: no such file in simulator/data/")
    return parse_points(ref.read_text(encoding="utf-8"), f"simulator/data/{name}")


def _doubling(slope: float) -> float:
    return 12 * math.log10(2) / float(slope) if slope > 0 else math.inf


def fit_trend(points: list[Point], level: float = LEVEL) -> TrendFit:
    """Log-linear fit of training FLOP on date with the doubling time's `level` interval (module docstring)."""
    x = np.array([p.year for p in points])
    y = np.log10([p.training_flop for p in points])
    if len(points) < 3 or np.ptp(x) == 0:
        raise DataFileError("trend: needs at least 3 points on different dates")
    res = stats.linregress(x, y)
    t = float(stats.t.ppf(0.5 + level / 2, len(points) - 2))
    steep, shallow = res.slope + t * res.stderr, res.slope - t * res.stderr
    return TrendFit(slope=float(res.slope), intercept=float(res.intercept), slope_stderr=float(res.stderr),
                    r2=float(res.rvalue ** 2), n=len(points), doubling_months=_doubling(res.slope),
                    doubling_low=_doubling(steep), doubling_high=_doubling(shallow))
