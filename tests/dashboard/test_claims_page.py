"""The Claims page (issue 16): the same table as `trainsim claims`, each claim with its details, links that
open the claim's scenario in the Planner (checked by opening them), the frontier-compute trend with its
fit; and the pure builders it uses (dashboard/charts_claims.py, dashboard/claims_links.py)."""

import json
import re
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
from apptools import APP, metrics
from streamlit.testing.v1 import AppTest

from dashboard import charts_claims
from dashboard.claims_links import planner_link
from simulator import estimate, scenario_from_dict
from simulator.claims import evaluate_claims, load_ledger
from simulator.claims.report import table_rows
from simulator.claims.trends import fit_trend, load_points


@pytest.fixture(scope="module")
def page():
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/claims.py")
    return at.run()


def links(at) -> dict[str, str]:
    """'Open <scenario> in the Planner' links on the page: scenario id -> URL."""
    out = {}
    for m in at.markdown:
        for sid, url in re.findall(r"\[Open (\S+) in the Planner\]\(([^)]+)\)", str(m.value)):
            out[sid] = url
    return out


def test_page_renders_the_commands_table(page):
    assert not page.exception, page.exception
    assert not page.error
    shown = page.get_by_key("cl_table").dataframe[0].value
    expected = pd.DataFrame(table_rows([r.to_dict() for r in evaluate_claims()]))
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), expected)
    labels = [e.label for e in page.expander]
    assert len(labels) == len(expected) and any("inconsistent" in lab for lab in labels)


def test_split_and_inputs_are_shown(page):
    split = page.get_by_key("cl_energy-split_split").dataframe[0].value
    assert {"accelerators", "hosts", "network", "storage", "facility overhead (cooling)"} <= set(split["energy"])
    inputs = page.get_by_key("cl_cost-gpt-4_inputs").dataframe[0].value
    assert {"cluster.devices", "training.tokens"} <= set(inputs["input"])
    assert any("cannot express" in str(c.value) for c in page.caption)  # GPT-4's custom MoE shape: no link


@pytest.mark.parametrize("sid", ["llama-3-1-405b", "gemini-ultra"])
def test_a_claims_link_opens_its_scenario_in_the_planner(page, sid):
    url = links(page)[sid]
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in parse_qsl(urlsplit(url).query):
        at.query_params[k] = v
    at.run()
    assert not at.exception and not at.error
    est = estimate(scenario_from_dict(load_ledger().scenarios[sid].scenario))
    assert metrics(at)["Wall clock"] == f"{est.wall_clock_days:,.1f} days"
    assert metrics(at)["Energy"] == f"{est.energy_mwh:,.0f} MWh"


def test_trend_chart_on_the_page(page):
    figs = [json.loads(c.proto.spec) for c in page.get("plotly_chart")]
    (fig,) = [f for f in figs if "frontier" in f["layout"]["title"]["text"]]
    names = [t["name"] for t in fig["data"]]
    assert any(n.startswith("fit: doubling") for n in names) and any(n.startswith("claim:") for n in names)
    assert fig["layout"]["yaxis"]["type"] == "log"


def test_trend_chart_builder():
    points = load_points()
    fit = fit_trend(points)
    rows = [{"model": p.model, "date": p.date, "year": p.year, "training_flop": p.training_flop,
             "estimated": p.estimated} for p in points]
    fig = charts_claims.trend_chart(rows, fit, 6).to_dict()
    published, estimated, _fit, claim = fig["data"]
    assert len(published["text"]) + len(estimated["text"]) == len(points)
    assert "GPT-4" in estimated["text"] and "Llama 3.1 405B" in published["text"]
    assert "dash" == claim["line"]["dash"]


def test_planner_link_says_what_cannot_be_expressed():
    scenarios = load_ledger().scenarios
    url, note = planner_link(scenarios["gpt-4"].scenario)
    assert url is None and "model.experts" in note
    url, note = planner_link(scenarios["llama-3-1-405b"].scenario)
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["model"] == "llama3-405b" and query["n_dev"] == "16384" and note == ""
