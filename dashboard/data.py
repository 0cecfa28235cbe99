"""Cached loaders for the dashboard: the catalog (shared, immutable) and estimates (by scenario).

Everything here calls the library; nothing re-implements it. User-uploaded catalog entries live in
`st.session_state` (per browser session), never in a process-wide cache.
"""

from __future__ import annotations

import streamlit as st

from hardware_catalog import Catalog, load_catalog, parse_toml_text
from simulator import Estimate, Scenario, estimate
from simulator.scenario import scenario_from_dict

UPLOADS_KEY = "catalog_uploads"  # list of (origin, toml text) in st.session_state
PROFILE_KEY = "profile_path"  # a calibration profile file chosen on the Calibration page


@st.cache_resource(show_spinner=False)
def packaged_catalog() -> Catalog:
    return load_catalog()


def session_catalog() -> Catalog:
    """The packaged catalog plus this browser session's uploaded entries."""
    cat = packaged_catalog()
    entries = []
    for origin, text in st.session_state.get(UPLOADS_KEY, []):
        entries += [(item, origin) for item in parse_toml_text(text, origin)]
    return cat.with_entries(entries) if entries else cat


@st.cache_data(show_spinner=False, max_entries=256)
def _estimate_cached(scenario_json: str, uploads: tuple[tuple[str, str], ...]) -> Estimate:
    cat = packaged_catalog()
    entries = [(item, origin) for origin, text in uploads for item in parse_toml_text(text, origin)]
    if entries:
        cat = cat.with_entries(entries)
    return estimate(Scenario.model_validate_json(scenario_json), cat)


def cached_estimate(scenario: Scenario) -> Estimate:
    """`estimate(scenario)` memoised on the scenario's JSON and this session's uploads."""
    uploads = tuple(tuple(x) for x in st.session_state.get(UPLOADS_KEY, []))
    return _estimate_cached(scenario.model_dump_json(), uploads)


def usd(amount: float | None, millions: bool = False) -> str:
    """A cost for display; "n/a" where there was no price (the estimate's cost is None then)."""
    if amount is None:
        return "n/a"
    return f"${amount / 1e6:,.2f} M" if millions else f"${amount:,.0f}"


def plain(msg: str) -> str:
    """A library message shown as Markdown: "tp*pp*cp*dp" must not turn into emphasis."""
    return msg.replace("*", r"\*")


def scenario_from(data: dict) -> Scenario:
    return scenario_from_dict(data, "dashboard")
