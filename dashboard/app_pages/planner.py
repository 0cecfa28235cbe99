"""Planner: one training run -> headline figures, breakdowns, plan and memory, downloads.

Every input is bound to the URL, so the address bar is the shareable link of the scenario.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, inputs, widgets
from dashboard.data import (
    PROFILE_KEY,
    cached_estimate,
    plain,
    scenario_from,
    usd,
)
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
    values, slots = _inputs(cat, profile)
    bad = widgets.invalid(values)
    if bad:  # no estimate, so no figures of an earlier scenario stay on the page
        widgets.no_figures(bad)
        _upload()
        return
    data = scenario_data(values)
    if profile is not None and values["hw"] == profile.accelerator:
        data["efficiency"] = {"profile": st.session_state[PROFILE_KEY]}
    try:
        scenario = scenario_from(data)
        est = cached_estimate(scenario)
    except TrainsimError as exc:
        hint = " Or choose Plan = auto: the search finds one." if values["plan"] == "manual" else ""
        widgets.route_error(str(exc) + hint * str(exc).startswith("parallelism"), slots, top)
        _upload()
        return
    show_estimate(est, scenario)
    _upload()


def _uncertainty(est) -> None:
    """P10-P90 of the headline figures (4,000 Monte Carlo samples) and a tornado of the cost."""
    from simulator.footprint.uncertainty import monte_carlo, tornado

    band = monte_carlo(est.basis, 4000).summary()
    lo, hi = band["p10"], band["p90"]
    priced = est.values["cost_usd"] is not None
    cost = f"{usd(lo['cost_usd'], True)}-{usd(hi['cost_usd'], True)[1:]}" if priced else "n/a (no price)"
    st.caption(f"P10-P90: wall clock {lo['wall_clock_days']:,.1f}-{hi['wall_clock_days']:,.1f} days, cost "
               f"{cost}, energy {lo['energy_mwh']:,.0f}-"
               f"{hi['energy_mwh']:,.0f} MWh, emissions {lo['co2e_t']:,.0f}-{hi['co2e_t']:,.0f} tCO2e "
               "(spreads and their sources: simulator/footprint/uncertainty.py)")
    with st.expander("What moves the result most (tornado)"):
        figures = ["cost_usd"] * priced + ["co2e_t", "wall_clock_days", "energy_mwh"]
        metric = st.radio("Figure", figures, horizontal=True,
                          key="pl_tornado")
        st.plotly_chart(charts.tornado_chart(tornado(est.basis, metric), metric), key="pl_tornado_chart")


def _start_time(est) -> None:
    """Operational CO2e against an hourly grid profile for every start hour (best and worst start).
    A profile belongs to its region (simulator.footprint.carbon_profile.profile_notes): the shipped
    example only for us-virginia, an upload only for its own region (or with its region unknown)."""
    from simulator.footprint.carbon_profile import (
        EXAMPLE_REGION,
        load_example,
        parse_profile_csv,
        profile_notes,
        same_region,
        sweep_for_estimate,
    )

    region = est.values["region"]
    with st.expander("When the run starts (hourly grid-intensity profile)"):
        up = st.file_uploader(f"Hourly profile CSV for {region} (timestamp, carbon_intensity_kg_per_kwh; "
                              f"a '# region: {region}' line)", type=["csv"], key="pl_profile_csv")
        if up is None and not same_region(EXAMPLE_REGION, region):
            st.info(f"No hourly grid profile for {region}: the shipped example is for {EXAMPLE_REGION} only, "
                    f"and another grid's hours would contradict {region}'s annual figure ({est.co2e_t:,.0f} t). "
                    f"Upload an hourly CSV for {region} above to see how the start time changes the CO2e.")
            return
        try:
            profile = (parse_profile_csv(up.getvalue().decode("utf-8"), up.name) if up is not None
                       else load_example())
            notes = profile_notes(profile, region, est.values["carbon_intensity_kg_per_kwh"])
        except (TrainsimError, UnicodeDecodeError) as exc:
            st.error(plain(str(exc)))
            return
        if up is None:
            st.caption(f"Shipped example for {EXAMPLE_REGION}: synthetic, illustrative (Northern Virginia annual "
                       "mean with a solar shape); upload your own hourly data for real figures.")
        for note in notes:
            st.caption(plain(note))
        sweep = sweep_for_estimate(est, profile)
        (best_t, best), (worst_t, worst) = sweep.best(), sweep.worst()
        c = st.columns(3)
        c[0].metric("Annual-average CO2e", f"{est.co2e_t:,.0f} t")
        c[1].metric("Best start", f"{best:,.0f} t", help=f"{best_t:%Y-%m-%d %H:00} UTC")
        c[2].metric("Worst start", f"{worst:,.0f} t", help=f"{worst_t:%Y-%m-%d %H:00} UTC")
        st.plotly_chart(charts.start_time_chart(sweep.starts, sweep.co2e_t), key="pl_start_chart")


def show_estimate(est, scenario) -> None:
    v = est.values
    st.divider()
    st.caption(f"{v['model']} ({v['params_total'] / 1e9:.1f}B parameters, {v['tokens'] / 1e12:.2f}T tokens) on "
               f"{v['devices']:,} x {v['accelerator']} in {v['region']}; step time: {v['efficiency_source']}; power: {v['power_source']}")
    m = st.columns(4)
    m[0].metric("Wall clock", f"{v['wall_clock_days']:,.1f} days")
    m[1].metric("Cost", usd(v["cost_usd"], millions=True),
                help=None if v["cost_usd"] is not None else "no price for this accelerator in the catalog: "
                "enter a price per device-hour")
    m[2].metric("Energy", f"{v['energy_mwh']:,.0f} MWh", help=f"IT {v['energy_it_mwh']:,.0f} MWh x PUE {v['pue']:.2f}")
    m[3].metric("Emissions", f"{v['co2e_t']:,.0f} tCO2e", help=f"+ {v['embodied_co2e_t']:,.1f} t embodied")
    m = st.columns(4)
    m[0].metric("Training FLOPs", f"{v['train_flops']:.3g}")
    m[1].metric("Device-hours", f"{v['device_hours'] / 1e6:,.3f} M")
    m[2].metric("Water", f"{v['water_m3']:,.0f} m³")
    m[3].metric("MFU", f"{v['mfu']:.1%}")
    n = st.columns(4)
    n[0].metric("Step time", f"{v['step_time_s']:.2f} s")
    n[1].metric("Goodput", f"{v['goodput']:.1%}")
    n[2].metric("Memory per device", f"{v['memory_gb_per_device']:.1f} / {v['memory_capacity_gb']:g} GB")
    n[3].metric("Tokens per second", f"{v['tokens_per_s'] / 1e6:,.2f} M")
    if v.get("finetune_method") == "lora":
        st.columns(4)[0].metric("Trained parameters (LoRA)", f"{v['trained_params'] / 1e6:,.1f} M",
                                help=f"{v['trained_params'] / v['params_total']:.3%} of {v['params_total'] / 1e9:.1f}B; "
                                     "the base weights are frozen")
    _uncertainty(est)
    _start_time(est)
    st.plotly_chart(charts.time_breakdown(est), key="pl_time")
    st.plotly_chart(charts.energy_breakdown(est), key="pl_energy")
    st.plotly_chart(charts.energy_split_chart(est), key="pl_energy_split")
    if v["cost_usd"] is not None:
        st.plotly_chart(charts.cost_breakdown(est), key="pl_cost")
    left, right = st.columns(2)
    with left:
        st.subheader("Chosen plan")
        st.dataframe([est.plan], hide_index=True)
    with right:
        mem = {k.removeprefix("memory_"): val for k, val in v.items()
               if k.startswith("memory_") and k.endswith("_gb") and k not in ("memory_gb_per_device", "memory_capacity_gb")}
        st.plotly_chart(charts.memory_breakdown(mem, v["memory_capacity_gb"]), key="pl_memory")
    for note in est.assumptions:
        st.info(note)
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
