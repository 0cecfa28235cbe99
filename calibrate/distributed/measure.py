"""The run proper on one rank: the per-rank measurement loop of a distributed calibration run.

Every rank runs the same steps, in the same order of collectives: rank 0 describes the machine
(and skips a run already recorded, with --resume); the meters open; the workload is built and
wrapped (DDP or FSDP2); warm-up steps plan the windows; each timed window runs until the slowest
rank has spent `window_s` seconds and `min_steps` steps in it, and its energies are summed over
the ranks (measurement.md sec. 6: MAX for time, SUM for energy); the collective probe runs last,
on a freed device. Rank 0 writes the `ok` record.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, NamedTuple

from calibrate.collective_probe import collective_probe
from calibrate.distributed.failures import fail_if_asked, say
from calibrate.distributed.job import Job
from calibrate.distributed.metering import combine_window, open_meters
from calibrate.distributed.recording import Recorder, record_base, write_ok_record, write_traces
from calibrate.distributed.wrap import wrap_workload


class Timed(NamedTuple):
    """One timed window on this rank: the meter's reading, the steps, this rank's and the job's seconds."""

    reading: Any  # calibrate.meters.MeterReading
    steps: int
    local_s: float
    max_s: float


def _already_recorded(job: Job, recorder: Recorder | None) -> bool:
    """Rank 0 describes the machine first, alone (its peak probe must not share the device), and
    checks --resume; every rank learns whether the run is recorded already (then it is skipped)."""
    import torch.distributed as dist

    from calibrate.records import done_ids

    skip = False
    if job.rank == 0:
        recorder.base = record_base(job)
        skip = bool(job.ns.resume and recorder.base["record_id"] in done_ids(job.ns.output))
        recorder.start_watchdog()
    flag = [skip]
    dist.broadcast_object_list(flag, src=0)
    if flag[0] and job.rank == 0:
        say(job.rank, f"record {recorder.base['record_id']} already in {job.ns.output}: skipped (--resume)")
    return bool(flag[0])


def _warmup(job: Job, work, batch) -> float:
    """Run the warm-up steps; the median time of all but the first, MAX over ranks, plans the windows."""
    import torch.distributed as dist

    n, step_times = job.settings.warmup_steps, []
    for i in range(n):
        if i == min(1, n - 1):
            fail_if_asked("warmup", job.rank)
        job.sync()
        t0 = time.perf_counter()
        work.train_step(batch)
        job.sync()
        step_times.append(time.perf_counter() - t0)
    est = statistics.median(step_times[1:] or step_times) if step_times else 0.0
    return job.allreduce([est], dist.ReduceOp.MAX)[0]


def _steps_until_long_enough(job: Job, work, batch, chunk: int) -> tuple[int, float, float]:
    """Train in chunks until the window has `min_steps` steps and lasts `window_s` on the slowest
    rank (all ranks run the same steps); (steps, this rank's seconds, the MAX over ranks)."""
    import torch.distributed as dist

    s = job.settings
    t0, steps = time.perf_counter(), 0
    while True:
        for _ in range(chunk):
            work.step(batch)  # no host sync per step, as in bench.run_config
            steps += 1
            if steps % 4 == 0:
                job.sync()
        job.sync()
        local = time.perf_counter() - t0
        t_max = job.allreduce([local], dist.ReduceOp.MAX)[0]  # the window lasts until the slowest rank ends
        if steps >= s.min_steps and t_max >= s.window_s:
            return steps, local, t_max
        rate = t_max / steps
        chunk = max(1, s.min_steps - steps, math.ceil((s.window_s - t_max) / rate) if rate > 0 else 1)


def _timed_window(job: Job, index: int, work, batch, meter, est: float) -> Timed:
    """Window `index`: steps planned from the warm-up estimate `est`, device-synchronised and
    barriered at the start, measured by this rank's meter."""
    import torch.distributed as dist

    s = job.settings
    if index == s.windows - 1:
        fail_if_asked("window", job.rank)
    chunk = max(s.min_steps, math.ceil(s.window_s / est) if est > 0 else s.min_steps)
    job.sync()
    dist.barrier(**({"device_ids": [job.device.index]} if job.kind == "cuda" else {}))
    meter.start_window()
    steps, local, t_max = _steps_until_long_enough(job, work, batch, chunk)
    return Timed(meter.end_window(), steps, local, t_max)


def _combined_window(job: Job, index: int, timed: Timed, measuring: bool, recorder: Recorder | None):
    """The window over every rank (energies summed, facts gathered): rank 0 returns its `Window`,
    its meters' traces written beside the records; the other ranks return None."""
    import torch.distributed as dist

    from calibrate.records import Window

    reading = timed.reading
    e = reading.energy_j if measuring else None
    facts = {"rank": job.rank, "local_rank": job.local_rank, "duration_s": timed.local_s, "measuring": measuring,
             "energy_j": e, "meter": reading.meter, "flags": list(reading.flags), "estimated": reading.estimated}
    totals = job.allreduce([e or 0.0, 1.0 if measuring and e is None else 0.0, 1.0 if measuring else 0.0],
                           dist.ReduceOp.SUM)  # node/device energies summed over the job
    gathered: list[Any] = [None] * job.world
    dist.all_gather_object(gathered, {**facts, "samples": reading.samples if measuring else []})
    if job.rank != 0:
        return None
    fields = combine_window(gathered, timed.max_s, timed.steps)
    trace = write_traces(job.ns.output, recorder.base["record_id"], index, gathered)
    fields["details"].update(energy_sum_j=totals[0] if totals[2] else None, rank0_meter=dict(reading.details))
    return Window(trace_file=trace, **fields)


def _probe(job: Job) -> list[dict[str, Any]]:
    """The collective probe's rows (none when --probe-sizes is 'none')."""
    fail_if_asked("probe", job.rank)
    ns = job.ns
    return collective_probe(ns.probe_sizes, iters=ns.probe_iters, warmup=ns.probe_warmup, device=job.device) \
        if ns.probe_sizes else []


def run(job: Job, recorder: Recorder | None, state: dict[str, Any]) -> int:
    """The run proper (see module docstring); returns the exit code; state["meter"] is this rank's meter."""
    import gc

    import torch

    from calibrate import workload as wl
    from calibrate.meters import NullMeter

    fail_if_asked("setup", job.rank)
    if _already_recorded(job, recorder):
        return 0
    meter = open_meters(job, state)
    measuring = not isinstance(meter, NullMeter)
    work = wl.build(job.config, job.device)
    options = wrap_workload(work, job.ns.parallel, job.device, job.local_rank)
    fail_if_asked("build", job.rank)
    gen = torch.Generator(device=job.device).manual_seed(job.config.seed + job.rank)  # each rank its own data
    batch = wl.synthetic_batch(job.config, job.device, gen)
    est = _warmup(job, work, batch)
    windows = []
    for index in range(job.settings.windows):
        timed = _timed_window(job, index, work, batch, meter, est)
        window = _combined_window(job, index, timed, measuring, recorder)
        if window is not None:  # rank 0
            windows.append(window)
    # Free the model before the probe (its buffers compete for memory; wrapped modules sit in cycles).
    del work, batch
    gc.collect()
    if job.kind == "cuda":
        torch.cuda.empty_cache()
    collectives = _probe(job)
    if job.rank == 0:
        write_ok_record(job, recorder, options, windows, collectives, meter.name)
    return 0
