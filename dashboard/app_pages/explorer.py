"""Parallelism explorer: every plan the search considered for the planner's scenario.

Top plans by an objective (`simulator.execution.explore.search`), all feasible plans by step time and memory,
the time-energy Pareto front, why candidates were rejected, and a checker for a hand-made plan
(`simulator.execution.explore.check_plan`: the search's rules, then memory per device).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, headline, inputs, widgets
from dashboard import charts_compare as cc
from dashboard.data import (
    UPLOADS_KEY,
    cached_estimate,
    plain,
    scenario_from,
    session_catalog,
)
from dashboard.formats import NA, PERCENT_FORMAT, money, money_column, percent
from dashboard.state import (
    DEFAULTS,
    EXPLORER_DEFAULTS,
    NUMBERS,
    OBJECTIVE_LABELS,
    RECOMPUTE,
    scenario_data,
)
from hardware_catalog.errors import TrainsimError
from simulator.execution.explore import SearchReport, check_plan, search
from simulator.execution.plan import Plan
from simulator.execution.search import OBJECTIVES
from simulator.scenario import Scenario

MAX_POINTS = 5000
MEMORY_NAMES = ("weights_gb", "gradients_gb", "optimizer_gb", "activations_gb", "buffers_gb", "overhead_gb")


@st.cache_data(show_spinner=False, max_entries=32)
def _search(scenario_json: str, objective: str, top: int, uploads: tuple, _cat) -> SearchReport:
    """`explore.search` memoised on the scenario, objective, top and this session's uploads."""
    return search(Scenario.model_validate_json(scenario_json), _cat, top=top, objective=objective)


def cached_search(scenario: Scenario, objective: str, top: int, cat) -> SearchReport:
    uploads = tuple(tuple(x) for x in st.session_state.get(UPLOADS_KEY, []))
    return _search(scenario.model_dump_json(), objective, top, uploads, cat)


def memory_of(values: dict) -> dict[str, float]:
    """The `memory_*_gb` components of an estimate's values, keyed like MemoryBreakdown.row()."""
    return {k: values[f"memory_{k}"] for k in MEMORY_NAMES if f"memory_{k}" in values}


def main() -> None:
    st.title("Parallelism explorer")
    cat = session_catalog()
    with st.expander("Scenario (the Planner's: a change here is a change there)"):
        planner = inputs.scenario_columns(cat)
    bad = widgets.invalid(planner)
    if bad:
        widgets.no_figures(bad)
        return
    try:
        scenario = scenario_from(scenario_data({**planner, "plan": "auto"}))
        spec = scenario.model.spec()
    except TrainsimError as exc:
        st.error(f"The scenario is not valid: {plain(str(exc))}", icon=":material/warning:")
        return
    devices, acc_id = scenario.cluster.devices, scenario.cluster.accelerator
    st.caption(f"{spec.name} on {devices:,} x {acc_id} in {scenario.datacenter.region} (the Planner's "
               "scenario). Every plan DP x TP x PP x CP x EP x ZeRO x recompute x micro-batch "
               "x interleaving is checked against the rules and device memory, then timed.")
    if planner["ft"] == "lora":
        st.caption(f"LoRA fine-tuning (rank {scenario.finetune.lora_rank}): frozen base weights, adapter "
                   "gradients and optimizer states only.")

    a, b, c = st.columns(3)
    objective = a.selectbox("Rank plans by", OBJECTIVES, key="exp_objective", bind="query-params",
                            format_func=OBJECTIVE_LABELS.get)
    with b:
        top = widgets.number("exp_top", EXPLORER_DEFAULTS)
    colour = c.radio("Colour plans by", ["cost", "energy"], horizontal=True, key="exp_color",
                     bind="query-params", format_func=lambda x: f"{x} per step")
    widgets.remember("exp_objective", OBJECTIVE_LABELS[objective], OBJECTIVE_LABELS[OBJECTIVES[0]])
    widgets.remember("exp_color", f"{colour} per step", "cost per step")
    if top is None:
        widgets.no_figures([NUMBERS["exp_top"].label])
        return
    try:
        with st.spinner("Searching every plan..."):
            best = cached_estimate(scenario)
            report = cached_search(scenario, objective, top, cat)
    except TrainsimError as exc:
        st.error(plain(str(exc)), icon=":material/warning:")
    else:
        headline.warnings(best)
        show_search(best, report, objective, colour)
    manual_plan(planner, scenario, spec)


