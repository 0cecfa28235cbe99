"""The worker's command line, `python -m calibrate.distributed ARGS`: parsed and checked on every rank.

A usage error exits 2 with argparse's message and one line `trainsim-calibrate: usage error: ...`,
which `calibrate.launch` picks out of torchrun's output.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from calibrate.collective_probe import DEFAULT_PROBE_SIZES
from calibrate.distributed.wrap import PARALLEL
from calibrate.launch import _ERROR_LINE


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
    """--probe-sizes: comma-separated positive byte counts; 'none' (or '' or 0) skips the probe."""
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
    """An argument parser whose usage errors end with the one line `launch` picks out."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{_ERROR_LINE} usage error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The worker's options (every one has a default but --output and --size)."""
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
