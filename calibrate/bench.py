"""The calibration bench runner: warm-up, synchronised timed windows, one record per config.

Protocol (../shared/reference/measurement.md sec. 7.2): per configuration, `warmup_steps`
untimed steps, then `windows` timed windows of at least `window_s` seconds and `min_steps` steps,
each bracketed by a device synchronisation and a meter window. An out-of-memory error or a crash
in one configuration is recorded with its message and the sweep goes on; an interrupted sweep
resumes without redoing recorded configurations; records are only ever appended.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from calibrate.errors import MeasurementError
from calibrate.records import RunRecord, Window, append_record, done_ids, record_id
from hardware_catalog.files import loads_toml, read_user_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchSettings:
    warmup_steps: int = 3
    windows: int = 3
    window_s: float = 60.0
    min_steps: int = 5
    meter: str = "auto"
    device: str = "auto"  # auto | cpu | cuda
    trace_dir: str | None = None


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise MeasurementError("--device cuda: no CUDA device is visible to PyTorch")
    if name not in ("cpu", "cuda"):
        raise MeasurementError(f"--device: expected auto, cpu or cuda, got {name!r}")
    return name


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# --- machine description and peaks ----------------------------------------------------------------
CUDA_NAMES = [("H200", "nvidia-h200-sxm-141gb"), ("H100 PCIe", "nvidia-h100-pcie-80gb"), ("H100", "nvidia-h100-sxm-80gb"),
              ("H800", "nvidia-h800-sxm-80gb"), ("A100-SXM4-40GB", "nvidia-a100-sxm-40gb"), ("A100", "nvidia-a100-sxm-80gb"),
              ("V100", "nvidia-v100-sxm2-32gb"), ("L40S", "nvidia-l40s"), ("B200", "nvidia-b200")]


def describe_device(device: str) -> dict[str, Any]:
    """Name, catalog id (GPUs), memory and versions of the device the bench runs on."""
    import torch

    info: dict[str, Any] = {"kind": device, "host": platform.node(), "cpu": platform.processor() or platform.machine()}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(name=props.name, memory_gb=props.total_memory / 1e9, cuda=torch.version.cuda,
                    catalog_id=next((cid for key, cid in CUDA_NAMES if key in props.name), None))
    else:
        import os

        info.update(name=f"cpu-{platform.machine()}-{os.cpu_count()}c".lower().replace("_", "-"), threads=torch.get_num_threads(), catalog_id=None,
                    mem_bw_gb_per_s=measure_mem_bw("cpu") / 1e9)
    return info


def software_info() -> dict[str, Any]:
    import torch

    from importlib.metadata import PackageNotFoundError, version

    try:
        trainsim = version("trainsim")
    except PackageNotFoundError:
        trainsim = "unknown"
    return {"python": platform.python_version(), "torch": torch.__version__, "trainsim": trainsim,
            "platform": platform.platform()}


def measure_peak_flops(device: str, dtype: str, seconds: float = 0.5) -> float:
    """Best achieved FLOP/s of an n^2 matmul in `dtype` (n = 2048 on GPUs, 1024 on CPUs, where
    bf16 without matrix units is slow): a measured lower bound of the peak. At least 3 repeats."""
    import torch

    n = 2048 if device == "cuda" else 1024
    tdtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=tdtype)
    b = torch.randn(n, n, device=device, dtype=tdtype)
    best, repeats = 0.0, 0
    t_end = time.perf_counter() + seconds
    while repeats < 3 or time.perf_counter() < t_end:
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
        repeats += 1
    return best


def measure_mem_bw(device: str, nbytes: int = 256 * 2**20, repeats: int = 5) -> float:
    """Best achieved copy bandwidth in bytes/s (read + write counted), a lower bound of HBM/DRAM bandwidth."""
    import torch

    x = torch.empty(nbytes // 4, device=device, dtype=torch.float32)
    y = torch.empty_like(x)
    best = 0.0
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        y.copy_(x)
        _sync(device)
        best = max(best, 2 * nbytes / (time.perf_counter() - t0))
    return best


def peak_for(device_info: dict[str, Any], dtype: str) -> tuple[float, str]:
    """Dense peak FLOP/s per device: the catalog's for a known GPU, else a measured matmul probe."""
    if device_info.get("catalog_id"):
        from hardware_catalog import load_catalog

        acc = load_catalog().accelerator(device_info["catalog_id"])
        return acc.peak_flops("bf16" if dtype == "bf16" else "tf32"), f"catalog {acc.id}"
    kind = device_info["kind"]
    return measure_peak_flops(kind, dtype), "measured matmul probe (a lower bound of the peak)"


# --- sweeps --------------------------------------------------------------------------------------
def sweep_configs(sizes: Iterable[str], batch_sizes: Iterable[int], seq_lens: Iterable[int], dtype: str = "bf16",
                  compile: bool = False) -> list:
    """The cross product of named sizes (`workload.SIZES`), micro-batch sizes and sequence lengths."""
    from calibrate.workload import SIZES

    out = []
    for size, batch, seq in itertools.product(sizes, batch_sizes, seq_lens):
        if size not in SIZES:
            raise MeasurementError(f"sweep size {size!r}: unknown; expected one of {', '.join(SIZES)}")
        out.append(replace(SIZES[size], name=f"{size}-b{batch}-s{seq}", batch_size=batch, seq_len=seq,
                           dtype=dtype, compile=compile))
    return out


