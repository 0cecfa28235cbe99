"""Serving: a model served on a fleet for a period -> devices needed, throughput and latency, cost,
energy and CO2e per million output tokens, one replica's throughput-latency curve, the breakdown.

A scenario with a [serving] section through `estimate()` (simulator/workloads/serving.py). Every input is
bound to the URL (keys prefixed `sv_`), so the page address is the shareable scenario.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import charts_serving, headline, widgets
from dashboard.data import (
    cached_estimate,
    scenario_from,
)
from dashboard.formats import money, percent
from dashboard.state import DTYPES, SERVING_DEFAULTS, serving_data
from hardware_catalog.errors import TrainsimError
from simulator import PRESETS
from simulator.site import resolve_device
from simulator.workloads.serving import batch_curve, max_batch


def _widget(kind, label: str, key: str, **kw):
    """A keyed widget bound to the URL; its default (left out of the URL) comes from SERVING_DEFAULTS."""
    return widgets.bound(kind, label, key, SERVING_DEFAULTS, **kw)


def main() -> None:
    st.title("Inference serving")
    st.caption("Continuous batching on replicas of TP devices: the batch with the most tokens/s that fits in "
               "memory and meets the per-user speed; the fleet must cover the traffic. simulator/workloads/serving.py")
    top = st.container()
    cat = widgets.page_catalog(top)
    head = st.container()  # the answer first: on the first screen, above the inputs
    c_model, c_hw, c_traffic = st.columns(3)
    with c_model:
        st.subheader("Model")
        _widget("selectbox", "Model", "sv_model", options=list(PRESETS))
        _widget("selectbox", "Weights dtype", "sv_dtype", options=DTYPES)
        _widget("selectbox", "KV cache dtype", "sv_kv", options=["bf16", "fp8"])
        msg_model = st.empty()
    with c_hw:
        st.subheader("Fleet and site")
        _widget("selectbox", "Accelerator", "sv_hw", options=sorted(cat.accelerators))
        a, b = st.columns(2)
        with a:
            widgets.number("sv_dev", SERVING_DEFAULTS)
        with b:
            widgets.number("sv_tp", SERVING_DEFAULTS)
        widgets.region("sv_region", SERVING_DEFAULTS, cat)
        widgets.number("sv_months", SERVING_DEFAULTS)
        widgets.number("sv_price", SERVING_DEFAULTS)
        msg_hw = st.empty()
    with c_traffic:
        st.subheader("Traffic")
        a, b = st.columns(2)
        with a:
            widgets.number("sv_prompt", SERVING_DEFAULTS)
        with b:
            widgets.number("sv_output", SERVING_DEFAULTS)
        widgets.number("sv_rps", SERVING_DEFAULTS)
        widgets.number("sv_peak", SERVING_DEFAULTS)
        widgets.number("sv_min_user", SERVING_DEFAULTS)
        msg_traffic = st.empty()

    slots = {"model.": msg_model, "serving.dtype": msg_model, "serving.kv_dtype": msg_model, "cluster.": msg_hw,
             "datacenter.": msg_hw, "pricing.": msg_hw, "serving.tp": msg_hw, "serving.": msg_traffic}
    values, bad = widgets.read_numbers(SERVING_DEFAULTS)
    if bad:  # no estimate, so no figures of an earlier scenario stay on the page
        widgets.no_figures(bad, head)
        return
    try:
        scenario = scenario_from(serving_data(values))
        with head, st.spinner("Estimating the fleet..."):
            est = cached_estimate(scenario)
    except TrainsimError as exc:
        widgets.route_error(str(exc), slots, top)
        return
    with head:
        show_headline(est, scenario, values["sv_price"] > 0)
    show_estimate(est, scenario, cat)


def replica_curve(est, scenario, cat):
    """Throughput and per-user speed of one replica of the estimate's TP for every batch the library
    searched: 1 up to what fits in memory and the engine's limit (serving.max_batch)."""
    sv, spec = scenario.serving, scenario.model.spec()
    _, acc, _, perf = resolve_device(scenario, cat)
    tp = est.values["tp"]
    b_max = min(max_batch(spec, acc, tp, sv.prompt_tokens + sv.output_tokens, sv.dtype, sv.kv_dtype), sv.max_batch)
    return batch_curve(spec, acc, tp, np.arange(1, b_max + 1), sv.prompt_tokens, sv.output_tokens,
                       perf, sv.dtype, sv.kv_dtype, sv.prefill_chunk_tokens)


