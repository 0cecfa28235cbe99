"""Claims tested with a scenario's estimate and its Monte Carlo (`estimate` and `energy_split` kinds).

Each ledger scenario is estimated once (`estimate()`), then re-costed for `samples` joint draws of the
uncertain inputs (`simulator.footprint.uncertainty.monte_carlo`, a fixed seed, so the verdicts are
deterministic; the scenario's own `[uncertainty]` spreads apply). A claim's band is the P10-P90 of its
quantity over the draws; with several scenarios ("a frontier run") the band is their envelope: the
lowest P10 to the highest P90, around the median of their P50s. The main driver is the top input of
the tornado (`uncertainty.tornado`: each input alone at its P10 and P90).

The energy split reads the estimate's breakdown rows as they are: `host` -> hosts,
`facility_overhead` -> facility overhead (cooling: PUE - 1), rows whose name starts with `network` or
`storage` -> network and storage (none yet: issue 16 item 2 adds them), every other row with energy ->
accelerators. Shares are of the facility energy; the Monte Carlo gives the facility-overhead share
per draw (1 - IT / facility energy), and the IT rows keep the point estimate's proportions of the IT
energy in every draw (so the split's driver is the tornado's of the cooling share: PUE, as a rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np

from hardware_catalog import Catalog
from simulator.claims.ledger import ROW_GROUPS, Claim, Ledger, ScenarioEntry
from simulator.claims.result import ClaimResult, make_result
from simulator.claims.units import fmt, fmt_range
from simulator.claims.verdict import (
    NOT_CHECKED,
    Band,
    combined_verdict,
    miss,
    point_verdict,
    range_verdict,
)
from simulator.errors import DataFileError
from simulator.footprint.energy_split import energy_split_kwh, split_group
from simulator.footprint.uncertainty import (
    HEADLINES,
    Spreads,
    monte_carlo,
    tornado,
)

SAMPLES, SEED = 500, 0
FIGURES = ("train_flops", "mfu", "wall_clock_days", "device_hours", "cost_usd", "energy_mwh", "energy_it_mwh")
GROUP_LABELS = {"accelerators": "accelerators", "hosts": "hosts", "network": "network", "storage": "storage",
                "facility_overhead": "facility overhead (cooling)"}


@dataclass(frozen=True)
class Run:
    """A ledger scenario, estimated, with its Monte Carlo draws."""

    sid: str
    entry: ScenarioEntry
    estimate: Any
    samples: dict[str, np.ndarray]
    spreads: Spreads


class Context:
    """Evaluates the ledger's scenarios once each (cached) with a fixed Monte Carlo."""

    def __init__(self, ledger: Ledger, samples: int = SAMPLES, seed: int = SEED, catalog: Catalog | None = None):
        self.ledger, self.samples, self.seed, self.catalog = ledger, samples, seed, catalog
        self._runs: dict[str, Run] = {}

    def run(self, sid: str) -> Run:
        if sid not in self._runs:
            from simulator.estimate import estimate
            from simulator.scenario import scenario_from_dict

            entry = self.ledger.scenarios[sid]
            sc = scenario_from_dict(entry.scenario, origin=f"claims scenario {sid!r}")
            est = estimate(sc, self.catalog)
            spreads = Spreads.for_basis(est.basis, sc.uncertainty.model_dump(exclude={"samples"}))
            unc = monte_carlo(est.basis, self.samples, spreads, seed=self.seed)
            self._runs[sid] = Run(sid, entry, est, unc.samples, spreads)
        return self._runs[sid]


