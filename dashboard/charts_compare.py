"""Pure Plotly builders for the Compare and Parallelism explorer pages (no Streamlit here).

Tidy DataFrames in, `go.Figure` out; unit-testable with `fig.to_dict()`. Colours: one per
accelerator (colour-blind-safe Plotly "Safe" palette), the same in every chart of a page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard.formats import LOG_TICKS
from simulator.execution.plan import RECOMPUTE

_SAFE = px.colors.qualitative.Safe
FRONT_COLOR = "#222222"
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))


def accelerator_colors(ids) -> dict[str, str]:
    """A stable colour per accelerator id (sorted order, palette cycled)."""
    return {a: _SAFE[i % len(_SAFE)] for i, a in enumerate(sorted(set(ids)))}


def pareto_front(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows no other row beats on both `x` and `y` (both minimised), sorted by `x`.

    Same rule as `simulator.execution.search.SearchResult.pareto`: sort by x (ties by y), keep strict new
    minima of y.
    """
    d = df.dropna(subset=[x, y]).sort_values([x, y], kind="stable")
    prev_min = np.concatenate([[np.inf], np.minimum.accumulate(d[y].to_numpy())[:-1]])
    return d[d[y].to_numpy() < prev_min]


def downsample(n: int, keep, limit: int = 5000, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `limit` of `n` points: every index in `keep`, the rest at random."""
    if n <= limit:
        return np.arange(n)
    keep = np.unique(np.asarray(keep, dtype=np.int64))
    others = np.setdiff1d(np.arange(n), keep)
    take = max(0, limit - len(keep))
    picked = np.random.default_rng(seed).choice(others, size=min(take, len(others)), replace=False)
    return np.sort(np.concatenate([keep, picked]))


def plan_label(plan: dict) -> str:
    """A compact plan name, e.g. "tp4 pp4 cp2 dp128 zero1 none mb1 v8" (ep and v only when > 1)."""
    return (f"tp{plan['tp']} pp{plan['pp']} cp{plan['cp']} dp{plan['dp']}"
            + (f" ep{plan['ep']}" if plan.get("ep", 1) > 1 else "")
            + f" zero{plan['zero']} {plan['recompute']} mb{plan['microbatch']}"
            + (f" v{plan['interleave']}" if plan.get("interleave", 1) > 1 else ""))


# ---------------------------------------------------------------- Compare


def _front_trace(front: pd.DataFrame, x: str, y: str, name: str = "Pareto front") -> go.Scatter:
    return go.Scatter(x=front[x], y=front[y], mode="lines+markers", line_shape="hv", name=name,
                      line=dict(color=FRONT_COLOR, dash="dot"), marker=dict(color=FRONT_COLOR, size=5),
                      hoverinfo="skip")


SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "hexagon", "cross")


AXES = {"days": "Wall clock (days)", "cost_usd": "Cost (USD)", "energy_mwh": "Energy (MWh)",
        "co2e_t": "Emissions (tCO2e)"}
VIEWS = {"cost vs time": ("days", "cost_usd"), "emissions vs cost": ("cost_usd", "co2e_t"),
         "energy vs time": ("days", "energy_mwh")}


def tradeoff_scatter(df: pd.DataFrame, x: str = "days", y: str = "cost_usd") -> go.Figure:
    """`y` vs `x` (log axes, both lower-is-better) with their Pareto front; colour = accelerator, symbol = region.

    `df`: accelerator, region, devices and the AXES columns (failed rows: NaN). Built with
    graph_objects, not express: several times faster for a page that reruns on every input.
    """
    ok = df.dropna(subset=[x, y])
    colors = accelerator_colors(df["accelerator"])
    symbols = {r: SYMBOLS[i % len(SYMBOLS)] for i, r in enumerate(dict.fromkeys(df["region"]))}
    x_title, y_title = AXES[x], AXES[y]
    fig = go.Figure()
    for acc, g in ok.groupby("accelerator", sort=True):
        fig.add_trace(go.Scatter(
            x=g[x], y=g[y], mode="markers", name=acc, legendgroup=acc,
            marker=dict(color=colors[acc], symbol=[symbols[r] for r in g["region"]], size=10),
            customdata=g[["region", "devices", "days", "cost_usd", "energy_mwh", "co2e_t"]].to_numpy(dtype=object),
            hovertemplate=(f"<b>{acc}</b><br>%{{customdata[0]}}, %{{customdata[1]:,}} devices<br>"
                           "%{customdata[2]:,.1f} days, $%{customdata[3]:,.0f}<br>"
                           "%{customdata[4]:,.0f} MWh, %{customdata[5]:,.0f} tCO2e<extra></extra>")))
    for region, symbol in symbols.items():  # legend entries for the symbols
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=region, legendgroup="regions",
                                 marker=dict(color="#888888", symbol=symbol, size=10)))
    if len(ok):
        fig.add_trace(_front_trace(pareto_front(ok, x, y), x, y))
    ticks = lambda col: {"type": "log", "dtick": "D2", "tickformat": "$~s" if col == "cost_usd" else "~s",
                         "automargin": True}
    fig.update_layout(title=f"{y_title.split(' (')[0]} vs {x_title.split(' (')[0].lower()} (lower left is better)",
                      xaxis=dict(title=x_title, **ticks(x)), yaxis=dict(title=y_title, **ticks(y)), **_LAYOUT)
    return fig


def cost_time_scatter(df: pd.DataFrame) -> go.Figure:
    """Cost vs wall-clock days with the Pareto front (see `tradeoff_scatter`)."""
    return tradeoff_scatter(df, "days", "cost_usd")


def co2_by_region(df: pd.DataFrame) -> go.Figure:
    """Operational tCO2e by region (then device count), one bar colour per accelerator."""
    ok = df.dropna(subset=["co2e_t"])
    colors = accelerator_colors(df["accelerator"])
    regions = {r: i for i, r in enumerate(dict.fromkeys(df["region"]))}
    fig = go.Figure()
    for acc, g in ok.groupby("accelerator", sort=True):
        g = g.sort_values(["region", "devices"], key=lambda c: c.map(regions) if c.name == "region" else c)
        fig.add_trace(go.Bar(x=[g["region"], g["devices"].map("{:,} dev".format)], y=g["co2e_t"], name=acc,
                             marker_color=colors[acc], hovertemplate=f"{acc}<br>%{{x}}: %{{y:,.0f}} tCO2e<extra></extra>"))
    fig.update_layout(title="Operational emissions by region", barmode="group", yaxis_title="Emissions (tCO2e)",
                      xaxis={"automargin": True}, **_LAYOUT)  # rotated region labels get the room they need
    return fig


# ---------------------------------------------------------------- Parallelism explorer


def plans_frame(res, idx=None) -> pd.DataFrame:
    """One row per plan of a `simulator.execution.search.SearchResult` (all, or the indices `idx`)."""
    idx = np.arange(len(res)) if idx is None else np.asarray(idx, dtype=np.int64)
    g = res.grid
    rc = np.array(RECOMPUTE)[g.rc[idx]]
    return pd.DataFrame({
        "plan_index": idx, "tp": g.tp[idx], "pp": g.pp[idx], "cp": g.cp[idx], "ep": g.ep[idx], "dp": g.dp[idx],
        "microbatch": g.mb[idx], "zero": g.zero[idx], "recompute": rc, "interleave": g.v[idx],
        "step_time_s": res.step_time_s[idx], "memory_gb": res.memory.total_gb[idx],
        "energy_mj": res.energy_per_step_j[idx] / 1e6, "cost_usd": res.cost_per_step_usd[idx],
    })


_PER_STEP = {"cost": ("cost_usd", "Cost per step (USD)"), "energy": ("energy_mj", "Energy per step (MJ)")}
STEP_AXIS = {**LOG_TICKS, "title": "Step time (s)", "tickformat": "~g"}  # 0.5, 2, 10, 200 s


def plan_scatter(df: pd.DataFrame, color: str = "cost", capacity_gb: float | None = None,
                 highlight: pd.DataFrame | None = None) -> go.Figure:
    """Step time vs memory per device for every plan, coloured by cost or energy per step.

    `highlight` (e.g. the top plans) is drawn on top as open circles.
    """
    column, title = _PER_STEP[color]
    fig = px.scatter(df, x="step_time_s", y="memory_gb", color=column, color_continuous_scale="Viridis",
                     log_x=True, hover_data=["tp", "pp", "cp", "dp", "zero", "recompute", "microbatch", "interleave"],
                     labels={"step_time_s": "Step time (s)", "memory_gb": "Memory per device (GB)", column: title})
    fig.update_traces(name="feasible plans", showlegend=True, marker=dict(size=5, opacity=0.7))
    if highlight is not None and len(highlight):
        fig.add_trace(go.Scatter(x=highlight["step_time_s"], y=highlight["memory_gb"], mode="markers",
                                 name="top plans", marker=dict(symbol="circle-open", size=12, color="#cc3311",
                                                               line=dict(width=2)), hoverinfo="skip"))
    if capacity_gb:
        fig.add_hline(y=capacity_gb, line_dash="dash", line_color="#cc3311",
                      annotation_text=f"{capacity_gb:.1f} GB capacity")
    fig.update_layout(title=f"Step time vs memory, coloured by {color} per step", xaxis=STEP_AXIS, **_LAYOUT)
    return fig


def pareto_chart(df: pd.DataFrame, front: pd.DataFrame) -> go.Figure:
    """Energy per step vs step time for every plan, with the time-energy Pareto front."""
    fig = go.Figure(go.Scattergl(x=df["step_time_s"], y=df["energy_mj"], mode="markers", name="feasible plans",
                                 marker=dict(size=4, color="#88ccee", opacity=0.6),
                                 hovertemplate="%{x:.2f} s<br>%{y:,.1f} MJ<extra></extra>"))
    fig.add_trace(_front_trace(front.sort_values("step_time_s"), "step_time_s", "energy_mj"))
    fig.update_layout(title="Time-energy Pareto front", xaxis=STEP_AXIS, yaxis_title="Energy per step (MJ)",
                      **_LAYOUT)
    return fig


def rejected_bar(rejected: dict[str, int]) -> go.Figure:
    """Why candidate plans were rejected: one horizontal bar per reason (a plan may count twice)."""
    items = sorted(rejected.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[c for _, c in items], y=[r for r, _ in items], orientation="h", name="rejected",
                           marker_color=_SAFE[1], hovertemplate="%{y}: %{x:,}<extra></extra>"))
    fig.update_layout(title="Rejected candidate plans", xaxis_title="Plans", height=80 + 40 * len(items),
                      yaxis=dict(automargin=True),
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig
