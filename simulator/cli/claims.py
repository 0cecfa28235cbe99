"""`trainsim claims`: headline claims about AI training checked with trainsim's own model (simulator.claims).

Table: one row per claim (what it says, trainsim's range, the verdict, the main driver), then what is
behind each: every scenario's inputs with their sources, each scenario's P10 / P50 / P90, the energy
split side by side with the claim's, the trend's data. JSON: every claim with all of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from simulator.cli.common import (
    Format,
    FormatOpt,
    _csv,
    _out,
    _user_errors,
    err_console,
)

SamplesOpt = Annotated[int, typer.Option("--samples", min=100, max=100_000,
                                         help="Monte Carlo draws per scenario (fixed seed: deterministic)")]
LedgerOpt = Annotated[Path | None, typer.Option("--ledger", help="a claims ledger TOML file; default: the packaged one")]


@_user_errors
def claims_cmd(fmt: FormatOpt = Format.table, ledger: LedgerOpt = None, samples: SamplesOpt = 500,
               seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Monte Carlo seed")] = 0) -> None:
    """Check published claims (costs, GPUs and days, tokens, energy and its split, weights, fine-tuning share,
    compute doubling) against trainsim's estimate and Monte Carlo: consistent, too high, too low, inconsistent."""
    from simulator.claims import evaluate_claims
    from simulator.claims.report import table_rows

    results = [r.to_dict() for r in evaluate_claims(ledger, samples=samples, seed=seed)]
    if fmt is Format.json:
        _out(json.dumps(results, indent=2))
        return
    if fmt is Format.csv:
        _out(_csv(table_rows(results)))
        return
    _table(f"claims: trainsim's range (Monte Carlo: {samples} draws, seed {seed}) and verdict",
           table_rows(results), ["id", "claim", "claimed", "trainsim", "verdict", "main driver"])
    _print_details(results)
    err_console.print("note: consistent = the claim is inside trainsim's range (P10-P90, an exact value within the "
                      "claim's rounding, or a fit's 90% interval), or a claimed range overlaps it; too high / too "
                      "low = outside it; inconsistent = the text contradicts itself (simulator/claims/verdict.py)",
                      highlight=False)


def _table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A table with text columns left-aligned (cells as literal text, never markup)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    for c in columns:
        table.add_column(Text(c), justify="left")
    for r in rows:
        table.add_row(*(Text(str(r.get(c, ""))) for c in columns))
    Console(width=160, emoji=False, highlight=False).print(table)


def _print_details(results: list[dict[str, Any]]) -> None:
    from simulator.claims.report import (
        input_rows,
        scenario_rows,
        split_rows,
        trend_rows,
    )

    shown: set[str] = set()
    for d in results:
        if d["kind"] == "estimate":
            rows = [r for r in input_rows(d) if r["scenario"] not in shown]
            if rows:
                _table(f"{d['id']}: scenario inputs and their sources", rows, ["scenario", "input", "value", "source", "note"])
            shown.update(r["scenario"] for r in rows)
            _table(f"{d['id']}: {d['quantity']} per scenario", scenario_rows(d), list(scenario_rows(d)[0]))
        elif d["kind"] == "energy_split":
            _table(f"{d['id']}: trainsim's energy split of {next(iter(d['planner']))} side by side with the claim's "
                   f"{d['claimed']}", split_rows(d), ["energy", "trainsim MWh", "trainsim share", "claimed"])
            if any(g["energy_mwh"] is None for g in d["split"]):
                err_console.print("note: this estimate has no network or storage rows (e.g. the tdp reporting "
                                  "convention): that part of the claim is not checked", highlight=False)
        elif d["kind"] == "trend":
            _table(f"{d['id']}: published frontier training compute (simulator/data/frontier_compute.csv)",
                   trend_rows(d), ["model", "date", "training FLOP", "estimated", "source"])
    others = [{"id": d["id"], "how trainsim computed it": d["summary"]} for d in results
              if d["kind"] not in ("estimate", "energy_split")]
    _table("the other claims: how trainsim computed them", others, ["id", "how trainsim computed it"])