def _show(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def input_rows(ledger: Ledger, entry: ScenarioEntry) -> list[dict[str, Any]]:
    """The scenario's inputs with their values and sources, one row per `inputs` key."""
    rows = []
    for key, inp in entry.inputs.items():
        node: Any = entry.scenario
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        value = ", ".join(f"{k} = {_show(v)}" for k, v in node.items()) if isinstance(node, dict) else _show(node)
        src = ledger.source(inp.source)
        rows.append({"input": key, "value": value, "source": f"{src.title} ({src.year})",
                     "verified": inp.verified and src.verified, "note": inp.note})
    return rows


def _scenario_row(ctx: Context, sid: str, quantity: str) -> dict[str, Any]:
    run = ctx.run(sid)
    if run.estimate.values.get(quantity) is None:
        raise DataFileError(f"claims scenario {sid!r}: no {quantity} (give pricing.usd_per_device_hour)")
    p10, p50, p90 = (float(x) for x in np.percentile(run.samples[quantity], [10, 50, 90]))
    top = tornado(run.estimate.basis, quantity, run.spreads)[0]
    return {"scenario": sid, "name": run.entry.name, "p10": p10, "p50": p50, "p90": p90, "driver": top["input"],
            "figures": {k: run.estimate.values.get(k) for k in FIGURES},
            "inputs": input_rows(ctx.ledger, run.entry)}


def evaluate_estimate(ctx: Context, claim: Claim) -> ClaimResult:
    """A headline figure of one or more scenarios against the claim (module docstring)."""
    if claim.quantity not in HEADLINES:
        raise DataFileError(f"claim {claim.id!r}: key 'quantity': expected one of {', '.join(HEADLINES)}, "
                            f"got {claim.quantity!r}")
    rows = [_scenario_row(ctx, sid, claim.quantity) for sid in claim.scenarios or []]
    many = len(rows) > 1
    band = Band(min(r["p10"] for r in rows), median(r["p50"] for r in rows), max(r["p90"] for r in rows),
                f"P10-P90 envelope of {len(rows)} scenarios" if many else "P10-P90")
    verdict = range_verdict(*claim.claimed, band)
    drivers = list(dict.fromkeys(r["driver"] for r in rows))
    summary = f"P10-P90 {fmt_range(band.low, band.high, claim.unit)}, P50 {fmt(band.mid, claim.unit)}"
    if many:
        summary += " (" + "; ".join(f"{r['name'].split(':')[0]}: {fmt(r['p50'], claim.unit)}" for r in rows) + ")"
    planner = {sid: ctx.ledger.scenarios[sid].scenario for sid in claim.scenarios or []}
    return make_result(ctx.ledger, claim, claim.quantity, verdict, band, summary, driver=" / ".join(drivers),
                       details=rows, planner=planner)


def split_energy(breakdown: list[dict[str, Any]]) -> dict[str, float | None]:
    """Facility energy (kWh) per split group (simulator.footprint.energy_split, the Planner's split too);
    None for a group the breakdown has no row of (an estimate without network or storage rows)."""
    kwh = energy_split_kwh(breakdown)
    present = {split_group(row["component"]) for row in breakdown}
    return {g: (kwh[g] if g in present else None) for g in ROW_GROUPS}


def _share_samples(groups: list[str], energy: dict[str, float | None], it_frac: np.ndarray) -> np.ndarray:
    """Percent of facility energy in `groups`, per Monte Carlo draw."""
    it_total = sum(v for g, v in energy.items() if v and g != "facility_overhead")
    it_part = sum(energy[g] or 0.0 for g in groups if g != "facility_overhead")
    share = it_frac * it_part / it_total
    if "facility_overhead" in groups:
        share = share + (1 - it_frac)
    return 100 * share


def _share_driver(run: Run) -> str:
    """The input that moves the facility-overhead share most (tornado of 1 - IT / facility energy)."""
    share = lambda out: 1 - out["energy_it_mwh"] / out["energy_mwh"]  # noqa: E731
    return str(tornado(run.estimate.basis, share, run.spreads)[0]["input"])


def _part_row(part, energy: dict[str, float | None], it_frac: np.ndarray) -> dict[str, Any]:
    present = [g for g in part.rows if energy[g] is not None]
    row: dict[str, Any] = {"part": part.label, "claimed": part.share, "rows": list(part.rows)}
    if not present:
        return {**row, "p10": None, "p50": None, "p90": None, "verdict": NOT_CHECKED, "miss": 0.0,
                "note": f"{' and '.join(part.rows)}: not yet separate rows in trainsim's breakdown"}
    p10, p50, p90 = (float(x) for x in np.percentile(_share_samples(present, energy, it_frac), [10, 50, 90]))
    band = Band(p10, p50, p90)
    absent = [g for g in part.rows if g not in present]
    note = f"{' and '.join(absent)}: not yet separate" if absent else ""
    return {**row, "p10": p10, "p50": p50, "p90": p90, "verdict": point_verdict(part.share, band),
            "miss": miss(part.share, part.share, band), "note": note}


def evaluate_split(ctx: Context, claim: Claim) -> ClaimResult:
    """The claimed shares of a run's energy against the scenario's breakdown (module docstring)."""
    run = ctx.run(claim.scenario or "")
    energy = split_energy(run.estimate.breakdown)
    total = sum(v for v in energy.values() if v)
    it_frac = run.samples["energy_it_mwh"] / run.samples["energy_mwh"]
    parts = [_part_row(p, energy, it_frac) for p in claim.parts or []]
    verdict = combined_verdict([(p["verdict"], p["miss"]) for p in parts])
    groups = [{"group": GROUP_LABELS[g], "energy_mwh": None if v is None else v / 1e3,
               "share_pct": None if v is None else 100 * v / total} for g, v in energy.items()]
    words = [f"{p['part']} {fmt(p['p50'], '%')} (P10-P90 {fmt_range(p['p10'], p['p90'], '%')})" if p["p10"] is not None
             else f"{p['part']}: not yet separate" for p in parts]
    summary = "; ".join(words)
    return make_result(ctx.ledger, claim, "energy shares (% of facility energy)", verdict, None, summary,
                       driver=f"{_share_driver(run)} (of the cooling share)", details=parts, split=groups,
                       planner={run.sid: run.entry.scenario})
