"""Project page (AppTest through the entry point): the shipped example renders, its cost waterfall
ends in the total, the second waterfall follows the radio, and bad uploads show their message."""

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from hardware_catalog import load_catalog
from simulator.workloads.project import estimate_project, load_project

ROOT = Path(__file__).parents[2]
APP = str(ROOT / "dashboard" / "streamlit_app.py")
EXAMPLE = ROOT / "examples" / "project-llama3-70b.toml"

INLINE = """name = "mine"
[[stage]]
name = "pre"
kind = "pretraining"
repeat = 2
[stage.model]
preset = "llama3-8b"
[stage.training]
tokens = 1e11
[stage.cluster]
accelerator = "nvidia-h100-sxm-80gb"
devices = {devices}
"""


@pytest.fixture(scope="module")
def totals():
    return estimate_project(load_project(EXAMPLE), load_catalog()).totals


@pytest.fixture()
def at():
    st.cache_data.clear()
    app = AppTest.from_file(APP, default_timeout=60)
    app.switch_page("app_pages/project.py")
    return app.run()


def figure(at, key):
    return json.loads(at.get_by_key(key).proto.spec)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def upload(at, name, text):
    at.file_uploader(key="pj_upload").set_value((name, text.encode(), "application/toml"))
    return at.run()


def test_default_render(at, totals):
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert next(m.value for m in at.metric if m.label == "Total cost") == f"${totals['cost_usd'] / 1e6:,.2f} M"
    table = at.dataframe[0].value
    assert list(table["stage"])[-1] == "total"
    assert table["cost (USD)"].iloc[-1] * 1e6 == pytest.approx(totals["cost_usd"])  # shown in $ M


def test_cost_waterfall_ends_in_the_total(at, totals):
    data = figure(at, "pj_cost_waterfall")["data"][0]
    assert data["type"] == "waterfall"
    assert data["measure"][-1] == "total" and set(data["measure"][:-1]) == {"relative"}
    assert data["x"][-1] == "Total"
    assert data["y"][-1] == pytest.approx(totals["cost_usd"])
    assert sum(data["y"][:-1]) == pytest.approx(data["y"][-1])


def test_metric_radio_switches_the_second_waterfall(at, totals):
    data = figure(at, "pj_metric_waterfall")["data"][0]
    assert data["y"][-1] == pytest.approx(totals["energy_mwh"])
    at.radio(key="pj_metric").set_value("CO2e (t, operational)").run()
    assert not at.exception
    data = figure(at, "pj_metric_waterfall")["data"][0]
    assert data["y"][-1] == pytest.approx(totals["co2e_t"])


def test_uploaded_inline_project_is_estimated(at):
    upload(at, "mine.toml", INLINE.format(devices=256))
    assert not at.exception and not at.error, texts(at.error)
    data = figure(at, "pj_cost_waterfall")["data"][0]
    assert list(data["x"]) == ["pre", "Total"]
    assert "mine.toml" in texts(at.markdown)


@pytest.mark.parametrize("text, message", [
    (INLINE.format(devices=0), "mine.toml: stage 1 'pre': cluster.devices:"),
    ('[[stage]]\nname = "pre"\nkind = "pretraining"\nscenario = "pre.toml"\n', "self-contained"),
    ("name = [", "not valid TOML"),
    ('name = "empty"\n', "no stages"),
    (INLINE.format(devices=256).replace("nvidia-h100-sxm-80gb", "nvidia-h100-sxm-8gb"),
     "stage 1 'pre': cluster.accelerator:"),
])
def test_bad_upload_shows_an_error(at, text, message):
    upload(at, "mine.toml", text)
    assert not at.exception, at.exception
    assert message in texts(at.error), texts(at.error)
    assert not at.get("plotly_chart")
