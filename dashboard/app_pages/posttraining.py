"""Post-training (RL): PPO, GRPO or DPO on a cluster -> wall clock, cost, energy and CO2e, how much of the
run is rollout generation, the phases (rollouts, scoring passes, policy and critic updates), the breakdown.

A scenario with an [rlhf] section through `estimate()` (simulator/workloads/rlhf.py). Every input is bound to
the URL (keys prefixed `rl_`), so the page address is the shareable scenario.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts_rlhf, headline, widgets
from dashboard.data import (
    cached_estimate,
    scenario_from,
)
from dashboard.formats import money, percent
from dashboard.state import ALGORITHMS, RLHF_DEFAULTS, SAME_AS_POLICY, rlhf_data
from hardware_catalog.errors import TrainsimError
from simulator import PRESETS


def _widget(kind, label: str, key: str, **kw):
    """A keyed widget bound to the URL; its default (left out of the URL) comes from RLHF_DEFAULTS."""
    return widgets.bound(kind, label, key, RLHF_DEFAULTS, **kw)


def main() -> None:
    st.title("Post-training (RL)")
    st.caption("PPO, GRPO or DPO on one cluster, the phases one after another on the same devices (colocated): "
               "rollouts decoded by the policy, scoring forward passes, the policy (and critic) update. "
               "simulator/workloads/rlhf.py")
    top = st.container()
    cat = widgets.page_catalog(top)
    head = st.container()  # the answer first: on the first screen, above the inputs
    c_model, c_data, c_hw = st.columns(3)
    with c_model:
        st.subheader("Models")
        _widget("selectbox", "Policy model", "rl_model", options=list(PRESETS))
        _widget("selectbox", "Algorithm", "rl_algo", options=ALGORITHMS,
                help="grpo: groups of responses, no critic; ppo: actor, critic, reward and reference models; "
                     "dpo: offline preference pairs, no rollouts")
        _widget("selectbox", "Reward model", "rl_reward", options=[SAME_AS_POLICY, *PRESETS],
                help="scored once per sequence (ppo, grpo); ppo's critic has its shape. DPO uses none")
        msg_model = st.empty()
    with c_data:
        st.subheader("Prompts and rollouts")
        widgets.number("rl_prompts", RLHF_DEFAULTS)
        a, b = st.columns(2)
        with a:
            widgets.number("rl_prompt", RLHF_DEFAULTS)
            widgets.number("rl_samples", RLHF_DEFAULTS)
        with b:
            widgets.number("rl_response", RLHF_DEFAULTS)
            widgets.number("rl_epochs", RLHF_DEFAULTS)
        widgets.number("rl_batch_m", RLHF_DEFAULTS)
        msg_data = st.empty()
    with c_hw:
        st.subheader("Cluster and site")
        _widget("selectbox", "Accelerator", "rl_hw", options=sorted(cat.accelerators))
        widgets.number("rl_dev", RLHF_DEFAULTS)
        widgets.region("rl_region", RLHF_DEFAULTS, cat)
        widgets.number("rl_price", RLHF_DEFAULTS)
        msg_hw = st.empty()

    slots = {"model.": msg_model, "rlhf.reward_model": msg_model, "rlhf.critic_model": msg_model,
             "rlhf.": msg_data, "training.": msg_data, "cluster.": msg_hw, "parallelism": msg_hw,
             "datacenter.": msg_hw, "pricing.": msg_hw}
    values, bad = widgets.read_numbers(RLHF_DEFAULTS)
    if bad:  # no estimate, so no figures of an earlier scenario stay on the page
        widgets.no_figures(bad, head)
        return
    try:
        scenario = scenario_from(rlhf_data(values))
        with head, st.spinner("Estimating the run..."):
            est = cached_estimate(scenario)
    except TrainsimError as exc:
        widgets.route_error(str(exc), slots, top)
        return
    with head:
        show_headline(est, scenario, values["rl_price"] > 0)
    show_estimate(est, scenario)


def show_headline(est, scenario, price_given: bool) -> None:
    """Time, cost, energy, emissions and the rollouts' share, the assumptions behind them, the warnings."""
    v, rl = est.values, scenario.rlhf
    seq = rl.prompt_tokens + rl.response_tokens
    st.caption(f"{rl.algorithm.upper()} on {v['model']} ({v['params_total'] / 1e9:.1f}B parameters), "
               f"{v['devices']:,} x {v['accelerator']} in {v['region']}: {v['rlhf_sequences']:,.0f} sequences of "
               f"{seq:,} tokens x {rl.epochs} epoch{'s' * (rl.epochs != 1)} = {v['tokens'] / 1e9:,.2f} B trained "
               "tokens")
    m = st.columns(4)
    m[0].metric("Wall clock", widgets.duration(v["wall_clock_days"]), help=f"{v['wall_clock_days']:,.3f} days; "
                f"goodput {percent(v['goodput'])} (checkpoints and failures)")
    m[1].metric("Device-hours", f"{v['device_hours']:,.0f}")
    m[2].metric("Cost", money(v["cost_usd"]), help=None if v["cost_usd"] is None
                else f"{money(v['usd_per_device_hour'])} per device-hour")
    m[3].metric("Energy", f"{v['energy_mwh']:,.3f} MWh", help=f"facility: IT {v['energy_it_mwh']:,.3f} MWh "
                f"x PUE {v['pue']:.2f}")
    m = st.columns(4)
    m[0].metric("Emissions", f"{v['co2e_t'] * 1e3:,.1f} kgCO2e",
                help=f"operational; + {v['embodied_co2e_t'] * 1e3:,.1f} kg embodied")
    m[1].metric("Rollouts: share of time", percent(v["rlhf_generation_share"]),
                help="generation's share of the compute time (before checkpoint and failure overhead)")
    m[2].metric("Rollouts: share of FLOPs", percent(v["rlhf_generation_flops_share"]),
                help=f"decoding runs at {v['rlhf_generation_tflops_per_device']:,.0f} TFLOP/s per device")
    m[3].metric("Sequences", f"{v['rlhf_sequences']:,.0f}", help="prompts x samples per prompt")
    headline.footer(est, price_given)


def show_estimate(est, scenario) -> None:
    """Below the inputs: the policy update's plan, the phases, the breakdown, the notes."""
    v, p = est.values, est.plan
    st.divider()
    rollout = next((a for a in est.assumptions if a.startswith("rlhf (")), "")
    caveat = headline.memory_bound_caveat(est)  # shown by the energy figure
    st.caption(f"Policy update plan: tp {p['tp']}, pp {p['pp']}, dp {p['dp']}, ZeRO {p['zero']}, recompute "
               f"{p['recompute']}, microbatch {p['microbatch']}; memory {v['memory_gb_per_device']:,.1f} / "
               f"{v['memory_capacity_gb']:.1f} GB per device; MFU {percent(v['mfu'])} over all phases. {headline.note(rollout)}")

    st.plotly_chart(charts_rlhf.phases(est.breakdown), key="rl_phases")
    st.subheader("Breakdown")
    widgets.breakdown_table(est.breakdown, "rl_breakdown", 2)
    st.caption(headline.sources(est))
    for note in est.assumptions:
        if note not in (rollout, caveat):
            st.info(headline.note(note))
    widgets.downloads(scenario, est, "rlhf", "rl")


main()
