"""Compare: the planner's model and tokens on several accelerators x regions x device counts.

One `estimate()` per combination (cached per scenario). A combination that fails (no plan fits in
memory, no interconnect, ...) stays in the table with its reason. Inputs are bound to the URL.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts_compare as cc
from dashboard.data import cached_estimate, plain, scenario_from, session_catalog
from dashboard.state import DEFAULTS, scenario_data
from hardware_catalog.errors import TrainsimError

# Planner inputs that describe the run (model, data, batch, what is trained); hardware, site and plan vary here.
RUN_KEYS = ("model", "params_b", "budget_flops", "tokens_t", "seq", "batch_m", "precision",
            "ft", "lora_rank", "lora_targets")
DEFAULT_HW = ["nvidia-h100-sxm-80gb", "nvidia-b200", "amd-mi300x", "google-tpu-v5p"]
DEFAULT_REGIONS = ["us-virginia", "FR", "SE"]
DEFAULT_DEVICES = [2048, 4096, 8192]
DEVICE_CHOICES = sorted({2 ** k for k in range(3, 17)} | {3072, 6144, 12288, 24576, 49152} | set(DEFAULT_DEVICES))
COLUMNS = {  # table column -> (label, format)
    "accelerator": ("Accelerator", None), "region": ("Region", None), "devices": ("Devices", "%d"),
    "days": ("Days", "%.1f"), "device_hours_m": ("Device-hours (M)", "%.2f"), "cost_usd": ("Cost", "dollar"),
    "energy_mwh": ("MWh", "%.0f"), "co2e_t": ("tCO2e", "%.0f"), "mfu": ("MFU", "percent"),
    "usd_per_device_hour": ("USD/device-h", "%.2f"), "plan": ("Plan", None), "reason": ("Does not run because", None),
}


def has_price(acc) -> bool:
    return acc.prices.reserved_usd_per_hour is not None or acc.prices.on_demand_usd_per_hour is not None


def combination(run: dict, hw: str, region: str, devices: int, price: float) -> dict:
    """One table row: the estimate's headline numbers, or the reason it failed."""
    row = {"accelerator": hw, "region": region, "devices": devices}
    try:
        est = cached_estimate(scenario_from(scenario_data(
            {**run, "hw": hw, "region": region, "n_dev": devices, "price": price, "pue": 0.0, "plan": "auto"})))
    except TrainsimError as exc:
        return {**row, "reason": str(exc)}
    v = est.values
    return {**row, "days": v["wall_clock_days"], "device_hours_m": v["device_hours"] / 1e6, "cost_usd": v["cost_usd"],
            "energy_mwh": v["energy_mwh"], "co2e_t": v["co2e_t"], "mfu": v["mfu"],
            "usd_per_device_hour": v["usd_per_device_hour"], "plan": cc.plan_label(est.plan), "reason": ""}


def main() -> None:
    st.title("Compare hardware, regions and cluster sizes")
    cat = session_catalog()
    run = {k: st.session_state.get(k, DEFAULTS[k]) for k in RUN_KEYS}
    try:
        base = scenario_from(scenario_data(run))
        spec = base.model.spec()
    except TrainsimError as exc:
        st.error(f"The planner's model and data are not valid: {plain(str(exc))}", icon="⚠️")
        return
    st.caption(f"{spec.name} ({spec.params_total() / 1e9:.1f}B parameters), "
               f"{base.training.tokens / 1e12:.2f}T tokens, {base.training.precision}"
               f"{', LoRA rank ' + str(base.finetune.lora_rank) if base.finetune.method == 'lora' else ''} "
               "(from the Planner page). Each combination uses its best plan for time.")

    hw_options, regions = sorted(cat.accelerators), sorted(cat.regions)
    a, b, c, d = st.columns([3, 2, 2, 1])
    hws = a.multiselect("Accelerators", hw_options, default=[h for h in DEFAULT_HW if h in hw_options],
                        key="cmp_hw", bind="query-params")
    sites = b.multiselect("Regions", regions, default=[r for r in DEFAULT_REGIONS if r in regions],
                          format_func=lambda r: f"{r} ({cat.regions[r].name})", key="cmp_region",
                          bind="query-params")
    counts = c.multiselect("Devices", DEVICE_CHOICES, default=DEFAULT_DEVICES, key="cmp_devices",
                           bind="query-params")
    fallback = d.number_input("Fallback USD/device-h", min_value=0.0, value=0.0, step=0.5, key="cmp_price",
                              bind="query-params", help="Price for accelerators the catalog has no price for "
                                                        "(0 = leave them out).")
    if not (hws and sites and counts):
        st.info("Pick at least one accelerator, one region and one device count.")
        return

    unpriced = [h for h in hws if not has_price(cat.accelerators[h])]
    if unpriced and fallback <= 0:
        st.warning(f"No catalog price for {', '.join(unpriced)}: left out. Set a fallback price to include "
                   f"{'it' if len(unpriced) == 1 else 'them'}.", icon="💲")
    priced = [h for h in hws if h not in unpriced or fallback > 0]
    rows = [combination(run, h, r, n, fallback if h in unpriced else 0.0)
            for h in priced for r in sites for n in sorted(counts)]
    if not rows:
        return
    df = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    show_results(df)


def show_results(df: pd.DataFrame) -> None:
    failed = df["reason"].fillna("") != ""
    if failed.any():
        st.warning(f"{failed.sum()} of {len(df)} combinations cannot run; see the last column.", icon="⚠️")
    st.dataframe(df, hide_index=True, key="cmp_table", column_config={
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
        st.plotly_chart(cc.tradeoff_scatter(df, *cc.VIEWS[view]), key="cmp_scatter")
        st.caption("Cloud prices include electricity, so cost and time do not depend on the region; "
                   "the region sets the emissions.")
    right.plotly_chart(cc.co2_by_region(df), key="cmp_co2")
    st.download_button("Table CSV", df.to_csv(index=False), file_name="compare.csv", mime="text/csv",
                       on_click="ignore", key="cmp_csv")


main()
