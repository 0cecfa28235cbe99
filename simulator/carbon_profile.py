"""Time-varying grid carbon: hourly intensity profiles and the effect of when a run starts.

`estimate()` prices operational CO2e with one annual-average grid intensity. Grids are cleaner at
some hours and seasons than others (solar at midday, wind, demand), so the same run emits more or
less depending on when it starts. This module takes an hourly profile for a region and gives:

- `load_profile_csv(path)` / `parse_profile_csv(text, source)`: a user's hourly CSV, strictly
  validated (`ScenarioError` naming the file, the line and the column);
- `run_co2e_t(profile, start, facility_power_mw, hours)`: the run's operational CO2e;
- `start_time_sweep(...)`: the CO2e for every start hour of the profile, with the best and worst;
- `co2e_for_estimate(est, profile, start)` / `sweep_for_estimate(est, profile)`: the same for an
  `Estimate`;
- `synthetic_example(...)`: the formula behind the shipped example profile (illustrative only).

CSV format (UTF-8; lines starting with `#` are comments; other columns are ignored)::

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

Conventions:

- Row i covers [t_0 + i h, t_0 + (i + 1) h) and its intensity is constant over the hour.
- **Cyclic repetition**: the profile repeats with a period of its own length. A run longer than
  the file continues from its first row again; a start outside the file's span is placed at its
  offset from the first timestamp modulo the profile length (for a one-year profile, a start two
  years later lands on the same hour of the file; leap days shift it by a day per leap year).
  A one-year profile therefore stands for "a typical year" of that grid.
- CO2e = integral over the run of facility power x intensity. MW x h x kg/kWh = tonnes, so
  `co2e_t = sum(power_mw x intensity_kg_per_kwh x hours)`; a partial last hour (or a start inside
  an hour) is pro-rated by the fraction of the hour the run covers.
- Everything is vectorised with numpy over the cumulative integral of the profile; there is no
  Python loop per hour.

The mean is *energy-unweighted* (`HourlyProfile.annual_mean`): the plain average over the hours of
the file, which is what an annual-average factor is for a flat load.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hardware_catalog.files import read_user_text
from simulator.errors import ScenarioError

TIMESTAMP = "timestamp"
INTENSITY = "carbon_intensity_kg_per_kwh"
MIN_ROWS = 24
MAX_KG_PER_KWH = 2.0  # above this a value is almost certainly g/kWh (coal-heavy grids are ~1 kg/kWh)
_HOUR = timedelta(hours=1)
TIE_REL_TOL = 1e-9  # start times whose CO2e differ by less than this (relative) are ties
_SWEEP_CHUNK = 2_000_000  # elements per block in the array-power sweep (bounds memory, not a per-hour loop)

EXAMPLE_REGION = "us-virginia"
EXAMPLE_FILE = f"carbon_profile_{EXAMPLE_REGION}_example.csv"

Start = datetime | str


@dataclass(frozen=True, eq=False)
class HourlyProfile:
    """Hourly grid carbon intensity of one region, repeating cyclically (module docstring).

    `first_hour`: UTC time at which row 0 starts; `intensity_kg_per_kwh`: one value per hour.
    """

    first_hour: datetime
    intensity_kg_per_kwh: np.ndarray
    source: str = "<memory>"
    comments: tuple[str, ...] = field(default=())

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
        return (as_utc(start, "start") - self.first_hour) / _HOUR

    def scaled_to_mean(self, mean_kg_per_kwh: float) -> "HourlyProfile":
        """The same shape rescaled to another mean (e.g. a scenario's annual intensity)."""
        if not (math.isfinite(mean_kg_per_kwh) and mean_kg_per_kwh >= 0):
            raise ScenarioError(f"{self.source}: mean intensity must be finite and non-negative, got {mean_kg_per_kwh}")
        current = self.annual_mean()
        if current == 0:
            raise ScenarioError(f"{self.source}: an all-zero profile cannot be rescaled to a mean")
        return HourlyProfile(self.first_hour, self.intensity_kg_per_kwh * (mean_kg_per_kwh / current),
                             f"{self.source} (scaled to mean {mean_kg_per_kwh:g} kg/kWh)", self.comments)

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


# --------------------------------------------------------------------------------------------
# Reading and writing


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
            if step != _HOUR:
                prev = f"line {lines[-1]} ({_iso(stamps[-1])})"
                if step == timedelta(0):
                    why = f"duplicate of {prev}"
                elif step < timedelta(0):
                    why = f"earlier than {prev}: rows must be in time order"
                elif step > _HOUR and step % _HOUR == timedelta(0):
                    why = f"gap: {step // _HOUR - 1} missing hour(s) after {prev}"
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
    return HourlyProfile(stamps[0], np.array(values), source, tuple(comments))


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
    return row[col].strip() if col < len(row) else ""


def _parse_timestamp(cell: str, where: str) -> datetime:
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
    """The profile as CSV text in the format `load_profile_csv` reads (comment lines first)."""
    out = io.StringIO()
    for c in comments:
        out.write(f"# {c}\n" if c else "#\n")
    out.write(f"{TIMESTAMP},{INTENSITY}\n")
    stamps = np.datetime_as_string(profile.timestamps(), unit="s")
    for s, v in zip(stamps, profile.intensity_kg_per_kwh):
        out.write(f"{s}Z,{v:.{decimals}f}\n")
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# CO2e of a run


def _power(facility_power_mw: float | np.ndarray, hours: float) -> np.ndarray | float:
    """Validated facility power: a float (constant) or one value per started hour of the run."""
    if not (isinstance(hours, (int, float, np.floating, np.integer)) and math.isfinite(hours) and hours > 0):
        raise ScenarioError(f"hours: run length must be a positive finite number of hours, got {hours!r}")
    if np.ndim(facility_power_mw) == 0:
        p = float(facility_power_mw)
        if not (math.isfinite(p) and p >= 0):
            raise ScenarioError(f"facility_power_mw: must be finite and non-negative, got {p}")
        return p
    arr = np.asarray(facility_power_mw, dtype=float)
    slots = math.ceil(hours)
    if arr.ndim != 1 or arr.size < slots:
        raise ScenarioError(f"facility_power_mw: an hourly array needs one value per started hour of the run "
                            f"({slots} for {hours:g} h), got shape {arr.shape}")
    if not np.all(np.isfinite(arr[:slots])) or np.any(arr[:slots] < 0):
        raise ScenarioError("facility_power_mw: hourly values must be finite and non-negative")
    return arr[:slots]


def _co2e_at_offsets(profile: HourlyProfile, offsets_h: np.ndarray, power, hours: float) -> np.ndarray:
    """CO2e (t) of runs starting at each offset (hours from the first row): vectorised."""
    s = np.asarray(offsets_h, dtype=float)
    if np.ndim(power) == 0:
        return power * (profile.integral(s + hours) - profile.integral(s))
    # Hour slot k of the run covers [s + k, s + min(k + 1, hours)) at power[k].
    k = np.arange(power.size, dtype=float)
    ends = np.minimum(k + 1.0, hours)
    out = np.empty(s.shape)
    flat_s, flat_out = s.reshape(-1), out.reshape(-1)
    rows = max(1, _SWEEP_CHUNK // power.size)
    for a in range(0, flat_s.size, rows):  # blocks of starts, each fully vectorised
        block = flat_s[a:a + rows, None]
        energy_weighted = profile.integral(block + ends) - profile.integral(block + k)
        flat_out[a:a + rows] = energy_weighted @ power
    return out


def run_co2e_t(profile: HourlyProfile, start: Start, facility_power_mw: float | np.ndarray,
               hours: float) -> float:
    """Operational CO2e (t) of a run of `hours` starting at `start` (UTC) under `profile`.

    `facility_power_mw`: constant facility power (MW), or one value per started hour of the run
    (hour k of the run, i.e. [start + k h, start + (k+1) h), at `facility_power_mw[k]`).
    CO2e = sum over the run of power x intensity x duration (MW x h x kg/kWh = t); the partial last
    hour and a start inside a profile hour are pro-rated. The profile repeats cyclically.
    """
    power = _power(facility_power_mw, hours)
    return float(_co2e_at_offsets(profile, np.array([profile.offset_h(start)]), power, float(hours))[0])


@dataclass(frozen=True, eq=False)
class StartSweep:
    """CO2e (t) of the same run for a set of start times (`offsets_h` from the profile's first row)."""

    profile: HourlyProfile
    offsets_h: np.ndarray
    co2e_t: np.ndarray
    hours: float

    @property
    def starts(self) -> np.ndarray:
        """Start times as numpy datetime64[s] (UTC)."""
        t0 = np.datetime64(self.profile.first_hour.replace(tzinfo=None), "s")
        return t0 + np.round(self.offsets_h * 3600).astype(np.int64) * np.timedelta64(1, "s")

    def _tol(self) -> float:
        """Values this close count as ties (rounding in the cumulative sums, ~1e-16 relative)."""
        return TIE_REL_TOL * float(np.abs(self.co2e_t).max())

    def best(self) -> tuple[datetime, float]:
        """(start, CO2e t) with the least CO2e; the earliest such start on ties (within TIE_REL_TOL)."""
        i = int(np.argmax(self.co2e_t <= self.co2e_t.min() + self._tol()))
        return self.profile.hour_start(self.offsets_h[i]), float(self.co2e_t[i])

    def worst(self) -> tuple[datetime, float]:
        """(start, CO2e t) with the most CO2e; the earliest such start on ties (within TIE_REL_TOL)."""
        i = int(np.argmax(self.co2e_t >= self.co2e_t.max() - self._tol()))
        return self.profile.hour_start(self.offsets_h[i]), float(self.co2e_t[i])

    def worst_vs_best_pct(self) -> float:
        """How much more the worst start emits than the best, in % of the best (0 on a tie)."""
        lo, hi = float(self.co2e_t.min()), float(self.co2e_t.max())
        return 0.0 if hi - lo <= self._tol() else (math.inf if lo == 0 else (hi - lo) / lo * 100.0)


def start_time_sweep(profile: HourlyProfile, facility_power_mw: float | np.ndarray, hours: float,
                     starts: Sequence[Start] | np.ndarray | None = None) -> StartSweep:
    """CO2e of the run for each start: by default every hour of the profile (row timestamps).

    Constant power: two evaluations of the profile's cumulative integral per start (O(starts)).
    Hourly power: a (starts x run hours) matrix of per-slot integrals times the power vector,
    in blocks to bound memory. Runs that reach past the end of the file wrap to its start.
    """
    power = _power(facility_power_mw, hours)
    if starts is None:
        offsets = np.arange(profile.hours, dtype=float)
    else:
        offsets = np.array([profile.offset_h(s) for s in starts], dtype=float)
        if offsets.size == 0:
            raise ScenarioError("starts: no start times given")
    return StartSweep(profile, offsets, _co2e_at_offsets(profile, offsets, power, float(hours)), float(hours))


# --------------------------------------------------------------------------------------------
# With an Estimate


def estimate_power_mw(est) -> tuple[float, float]:
    """(constant facility power MW, run hours) of an `Estimate`.

    Assumption: the estimate has no time structure inside a run, so its facility energy is spread
    evenly over its wall clock (checkpoints, failures and restarts are spread evenly too):
    power = energy_mwh / (wall_clock_days x 24).
    """
    v = est.values
    hours = float(v["wall_clock_days"]) * 24.0
    energy_mwh = float(v["energy_mwh"])
    if not (math.isfinite(hours) and hours > 0):
        raise ScenarioError(f"wall_clock_days: the estimate has no positive run length ({v['wall_clock_days']})")
    return energy_mwh / hours, hours


def co2e_for_estimate(est, profile: HourlyProfile, start: Start | None = None) -> float:
    """Operational CO2e (t) of `est` run from `start` (default: the profile's first hour) under `profile`.

    Uses `estimate_power_mw` (constant facility power over the run); compare with
    `est.values["co2e_t"]`, which uses the scenario's annual-average intensity.
    """
    power, hours = estimate_power_mw(est)
    return run_co2e_t(profile, profile.first_hour if start is None else start, power, hours)


def sweep_for_estimate(est, profile: HourlyProfile, starts=None) -> StartSweep:
    """`start_time_sweep` for an `Estimate` (every hour of the profile by default)."""
    power, hours = estimate_power_mw(est)
    return start_time_sweep(profile, power, hours, starts)


# --------------------------------------------------------------------------------------------
# The shipped example (synthetic)

# Annual mean of the example: grid.csv row "GCP us-east4 (Northern Virginia)", 0.3231 kg/kWh, 2024,
# GoogleCloudPlatform/region-carbon-info data/yearly/2024.csv @49f3f26 (the catalog's us-virginia value).
EXAMPLE_MEAN_KG_PER_KWH = 0.3231
EXAMPLE_LAT_DEG = 39.0  # Ashburn, Virginia (Northern Virginia datacentre cluster), approximate
EXAMPLE_LON_DEG = -77.5
EXAMPLE_SOLAR_PEAK_SHARE = 0.30  # illustrative assumption, not fitted to any grid's data
EXAMPLE_YEAR = 2023  # a non-leap calendar year: 8760 rows


def solar_elevation_sin(times_utc: np.ndarray, lat_deg: float, lon_deg: float) -> np.ndarray:
    """Sine of the sun's elevation at the middle of each hour (textbook solar geometry).

    Declination: Cooper (1969), delta = 23.45 deg x sin(360/365 x (284 + day of year)).
    Hour angle: 15 deg per hour from local solar noon, local solar time = UTC + longitude / 15 h
    (the equation of time, at most ~16 min, is ignored).
    sin(elevation) = sin(lat) sin(delta) + cos(lat) cos(delta) cos(hour angle).
    """
    t = np.asarray(times_utc, dtype="datetime64[s]") + np.timedelta64(1800, "s")  # mid-hour
    day = (t.astype("datetime64[D]") - t.astype("datetime64[Y]").astype("datetime64[D]")).astype(float) + 1.0
    hour_utc = (t - t.astype("datetime64[D]")).astype(float) / 3600.0
    decl = np.radians(23.45) * np.sin(np.radians(360.0 / 365.0 * (284.0 + day)))
    hour_angle = np.radians(15.0 * (hour_utc + lon_deg / 15.0 - 12.0))
    lat = math.radians(lat_deg)
    return math.sin(lat) * np.sin(decl) + math.cos(lat) * np.cos(decl) * np.cos(hour_angle)


def synthetic_example(mean_kg_per_kwh: float = EXAMPLE_MEAN_KG_PER_KWH, year: int = EXAMPLE_YEAR,
                      lat_deg: float = EXAMPLE_LAT_DEG, lon_deg: float = EXAMPLE_LON_DEG,
                      solar_peak_share: float = EXAMPLE_SOLAR_PEAK_SHARE) -> HourlyProfile:
    """An ILLUSTRATIVE, SYNTHETIC hourly profile (not measured data): a solar-share model.

    Solar generation (zero operational emissions) displaces the rest of the mix in proportion to
    its share of generation:

        share(t)     = solar_peak_share x max(0, sin(solar elevation(t)))      (solar_elevation_sin)
        intensity(t) = I_rest x (1 - share(t)),   I_rest = mean / (1 - mean over the year of share)

    so the plain annual mean equals `mean_kg_per_kwh` exactly. The diurnal dip (lowest at solar
    noon) and the seasonal swing (longer, higher sun in summer) both come from the sun's geometry;
    nothing else (wind, demand, weather) is modelled. `solar_peak_share` (the share when the sun
    is overhead) is an assumption chosen to make the effect visible; it is not fitted to any grid.
    Defaults: Northern Virginia's 2024 annual mean (grid.csv, GCP us-east4) over calendar 2023.
    """
    if not 0 <= solar_peak_share < 1:
        raise ScenarioError(f"solar_peak_share: must be in [0, 1), got {solar_peak_share}")
    first = datetime(year, 1, 1, tzinfo=timezone.utc)
    n = int((datetime(year + 1, 1, 1, tzinfo=timezone.utc) - first) / _HOUR)
    times = np.datetime64(f"{year}-01-01T00:00:00", "s") + np.arange(n) * np.timedelta64(3600, "s")
    share = solar_peak_share * np.clip(solar_elevation_sin(times, lat_deg, lon_deg), 0.0, None)
    rest = mean_kg_per_kwh / (1.0 - share.mean())
    return HourlyProfile(first, rest * (1.0 - share), f"synthetic_example({mean_kg_per_kwh:g} kg/kWh, {year})")


def example_comments() -> list[str]:
    """Header comment lines of the shipped example CSV (every number's origin)."""
    return [
        "ILLUSTRATIVE, SYNTHETIC, NOT MEASURED DATA. It shows the file format and the effect of a run's start time.",
        f"Region: {EXAMPLE_REGION} (Northern Virginia). Calendar year {EXAMPLE_YEAR} (8760 hours), UTC.",
        "Generated by simulator.carbon_profile.synthetic_example() with its defaults; "
        "tests regenerate and compare this file.",
        "Model: intensity(t) = I_rest x (1 - share(t)); share(t) = "
        f"{EXAMPLE_SOLAR_PEAK_SHARE:g} x max(0, sin(solar elevation at mid-hour));",
        "  I_rest = mean / (1 - annual mean of share), so the plain annual mean equals the stated mean.",
        f"Annual mean: {EXAMPLE_MEAN_KG_PER_KWH} kg/kWh = Google Cloud us-east4 (Northern Virginia) 2024 location-based grid",
        "  intensity (GoogleCloudPlatform/region-carbon-info data/yearly/2024.csv @49f3f26), as in shared grid.csv",
        "  and the catalog's us-virginia region.",
        f"Sun position: Ashburn VA, lat {EXAMPLE_LAT_DEG} N, lon {-EXAMPLE_LON_DEG} W (approximate); declination by Cooper (1969);",
        "  local solar time = UTC + lon/15 h (equation of time ignored).",
        f"Peak solar share {EXAMPLE_SOLAR_PEAK_SHARE:g}: an illustrative assumption, not fitted to PJM or any grid's data.",
        "Wind, demand and weather are not modelled. For real figures supply your own hourly CSV "
        "(e.g. from your grid operator or a grid-data provider).",
    ]


def example_profile_csv() -> str:
    """The text of the shipped example CSV, regenerated from `synthetic_example()`."""
    return profile_to_csv(synthetic_example(), example_comments())


def example_profile_path() -> Path:
    """Path of the shipped example CSV (package data in simulator/data/)."""
    from importlib import resources

    return Path(str(resources.files("simulator").joinpath("data", EXAMPLE_FILE)))


def load_example() -> HourlyProfile:
    """The shipped (synthetic) example profile."""
    return load_profile_csv(example_profile_path())


def write_example(path: str | Path | None = None) -> Path:
    """(Re)write the shipped example CSV; `python -m simulator.carbon_profile` calls this."""
    target = Path(path) if path is not None else example_profile_path()
    target.write_text(example_profile_csv(), encoding="utf-8", newline="\n")
    return target


if __name__ == "__main__":
    print(write_example())
