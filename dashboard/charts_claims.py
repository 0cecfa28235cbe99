"""Pure Plotly builders of the Claims page (no Streamlit here; unit-testable with `fig.to_dict()`)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

_SAFE = px.colors.qualitative.Safe
CLAIM_COLOR = "#cc3311"
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _date(year: float) -> datetime:
    """A decimal year as a date (for the x axis)."""
    whole = int(np.floor(year))
    start = datetime(whole, 1, 1)
    return start + (datetime(whole + 1, 1, 1) - start) * (year - whole)


def trend_chart(points: list[dict], fit, claimed_months: float | None = None) -> go.Figure:
    """Training FLOP of frontier models over time (log axis), published and estimated figures apart, with the
    fitted trend (`simulator.claims.trends.TrendFit`) and, dashed, a claimed doubling time through the data's
    centre."""
    fig = go.Figure()
    for estimated, name, symbol in ((False, "published", "circle"), (True, "estimate (Epoch AI)", "diamond-open")):
        rows = [p for p in points if bool(p["estimated"]) is estimated]
        fig.add_trace(go.Scatter(x=[p["date"] for p in rows], y=[p["training_flop"] for p in rows], mode="markers+text",
                                 name=name, text=[p["model"] for p in rows], textposition="top left",
                                 marker={"size": 10, "symbol": symbol, "color": _SAFE[0 if not estimated else 1]},
                                 hovertemplate="%{text}: %{y:.3g} FLOP<br>%{x|%Y-%m-%d}<extra></extra>"))
    years = np.array([p["year"] for p in points])
    grid = np.linspace(years.min() - 0.25, years.max() + 0.25, 50)
    fig.add_trace(go.Scatter(x=[_date(y) for y in grid], y=fit.predict(grid), mode="lines", line={"color": "#444444"},
                             name=f"fit: doubling {fit.doubling_months:.1f} months "
                                  f"(90% CI {fit.doubling_low:.1f}-{fit.doubling_high:.1f})", hoverinfo="skip"))
    if claimed_months:
        centre_x, centre_y = years.mean(), np.log10([p["training_flop"] for p in points]).mean()
        slope = 12 * np.log10(2) / claimed_months
        fig.add_trace(go.Scatter(x=[_date(y) for y in grid], y=10 ** (centre_y + slope * (grid - centre_x)),
                                 mode="lines", line={"color": CLAIM_COLOR, "dash": "dash"},
                                 name=f"claim: doubling every {claimed_months:g} months", hoverinfo="skip"))
    fig.update_layout(title={"text": "Training compute of frontier models", "x": 0, "font": {"size": 14}}, height=420,
                      yaxis={"type": "log", "title": "training FLOP"}, xaxis_title="publication date",
                      legend={"orientation": "h", "y": -0.2}, margin=_MARGIN)
    return fig
