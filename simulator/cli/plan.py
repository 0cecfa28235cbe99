"""`trainsim plan`: compute-optimal model and data sizes from the scaling-law fits, for a FLOP
budget or, through the performance model (simulator.execution.budget), a dollar or time budget."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from hardware_catalog.errors import TrainsimError
from simulator.cli.common import (CatalogOpt, Format, FormatOpt, _catalog, _csv, _out, _print_table, _user_errors,
    err_console)


@_user_errors
def plan_cmd(
    flops: Annotated[float | None, typer.Option(help="compute budget in FLOPs")] = None,
    usd: Annotated[float | None, typer.Option(help="dollar budget (needs --devices; --accelerator)")] = None,
    days: Annotated[float | None, typer.Option(help="deadline in days (needs --devices; --accelerator)")] = None,
    loss: Annotated[float | None, typer.Option(help="target loss: the compute each fit needs to reach it")] = None,
    accelerator: Annotated[str, typer.Option(help="catalog id for $ and deadline budgets")] = "nvidia-h100-sxm-80gb",
    devices: Annotated[int | None, typer.Option(help="device count for $ and deadline budgets")] = None,
    usd_per_device_hour: Annotated[float | None, typer.Option(help="price; default: catalog market price")] = None,
    precision: Annotated[str, typer.Option(help="training precision for $ and deadline budgets")] = "bf16",
    fit: Annotated[str, typer.Option(help="epoch2024 | hoffmann2022 | kaplan2020 | all")] = "all",
    fmt: FormatOpt = Format.table,
    catalog: CatalogOpt = None,
) -> None:
    """Compute-optimal model size and tokens for a FLOP, dollar, deadline or target-loss budget.

    Dollar and deadline budgets are timed by the performance model: each fit's compute-optimal run is
    estimated on --devices x --accelerator (as `trainsim estimate` would, scenario in the JSON output)
    and the compute is solved for so that the run costs --usd or takes --days."""
    from simulator.model import scaling

    if sum(x is not None for x in (flops, usd, days, loss)) != 1:
        raise typer.BadParameter("give exactly one of --flops, --usd, --days, --loss")
    names = list(scaling.FITS) if fit == "all" else [fit]
    if usd is not None or days is not None:
        _budget_plan(names, usd, days, accelerator, devices, usd_per_device_hour, precision, fmt, catalog)
        return
    rows = []
    for name in names:
        try:
            f = scaling.get_fit(name)
            kwargs = {"flops": f.compute_for_loss(loss) if loss is not None else flops}
            p = scaling.plan_for_budget(f, **kwargs)
        except ValueError as exc:
            raise TrainsimError(str(exc)) from None
        rows.append({"fit": name, "flops": p.flops, "params": p.n_params, "tokens": p.n_tokens,
                     "tokens_per_param": p.tokens_per_param, "loss": p.loss})
    if fmt is Format.json:
        _out(json.dumps(rows, indent=2))
    elif fmt is Format.csv:
        _out(_csv(rows))
    else:
        _print_table("compute-optimal allocation (C = 6 N D)", rows)
        err_console.print("note: each fit's loss is in its own paper's units (data and tokenizer differ); "
                          "compare allocations across fits, not losses", highlight=False)


def _budget_plan(names: list[str], usd: float | None, days: float | None, accelerator: str, devices: int | None,
                 usd_per_device_hour: float | None, precision: str, fmt: Format, catalog: Path | None) -> None:
    """`trainsim plan --usd/--days`: each fit's compute-optimal run within the budget (simulator.execution.budget)."""
    from simulator.model import scaling
    from simulator.execution.budget import plan_within_budget
    from pydantic import ValidationError

    from simulator.scenario import PricingSection
    from simulator.site import catalog_price

    if devices is None:
        raise typer.BadParameter(f"{'--usd' if usd is not None else '--days'} needs --devices (the throughput the "
                                 "performance model gives depends on the cluster size)")
    cat = _catalog(catalog)
    acc = cat.accelerator(accelerator)
    given = usd_per_device_hour
    if given is not None and not (math.isfinite(given) and (given > 0 if usd is not None else given >= 0)):
        raise typer.BadParameter(f"--usd-per-device-hour: expected a finite price {'above' if usd is not None else 'of at least'} "
                                 f"0{' with --usd (a free device-hour makes any budget infinite)' if usd is not None else ''}, "
                                 f"got {given:g}")
    # the one price lookup (simulator.site.catalog_price): the option, else the catalog's market price
    try:
        price = catalog_price(PricingSection(usd_per_device_hour=given), acc)
    except ValidationError as exc:  # above the schema's bound
        raise typer.BadParameter(f"--usd-per-device-hour: {exc.errors()[0]['msg']}") from None
    if price is None and usd is not None:
        raise TrainsimError(f"--usd-per-device-hour: required (the catalog has no price for {acc.id})")
    rows = []
    for name in names:
        try:
            f = scaling.get_fit(name)
        except ValueError as exc:
            raise TrainsimError(str(exc)) from None
        r = plan_within_budget(f, accelerator=acc.id, devices=devices, usd=usd, deadline_days=days,
                               usd_per_device_hour=price, precision=precision, catalog=cat)
        v, p = r.estimate.values, r.plan
        rows.append({"fit": name, "flops": p.flops, "params": p.n_params, "tokens": p.n_tokens,
                     "tokens_per_param": p.tokens_per_param, "loss": p.loss, "model": v["model"],
                     "model_params": v["params_total"], "accelerator": acc.id, "devices": devices,
                     "tokens_per_s": v["tokens_per_s"], "mfu": v["mfu"], "wall_clock_days": v["wall_clock_days"],
                     "device_hours": v["device_hours"], "cost_usd": v["cost_usd"] if price is not None else None,
                     "budget_used": r.budget_used, "optimal_tokens": r.optimal_tokens,
                     "efficiency_source": v["efficiency_source"], "scenario": r.scenario})
    if fmt is Format.json:
        _out(json.dumps(rows, indent=2))
        return
    flat = [{k: v for k, v in row.items() if k not in ("scenario", "efficiency_source", "accelerator", "devices",
                                                       "model", "optimal_tokens", "budget_used")} for row in rows]
    if fmt is Format.csv:
        _out(_csv(flat))
        return
    budget = f"${usd:,.0f}" if usd is not None else f"{days:g} days"
    _print_table(f"compute-optimal allocation within {budget} on {devices} x {acc.id} (C = 6 N D)", flat)
    err_console.print(f"note: step time from the {rows[0]['efficiency_source']}; `trainsim estimate` of "
                      "model.params = params, training.tokens = tokens on this cluster reproduces these figures "
                      "(-f json gives each scenario); tokens fill the budget for the model shape found, within a "
                      "few percent of each fit's optimal D / N", highlight=False)
    err_console.print("note: each fit's loss is in its own paper's units (data and tokenizer differ); "
                      "compare allocations across fits, not losses", highlight=False)
