"""Compare and Parallelism explorer pages (AppTest through the entry point) and their chart builders."""

import base64
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import charts_compare as cc
from dashboard.state import DEFAULTS, scenario_data
from hardware_catalog import load_catalog
from simulator import estimate, scenario_from_dict
from simulator.execution.memory import capacity_gb

APP = str(Path(__file__).parents[2] / "dashboard" / "streamlit_app.py")
COMPARE, EXPLORER = "app_pages/compare.py", "app_pages/explorer.py"


@pytest.fixture(scope="module")
def default_estimate():
    return estimate(scenario_from_dict(scenario_data({**DEFAULTS, "plan": "auto"})))  # the page searches


def table(at, key):
    """A page's table by its key (AppTest does not expose dataframe keys, so by position)."""
    return at.dataframe[{"cmp_table": 0, "exp_table": 0, "exp_reasons": 1}[key]].value


def errors(at):
    return [e.value for e in at.error]


# ---------------------------------------------------------------- Compare page


def test_compare_default_render_matches_the_library(app):
    at = app.switch_page(COMPARE).run()
    assert not at.exception and not at.error
    df = table(at, "cmp_table")
    assert set(df["accelerator"]) == {"nvidia-h100-sxm-80gb", "nvidia-h200-sxm-141gb", "amd-mi300x",
                                      "google-tpu-v5p"}  # the default selection: every one has a price
    assert len(df) == 4 * 3 * 3 and (df["reason"] == "").all()
    assert not at.warning  # no unpriced accelerator left out, no implausible input
    est = estimate(scenario_from_dict(scenario_data(  # each combination: its best plan, the region's PUE
        {**DEFAULTS, "n_dev": 2048, "region": "FR", "plan": "auto", "pue": 0.0})))
    row = df[(df["accelerator"] == DEFAULTS["hw"]) & (df["region"] == "FR") & (df["devices"] == 2048)].iloc[0]
    assert row["days"] == pytest.approx(est.wall_clock_days)
    assert row["co2e_t"] == pytest.approx(est.co2e_t)
    assert len(at.get("plotly_chart")) == 2


def test_compare_shows_each_combinations_range_wider_where_the_priors_are_less_sure(app):
    """Days P10/P90 are the Planner's Monte Carlo range (the part's own throughput spread): an H100 run,
    whose priors 110 rows fit, has a narrower range than a Gaudi 3 run, whose priors are H100's."""
    from simulator.footprint.uncertainty import monte_carlo

    at = app.switch_page(COMPARE).run()
    at.multiselect(key="cmp_hw").set_value(["nvidia-h100-sxm-80gb", "intel-gaudi3"]).run()
    at.text_input(key="cmp_price").input("2").run()
    df = table(at, "cmp_table")
    assert not at.exception and (df["reason"] == "").all()
    assert (df["days_p10"] < df["days"]).all() and (df["days"] < df["days_p90"]).all()
    width = (df["days_p90"] / df["days_p10"]).groupby(df["accelerator"]).median()
    assert width["intel-gaudi3"] > width["nvidia-h100-sxm-80gb"] * 1.1
    row = df[(df["accelerator"] == "nvidia-h100-sxm-80gb") & (df["region"] == "FR") & (df["devices"] == 2048)].iloc[0]
    est = estimate(scenario_from_dict(scenario_data(
        {**DEFAULTS, "n_dev": 2048, "region": "FR", "plan": "auto", "pue": 0.0})))
    band = monte_carlo(est.basis, 4000).summary()
    assert row["days_p10"] == pytest.approx(band["p10"]["wall_clock_days"])
    assert row["days_p90"] == pytest.approx(band["p90"]["wall_clock_days"])


def test_compare_device_counts_change_the_table(app):
    at = app.switch_page(COMPARE).run()
    days_before = table(at, "cmp_table").groupby("devices")["days"].mean()
    at.multiselect(key="cmp_devices").set_value([1024]).run()
    df = table(at, "cmp_table")
    assert not at.exception
    assert set(df["devices"]) == {1024}
    assert df["days"].mean() > days_before.max()


def test_compare_fallback_price_brings_in_unpriced_accelerators(app):
    at = app.switch_page(COMPARE).run()
    at.multiselect(key="cmp_hw").set_value(["nvidia-h100-sxm-80gb", "nvidia-b200"]).run()
    assert [w.value for w in at.warning if "nvidia-b200" in w.value]  # no price: left out, and said so
    assert set(table(at, "cmp_table")["accelerator"]) == {"nvidia-h100-sxm-80gb"}
    at.text_input(key="cmp_price").input("5").run()
    df = table(at, "cmp_table")
    b200 = df[df["accelerator"] == "nvidia-b200"]
    assert len(b200) == 9 and np.allclose(b200["usd_per_device_hour"], 5.0)
    assert not any("nvidia-b200" in w.value for w in at.warning)