def show_search(best, report: SearchReport, objective: str, colour: str) -> None:
    res = best.search
    m = st.columns(4)
    m[0].metric("Candidate plans", f"{report.plans_evaluated:,}")
    m[1].metric("Feasible", f"{report.feasible:,}")
    m[2].metric("Search time", f"{report.seconds * 1e3:,.0f} ms")
    m[3].metric(f"Step time, best for {objective}", f"{report.plans[0].step_time_s:.2f} s")

    st.subheader(f"Top {len(report.plans)} plans by {objective}")
    table = top_table(report.plans)
    scale, money_fmt = money_column(table["cost_usd"])
    shown = table.assign(cost_usd=table["cost_usd"] / scale, mfu=table["mfu"] * 100)  # as the formats say
    st.dataframe(shown, hide_index=True, key="exp_table", placeholder=NA, column_config={
        "cost_usd": st.column_config.NumberColumn("cost", format=money_fmt),
        "mfu": st.column_config.NumberColumn("MFU", format=PERCENT_FORMAT),
        "step_time_s": st.column_config.NumberColumn("step (s)", format="%.2f"),
        "memory_gb": st.column_config.NumberColumn("memory (GB)", format="%.1f"),
        "days": st.column_config.NumberColumn("days", format="%.1f"),
        "energy_mwh": st.column_config.NumberColumn("MWh", format="%.0f")})

    left, right = st.columns([2, 3])
    with left:
        pick = st.selectbox("Plan", range(len(report.plans)), key="exp_plan", bind="query-params",
                            format_func=lambda i: f"#{i + 1}: {cc.plan_label(report.plans[i].plan)}")
        rank = (pick or 0) + 1
        chosen = report.plans[rank - 1].values
        st.plotly_chart(charts.memory_breakdown(memory_of(chosen), chosen["memory_capacity_gb"],
                                                title=f"Memory per device, plan #{rank} (GB)"), key="exp_memory")
        st.caption(f"Plan #{rank}: {chosen['wall_clock_days']:,.1f} days, {money(chosen['cost_usd'])}, "
                   f"{chosen['energy_mwh']:,.0f} MWh, MFU {percent(chosen['mfu'])}.")
    with right:
        order = res.order(objective)[: len(report.plans)]
        front = res.pareto()
        idx = cc.downsample(len(res), np.concatenate([order, front]), MAX_POINTS)
        if len(idx) < len(res):
            st.caption(f"Showing {len(idx):,} of {len(res):,} feasible plans (the top and Pareto plans, "
                       "the rest sampled at random).")
        st.plotly_chart(cc.plan_scatter(cc.plans_frame(res, idx), colour, best.memory_capacity_gb,
                                        highlight=cc.plans_frame(res, order)), key="exp_scatter")

    left, right = st.columns(2)
    with left:
        st.plotly_chart(cc.pareto_chart(cc.plans_frame(res, idx), cc.plans_frame(res, front)), key="exp_pareto")
        st.caption(f"{len(front)} plan(s) on the front: no other plan is both faster and uses less energy per step "
                   "(on a rented cluster, cost follows time).")
    with right:
        st.plotly_chart(cc.rejected_bar(report.rejected), key="exp_rejected")
        st.dataframe(pd.DataFrame({"reason": list(report.rejected), "plans": list(report.rejected.values())}),
                     hide_index=True, key="exp_reasons", placeholder=NA)
        st.caption("A plan breaking several rules counts once per rule.")


