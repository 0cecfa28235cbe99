"""Pure Plotly builders for the Serving page (no Streamlit here; unit-testable with `fig.to_dict()`)."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

_SAFE = px.colors.qualitative.Safe
CHOSEN_COLOR = "#CC3311"


def throughput_latency(batch, tokens_per_s, tokens_per_s_per_user, chosen_batch: int,
                       min_tokens_per_s_per_user: float = 0.0, title: str = "One replica: throughput vs speed per user"
                       ) -> go.Figure:
    """The throughput-latency trade-off of one replica over batch sizes, the chosen batch marked.

    x: output tokens/s each user sees (1 / decode cycle), y: output tokens/s of the replica; one
    point per batch size in `batch` (arrays of equal length). The per-user floor, when > 0, is a
    dashed vertical line: batches left of it are too slow per user.
    """
    batch, thr, user = (np.asarray(a, dtype=float) for a in (batch, tokens_per_s, tokens_per_s_per_user))
    hit = np.flatnonzero(batch == chosen_batch)
    if not hit.size:
        raise ValueError(f"chosen batch {chosen_batch} is not among the batch sizes plotted")
    i = int(hit[0])
    hover = "batch %{customdata:,.0f}<br>%{x:,.1f} tokens/s per user<br>%{y:,.0f} tokens/s per replica<extra></extra>"
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=user, y=thr, customdata=batch, mode="lines", name="batch sizes",
                             line=dict(color=_SAFE[0]), hovertemplate=hover))
    fig.add_trace(go.Scatter(x=[user[i]], y=[thr[i]], customdata=[batch[i]], mode="markers+text",
                             name=f"chosen batch ({chosen_batch})", text=[f"batch {chosen_batch}"],
                             textposition="middle right", marker={"color": CHOSEN_COLOR, "size": 12, "symbol": "star"},
                             hovertemplate=hover))
    if min_tokens_per_s_per_user > 0:  # its label at the foot of the line: the chosen batch's sits at the top
        fig.add_vline(x=min_tokens_per_s_per_user, line_dash="dash", line_color="#444444",
                      annotation_text=f"floor {min_tokens_per_s_per_user:g} tokens/s per user",
                      annotation_position="bottom right")
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=380,
                      xaxis_title="output tokens/s per user", yaxis_title="output tokens/s per replica",
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    return fig