def load_sweep(path: str | Path) -> tuple[list, dict[str, Any]]:
    """A sweep TOML: `[sweep] sizes, batch_sizes, seq_lens, dtype, compile` and optional `[bench]`."""
    p = Path(path)
    data = loads_toml(read_user_text(p, "sweep file", MeasurementError), str(p), MeasurementError)
    sw = data.get("sweep")
    if not isinstance(sw, dict):
        raise MeasurementError(f"{p}: a [sweep] table with sizes, batch_sizes and seq_lens is required")
    unknown = set(sw) - {"sizes", "batch_sizes", "seq_lens", "dtype", "compile"}
    if unknown:
        raise MeasurementError(f"{p}: sweep.{sorted(unknown)[0]}: unknown key")
    try:
        configs = sweep_configs(sw["sizes"], sw["batch_sizes"], sw["seq_lens"], sw.get("dtype", "bf16"),
                                bool(sw.get("compile", False)))
    except KeyError as exc:
        raise MeasurementError(f"{p}: sweep.{exc.args[0]}: required") from None
    return configs, data.get("bench", {})


# --- one configuration ---------------------------------------------------------------------------------
def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def run_config(config, settings: BenchSettings, device: str, meter, device_info: dict[str, Any],
               peak: tuple[float, str], clock: Callable[[], float] = time.perf_counter,
               runs_dir: str | Path | None = None) -> RunRecord:
    """Benchmark one configuration; errors become a record with status oom/error.

    Meter samples of each window go to `runs_dir/traces/<record_id>-w<i>.csv.gz` when there are any.
    """
    from calibrate import workload as wl
    from calibrate.meters import write_trace_csv

    cfg = config.to_dict()
    base = dict(record_id=record_id(cfg, device_info["name"]), created_utc=dt.datetime.now(dt.UTC).isoformat(),
                config=cfg, device=device_info, software=software_info(), warmup_steps=settings.warmup_steps,
                model_flops_per_step=wl.model_flops_per_step(config),
                hardware_flops_per_step=wl.hardware_flops_per_step(config),
                tokens_per_step=config.batch_size * config.seq_len, peak_flops=peak[0], peak_source=peak[1],
                meters=[meter.name])
    try:
        import torch

        work = wl.build(config, device)
        gen = torch.Generator(device=device).manual_seed(config.seed)
        batch = wl.synthetic_batch(config, device, gen)
        for _ in range(settings.warmup_steps):
            work.train_step(batch)
        windows = []
        for _ in range(settings.windows):
            _sync(device)
            meter.start_window()
            t0, steps = clock(), 0
            while steps < settings.min_steps or clock() - t0 < settings.window_s:
                work.step(batch)  # no host sync per step; the window edges synchronise
                steps += 1
                if steps % 4 == 0:
                    _sync(device)
            _sync(device)
            duration = clock() - t0
            reading = meter.end_window()
            trace = None
            if runs_dir is not None and reading.samples:
                trace = f"traces/{base['record_id']}-w{len(windows)}.csv.gz"
                (Path(runs_dir) / "traces").mkdir(parents=True, exist_ok=True)
                write_trace_csv(reading.samples, Path(runs_dir) / trace)
            windows.append(Window(steps=steps, duration_s=duration, energy_j=reading.energy_j,
                                  mean_power_w=reading.mean_power_w, meter=reading.meter, flags=list(reading.flags),
                                  estimated=reading.estimated, trace_file=trace, details=dict(reading.details)))
        return RunRecord(status="ok", windows=windows, **base)
    except Exception as exc:  # a crashed config is data, not the end of the sweep
        status = "oom" if _is_oom(exc) else "error"
        log.warning("config %s failed (%s): %s", config.name, status, exc)
        return RunRecord(status=status, error=f"{type(exc).__name__}: {exc}", **base)
    finally:
        if device == "cuda":
            import torch

            torch.cuda.empty_cache()


def run_sweep(configs: list, runs_dir: str | Path, settings: BenchSettings, meter=None,
              progress: bool = True) -> list[RunRecord]:
    """Run every configuration not yet recorded in `runs_dir`, appending one record each."""
    from calibrate.meters import make_meter

    device = resolve_device(settings.device)
    info = describe_device(device)
    meter = meter or make_meter(settings.meter)
    done = done_ids(runs_dir)
    todo = [c for c in configs if record_id(c.to_dict(), info["name"]) not in done]
    if len(todo) < len(configs):
        log.info("resuming: %d of %d configs already recorded", len(configs) - len(todo), len(configs))
    peaks: dict[str, tuple[float, str]] = {}
    out = []
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="config", desc="calibrate", dynamic_ncols=True)
    try:
        for config in todo:
            if config.dtype not in peaks:
                peaks[config.dtype] = peak_for(info, config.dtype)
            rec = run_config(config, settings, device, meter, info, peaks[config.dtype], runs_dir=runs_dir)
            append_record(runs_dir, rec)
            out.append(rec)
            if bar is not None:
                bar.set_postfix_str(f"{config.name}: {rec.status}" + (f" mfu {rec.mfu:.2f}" if rec.mfu else ""))
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        meter.close()
    return out
