"""One evaluated claim (`ClaimResult`): the claim, trainsim's range for it, the verdict and the details."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from simulator.claims.ledger import Claim, Ledger
from simulator.claims.units import fmt, fmt_range, sig
from simulator.claims.verdict import Band


@dataclass(frozen=True)
class ClaimResult:
    """A claim as `trainsim claims` reports it.

    `band` is trainsim's range (None when the claim has no single range, e.g. the energy split, whose
    parts each have one in `details`); `summary` says the same in words; `driver` is the input that
    moves the figure most (tornado top input) where a Monte Carlo is behind it; `details` holds one
    row per scenario, part, case, budget or model; `planner` maps scenario ids to their scenario
    mappings (for links into the dashboard's Planner); `split` (energy split claims) has trainsim's
    energy per group of breakdown rows, with the groups that have no row yet as None.
    """

    id: str
    text: str
    kind: str
    unit: str
    claim_low: float
    claim_high: float
    source: str
    source_url: str | None
    quantity: str
    verdict: str
    band: Band | None
    summary: str
    driver: str | None = None
    note: str = ""
    details: list[dict[str, Any]] = field(default_factory=list)
    planner: dict[str, dict[str, Any]] = field(default_factory=dict)
    split: list[dict[str, Any]] | None = None  # energy_split: every group's MWh and share, side by side

    @property
    def claimed(self) -> str:
        """The claim's number(s) in words: "$78 M", "60-100 days", "80 / 16 / 4%"."""
        if self.kind == "energy_split":
            return " / ".join(sig(d["claimed"], trim=True) for d in self.details) + "%"
        if self.kind == "consistency":  # the headline and the comparison's own figure
            return f"{fmt(self.claim_low, self.unit, trim=True)} and {fmt(self.details[1]['value_mwh'], 'MWh', trim=True)}"
        return fmt_range(self.claim_low, self.claim_high, self.unit, trim=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: numbers as floats (infinite ones as null), the band as p10/p50/p90."""
        d = asdict(self)
        band = d.pop("band")
        d["claimed"] = self.claimed
        d["p10"], d["p50"], d["p90"] = (band["low"], band["mid"], band["high"]) if band else (None, None, None)
        d["band_kind"] = band["kind"] if band else None
        return _finite(d)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def make_result(ledger: Ledger, claim: Claim, quantity: str, verdict: str, band: Band | None, summary: str,
                **kwargs: Any) -> ClaimResult:
    """A ClaimResult with the claim's own fields filled in from the ledger."""
    src = ledger.source(claim.source)
    low, high = claim.claimed
    return ClaimResult(id=claim.id, text=claim.text, kind=claim.kind, unit=claim.unit, claim_low=float(low),
                       claim_high=float(high), source=src.cite(), source_url=src.url, quantity=quantity,
                       verdict=verdict, band=band, summary=summary, note=claim.note, **kwargs)
