"""Input widgets shared by the pages: bound to the URL (the page address is the share link)."""

from __future__ import annotations

import math

import streamlit as st


def drop_non_finite_query_params() -> list[str]:
    """Remove link parameters that parse as numbers but are not finite (`?seq=1e999`, `?rl_prompts=inf`,
    `nan`): Streamlit's number inputs cannot take them (it raised OverflowError while seeding the
    widget from the URL). Returns "name=value" of each one removed, for a warning."""
    dropped = []
    for name in list(st.query_params):
        value = st.query_params[name]
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            continue  # not a number: the widget shows it or resets it
        if not math.isfinite(number):
            dropped.append(f"{name}={value[:40]}")
            del st.query_params[name]
    return dropped


def bound(kind: str, label: str, key: str, defaults: dict, **kw):
    """A keyed `st.<kind>` widget bound to the URL; its default (left out of the URL) is defaults[key]."""
    if "options" in kw:
        kw["index"] = kw["options"].index(defaults[key]) if defaults[key] in kw["options"] else 0
    else:
        kw["value"] = defaults[key]
    return getattr(st, kind)(label, key=key, bind="query-params", **kw)


def region(key: str, defaults: dict, cat) -> str:
    """A grid-region picker with the region's name and carbon intensity beneath it."""
    rid = bound("selectbox", "Region", key, defaults, options=sorted(cat.regions))
    r = cat.regions[rid]
    st.caption(f"{r.name}: {r.carbon_intensity_kg_per_kwh.value:g} kgCO2e/kWh")
    return rid


def route_error(msg: str, slots: dict, top) -> None:
    """Show the error beside the controls of the field it names first ("cluster.devices: ..."), else at
    `top`; `slots` maps field prefixes to places, the more specific first ("serving.tp" before "serving.")."""
    from dashboard.data import plain

    hits = [(msg.find(prefix), slot) for prefix, slot in slots.items() if prefix in msg]
    slot = min(hits, key=lambda h: h[0])[1] if hits else top
    slot.error(plain(msg), icon="⚠️")


BREAKDOWN = {"component": "component", "hours": "hours", "energy_kwh": "energy (kWh)",
             "cost_usd": "cost (USD)", "co2e_kg": "CO2e (kg)"}


def breakdown_table(breakdown: list[dict], key: str, decimals: int = 1) -> None:
    """An estimate's breakdown (component, hours, kWh, USD, kg CO2e) as a table."""
    import pandas as pd

    rows = pd.DataFrame(breakdown)
    rows["hours"] = rows["seconds"] / 3600
    number, fmt = st.column_config.NumberColumn, f"%.{decimals}f"
    st.dataframe(rows[list(BREAKDOWN)].rename(columns=BREAKDOWN), hide_index=True, key=key,
                 column_config={"hours": number(format=fmt), "energy (kWh)": number(format="%.1f"),
                                "cost (USD)": number(format="dollar"), "CO2e (kg)": number(format=fmt)})


def downloads(scenario, est, stem: str, key: str) -> None:
    """Scenario TOML and estimate JSON downloads, and the share-link hint."""
    d = st.columns(2)
    d[0].download_button("Scenario TOML", scenario.to_toml(), file_name=f"{stem}.toml", mime="application/toml",
                         on_click="ignore", key=f"{key}_dl_toml")
    d[1].download_button("Estimate JSON", est.to_json(), file_name=f"{stem}-estimate.json", mime="application/json",
                         on_click="ignore", key=f"{key}_dl_json")
    st.caption("Share this scenario: copy the page address; every input above is in it.")


def page_catalog(top):
    """This session's catalog (shipped + uploads); a broken upload is said at `top` and the shipped one used."""
    from dashboard.data import packaged_catalog, plain, session_catalog
    from hardware_catalog.errors import TrainsimError

    try:
        return session_catalog()
    except TrainsimError as exc:
        top.error(plain(f"your uploaded catalog entries are invalid: {exc}"))
        return packaged_catalog()


def duration(days: float) -> str:
    """Wall clock as shown: hours under two days (RL and fine-tuning runs are often short), else days."""
    return f"{days * 24:,.2f} hours" if days < 2 else f"{days:,.2f} days"
