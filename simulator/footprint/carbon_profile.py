"""Time-varying grid carbon: the effect of when a run starts on its operational CO2e.

`estimate()` prices operational CO2e with one annual-average grid intensity. Grids are cleaner at
some hours and seasons than others (solar at midday, wind, demand), so the same run emits more or
less depending on when it starts. This module takes an hourly profile for a region and gives:

- `run_co2e_t(profile, start, facility_power_mw, hours)`: the run's operational CO2e;
- `start_time_sweep(...)`: the CO2e for every start hour of the profile, with the best and worst;
- `co2e_for_estimate(est, profile, start)` / `sweep_for_estimate(est, profile)`: the same for an
  `Estimate`;
- `profile_notes(profile, region, annual_kg_per_kwh)`: whether a profile may stand for a region.

A profile belongs to its region (the file's `# region: <id>` line, `simulator.footprint.hourly_profile`):
the estimate, `trainsim carbon`, `co2e_for_estimate` and `sweep_for_estimate` refuse a profile for
another region than the scenario's `datacenter.region` (ids and aliases compared through the
catalog). A profile without a region is used as given, with a note that its region is unknown.
The profile is **not rescaled** to the region's annual intensity: a measured hourly profile is the
more specific figure, so the hourly CO2e keeps the profile's own mean; when that mean differs from
the annual intensity behind `co2e_t` by more than `MEAN_TOLERANCE`, a note says so and by how much
(the shipped example's mean is the catalog's us-virginia figure, so it has no such note).

It is also the entry point other code imports from, so it re-exports the profile and its CSV
format (`simulator.footprint.hourly_profile`: `HourlyProfile`, `load_profile_csv(path)` /
`parse_profile_csv(text, source)`, strictly validated, format and cyclic repetition documented
there) and the shipped example (`simulator.footprint.carbon_example`: `synthetic_example(...)`, the formula
behind the shipped example profile, illustrative only; `load_example()`; `python -m
simulator.footprint.carbon_profile` rewrites it).

Conventions:

- The profile repeats cyclically (`simulator.footprint.hourly_profile`): a run longer than the file continues
  from its first row again; a start outside the file's span wraps.
- CO2e = integral over the run of facility power x intensity. MW x h x kg/kWh = tonnes, so
  `co2e_t = sum(power_mw x intensity_kg_per_kwh x hours)`; a partial last hour (or a start inside
  an hour) is pro-rated by the fraction of the hour the run covers.
- Everything is vectorised with numpy over the cumulative integral of the profile; there is no
  Python loop per hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence

import numpy as np

from simulator.footprint.carbon_example import (
    EXAMPLE_FILE,
    EXAMPLE_LAT_DEG,
    EXAMPLE_LON_DEG,
    EXAMPLE_MEAN_KG_PER_KWH,
    EXAMPLE_REGION,
    EXAMPLE_SOLAR_PEAK_SHARE,
    EXAMPLE_YEAR,
    example_comments,
    example_profile_csv,
    example_profile_path,
    load_example,
    solar_elevation_sin,
    synthetic_example,
    write_example,
)
from simulator.errors import ScenarioError
from simulator.footprint.hourly_profile import (
    INTENSITY,
    MAX_KG_PER_KWH,
    MIN_ROWS,
    TIMESTAMP,
    HourlyProfile,
    Start,
    as_utc,
    load_profile_csv,
    parse_profile_csv,
    profile_to_csv,
)

__all__ = [
    "EXAMPLE_FILE", "EXAMPLE_LAT_DEG", "EXAMPLE_LON_DEG", "EXAMPLE_MEAN_KG_PER_KWH", "EXAMPLE_REGION",
    "EXAMPLE_SOLAR_PEAK_SHARE", "EXAMPLE_YEAR", "INTENSITY", "MAX_KG_PER_KWH", "MEAN_TOLERANCE", "MIN_ROWS",
    "TIE_REL_TOL", "TIMESTAMP", "HourlyProfile", "Start", "StartSweep", "as_utc", "co2e_for_estimate",
    "estimate_power_mw", "example_comments", "example_profile_csv", "example_profile_path", "load_example",
    "load_profile_csv", "parse_profile_csv", "profile_notes", "profile_to_csv", "run_co2e_t", "same_region",
    "solar_elevation_sin", "start_time_sweep", "sweep_for_estimate", "synthetic_example", "write_example",
]

MEAN_TOLERANCE = 0.05  # a profile mean this far (relative) from the annual intensity gets a note
TIE_REL_TOL = 1e-9  # start times whose CO2e differ by less than this (relative) are ties
_SWEEP_CHUNK = 2_000_000  # elements per block in the array-power sweep (bounds memory, not a per-hour loop)


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
# A profile and its region


def _canonical(region: str, catalog) -> str:
    """The catalog id of a region id or alias (case-insensitive); the name itself if the catalog lacks it."""
    from hardware_catalog import CatalogError, load_catalog

    try:
        return (catalog or load_catalog()).region(region).id
    except CatalogError:
        return region


def same_region(profile_region: str | None, region: str, catalog=None) -> bool:
    """Whether a profile's region (None: unknown) names `region`, through the catalog's ids and aliases."""
    return profile_region is not None and (
        _canonical(profile_region, catalog).lower() == _canonical(region, catalog).lower())


def profile_notes(profile: HourlyProfile, region: str, annual_kg_per_kwh: float | None = None, catalog=None,
                  field: str = "datacenter.carbon_profile") -> list[str]:
    """Notes for using `profile` with a run in `region` (module docstring): its region unknown, its
    mean far from `annual_kg_per_kwh`. Raises `ScenarioError` (one line, naming `field`) when the
    profile belongs to another region."""
    notes, name = [], Path(profile.source).name  # the file name only: an upload may name a shipped file
    if profile.region is None:
        notes.append(f"{field}: {name} names no region (no '# region: <id>' line): its region is "
                     f"unknown; its hours are taken as {region}'s grid")
    elif not same_region(profile.region, region, catalog):
        raise ScenarioError(
            f"{field}: {name} is an hourly profile for region '{profile.region}', not for "
            f"datacenter.region '{region}': use a profile for {region} (its CSV's '# region: {region}' line), "
            f"or set datacenter.region = \"{profile.region}\"")
    mean = profile.annual_mean()
    if annual_kg_per_kwh and abs(mean - annual_kg_per_kwh) / annual_kg_per_kwh > MEAN_TOLERANCE:
        notes.append(f"{field}: the profile's mean ({mean:.4g} kg/kWh) differs from the annual intensity "
                     f"({annual_kg_per_kwh:.4g} kg/kWh, {region}) by {(mean / annual_kg_per_kwh - 1) * 100:+.0f}%; "
                     "the hourly CO2e uses the profile as given (not rescaled)")
    return notes


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
    return constant_power_mw(float(v["energy_mwh"]), hours), hours


def constant_power_mw(energy_mwh: float, hours: float) -> float:
    """The one hourly-carbon power model (estimate(), `trainsim carbon`, the dashboard): a run's
    facility energy spread evenly over its wall clock, power = energy_mwh / hours."""
    if not (math.isfinite(hours) and hours > 0):
        raise ScenarioError(f"wall_clock_days: the estimate has no positive run length ({hours / 24:g} days)")
    return energy_mwh / hours


def co2e_for_estimate(est, profile: HourlyProfile, start: Start | None = None, catalog=None) -> float:
    """Operational CO2e (t) of `est` run from `start` (default: the profile's first hour) under `profile`.

    Uses `estimate_power_mw` (constant facility power over the run); compare with
    `est.values["co2e_t"]`, which uses the scenario's annual-average intensity. Refuses a profile
    for another region than the estimate's (`profile_notes`).
    """
    profile_notes(profile, est.values["region"], catalog=catalog)
    power, hours = estimate_power_mw(est)
    return run_co2e_t(profile, profile.first_hour if start is None else start, power, hours)


def sweep_for_estimate(est, profile: HourlyProfile, starts=None, catalog=None) -> StartSweep:
    """`start_time_sweep` for an `Estimate` (every hour of the profile by default); refuses a
    profile for another region than the estimate's (`profile_notes`)."""
    profile_notes(profile, est.values["region"], catalog=catalog)
    power, hours = estimate_power_mw(est)
    return start_time_sweep(profile, power, hours, starts)


if __name__ == "__main__":
    print(write_example())
