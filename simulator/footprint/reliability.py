"""Failures, checkpoints and goodput: turning ideal training time into expected wall-clock time.

Young (1974) / Daly (2006) first-order model: with job mean time between failures M (seconds),
checkpoint write time delta and restart time R, the optimal checkpoint interval is
    tau = sqrt(2 * delta * M)
and the expected fraction of wall-clock time doing useful work is
    goodput = 1 - delta / tau - (tau / 2 + R) / M
(checkpoint overhead, half an interval of lost work per failure, restart per failure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Dubey et al. 2024 (Llama 3) sec. 3.3.4: 419 unexpected interruptions in a 54-day snapshot on
# 16,384 H100s -> 419 / (16384 * 54 * 24) failures per GPU-hour.
FAILURES_PER_DEVICE_HOUR = 419 / (16384 * 54 * 24)
# Unverified engineering priors: asynchronous sharded checkpointing to a parallel file system,
# and job restart (rescheduling, NCCL init, checkpoint load) of a few minutes.
CHECKPOINT_WRITE_S = 30.0
RESTART_S = 300.0


@dataclass(frozen=True)
class Goodput:
    goodput: float
    checkpoint_interval_s: float
    checkpoint_fraction: float
    lost_work_fraction: float
    restart_fraction: float
    job_mtbf_h: float


def goodput_fraction(devices, failures_per_device_hour, checkpoint_write_s, restart_s):
    """Young/Daly goodput (module docstring), numpy-vectorised over any argument; 1 without failures."""
    rate_per_s = np.asarray(devices * np.asarray(failures_per_device_hour, dtype=float) / 3600.0)
    mtbf_s = np.where(rate_per_s > 0, 1.0 / np.maximum(rate_per_s, 1e-300), np.inf)
    tau = np.sqrt(2.0 * np.maximum(checkpoint_write_s, 1e-9) * mtbf_s)
    lost = np.where(np.isfinite(mtbf_s), (tau / 2.0 + restart_s) / mtbf_s, 0.0)
    ckpt = np.where(np.isfinite(tau), checkpoint_write_s / tau, 0.0)
    return 1.0 - ckpt - lost


def young_daly(devices: int, failures_per_device_hour: float, checkpoint_write_s: float,
               restart_s: float) -> Goodput:
    """Expected goodput at the Young/Daly optimal checkpoint interval, with its parts."""
    rate_per_s = devices * failures_per_device_hour / 3600.0
    if rate_per_s <= 0:
        return Goodput(1.0, math.inf, 0.0, 0.0, 0.0, math.inf)
    mtbf_s = 1.0 / rate_per_s
    tau = math.sqrt(2.0 * max(checkpoint_write_s, 1e-9) * mtbf_s)
    goodput = float(goodput_fraction(devices, failures_per_device_hour, checkpoint_write_s, restart_s))
    if goodput <= 0.05:
        from simulator.errors import InfeasiblePlanError

        raise InfeasiblePlanError(
            f"reliability: with {devices} devices failing every {mtbf_s / 3600:.2g} h the job makes almost no "
            f"progress (goodput {goodput:.2f}); lower reliability.failures_per_device_hour or restart_s"
        )
    return Goodput(goodput, tau, checkpoint_write_s / tau, tau / 2.0 / mtbf_s, restart_s / mtbf_s, mtbf_s / 3600.0)
