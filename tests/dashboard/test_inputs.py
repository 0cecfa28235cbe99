"""Issue 15 items 2-5 and the default run: typed numbers, invalid input, bad links, links that restore
the scenario on every page (AppTest through the entry point; the parser and link checks directly)."""

from pathlib import Path

import pytest
from apptools import metrics

from dashboard.fields import parse_number
from dashboard.state import DEFAULTS, NUMBERS, choices, link_aliases, scenario_data
from dashboard.widgets import link_problem
from hardware_catalog import load_catalog
from simulator import estimate, load_scenario, scenario_from_dict

EXAMPLE = Path(__file__).parents[2] / "examples" / "llama3-70b-h100.toml"
COMPARE, EXPLORER = "app_pages/compare.py", "app_pages/explorer.py"
SERVING, RLHF = "app_pages/serving.py", "app_pages/posttraining.py"


def texts(elements) -> str:
    return " | ".join(e.value for e in elements)


# ---------------------------------------------------------------- the default run is the example's


def test_default_run_equals_the_shipped_example():
    """Issue 15 item 10: the Planner's default showed 38.0 days, `trainsim run` on the example 39.3."""
    ours, theirs = scenario_from_dict(scenario_data(DEFAULTS)), load_scenario(EXAMPLE)
    a, b = estimate(ours), estimate(theirs)
    for figure in ("wall_clock_days", "cost_usd", "co2e_t", "energy_mwh"):
        assert getattr(a, figure) == pytest.approx(getattr(b, figure), rel=1e-12), figure
    assert a.plan == b.plan
    mine, file = ours.model_dump(exclude={"name"}), theirs.model_dump(exclude={"name"})
    # the planner's manual plan writes cp and micro-batch (1, what the file's search picks)
    assert {k: v for k, v in mine.items() if k != "parallelism"} == {k: v for k, v in file.items() if k != "parallelism"}


# ---------------------------------------------------------------- the number parser


@pytest.mark.parametrize("text, value", [("1e4", 10_000), ("1E4", 10_000), ("10,000", 10_000), ("10_000", 10_000),
                                         (" 8192 ", 8192), ("4096.0", 4096), ("2.5e3", 2500)])
def test_numbers_in_scientific_notation_are_read(text, value):
    got = parse_number(text, NUMBERS["n_dev"])
    assert got == value and isinstance(got, int)


@pytest.mark.parametrize("key, text, message", [
    ("n_dev", "3.7", "Devices: 3.7 is not a whole number; expected a whole number of at least 1"),
    ("n_dev", "abc", "Devices: 'abc' is not a number; expected a whole number of at least 1"),
    ("n_dev", "3,7", "Devices: '3,7' is not a number"),  # not 37: a comma only groups thousands
    ("n_dev", "", "Devices: empty"),
    ("n_dev", "-5", "Devices: -5 is out of range; expected a whole number of at least 1"),
    ("seq", "1e999", "Sequence length: 1e999 is too large"),
    ("tokens_t", "0", "Training tokens (trillions): 0 is out of range; expected a number above 0"),
    ("price", "-3", "Price USD per device-hour (0 = catalog): -3 is out of range; expected a number of at least 0"),
    ("exp_top", "51", "Top plans: 51 is out of range; expected a whole number from 1 to 50"),
])
def test_what_cannot_be_read_is_refused_naming_the_field(key, text, message):
    with pytest.raises(ValueError) as err:
        parse_number(text, NUMBERS[key])
    assert str(err.value).startswith(message)


# ---------------------------------------------------------------- link checks


@pytest.fixture(scope="module")
def options():
    return choices(load_catalog())


@pytest.mark.parametrize("name, value, note", [
    ("hw", "nvidia-h100-sxm-8gb", ("hw=nvidia-h100-sxm-8gb: no such accelerator; closest valid value "
                                   "nvidia-h100-sxm-80gb; the default nvidia-h100-sxm-80gb is used")),
    ("model", "llama3-7b", "model=llama3-7b: no such model; closest valid value llama3-70b"),
    ("region", "virginia", "region=virginia: no such region; closest valid value us-virginia — US, Virginia"),
    ("n_dev", "abc", "n_dev=abc: Devices takes a whole number of at least 1; the default 4096 is used"),
    ("sv_dev", "1.5", "sv_dev=1.5: Devices takes a whole number of at least 1; the default 16 is used"),
])
def test_a_bad_link_value_is_named_with_the_closest_valid_one(options, name, value, note):
    kept, said = link_problem(name, [value], options)
    assert kept == [] and said.startswith(note)


def test_link_values_that_fit_or_name_an_option_are_kept(options):
    assert link_problem("n_dev", ["1e4"], options) == (["1e4"], None)
    assert link_problem("sc_flops", ["whatever"], options) == (["whatever"], None)  # not one of these inputs
    aliases = link_aliases(load_catalog())  # a region by id, place name or the former "FR (France)"
    assert link_problem("cmp_region", ["FR", "SE (Sweden)", "Norway"], options, aliases) == (
        ["FR — France", "SE — Sweden", "NO — Norway"], None)
    assert link_problem("region", ["france"], options, aliases) == (["FR — France"], None)
    assert link_problem("val_quantity", ["mfu_pct"], options, aliases) == (["MFU (%)"], None)
    kept, note = link_problem("cmp_devices", ["1024", "1000"], options)
    assert kept == ["1024"] and note.startswith("cmp_devices=1000: no such device count; closest valid value 1024")


