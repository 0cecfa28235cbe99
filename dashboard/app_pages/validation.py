"""Validation: the simulator's predictions against published training runs, per row and summarised,
so users can judge how far to trust each figure. Everything comes from `simulator.validation.runs`.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from dashboard import charts_model
from dashboard.formats import NA, label
from simulator.validation.public import heldout_summary, prior_summary
from simulator.validation.runs import Check, run_validation, summary

ALL = "all"


@st.cache_data(show_spinner="Simulating the published runs...")
def checks() -> list[Check]:
    """Every check of `run_validation()` with the packaged catalog (published runs are fixed data)."""
    return run_validation()


def checks_frame(items: list[Check]) -> pd.DataFrame:
    rows = [{**dataclasses.asdict(c), "error_pct": c.error_pct} for c in items]
    cols = ["run", "quantity", "method", "predicted", "reported", "error_pct", "note"]
    return pd.DataFrame(rows, columns=cols)


def named(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its quantities in human names ("inter_token_latency_ms" -> "Inter-token latency (ms)")."""
    return table.assign(quantity=table["quantity"].map(label))


def main() -> None:
    st.title("Validation against published runs")
    st.caption("Each published run (paper, model card or benchmark) becomes a scenario; its reported figures are "
               "compared with the simulator's prediction. Error = (predicted - reported) / reported. "
               "`reported throughput (arithmetic)` and `tdp convention` checks are round-trips, not predictions: our "
               "FLOPs divided by the run's own MFU, and the authors' device-hours x TDP x PUE redone (they test the "
               "FLOP convention, the time and the energy arithmetic; the summary lists them last); "
               "`default model` and `parallelism model` checks use the simulator's performance model with the "
               "catalog's priors, which are fitted to the public throughput tables below.")
    items = checks()
    df = checks_frame(items)
    quantities = sorted(df["quantity"].unique())
    # Shown by name; a bound selectbox puts the shown name in the URL (links with the id are mapped to it)
    quantity = st.selectbox("Quantity", [ALL] + quantities, key="val_quantity", bind="query-params",
                            format_func=label)
    shown = df if quantity == ALL else df[df["quantity"] == quantity]
    chosen = items if quantity == ALL else [c for c in items if c.quantity == quantity]

    st.subheader("Summary: absolute % error by quantity and method")
    st.container(key="val_summary").dataframe(named(pd.DataFrame(summary(chosen))), hide_index=True, placeholder=NA,
                 column_config={"median_abs_error_pct": st.column_config.NumberColumn("median |error| %", format="%.1f"),
                                "max_abs_error_pct": st.column_config.NumberColumn("max |error| %", format="%.1f")})

    st.subheader(f"Per run ({len(shown)} checks)")
    st.container(key="val_rows").dataframe(named(shown), hide_index=True, placeholder=NA,
                 column_config={"predicted": st.column_config.NumberColumn(format="%.4g"),
                                "reported": st.column_config.NumberColumn(format="%.4g"),
                                "error_pct": st.column_config.NumberColumn("error %", format="%+.1f")})
    st.download_button("Checks CSV", shown.to_csv(index=False), file_name="validation.csv", mime="text/csv",
                       on_click="ignore", key="val_csv")

    shown_q = quantities if quantity == ALL else [quantity]
    cols = st.columns(2 if len(shown_q) > 1 else 1)
    for i, q in enumerate(shown_q):
        cols[i % len(cols)].plotly_chart(charts_model.validation_parity(df, q), key=f"val_parity_{q}")
    public_tables()


@st.cache_data(show_spinner="Predicting the public throughput tables...")
def _prior_summary() -> list[dict]:
    return prior_summary()


def public_tables() -> None:
    """Held-out and shipped-prior errors on the public throughput tables (simulator.validation.public)."""
    st.subheader("Public throughput tables: tokens/s per device")
    by_table = heldout_summary("table")
    rows = next(g["rows"] for g in by_table if g["family"] == "all")
    st.caption(f"{rows} published measurements (llm-foundry, NeMo, Megatron-LM, MaxText, AMD Primus, MegaScale, "
               "Llama 3) that the catalog's performance priors are fitted to (`trainsim calibrate fit --published`). "
               "Held out: each row predicted by a fit that did not see its table (or its publisher). A part whose "
               "rows come from one table is then predicted from another part's fit, its GEMM ceiling scaled by "
               "the two parts' measured maximum matmul (or from vendor-neutral priors where none is measured).")
    fmt = {"median_abs_pct": st.column_config.NumberColumn("median |error| %", format="%.1f"),
           "max_abs_pct": st.column_config.NumberColumn("max |error| %", format="%.1f")}
    left, mid, right = st.columns(3)
    left.markdown("**Each table held out**")
    left.container(key="val_public_table").dataframe(pd.DataFrame(by_table), hide_index=True, placeholder=NA,
                                                      column_config=fmt)
    mid.markdown("**Each publisher held out**")
    mid.dataframe(pd.DataFrame(heldout_summary("source")), hide_index=True, placeholder=NA, column_config=fmt)
    right.markdown("**Priors as shipped (in sample)**")
    right.dataframe(pd.DataFrame(_prior_summary()), hide_index=True, placeholder=NA, column_config=fmt)
    spread_table()


def spread_table() -> None:
    """What those errors make of each accelerator's throughput band (simulator.validation.spread)."""
    st.markdown("**How sure the throughput is, per accelerator**")
    st.caption("The Monte Carlo's default throughput spread (the P10-P90 ranges on the Planner): the "
               "log-sigma of the held-out errors above, the part's own table held out where the tables "
               "measure it, the rows predicted with their whole part held out where its priors are "
               "inherited. A scenario's [uncertainty] section replaces it.")
    st.container(key="val_spread").dataframe(
        pd.DataFrame(_spread_table()), hide_index=True, placeholder=NA,
        column_config={"sigma": st.column_config.NumberColumn("log-sigma", format="%.3f"),
                       "p10_x": st.column_config.NumberColumn("P10 x", format="%.2f"),
                       "p90_x": st.column_config.NumberColumn("P90 x", format="%.2f")})


@st.cache_data(show_spinner=False)
def _spread_table() -> list[dict]:
    from hardware_catalog import load_catalog
    from simulator.validation.spread import spread_table as table

    return table(load_catalog())


main()
