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


def _uploads() -> tuple[tuple[str, str], ...]:
    return tuple(tuple(x) for x in st.session_state.get(UPLOADS_KEY, []))


def cached_estimate(scenario: Scenario) -> Estimate:
    """`estimate(scenario)` memoised on the scenario's JSON and this session's uploads."""
    return _estimate_cached(scenario.model_dump_json(), _uploads())


def _spreads(scenario_json: str, basis):
    """The Monte Carlo spreads the CLI uses (simulator.result.uncertainty_bands): the estimate's own
    throughput spread, then the scenario's `[uncertainty]` section."""
    from simulator.footprint.uncertainty import Spreads

    section = Scenario.model_validate_json(scenario_json).uncertainty
    return Spreads.for_basis(basis, section.model_dump(exclude={"samples"}))


# The pure library calls behind a Planner run, memoised like the estimate (on the scenario's JSON and this
# session's uploads): a rerun that changes nothing in the scenario (a chart option, a page switch) costs
# no recomputation.
@st.cache_data(show_spinner=False, max_entries=256)
def _bands_cached(scenario_json: str, uploads: tuple, samples: int) -> dict[str, dict[str, float]]:
    from simulator.footprint.uncertainty import monte_carlo

    basis = _estimate_cached(scenario_json, uploads).basis
    return monte_carlo(basis, samples, _spreads(scenario_json, basis)).summary()


def cached_bands(scenario: Scenario, samples: int = 4000) -> dict[str, dict[str, float]]:
    """P10 / P50 / P90 of the headline figures: `monte_carlo(estimate.basis, samples, spreads).summary()`
    with the scenario's spreads."""
    return _bands_cached(scenario.model_dump_json(), _uploads(), samples)


@st.cache_data(show_spinner=False, max_entries=256)
def _tornado_cached(scenario_json: str, uploads: tuple, metric: str) -> tuple[list[dict], dict]:
    from simulator.footprint.uncertainty import input_ranges, tornado

    basis = _estimate_cached(scenario_json, uploads).basis
    spreads = _spreads(scenario_json, basis)
    return tornado(basis, metric, spreads), input_ranges(basis, spreads)


def cached_tornado(scenario: Scenario, metric: str) -> tuple[list[dict], dict[str, tuple[float, float]]]:
    """The tornado of `metric` (`uncertainty.tornado`) and each input's P10-P90 (`uncertainty.input_ranges`)."""
    return _tornado_cached(scenario.model_dump_json(), _uploads(), metric)


@st.cache_resource(show_spinner=False)
def example_profile():
    """The shipped hourly grid profile (simulator.footprint.carbon_example); read once per process."""
    from simulator.footprint.carbon_profile import load_example

    return load_example()


@st.cache_data(show_spinner=False, max_entries=64)
def _start_sweep_cached(scenario_json: str, uploads: tuple, csv: tuple[str, str] | None):
    from simulator.footprint.carbon_profile import (
        parse_profile_csv,
        profile_notes,
        sweep_for_estimate,
    )

    est = _estimate_cached(scenario_json, uploads)
    profile = parse_profile_csv(csv[1], csv[0]) if csv is not None else example_profile()
    notes = profile_notes(profile, est.values["region"], est.values["carbon_intensity_kg_per_kwh"])
    return notes, sweep_for_estimate(est, profile)


def cached_start_sweep(scenario: Scenario, csv: tuple[str, str] | None = None):
    """(notes, start-time sweep) of the run against an hourly grid profile: an uploaded CSV (name, text)
    or the shipped example (`carbon_profile.profile_notes`, `sweep_for_estimate`). Raises TrainsimError
    for a profile that cannot be read."""
    return _start_sweep_cached(scenario.model_dump_json(), _uploads(), csv)


def plain(msg: str) -> str:
    """A library message shown as Markdown: "tp*pp*cp*dp" must not turn into emphasis."""
    return msg.replace("*", r"\*")


def scenario_from(data: dict) -> Scenario:
    return scenario_from_dict(data, "dashboard")
