"""The meters of a distributed run: which rank opens which meter, and a window's energy over the ranks.

A node-wide meter (RAPL, CodeCarbon) is opened once per node, on LOCAL_RANK 0, and the other local
ranks use a `NullMeter`, so that node energy is never counted N times (CodeCarbon #544). A
per-device meter (`nvml`, `fake`) measures ONE GPU, so every rank opens its own, for its own GPU
(by UUID) - the Zeus/Megatron pattern; "one meter on LOCAL_RANK 0" would miss the other GPUs of
the node. `--meter auto` is resolved on LOCAL_RANK 0 and the others follow its choice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from calibrate.distributed.failures import UsageError
from calibrate.distributed.job import Job
from calibrate.errors import MeasurementError

PER_DEVICE_METERS = ("nvml", "fake")  # meters that measure one GPU: one per rank


def _open_meter(name: str, local_rank: int, node_meter: str | None, uuid: str | None):
    """This rank's meter (see module docstring): node meter on LOCAL_RANK 0, per-device meters on every rank."""
    from calibrate.meters import NullMeter, make_meter

    if local_rank == 0:
        kw = {"uuid": uuid} if uuid and name in ("auto", "nvml") else {}
        return make_meter(name, **kw)
    if node_meter in PER_DEVICE_METERS:
        return make_meter(node_meter, **({"uuid": uuid} if uuid and node_meter == "nvml" else {}))
    return NullMeter()


def _device_uuid(job: Job) -> str | None:
    """The UUID of this rank's GPU (what its NVML meter opens); None on a CPU or when torch cannot tell."""
    if job.kind != "cuda":
        return None
    import torch

    try:
        return str(torch.cuda.get_device_properties(job.device).uuid)
    except Exception:
        return None


def _open_agreed(job: Job, node: int, state: dict[str, Any], opener: Callable[[], Any] | None) -> list[Any]:
    """Run `opener` (when given; its meter goes to state["meter"]) and gather every rank's (node,
    local rank, meter name, error); a UsageError on every rank when any rank's meter failed to open."""
    import torch.distributed as dist

    m, err = None, None
    if opener is not None:
        try:
            m = opener()
        except MeasurementError as exc:
            err = str(exc)
        state["meter"] = m
    got: list[Any] = [None] * job.world
    dist.all_gather_object(got, (node, job.local_rank, m.name if m is not None else None, err))
    bad = [(r, e) for r, (_, _, _, e) in enumerate(got) if e]
    if bad:
        raise UsageError(f"--meter {job.settings.meter}: rank {bad[0][0]}: {bad[0][1]}")
    return got


def open_meters(job: Job, state: dict[str, Any]):
    """This rank's meter, opened in two gathers every rank joins: LOCAL_RANK 0 opens (and resolves
    `--meter auto`) in the first, the other local ranks follow its choice in the second. A meter
    that cannot open is a usage error on every rank (no record); state["meter"] holds the meter as
    soon as it is open, for the worker to close."""
    uuid, name = _device_uuid(job), job.settings.meter
    node = int(os.environ.get("GROUP_RANK", "0"))
    if job.local_rank == 0:
        _open_agreed(job, node, state, lambda: _open_meter(name, 0, None, uuid))
        _open_agreed(job, node, state, None)  # the second gather, where the other local ranks open theirs
    else:
        got = _open_agreed(job, node, state, None)
        node_meter = next((m for g, lr, m, _ in got if g == node and lr == 0), None)
        _open_agreed(job, node, state, lambda: _open_meter(name, job.local_rank, node_meter, uuid))
    return state["meter"]


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