def test_compare_combination_that_cannot_fit_shows_its_reason(app):
    at = app.switch_page(COMPARE).run()
    at.multiselect(key="cmp_hw").set_value(["nvidia-h100-sxm-80gb", "amd-mi300x"]).run()
    at.multiselect(key="cmp_devices").set_value([8, 2048]).run()
    assert not at.exception
    df = table(at, "cmp_table")
    h100_8 = df[(df["accelerator"] == "nvidia-h100-sxm-80gb") & (df["devices"] == 8)]
    assert len(h100_8) == 3 and h100_8["reason"].str.contains("no plan fits in 80 GiB").all()
    assert h100_8["days"].isna().all()
    assert (df[df["devices"] == 2048]["reason"] == "").all()
    assert any("cannot run" in w.value for w in at.warning)


def test_compare_invalid_planner_input_is_a_message(app):
    app.session_state["batch_m"] = "0"  # the planner's global batch
    at = app.switch_page(COMPARE).run()
    assert not at.exception
    assert any("Global batch (million tokens): 0 is out of range; expected a number above 0" in m for m in errors(at))
    assert not at.dataframe and any(w.value.startswith("No figures while Global batch") for w in at.warning)


# ---------------------------------------------------------------- Parallelism explorer page


def test_explorer_default_render_matches_the_library(app, default_estimate):
    at = app.switch_page(EXPLORER).run()
    assert not at.exception and not at.error
    top = table(at, "exp_table")
    assert len(top) == 10
    assert {k: top.iloc[0][k] for k in ("tp", "pp", "cp", "dp", "zero")} == \
        {k: default_estimate.plan[k] for k in ("tp", "pp", "cp", "dp", "zero")}
    assert top["step_time_s"].is_monotonic_increasing
    reasons = table(at, "exp_reasons")
    assert dict(zip(reasons["reason"], reasons["plans"])) == default_estimate.search.rejected
    assert len(at.get("plotly_chart")) == 5  # memory, scatter, Pareto, rejected, manual plan memory


def test_explorer_objective_changes_the_ranking(app):
    at = app.switch_page(EXPLORER).run()
    by_time = table(at, "exp_table")
    at.selectbox(key="exp_objective").select("memory").run()
    by_memory = table(at, "exp_table")
    assert not at.exception
    assert by_memory["memory_gb"].is_monotonic_increasing
    assert by_memory.iloc[0]["memory_gb"] < by_time.iloc[0]["memory_gb"]
    assert by_memory.iloc[0]["step_time_s"] > by_time.iloc[0]["step_time_s"]
    at.selectbox(key="exp_plan").select(2).run()
    assert "Plan #3" in " ".join(c.value for c in at.caption)


def test_explorer_invalid_manual_plan_shows_plan_problems(app):
    at = app.switch_page(EXPLORER).run()
    at.text_input(key="exp_tp").input("3").run()
    assert not at.exception
    msgs = errors(at)
    assert "parallelism.tp: 3 does not divide the 64 attention heads" in msgs
    assert any(m.startswith(r"parallelism: tp\*pp\*cp\*dp = 3\*4\*1\*341 = 4092") for m in msgs)


def test_explorer_manual_plan_that_does_not_fit_says_by_how_much(app):
    at = app.switch_page(EXPLORER).run()
    at.text_input(key="exp_pp").input("1").run()
    at.selectbox(key="exp_zero").select(0).run()
    at.selectbox(key="exp_recompute").select("none").run()
    assert not at.exception
    assert any("does not fit" in m and "over by" in m for m in errors(at))


def test_explorer_search_failure_is_a_message(app):
    app.session_state["n_dev"] = "2"  # the planner's device count: a 70B model cannot fit
    at = app.switch_page(EXPLORER).run()
    assert not at.exception
    assert any("no plan fits" in m for m in errors(at))
    assert at.text_input(key="exp_tp")  # the manual checker is still there


# ---------------------------------------------------------------- pure builders


