"""Verdicts of the claims ledger: how a published number is judged against trainsim's range.

Every rule is an interval comparison, so a verdict follows from the numbers alone:

- A **range claim** `[low, high]` (e.g. "60-100 days") against trainsim's band `[band_low, band_high]`
  (P10-P90 of the Monte Carlo, or the envelope of several scenarios' P10-P90, or a fit's interval):
  *consistent* when the two intervals overlap (`low <= band_high and high >= band_low`), *too high*
  when the claim's low end is above the band (`low > band_high`), *too low* when its high end is below
  it (`high < band_low`).
- A **point claim** `v` is the range `[v, v]`: consistent when `band_low <= v <= band_high`.
- An **arithmetic claim** ("about 140 GB") is exact on trainsim's side: the band is the computed
  value(s), and the claim is widened by its own rounding `tolerance`: the range `[v - tol, v + tol]`.
- Two statements of the same quantity in one text (50,000 MWh, and "fifty megawatt-hours") are
  *inconsistent* when they differ by more than `factor` (ratio of the larger to the smaller), whatever
  either is worth on its own.

Bounds are inclusive: a claim exactly at P10 or P90 is consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

CONSISTENT, TOO_HIGH, TOO_LOW, INCONSISTENT = "consistent", "too high", "too low", "inconsistent"
NOT_CHECKED = "not checked"
VERDICTS = (CONSISTENT, TOO_HIGH, TOO_LOW, INCONSISTENT)


@dataclass(frozen=True)
class Band:
    """trainsim's range for a quantity: `low` and `high` bound it (P10 and P90 for a Monte Carlo band),
    `mid` is the central value (P50, or the fit's estimate); `kind` says which range it is."""

    low: float
    mid: float
    high: float
    kind: str = "P10-P90"

    def __post_init__(self) -> None:
        if not self.low <= self.mid <= self.high:
            raise ValueError(f"band: expected low <= mid <= high, got {self.low:g}, {self.mid:g}, {self.high:g}")


def range_verdict(low: float, high: float, band: Band) -> str:
    """A claimed interval [low, high] against `band` (module docstring)."""
    if low > high:
        raise ValueError(f"claim: expected low <= high, got {low:g} > {high:g}")
    if low > band.high:
        return TOO_HIGH
    if high < band.low:
        return TOO_LOW
    return CONSISTENT


def point_verdict(value: float, band: Band) -> str:
    """A claimed single value against `band`: consistent when inside it, bounds included."""
    return range_verdict(value, value, band)


def arithmetic_verdict(value: float, tolerance: float, band: Band) -> str:
    """An arithmetic claim "about `value`" (rounded to +-`tolerance`) against the exact computed value(s)."""
    if tolerance < 0:
        raise ValueError(f"tolerance: expected >= 0, got {tolerance:g}")
    return range_verdict(value - tolerance, value + tolerance, band)


def consistency_verdict(first: float, second: float, factor: float) -> str:
    """Two statements of one quantity: inconsistent when one is more than `factor` times the other."""
    if first <= 0 or second <= 0 or factor < 1:
        raise ValueError(f"consistency: expected positive values and factor >= 1, got {first:g}, {second:g}, {factor:g}")
    return INCONSISTENT if max(first, second) / min(first, second) > factor else CONSISTENT


def miss(low: float, high: float, band: Band) -> float:
    """How far the claim [low, high] lies outside `band`, relative to the nearer bound (0 when they overlap)."""
    if low > band.high:
        return (low - band.high) / abs(band.high) if band.high else float("inf")
    if high < band.low:
        return (band.low - high) / abs(band.low) if band.low else float("inf")
    return 0.0


def combined_verdict(parts: list[tuple[str, float]]) -> str:
    """One verdict for a claim of several parts, given each checked part's (verdict, miss): consistent
    when every part is, else the verdict of the part that misses by most (relative to its band)."""
    checked = [(v, m) for v, m in parts if v != NOT_CHECKED]
    if not checked:
        return NOT_CHECKED
    worst = max(checked, key=lambda p: p[1])
    return CONSISTENT if worst[1] == 0 else worst[0]
