"""`trainsim estimate`, `search`, `validate` and `project`: a scenario or a project through the
library, as a table, JSON or CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hardware_catalog.errors import TrainsimError
from simulator.cli.common import (CatalogOpt, Format, FormatOpt, _catalog, _csv, _out, _print_table, _user_errors,
    err_console)
from simulator.scenario import MAX_SAMPLES, MIN_SAMPLES

HEADLINE = [
    ("train_flops", "training FLOPs (model)", ""), ("mfu", "MFU", ""), ("hfu", "HFU", ""),
    ("model_tflops_per_device", "model TFLOP/s per device", ""), ("tokens_per_s", "tokens/s", ""),
    ("step_time_s", "step time", "s"), ("wall_clock_days", "wall clock", "days"),
    ("device_hours", "device-hours", "h"), ("goodput", "goodput", ""),
    ("memory_gb_per_device", "memory per device", "GB"), ("power_w_per_device", "device power", "W"),
    ("energy_it_mwh", "IT energy", "MWh"), ("energy_mwh", "facility energy", "MWh"),
    ("co2e_t", "operational CO2e", "t"), ("embodied_co2e_t", "embodied CO2e", "t"),
    ("water_m3", "water", "m3"), ("cost_usd", "cost", "USD"),
]
SERVING_HEADLINE = [
    ("devices_needed", "devices needed for the peak", ""), ("tp", "devices per replica (TP)", ""),
    ("batch", "sequences in flight per replica", ""), ("utilisation", "utilisation", ""),
    ("capacity_tokens_per_s", "capacity (output tokens/s)", ""),
    ("tokens_per_s_per_device", "output tokens/s per device", ""),
    ("tokens_per_s_per_user", "tokens/s per user", ""), ("ttft_s", "time to first token (idle)", "s"),
    ("output_mtok", "output tokens served", "M"), ("usd_per_mtok", "cost per million tokens", "USD"),
    ("kwh_per_mtok", "energy per million tokens", "kWh"), ("kgco2e_per_mtok", "CO2e per million tokens", "kg"),
]
RLHF_HEADLINE = [
    ("rlhf_sequences", "sequences (prompts x samples)", ""),
    ("rlhf_generation_share", "rollout generation share of time", ""),
    ("rlhf_generation_flops_share", "rollout generation share of FLOPs", ""),
]


BANDS = ("p10", "p50", "p90")  # Monte Carlo percentiles shown next to the point estimate (--uncertainty)
MAX_TOP = 10_000  # plans `trainsim search` prints


@_user_errors
def estimate_cmd(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. cluster.devices=8192")] = None,
    fmt: FormatOpt = Format.table,
    catalog: CatalogOpt = None,
    uncertainty: Annotated[int, typer.Option(help="Monte Carlo samples: add p10/p50/p90 (0: none)")] = 0,
) -> None:
    """Estimate FLOPs, time, device-hours, energy, CO2e, water and cost of a training run, a
    fine-tuning or RLHF run, or a serving period (the scenario's [finetune], [rlhf], [serving])."""
    from simulator import estimate, load_scenario

    if uncertainty != 0 and not MIN_SAMPLES <= uncertainty <= MAX_SAMPLES:
        raise typer.BadParameter(f"--uncertainty: 0 (none) or {MIN_SAMPLES}..{MAX_SAMPLES} samples, got {uncertainty}")
    sc = load_scenario(scenario, (set_ or []) + ([f"uncertainty.samples={uncertainty}"] if uncertainty else []))
    try:
        est = estimate(sc, _catalog(catalog))
    except TrainsimError as exc:  # name the file as well as the field
        raise type(exc)(f"{scenario}: {exc}") from None
    if fmt is Format.json:
        _out(est.to_json())
    elif fmt is Format.csv:
        _out(_csv([est.flat()]))
    else:
        v, band = est.values, est.uncertainty
        extra = {"serving": SERVING_HEADLINE}.get(v.get("workload"), RLHF_HEADLINE if "rlhf_sequences" in v else [])
        rows = [{"quantity": label, "value": v[k], "unit": unit,
                 **({q: band[q][k] for q in BANDS} if band and k in band["p10"] else {})}
                for k, label, unit in HEADLINE + extra]
        _print_table(f"{v['name']}: {v['model']} on {v['devices']} x {v['accelerator']} in {v['region']}",
                     rows, ["quantity", "value", "unit"] + (list(BANDS) if band else []))
        _print_table("plan", [est.plan])
        _print_table("breakdown", est.breakdown)
        for a in est.assumptions:
            err_console.print(f"note: {a}", highlight=False, markup=False)
    for w in est.warnings:  # also with -f json/csv: stderr, so the data on stdout stays clean
        err_console.print(f"warning: {w}", highlight=False, markup=False)


@_user_errors
def search_cmd(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    top: Annotated[int, typer.Option(help="how many plans to show")] = 10,
    objective: Annotated[str | None, typer.Option(help="time | cost | energy | memory (default: the scenario's)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. cluster.devices=8192")] = None,
    fmt: FormatOpt = Format.table,
    catalog: CatalogOpt = None,
) -> None:
    """Every valid plan for the scenario's cluster: the best ones and the time-energy Pareto front."""
    from simulator import load_scenario
    from simulator.execution.explore import search

    if not 1 <= top <= MAX_TOP:
        raise typer.BadParameter(f"--top: 1..{MAX_TOP} plans, got {top}")
    if objective is not None and objective not in ("time", "cost", "energy", "memory"):
        raise typer.BadParameter("--objective must be time, cost, energy or memory")
    sc = load_scenario(scenario, set_ or [])
    try:
        rep = search(sc, _catalog(catalog), top, objective)
    except TrainsimError as exc:
        raise type(exc)(f"{scenario}: {exc}") from None
    if fmt is Format.json:
        _out(json.dumps(rep.to_dict(), indent=2))
        return
    rows = [{**e.plan, "step_time_s": e.step_time_s, "mfu": e.mfu, "memory_gb": e.memory_gb_per_device,
             "days": e.wall_clock_days, "energy_mwh": e.energy_mwh, "cost_usd": e.cost_usd} for e in rep.plans]
    if fmt is Format.csv:
        _out(_csv(rows))
        return
    _print_table(f"best plans ({rep.feasible} feasible of {rep.plans_evaluated} evaluated in {rep.seconds * 1e3:.0f} ms)",
                 rows)
    _print_table("time-energy Pareto front", [{**e.plan, "step_time_s": e.step_time_s, "energy_mwh": e.energy_mwh}
                                              for e in rep.pareto])
    _print_table("rejected plans", [{"reason": k, "plans": v} for k, v in rep.rejected.items()])


@_user_errors
def validate_cmd(fmt: FormatOpt = Format.table, catalog: CatalogOpt = None) -> None:
    """Predictions against published training runs, per row and summarised."""
    from simulator.validation.runs import run_validation, summary
    from simulator.validation.public import heldout_summary, prior_summary
    from simulator.validation.spread import spread_table

    cat = _catalog(catalog)
    checks = run_validation(cat)
    rows = [{"run": c.run, "quantity": c.quantity, "method": c.method, "predicted": c.predicted,
             "reported": c.reported, "error_pct": c.error_pct, "note": c.note} for c in checks]
    summ = summary(checks)
    public = {"held_out_by_table": heldout_summary("table"), "held_out_by_source": heldout_summary("source"),
              "shipped_priors": prior_summary(), "throughput_spread": spread_table(cat)}
    if fmt is Format.json:
        _out(json.dumps({"rows": rows, "summary": summ, "public_tables": public}, indent=2))
    elif fmt is Format.csv:
        _out(_csv(rows))
    else:
        _print_table("published runs: predicted vs reported", rows,
                     ["run", "quantity", "method", "predicted", "reported", "error_pct"])
        _print_table("summary (absolute % error)", summ)
        titles = {"held_out_by_table": "public tables, tokens/s per device, each table held out (|%|)",
                  "held_out_by_source": "public tables, each publisher held out (|%|)",
                  "shipped_priors": "public tables, the catalog's priors as shipped (|%|, in sample)",
                  "throughput_spread": "Monte Carlo throughput spread per accelerator (log-sigma from the held-out "
                                       "errors; p10_x / p90_x: the throughput's P10 and P90 factors)"}
        for key, title in titles.items():
            _print_table(title, public[key])


@_user_errors
def project_cmd(
    project: Annotated[Path, typer.Argument(help="project TOML file ([[stage]] tables, each a scenario)")],
    fmt: FormatOpt = Format.table,
    catalog: CatalogOpt = None,
) -> None:
    """Whole-project cost: every stage (ablations, pretraining, ..., serving) estimated and summed."""
    from simulator.workloads.project import estimate_project, load_project

    est = estimate_project(load_project(project), _catalog(catalog))
    if fmt is Format.json:
        _out(est.to_json())
        return
    if fmt is Format.csv:
        _out(_csv(est.rows() + [est.total_row()]))
        return
    rows = [{"name": r["name"], "kind": r["kind"], "repeat": r["repeat"], "days": r["wall_clock_days"],
             "device_hours": r["device_hours"], "cost_usd": r["cost_usd"], "energy_mwh": r["energy_mwh"],
             "co2e_t": r["co2e_t"]} for r in est.rows() + [est.total_row()]]
    _print_table(f"{est.name}: {len(est.stages)} stages (days: one after another)", rows)
    t = est.totals
    err_console.print(f"total: {t['wall_clock_days']:,.1f} days, {t['device_hours']:,.0f} device-hours, "
                      f"${t['cost_usd']:,.0f}, {t['energy_mwh']:,.0f} MWh, {t['co2e_t']:,.0f} tCO2e "
                      f"(+ {t['embodied_co2e_t']:,.1f} t embodied), {t['water_m3']:,.0f} m3 water", highlight=False, soft_wrap=True)
    for s in est.stages:
        for note in s.notes:
            err_console.print(f"note: {s.name}: {note}", highlight=False, soft_wrap=True, markup=False)
