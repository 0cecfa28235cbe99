"""Pure Plotly builders (and small pure table helpers) for the model pages: scaling laws,
calibration, validation and catalog. No Streamlit here; unit-testable with `fig.to_dict()`.

Inputs are tidy pandas DataFrames (one row per point) computed by the pages from the library;
nothing here re-implements a formula of the library.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.formats import label, log_ticks

_SAFE = px.colors.qualitative.Safe
FIT_COLORS = {"hoffmann2022": _SAFE[0], "epoch2024": _SAFE[1], "kaplan2020": _SAFE[2]}
FIT_LABELS = {"hoffmann2022": "Hoffmann 2022", "epoch2024": "Epoch 2024", "kaplan2020": "Kaplan 2020"}
SCENARIO_COLOR = "#cc3311"
_MARGIN = dict(l=10, r=10, t=40, b=10)


def fit_label(name: str) -> str:
    return FIT_LABELS.get(name, name)


def _identity_line(fig: go.Figure, values: np.ndarray, **subplot: Any) -> None:
    """A dashed y = x line across the range of `values` (positive, for log axes)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return
    lo, hi = float(v.min()) / 1.5, float(v.max()) * 1.5
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x (perfect)",
                             line=dict(dash="dash", color="#888888"), hoverinfo="skip",
                             showlegend=not subplot or subplot.get("col", 1) == 1), **subplot)


# --- scaling laws ---------------------------------------------------------------------------
# A log axis with a tick at each power of ten, written 10²¹ (not 1e+21, and no 2 and 5 between them)
POWERS_OF_TEN = {"type": "log", "dtick": 1, "exponentformat": "power", "showexponent": "all"}

