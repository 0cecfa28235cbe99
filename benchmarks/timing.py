"""Helpers the benchmark scripts share (imported as `timing`: a script's folder is on sys.path)."""

import time


def best_seconds(fn, repeats: int) -> float:
    """The fastest of `repeats` runs of `fn()`, in seconds (the least disturbed by a noisy machine)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def print_bands(summary: dict, point: dict, keys) -> None:
    """P10 / P50 / P90 of each key of a Monte Carlo summary beside the point estimate."""
    for key in keys:
        print(f"{key}: P10 {summary['p10'][key]:.4g}  P50 {summary['p50'][key]:.4g}  P90 {summary['p90'][key]:.4g}  "
              f"(point {point[key]:.4g})")
