"""Multi-device calibration under torchrun: the worker that runs DDP / FSDP2 training windows.

`calibrate.launch.launch(N, args)` runs `python -m torch.distributed.run --standalone
--nproc_per_node N -m calibrate.distributed ARGS`; every worker runs `worker_main`, which

1. joins the process group (NCCL on CUDA, gloo on CPU) and pins its GPU from LOCAL_RANK;
2. builds the calibration workload (`calibrate.workload.build`) and wraps it with DDP
   (`DistributedDataParallel`) or FSDP2 (`fully_shard` on every transformer block, then the root);
3. runs the bench protocol of `calibrate.bench.run_config` (warm-up, then timed windows of at
   least `window_s` seconds and `min_steps` steps, device-synchronised at the edges). All ranks run
   the same number of steps per window: the steps are planned from the warm-up step time and
   extended in chunks until the window time, the MAX over ranks (all_reduce), reaches `window_s`;
4. measures energy per window with one meter per measured unit (see "Meters" below), summed over
   ranks with an all_reduce SUM (measurement.md sec. 6: MAX for time, SUM for energy);
5. runs `calibrate.collective_probe.collective_probe` (all_reduce, all_gather, reduce_scatter,
   all_to_all: time, algbw and busbw per the nccl-tests doc/PERFORMANCE.md conventions);
6. rank 0 appends ONE `RunRecord` (parallel "ddp"|"fsdp", world_size, windows, collectives;
   tokens_per_step and model_flops_per_step are per rank) to the `--output` runs folder.

Meters: a node-wide meter (RAPL, CodeCarbon) is opened once per node, on LOCAL_RANK 0, and the
other local ranks use a `NullMeter`, so that node energy is never counted N times (CodeCarbon
#544). A per-device meter (`nvml`, `fake`) measures ONE GPU, so every rank opens its own, for its
own GPU (by UUID) - the Zeus/Megatron pattern; "one meter on LOCAL_RANK 0" would miss the other
GPUs of the node. `--meter auto` is resolved on LOCAL_RANK 0 and the others follow its choice.

Failures: an exception on any rank (OOM, a crash) is posted to the torchrun rendezvous store; a
watchdog thread on rank 0 (which may itself be blocked in a collective waiting for the failed
rank) writes an `oom`/`error` record naming the rank and message, then the failed rank exits
non-zero and torchrun ends the others. The process group is destroyed on every path a rank
returns by. The test hook `TRAINSIM_TEST_FAIL_RANK=R` (with `TRAINSIM_TEST_FAIL_AT=` setup |
build | warmup | window | probe, default warmup, and `TRAINSIM_TEST_FAIL_KIND=` error | oom)
raises a simulated failure on rank R.

`collective_probe`, `busbw_factor`, `bus_bandwidth`, `fit_alpha_beta` (from
`calibrate.collective_probe`) and `launch` (from `calibrate.launch`) are re-exported here.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import json
import logging
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from calibrate.collective_probe import (  # noqa: F401  (re-exported for existing callers)
    DEFAULT_PROBE_SIZES,
    OPS,
    _device_sync,
    bus_bandwidth,
    busbw_factor,
    collective_probe,
    fit_alpha_beta,
)
from calibrate.errors import MeasurementError
from calibrate.launch import _ERROR_LINE, launch  # noqa: F401  (launch re-exported)

log = logging.getLogger(__name__)

PARALLEL = ("ddp", "fsdp")
PER_DEVICE_METERS = ("nvml", "fake")  # meters that measure one GPU: one per rank
FAIL_STAGES = ("setup", "build", "warmup", "window", "probe")


# --- worker command line ---------------------------------------------------------------------------
def _number_type(convert: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    """An argparse `type` converting with `convert` and accepting values for which `ok` holds."""

    def parse(text: str):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


_positive_int = _number_type(int, lambda v: v > 0, "a positive integer")
_nonneg_int = _number_type(int, lambda v: v >= 0, "a non-negative integer")
_positive_float = _number_type(float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def _probe_sizes(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    try:
        sizes = [int(float(s)) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated byte counts, got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected positive byte counts, got {text!r}")
    return sizes


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line `launch` picks out of torchrun's output
        self.print_usage(sys.stderr)
        self.exit(2, f"{_ERROR_LINE} usage error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from calibrate.workload import DTYPES, SIZES

    p = _Parser(prog="python -m calibrate.distributed",
                description="One DDP/FSDP2 calibration run under torchrun (one record by rank 0).")
    p.add_argument("--output", required=True, help="runs folder (records.jsonl is appended by rank 0)")
    p.add_argument("--size", required=True, choices=list(SIZES), help="named workload size")
    p.add_argument("--batch", type=_positive_int, default=None, help="micro-batch per rank (default: the size's)")
    p.add_argument("--seq", type=_positive_int, default=None, help="sequence length (default: the size's)")
    p.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    p.add_argument("--compile", action="store_true", help="torch.compile the wrapped model")
    p.add_argument("--parallel", choices=list(PARALLEL), default="ddp")
    p.add_argument("--warmup", type=_nonneg_int, default=3, help="warm-up steps")
    p.add_argument("--windows", type=_positive_int, default=3, help="timed windows")
    p.add_argument("--window-s", type=_positive_float, default=60.0, help="minimum window length (s)")
    p.add_argument("--min-steps", type=_positive_int, default=5, help="minimum steps per window")
    p.add_argument("--meter", default="auto", help="auto | nvml | codecarbon | rapl | none | fake")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--probe-sizes", type=_probe_sizes, default=list(DEFAULT_PROBE_SIZES),
                   help="comma-separated byte counts for the collective probe ('none' skips it)")
    p.add_argument("--probe-iters", type=_positive_int, default=5)
    p.add_argument("--probe-warmup", type=_nonneg_int, default=2)
    p.add_argument("--resume", action="store_true", help="do nothing when this config's record id is already recorded")
    p.add_argument("--pg-timeout", type=_positive_float, default=600.0, help="process group timeout (s)")
    return p


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Any]:
    """(namespace, WorkloadConfig); bad usage exits 2 with argparse's message (on every rank)."""
    from calibrate.workload import SIZES

    parser = build_parser()
    ns = parser.parse_args(None if argv is None else list(argv))
    base = SIZES[ns.size]
    batch, seq = ns.batch or base.batch_size, ns.seq or base.seq_len
    try:
        config = dataclasses.replace(base, name=f"{ns.size}-b{batch}-s{seq}", batch_size=batch, seq_len=seq,
                                     dtype=ns.dtype, compile=ns.compile)
    except ValueError as exc:
        parser.error(str(exc))
    from calibrate.meters import METER_NAMES

    if ns.meter.strip().lower() not in METER_NAMES:
        parser.error(f"--meter: expected one of {', '.join(METER_NAMES)}, got {ns.meter!r}")
    ns.meter = ns.meter.strip().lower()
    return ns, config


