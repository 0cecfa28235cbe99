"""Published throughput measurements (`data/public_throughput_rows.csv`) as typed records.

The CSV is a byte copy of `../shared/validation/public_throughput/rows.csv` (722 rows transcribed
from llm-foundry, NeMo, Megatron-LM, MaxText, MLPerf, Primus, MegaScale, Llama 3, ...). Each row
becomes a `PublicRow`: model shape (`ModelSpec`), catalog accelerator, parallel `Plan` and the
measured throughput normalised to tokens/s per device, with `usable` / `reason`. The kernel
microbenchmarks also become `KernelRow`s (`load_kernel_rows`).

This module is the entry point other code imports from, and its responsibility is the summary of
the rows (`coverage`, `python -m simulator.validation.public_rows`). The work is done, with its sources, in:
- `simulator.validation.public_rows_csv`: reading and cleaning the CSV, the accelerator names;
- `simulator.validation.public_rows_shape`: a row's model shape;
- `simulator.validation.public_rows_plan`: a row's framework notes as a parallel plan (documented defaults);
- `simulator.validation.public_rows_supplements`: what a linked file states that the row's table omits;
- `simulator.validation.public_rows_throughput`: TFLOP/s or MFU as tokens/s in the source's FLOP convention;
- `simulator.validation.public_rows_build`: the `PublicRow` and why a row is unusable;
- `simulator.validation.public_rows_kernels`: GEMM (MAMF) and FlashAttention microbenchmarks;
- `simulator.validation.public_rows_step`: the simulator's step time for a usable row.
"""

from __future__ import annotations

import pandas as pd

from simulator.validation.public_rows_build import PublicRow, load_public_rows
from simulator.validation.public_rows_csv import ACCELERATORS, DATA_FILE, NOT_IN_CATALOG_FAMILY
from simulator.validation.public_rows_kernels import KernelRow, load_kernel_rows
from simulator.validation.public_rows_step import row_plans, row_step_time_s
from simulator.validation.public_rows_throughput import (
    llm_foundry_flops_per_token,
    maxtext_2023_flops_per_token,
    megatron_flops_per_token,
    palm_flops_per_token,
)

__all__ = [
    "ACCELERATORS",
    "DATA_FILE",
    "NOT_IN_CATALOG_FAMILY",
    "KernelRow",
    "PublicRow",
    "coverage",
    "llm_foundry_flops_per_token",
    "load_kernel_rows",
    "load_public_rows",
    "maxtext_2023_flops_per_token",
    "megatron_flops_per_token",
    "palm_flops_per_token",
    "row_plans",
    "row_step_time_s",
]


def coverage(rows: list[PublicRow] | None = None) -> pd.DataFrame:
    """Rows per (family, kind): usable, unusable, and unusable by reason (text before ':')."""
    rows = load_public_rows() if rows is None else rows
    df = pd.DataFrame({"family": [r.family for r in rows], "kind": [r.kind for r in rows],
                       "status": ["usable" if r.usable else r.reason.split(":")[0] for r in rows]})
    table = pd.crosstab([df["family"], df["kind"]], df["status"])
    usable = table.pop("usable") if "usable" in table else pd.Series(0, index=table.index, name="usable")
    reasons = table[table.sum().sort_values(ascending=False).index]
    out = pd.concat([usable, reasons.sum(axis=1).rename("unusable"), reasons], axis=1)
    return out.sort_values(["usable", "unusable"], ascending=False)


def main() -> None:
    """Print the coverage table, the unusable rows by reason and the usable kernel rows."""
    public = load_public_rows()
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(coverage(public).to_string())
        print("\nUnusable rows by reason:")
        print(pd.Series([r.reason for r in public if not r.usable]).value_counts().to_string())
    kernels = load_kernel_rows()
    print(f"\nKernel rows: {sum(k.usable for k in kernels)} usable of {len(kernels)}")


if __name__ == "__main__":
    main()
