"""`trainsim calibrate run|fit|show`: measure training runs and fit calibration profiles.

`calibrate_app` is the sub-command the `trainsim` CLI (simulator/cli/) mounts as `calibrate`.
The calibration modules (PyTorch, meters) are imported inside the commands, so the rest of the CLI
works without the `calibrate` extra installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simulator.cli.common import (
    _print_table,
    _user_errors,
    err_console,
)

calibrate_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Measure training runs and fit calibration profiles.")


def _ints(text: str, option: str) -> list[int]:
    """Comma-separated positive integers of `option` (a usage error otherwise)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option}: expected comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise typer.BadParameter(f"{option}: expected positive integers, got {text!r}")
    return values


@calibrate_app.command("run")
@_user_errors
def calibrate_run(
    output: Annotated[Path, typer.Option("--output", "-o", help="runs folder (records.jsonl is appended)")],
    sweep: Annotated[Path | None, typer.Option(help="sweep TOML ([sweep] sizes, batch_sizes, seq_lens, dtype)")] = None,
    sizes: Annotated[str, typer.Option(help="comma-separated workload sizes (calibrate.workload.SIZES)")] = "tiny",
    batch: Annotated[str, typer.Option(help="comma-separated micro-batch sizes")] = "1,2",
    seq: Annotated[str, typer.Option(help="comma-separated sequence lengths")] = "128,256",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on GPUs, fp32 on CPUs) | bf16 | fp32")] = "auto",
    compile_: Annotated[bool, typer.Option("--compile/--no-compile", help="torch.compile the model")] = False,
    warmup: Annotated[int, typer.Option(help="untimed warm-up steps")] = 3,
    windows: Annotated[int, typer.Option(help="timed windows per config")] = 3,
    window_s: Annotated[float, typer.Option(help="minimum seconds per window (60 on GPUs)")] = 60.0,
    min_steps: Annotated[int, typer.Option(help="minimum steps per window")] = 5,
    meter: Annotated[str, typer.Option(help="auto | nvml | codecarbon | rapl | none")] = "auto",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    nproc_per_node: Annotated[int, typer.Option(help="processes (GPUs) per node: > 1 runs under torchrun")] = 1,
    parallel: Annotated[str, typer.Option(help="ddp | fsdp (with --nproc-per-node > 1)")] = "ddp",
) -> None:
    """Benchmark a sweep of model sizes, batch sizes and sequence lengths; one record per config."""
    from calibrate.bench import BenchSettings, load_sweep, resolve_device, run_sweep, sweep_configs

    if dtype not in ("auto", "bf16", "fp32"):
        raise typer.BadParameter("--dtype must be auto, bf16 or fp32")
    if dtype == "auto":
        dtype = "bf16" if resolve_device(device) == "cuda" else "fp32"
    bench: dict = {}
    if sweep is not None:
        configs, bench = load_sweep(sweep)
    else:
        configs = sweep_configs([s.strip() for s in sizes.split(",") if s.strip()], _ints(batch, "--batch"),
                                _ints(seq, "--seq"), dtype, compile_)
    if nproc_per_node > 1:
        if sweep is not None:
            raise typer.BadParameter("--nproc-per-node > 1 takes --sizes/--batch/--seq, not --sweep")
        _run_distributed(configs, output, nproc_per_node, parallel, dtype, warmup, windows, window_s, min_steps,
                         meter, device)
        return
    settings = BenchSettings(warmup_steps=bench.get("warmup_steps", warmup), windows=bench.get("windows", windows),
                             window_s=bench.get("window_s", window_s), min_steps=bench.get("min_steps", min_steps),
                             meter=bench.get("meter", meter), device=device)
    records = run_sweep(configs, output, settings, progress=True)
    rows = [r.summary() for r in records]
    if rows:
        _print_table(f"{len(rows)} configs recorded in {output}", rows,
                     ["name", "status", "step_time_s", "spread", "tokens_per_s", "mfu", "mean_power_w", "j_per_token", "flags"])
    else:
        err_console.print(f"nothing to do: every config is already recorded in {output}")


def _run_distributed(configs, output, nproc, parallel, dtype, warmup, windows, window_s, min_steps, meter,
                     device) -> None:
    """One torchrun job per configuration (DDP or FSDP2); a failed config is recorded and skipped."""
    from calibrate.errors import MeasurementError
    from calibrate.launch import launch

    if parallel not in ("ddp", "fsdp"):
        raise typer.BadParameter("--parallel must be ddp or fsdp")
    for c in configs:
        size = c.name.split("-b")[0]
        args = ["--output", str(output), "--size", size, "--batch", str(c.batch_size), "--seq", str(c.seq_len),
                "--dtype", dtype, "--parallel", parallel, "--warmup", str(warmup), "--windows", str(windows),
                "--window-s", str(window_s), "--min-steps", str(min_steps), "--meter", meter, "--device", device,
                "--resume"]
        try:
            launch(nproc, args)
        except MeasurementError as exc:
            err_console.print(f"config {c.name} failed: {exc}", highlight=False)


