"""Claims tested without a Monte Carlo: exact arithmetic, published ratios, scaling-law optima, a fitted trend
and internal consistency (the `consistency`, `arithmetic`, `published_ratio`, `compute_optimal_tokens` and
`trend` kinds). The verdict rules are in `simulator.claims.verdict`.

- consistency: a text states one quantity twice (50,000 MWh; "fifty megawatt-hours could power 1,700 US
  homes for one day"). The comparison's own arithmetic is redone with a sourced per-unit figure (EIA: a
  US home uses 29.36 kWh a day in 2020), then the two statements are compared (`factor`).
- arithmetic: weights in GB = parameters (the preset's exact count, simulator/model/shapes.py) x bytes
  per parameter / 1e9, for each model named; the claim is widened by its rounding `tolerance`.
- published_ratio: numerator / denominator of published compute figures (same unit each), in percent;
  the band runs from the lowest to the highest case, around their median.
- compute_optimal_tokens: the tokens D of the compute-optimal (N, D) for each FLOP budget under each
  named scaling-law fit (`simulator.model.scaling`); band: lowest to highest.
- trend: the doubling time of the fitted trend and its 90% interval (`simulator.claims.trends`).
"""

from __future__ import annotations

from statistics import median

from simulator.claims.ledger import Claim, Ledger
from simulator.claims.result import ClaimResult, make_result
from simulator.claims.units import fmt, fmt_range, sig
from simulator.claims.verdict import (
    Band,
    arithmetic_verdict,
    consistency_verdict,
    point_verdict,
    range_verdict,
)
from simulator.errors import DataFileError, TrainsimError


def _spread(values: list[float], kind: str) -> Band:
    return Band(min(values), median(values), max(values), kind)


def _numbers(claim: Claim, *keys: str) -> list[float]:
    """The claim's numeric keys (present: the ledger's schema requires them for the claim's kind)."""
    return [float(getattr(claim, k)) for k in keys]


def evaluate_consistency(ledger: Ledger, claim: Claim) -> ClaimResult:
    """The headline value against the second statement of the same text (module docstring)."""
    value, stated, count, days, per_day, factor = _numbers(claim, "value", "stated", "count", "days",
                                                           "per_unit_kwh_per_day", "factor")
    implied_mwh = count * days * per_day / 1e3
    verdict = consistency_verdict(value, stated, factor)
    inner = consistency_verdict(stated, implied_mwh, factor)
    homes = value * 1e3 / (per_day * days)
    summary = (f"{sig(count, trim=True)} homes x {sig(days, trim=True)} day x {sig(per_day, 4)} kWh = "
               f"{fmt(implied_mwh, 'MWh')} (the text's {fmt(stated, 'MWh', trim=True)}: {inner}); "
               f"{fmt(value, 'MWh', trim=True)} would power {sig(homes)} homes for a day: the two statements are "
               f"{sig(value / stated)}x apart")
    details = [{"statement": "headline", "value_mwh": value},
               {"statement": "comparison as stated", "value_mwh": stated},
               {"statement": "comparison recomputed", "value_mwh": implied_mwh, "per_unit_kwh_per_day": per_day,
                "per_unit_source": ledger.source(claim.per_unit_source or "").cite()}]
    band = Band(implied_mwh, implied_mwh, implied_mwh, "the comparison's own arithmetic")
    return make_result(ledger, claim, "energy (MWh): two statements of the same run", verdict, band, summary,
                       details=details)


