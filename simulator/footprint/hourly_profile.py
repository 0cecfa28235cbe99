"""An hourly grid carbon-intensity profile and its CSV file format.

One responsibility: the profile itself (`HourlyProfile`: values, timestamps, its cyclic cumulative
integral) and reading, validating and writing its CSV. Reading is strict: `load_profile_csv(path)` /
`parse_profile_csv(text, source)` raise `ScenarioError` naming the file, the line and the column.
What a profile means for a run's CO2e is `simulator.footprint.carbon_profile`.

CSV format (UTF-8; lines starting with `#` are comments; other columns are ignored)::

    # region: us-virginia
    # any comment lines
    timestamp,carbon_intensity_kg_per_kwh
    2023-01-01T00:00:00Z,0.3412
    2023-01-01T01:00:00Z,0.3398
    ...

- `timestamp`: ISO 8601 with an explicit UTC offset (`Z` or `+00:00`; other offsets are converted
  to UTC; a timestamp without an offset is rejected, since local time is ambiguous around DST).
  Rows are consecutive hours in time order: no gaps, no duplicates, no other step.
- `carbon_intensity_kg_per_kwh`: location-based grid intensity of the hour that *starts* at the
  timestamp, kg CO2e per kWh, finite and non-negative. Values above 2 kg/kWh are rejected as
  probably g/kWh (the most carbon-intensive grids are around 1 kg/kWh).
- At least 24 rows (one day). One year (8760 or 8784 rows) is the intended use.
- `# region: <id>` (optional, at most one, before the header): the grid region the profile
  belongs to, a catalog region id or alias (`trainsim catalog list --kind regions`), one word.
  `HourlyProfile.region` holds it. An estimate refuses a profile for another region than
  `datacenter.region` (`simulator.footprint.carbon_profile.profile_notes`); a profile without the
  line is used as given, and the output says its region is unknown.

Conventions:

- Row i covers [t_0 + i h, t_0 + (i + 1) h) and its intensity is constant over the hour.
- **Cyclic repetition**: the profile repeats with a period of its own length. A run longer than
  the file continues from its first row again; a start outside the file's span is placed at its
  offset from the first timestamp modulo the profile length (for a one-year profile, a start two
  years later lands on the same hour of the file; leap days shift it by a day per leap year).
  A one-year profile therefore stands for "a typical year" of that grid.

The mean is *energy-unweighted* (`HourlyProfile.annual_mean`): the plain average over the hours of
the file, which is what an annual-average factor is for a flat load.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hardware_catalog.files import read_user_text
from simulator.errors import ScenarioError

TIMESTAMP = "timestamp"
REGION = "region"  # the `# region: <id>` comment line
INTENSITY = "carbon_intensity_kg_per_kwh"
MIN_ROWS = 24
MAX_KG_PER_KWH = 2.0  # above this a value is almost certainly g/kWh (coal-heavy grids are ~1 kg/kWh)
HOUR = timedelta(hours=1)

Start = datetime | str


@dataclass(frozen=True, eq=False)
class HourlyProfile:
    """Hourly grid carbon intensity of one region, repeating cyclically (module docstring).

    `first_hour`: UTC time at which row 0 starts; `intensity_kg_per_kwh`: one value per hour;
    `region`: the grid region it belongs to (the file's `# region:` line), None when unknown.
    """

    first_hour: datetime
    intensity_kg_per_kwh: np.ndarray
    source: str = "<memory>"
    comments: tuple[str, ...] = field(default=())
    region: str | None = None

    def __post_init__(self) -> None:
        values = np.array(self.intensity_kg_per_kwh, dtype=float)  # own copy, frozen
        if values.ndim != 1 or values.size < MIN_ROWS:
            raise ScenarioError(f"{self.source}: an hourly profile needs at least {MIN_ROWS} values, "
                                f"got {values.size}")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ScenarioError(f"{self.source}: {INTENSITY} must be finite and non-negative")
        values.setflags(write=False)
        object.__setattr__(self, "intensity_kg_per_kwh", values)
        object.__setattr__(self, "first_hour", as_utc(self.first_hour, "first_hour"))
        cum = np.concatenate(([0.0], np.cumsum(values)))
        cum.setflags(write=False)
        object.__setattr__(self, "_cum", cum)  # cum[i] = integral of hours 0..i-1 (kg/kWh x h)

    @property
    def hours(self) -> int:
        """Length of the profile (its period), in hours."""
        return int(self.intensity_kg_per_kwh.size)

    def annual_mean(self) -> float:
        """Plain (energy-unweighted) mean intensity over the file, kg/kWh (a year for a one-year file)."""
        return float(self.intensity_kg_per_kwh.mean())

    def timestamps(self) -> np.ndarray:
        """UTC start of every row, as numpy datetime64[s]."""
        t0 = np.datetime64(self.first_hour.replace(tzinfo=None), "s")
        return t0 + np.arange(self.hours) * np.timedelta64(3600, "s")

    def hour_start(self, offset_h: float) -> datetime:
        """UTC time `offset_h` hours after the first row."""
        return self.first_hour + timedelta(hours=float(offset_h))

    def offset_h(self, start: Start) -> float:
        """Hours from the first row to `start` (may be negative or beyond the file: it wraps)."""
        return (as_utc(start, "start") - self.first_hour) / HOUR

    def scaled_to_mean(self, mean_kg_per_kwh: float) -> "HourlyProfile":
        """The same shape rescaled to another mean (e.g. a scenario's annual intensity)."""
        if not (math.isfinite(mean_kg_per_kwh) and mean_kg_per_kwh >= 0):
            raise ScenarioError(f"{self.source}: mean intensity must be finite and non-negative, got {mean_kg_per_kwh}")
        current = self.annual_mean()
        if current == 0:
            raise ScenarioError(f"{self.source}: an all-zero profile cannot be rescaled to a mean")
        return HourlyProfile(self.first_hour, self.intensity_kg_per_kwh * (mean_kg_per_kwh / current),
                             f"{self.source} (scaled to mean {mean_kg_per_kwh:g} kg/kWh)", self.comments,
                             self.region)

    def integral(self, x_h: np.ndarray | float) -> np.ndarray:
        """Integral of intensity from the first row to offset `x_h` hours (kg/kWh x h), cyclic.

        Piecewise linear in x; for x past the end it adds whole periods, for x < 0 it subtracts them.
        """
        x = np.asarray(x_h, dtype=float)
        n = self.hours
        periods = np.floor(x / n)
        r = x - periods * n  # in [0, n), up to rounding
        i = np.clip(np.floor(r).astype(np.int64), 0, n - 1)
        cum = self._cum  # type: ignore[attr-defined]
        return periods * cum[n] + cum[i] + (r - i) * self.intensity_kg_per_kwh[i]


def load_profile_csv(path: str | Path) -> HourlyProfile:
    """Read and validate an hourly profile CSV (format in the module docstring).

    Raises `ScenarioError` naming the file, the line and the column of the first problem.
    """
    p = Path(path)
    return parse_profile_csv(read_user_text(p, "carbon profile", ScenarioError), str(p))


def parse_profile_csv(text: str, source: str = "<text>") -> HourlyProfile:
    """Parse the text of an hourly profile CSV (e.g. a dashboard upload); `source` names it in errors."""
    text = text.removeprefix("\ufeff")
    comments: list[str] = []
    header: list[str] | None = None
    header_line = 0
    ts_col = val_col = -1
    stamps: list[datetime] = []
    values: list[float] = []
    lines: list[int] = []
    for lineno, row, comment in _rows(text, source):
        if comment is not None:
            if header is None:
                comments.append(comment)
            continue
        if header is None:
            header, header_line = [c.strip() for c in row], lineno
            missing = [c for c in (TIMESTAMP, INTENSITY) if c not in header]
            if missing:
                raise ScenarioError(f"{source}: line {lineno}: header: column {missing[0]!r} missing "
                                    f"(found {', '.join(repr(c) for c in header)}; expected "
                                    f"{TIMESTAMP},{INTENSITY})")
            ts_col, val_col = header.index(TIMESTAMP), header.index(INTENSITY)
            continue
        where = f"{source}: line {lineno}"
        t = _parse_timestamp(_cell(row, ts_col), f"{where}: column {TIMESTAMP}")
        v = _parse_value(_cell(row, val_col), f"{where}: column {INTENSITY}")
        if stamps:
            step = t - stamps[-1]
            if step != HOUR:
                prev = f"line {lines[-1]} ({_iso(stamps[-1])})"
                if step == timedelta(0):
                    why = f"duplicate of {prev}"
                elif step < timedelta(0):
                    why = f"earlier than {prev}: rows must be in time order"
                elif step > HOUR and step % HOUR == timedelta(0):
                    why = f"gap: {step // HOUR - 1} missing hour(s) after {prev}"
                else:
                    why = f"{_fmt_step(step)} after {prev}: rows must be exactly 1 h apart"
                raise ScenarioError(f"{where}: column {TIMESTAMP}: {_iso(t)}: {why}")
        stamps.append(t)
        values.append(v)
        lines.append(lineno)
    if header is None:
        raise ScenarioError(f"{source}: line 1: no header row (expected {TIMESTAMP},{INTENSITY})")
    if len(values) < MIN_ROWS:
        last = lines[-1] if lines else header_line
        raise ScenarioError(f"{source}: line {last}: column {INTENSITY}: only {len(values)} hourly row(s); "
                            f"at least {MIN_ROWS} (one day) needed")
    return HourlyProfile(stamps[0], np.array(values), source, tuple(comments), _region(comments, source))


def _region(comments: list[str], source: str) -> str | None:
    """The region of a `# region: <id>` comment line (format in the module docstring), or None."""
    found = [c.split(":", 1)[1].strip() for c in comments if c.split(":", 1)[0].strip().lower() == REGION]
    if len(found) > 1:
        raise ScenarioError(f"{source}: '# {REGION}:' appears {len(found)} times; a profile belongs to one region")
    if found and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", found[0]):
        raise ScenarioError(f"{source}: '# {REGION}: {found[0]}': expected one catalog region id, e.g. "
                            "'# region: us-virginia' (`trainsim catalog list --kind regions`)")
    return found[0] if found else None


def _rows(text: str, source: str):
    """(1-based physical line number, cells, comment text or None) for every non-blank line."""
    for lineno, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            yield lineno, [], line.lstrip()[1:].removeprefix(" ").rstrip()
            continue
        try:
            cells = next(csv.reader([line]))
        except csv.Error as exc:
            raise ScenarioError(f"{source}: line {lineno}: not valid CSV ({exc})") from None
        yield lineno, cells, None


def _cell(row: list[str], col: int) -> str:
    """The stripped cell `col` of a CSV row, or "" when the row is shorter."""
    return row[col].strip() if col < len(row) else ""


def _parse_timestamp(cell: str, where: str) -> datetime:
    """An ISO 8601 timestamp with a UTC offset, in UTC; `where` prefixes the error."""
    if not cell:
        raise ScenarioError(f"{where}: missing timestamp")
    try:
        t = datetime.fromisoformat(cell)
    except ValueError:
        raise ScenarioError(f"{where}: {cell!r} is not an ISO 8601 timestamp "
                            "(expected e.g. 2023-01-01T00:00:00Z)") from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise ScenarioError(f"{where}: {cell!r} has no UTC offset (write it in UTC, e.g. {cell}Z)")
    return t.astimezone(timezone.utc)


def _parse_value(cell: str, where: str) -> float:
    """An intensity in kg/kWh: a finite number in [0, MAX_KG_PER_KWH]; `where` prefixes the error."""
    if not cell:
        raise ScenarioError(f"{where}: missing value")
    try:
        v = float(cell)
    except ValueError:
        raise ScenarioError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(v):
        raise ScenarioError(f"{where}: {cell!r} is not a finite number")
    if v < 0:
        raise ScenarioError(f"{where}: {cell} is negative (intensities are >= 0 kg/kWh)")
    if v > MAX_KG_PER_KWH:
        raise ScenarioError(f"{where}: {cell} kg/kWh is implausibly high (above {MAX_KG_PER_KWH:g}); "
                            "is it in g/kWh? Divide by 1000")
    return v


def _fmt_step(step: timedelta) -> str:
    """A step between rows in minutes (under an hour) or hours, for an error message."""
    s = step.total_seconds()
    return f"{s / 60:g} min" if abs(s) < 3600 else f"{s / 3600:g} h"


def _iso(t: datetime) -> str:
    """UTC ISO 8601 with a Z suffix (whole seconds unless there is a fraction)."""
    return as_utc(t, "time").isoformat().replace("+00:00", "Z")


def as_utc(t: Any, name: str) -> datetime:
    """`t` (aware or naive datetime, ISO string) in UTC; naive values are taken as UTC."""
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t.strip())
        except ValueError:
            raise ScenarioError(f"{name}: {t!r} is not an ISO 8601 time (expected e.g. 2023-06-01T00:00:00Z)") from None
    if isinstance(t, np.datetime64):
        t = datetime.fromisoformat(str(t.astype("datetime64[s]")))
    if not isinstance(t, datetime):
        raise ScenarioError(f"{name}: expected a datetime or an ISO 8601 string, got {type(t).__name__}")
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def profile_to_csv(profile: HourlyProfile, comments: Sequence[str] = (), decimals: int = 5) -> str:
    """The profile as CSV text in the format `load_profile_csv` reads (comment lines first; a
    `# region:` line for `profile.region` unless `comments` have one)."""
    out = io.StringIO()
    if profile.region and not any(c.split(":", 1)[0].strip().lower() == REGION for c in comments):
        out.write(f"# {REGION}: {profile.region}\n")
    for c in comments:
        out.write(f"# {c}\n" if c else "#\n")
    out.write(f"{TIMESTAMP},{INTENSITY}\n")
    stamps = np.datetime_as_string(profile.timestamps(), unit="s")
    for s, v in zip(stamps, profile.intensity_kg_per_kwh):
        out.write(f"{s}Z,{v:.{decimals}f}\n")
    return out.getvalue()

