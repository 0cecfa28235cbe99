"""The torchrun entry point of a distributed calibration run: one rank from start to exit.

`worker_main` reads the rank's place from torchrun's environment, pins its device (its GPU from
LOCAL_RANK), joins the process group (NCCL on CUDA, gloo on CPU) and runs
`calibrate.distributed.measure.run`. Failures: an exception on any rank (OOM, a crash) is posted to
the torchrun rendezvous store; rank 0 (or its watchdog, when rank 0 itself is blocked in a
collective waiting for the failed rank) writes an `oom`/`error` record naming the rank and message,
then the failed rank exits non-zero and torchrun ends the others. The meter is closed and the
process group destroyed on every path a rank returns by.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from calibrate.distributed.args import parse_args
from calibrate.distributed.failures import FailureBoard, UsageError, default_store, is_oom, say
from calibrate.distributed.job import Job
from calibrate.distributed.measure import run
from calibrate.distributed.recording import Recorder, fallback_base
from calibrate.errors import MeasurementError

log = logging.getLogger(__name__)


def _env_int(name: str, default: int | None = None) -> int:
    """An integer torchrun sets in the environment (a MeasurementError when it is missing without default)."""
    v = os.environ.get(name)
    if v is None:
        if default is None:
            raise MeasurementError(f"{name} is not set: run this module under torchrun "
                                   "(calibrate.distributed.launch or `trainsim calibrate run --nproc-per-node N`)")
        return default
    return int(v)


def _pick_device(wanted: str, rank: int, local_rank: int):
    """This rank's torch device (on CUDA its GPU from LOCAL_RANK, made current); None, said on
    stderr, when the wanted kind is not available."""
    import torch

    from calibrate.bench import resolve_device

    try:
        kind = resolve_device(wanted)
    except MeasurementError as exc:
        say(rank, f"error: {exc}")
        return None
    if kind != "cuda":
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        say(rank, f"error: LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices are visible")
        return None
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def worker_main(argv: Sequence[str] | None = None) -> int:
    """The torchrun entry point; returns the exit code (0 when rank 0 recorded an ok run)."""
    ns, config = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)

    import torch.distributed as dist

    from calibrate.bench import BenchSettings

    settings = BenchSettings(warmup_steps=ns.warmup, windows=ns.windows, window_s=ns.window_s,
                             min_steps=ns.min_steps, meter=ns.meter, device=ns.device)
    device = _pick_device(settings.device, rank, local_rank)
    if device is None:
        return 2
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=dt.timedelta(seconds=ns.pg_timeout))
    return _run_recorded(Job(ns, config, settings, device, backend, rank, world, local_rank, local_world))


def _run_recorded(job: Job) -> int:
    """`measure.run` with every failure recorded (see module docstring); the exit code: 0, 1 after a
    failure, 2 after a usage error every rank saw (no record)."""
    board = recorder = None
    state: dict[str, Any] = {"meter": None}
    rc, failed = 1, False
    try:
        board = FailureBoard(default_store(), job.rank, job.world) if job.world > 1 else None
        if job.rank == 0:
            recorder = Recorder(job.ns.output, board, fallback_base(job))
        rc = run(job, recorder, state)
    except UsageError as exc:  # raised on every rank alike: no record
        if job.rank == 0:
            say(job.rank, f"usage error: {exc}")
        rc = 2
    except Exception as exc:  # every failure becomes a record, then the rank exits (KeyboardInterrupt: none)
        failed, rc = True, 1
        _report_failure(exc, job.rank, board, recorder)
    finally:
        if recorder is not None:
            recorder.stop_watchdog()
        _close_meter(state["meter"])
        _close_group(failed and job.backend == "nccl", job.rank)
    return rc


def _report_failure(exc: Exception, rank: int, board: FailureBoard | None, recorder: Recorder | None) -> None:
    """Say the failure, post it on the board, and record it (rank 0) or wait until rank 0 has."""
    status = "oom" if is_oom(exc) else "error"
    message = f"{type(exc).__name__}: {exc}"
    say(rank, f"{status}: {message}")
    if not isinstance(exc, (MeasurementError, RuntimeError, ValueError)):
        log.warning("rank %d failure", rank, exc_info=exc)
    try:
        if board is not None:
            board.post(status, message)
        if recorder is not None:
            recorder.write_failure((status, message))
        elif board is not None:
            board.wait_done(30.0)  # rank 0 writes the record (maybe from its watchdog), then we exit
    except Exception as inner:  # the store is gone (rank 0 died): nothing more to do
        say(rank, f"could not report the failure: {type(inner).__name__}: {inner}")


def _close_meter(meter: Any) -> None:
    """Close this rank's meter when one opened (closing never raises here)."""
    if meter is not None:
        try:
            meter.close()
        except Exception:
            pass


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
        say(rank, f"destroy_process_group failed: {type(exc).__name__}: {exc}")


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


def main() -> None:
    """`python -m calibrate.distributed ARGS`: run the worker, then leave with its exit code."""
    try:
        code = worker_main()
    except SystemExit as exc:  # argparse usage errors and the like
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    _exit(code)
