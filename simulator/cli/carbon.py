"""`trainsim carbon`: operational CO2e against an hourly grid profile, the run's start time
against the annual average (simulator.footprint.carbon_profile)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hardware_catalog.errors import TrainsimError
from simulator.cli.common import (CatalogOpt, Format, FormatOpt, _catalog, _csv, _out, _print_table, _user_errors,
    err_console)


@_user_errors
def carbon_cmd(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    profile: Annotated[Path, typer.Option(help="hourly grid-intensity CSV (timestamp, carbon_intensity_kg_per_kwh); "
                                               "example: simulator/data/carbon_profile_us-virginia_example.csv")],
    start: Annotated[str | None, typer.Option(help="run start, ISO 8601 (UTC if no offset); default: the profile's "
                                                   "first hour")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. cluster.devices=8192")] = None,
    fmt: FormatOpt = Format.table,
    catalog: CatalogOpt = None,
) -> None:
    """Operational CO2e with an hourly grid profile: the run's start time against the annual average."""
    from simulator import estimate, load_scenario
    from simulator.footprint.carbon_profile import (
        as_utc,
        estimate_power_mw,
        load_profile_csv,
        profile_notes,
        run_co2e_t,
        start_time_sweep,
    )

    prof = load_profile_csv(profile)  # a bad profile fails before the (slower) estimate
    start_time = prof.first_hour if start is None else as_utc(start, "--start")
    sc = load_scenario(scenario, set_ or [])
    cat = _catalog(catalog)
    field = "--profile (datacenter.carbon_profile)"
    profile_notes(prof, sc.datacenter.region, None, cat, field)  # another region's profile: before the estimate
    try:
        est = estimate(sc, cat)
    except TrainsimError as exc:
        raise type(exc)(f"{scenario}: {exc}") from None
    v = est.values
    notes = profile_notes(prof, v["region"], v["carbon_intensity_kg_per_kwh"], cat, field)
    power_mw, hours = estimate_power_mw(est)
    hourly = run_co2e_t(prof, start_time, power_mw, hours)
    sweep = start_time_sweep(prof, power_mw, hours)
    (best_at, best), (worst_at, worst) = sweep.best(), sweep.worst()
    annual = float(v["co2e_t"])

    def iso(t) -> str:
        return t.isoformat().replace("+00:00", "Z")

    def pct(a: float, b: float) -> float | None:
        return (a - b) / b * 100.0 if b else None

    result = {
        "scenario": str(scenario), "profile": str(profile), "region": v["region"], "profile_region": prof.region,
        "energy_mwh": v["energy_mwh"], "run_hours": hours, "facility_power_mw": power_mw,
        "carbon_intensity_kg_per_kwh": v["carbon_intensity_kg_per_kwh"],
        "profile_mean_kg_per_kwh": prof.annual_mean(), "profile_hours": prof.hours,
        "co2e_t_annual_average": annual, "co2e_t_hourly": hourly, "start": iso(start_time),
        "hourly_vs_annual_pct": pct(hourly, annual),
        "best_start": iso(best_at), "best_co2e_t": best, "worst_start": iso(worst_at), "worst_co2e_t": worst,
        "worst_vs_best_pct": pct(worst, best), "notes": notes,
    }
    if fmt is Format.json:
        _out(json.dumps(result, indent=2))
    elif fmt is Format.csv:
        _out(_csv([{k: val for k, val in result.items() if k != "notes"}]))
        for note in notes:
            err_console.print(f"note: {note}", highlight=False)
    else:
        _show(result, v, prof)


def _show(result: dict, v: dict, prof) -> None:
    """The carbon comparison as a table on stdout, with its caveats on stderr."""
    hours, ci = result["run_hours"], v["carbon_intensity_kg_per_kwh"]
    rows = [
        {"quantity": "facility energy", "value": v["energy_mwh"], "unit": "MWh", "start": ""},
        {"quantity": "run length", "value": hours, "unit": "h", "start": ""},
        {"quantity": "facility power (constant)", "value": result["facility_power_mw"], "unit": "MW", "start": ""},
        {"quantity": f"annual-average intensity ({v['region']})", "value": ci, "unit": "kg/kWh", "start": ""},
        {"quantity": f"profile mean intensity ({prof.region or 'region unknown'})", "value": prof.annual_mean(),
         "unit": "kg/kWh", "start": ""},
        {"quantity": "CO2e, annual average", "value": result["co2e_t_annual_average"], "unit": "t", "start": ""},
        {"quantity": "CO2e, hourly profile", "value": result["co2e_t_hourly"], "unit": "t", "start": result["start"]},
        {"quantity": "CO2e, best start", "value": result["best_co2e_t"], "unit": "t", "start": result["best_start"]},
        {"quantity": "CO2e, worst start", "value": result["worst_co2e_t"], "unit": "t", "start": result["worst_start"]},
        {"quantity": "worst vs best", "value": result["worst_vs_best_pct"] or 0.0, "unit": "%", "start": ""},
    ]
    _print_table(f"{v['name']}: operational CO2e by start time ({result['profile']})", rows,
                 ["quantity", "value", "unit", "start"])
    err_console.print("note: facility energy spread evenly over the run (the estimate has no time structure "
                      "inside a run; checkpoints and restarts are spread evenly)", highlight=False)
    err_console.print(f"note: best/worst over every hour of the profile ({prof.hours} starts); the profile "
                      "repeats cyclically", highlight=False)
    if hours > prof.hours:
        err_console.print(f"note: the run ({hours:,.0f} h) is longer than the profile ({prof.hours} h): "
                          "it wraps around and repeats", highlight=False)
    for note in result["notes"]:  # region unknown; mean far from the annual intensity
        err_console.print(f"note: {note}", highlight=False)
    for line in prof.comments[:1]:
        err_console.print(f"profile: {line}", highlight=False)