def arr(value) -> np.ndarray:
    """A trace array from fig.to_dict(): Plotly 7 writes numeric arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return out.reshape(value["shape"]) if "shape" in value else out
    return np.asarray(value)


def _combos():
    return pd.DataFrame({
        "accelerator": ["a", "a", "b", "b", "c"], "region": ["FR", "SE", "FR", "SE", "FR"],
        "devices": [8, 8, 16, 16, 8], "days": [10.0, 10.0, 5.0, 5.0, np.nan],
        "cost_usd": [100.0, 100.0, 300.0, 300.0, np.nan], "energy_mwh": [1.0, 1.0, 2.0, 2.0, np.nan],
        "co2e_t": [3.0, 1.0, 6.0, 2.0, np.nan]})


def test_pareto_front_keeps_non_dominated_rows():
    df = pd.DataFrame({"x": [1, 2, 3, 2, 4], "y": [5, 3, 4, 6, 1]})
    front = cc.pareto_front(df, "x", "y")
    assert list(zip(front["x"], front["y"])) == [(1, 5), (2, 3), (4, 1)]


def test_cost_time_scatter_overlays_a_step_front():
    fig = cc.cost_time_scatter(_combos()).to_dict()
    *points, front = fig["data"]
    assert {t["type"] for t in points} == {"scatter"}
    assert [t["name"] for t in points] == ["a", "b", "FR", "SE"]  # accelerators ("c" failed), region symbols
    assert list(arr(points[0]["x"])) == [10.0, 10.0] and points[0]["marker"]["symbol"] == ["circle", "square"]
    assert front["name"] == "Pareto front" and front["line"]["shape"] == "hv"
    assert list(arr(front["x"])) == [5.0, 10.0] and list(arr(front["y"])) == [300.0, 100.0]
    assert fig["layout"]["xaxis"]["type"] == "log" and fig["layout"]["yaxis"]["type"] == "log"


def test_tradeoff_views_pick_their_axes():
    fig = cc.tradeoff_scatter(_combos(), *cc.VIEWS["emissions vs cost"]).to_dict()
    front = fig["data"][-1]
    assert fig["layout"]["xaxis"]["title"]["text"] == "Cost (USD)"
    assert list(arr(front["x"])) == [100.0] and list(arr(front["y"])) == [1.0]  # (100 $, 1 t) beats the rest


def test_co2_by_region_sums_and_colours():
    fig = cc.co2_by_region(_combos()).to_dict()
    bars = fig["data"]
    assert {t["type"] for t in bars} == {"bar"}
    assert sum(arr(t["y"]).sum() for t in bars) == pytest.approx(12.0)
    colours = cc.accelerator_colors(["a", "b", "c"])
    assert {t["name"]: t["marker"]["color"] for t in bars} == {"a": colours["a"], "b": colours["b"]}


def test_downsample_keeps_the_marked_points():
    assert list(cc.downsample(10, [3], limit=20)) == list(range(10))
    idx = cc.downsample(10_000, [7, 9_999], limit=500)
    assert len(idx) == 500 and {7, 9_999} <= set(idx) and len(set(idx)) == 500


def test_plan_charts_from_a_search_result(default_estimate):
    res = default_estimate.search
    df = cc.plans_frame(res)
    assert len(df) == len(res) and df["memory_gb"].max() <= capacity_gb(load_catalog().accelerator("nvidia-h100-sxm-80gb"))
    top = cc.plans_frame(res, res.order("time")[:5])
    fig = cc.plan_scatter(df, "energy", 80.0, highlight=top).to_dict()
    assert [t["name"] for t in fig["data"]] == ["feasible plans", "top plans"]
    assert len(arr(fig["data"][0]["x"])) == len(res)
    assert np.allclose(arr(fig["data"][0]["marker"]["color"]), df["energy_mj"])
    front = cc.plans_frame(res, res.pareto())
    fig = cc.pareto_chart(df, front).to_dict()
    assert fig["data"][0]["type"] == "scattergl" and fig["data"][1]["line"]["shape"] == "hv"
    assert np.allclose(arr(fig["data"][1]["x"]), np.sort(res.step_time_s[res.pareto()]))


def test_rejected_bar_and_plan_label():
    fig = cc.rejected_bar({"too big": 5, "bad tp": 12}).to_dict()
    assert list(fig["data"][0]["y"]) == ["too big", "bad tp"] and list(arr(fig["data"][0]["x"])) == [5, 12]
    plan = {"tp": 4, "pp": 2, "cp": 1, "dp": 64, "ep": 1, "zero": 1, "recompute": "none", "microbatch": 2,
            "interleave": 4}
    assert cc.plan_label(plan) == "tp4 pp2 cp1 dp64 zero1 none mb2 v4"


def test_explorer_searches_lora_plans_when_the_planner_is_on_lora(app):
    app.session_state["ft"] = "lora"
    at = app.switch_page(EXPLORER).run()
    assert not at.exception and not at.error
    lora = estimate(scenario_from_dict(scenario_data({**DEFAULTS, "ft": "lora", "plan": "auto"})))
    top = table(at, "exp_table")
    assert {k: top.iloc[0][k] for k in ("tp", "pp", "dp", "zero")} == {k: lora.plan[k] for k in ("tp", "pp", "dp", "zero")}
    assert top.iloc[0]["step_time_s"] == pytest.approx(lora.step_time_s, rel=1e-6)
    assert any("LoRA fine-tuning (rank" in c.value for c in at.caption)