@calibrate_app.command("fit")
@_user_errors
def calibrate_fit(
    runs: Annotated[Path | None, typer.Argument(help="runs folder (or records.jsonl)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="profile TOML to write")] = None,
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the intervals (0: none)")] = 30,
    published: Annotated[Path | None, typer.Option(help="published throughput rows (public_throughput/rows.csv) "
                                                        "to fit instead of measured runs")] = None,
    accelerator: Annotated[list[str] | None, typer.Option(help="with --published: catalog id to fit "
                                                               "(repeat for sibling SKUs fitted together)")] = None,
    write_catalog: Annotated[bool, typer.Option("--write-catalog", help="with --published: write the fitted "
                                                                        "[perf] table into the catalog file")] = False,
    inherit_from: Annotated[str | None, typer.Option(help="with --accelerator: copy this measured sibling's fitted "
                                                         "[perf] (no published rows of its own)")] = None,
) -> None:
    """Fit the simulator's efficiency and power parameters to recorded runs (write a profile), or its
    performance priors to published throughput rows (--published; report held-out errors)."""
    if inherit_from is not None:
        _inherit(inherit_from, accelerator or [], write_catalog)
        return
    if published is not None:
        _fit_published(published, accelerator or [], write_catalog)
        return
    if runs is None or output is None:
        raise typer.BadParameter("give RUNS and --output (or --published ROWS.csv --accelerator ID)")
    from calibrate.fit import fit_records
    from calibrate.profile import build_profile, write_profile
    from calibrate.records import load_records

    records = load_records(runs)
    report = fit_records(records, bootstrap=bootstrap)
    write_profile(output, build_profile(report, records, str(runs)))
    _print_profile(output)


def _inherit(sibling: str, accelerators: list[str], write_catalog: bool) -> None:
    """`calibrate fit --inherit-from SIBLING --accelerator ID`: the sibling's [perf], marked inherited."""
    from calibrate.inherit import catalog_file, inherited_perf_toml, write_perf_table
    from hardware_catalog import load_catalog

    if not accelerators:
        raise typer.BadParameter("--inherit-from needs --accelerator (the catalog id to write)")
    catalog = load_catalog()
    for acc in accelerators:
        acc_id = catalog.accelerator(acc).id
        table = inherited_perf_toml(acc_id, catalog.accelerator(sibling).id, catalog)
        print(table)
        if write_catalog:
            write_perf_table(catalog_file(acc_id), table)
            err_console.print(f"wrote [perf] into {catalog_file(acc_id)}", highlight=False, markup=False)


def _fit_published(path: Path, accelerators: list[str], write_catalog: bool) -> None:
    """`calibrate fit --published`: fit, print per-row and per-group held-out errors, the [perf] table."""
    from calibrate.inherit import catalog_file, write_perf_table
    from calibrate.published import fit_published, perf_toml, write_heldout
    from hardware_catalog import load_catalog
    from simulator.system.perf_params import PerfParams
    from simulator.validation.public_rows import load_public_rows

    if not accelerators:
        raise typer.BadParameter("--published needs --accelerator (a catalog id)")
    catalog = load_catalog()
    ids = tuple(catalog.accelerator(a).id for a in accelerators)
    fit = fit_published(ids, load_public_rows(path, catalog), catalog)
    rows = [{"source": r.source[:28], "table": r.table[:34], "model": r.model_name[:22], "devices": r.devices,
             "precision": r.precision, "published_tok_s": round(r.tokens_per_s_per_device, 1),
             "in_sample_pct": round(e, 1), "held_out_table_pct": round(t, 1), "held_out_source_pct": round(s_, 1)}
            for r, e, t, s_ in zip(fit.rows, fit.in_sample_pct, fit.held_out_pct["table"],
                                    fit.held_out_pct["source"], strict=True)]
    _print_table(f"{len(rows)} published rows on {', '.join(ids)}: tokens/s per device, predicted vs published", rows)
    _print_table("held-out error (|%|)", [{"holdout": h, **{k: round(v, 1) for k, v in fit.summary(h).items()}}
                                          for h in fit.held_out_pct])
    command = f"trainsim calibrate fit --write-catalog --published {path} " + " ".join(f"--accelerator {i}" for i in ids)
    table = perf_toml(fit, command, PerfParams())
    print(table)
    if write_catalog:
        for acc_id in ids:
            target = catalog_file(acc_id)
            write_perf_table(target, table)
            err_console.print(f"wrote [perf] into {target}", highlight=False, markup=False)
        err_console.print(f"wrote held-out errors into {write_heldout(fit)}", highlight=False, markup=False)


def _print_profile(path: Path) -> None:
    """Print a profile's fitted parameters and fit quality (tables on stdout, source and notes on stderr)."""
    from calibrate.profile import read_profile

    prof = read_profile(path)
    rows = [{"parameter": k, "value": v} for k, v in {**prof.perf, "idle_w": prof.idle_w,
                                                     "dynamic_w_per_tflops": prof.dynamic_w_per_tflops}.items()]
    _print_table(f"profile {path} for {prof.accelerator}", rows)
    _print_table("fit quality", [{"measure": k, "value": v} for k, v in prof.quality.items()])
    err_console.print(f"source: {prof.source}", highlight=False)
    if prof.notes:
        err_console.print(f"notes: {prof.notes}", highlight=False)


@calibrate_app.command("show")
@_user_errors
def calibrate_show(profile: Annotated[Path, typer.Argument(help="profile TOML")]) -> None:
    """Print a calibration profile with its fit quality."""
    _print_profile(profile)