def show_headline(est, scenario, price_given: bool) -> None:
    """The fleet, its speed and what it costs, the assumptions behind them, the warnings."""
    v, sv = est.values, scenario.serving
    traffic = f"{sv.requests_per_s:g} requests/s" if sv.requests_per_s else "full load"
    st.caption(f"{v['model']} ({v['params_total'] / 1e9:.1f}B parameters, {sv.dtype} weights, {sv.kv_dtype} KV cache) "
               f"on {v['devices']:,} x {v['accelerator']} in {v['region']}: {v['replicas']:,} replicas of TP "
               f"{v['tp']}, batch {v['batch']} each; {traffic} for {sv.months:g} month{'s' * (sv.months != 1)} = "
               f"{v['output_mtok']:,.0f} M output tokens")
    m = st.columns(5)
    m[0].metric("Devices needed", f"{v['devices_needed']:,} of {v['devices']:,}",
                help=f"whole replicas of TP {v['tp']} for the traffic's peak")
    m[1].metric("Tokens/s per device", f"{v['tokens_per_s_per_device']:,.0f}", help="output tokens, at full load")
    m[2].metric("Tokens/s per user", f"{v['tokens_per_s_per_user']:,.1f}")
    m[3].metric("Time to first token", f"{v['ttft_s'] * 1e3:,.0f} ms", help="prefill of one prompt, no queueing")
    m[4].metric("Utilisation", percent(v["utilisation"]), help="mean traffic / fleet capacity")
    m = st.columns(5)
    m[0].metric("$ per million tokens", money(v["usd_per_mtok"]), help="output tokens served")
    m[1].metric("kWh per million tokens", f"{v['kwh_per_mtok']:,.3f}", help="facility energy (x PUE)")
    m[2].metric("kgCO2e per million tokens", f"{v['kgco2e_per_mtok']:,.3f}", help="operational")
    m[3].metric("Cost for the period", money(v["cost_usd"]), help=f"{sv.months:g} months")
    m[4].metric("Energy for the period", f"{v['energy_mwh']:,.2f} MWh",
                help=f"{v['co2e_t']:,.2f} tCO2e operational + {v['embodied_co2e_t']:,.2f} t embodied")
    headline.footer(est, price_given)


def show_estimate(est, scenario, cat) -> None:
    """Below the inputs: the decode step and the fleet's capacity, one replica's curve, the breakdown."""
    v, sv = est.values, scenario.serving
    st.divider()
    caveat = headline.memory_bound_caveat(est)  # shown by the energy figure
    st.caption(f"Decode step {v['decode_step_s'] * 1e3:,.1f} ms ({'memory' if v['decode_memory_bound'] else 'compute'}"
               f"-bound); fleet capacity {v['capacity_tokens_per_s']:,.0f} output tokens/s; memory "
               f"{v['memory_gb_per_device']:,.1f} / {v['memory_capacity_gb']:.1f} GB per device.")

    curve = replica_curve(est, scenario, cat)
    st.plotly_chart(charts_serving.throughput_latency(curve.batch, curve.tokens_per_s, curve.tokens_per_s_per_user,
                                                      v["batch"], sv.min_tokens_per_s_per_user), key="sv_curve")
    st.subheader("Breakdown")
    widgets.breakdown_table(est.breakdown, "sv_breakdown", 1)
    st.caption(headline.sources(est))
    for note in est.assumptions:
        if note != caveat:  # already shown by the energy figure
            st.info(headline.note(note))
    widgets.downloads(scenario, est, "serving", "sv")


main()
