"""Rank 0's record of a distributed run: exactly one `RunRecord` per run, whatever happens.

`record_base` describes the run (machine, software with the distributed setup, workload figures,
peak); `fallback_base` is what a failure record says when that description never came.
`Recorder` writes the one record, from the main thread (`ok`, or rank 0's own failure) or from
its watchdog thread, which turns a failure another rank posted on the `FailureBoard` into an
`oom`/`error` record naming the rank and message. `write_traces` stores the ranks' meter samples
beside the records and `write_ok_record` the successful run.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
from pathlib import Path
from typing import Any

from calibrate.distributed.failures import FailureBoard, say
from calibrate.distributed.job import Job

log = logging.getLogger(__name__)


class Recorder:
    """Rank 0's record writer: exactly one record per run, from the main thread or the watchdog."""

    def __init__(self, runs: str | Path, board: FailureBoard | None, fallback: dict[str, Any]):
        self.runs, self.board = runs, board
        self.base: dict[str, Any] | None = None
        self.fallback = fallback
        self.lock = threading.Lock()
        self.written: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, record) -> bool:
        """Append `record` unless one was written already; whether this call wrote it."""
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
        """Write the failure record (see `failure_record`) unless a record was written already."""
        with self.lock:
            if self.written is not None:
                return
        self.write(self.failure_record(own))

    def start_watchdog(self, poll_s: float = 0.2) -> None:
        """Watch the failure board in a thread: the first post makes it write the failure record."""
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
        """Stop the watchdog thread (joined unless it is the caller)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def fallback_base(job: Job) -> dict[str, Any]:
    """The record fields rank 0 knows before describing the machine: enough for a failure record."""
    base = {"created_utc": dt.datetime.now(dt.UTC).isoformat(), "config": job.config.to_dict(),
            "parallel": job.ns.parallel, "world_size": job.world, "device": {"kind": job.kind, "name": "unknown"},
            "warmup_steps": job.settings.warmup_steps}
    try:
        from calibrate.bench import software_info

        base["software"] = software_info()
    except Exception:
        pass
    return base


def record_base(job: Job) -> dict[str, Any]:
    """Rank 0's description of the run for its record: id, machine, software (with the distributed
    setup and NCCL version), workload figures per rank and the device's peak for the dtype."""
    import torch

    from calibrate import bench
    from calibrate import workload as wl
    from calibrate.records import record_id

    config = job.config
    info = bench.describe_device(job.kind)
    peak = bench.peak_for(info, config.dtype)
    cfg = config.to_dict()
    software = bench.software_info()
    software["distributed"] = {"backend": job.backend, "world_size": job.world, "local_world_size": job.local_world,
                               "nnodes": max(job.world // max(job.local_world, 1), 1), "launcher": "torchrun"}
    if job.kind == "cuda":
        try:
            software["nccl"] = ".".join(str(v) for v in torch.cuda.nccl.version())
        except Exception:
            pass
    rid = record_id(cfg, info["name"], job.ns.parallel, job.world)
    return dict(record_id=rid, created_utc=dt.datetime.now(dt.UTC).isoformat(), config=cfg,
                parallel=job.ns.parallel, world_size=job.world, device=info, software=software,
                warmup_steps=job.settings.warmup_steps,
                model_flops_per_step=wl.model_flops_per_step(config),
                hardware_flops_per_step=wl.hardware_flops_per_step(config),
                tokens_per_step=config.tokens_per_step, peak_flops=peak[0], peak_source=peak[1])


def write_traces(runs: str | Path, rid: str, window: int, gathered: list[dict[str, Any]]) -> str | None:
    """Every measuring rank's samples of window `window` as `traces/RID-wW-rR.csv.gz` in the runs
    folder; the first file's name (relative to the folder), None when no rank measured."""
    from calibrate.meters import write_trace_csv

    runs_dir, trace = Path(runs), None
    for g in gathered:
        if g["samples"]:
            name = f"traces/{rid}-w{window}-r{g['rank']}.csv.gz"
            (runs_dir / name).parent.mkdir(parents=True, exist_ok=True)
            write_trace_csv(g["samples"], runs_dir / name)
            trace = trace or name
    return trace


def write_ok_record(job: Job, recorder: Recorder, options: dict[str, Any], windows: list, collectives: list,
                    meter_name: str) -> None:
    """Record the successful run (windows, collectives, the wrapping options used) and say so."""
    from calibrate.records import RunRecord

    base = dict(recorder.base)
    base["software"] = {**base["software"], "parallel_options": options}
    meters = sorted({m for w in windows for m in w.meter.split("+")} - {"none"}) or [meter_name]
    rec = RunRecord(status="ok", windows=windows, collectives=collectives, meters=meters, **base)
    recorder.write(rec)
    tps = rec.tokens_per_s
    say(job.rank, f"recorded {rec.record_id} ({job.ns.parallel}, {job.world} ranks): ok, "
                  f"{tps:.1f} tokens/s" if tps else f"recorded {rec.record_id}: ok")