# --- failure coordination through the rendezvous store -----------------------------------------------
class _FailureBoard:
    """Failure posts in the torchrun TCP store, readable while the collectives are stuck."""

    PREFIX = "trainsim_calibrate/"

    def __init__(self, store, rank: int, world: int):
        self.store, self.rank, self.world = store, rank, world

    def post(self, status: str, message: str) -> None:
        seq = self.store.add(self.PREFIX + "n_failed", 1)
        blob = json.dumps({"seq": seq, "rank": self.rank, "status": status, "error": message})
        self.store.set(self.PREFIX + f"failed/{self.rank}", blob)

    def count(self) -> int:
        return int(self.store.add(self.PREFIX + "n_failed", 0))

    def failures(self, wait_s: float = 2.0) -> list[dict[str, Any]]:
        """Posted failures, earliest first (waits up to wait_s for posts counted but not yet written)."""
        deadline = time.monotonic() + wait_s
        while True:
            found = []
            for r in range(self.world):
                key = self.PREFIX + f"failed/{r}"
                if self.store.check([key]):
                    found.append(json.loads(self.store.get(key)))
            if len(found) >= self.count() or time.monotonic() > deadline:
                return sorted(found, key=lambda f: f["seq"])
            time.sleep(0.05)

    def mark_done(self, status: str) -> None:
        self.store.set(self.PREFIX + "recorded", status)

    def wait_done(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.store.check([self.PREFIX + "recorded"]):
                return True
            time.sleep(0.05)
        return False


def _default_store():
    import torch.distributed as dist

    try:
        from torch.distributed.distributed_c10d import _get_default_store

        return _get_default_store()
    except Exception:  # private API gone: a client of the torchrun store
        return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                             timeout=dt.timedelta(seconds=60))


