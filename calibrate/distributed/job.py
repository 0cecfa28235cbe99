"""What one rank of a distributed calibration run knows: its options, workload and place in the job.

`Job` is handed to every step of the run (`calibrate.distributed.measure`), with the two
device-level operations they all use: `sync` (wait for the device) and `allreduce`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from calibrate.collective_probe import _device_sync


@dataclass(frozen=True)
class Job:
    """One rank's view of the run: parsed options, workload config, bench settings, device and place.

    backend: the process group's ("nccl" on CUDA, "gloo" on CPU); rank and world count every
    process of the job, local_rank and local_world those of this node.
    """

    ns: argparse.Namespace
    config: Any  # calibrate.workload.WorkloadConfig
    settings: Any  # calibrate.bench.BenchSettings
    device: Any  # torch.device
    backend: str
    rank: int
    world: int
    local_rank: int
    local_world: int

    @property
    def kind(self) -> str:
        """The device kind: "cuda" or "cpu"."""
        return self.device.type

    def sync(self) -> None:
        """Wait until this rank's device has run everything queued on it."""
        _device_sync(self.device)

    def allreduce(self, values: list[float], op: Any) -> list[float]:
        """`values` reduced over every rank with `op` (a `torch.distributed.ReduceOp`)."""
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=op)
        return t.cpu().tolist()
