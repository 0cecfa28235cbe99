"""The kernel microbenchmarks among the published rows, as `KernelRow`s.

One responsibility: GEMM and attention-kernel measurements on one device (not training steps).
FLOP conventions, each the benchmark's own:
- MAMF (stas00/ml-engineering, mamf-finder.py): 2 M N K per matmul;
- FlashAttention benchmarks (Dao-AILab/flash-attention benchmarks/benchmark_flash_attention.py):
  4 * b * s^2 * h * d per forward, halved when causal; forward + backward = 3.5x forward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hardware_catalog import Catalog, load_catalog
from simulator.validation.public_rows_csv import (
    accelerator_of,
    cell_int,
    cell_num,
    precision_of,
    read_rows,
)

KERNEL_SOURCES = ("Dao-AILab/flash-attention", "stas00/ml-engineering")


@dataclass(frozen=True)
class KernelRow:
    """One kernel microbenchmark: a GEMM (MAMF) or an attention kernel on one device."""

    row: int
    source: str
    accelerator_id: str | None
    op: str  # "gemm" | "attention_fwd" | "attention_fwd_bwd"
    precision: str
    tflops: float | None
    flop_convention: str
    usable: bool
    reason: str
    m: int | None = None
    n: int | None = None
    k: int | None = None
    seq_len: int | None = None
    head_dim: int | None = None
    causal: bool | None = None
    implementation: str = ""


def _kernel_row(i: int, r: dict, catalog: Catalog) -> KernelRow:
    """CSV row `i` (a kernel source) as a `KernelRow`."""
    acc, _ = accelerator_of(r["accelerator"], catalog)
    tflops = cell_num(r["tflops_per_device"])
    reason = "" if acc and tflops else (f"accelerator not in catalog: {r['accelerator']}" if not acc
                                         else "no TFLOP/s value")
    common = dict(row=i, source=r["source"], accelerator_id=acc, precision=precision_of(r["precision"], []),
                  tflops=tflops, usable=not reason, reason=reason)
    if r["source"] == "stas00/ml-engineering":
        m, n, k = (int(x) for x in re.search(r"(\d+)x(\d+)x(\d+)", r["model"]).groups())
        return KernelRow(op="gemm", m=m, n=n, k=k, flop_convention="2*M*N*K per matmul (MAMF, mamf-finder.py)",
                         **common)
    table = r["table"].lower()
    fwd_bwd = "fwd+bwd" in table
    convention = ("FlashAttention benchmark: 4*b*s^2*h*d per forward, halved when causal"
                  + ("; forward+backward = 3.5x forward" if fwd_bwd else ""))
    if "caption not printed" in table:
        convention += "; causal mask inferred (panel caption not printed)"
    return KernelRow(op="attention_fwd_bwd" if fwd_bwd else "attention_fwd", seq_len=cell_int(r["seq_len"]),
                     head_dim=int(re.search(r"hd(\d+)", table).group(1)),
                     causal="causal" in table and "no causal" not in table and "without causal" not in table,
                     implementation=r["framework"], flop_convention=convention, **common)


def load_kernel_rows(path: str | Path | None = None, catalog: Catalog | None = None) -> list[KernelRow]:
    """The GEMM (MAMF) and FlashAttention rows as `KernelRow`s."""
    df, catalog = read_rows(path), catalog or load_catalog()
    return [_kernel_row(i, r, catalog) for i, r in enumerate(df.to_dict("records")) if r["source"] in KERNEL_SOURCES]
