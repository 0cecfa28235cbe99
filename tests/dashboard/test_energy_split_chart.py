"""The Planner's energy split chart (issue 16 item 2): the library's shares, one bar per group."""

from pathlib import Path

import pytest

from dashboard import charts
from hardware_catalog import load_catalog
from simulator import estimate, load_scenario
from simulator.footprint.energy_split import energy_split

EXAMPLE = Path(__file__).parents[2] / "examples" / "llama3-70b-h100.toml"


def test_energy_split_chart_shows_the_library_shares():
    est = estimate(load_scenario(EXAMPLE), load_catalog(use_env=False))
    fig = charts.energy_split_chart(est).to_dict()
    share = energy_split(est)
    bars = {d["name"].rsplit(" ", 1)[0]: d["x"][0] for d in fig["data"]}
    assert set(bars) == {"accelerators", "hosts", "network", "storage", "cooling & facility (PUE)"}
    assert bars["network"] == pytest.approx(100 * share["network"])
    assert bars["storage"] == pytest.approx(100 * share["storage"])
    assert sum(bars.values()) == pytest.approx(100)
    assert any(d["name"] == f"network {share['network']:.1%}" for d in fig["data"])
