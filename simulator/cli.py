"""`trainsim` command line (DESIGN section 4): data on stdout, messages on stderr.

Every user error (`TrainsimError`) becomes one line on stderr and exit code 1; usage errors
are typer's (exit code 2). Sub-commands: `catalog` (simulator/cli_catalog.py) and `calibrate`
(simulator/cli_calibrate.py).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from hardware_catalog.errors import TrainsimError
from simulator.cli_calibrate import calibrate_app
from simulator.cli_catalog import catalog_app
from simulator.cli_common import (
    CatalogOpt,
    Format,
    FormatOpt,
    _catalog,
    _csv,
    _out,
    _print_table,
    _user_errors,
    err_console,
)
from simulator.scenario import MAX_SAMPLES, MIN_SAMPLES

MAX_TOP = 10_000  # plans `trainsim search` prints

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Compute cost and energy simulator for AI training.")
app.add_typer(catalog_app, name="catalog")
app.add_typer(calibrate_app, name="calibrate")


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


@app.command("estimate")
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
                 **({"p10": band["p10"][k], "p90": band["p90"][k]} if band and k in band["p10"] else {})}
                for k, label, unit in HEADLINE + extra]
        _print_table(f"{v['name']}: {v['model']} on {v['devices']} x {v['accelerator']} in {v['region']}",
                     rows, ["quantity", "value", "unit"] + (["p10", "p90"] if band else []))
        _print_table("plan", [est.plan])
        _print_table("breakdown", est.breakdown)
        for a in est.assumptions:
            err_console.print(f"note: {a}", highlight=False, markup=False)


@app.command("search")
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
    from simulator.explore import search

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


@app.command("plan")
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
    from simulator import scaling

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
    """`trainsim plan --usd/--days`: each fit's compute-optimal run within the budget (simulator.budget)."""
    from simulator import scaling
    from simulator.budget import plan_within_budget

    if devices is None:
        raise typer.BadParameter(f"{'--usd' if usd is not None else '--days'} needs --devices (the throughput the "
                                 "performance model gives depends on the cluster size)")
    cat = _catalog(catalog)
    acc = cat.accelerator(accelerator)
    price = usd_per_device_hour if usd_per_device_hour is not None else next(
        (p.value for p in (acc.prices.reserved_usd_per_hour, acc.prices.on_demand_usd_per_hour) if p), None)
    if price is None and usd is not None:
        raise TrainsimError(f"--usd-per-device-hour: required (the catalog has no price for {acc.id})")
    if price is not None and not (math.isfinite(price) and (price > 0 if usd is not None else price >= 0)):
        raise typer.BadParameter(f"--usd-per-device-hour: expected a finite price {'above' if usd is not None else 'of at least'} "
                                 f"0{' with --usd (a free device-hour makes any budget infinite)' if usd is not None else ''}, "
                                 f"got {price:g}")
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


@app.command("validate")
@_user_errors
def validate_cmd(fmt: FormatOpt = Format.table, catalog: CatalogOpt = None) -> None:
    """Predictions against published training runs, per row and summarised."""
    from simulator.validation import run_validation, summary

    from simulator.validation_public import heldout_summary, prior_summary

    cat = _catalog(catalog)
    checks = run_validation(cat)
    rows = [{"run": c.run, "quantity": c.quantity, "method": c.method, "predicted": c.predicted,
             "reported": c.reported, "error_pct": c.error_pct, "note": c.note} for c in checks]
    summ = summary(checks)
    public = {"held_out_by_table": heldout_summary("table"), "held_out_by_source": heldout_summary("source"),
              "shipped_priors": prior_summary()}
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
                  "shipped_priors": "public tables, the catalog's priors as shipped (|%|, in sample)"}
        for key, title in titles.items():
            _print_table(title, public[key])


