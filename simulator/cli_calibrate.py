"""`trainsim calibrate run|fit|show`: measure training runs and fit calibration profiles.

The calibration modules (PyTorch, meters) are imported inside the commands, so the rest of the CLI
works without the `calibrate` extra installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simulator.cli_common import (
    _print_table,
    _user_errors,
    err_console,
)

calibrate_app = typer.Typer(no_args_is_help=True, help="Measure training runs and fit calibration profiles.")


def _ints(text: str, option: str) -> list[int]:
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
    from calibrate.distributed import launch
    from calibrate.errors import MeasurementError

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
    runs: Annotated[Path, typer.Argument(help="runs folder (or records.jsonl)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="profile TOML to write")],
    bootstrap: Annotated[int, typer.Option(help="bootstrap resamples for the intervals (0: none)")] = 30,
) -> None:
    """Fit the simulator's efficiency and power parameters to recorded runs; write a profile."""
    from calibrate.fit import fit_records
    from calibrate.profile import build_profile, write_profile
    from calibrate.records import load_records

    records = load_records(runs)
    report = fit_records(records, bootstrap=bootstrap)
    write_profile(output, build_profile(report, records, str(runs)))
    _print_profile(output)


def _print_profile(path: Path) -> None:
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
