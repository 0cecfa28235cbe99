"""Compare: the planner's model and tokens on several accelerators x regions x device counts.

One `estimate()` per combination (cached per scenario). A combination that fails (no plan fits in
memory, no interconnect, ...) stays in the table with its reason. Inputs are bound to the URL: the
Planner's model and data (the same widgets, dashboard/inputs.py) and this page's selections, so the
page address restores the comparison.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts_compare as cc
from dashboard import inputs, widgets
from dashboard.data import cached_bands, cached_estimate, plain, scenario_from, session_catalog
from dashboard.formats import NA, PERCENT_FORMAT
from dashboard.headline import note
from dashboard.state import (
    COMPARE_DEFAULTS,
    DEVICE_CHOICES,
    NUMBERS,
    region_label,
    scenario_data,
)
from hardware_catalog.errors import TrainsimError

DEFAULT_HW = ["nvidia-h100-sxm-80gb", "nvidia-h200-sxm-141gb", "amd-mi300x", "google-tpu-v5p"]  # all priced
DEFAULT_REGIONS = ["us-virginia", "FR", "SE"]
DEFAULT_DEVICES = [2048, 4096, 8192]
COLUMNS = {  # table column -> (label, format); the table shows cost in $ M and MFU in % (show_results)
    "accelerator": ("Accelerator", None), "region": ("Region", None), "devices": ("Devices", "%d"),
    "days": ("Days", "%.1f"), "days_p10": ("Days P10", "%.1f"), "days_p90": ("Days P90", "%.1f"),
    "device_hours_m": ("Device-hours (M)", "%.2f"), "cost_usd": ("Cost", "$%.2f M"),
    "energy_mwh": ("MWh", "%.0f"), "co2e_t": ("tCO2e", "%.0f"), "mfu": ("MFU", PERCENT_FORMAT),
    "usd_per_device_hour": ("USD/device-h", "%.2f"), "plan": ("Plan", None), "reason": ("Does not run because", None),
}


def has_price(acc) -> bool:
    return acc.prices.reserved_usd_per_hour is not None or acc.prices.on_demand_usd_per_hour is not None


def combination(run: dict, hw: str, region: str, devices: int, price: float) -> dict:
    """One table row: the estimate's headline numbers and its plausibility warnings, or the reason it failed."""
    row = {"accelerator": hw, "region": region, "devices": devices}
    try:
        scenario = scenario_from(scenario_data(
            {**run, "hw": hw, "region": region, "n_dev": devices, "price": price, "pue": 0.0, "plan": "auto"}))
        est = cached_estimate(scenario)
    except TrainsimError as exc:
        return {**row, "reason": str(exc)}
    v, band = est.values, cached_bands(scenario)  # the Planner's P10-P90: the part's own throughput spread
    return {**row, "days": v["wall_clock_days"], "days_p10": band["p10"]["wall_clock_days"],
            "days_p90": band["p90"]["wall_clock_days"], "device_hours_m": v["device_hours"] / 1e6, "cost_usd": v["cost_usd"],
            "energy_mwh": v["energy_mwh"], "co2e_t": v["co2e_t"], "mfu": v["mfu"],
            "usd_per_device_hour": v["usd_per_device_hour"], "plan": cc.plan_label(est.plan), "reason": "",
            "warnings": est.warnings}


def main() -> None:
    st.title("Compare hardware, regions and cluster sizes")
    cat = session_catalog()
    with st.expander("Model and data (the Planner's: a change here is a change there)"):
        run = inputs.model_and_data()  # hardware, site and plan vary below
    bad = widgets.invalid(run)
    if bad:
        widgets.no_figures(bad)
        return
    try:
        base = scenario_from(scenario_data(run))
        spec = base.model.spec()
    except TrainsimError as exc:
        st.error(f"The model and data are not valid: {plain(str(exc))}", icon=":material/warning:")
        return
    st.caption(f"{spec.name} ({spec.params_total() / 1e9:.1f}B parameters), "
               f"{base.training.tokens / 1e12:.2f}T tokens, {base.training.precision}"
               f"{', LoRA rank ' + str(base.finetune.lora_rank) if base.finetune.method == 'lora' else ''} "
               "(the Planner's model and data). Each combination uses its best plan for time.")
    hws, sites, counts, fallback = _selections(cat)
    if fallback is None:
        widgets.no_figures([NUMBERS["cmp_price"].label])
        return
    if not (hws and sites and counts):
        st.info("Pick at least one accelerator, one region and one device count.")
        return

    unpriced = [h for h in hws if not has_price(cat.accelerators[h])]
    if unpriced and fallback <= 0:
        st.warning(f"No catalog price for {', '.join(unpriced)}: left out. Set a fallback price to include "
                   f"{'it' if len(unpriced) == 1 else 'them'}.", icon=":material/money_off:")
    priced = [h for h in hws if h not in unpriced or fallback > 0]
    with st.spinner(f"Estimating {len(priced) * len(sites) * len(counts)} combinations..."):
        rows = [combination(run, h, r, n, fallback if h in unpriced else 0.0)
                for h in priced for r in sites for n in sorted(counts)]
    if not rows:
        return
    _warnings(rows)
    df = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    show_results(df)


