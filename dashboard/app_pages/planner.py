"""Planner: one training run -> headline figures, breakdowns, plan and memory, downloads.

Every input is bound to the URL, so the address bar is the shareable link of the scenario.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, headline, inputs, widgets
from dashboard.data import (
    PROFILE_KEY,
    cached_bands,
    cached_estimate,
    cached_start_sweep,
    cached_tornado,
    plain,
    scenario_from,
)
from dashboard.formats import NA, label, money, money_range, percent, scientific
from dashboard.state import NUMBERS, left_out, scenario_data, state_from_scenario
from hardware_catalog.errors import TrainsimError
from hardware_catalog.files import loads_toml
from simulator.errors import ScenarioError
from simulator.scenario import scenario_from_dict
from simulator.system.efficiency import load_profile as read_profile
from simulator.uploads import scenario_for_upload


def _profile_banner(slot):
    """The calibration profile this session uses (set on the Calibration page), or None."""
    path = st.session_state.get(PROFILE_KEY)
    if not path:
        return None
    try:
        profile = read_profile(path)
    except TrainsimError as exc:
        slot.error(plain(f"calibration profile: {exc}"))
        return None
    cols = slot.columns([4, 1])
    cols[0].info(f"Using calibration profile for {profile.accelerator} ({profile.source}); "
                 f"select that accelerator to apply it.")
    if cols[1].button("Stop using it", key="pl_profile_off"):
        del st.session_state[PROFILE_KEY]
        st.rerun()
    return profile


def _read_upload() -> str | None:
    """The uploaded scenario into the planner's inputs; an error message instead when it cannot be.

    Runs as the uploader's on_change callback, before the widgets exist: only then may their
    session-state values be set (Streamlit refuses it once a keyed widget is on the page)."""
    up = st.session_state.get("pl_upload")
    if up is None:
        return None
    try:
        data = loads_toml(up.getvalue().decode("utf-8"), up.name, ScenarioError)
        scenario_for_upload(scenario_from_dict(data, up.name), up.name)  # validate before touching the widgets
    except UnicodeDecodeError as exc:
        return f"{up.name}: not UTF-8 text ({exc.reason} at byte {exc.start})"
    except TrainsimError as exc:
        return str(exc)
    for section, where in (("serving", "use the Serving page"), ("rlhf", "estimate it with `trainsim estimate`")):
        if section in data:  # the planner has no inputs for it: its figures would silently leave it out
            return f"{up.name}: a [{section}] scenario; the planner estimates pre-training and fine-tuning runs: {where}"
    for key, value in state_from_scenario(data).items():
        st.session_state[key] = widgets.text_of(value) if key in NUMBERS else value  # number fields hold text
    missing = left_out(data)
    st.session_state["pl_upload_left_out"] = (
        f"{up.name}: the planner cannot show {len(missing)} setting(s) of this file, so its figures leave them "
        f"out: {'; '.join(missing)}. `trainsim estimate {up.name}` honours all of them." if missing else None)
    return None


def _on_upload() -> None:
    st.session_state["pl_upload_error"] = _read_upload()


def _upload() -> None:
    st.file_uploader("Load a scenario TOML", type=["toml"], key="pl_upload", on_change=_on_upload)
    if st.session_state.get("pl_upload_error"):
        st.error(plain(st.session_state["pl_upload_error"]))
    elif st.session_state.get("pl_upload_left_out"):
        st.warning(plain(st.session_state["pl_upload_left_out"]))


def _inputs(cat, profile) -> tuple[dict, dict]:
    """The scenario's inputs in three columns: (values, message slot per scenario section)."""
    c_model, c_hw, c_plan = st.columns(3)
    with c_model:
        st.subheader("Model and data")
        values = inputs.model_and_data()
        msg_model = st.empty()
    with c_hw:
        st.subheader("Hardware and site")
        values |= inputs.hardware_and_site(cat, {profile.accelerator} if profile else set())
        msg_hw = st.empty()
    with c_plan:
        st.subheader("Parallelism plan")
        values |= inputs.plan()
        msg_plan = st.empty()
    return values, {"model": msg_model, "training": msg_model, "finetune": msg_model, "cluster": msg_hw,
                    "datacenter": msg_hw, "pricing": msg_hw, "parallelism": msg_plan, "reliability": msg_plan}