class _UsageError(MeasurementError):
    """A problem every rank detects together (e.g. the meter cannot open): exit 2, no record."""


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


class _Recorder:
    """Rank 0's record writer: exactly one record per run, from the main thread or the watchdog."""

    def __init__(self, runs: str | Path, board: _FailureBoard | None, fallback: dict[str, Any]):
        self.runs, self.board = runs, board
        self.base: dict[str, Any] | None = None
        self.fallback = fallback
        self.lock = threading.Lock()
        self.written: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, record) -> bool:
        from calibrate.records import append_record

        with self.lock:
            if self.written is not None:
                return False
            append_record(self.runs, record)
            self.written = record.status
            if self.board is not None:
                try:
                    self.board.mark_done(record.status)
                except Exception:  # store gone: the other ranks time out waiting
                    pass
            return True

    def failure_record(self, own: tuple[str, str] | None):
        """An oom/error record from the posted failures (earliest first) and rank 0's own error."""
        from calibrate.records import RunRecord, record_id

        posts = self.board.failures() if self.board is not None else []
        if own is not None and not any(p["rank"] == 0 for p in posts):
            posts.append({"seq": math.inf, "rank": 0, "status": own[0], "error": own[1]})
        if not posts:
            posts = [{"rank": 0, "status": "error", "error": "unknown failure"}]
        first = posts[0]
        message = f"rank {first['rank']}: {first['error']}"
        if len(posts) > 1:
            message += " | then " + "; ".join(f"rank {p['rank']}: {p['error']}" for p in posts[1:])
        base = dict(self.base) if self.base is not None else dict(self.fallback)
        if "record_id" not in base:
            base["record_id"] = record_id(base["config"], base["device"].get("name", "unknown"), base["parallel"],
                                          base["world_size"])
        return RunRecord(status=first["status"], error=message[:4000], **base)

    def write_failure(self, own: tuple[str, str] | None = None) -> None:
        with self.lock:
            if self.written is not None:
                return
        self.write(self.failure_record(own))

    def start_watchdog(self, poll_s: float = 0.2) -> None:
        if self.board is None or self._thread is not None:
            return

        def watch():
            while not self._stop.wait(poll_s):
                try:
                    if self.board.count() > 0:
                        self._stop.wait(0.3)  # let simultaneous failures arrive
                        self.write_failure()
                        return
                except Exception as exc:  # the store went away: nothing left to coordinate
                    log.debug("watchdog stops: %s", exc)
                    return

        self._thread = threading.Thread(target=watch, name="trainsim-failure-watchdog", daemon=True)
        self._thread.start()

    def stop_watchdog(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def _test_fail_hook(stage: str, rank: int) -> None:
    """Raise a simulated failure when TRAINSIM_TEST_FAIL_RANK names this rank (tests only)."""
    target = os.environ.get("TRAINSIM_TEST_FAIL_RANK")
    if target is None or target.strip() == "" or int(target) != rank:
        return
    at = os.environ.get("TRAINSIM_TEST_FAIL_AT", "warmup")
    if at not in FAIL_STAGES:
        raise MeasurementError(f"TRAINSIM_TEST_FAIL_AT: expected one of {', '.join(FAIL_STAGES)}, got {at!r}")
    if at != stage:
        return
    if os.environ.get("TRAINSIM_TEST_FAIL_KIND", "error") == "oom":
        raise RuntimeError(f"CUDA out of memory (simulated by TRAINSIM_TEST_FAIL_RANK={rank} at {stage})")
    raise RuntimeError(f"simulated failure (TRAINSIM_TEST_FAIL_RANK={rank} at {stage})")


# --- wrapping ----------------------------------------------------------------------------------------
def _fully_shard():
    try:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    except ImportError as exc:
        import torch

        raise MeasurementError(f"--parallel fsdp needs FSDP2 (torch.distributed.fsdp.fully_shard, torch >= 2.6); "
                               f"torch {torch.__version__} lacks it ({exc}); use --parallel ddp") from None
    return fully_shard, MixedPrecisionPolicy


def wrap_workload(work, parallel: str, device, local_rank: int) -> dict[str, Any]:
    """Wrap `work.model` with DDP or FSDP2 in place (optimizer rebuilt for FSDP2); returns the options used."""
    import torch

    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [local_rank] if device.type == "cuda" else None
        # The only buffers are the constant RoPE tables: no need to broadcast them every step
        # (`forward_sync_buffers` replaces `broadcast_buffers` in recent torch).
        import inspect

        key = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters \
            else "broadcast_buffers"
        model = DDP(work.module, device_ids=ids, **{key: False})
        work.model = torch.compile(model) if work.config.compile else model
        return {"bucket_cap_mb": 25, key: False}
    if parallel != "fsdp":
        raise MeasurementError(f"--parallel: expected one of {', '.join(PARALLEL)}, got {parallel!r}")
    fully_shard, MixedPrecisionPolicy = _fully_shard()
    mp = None
    if work.autocast_dtype is not None:  # bf16: gather parameters in bf16, reduce gradients in fp32
        mp = MixedPrecisionPolicy(param_dtype=work.autocast_dtype, reduce_dtype=torch.float32)
    kw = {"mp_policy": mp} if mp is not None else {}
    module = work.module
    for block in module.blocks:
        fully_shard(block, **kw)
    fully_shard(module, **kw)
    old = work.optimizer  # holds the unsharded parameters: rebuild it on the DTensor ones
    params = list(module.parameters())
    wd = max(g["weight_decay"] for g in old.param_groups)
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": wd},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    d = old.defaults
    work.optimizer = type(old)(groups, lr=d["lr"], betas=d["betas"], eps=d["eps"], fused=d.get("fused"))
    work.model = torch.compile(module) if work.config.compile else module
    return {"reshard_after_forward": True, "param_dtype": "bf16" if mp is not None else "fp32",
            "reduce_dtype": "fp32", "sharded": "per block + root"}


# --- meters -------------------------------------------------------------------------------------------
def _open_meter(name: str, local_rank: int, node_meter: str | None, uuid: str | None):
    """This rank's meter (see module docstring): node meter on LOCAL_RANK 0, per-device meters on every rank."""
    from calibrate.meters import NullMeter, make_meter

    if local_rank == 0:
        kw = {"uuid": uuid} if uuid and name in ("auto", "nvml") else {}
        return make_meter(name, **kw)
    if node_meter in PER_DEVICE_METERS:
        return make_meter(node_meter, **({"uuid": uuid} if uuid and node_meter == "nvml" else {}))
    return NullMeter()


def combine_window(per_rank: Sequence[dict[str, Any]], duration_s: float, steps: int) -> dict[str, Any]:
    """Window fields from the per-rank window facts (pure; used by rank 0).

    Each item: rank, duration_s (its own), measuring (a real meter), energy_j, meter, flags, estimated.
    energy_j is the SUM over measuring ranks (None if none measures, or one of them has no reading,
    flagged `energy_missing_on_some_ranks`); mean_power_w = energy / window time (all devices).
    """
    measuring = [r for r in per_rank if r["measuring"]]
    missing = [r["rank"] for r in measuring if r["energy_j"] is None]
    energy = sum(r["energy_j"] for r in measuring) if measuring and not missing else None
    flags = sorted({f for r in measuring for f in r.get("flags", [])})
    if missing and len(missing) < len(measuring):
        flags.append("energy_missing_on_some_ranks")
    meters = sorted({r["meter"] for r in measuring})
    return {"steps": steps, "duration_s": duration_s, "energy_j": energy,
            "mean_power_w": energy / duration_s if energy is not None and duration_s > 0 else None,
            "meter": "+".join(meters) if meters else "none", "flags": flags,
            "estimated": any(r.get("estimated") for r in measuring),
            "details": {"n_meters": len(measuring), "ranks": [
                {k: r.get(k) for k in ("rank", "local_rank", "duration_s", "meter", "energy_j", "flags")}
                for r in per_rank]}}


# --- the worker ---------------------------------------------------------------------------------------
def _env_int(name: str, default: int | None = None) -> int:
    v = os.environ.get(name)
    if v is None:
        if default is None:
            raise MeasurementError(f"{name} is not set: run this module under torchrun "
                                   "(calibrate.distributed.launch or `trainsim calibrate run --nproc-per-node N`)")
        return default
    return int(v)


def _say(rank: int, text: str) -> None:
    print(f"{_ERROR_LINE} rank {rank}: {text}", file=sys.stderr, flush=True)


def worker_main(argv: Sequence[str] | None = None) -> int:
    """The torchrun entry point; returns the exit code (0 when rank 0 recorded an ok run)."""
    ns, config = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)

    import torch
    import torch.distributed as dist

    from calibrate.bench import BenchSettings, resolve_device

    settings = BenchSettings(warmup_steps=ns.warmup, windows=ns.windows, window_s=ns.window_s,
                             min_steps=ns.min_steps, meter=ns.meter, device=ns.device)
    try:
        kind = resolve_device(settings.device)
    except MeasurementError as exc:
        _say(rank, f"error: {exc}")
        return 2
    if kind == "cuda":
        if local_rank >= torch.cuda.device_count():
            _say(rank, f"error: LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices are visible")
            return 2
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    backend = "nccl" if kind == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=dt.timedelta(seconds=ns.pg_timeout))
    board = recorder = None
    state: dict[str, Any] = {"meter": None}
    rc, failed = 1, False
    try:
        board = _FailureBoard(_default_store(), rank, world) if world > 1 else None
        if rank == 0:
            fallback = {"created_utc": dt.datetime.now(dt.UTC).isoformat(), "config": config.to_dict(),
                        "parallel": ns.parallel, "world_size": world, "device": {"kind": kind, "name": "unknown"},
                        "warmup_steps": settings.warmup_steps}
            try:
                from calibrate.bench import software_info

                fallback["software"] = software_info()
            except Exception:
                pass
            recorder = _Recorder(ns.output, board, fallback)
        rc = _run(ns, config, settings, device, backend, rank, world, local_rank, local_world, recorder, state)
    except _UsageError as exc:  # raised on every rank alike: no record
        if rank == 0:
            _say(rank, f"usage error: {exc}")
        rc = 2
    except Exception as exc:  # every failure becomes a record, then the rank exits (KeyboardInterrupt: none)
        failed = True
        status = "oom" if _is_oom(exc) else "error"
        message = f"{type(exc).__name__}: {exc}"
        _say(rank, f"{status}: {message}")
        if not isinstance(exc, (MeasurementError, RuntimeError, ValueError)):
            log.warning("rank %d failure", rank, exc_info=True)
        try:
            if board is not None:
                board.post(status, message)
            if recorder is not None:
                recorder.write_failure((status, message))
            elif board is not None:
                board.wait_done(30.0)  # rank 0 writes the record (maybe from its watchdog), then we exit
        except Exception as inner:  # the store is gone (rank 0 died): nothing more to do
            _say(rank, f"could not report the failure: {type(inner).__name__}: {inner}")
        rc = 1
    finally:
        if recorder is not None:
            recorder.stop_watchdog()
        if state["meter"] is not None:
            try:
                state["meter"].close()
            except Exception:
                pass
        _close_group(failed and backend == "nccl", rank)
    return rc