def test_bad_link_says_what_was_ignored_and_estimates_the_rest(app):
    for name, value in (("hw", "nvidia-h100-sxm-8gb"), ("region", "Mars"), ("n_dev", "abc"), ("tokens_t", "2")):
        app.query_params[name] = value
    at = app.run()
    assert not at.exception and not at.error
    said = texts(at.warning)
    assert "hw=nvidia-h100-sxm-8gb: no such accelerator; closest valid value nvidia-h100-sxm-80gb" in said
    assert "region=Mars: no such region; closest valid value" in said
    assert "n_dev=abc: Devices takes a whole number of at least 1; the default 4096 is used" in said
    assert at.text_input(key="n_dev").value == "4096" and at.text_input(key="tokens_t").value == "2"
    est = estimate(scenario_from_dict(scenario_data({**DEFAULTS, "tokens_t": 2.0})))
    assert metrics(at)["Wall clock"] == f"{est.wall_clock_days:,.1f} days"


# ---------------------------------------------------------------- typed input


def test_typed_scientific_notation_is_the_number(app):
    app.query_params["plan"] = "auto"  # 10,000 devices do not divide into the default manual plan's 32
    at = app.run()
    at.text_input(key="n_dev").input("1e4").run()
    assert not at.exception and not at.error
    assert any("on 10,000 x nvidia-h100-sxm-80gb" in c.value for c in at.caption)
    est = estimate(scenario_from_dict(scenario_data({**DEFAULTS, "plan": "auto", "n_dev": 10_000})))
    assert metrics(at)["Wall clock"] == f"{est.wall_clock_days:,.1f} days"


@pytest.mark.parametrize("key, text, message", [
    ("n_dev", "3.7", "Devices: 3.7 is not a whole number"),
    ("n_dev", "abc", "Devices: 'abc' is not a number"),
    ("n_dev", "-5", "Devices: -5 is out of range"),
    ("tokens_t", "0", "Training tokens (trillions): 0 is out of range"),
    ("price", "-3", "Price USD per device-hour (0 = catalog): -3 is out of range"),
])
def test_invalid_input_leaves_no_figures(app, key, text, message):
    at = app.run()
    assert metrics(at)
    at.text_input(key=key).input(text).run()
    assert not at.exception
    assert any(e.value.startswith(message) for e in at.error), texts(at.error)
    assert not metrics(at) and not at.get("plotly_chart")  # nothing of the previous scenario stays
    assert "No figures while" in texts(at.warning)


def test_serving_invalid_input_leaves_no_figures(app):
    at = app.switch_page(SERVING).run()
    assert metrics(at)
    at.text_input(key="sv_dev").input("0").run()
    assert any(e.value.startswith("Devices: 0 is out of range") for e in at.error)
    assert not metrics(at) and "No figures while Devices" in texts(at.warning)


# ---------------------------------------------------------------- links restore every page's scenario


def test_compare_link_restores_its_scenario_and_selections(app):
    for name, value in (("model", "llama3-8b"), ("tokens_t", "2"), ("cmp_hw", "amd-mi300x"), ("cmp_devices", "1024"),
                        ("cmp_region", "FR")):
        app.query_params[name] = value
    at = app.switch_page(COMPARE).run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("llama3-8b (8.0B parameters), 2.00T tokens") for c in at.caption)
    df = at.dataframe[0].value
    assert list(zip(df["accelerator"], df["region"], df["devices"])) == [("amd-mi300x", "FR", 1024)]


def test_explorer_link_restores_its_scenario(app):
    for name, value in (("model", "llama3-8b"), ("n_dev", "1024"), ("hw", "amd-mi300x"), ("exp_top", "3")):
        app.query_params[name] = value
    at = app.switch_page(EXPLORER).run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("llama3-8b on 1,024 x amd-mi300x") for c in at.caption)
    assert len(at.dataframe[0].value) == 3


def test_a_page_switch_carries_the_shared_inputs(app):
    """Into the new page's link in a browser (tests/e2e/test_links_and_input.py); AppTest keeps the last
    page's URL bindings, so here the values go in through the session."""
    at = app.run()
    at.text_input(key="tokens_t").input("2").run()
    at.selectbox(key="model").select("llama3-8b").run()
    at.switch_page(COMPARE).run()
    assert not at.exception
    assert at.text_input(key="tokens_t").value == "2" and at.selectbox(key="model").value == "llama3-8b"
    assert any(c.value.startswith("llama3-8b (8.0B parameters), 2.00T tokens") for c in at.caption)


def test_posttraining_link_restores_its_scenario(app):
    app.query_params["rl_dev"] = "128"
    app.query_params["rl_prompts"] = "5e4"
    at = app.switch_page(RLHF).run()
    assert not at.exception and not at.error
    assert at.text_input(key="rl_prompts").value == "5e4"
    assert any("128 x nvidia-h100-sxm-80gb in us-oregon: 400,000 sequences" in c.value for c in at.caption)


def test_a_manual_plan_that_does_not_divide_the_devices_points_to_auto(app):
    """A manual plan of tp 8, pp 4: 10,000 devices do not divide into it."""
    app.query_params["plan"] = "manual"
    at = app.run()
    at.text_input(key="n_dev").input("1e4").run()
    said = texts(at.error)
    assert "cluster.devices = 10000" in said and "Or choose Plan = auto: the search finds one." in said


def test_the_validation_picker_lists_every_checked_quantity_by_name():
    """Every quantity `trainsim validate` checks is in the Validation page's picker, with a human name."""
    from dashboard.formats import QUANTITIES, label
    from simulator.validation.runs import run_validation

    checked = {c.quantity for c in run_validation(load_catalog(use_env=False))}
    assert checked == set(QUANTITIES)
    assert all(label(q) != q for q in QUANTITIES)