def evaluate_arithmetic(ledger: Ledger, claim: Claim) -> ClaimResult:
    """Weights of the named presets at `bytes_per_param` (module docstring)."""
    from simulator.model.shapes import get_preset

    value, per_param, tolerance = _numbers(claim, "value", "bytes_per_param", "tolerance")
    rows = []
    for name in claim.models or []:
        try:
            params = get_preset(name).params_total()
        except TrainsimError as exc:  # unknown preset
            raise DataFileError(f"claim {claim.id!r}: key 'models': {exc}") from None
        gb = params * per_param / 1e9
        rows.append({"model": name, "params": params, "gb": gb, "gib": gb * 1e9 / 2**30})
    band = _spread([r["gb"] for r in rows], "exact (params x bytes)")
    summary = "; ".join(f"{r['model']}: {sig(r['params'] / 1e9, 4)}B x {sig(per_param, trim=True)} B = "
                        f"{fmt(r['gb'], 'GB')} ({sig(r['gib'])} GiB)" for r in rows)
    return make_result(ledger, claim, f"weights at {sig(per_param, trim=True)} bytes per parameter",
                       arithmetic_verdict(value, tolerance, band), band, summary, details=rows)


def evaluate_ratio(ledger: Ledger, claim: Claim) -> ClaimResult:
    """Published post-training / pre-training compute, in percent (module docstring)."""
    rows = [{"case": c.name, "ratio_pct": 100 * c.numerator / c.denominator, "numerator": c.numerator,
             "denominator": c.denominator, "source": ledger.source(c.source).cite(), "note": c.note}
            for c in claim.cases or []]
    band = _spread([r["ratio_pct"] for r in rows], f"lowest-highest of {len(rows)} published cases")
    verdict = range_verdict(*claim.claimed, band)
    summary = "; ".join(f"{r['case']}: {fmt(r['ratio_pct'], '%')}" for r in rows)
    return make_result(ledger, claim, "post-training compute / pre-training compute", verdict, band, summary,
                       details=rows)


def evaluate_tokens(ledger: Ledger, claim: Claim) -> ClaimResult:
    """Compute-optimal tokens for frontier budgets under the named fits (module docstring)."""
    from simulator.model.scaling import get_fit

    rows = []
    for fit_name in claim.fits or []:
        try:
            fit = get_fit(fit_name)
        except ValueError as exc:
            raise DataFileError(f"claim {claim.id!r}: key 'fits': {exc}") from None
        for b in claim.budgets or []:
            n, d = fit.compute_optimal(b.flop)
            rows.append({"budget": b.name, "flop": b.flop, "fit": fit_name, "params": float(n), "tokens": float(d),
                         "source": ledger.source(b.source).cite()})
    band = _spread([r["tokens"] for r in rows], f"lowest-highest over {len(rows)} budget x fit")
    verdict = range_verdict(*claim.claimed, band)
    summary = "; ".join(f"{r['budget']} ({r['flop']:.2g} FLOP): {fmt(r['tokens'], 'tokens')}" for r in rows)
    return make_result(ledger, claim, "compute-optimal training tokens", verdict, band, summary, details=rows)


def evaluate_trend(ledger: Ledger, claim: Claim) -> ClaimResult:
    """The claimed doubling time against the fitted trend's 90% interval (module docstring)."""
    from simulator.claims.trends import fit_trend, load_points

    points = load_points(claim.data or "")
    fit = fit_trend(points)
    band = Band(fit.doubling_low, fit.doubling_months, fit.doubling_high, "90% CI of the log-linear fit")
    verdict = point_verdict(*_numbers(claim, "value"), band)
    first, last = min(p.date for p in points), max(p.date for p in points)
    summary = (f"{fmt(fit.doubling_months, 'months')} (90% CI {fmt_range(band.low, band.high, 'months')}): "
               f"{sig(fit.growth_per_year)}x a year over {fit.n} frontier models, {first:%Y-%m} to {last:%Y-%m}, "
               f"R^2 {fit.r2:.2f}")
    details = [{"model": p.model, "organization": p.organization, "date": p.date.isoformat(),
                "training_flop": p.training_flop, "estimated": p.estimated, "verified": p.verified,
                "source": p.source} for p in points]
    return make_result(ledger, claim, "doubling time of frontier training compute", verdict, band, summary,
                       details=details)
