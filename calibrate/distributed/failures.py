"""How a rank reports trouble: one-line messages, simulated failures for tests, and the failure board.

A rank that fails posts its status and message to the torchrun rendezvous store (`FailureBoard`),
which rank 0's watchdog (`calibrate.distributed.recording.Recorder`) reads even while its own
collectives are stuck waiting for the failed rank. The test hook `TRAINSIM_TEST_FAIL_RANK=R` (with
`TRAINSIM_TEST_FAIL_AT=` setup | build | warmup | window | probe, default warmup, and
`TRAINSIM_TEST_FAIL_KIND=` error | oom) raises a simulated failure on rank R (`fail_if_asked`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from typing import Any

from calibrate.errors import MeasurementError
from calibrate.launch import _ERROR_LINE

FAIL_STAGES = ("setup", "build", "warmup", "window", "probe")


def say(rank: int, text: str) -> None:
    """One line on stderr, `trainsim-calibrate: rank R: TEXT` (what `calibrate.launch` picks out)."""
    print(f"{_ERROR_LINE} rank {rank}: {text}", file=sys.stderr, flush=True)


class UsageError(MeasurementError):
    """A problem every rank detects together (e.g. the meter cannot open): exit 2, no record."""


def is_oom(exc: BaseException) -> bool:
    """Whether `exc` is a device out-of-memory error (recorded as status `oom`)."""
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def fail_if_asked(stage: str, rank: int) -> None:
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


class FailureBoard:
    """Failure posts in the torchrun TCP store, readable while the collectives are stuck."""

    PREFIX = "trainsim_calibrate/"

    def __init__(self, store, rank: int, world: int):
        self.store, self.rank, self.world = store, rank, world

    def post(self, status: str, message: str) -> None:
        """Post this rank's failure (numbered in the order the store receives posts)."""
        seq = self.store.add(self.PREFIX + "n_failed", 1)
        blob = json.dumps({"seq": seq, "rank": self.rank, "status": status, "error": message})
        self.store.set(self.PREFIX + f"failed/{self.rank}", blob)

    def count(self) -> int:
        """How many ranks have posted a failure."""
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
        """Say that rank 0 has written the run's record (the failed ranks may exit)."""
        self.store.set(self.PREFIX + "recorded", status)

    def wait_done(self, timeout_s: float) -> bool:
        """Wait up to timeout_s for rank 0's record; whether it came."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.store.check([self.PREFIX + "recorded"]):
                return True
            time.sleep(0.05)
        return False


def default_store():
    """The torchrun rendezvous store this process group was made from."""
    import torch.distributed as dist

    try:
        from torch.distributed.distributed_c10d import _get_default_store

        return _get_default_store()
    except Exception:  # private API gone: a client of the torchrun store
        return dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                             timeout=dt.timedelta(seconds=60))