def main() -> None:
    st.title("Training run planner")
    top = st.container()
    cat = widgets.page_catalog(top)
    profile = _profile_banner(top)
    head = st.container()  # the answer first: on the first screen, above the inputs
    values, slots = _inputs(cat, profile)
    bad = widgets.invalid(values)
    if bad:  # no estimate, so no figures of an earlier scenario stay on the page
        widgets.no_figures(bad, head)
        _upload()
        return
    data = scenario_data(values)
    if profile is not None and values["hw"] == profile.accelerator:
        data["efficiency"] = {"profile": st.session_state[PROFILE_KEY]}
    try:
        scenario = scenario_from(data)
        with head, st.spinner("Estimating the run..."):
            est = cached_estimate(scenario)
            bands = cached_bands(scenario)
    except TrainsimError as exc:
        hint = " Or choose Plan = auto: the search finds one." if values["plan"] == "manual" else ""
        widgets.route_error(str(exc) + hint * str(exc).startswith("parallelism"), slots, top)
        _upload()
        return
    with head:
        show_headline(est, bands, values)
    show_estimate(est, scenario)
    _upload()


def show_headline(est, bands: dict, values: dict) -> None:
    """Wall clock, cost, energy and emissions with their P10-P90, the assumptions behind them, the warnings."""
    v, lo, hi = est.values, bands["p10"], bands["p90"]
    priced = v["cost_usd"] is not None
    st.caption(f"{v['model']} ({v['params_total'] / 1e9:.1f}B parameters, {v['tokens'] / 1e12:.2f}T tokens) on "
               f"{v['devices']:,} x {v['accelerator']} in {v['region']}")
    ranges = (f"{lo['wall_clock_days']:,.1f}–{hi['wall_clock_days']:,.1f} days",
              money_range(lo["cost_usd"], hi["cost_usd"]) if priced else "n/a (no price)",
              f"{lo['energy_mwh']:,.0f}–{hi['energy_mwh']:,.0f} MWh", f"{lo['co2e_t']:,.0f}–{hi['co2e_t']:,.0f} tCO2e")
    band = {f"delta_{k}": x for k, x in (("color", "off"), ("arrow", "off"))}  # the range, in grey, no arrow
    m = st.columns(4)
    m[0].metric("Wall clock", f"{v['wall_clock_days']:,.1f} days", f"P10–P90 {ranges[0]}", **band)
    m[1].metric("Cost", money(v["cost_usd"]), f"P10–P90 {ranges[1]}", **band,
                help=None if priced else "no price for this accelerator in the catalog: enter a price per device-hour")
    m[2].metric("Energy", f"{v['energy_mwh']:,.0f} MWh", f"P10–P90 {ranges[2]}", **band,
                help=f"IT {v['energy_it_mwh']:,.0f} MWh x PUE {v['pue']:.2f}")
    m[3].metric("Emissions", f"{v['co2e_t']:,.0f} tCO2e", f"P10–P90 {ranges[3]}", **band,
                help=f"+ {v['embodied_co2e_t']:,.1f} t embodied")
    st.caption(headline.assumptions(est, values["price"] > 0, values["pue"] > 0)
               + " · ranges: 4,000 Monte Carlo draws (what moves them: the tornado below)")
    headline.warnings(est)


def _uncertainty(scenario, priced: bool) -> None:
    """A tornado of a headline figure: each uncertain input alone at its P10 and P90 (computed when opened)."""
    with st.expander("What moves the result most (tornado)", key="pl_tornado_open", on_change="rerun") as box:
        if not box.open:
            return
        figures = ["cost_usd"] * priced + ["co2e_t", "wall_clock_days", "energy_mwh"]
        metric = st.radio("Figure", figures, horizontal=True, key="pl_tornado", format_func=label)
        rows, ranges = cached_tornado(scenario, metric)
        st.plotly_chart(charts.tornado_chart(rows, metric, ranges), key="pl_tornado_chart")
        st.caption("Spreads and their sources: simulator/footprint/uncertainty.py; a scenario's [uncertainty] "
                   "section changes them.")


