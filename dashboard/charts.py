"""Pure Plotly figure builders for estimates (no Streamlit here; unit-testable with fig.to_dict()).

One colour per breakdown component across every chart (colour-blind-safe Plotly "Safe" palette).
"""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from dashboard import formats
from simulator import Estimate
from simulator.footprint import energy_split as split

_SAFE = px.colors.qualitative.Safe
COMPONENT_COLORS = {
    "compute": _SAFE[0], "tp_comm": _SAFE[1], "cp_comm": _SAFE[2], "ep_comm": _SAFE[3], "pp_comm": _SAFE[4],
    "bubble": _SAFE[5], "dp_comm": _SAFE[6], "optimizer": _SAFE[7], "checkpoint_and_failures": _SAFE[8],
    "host": _SAFE[9], "network": "#DDAA33", "storage": "#004488", "facility_overhead": _SAFE[10],
    "embodied": "#888888", "capex": _SAFE[1],
    "electricity": _SAFE[4], "weights": _SAFE[0], "gradients": _SAFE[1], "optimizer_states": _SAFE[2],
    "activations": _SAFE[3], "buffers": _SAFE[4], "overhead": "#888888",
}


def _bar(rows: list[tuple[str, float]], title: str, axis: str, fmt: str, ticks: str = "~s") -> go.Figure:
    """One stacked horizontal bar of named parts; the unit is in the title ("Time (days)"), so no axis title
    that the legend beneath would overlap. `axis` names the unit in the hover text."""
    rows = [(name, value) for name, value in rows if value > 0]
    fig = go.Figure()
    for name, value in rows:
        shown = formats.label(name)  # human names of the breakdown components (one mapping for every page)
        fig.add_trace(go.Bar(x=[value], y=[title], name=shown, orientation="h", marker_color=COMPONENT_COLORS.get(name),
                             hovertemplate=f"%{{x:{fmt}}} {axis}<extra>{shown}</extra>"))
    fig.update_layout(barmode="stack", height=170, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"tickformat": ticks}, legend={"orientation": "h", "y": -0.45, "traceorder": "normal"}, showlegend=True,
                      yaxis={"showticklabels": False}, title={"text": title, "x": 0, "font": {"size": 14}})
    return fig


def time_breakdown(est: Estimate) -> go.Figure:
    """Wall-clock days by component: compute, communication, bubble, optimizer, failures."""
    rows = [(r["component"], r["seconds"] / 86400) for r in est.breakdown]
    return _bar(rows, "Time (days)", "days", ",.2f")


def energy_breakdown(est: Estimate) -> go.Figure:
    """Facility MWh by component: devices (per step part), idle, host, cooling and facility."""
    rows = [(r["component"], r["energy_kwh"] / 1e3) for r in est.breakdown]
    return _bar(rows, "Energy (MWh)", "MWh", ",.1f")


def energy_split_chart(est: Estimate) -> go.Figure:
    """The energy split as people report it (simulator.footprint.energy_split): accelerators, hosts,
    network, storage, cooling & facility, each with its share of the facility energy."""
    colors = {"accelerators": _SAFE[0], "hosts": COMPONENT_COLORS["host"], "network": COMPONENT_COLORS["network"],
              "storage": COMPONENT_COLORS["storage"], "facility_overhead": COMPONENT_COLORS["facility_overhead"]}
    kwh, share = split.energy_split_kwh(est), split.energy_split(est)
    fig = go.Figure()
    for group, value in kwh.items():
        if value > 0:
            label = f"{split.SPLIT_LABELS[group]} {share[group]:.1%}"
            fig.add_trace(go.Bar(x=[100 * share[group]], y=["split"], name=label, orientation="h",
                                 marker_color=colors[group], customdata=[value / 1e3],
                                 hovertemplate=f"{label}: %{{customdata:,.1f}} MWh<extra></extra>"))
    # no x title: the chart's title names the unit, and a title there ran into the legend below the axis
    fig.update_layout(barmode="stack", height=180, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"range": [0, 100], "ticksuffix": "%"}, legend={"orientation": "h", "y": -0.45, "traceorder": "normal"},
                      yaxis={"showticklabels": False},
                      title={"text": "Energy split (% of facility energy)", "x": 0, "font": {"size": 14}})
    return fig