@app.command("carbon")
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
    from simulator.carbon_profile import (
        as_utc,
        estimate_power_mw,
        load_profile_csv,
        run_co2e_t,
        start_time_sweep,
    )

    prof = load_profile_csv(profile)  # a bad profile fails before the (slower) estimate
    start_time = prof.first_hour if start is None else as_utc(start, "--start")
    sc = load_scenario(scenario, set_ or [])
    try:
        est = estimate(sc, _catalog(catalog))
    except TrainsimError as exc:
        raise type(exc)(f"{scenario}: {exc}") from None
    v = est.values
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
        "scenario": str(scenario), "profile": str(profile), "region": v["region"],
        "energy_mwh": v["energy_mwh"], "run_hours": hours, "facility_power_mw": power_mw,
        "carbon_intensity_kg_per_kwh": v["carbon_intensity_kg_per_kwh"],
        "profile_mean_kg_per_kwh": prof.annual_mean(), "profile_hours": prof.hours,
        "co2e_t_annual_average": annual, "co2e_t_hourly": hourly, "start": iso(start_time),
        "hourly_vs_annual_pct": pct(hourly, annual),
        "best_start": iso(best_at), "best_co2e_t": best, "worst_start": iso(worst_at), "worst_co2e_t": worst,
        "worst_vs_best_pct": pct(worst, best),
    }
    if fmt is Format.json:
        _out(json.dumps(result, indent=2))
    elif fmt is Format.csv:
        _out(_csv([result]))
    else:
        rows = [
            {"quantity": "facility energy", "value": v["energy_mwh"], "unit": "MWh", "start": ""},
            {"quantity": "run length", "value": hours, "unit": "h", "start": ""},
            {"quantity": "facility power (constant)", "value": power_mw, "unit": "MW", "start": ""},
            {"quantity": f"annual-average intensity ({v['region']})", "value": v["carbon_intensity_kg_per_kwh"],
             "unit": "kg/kWh", "start": ""},
            {"quantity": "profile mean intensity", "value": prof.annual_mean(), "unit": "kg/kWh", "start": ""},
            {"quantity": "CO2e, annual average", "value": annual, "unit": "t", "start": ""},
            {"quantity": "CO2e, hourly profile", "value": hourly, "unit": "t", "start": iso(start_time)},
            {"quantity": "CO2e, best start", "value": best, "unit": "t", "start": iso(best_at)},
            {"quantity": "CO2e, worst start", "value": worst, "unit": "t", "start": iso(worst_at)},
            {"quantity": "worst vs best", "value": result["worst_vs_best_pct"] or 0.0, "unit": "%", "start": ""},
        ]
        _print_table(f"{v['name']}: operational CO2e by start time ({profile})", rows,
                     ["quantity", "value", "unit", "start"])
        err_console.print("note: facility energy spread evenly over the run (the estimate has no time structure "
                          "inside a run; checkpoints and restarts are spread evenly)", highlight=False)
        err_console.print(f"note: best/worst over every hour of the profile ({prof.hours} starts); the profile "
                          "repeats cyclically", highlight=False)
        if hours > prof.hours:
            err_console.print(f"note: the run ({hours:,.0f} h) is longer than the profile ({prof.hours} h): "
                              "it wraps around and repeats", highlight=False)
        ci = v["carbon_intensity_kg_per_kwh"]
        if ci and abs(prof.annual_mean() - ci) / ci > 0.05:
            err_console.print(f"note: the profile's mean ({prof.annual_mean():.4g} kg/kWh) differs from the "
                              f"scenario's annual intensity ({ci:.4g} kg/kWh, {v['region']}) by more than 5%: "
                              "the hourly figure mixes region and timing", highlight=False)
        for line in prof.comments[:1]:
            err_console.print(f"profile: {line}", highlight=False)


@app.command("project")
@_user_errors
def project_cmd(
    project: Annotated[Path, typer.Argument(help="project TOML file ([[stage]] tables, each a scenario)")],
    fmt: FormatOpt = Format.table,
    catalog: CatalogOpt = None,
) -> None:
    """Whole-project cost: every stage (ablations, pretraining, ..., serving) estimated and summed."""
    from simulator.project import estimate_project, load_project

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


@app.command("dashboard")
@_user_errors
def dashboard_cmd(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8501,
    headless: Annotated[bool, typer.Option("--headless/--browser", help="do not open a browser")] = True,
) -> None:
    """Start the Streamlit dashboard (planner, compare, explorer, scaling, calibration, validation, catalog)."""
    import os
    import signal
    import subprocess
    from importlib import resources
    from importlib.util import find_spec

    if find_spec("streamlit") is None:
        raise TrainsimError('the dashboard needs streamlit: pip install -e ".[dashboard]"')
    if not 0 < port < 65536:
        raise typer.BadParameter("--port must be 1..65535")
    app_file = str(resources.files("dashboard").joinpath("streamlit_app.py"))
    cmd = [sys.executable, "-m", "streamlit", "run", app_file, "--server.port", str(port),
           "--server.headless", "true" if headless else "false", "--browser.gatherUsageStats", "false"]
    err_console.print(f"trainsim dashboard on http://localhost:{port}", highlight=False)
    # Become Streamlit (same pid): SIGTERM/SIGINT sent to `trainsim dashboard` then reach the
    # server itself and no orphaned server is left behind. Flush first: exec drops unwritten buffers.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if os.name == "posix" and hasattr(os, "execvp"):  # Windows' exec* spawns a new process: no use here
        try:
            os.execvp(cmd[0], cmd)  # does not return
        except OSError as exc:
            err_console.print(f"note: cannot exec Streamlit ({exc}); running it as a child process",
                              highlight=False, markup=False)
    # Fallback: a child process; forward termination signals to it and wait until it is gone.
    child = subprocess.Popen(cmd)

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except (OSError, ValueError):  # already gone; a signal the platform cannot send
            pass

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, forward)
        except ValueError:  # not the main thread: nothing to forward from
            pass
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # left early (an exception): do not orphan the server
            child.terminate()
            child.wait()
    raise typer.Exit(code if code >= 0 else 128 - code)  # killed by signal N: 128 + N, as a shell says


def main() -> None:
    app()


if __name__ == "__main__":
    main()