def top_table(plans) -> pd.DataFrame:
    rows = []
    for rank, est in enumerate(plans, 1):
        p, v = est.plan, est.values
        rows.append({"#": rank, **{k: p[k] for k in ("tp", "pp", "cp", "dp", "ep", "zero", "recompute",
                                                      "microbatch", "interleave")},
                     "step_time_s": v["step_time_s"], "memory_gb": v["memory_gb_per_device"],
                     "days": v["wall_clock_days"], "cost_usd": v["cost_usd"], "energy_mwh": v["energy_mwh"],
                     "mfu": v["mfu"]})
    return pd.DataFrame(rows)


def _own_plan() -> dict:
    """The hand-made plan's inputs; a number that cannot be read is None (its message under it)."""
    cols = st.columns(6)
    v = {}
    for col, key in zip(cols[:3], ("exp_tp", "exp_pp", "exp_cp")):
        with col:
            v[key] = widgets.number(key, EXPLORER_DEFAULTS)
    v["exp_zero"] = cols[3].selectbox("ZeRO", [0, 1, 2, 3], index=DEFAULTS["zero"], key="exp_zero",
                                      bind="query-params")
    with cols[4]:
        v["exp_mb"] = widgets.number("exp_mb", EXPLORER_DEFAULTS)
    v["exp_recompute"] = cols[5].selectbox("Recompute", RECOMPUTE, index=RECOMPUTE.index(DEFAULTS["recompute"]),
                                           key="exp_recompute", bind="query-params")
    widgets.remember("exp_zero", str(v["exp_zero"]), str(DEFAULTS["zero"]))
    widgets.remember("exp_recompute", v["exp_recompute"], DEFAULTS["recompute"])
    return v


def manual_plan(planner: dict, scenario: Scenario, spec) -> None:
    st.subheader("Check a plan of your own")
    v = _own_plan()
    bad = widgets.invalid(v)
    if bad:
        widgets.no_figures(bad)
        return
    tp, pp, cp, zero, mb, rc = (v[k] for k in ("exp_tp", "exp_pp", "exp_cp", "exp_zero", "exp_mb", "exp_recompute"))
    devices = scenario.cluster.devices
    plan = Plan(tp=int(tp), pp=int(pp), cp=int(cp), dp=max(1, devices // (int(tp) * int(pp) * int(cp))),
                microbatch=int(mb), zero=int(zero), recompute=rc)
    check = check_plan(scenario, plan, session_catalog())  # the library's rules and memory model
    for msg in check.problems:
        st.error(plain(msg), icon=":material/warning:")
    if check.problems:
        return
    mem, capacity = check.memory_gb, check.capacity_gb
    if not check.fits:
        st.error(f"{cc.plan_label(plan.to_dict())} does not fit: it needs {mem['total_gb']:.1f} GB per device, "
                 f"{capacity:g} GB available (over by {mem['total_gb'] - capacity:.1f} GB). Try a higher ZeRO "
                 "stage, recompute = full, more TP/PP or a smaller micro-batch.", icon=":material/warning:")
    else:
        st.success(f"{cc.plan_label(plan.to_dict())} is valid and fits: {mem['total_gb']:.1f} of {capacity:g} GB "
                   "per device.")
        fixed = {"plan": "manual", "tp": plan.tp, "pp": plan.pp, "cp": plan.cp, "zero": plan.zero,
                 "mb": plan.microbatch, "recompute": plan.recompute}
        try:
            v = cached_estimate(scenario_from(scenario_data({**planner, **fixed}))).values
        except TrainsimError as exc:
            st.error(plain(str(exc)), icon=":material/warning:")
        else:
            st.caption(f"With these settings (the search still picks interleaving): step {v['step_time_s']:.2f} s, "
                       f"{v['wall_clock_days']:,.1f} days, {money(v['cost_usd'])}, {v['energy_mwh']:,.0f} MWh, "
                       f"MFU {percent(v['mfu'])}.")
    st.plotly_chart(charts.memory_breakdown(mem, capacity, title="Memory per device, your plan (GB)"),
                    key="exp_manual_memory")


main()
