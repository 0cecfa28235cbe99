"""Claims: headline numbers about AI training checked with trainsim's own model (`simulator.claims`), the same
table as `trainsim claims`, each claim's scenarios with their sources and a link into the Planner, the
energy split side by side with the claim's, and the trend of frontier training compute with its fit."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts_claims
from dashboard.claims_links import planner_link
from simulator.claims import evaluate_claims
from simulator.claims.report import (
    input_rows,
    scenario_rows,
    split_rows,
    table_rows,
    trend_rows,
)
from simulator.claims.trends import fit_trend, load_points

VERDICT_ICONS = {"consistent": ":material/check_circle:", "too high": ":material/arrow_upward:",
                 "too low": ":material/arrow_downward:", "inconsistent": ":material/cancel:"}


@st.cache_data(show_spinner="Checking the claims (estimates and Monte Carlo)...")
def results() -> list[dict]:
    """Every claim of the packaged ledger, as `trainsim claims -f json` gives them (fixed seed)."""
    return [r.to_dict() for r in evaluate_claims()]


def _links(d: dict) -> None:
    for sid, data in d["planner"].items():
        url, note = planner_link(data)
        if url:
            st.markdown(f"[Open {sid} in the Planner]({url})" + (f" ({note})" if note else ""))
        else:
            st.caption(f"{sid}: no Planner link: {note}.")


def _claim(d: dict) -> None:
    """One claim's expander: what trainsim computed, its sources, its scenarios and links."""
    with st.expander(f"{d['text']}: {d['verdict']}", icon=VERDICT_ICONS.get(d["verdict"])):
        st.markdown(f"**Claimed:** {d['claimed']}. **trainsim:** {d['summary']}.")
        source = f"[{d['source']}]({d['source_url']})" if d["source_url"] else d["source"]
        st.caption(f"Source: {source}. Quantity: {d['quantity']}." + (f" {d['note']}." if d["note"] else ""))
        if d["kind"] == "estimate":
            st.container(key=f"cl_{d['id']}_scenarios").dataframe(pd.DataFrame(scenario_rows(d)), hide_index=True)
            st.container(key=f"cl_{d['id']}_inputs").dataframe(pd.DataFrame(input_rows(d)), hide_index=True)
        elif d["kind"] == "energy_split":
            st.container(key=f"cl_{d['id']}_split").dataframe(pd.DataFrame(split_rows(d)), hide_index=True)
            if any(g["energy_mwh"] is None for g in d["split"]):
                st.caption("This scenario's estimate has no separate network or storage rows (its catalog has no "
                           "infrastructure table): the servers' NICs are inside hosts.")
        elif d["kind"] != "trend":
            st.container(key=f"cl_{d['id']}_details").dataframe(pd.DataFrame(d["details"]), hide_index=True)
        _links(d)


def trends(claimed_months: float | None) -> None:
    """The frontier-compute trend: data, fit and the claimed doubling time."""
    points = load_points()
    fit = fit_trend(points)
    rows = [{"model": p.model, "date": p.date, "year": p.year, "training_flop": p.training_flop,
             "estimated": p.estimated} for p in points]
    st.subheader("Trend of frontier training compute")
    st.caption(f"Log-linear fit of {fit.n} frontier language models: {fit.growth_per_year:.2f}x a year, doubling "
               f"every {fit.doubling_months:.1f} months (90% CI {fit.doubling_low:.1f}-{fit.doubling_high:.1f}), "
               f"R² {fit.r2:.2f}. Estimates are Epoch AI's where the developer published no compute.")
    st.plotly_chart(charts_claims.trend_chart(rows, fit, claimed_months), key="cl_trend")


def main() -> None:
    st.title("Claims")
    st.caption("Headline numbers about AI training, each estimated with trainsim's own model and Monte Carlo "
               "(500 draws, fixed seed) on scenarios built from public facts (simulator/data/claims.toml, a source "
               "for every input). Consistent: the claim is inside trainsim's range (P10-P90, an exact value within "
               "the claim's rounding, or a fit's 90% interval), or a claimed range overlaps it; too high / too low: "
               "outside it; inconsistent: the text contradicts itself. Same as `trainsim claims`.")
    items = results()
    st.container(key="cl_table").dataframe(pd.DataFrame(table_rows(items)), hide_index=True)
    for d in items:
        _claim(d)
    trend = next((d for d in items if d["kind"] == "trend"), None)
    trends(trend["claim_low"] if trend else None)
    if trend:
        st.container(key="cl_trend_points").dataframe(pd.DataFrame(trend_rows(trend)), hide_index=True)


main()