def _start_time(est, scenario) -> None:
    """Operational CO2e against an hourly grid profile for every start hour (best and worst start), when opened.
    A profile belongs to its region (simulator.footprint.carbon_profile.profile_notes): the shipped
    example only for us-virginia, an upload only for its own region (or with its region unknown)."""
    from simulator.footprint.carbon_profile import EXAMPLE_REGION, same_region

    region = est.values["region"]
    with st.expander("When the run starts (hourly grid-intensity profile)", key="pl_start_open",
                     on_change="rerun") as box:
        if not box.open:  # computed and drawn when opened: an hourly chart is heavy on every rerun
            return
        up = st.file_uploader(f"Hourly profile CSV for {region} (timestamp, carbon_intensity_kg_per_kwh; "
                              f"a '# region: {region}' line)", type=["csv"], key="pl_profile_csv")
        if up is None and not same_region(EXAMPLE_REGION, region):
            st.info(f"No hourly grid profile for {region}: the shipped example is for {EXAMPLE_REGION} only, "
                    f"and another grid's hours would contradict {region}'s annual figure ({est.co2e_t:,.0f} t). "
                    f"Upload an hourly CSV for {region} above to see how the start time changes the CO2e.")
            return
        try:
            csv = (up.name, up.getvalue().decode("utf-8")) if up is not None else None
            notes, sweep = cached_start_sweep(scenario, csv)
        except (TrainsimError, UnicodeDecodeError) as exc:
            st.error(plain(str(exc)))
            return
        if up is None:
            st.caption(f"Shipped example for {EXAMPLE_REGION}: synthetic, illustrative (Northern Virginia annual "
                       "mean with a solar shape); upload your own hourly data for real figures.")
        for note in notes:
            st.caption(plain(note))
        (best_t, best), (worst_t, worst) = sweep.best(), sweep.worst()
        c = st.columns(3)
        c[0].metric("Annual-average CO2e", f"{est.co2e_t:,.0f} t")
        c[1].metric("Best start", f"{best:,.0f} t", help=f"{best_t:%Y-%m-%d %H:00} UTC")
        c[2].metric("Worst start", f"{worst:,.0f} t", help=f"{worst_t:%Y-%m-%d %H:00} UTC")
        st.plotly_chart(charts.start_time_chart(sweep.starts, sweep.co2e_t), key="pl_start_chart")


def show_estimate(est, scenario) -> None:
    """Below the inputs: the other figures, what moves the result, the breakdowns, the plan, the notes."""
    v = est.values
    st.divider()
    m = st.columns(4)
    m[0].metric("Training FLOPs", scientific(v["train_flops"]))
    m[1].metric("Device-hours", f"{v['device_hours'] / 1e6:,.3f} M")
    m[2].metric("Water", f"{v['water_m3']:,.0f} m³")
    m[3].metric("MFU", percent(v["mfu"]))
    n = st.columns(4)
    n[0].metric("Step time", f"{v['step_time_s']:.2f} s")
    n[1].metric("Goodput", percent(v["goodput"]))
    n[2].metric("Memory per device", f"{v['memory_gb_per_device']:.1f} / {v['memory_capacity_gb']:.1f} GB")
    n[3].metric("Tokens per second", f"{v['tokens_per_s'] / 1e6:,.2f} M")
    if v.get("finetune_method") == "lora":
        st.columns(4)[0].metric("Trained parameters (LoRA)", f"{v['trained_params'] / 1e6:,.1f} M",
                                help=f"{v['trained_params'] / v['params_total']:.3%} of {v['params_total'] / 1e9:.1f}B; "
                                     "the base weights are frozen")
    _uncertainty(scenario, v["cost_usd"] is not None)
    _start_time(est, scenario)
    st.plotly_chart(charts.time_breakdown(est), key="pl_time")
    st.plotly_chart(charts.energy_breakdown(est), key="pl_energy")
    st.plotly_chart(charts.energy_split_chart(est), key="pl_energy_split")
    if v["cost_usd"] is not None:
        st.plotly_chart(charts.cost_breakdown(est), key="pl_cost")
    left, right = st.columns(2)
    with left:
        st.subheader("Chosen plan")
        st.dataframe([est.plan], hide_index=True, placeholder=NA)
    with right:
        mem = {k.removeprefix("memory_"): val for k, val in v.items()
               if k.startswith("memory_") and k.endswith("_gb") and k not in ("memory_gb_per_device", "memory_capacity_gb")}
        st.plotly_chart(charts.memory_breakdown(mem, v["memory_capacity_gb"]), key="pl_memory")
    st.caption(headline.sources(est))
    for note in est.assumptions:
        st.info(headline.note(note))
    d = st.columns(3)
    d[0].download_button("Scenario TOML", scenario.to_toml(), file_name="scenario.toml", mime="application/toml",
                         on_click="ignore", key="dl_toml")
    d[1].download_button("Estimate JSON", est.to_json(), file_name="estimate.json", mime="application/json",
                         on_click="ignore", key="dl_json")
    import pandas as pd

    d[2].download_button("Estimate CSV", pd.DataFrame([est.flat()]).to_csv(index=False), file_name="estimate.csv",
                         mime="text/csv", on_click="ignore", key="dl_csv")
    st.caption("Share this scenario: copy the page address; every input above is in it.")


main()
