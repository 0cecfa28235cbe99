"""Pure Plotly builders for the Post-training (RL) page (no Streamlit here; unit-testable with `fig.to_dict()`)."""

from __future__ import annotations

import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.formats import label

_SAFE = px.colors.qualitative.Safe
# The phases of an [rlhf] estimate's breakdown (simulator/workloads/rlhf.py), in the order they run, then the
# failure overhead; host power, facility overhead, electricity and embodied CO2e are not phases.
PHASES = ("rollout_generation", "scoring_forward", "policy_update", "critic_update", "checkpoint_and_failures")
# (panel title, breakdown column, scale from the column to the panel's unit, hover format)
MEASURES = (("time (hours)", "seconds", 1 / 3600, "%{x:,.2f} h"),
            ("device energy (kWh)", "energy_kwh", 1.0, "%{x:,.1f} kWh"),
            ("device rental (USD)", "cost_usd", 1.0, "$%{x:,.2f}"))


def phases(breakdown: list[dict], title: str = "Where the run goes: time, energy and cost by phase") -> go.Figure:
    """Time, device energy and rental cost of each phase of an RLHF run: three panels side by side,
    one horizontal-bar trace per measure, one bar per phase (PHASES in human names, top to bottom; a phase the
    algorithm has not, e.g. critic_update outside ppo, is a zero-length bar).

    `breakdown`: `Estimate.breakdown` rows (component, seconds, energy_kwh, cost_usd, ...)."""
    rows = {r["component"]: r for r in breakdown}
    missing = [p for p in PHASES if p not in rows]
    if missing:
        raise ValueError(f"not an RLHF breakdown: no {', '.join(missing)} rows")
    fig = make_subplots(rows=1, cols=len(MEASURES), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[m[0] for m in MEASURES])
    for col, (name, column, scale, fmt) in enumerate(MEASURES, start=1):
        # a None cost (no price) is no bar: plotly leaves the gap
        fig.add_trace(go.Bar(x=[None if rows[p][column] is None else rows[p][column] * scale for p in PHASES],
                             y=[label(p) for p in PHASES], orientation="h",
                             name=name, marker_color=_SAFE[col - 1], hovertemplate=f"%{{y}}: {fmt}<extra></extra>"),
                      row=1, col=col)
    fig.update_yaxes(autorange="reversed")  # the first phase on top
    fig.update_layout(title={"text": title, "x": 0, "font": {"size": 14}}, height=320, showlegend=False,
                      margin={"l": 10, "r": 10, "t": 70, "b": 10})
    return fig