def _warnings(rows: list[dict]) -> None:
    """The library's plausibility warnings of the rows, each once, with how many rows it concerns."""
    said: dict[str, int] = {}
    for row in rows:
        for text in row.get("warnings", ()):
            said[text] = said.get(text, 0) + 1
    for text, n in said.items():
        st.warning(f"{note(text)} ({n} of {len(rows)} combinations)", icon=":material/warning:")


def _selections(cat) -> tuple[list, list, list, float | None]:
    """The accelerators, regions and device counts to compare, and the fallback price (None: unreadable)."""
    hw_options, regions = sorted(cat.accelerators), sorted(cat.regions)
    a, c = st.columns([2, 1])  # wide enough for the chips (a narrow multiselect hides them)
    b, d = st.columns([4, 1])
    hws = a.multiselect("Accelerators", hw_options, default=[h for h in DEFAULT_HW if h in hw_options],
                        key="cmp_hw", bind="query-params")
    sites = b.multiselect("Regions", regions, default=[r for r in DEFAULT_REGIONS if r in regions],
                          format_func=lambda r: region_label(r, cat), key="cmp_region", bind="query-params",
                          help="type a country, state or city to find it")
    counts = c.multiselect("Devices", DEVICE_CHOICES, default=DEFAULT_DEVICES, key="cmp_devices",
                           bind="query-params")
    with d:
        fallback = widgets.number("cmp_price", COMPARE_DEFAULTS)
    label = lambda r: region_label(r, cat)  # as the link holds a region
    widgets.remember("cmp_hw", hws, [h for h in DEFAULT_HW if h in hw_options])
    widgets.remember("cmp_region", [label(r) for r in sites], [label(r) for r in DEFAULT_REGIONS if r in regions])
    widgets.remember("cmp_devices", [str(n) for n in counts], [str(n) for n in DEFAULT_DEVICES])
    return hws, sites, counts, fallback


def show_results(df: pd.DataFrame) -> None:
    failed = df["reason"].fillna("") != ""
    if failed.any():
        st.warning(f"{failed.sum()} of {len(df)} combinations cannot run; see the last column.", icon=":material/warning:")
    shown = df.assign(cost_usd=df["cost_usd"] / 1e6, mfu=df["mfu"] * 100)  # as the formats say: $ M, %
    st.dataframe(shown, hide_index=True, key="cmp_table", placeholder=NA, column_config={
        k: (st.column_config.NumberColumn(label, format=fmt) if fmt
            else st.column_config.TextColumn(label, width="large" if k == "reason" else None))
        for k, (label, fmt) in COLUMNS.items()})
    ok = df[~failed]
    if ok.empty:
        return
    left, right = st.columns(2)
    with left:
        view = st.radio("Trade-off", list(cc.VIEWS), horizontal=True, key="cmp_view", bind="query-params",
                        label_visibility="collapsed")
        widgets.remember("cmp_view", view, next(iter(cc.VIEWS)))
        st.plotly_chart(cc.tradeoff_scatter(df, *cc.VIEWS[view]), key="cmp_scatter")
        st.caption("Cloud prices include electricity, so cost and time do not depend on the region; "
                   "the region sets the emissions.")
    right.plotly_chart(cc.co2_by_region(df), key="cmp_co2")
    st.download_button("Table CSV", df.to_csv(index=False), file_name="compare.csv", mime="text/csv",
                       on_click="ignore", key="cmp_csv")


main()
