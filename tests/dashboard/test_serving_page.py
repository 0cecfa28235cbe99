"""Serving page (AppTest through the entry point) and its chart builder; the Planner's LoRA control."""

import json
from pathlib import Path

import numpy as np
import pytest
from apptools import array, metrics, number

from dashboard.charts_serving import throughput_latency
from dashboard.formats import label, scientific
from dashboard.state import (
    DEFAULTS,
    SERVING_DEFAULTS,
    scenario_data,
    serving_data,
    state_from_scenario,
)
from hardware_catalog import load_catalog
from simulator import estimate, scenario_from_dict
from simulator.errors import InfeasiblePlanError
from simulator.workloads.serving import max_batch

SERVING = "app_pages/serving.py"


@pytest.fixture()
def at(app):
    return app.switch_page(SERVING).run()


def library(**inputs):
    """The library's estimate for the Serving page's defaults with `inputs` changed."""
    return estimate(scenario_from_dict(serving_data({**SERVING_DEFAULTS, **inputs})))


def test_default_render_matches_the_library(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    v = library().values
    m = metrics(at)
    assert m["Devices needed"] == f"{v['devices_needed']:,} of {v['devices']:,}"
    assert v["devices"] == 16 and v["devices_needed"] < 16
    assert m["Tokens/s per device"] == f"{v['tokens_per_s_per_device']:,.0f}"
    assert m["Tokens/s per user"] == f"{v['tokens_per_s_per_user']:,.1f}"
    assert m["Time to first token"] == f"{v['ttft_s'] * 1e3:,.0f} ms"
    assert m["Utilisation"] == f"{v['utilisation']:.1%}"
    assert m["$ per million tokens"] == f"${v['usd_per_mtok']:,.2f}"
    assert m["kWh per million tokens"] == f"{v['kwh_per_mtok']:,.3f}"
    assert m["kgCO2e per million tokens"] == f"{v['kgco2e_per_mtok']:,.3f}"
    assert m["Cost for the period"] == f"${v['cost_usd']:,.0f}"
    assert m["Energy for the period"] == f"{v['energy_mwh']:,.2f} MWh"
    assert v["tokens_per_s_per_user"] >= SERVING_DEFAULTS["sv_min_user"]
    assert any(f"{v['replicas']} replicas of TP {v['tp']}, batch {v['batch']} each" in c.value for c in at.caption)


def test_breakdown_table_adds_up_to_the_totals(at):
    v = library().values
    table = at.dataframe[0].value
    keys = {"decode", "prefill", "tp_comm", "idle_capacity", "host", "facility_overhead"}
    assert {label(k) for k in keys} <= set(table["component"])  # in human names: "TP comm", "idle capacity"
    assert table["cost (USD)"].sum() == pytest.approx(v["cost_usd"])
    assert table["energy (kWh)"].sum() == pytest.approx(v["energy_mwh"] * 1e3)
    assert table["CO2e (kg)"].sum() == pytest.approx((v["co2e_t"] + v["embodied_co2e_t"]) * 1e3)


def test_less_traffic_fewer_devices_and_dearer_tokens(at):
    before = metrics(at)
    at.text_input(key="sv_rps").input("2.5").run()
    assert not at.exception and not at.error
    after, v = metrics(at), library(sv_rps=2.5).values
    assert after["Devices needed"] == f"{v['devices_needed']} of 16"
    assert v["devices_needed"] <= library().values["devices_needed"]  # whole replicas: may stay the same
    assert number(after["Utilisation"]) == pytest.approx(number(before["Utilisation"]) / 2, abs=0.1)
    assert after["$ per million tokens"] == f"${v['usd_per_mtok']:,.2f}"
    # the same 16 devices for half the tokens: the rental is fixed, so each token costs about twice as much
    assert number(after["$ per million tokens"]) > 1.5 * number(before["$ per million tokens"])


def test_more_devices_cost_more_and_idle_more(at):
    before = metrics(at)
    at.text_input(key="sv_dev").input("32").run()
    assert not at.exception and not at.error
    after = metrics(at)
    assert after["Devices needed"] == f"{library().values['devices_needed']} of 32"  # the traffic did not change
    v = library(sv_dev=32).values
    assert after["Cost for the period"] == f"${v['cost_usd']:,.0f}"
    assert number(after["Cost for the period"]) > 1.5 * number(before["Cost for the period"])  # twice the devices
    assert after["Utilisation"] == f"{v['utilisation']:.1%}"
    assert number(after["Utilisation"]) == pytest.approx(number(before["Utilisation"]) / 2, abs=0.1)


def test_no_traffic_means_full_load(at):
    at.text_input(key="sv_rps").input("0").run()
    assert not at.exception and not at.error
    assert metrics(at)["Utilisation"] == "100.0%"
    assert metrics(at)["Devices needed"] == "16 of 16"
    assert any("no traffic given" in i.value for i in at.info)


def test_traffic_too_high_shows_the_message(at):
    at.text_input(key="sv_rps").input("50").run()
    assert not at.exception
    with pytest.raises(InfeasiblePlanError) as exc:
        library(sv_rps=50.0)
    assert [e.value for e in at.error] == [str(exc.value)]
    assert str(exc.value).startswith("cluster.devices: 16 devices") and "use at least" in str(exc.value)
    assert not at.metric and not at.get("plotly_chart")


def test_bad_tp_names_the_field(at):
    at.text_input(key="sv_tp").input("3").run()
    assert not at.exception
    assert any(e.value.startswith("serving.tp: 3 must be a power of two") for e in at.error)


def test_unpriced_accelerator_gives_all_but_the_cost_until_priced(at):
    """Issue 13 item 12: a missing price no longer blocks the other figures; the cost says n/a."""
    at.selectbox(key="sv_hw").select("nvidia-b200").run()
    assert not at.exception and not at.error
    assert metrics(at)["Cost for the period"] == "n/a"
    at.text_input(key="sv_price").input("6").run()
    assert not at.exception and not at.error
    v = library(sv_hw="nvidia-b200", sv_price=6.0).values
    assert metrics(at)["Cost for the period"] == f"${v['cost_usd']:,.0f}"
    assert v["usd_per_device_hour"] == pytest.approx(6.0, rel=0.2)  # the price, plus electricity if billed apart


def test_share_link_seeds_the_widgets(app):
    app.query_params["sv_dev"] = "32"
    app.query_params["sv_hw"] = "nvidia-h200-sxm-141gb"
    at = app.switch_page(SERVING).run()
    assert not at.exception and not at.error
    assert at.text_input(key="sv_dev").value == "32"
    assert at.selectbox(key="sv_hw").value == "nvidia-h200-sxm-141gb"
    v = library(sv_dev=32, sv_hw="nvidia-h200-sxm-141gb").values
    assert metrics(at)["Devices needed"] == f"{v['devices_needed']:,} of 32"


@pytest.mark.parametrize("tp", [0, 8])  # auto (the smallest TP that fits: few batches) and 8 (many)
def test_page_curve_marks_the_chosen_batch(at, tp):
    at.text_input(key="sv_tp").input(str(tp)).run()
    assert not at.exception and not at.error
    sc = scenario_from_dict(serving_data({**SERVING_DEFAULTS, "sv_tp": tp}))
    v = estimate(sc).values
    fig = json.loads(at.get_by_key("sv_curve").proto.spec)
    curve, chosen = fig["data"]
    acc = load_catalog().accelerator(sc.cluster.accelerator)
    b_max = max_batch(sc.model.spec(), acc, v["tp"], sc.serving.prompt_tokens + sc.serving.output_tokens,
                      sc.serving.dtype, sc.serving.kv_dtype)
    batch, x, y = array(curve["customdata"]), array(curve["x"]), array(curve["y"])
    assert list(batch) == list(range(1, min(b_max, sc.serving.max_batch) + 1))  # the batches the library searched
    assert chosen["customdata"] == [v["batch"]]
    assert chosen["x"][0] == pytest.approx(v["tokens_per_s_per_user"])
    assert chosen["y"][0] == pytest.approx(v["capacity_tokens_per_s"] / v["replicas"])
    fast_enough = x >= SERVING_DEFAULTS["sv_min_user"]
    assert chosen["y"][0] == pytest.approx(y[fast_enough].max())  # the best throughput above the floor


def test_chart_builder_traces_and_chosen_point():
    batch = np.arange(1, 9)
    cycle = 0.02 + 0.001 * batch
    fig = throughput_latency(batch, batch / cycle, 1 / cycle, 4, min_tokens_per_s_per_user=30.0).to_dict()
    curve, chosen = fig["data"]
    assert curve["type"] == "scatter" and curve["mode"] == "lines" and curve["name"] == "batch sizes"
    assert list(array(curve["x"])) == pytest.approx(list(1 / cycle))
    assert chosen["name"] == "chosen batch (4)" and chosen["mode"] == "markers+text"
    assert chosen["x"][0] == pytest.approx(1 / 0.024) and chosen["y"][0] == pytest.approx(4 / 0.024)
    assert [s["x0"] for s in fig["layout"]["shapes"]] == [30.0]  # the per-user floor
    assert not throughput_latency(batch, batch / cycle, 1 / cycle, 4).to_dict()["layout"].get("shapes")
    with pytest.raises(ValueError, match="chosen batch 9"):
        throughput_latency(batch, batch / cycle, 1 / cycle, 9)


# ---------------------------------------------------------------- Planner: LoRA fine-tuning


def test_planner_lora_control_lowers_flops_and_shows_trained_params(app):
    at = app.run()
    full = metrics(at)
    assert "Trained parameters (LoRA)" not in full
    at.radio(key="ft").set_value("lora").run()
    assert not at.exception and not at.error
    lora = estimate(scenario_from_dict(scenario_data({**DEFAULTS, "ft": "lora"})))
    assert lora.values["finetune_method"] == "lora"
    m = metrics(at)
    full_est = estimate(scenario_from_dict(scenario_data(DEFAULTS)))
    assert m["Training FLOPs"] == scientific(lora.values["train_flops"]) != full["Training FLOPs"]
    assert lora.values["train_flops"] < full_est.values["train_flops"]
    assert m["Trained parameters (LoRA)"] == f"{lora.values['trained_params'] / 1e6:,.1f} M"
    at.selectbox(key="lora_targets").select("all").run()  # adapters on every linear layer: more of them
    assert number(metrics(at)["Trained parameters (LoRA)"]) > number(m["Trained parameters (LoRA)"])


def test_planner_lora_from_a_link_and_an_upload(app):
    app.query_params["ft"] = "lora"
    app.query_params["lora_rank"] = "64"
    at = app.run()
    assert at.radio(key="ft").value == "lora" and at.text_input(key="lora_rank").value == "64"
    data = scenario_data({**DEFAULTS, "ft": "lora", "lora_rank": 64})
    assert data["finetune"] == {"method": "lora", "lora_rank": 64, "lora_targets": ["q", "k", "v", "o"]}
    assert metrics(at)["Trained parameters (LoRA)"] == \
        f"{estimate(scenario_from_dict(data)).values['trained_params'] / 1e6:,.1f} M"
    back = state_from_scenario(data)  # an uploaded TOML with this [finetune] section
    assert (back["ft"], back["lora_rank"], back["lora_targets"]) == ("lora", 64, "attention")
    assert state_from_scenario({**data, "finetune": {"method": "lora", "lora_targets": "all"}})["lora_targets"] == "all"
    assert state_from_scenario({k: x for k, x in data.items() if k != "finetune"})["ft"] == "full"


@pytest.mark.parametrize("example, message", [
    ("llama2-7b-lora.toml", None),
    ("llama3-70b-serving.toml", ("a [serving] scenario; the planner estimates pre-training and fine-tuning runs: "
                                 "use the Serving page")),
])
def test_planner_upload_of_lora_and_serving_scenarios(app, example, message):
    path = Path(__file__).parents[2] / "examples" / example
    if not path.exists():
        pytest.skip(f"examples/{example} not in this checkout")
    at = app.run()
    at.file_uploader(key="pl_upload").set_value((example, path.read_bytes(), "application/toml")).run()
    assert not at.exception
    if message is None:  # the [finetune] section lands in the LoRA control and the figures are the file's
        import tomllib

        ft = tomllib.loads(path.read_text())["finetune"]
        assert at.radio(key="ft").value == "lora" and at.text_input(key="lora_rank").value == str(ft["lora_rank"])
        assert not at.error
        assert "Trained parameters (LoRA)" in metrics(at)
    else:
        assert [e.value for e in at.error] == [f"{example}: {message}"]
        assert at.text_input(key="n_dev").value == str(DEFAULTS["n_dev"])  # the planner's inputs are untouched


def test_planner_upload_of_a_broken_file_says_why(app):
    at = app.run()
    at.file_uploader(key="pl_upload").set_value(("bad.toml", b"name = [", "application/toml")).run()
    assert not at.exception
    assert any(e.value.startswith("bad.toml: not valid TOML") for e in at.error)
    assert metrics(at)["Wall clock"]  # the planner's own scenario is still estimated
