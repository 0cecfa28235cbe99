"""The collective probe: time all_reduce, all_gather, reduce_scatter and all_to_all in a process group.

`collective_probe` runs on every rank of an initialised process group (under torchrun; see
`calibrate.distributed`) and returns, per op and size, the time (MAX over ranks, median over
iterations), algbw and busbw. `fit_alpha_beta` fits t(S) = alpha + S / B_alg to those timings
(measurement.md sec. 6 and 7.5).

Bus bandwidth (NVIDIA nccl-tests doc/PERFORMANCE.md): algbw = S / t with S the total array size
(for all_gather / reduce_scatter the gathered size = per-rank count x dtype x n); busbw = algbw x
2(n-1)/n for all_reduce and (n-1)/n for all_gather, reduce_scatter and all_to_all. With n = 1
busbw is 0 by definition (nothing crosses a link).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from calibrate.errors import MeasurementError

OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")
#: Default probe sizes (bytes): 1 KiB (latency) ... 128 MiB (near the bus bandwidth).
DEFAULT_PROBE_SIZES = (1 << 10, 1 << 16, 1 << 20, 1 << 24, 1 << 27)


# --- bus bandwidth conventions (pure) -------------------------------------------------------------
def busbw_factor(op: str, world_size: int) -> float:
    """nccl-tests busbw / algbw: 2(n-1)/n for all_reduce, (n-1)/n for all_gather, reduce_scatter, all_to_all."""
    if op not in OPS:
        raise MeasurementError(f"collective {op!r}: unknown; expected one of {', '.join(OPS)}")
    n = int(world_size)
    if n < 1:
        raise MeasurementError(f"world_size must be >= 1, got {world_size!r}")
    return (2.0 if op == "all_reduce" else 1.0) * (n - 1) / n


def bus_bandwidth(op: str, size_bytes: float, time_s: float, world_size: int) -> tuple[float, float]:
    """(algbw, busbw) in bytes/s for one collective of total size `size_bytes` taking `time_s`."""
    if not time_s > 0:
        raise MeasurementError(f"collective time must be > 0 s, got {time_s!r}")
    algbw = size_bytes / time_s
    return algbw, algbw * busbw_factor(op, world_size)


def fit_alpha_beta(results: Iterable[dict[str, Any]], op: str, min_size_bytes: int | None = None) -> dict[str, Any]:
    """Latency-bandwidth fit t(S) = alpha + S / B_alg over the probe entries of one op (measurement.md 7.5).

    By default the fit uses the larger half of the probed sizes (small sizes measure latency only);
    returns alpha_s, algbw and busbw (GB/s, from the slope), the number of points and the sizes used.
    Needs at least two distinct sizes; the bandwidths are None when the slope is not positive.
    """
    rows = [r for r in results if r.get("op") == op and not r.get("error") and r.get("time_s")]
    if not rows:
        raise MeasurementError(f"fit_alpha_beta: no successful {op} entries")
    sizes = sorted({r["size_bytes"] for r in rows})
    if min_size_bytes is None:
        min_size_bytes = sizes[(len(sizes) - 1) // 2] if len(sizes) > 2 else sizes[0]
    pts = [(float(r["size_bytes"]), float(r["time_s"])) for r in rows if r["size_bytes"] >= min_size_bytes]
    if len({s for s, _ in pts}) < 2:
        raise MeasurementError(f"fit_alpha_beta: {op} needs at least two sizes >= {min_size_bytes} B, got {len(pts)}")
    n_ws = {r["world_size"] for r in rows}
    if len(n_ws) != 1:
        raise MeasurementError(f"fit_alpha_beta: {op} entries mix world sizes {sorted(n_ws)}")
    n = n_ws.pop()
    xs, ys = [s for s, _ in pts], [t for _, t in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    alpha = my - slope * mx
    algbw = 1.0 / slope if slope > 0 else None
    return {"op": op, "world_size": n, "alpha_s": alpha, "n_points": len(pts), "min_size_bytes": min_size_bytes,
            "algbw_gb_per_s": algbw / 1e9 if algbw else None,
            "busbw_gb_per_s": algbw * busbw_factor(op, n) / 1e9 if algbw else None}


# --- the collective probe ---------------------------------------------------------------------------
def _device_sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _agree(ok: bool, device, group=None) -> bool:
    """True when `ok` holds on every rank (all_reduce MIN)."""
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if ok else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN, group=group)
    return bool(t.item())


def _collective_fn(op: str, nbytes: int, n: int, device, dtype, group) -> tuple[Callable[[], Any], int, int]:
    """(call, total size in bytes, element count) for one op; buffers are allocated here."""
    import torch
    import torch.distributed as dist

    esize = torch.empty((), dtype=dtype).element_size()
    count = max(nbytes // esize, 1)
    if op != "all_reduce":  # the total array splits into n equal chunks
        count = max(count // n, 1) * n
    total = count * esize
    if op == "all_reduce":
        buf = torch.ones(count, dtype=dtype, device=device)
        return (lambda: dist.all_reduce(buf, group=group)), total, count
    if op == "all_gather":  # S = gathered (output) size
        inp = torch.ones(count // n, dtype=dtype, device=device)
        out = torch.empty(count, dtype=dtype, device=device)
        fn = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        return (lambda: fn(out, inp, group=group)), total, count
    if op == "reduce_scatter":  # S = input (unscattered) size
        inp = torch.ones(count, dtype=dtype, device=device)
        out = torch.empty(count // n, dtype=dtype, device=device)
        fn = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        return (lambda: fn(out, inp, group=group)), total, count
    inp = torch.ones(count, dtype=dtype, device=device)
    out = torch.empty(count, dtype=dtype, device=device)
    return (lambda: dist.all_to_all_single(out, inp, group=group)), total, count


def _unsupported(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, NotImplementedError) or "support" in msg or "not implemented" in msg


def _checked_sizes(ops: Sequence[str], sizes_bytes: Sequence[int], iters: int, warmup: int) -> list[int]:
    """The sizes as ints, after checking ops, sizes and counts (one-line MeasurementError)."""
    bad = [op for op in ops if op not in OPS]
    if bad:
        raise MeasurementError(f"collective {bad[0]!r}: unknown; expected one of {', '.join(OPS)}")
    if iters < 1 or warmup < 0:
        raise MeasurementError(f"collective_probe: iters must be >= 1 and warmup >= 0, got {iters}, {warmup}")
    sizes = [int(s) for s in sizes_bytes]
    if any(s <= 0 for s in sizes):
        raise MeasurementError(f"collective_probe: sizes must be positive byte counts, got {sizes}")
    return sizes


def _timed_calls(fn, warmup: int, iters: int, device: Any, group: Any, barrier_kw: dict) -> list[float]:
    """`warmup` untimed calls, then `iters` calls each after a device sync and a barrier, timed to
    the next device sync (this rank's seconds per call)."""
    import torch.distributed as dist

    for _ in range(warmup):
        fn()
    _device_sync(device)
    times = []
    for _ in range(iters):
        _device_sync(device)
        dist.barrier(group=group, **barrier_kw)
        t0 = time.perf_counter()
        fn()
        _device_sync(device)
        times.append(time.perf_counter() - t0)
    return times


def collective_probe(sizes_bytes: Sequence[int], ops: Sequence[str] = OPS, iters: int = 5, warmup: int = 2, *,
                     device: Any = None, dtype: Any = None, group: Any = None) -> list[dict[str, Any]]:
    """Time collectives in the initialised process group; call on every rank with the same arguments.

    Per op and size: `warmup` untimed calls, then `iters` calls each bracketed by a device
    synchronisation and preceded by a barrier; an iteration's time is the MAX over ranks and
    `time_s` the median over iterations (`time_min_s` the best). Returns one dict per op and size:
    op, size_bytes (total array size S, rounded down to whole elements split in n chunks), count,
    dtype, time_s, time_min_s, algbw_gb_per_s = S / time_s, busbw_gb_per_s (nccl-tests factors),
    busbw_factor, iters, world_size, backend, device. An op the backend does not support gives one
    {"op", "error": "not supported by <backend>", "detail", ...} entry and its other sizes are skipped;
    an allocation failure on any rank gives an error entry for that size.
    """
    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise MeasurementError("collective_probe needs an initialised process group (run it under torchrun)")
    sizes = _checked_sizes(ops, sizes_bytes, iters, warmup)
    backend = str(dist.get_backend(group))
    n = dist.get_world_size(group)
    if device is None:
        device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    device = torch.device(device)
    dtype = dtype or torch.float32
    barrier_kw = {"device_ids": [device.index]} if device.type == "cuda" and device.index is not None else {}
    out: list[dict[str, Any]] = []
    for op in ops:
        for size in sizes:
            base = {"op": op, "world_size": n, "backend": backend, "device": device.type,
                    "dtype": str(dtype).removeprefix("torch.")}
            fn, err = None, None
            try:
                fn, total, count = _collective_fn(op, size, n, device, dtype, group)
            except Exception as exc:  # e.g. OOM for a large buffer
                err = f"{type(exc).__name__}: {exc}"
            if not _agree(err is None, device, group):
                out.append({**base, "size_bytes": size, "error": err or "buffer allocation failed on another rank"})
                fn = None
                continue
            try:
                times = _timed_calls(fn, warmup, iters, device, group, barrier_kw)
            except Exception as exc:  # gloo lacks some collectives on some builds
                reason = f"not supported by {backend}" if _unsupported(exc) else f"{type(exc).__name__}: {exc}"
                out.append({**base, "size_bytes": total, "error": reason, "detail": f"{type(exc).__name__}: {exc}"[:300]})
                del fn
                break
            del fn
            tt = torch.tensor(times, dtype=torch.float64, device=device)
            dist.all_reduce(tt, op=dist.ReduceOp.MAX, group=group)
            per_iter = tt.cpu().tolist()
            t = statistics.median(per_iter)
            t = t if t > 0 else 1e-9  # a clock that did not tick
            algbw, busbw = bus_bandwidth(op, total, t, n)
            out.append({**base, "size_bytes": total, "count": count, "iters": iters, "time_s": t,
                        "time_min_s": min(per_iter), "algbw_gb_per_s": algbw / 1e9, "busbw_gb_per_s": busbw / 1e9,
                        "busbw_factor": busbw_factor(op, n)})
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out
