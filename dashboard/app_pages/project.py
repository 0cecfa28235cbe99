"""Project: a whole project's cost, stage by stage (ablations, pretraining, context extension,
post-training, evaluation, serving), as waterfalls ending in the total, and a table of stages.

Shows the shipped example (examples/project-llama3-70b.toml) unless a project TOML is uploaded.
An upload comes alone, so its stages must be self-contained (scenarios inline, no file paths).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import headline
from dashboard.data import cached_estimate, plain
from dashboard.formats import NA, money, money_column
from hardware_catalog.errors import TrainsimError
from simulator.workloads.project import (
    estimate_project,
    load_project,
    project_from_text,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "project-llama3-70b.toml"
METRICS = {  # radio label -> (totals key, unit)
    "Energy (MWh, facility)": ("energy_mwh", "MWh"),
    "CO2e (t, operational)": ("co2e_t", "tCO2e"),
}
COLUMNS = {"name": "stage", "kind": "kind", "repeat": "repeat", "model": "model", "accelerator": "accelerator",
           "devices": "devices", "region": "region", "wall_clock_days": "days", "device_hours": "device-hours",
           "cost_usd": "cost (USD)", "energy_mwh": "energy (MWh)", "co2e_t": "CO2e (t)",
           "embodied_co2e_t": "embodied CO2e (t)", "water_m3": "water (m³)", "train_flops": "training FLOPs"}


def _short(y: float, prefix: str = "") -> str:
    """A bar label: 15,958,586 -> "$15.96 M" (costs as formats.money writes them), 6,490 -> "6.5 k", 6.27 -> "6.3"."""
    if prefix == "$":
        return money(y)
    if abs(y) >= 1e6:
        return f"{prefix}{y / 1e6:,.2f} M"
    if abs(y) >= 1e3:
        return f"{prefix}{y / 1e3:,.1f} k"
    return f"{prefix}{y:,.1f}"


def waterfall(labels: list[str], values: list[float], title: str, unit: str, prefix: str = "") -> go.Figure:
    """A waterfall of `values` by stage ending in a total bar (its y is the sum, as plotly draws it)."""
    total = sum(values)
    ys = list(values) + [total]
    fig = go.Figure(go.Waterfall(
        x=list(labels) + ["Total"], y=ys, measure=["relative"] * len(values) + ["total"],
        text=[_short(y, prefix) for y in ys], textposition="outside",
        connector={"line": {"color": "#888888", "dash": "dot"}},
        increasing={"marker": {"color": "#88CCEE"}}, totals={"marker": {"color": "#332288"}},
        hovertemplate=f"%{{x}}: {prefix}%{{y:,.0f}} {unit}<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), yaxis_title=unit, showlegend=False,
                      height=420, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _load():
    """(project, source label) from the upload or the shipped example; None after showing an error."""
    up = st.file_uploader("Load a project TOML (self-contained: every stage's scenario inline)", type=["toml"],
                          key="pj_upload")
    try:
        if up is None:
            return load_project(EXAMPLE), f"the shipped example `examples/{EXAMPLE.name}`"
        try:
            text = up.getvalue().decode("utf-8")
        except UnicodeDecodeError as exc:
            st.error(f"{up.name}: not UTF-8 text ({exc.reason})")
            return None
        return project_from_text(text, up.name, base_dir=None), f"your upload `{up.name}`"
    except TrainsimError as exc:
        st.error(plain(str(exc)), icon=":material/warning:")
        return None


def main() -> None:
    st.title("Whole-project cost")
    st.caption("A project is a list of stages, each a scenario (optionally repeated); every stage is estimated "
               "and the figures summed. Stages run one after another in the wall-clock total. A serving stage "
               "with a [serving] section is modelled (see the Serving page); evaluation, and serving without "
               "one, are not: they take given device-hours and train nothing.")
    loaded = _load()
    if loaded is None:
        return
    project, source = loaded
    try:
        est = estimate_project(project, estimator=cached_estimate)
    except TrainsimError as exc:
        st.error(plain(str(exc)), icon=":material/warning:")
        return
    t = est.totals
    st.markdown(f"**{plain(est.name)}**: {len(est.stages)} stages, from {source}")
    for s in est.stages:  # the library's plausibility warnings, by stage
        for text in s.estimate.warnings:
            st.warning(f"{plain(s.name)}: {headline.note(text)}", icon=":material/warning:")
    m = st.columns(5)
    m[0].metric("Total cost", money(t["cost_usd"]))
    m[1].metric("Wall clock", f"{t['wall_clock_days']:,.1f} days", help="stages and repeats one after another")
    m[2].metric("Device-hours", f"{t['device_hours'] / 1e6:,.3f} M")
    m[3].metric("Energy", f"{t['energy_mwh']:,.0f} MWh", help=f"IT {t['energy_it_mwh']:,.0f} MWh")
    m[4].metric("Emissions", f"{t['co2e_t']:,.0f} tCO2e", help=f"+ {t['embodied_co2e_t']:,.1f} t embodied")

    labels = [s.name for s in est.stages]
    st.plotly_chart(waterfall(labels, [s.values["cost_usd"] for s in est.stages], "Cost by stage (USD)", "USD", "$"),
                    key="pj_cost_waterfall")
    choice = st.radio("Second waterfall", list(METRICS), horizontal=True, key="pj_metric")
    key, unit = METRICS[choice]
    st.plotly_chart(waterfall(labels, [s.values[key] for s in est.stages], f"{choice} by stage", unit),
                    key="pj_metric_waterfall")

    st.subheader("Stages")
    blank = {"kind": "", "model": "", "accelerator": "", "region": "", "repeat": None, "devices": None}
    frame = pd.DataFrame(est.rows() + [{**blank, "name": "total", **t}])
    number = st.column_config.NumberColumn
    scale, money_fmt = money_column(frame["cost_usd"])
    frame["cost_usd"] = frame["cost_usd"] / scale
    st.dataframe(frame[list(COLUMNS)].rename(columns=COLUMNS), hide_index=True, key="pj_table", placeholder=NA,
                 column_config={
                     "days": number(format="%.1f"), "device-hours": number(format="localized"),
                     "cost (USD)": number(format=money_fmt), "energy (MWh)": number(format="%.1f"),
                     "CO2e (t)": number(format="%.1f"), "embodied CO2e (t)": number(format="%.2f"),
                     "water (m³)": number(format="%.0f"), "training FLOPs": number(format="%.3e")})
    with st.expander("Notes and assumptions by stage"):
        for s in est.stages:
            desc = f" ({plain(s.description)})" if s.description else ""
            st.markdown(f"**{plain(s.name)}**{desc}: {s.repeat} x {s.estimate.values['model']} on "
                        f"{s.estimate.values['devices']:,} x {s.estimate.values['accelerator']}; source: "
                        f"`{Path(s.source).name if s.source != 'inline' else 'inline'}`")
            for note in s.notes:
                st.caption(plain(note))
    d = st.columns(3)
    d[0].download_button("Project estimate JSON", est.to_json(), file_name="project-estimate.json",
                         mime="application/json", on_click="ignore", key="pj_dl_json")
    d[1].download_button("Stages CSV", pd.DataFrame(est.rows() + [est.total_row()]).to_csv(index=False),
                         file_name="project-stages.csv", mime="text/csv", on_click="ignore", key="pj_dl_csv")
    d[2].download_button("Self-contained project TOML", project.to_toml(), file_name="project.toml",
                         mime="application/toml", on_click="ignore", key="pj_dl_toml",
                         help="every stage's scenario inline: edit it and upload it here")


main()