def _close_group(abort: bool, rank: int) -> None:
    """Destroy the process group; after a failure on NCCL abort it (pending collectives never finish)."""
    import torch.distributed as dist

    try:
        if not dist.is_initialized():
            return
        if abort:
            try:
                from torch.distributed.distributed_c10d import _abort_process_group

                _abort_process_group()
                return
            except Exception:
                pass
        dist.destroy_process_group()
    except Exception as exc:
        _say(rank, f"destroy_process_group failed: {type(exc).__name__}: {exc}")


def _run(ns, config, settings, device, backend, rank, world, local_rank, local_world, recorder, state):
    """The run proper (see module docstring); returns the exit code; state["meter"] is this rank's meter."""
    import torch
    import torch.distributed as dist

    from calibrate import bench
    from calibrate import workload as wl
    from calibrate.records import RunRecord, Window, done_ids, record_id

    clock = time.perf_counter
    kind = device.type

    def sync():
        _device_sync(device)

    def allreduce(values: list[float], op) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=op)
        return t.cpu().tolist()

    _test_fail_hook("setup", rank)
    # Rank 0 describes the machine first, alone (its peak probe must not share the device).
    skip = False
    if rank == 0:
        info = bench.describe_device(kind)
        peak = bench.peak_for(info, config.dtype)
        cfg = config.to_dict()
        software = bench.software_info()
        software["distributed"] = {"backend": backend, "world_size": world, "local_world_size": local_world,
                                   "nnodes": max(world // max(local_world, 1), 1), "launcher": "torchrun"}
        if kind == "cuda":
            try:
                software["nccl"] = ".".join(str(v) for v in torch.cuda.nccl.version())
            except Exception:
                pass
        rid = record_id(cfg, info["name"], ns.parallel, world)
        recorder.base = dict(record_id=rid, created_utc=dt.datetime.now(dt.UTC).isoformat(), config=cfg,
                             parallel=ns.parallel, world_size=world, device=info, software=software,
                             warmup_steps=settings.warmup_steps,
                             model_flops_per_step=wl.model_flops_per_step(config),
                             hardware_flops_per_step=wl.hardware_flops_per_step(config),
                             tokens_per_step=config.tokens_per_step, peak_flops=peak[0], peak_source=peak[1])
        skip = bool(ns.resume and rid in done_ids(ns.output))
        recorder.start_watchdog()
    flag = [skip]
    dist.broadcast_object_list(flag, src=0)
    if flag[0]:
        if rank == 0:
            _say(rank, f"record {recorder.base['record_id']} already in {ns.output}: skipped (--resume)")
        return 0

    # Meters: LOCAL_RANK 0 resolves the meter; the other local ranks follow (per-device meters) or stay null.
    # A meter that cannot open is a usage error on every rank (no record), agreed through the gathers.
    uuid = None
    if kind == "cuda":
        try:
            uuid = str(torch.cuda.get_device_properties(device).uuid)
        except Exception:
            uuid = None
    node = int(os.environ.get("GROUP_RANK", "0"))

    def open_agreed(opener) -> Any:
        m, err = None, None
        if opener is not None:
            try:
                m = opener()
            except MeasurementError as exc:
                err = str(exc)
            state["meter"] = m
        got: list[Any] = [None] * world
        dist.all_gather_object(got, (node, local_rank, m.name if m is not None else None, err))
        bad = [(r, e) for r, (_, _, _, e) in enumerate(got) if e]
        if bad:
            raise _UsageError(f"--meter {settings.meter}: rank {bad[0][0]}: {bad[0][1]}")
        return got

    got = open_agreed((lambda: _open_meter(settings.meter, 0, None, uuid)) if local_rank == 0 else None)
    if local_rank != 0:
        node_meter = next((m for g, lr, m, _ in got if g == node and lr == 0), None)
        open_agreed(lambda: _open_meter(settings.meter, local_rank, node_meter, uuid))
    else:
        open_agreed(None)  # the second gather, where the other local ranks open theirs
    meter = state["meter"]
    from calibrate.meters import NullMeter

    measuring = not isinstance(meter, NullMeter)

    # Build and wrap.
    work = wl.build(config, device)
    options = wrap_workload(work, ns.parallel, device, local_rank)
    _test_fail_hook("build", rank)
    gen = torch.Generator(device=device).manual_seed(config.seed + rank)  # each rank its own data
    batch = wl.synthetic_batch(config, device, gen)

    # Warm-up; the step time of its last steps (MAX over ranks) plans the windows.
    step_times = []
    for i in range(settings.warmup_steps):
        if i == min(1, settings.warmup_steps - 1):
            _test_fail_hook("warmup", rank)
        sync()
        t0 = clock()
        work.train_step(batch)
        sync()
        step_times.append(clock() - t0)
    est = statistics.median(step_times[1:] or step_times) if step_times else 0.0
    est = allreduce([est], dist.ReduceOp.MAX)[0]

    windows = []
    runs_dir = Path(ns.output)
    rid = recorder.base["record_id"] if recorder is not None else None
    for w in range(settings.windows):
        if w == settings.windows - 1:
            _test_fail_hook("window", rank)
        chunk = max(settings.min_steps, math.ceil(settings.window_s / est) if est > 0 else settings.min_steps)
        sync()
        dist.barrier(**({"device_ids": [device.index]} if kind == "cuda" else {}))
        meter.start_window()
        t0, steps = clock(), 0
        while True:
            for _ in range(chunk):
                work.step(batch)  # no host sync per step, as in bench.run_config
                steps += 1
                if steps % 4 == 0:
                    sync()
            sync()
            local = clock() - t0
            t_max = allreduce([local], dist.ReduceOp.MAX)[0]  # the window lasts until the slowest rank ends
            if steps >= settings.min_steps and t_max >= settings.window_s:
                break
            rate = t_max / steps
            chunk = max(1, settings.min_steps - steps, math.ceil((settings.window_s - t_max) / rate) if rate > 0 else 1)
        reading = meter.end_window()
        e = reading.energy_j if measuring else None
        facts = {"rank": rank, "local_rank": local_rank, "duration_s": local, "measuring": measuring, "energy_j": e,
                 "meter": reading.meter, "flags": list(reading.flags), "estimated": reading.estimated}
        totals = allreduce([e or 0.0, 1.0 if measuring and e is None else 0.0, 1.0 if measuring else 0.0],
                           dist.ReduceOp.SUM)  # node/device energies summed over the job
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, {**facts, "samples": reading.samples if measuring else []})
        if rank == 0:
            fields = combine_window(gathered, t_max, steps)
            trace = None
            for g in gathered:  # every measuring rank's samples, written by rank 0
                if g["samples"]:
                    from calibrate.meters import write_trace_csv

                    name = f"traces/{rid}-w{w}-r{g['rank']}.csv.gz"
                    (runs_dir / name).parent.mkdir(parents=True, exist_ok=True)
                    write_trace_csv(g["samples"], runs_dir / name)
                    trace = trace or name
            fields["details"].update(energy_sum_j=totals[0] if totals[2] else None,
                                     rank0_meter=dict(reading.details))
            windows.append(Window(trace_file=trace, **fields))

    # Free the model before the probe (its buffers compete for memory; wrapped modules sit in cycles).
    del work, batch
    gc.collect()
    if kind == "cuda":
        torch.cuda.empty_cache()
    _test_fail_hook("probe", rank)
    collectives = collective_probe(ns.probe_sizes, iters=ns.probe_iters, warmup=ns.probe_warmup, device=device) \
        if ns.probe_sizes else []
    if rank == 0:
        base = dict(recorder.base)
        base["software"] = {**base["software"], "parallel_options": options}
        meters = sorted({m for w in windows for m in w.meter.split("+")} - {"none"}) or [meter.name]
        rec = RunRecord(status="ok", windows=windows, collectives=collectives, meters=meters, **base)
        recorder.write(rec)
        tps = rec.tokens_per_s
        _say(rank, f"recorded {rec.record_id} ({ns.parallel}, {world} ranks): ok, "
                   f"{tps:.1f} tokens/s" if tps else f"recorded {rec.record_id}: ok")
    return 0


def _exit(code: int) -> None:
    """Leave without interpreter finalisation (the record is written and the group destroyed).

    In torch 2.13 a DDP module keeps its gloo process group alive after `destroy_process_group()`
    (even once deleted and collected), so the group's worker threads still run at exit; one that
    frees a finished work's tensor then needs the GIL during `Py_FinalizeEx`, and the process
    aborts ("terminate called without an active exception", SIGABRT) in about 1 run in 10, which
    torchrun reports as a failed job. `os._exit` skips finalisation.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


if __name__ == "__main__":
    try:
        code = worker_main()
    except SystemExit as exc:  # argparse usage errors and the like
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    _exit(code)