def loss_vs_compute(curves: pd.DataFrame, scenario: pd.DataFrame | None = None,
                    budget_flops: float | None = None) -> go.Figure:
    """Compute-optimal loss L*(C) per fit (columns fit, flops, loss), log x.

    `scenario` (fit, flops, loss): the planner's run under each fit, as markers; `budget_flops`:
    a vertical line at the budget of the compute widget. Losses are in each paper's own units.
    """
    fig = go.Figure()
    for fit, g in curves.groupby("fit", sort=False):
        fig.add_trace(go.Scatter(x=g["flops"], y=g["loss"], mode="lines", name=fit_label(fit),
                                 line=dict(color=FIT_COLORS.get(fit)),
                                 hovertemplate="C = %{x:.3g} FLOPs<br>L* = %{y:.3f}<extra>" + fit_label(fit) + "</extra>"))
    if scenario is not None and len(scenario):
        for _, r in scenario.iterrows():
            fig.add_trace(go.Scatter(x=[r["flops"]], y=[r["loss"]], mode="markers", name=f"your run ({fit_label(r['fit'])})",
                                     marker=dict(symbol="star", size=13, color=FIT_COLORS.get(r["fit"]),
                                                 line=dict(color=SCENARIO_COLOR, width=1.5)),
                                     hovertemplate="your run: C = %{x:.3g}<br>L = %{y:.3f}<extra>" + fit_label(r["fit"]) + "</extra>"))
    if budget_flops:
        fig.add_vline(x=budget_flops, line_dash="dot", line_color="#555555", annotation_text="budget")
    fig.update_layout(title=dict(text="Compute-optimal loss vs training compute (each fit in its own paper's units: "
                                      "not comparable across fits)", x=0), margin=_MARGIN, height=420,
                      legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(**POWERS_OF_TEN, title_text="Training compute C = 6 N D (FLOPs)")
    fig.update_yaxes(title_text="Loss L* (nats/token)")
    return fig


def compute_optimal_frontier(frontier: pd.DataFrame, scenario: dict[str, float] | None = None,
                             budget_flops: float | None = None) -> go.Figure:
    """N*(C) and D*(C) per fit, log-log, side by side (columns fit, flops, n_params, n_tokens).

    `scenario`: {"flops", "n_params", "n_tokens"} of the planner's run, as a star on both panels.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Parameters N*", "Training tokens D*"),
                        horizontal_spacing=0.1)
    for col, what in ((1, "n_params"), (2, "n_tokens")):
        for fit, g in frontier.groupby("fit", sort=False):
            fig.add_trace(go.Scatter(x=g["flops"], y=g[what], mode="lines", name=fit_label(fit), legendgroup=fit,
                                     showlegend=col == 1, line=dict(color=FIT_COLORS.get(fit)),
                                     hovertemplate="C = %{x:.3g}<br>%{y:.3g}<extra>" + fit_label(fit) + "</extra>"),
                          row=1, col=col)
        if scenario:
            fig.add_trace(go.Scatter(x=[scenario["flops"]], y=[scenario[what]], mode="markers", name="your run",
                                     legendgroup="scenario", showlegend=col == 1,
                                     marker=dict(symbol="star", size=14, color=SCENARIO_COLOR),
                                     hovertemplate="your run: C = %{x:.3g}<br>%{y:.3g}<extra></extra>"),
                          row=1, col=col)
        if budget_flops:
            fig.add_vline(x=budget_flops, line_dash="dot", line_color="#555555", row=1, col=col)
    fig.update_xaxes(**POWERS_OF_TEN, title_text="Training compute (FLOPs)")
    fig.update_yaxes(**POWERS_OF_TEN)
    fig.update_yaxes(title_text="parameters", row=1, col=1)
    fig.update_yaxes(title_text="tokens", row=1, col=2)
    fig.update_layout(title=dict(text="Compute-optimal frontier", x=0), margin=_MARGIN, height=420,
                      legend=dict(orientation="h", y=-0.25))
    return fig


# --- calibration ------------------------------------------------------------------------------
def step_time_parity(points: pd.DataFrame) -> go.Figure:
    """Measured vs predicted step time (columns name, measured_s, predicted_s, kind), log-log, y = x.

    `kind` separates the in-sample fit from the held-out (leave-one-config-out) predictions.
    """
    fig = go.Figure()
    symbols = {"fit (in-sample)": "circle", "held out (LOCO)": "x"}
    for i, (kind, g) in enumerate(points.groupby("kind", sort=False)):
        fig.add_trace(go.Scatter(x=g["measured_s"], y=g["predicted_s"], mode="markers", name=kind,
                                 text=g["name"], marker=dict(size=10, symbol=symbols.get(kind, "circle"), color=_SAFE[i]),
                                 hovertemplate="%{text}<br>measured %{x:.4g} s<br>predicted %{y:.4g} s<extra>" + kind + "</extra>"))
    values = np.concatenate([points["measured_s"].to_numpy(float), points["predicted_s"].to_numpy(float)])
    _identity_line(fig, values)
    fig.update_xaxes(**log_ticks(values), title_text="Measured step time (s)")
    fig.update_yaxes(**log_ticks(values), title_text="Predicted step time (s)")
    fig.update_layout(title=dict(text="Step time: measured vs the fitted model", x=0), margin=_MARGIN, height=420,
                      legend=dict(orientation="h", y=-0.2))
    return fig


def mfu_bars(rows: pd.DataFrame) -> go.Figure:
    """Measured MFU per configuration (columns name, mfu as a fraction)."""
    fig = go.Figure(go.Bar(x=rows["name"], y=rows["mfu"] * 100, marker_color=_SAFE[0],
                           hovertemplate="%{x}<br>MFU %{y:.1f}%<extra></extra>"))
    fig.update_layout(title=dict(text="Model FLOPs utilisation per configuration", x=0), margin=_MARGIN, height=380,
                      xaxis_title="configuration", yaxis_title="MFU (%)")
    return fig


def power_vs_throughput(points: pd.DataFrame, idle_w: float | None = None,
                        dynamic_w_per_tflops: float | None = None) -> go.Figure:
    """Mean power vs achieved hardware TFLOP/s (columns name, tflops, power_w) and the fitted line
    P = idle_w + dynamic_w_per_tflops x TFLOP/s when given."""
    fig = go.Figure(go.Scatter(x=points["tflops"], y=points["power_w"], mode="markers", name="measured",
                               text=points["name"], marker=dict(size=10, color=_SAFE[0]),
                               hovertemplate="%{text}<br>%{x:.3g} TFLOP/s<br>%{y:.1f} W<extra></extra>"))
    if idle_w is not None and dynamic_w_per_tflops is not None and len(points):
        x = np.linspace(0.0, float(points["tflops"].max()) * 1.1, 50)
        fig.add_trace(go.Scatter(x=x, y=idle_w + dynamic_w_per_tflops * x, mode="lines", name="fit",
                                 line=dict(color=SCENARIO_COLOR),
                                 hovertemplate=f"P = {idle_w:.1f} W + {dynamic_w_per_tflops:.3g} W per TFLOP/s<extra></extra>"))
    fig.update_layout(title=dict(text="Power vs achieved throughput", x=0), margin=_MARGIN, height=380,
                      xaxis_title="Achieved hardware throughput (TFLOP/s)", yaxis_title="Mean power (W)",
                      legend=dict(orientation="h", y=-0.2))
    return fig


# --- validation -------------------------------------------------------------------------------
def validation_parity(checks: pd.DataFrame, quantity: str) -> go.Figure:
    """Predicted vs reported for one quantity (columns run, quantity, method, predicted, reported,
    error_pct), one colour per method, log-log with the y = x line."""
    rows = checks[checks["quantity"] == quantity]
    fig = go.Figure()
    for i, (method, g) in enumerate(rows.groupby("method", sort=False)):
        fig.add_trace(go.Scatter(x=g["reported"], y=g["predicted"], mode="markers", name=method, text=g["run"],
                                 customdata=g["error_pct"], marker=dict(size=10, color=_SAFE[i % len(_SAFE)]),
                                 hovertemplate="%{text}<br>reported %{x:.4g}<br>predicted %{y:.4g}"
                                               "<br>error %{customdata:+.1f}%<extra>" + method + "</extra>"))
    values = np.concatenate([rows["reported"].to_numpy(float), rows["predicted"].to_numpy(float)])
    _identity_line(fig, values)
    name = label(quantity)  # dashboard.formats: one mapping for every page
    fig.update_xaxes(**log_ticks(values), title_text=f"Reported {name}")
    fig.update_yaxes(**log_ticks(values), title_text=f"Predicted {name}")
    fig.update_layout(title=dict(text=f"{name}: predicted vs published", x=0), margin=_MARGIN, height=400,
                      legend=dict(orientation="h", y=-0.25))
    return fig


# --- catalog ------------------------------------------------------------------------------------
def accelerator_scatter(accs: pd.DataFrame) -> go.Figure:
    """Dense bf16 peak vs memory bandwidth per accelerator (columns id, vendor, bf16_tflops,
    hbm_tb_per_s, hbm_gb), marker size by HBM capacity."""
    fig = px.scatter(accs, x="hbm_tb_per_s", y="bf16_tflops", color="vendor", size="hbm_gb", hover_name="id",
                     color_discrete_sequence=_SAFE, size_max=28,
                     labels={"hbm_tb_per_s": "Memory bandwidth (TB/s)", "bf16_tflops": "Dense bf16 peak (TFLOP/s)",
                             "hbm_gb": "HBM (GB)"})
    fig.update_layout(title=dict(text="Accelerators: compute vs memory bandwidth", x=0), margin=_MARGIN, height=420)
    return fig


def sourced_rows(entry: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Every number of a catalog entry (`Accelerator/Region.model_dump()`) as rows: field, value,
    source, note, as_of and an `unverified` marker. Other fields (id, name, lists) are skipped."""
    rows: list[dict[str, Any]] = []
    for key, val in entry.items():
        path = f"{prefix}{key}"
        if isinstance(val, dict) and "value" in val and "source" in val:
            rows.append({"field": path, "value": val["value"], "source": val["source"],
                         "status": "⚠ unverified" if not val.get("verified", True) else "verified",
                         "note": val.get("note") or "", "as_of": val.get("as_of") or ""})
        elif isinstance(val, dict):
            rows += sourced_rows(val, prefix=f"{path}.")
    return rows
