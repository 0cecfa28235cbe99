"""The claims ledger (issue 16): headline numbers about AI training checked with trainsim's own model.

`evaluate_claims()` reads the ledger (`simulator/data/claims.toml`, schema in `ledger.py`), tests each
claim by its kind and returns one `ClaimResult` per claim with trainsim's range (P10/P50/P90 of a Monte
Carlo, an exact computation, a fit's interval), the verdict (`verdict.py`: consistent, too high, too
low, inconsistent) and the main driver. `trainsim claims` prints them; the dashboard's Claims page shows
them; `report.markdown_table` makes the README's table from the command's JSON.

    from simulator.claims import evaluate_claims
    for r in evaluate_claims():
        print(r.id, r.verdict, r.summary)
"""

from __future__ import annotations

from pathlib import Path

from hardware_catalog import Catalog
from simulator.claims import arithmetic, montecarlo
from simulator.claims.ledger import Ledger, load_ledger
from simulator.claims.result import ClaimResult
from simulator.claims.verdict import CONSISTENT, INCONSISTENT, TOO_HIGH, TOO_LOW

SAMPLES, SEED = montecarlo.SAMPLES, montecarlo.SEED


def evaluate_claims(ledger: Ledger | str | Path | None = None, samples: int = SAMPLES, seed: int = SEED,
                    catalog: Catalog | None = None) -> list[ClaimResult]:
    """Every claim of `ledger` (the packaged one by default, or a path), in the ledger's order.

    The Monte Carlo draws `samples` joint samples with `seed`: the same inputs give the same verdicts."""
    if not isinstance(ledger, Ledger):
        ledger = load_ledger(ledger)
    ctx = montecarlo.Context(ledger, samples, seed, catalog)
    with_context = {"estimate": montecarlo.evaluate_estimate, "energy_split": montecarlo.evaluate_split}
    plain = {"consistency": arithmetic.evaluate_consistency, "arithmetic": arithmetic.evaluate_arithmetic,
             "published_ratio": arithmetic.evaluate_ratio, "compute_optimal_tokens": arithmetic.evaluate_tokens,
             "trend": arithmetic.evaluate_trend}
    out = []
    for claim in ledger.claims:
        if claim.kind in with_context:
            out.append(with_context[claim.kind](ctx, claim))
        else:
            out.append(plain[claim.kind](ledger, claim))
    return out


__all__ = ["CONSISTENT", "INCONSISTENT", "TOO_HIGH", "TOO_LOW", "ClaimResult", "Ledger", "evaluate_claims",
           "load_ledger"]