def cost_breakdown(est: Estimate) -> go.Figure:
    rows = [(r["component"], r["cost_usd"]) for r in est.breakdown]
    return _bar(rows, "Cost (USD)", "", "$,.0f", "$~s")


def memory_breakdown(memory_gb: dict[str, float], capacity_gb: float, title: str = "Memory per device (GB)") -> go.Figure:
    """Stacked memory components with the device capacity as a vertical line."""
    names = {"weights_gb": "weights", "gradients_gb": "gradients", "optimizer_gb": "optimizer_states",
             "activations_gb": "activations", "buffers_gb": "buffers", "overhead_gb": "overhead"}
    fig = _bar([(names[k], v) for k, v in memory_gb.items() if k in names], title, "GB", ",.1f")
    fig.add_vline(x=capacity_gb, line_dash="dash", line_color="#cc3311", annotation_text=f"{capacity_gb:.1f} GB")
    return fig


def tornado_chart(rows: list[dict], metric: str, ranges: dict[str, tuple[float, float]] | None = None) -> go.Figure:
    """Horizontal bars from each input's P10 to its P90 effect on `metric` around the point estimate (widest
    on top); each input named with its own P10-P90 (`ranges`, simulator.footprint.uncertainty.input_ranges)."""
    rows = list(reversed(rows))
    base = rows[0]["base"] if rows else 0.0
    names = [_input_name(r["input"], (ranges or {}).get(r["input"])) for r in rows]
    money = metric == "cost_usd"
    fmt = "$,.4s" if money else ",.4g"
    fig = go.Figure(go.Bar(y=names, x=[r["high"] - r["low"] for r in rows], base=[r["low"] for r in rows],
                           orientation="h", marker_color=_SAFE[0],
                           customdata=[[r["low"], r["high"]] for r in rows],
                           hovertemplate=f"%{{y}}<br>%{{customdata[0]:{fmt}}} to %{{customdata[1]:{fmt}}}<extra></extra>"))
    fig.add_vline(x=base, line_dash="dash", line_color="#444444", annotation_text="point estimate")
    title = formats.label(metric)
    fig.update_layout(title={"text": f"{title.split(' (')[0]}: each input alone at its P10 and P90", "x": 0,
                             "font": {"size": 14}},
                      xaxis={"title": title, "tickformat": "$~s" if money else "~s"}, yaxis={"automargin": True},
                      height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def _input_name(key: str, band: tuple[float, float] | None) -> str:
    """"Grid intensity 0.284-0.367 kgCO2e/kWh": an uncertain input with its P10-P90 (formats.INPUTS)."""
    name, unit, fmt = formats.INPUTS.get(key, (formats.label(key), "", ",.3g"))
    if band is None:
        return name
    return f"{name} {band[0]:{fmt}}–{band[1]:{fmt}} {unit}".rstrip()


def start_time_chart(starts, co2e_t) -> go.Figure:
    """Operational tCO2e of the run for every start hour of an hourly grid profile."""
    fig = go.Figure(go.Scatter(x=np.asarray(starts), y=np.asarray(co2e_t, dtype=float), mode="lines",
                               line={"color": _SAFE[0]},
                               hovertemplate="%{x|%Y-%m-%d %H:00} UTC<br>%{y:,.0f} tCO2e<extra></extra>"))
    fig.update_layout(title=dict(text="CO2e by start time", x=0, font=dict(size=14)), height=280,
                      yaxis_title="tCO2e", margin=dict(l=10, r=10, t=40, b=10))
    return fig
