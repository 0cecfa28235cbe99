"""Input widgets shared by the pages: bound to the URL (the page address is the share link)."""

from __future__ import annotations

import streamlit as st


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
