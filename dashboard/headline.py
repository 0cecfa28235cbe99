"""The answer first: what the estimate pages (Planner, Serving, Post-training) show at their top, above
their inputs, so that it is on the first screen: the headline figures with the assumptions behind them
(price, PUE, grid intensity, what set the step time and the power) and the library's plausibility
warnings (`Estimate.warnings`, simulator/plausibility.py: the CLI prints the same ones).
"""

from __future__ import annotations

import streamlit as st

from dashboard.data import plain
from dashboard.formats import efficiency_label, humanize, money, power_label
from simulator.footprint.energy import MEMORY_BOUND_NOTE
from simulator.footprint.uncertainty import Spreads, p10_p90


def note(text: str) -> str:
    """A library note as the pages show it: the breakdown's keys in human names, Markdown-safe."""
    return plain(humanize(text))


def warnings(est, where=st) -> None:
    """The estimate's plausibility warnings, one box each (nothing when there are none)."""
    for text in est.warnings:
        where.warning(note(text), icon=":material/warning:")


def assumptions(est, price_given: bool, pue_given: bool | None = None) -> str:
    """One line: the price per device-hour, PUE, grid intensity, and what set the step time and the power.
    `price_given` / `pue_given`: whether the user typed them (else the catalog's; `pue_given` None: the page
    has no PUE input, the region's default is used)."""
    v = est.values
    region = v["region"]
    price = (f"{money(v['usd_per_device_hour'])} per device-hour ({'yours' if price_given else 'catalog price'})"
             if v["usd_per_device_hour"] is not None else "no price for this accelerator")
    pue = f"PUE {v['pue']:.2f} ({'yours' if pue_given else f'{region} default'})"
    grid = f"grid {v['carbon_intensity_kg_per_kwh']:.3g} kgCO2e/kWh ({region})"
    step = f"step time: {efficiency_label(v['efficiency_source'])}{_throughput_range(est)}"
    power = f"power: {power_label(v['power_source'])}"
    return f"**Assumes** {price} · {pue} · {grid} · {step} · {power}"


def _throughput_range(est) -> str:
    """' (throughput x0.92-x1.08, P10-P90)': the default Monte Carlo spread of the accelerator's throughput
    (simulator.validation.spread), when the step time is modelled; '' otherwise."""
    sigma = est.basis.throughput_spread
    if not sigma or est.basis.time_fixed:
        return ""
    low, high = p10_p90(Spreads(throughput=sigma), "throughput")
    return f" (throughput x{low:.2f}-x{high:.2f}, P10-P90)"


def sources(est) -> str:
    """What set the step time and the power, in full (the headline line names them in a few words)."""
    v = est.values
    return plain(f"Step time: {v['efficiency_source']}. Power: {v['power_source']}.")


def memory_bound_caveat(est) -> str | None:
    """The library's memory-bound energy note (simulator.footprint.energy), if the estimate has one."""
    return next((a for a in est.assumptions if MEMORY_BOUND_NOTE in a), None)


def footer(est, price_given: bool) -> None:
    """Under the headline figures: the memory-bound energy caveat (by the energy figure), the assumptions'
    line and the plausibility warnings."""
    caveat = memory_bound_caveat(est)
    if caveat:
        st.caption(f"Energy: {note(caveat)}.")
    st.caption(assumptions(est, price_given))
    warnings(est)
