"""Validation against the published throughput tables (public_throughput/rows.csv).

Two views, both in tokens/s per device, error = 100 x (predicted / published - 1):
- held out: every row predicted by a fit of its accelerator's parameters that did not see the
  row's table (or its publisher). These come from `trainsim calibrate fit --published ...
  --write-catalog`, which writes them with the catalog's `[perf]` tables
  (`simulator/data/public_fit_heldout.csv`); a test re-runs fits and compares;
- shipped priors: every usable row predicted now with the catalog's `[perf]` for the row's
  software stack (what a user's scenario gets), computed live.
Groups: accelerator family x dense/MoE.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import pandas as pd

from hardware_catalog import Catalog, load_catalog
from simulator.system.perf_params import perf_params_for
from simulator.validation.public_rows import PublicRow, load_public_rows, row_step_time_s

HOLDOUTS = {"table": "held_out_table_pct", "source": "held_out_source_pct"}


def load_heldout() -> pd.DataFrame:
    """The held-out errors written by the last `calibrate fit --published --write-catalog` runs."""
    with resources.files("simulator").joinpath("data/public_fit_heldout.csv").open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


def _groups(frame: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    out = []
    for (family, kind), g in frame.groupby(["family", "kind"], sort=True):
        err = g[column].abs()
        out.append({"family": family, "kind": kind, "rows": len(g), "median_abs_pct": round(float(err.median()), 1),
                    "max_abs_pct": round(float(err.max()), 1)})
    err = frame[column].abs()
    out.append({"family": "all", "kind": "all", "rows": len(frame), "median_abs_pct": round(float(err.median()), 1),
                "max_abs_pct": round(float(err.max()), 1)})
    return out


def heldout_summary(holdout: str = "table", frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Median and worst |held-out error| per (family, dense/MoE), then over all rows."""
    frame = load_heldout() if frame is None else frame
    return _groups(frame, HOLDOUTS[holdout])


def prior_errors(catalog: Catalog | None = None, rows: list[PublicRow] | None = None) -> pd.DataFrame:
    """Every usable row predicted with the shipped catalog priors of its software stack."""
    catalog = catalog or load_catalog()
    rows = [r for r in (load_public_rows(catalog=catalog) if rows is None else rows) if r.usable]
    out = []
    for r in rows:
        acc = catalog.accelerator(r.accelerator_id)
        step_s = row_step_time_s(r, acc, perf_params_for(acc, stack=r.framework))
        predicted = r.global_batch_seqs * r.spec.seq_len / (step_s * r.devices)
        out.append({"row": r.row, "family": r.family, "kind": r.kind, "source": r.source, "model": r.model_name,
                    "devices": r.devices, "precision": r.precision, "stack": r.framework,
                    "published_tokens_per_s": r.tokens_per_s_per_device, "predicted_tokens_per_s": predicted,
                    "prior_pct": 100.0 * (predicted / r.tokens_per_s_per_device - 1.0)})
    return pd.DataFrame(out)


def prior_summary(frame: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Median and worst |error| of the shipped priors per (family, dense/MoE)."""
    return _groups(prior_errors() if frame is None else frame, "prior_pct")


def meets_bars(summary: list[dict[str, Any]], group_median_pct: float = 12.0, overall_median_pct: float = 8.0,
               min_rows: int = 5) -> dict[str, bool]:
    """The bars of the issue that asked for these priors: every group of `min_rows`+ rows at most
    `group_median_pct`, all rows at most `overall_median_pct` (medians of |error|)."""
    groups = [g for g in summary if g["family"] != "all" and g["rows"] >= min_rows]
    overall = next(g for g in summary if g["family"] == "all")
    return {"groups": all(g["median_abs_pct"] <= group_median_pct for g in groups),
            "overall": overall["median_abs_pct"] <= overall_median_pct}


def refused_rows(catalog: Catalog | None = None, rows: list[PublicRow] | None = None) -> pd.DataFrame:
    """Usable rows whose published plan the memory model says does not fit (it should answer every
    plan its framework ran): row, family, source, model, needed and available GB."""
    from simulator.execution.memory import capacity_gb, memory_per_device
    from simulator.validation.public_rows import row_plans

    catalog = catalog or load_catalog()
    rows = [r for r in (load_public_rows(catalog=catalog) if rows is None else rows) if r.usable]
    out = []
    for r in rows:
        acc = catalog.accelerator(r.accelerator_id)
        mem = memory_per_device(r.spec, row_plans(r), int(r.global_batch_seqs), flash=r.flash_attention,
                                cp_comm=r.cp_comm, stack=r.framework,
                                grad_reduce_in_fp32=r.grad_reduce_in_fp32, precision=r.precision,
                                moe_padding=r.moe.padding)
        need, have = float(mem.total_gb.min()), capacity_gb(acc)
        if need > have:
            out.append({"row": r.row, "family": r.family, "source": r.source, "model": r.model_name,
                        "devices": r.devices, "needed_gb": round(need, 1), "capacity_gb": round(have, 1)})
    return pd.DataFrame(out, columns=["row", "family", "source", "model", "devices", "needed_gb", "capacity_gb"])
