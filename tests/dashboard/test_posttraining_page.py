"""Post-training (RL) page (AppTest through the entry point) and its chart builder."""

import json

import pytest
from apptools import array, metrics, number

from dashboard.charts_rlhf import PHASES, phases
from dashboard.formats import LABELS, label, money
from dashboard.state import RLHF_DEFAULTS, rlhf_data
from dashboard.widgets import duration
from simulator import estimate, scenario_from_dict
from simulator.errors import InfeasiblePlanError

PAGE = "app_pages/posttraining.py"


@pytest.fixture()
def at(app):
    return app.switch_page(PAGE).run()


def library(**inputs):
    """The library's estimate for the page's defaults with `inputs` changed."""
    return estimate(scenario_from_dict(rlhf_data({**RLHF_DEFAULTS, **inputs})))


def table(at) -> dict[str, dict[str, float]]:
    """The breakdown table by component (the page shows human names, formats.label: keyed back by the
    library's)."""
    key = {label(k): k for k in LABELS}
    return at.dataframe[0].value.set_index("component").rename(index=key).to_dict("index")


def assert_headline(at, v) -> None:
    m = metrics(at)
    assert m["Wall clock"] == duration(v["wall_clock_days"])
    assert m["Device-hours"] == f"{v['device_hours']:,.0f}"
    assert m["Cost"] == money(v["cost_usd"])  # $48.96, $433, $12.3 M: dashboard.formats
    assert m["Energy"] == f"{v['energy_mwh']:,.3f} MWh"
    assert m["Emissions"] == f"{v['co2e_t'] * 1e3:,.1f} kgCO2e"
    assert m["Rollouts: share of time"] == f"{v['rlhf_generation_share']:.1%}"
    assert m["Rollouts: share of FLOPs"] == f"{v['rlhf_generation_flops_share']:.1%}"
    assert m["Sequences"] == f"{v['rlhf_sequences']:,.0f}"


def test_defaults_are_a_grpo_run_of_llama3_8b():
    assert rlhf_data(RLHF_DEFAULTS) == {
        "name": "dashboard-rlhf", "model": {"preset": "llama3-8b"}, "training": {"global_batch_tokens": 2097152},
        "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 64},
        "rlhf": {"algorithm": "grpo", "prompts": 100000, "prompt_tokens": 512, "response_tokens": 1024, "epochs": 1},
        "datacenter": {"region": "us-oregon"}}
    v = library().values
    assert v["workload"] == "rlhf-grpo" and v["rlhf_sequences"] == 800_000  # grpo's default: 8 samples per prompt
    explicit = rlhf_data({**RLHF_DEFAULTS, "rl_samples": 8, "rl_reward": "llama3-8b", "rl_price": 2.5})
    assert explicit["rlhf"]["samples_per_prompt"] == 8 and explicit["rlhf"]["reward_model"] == "llama3-8b"
    assert explicit["pricing"] == {"usd_per_device_hour": 2.5}
    assert estimate(scenario_from_dict({**explicit, "pricing": {}})).values["wall_clock_days"] == \
        pytest.approx(v["wall_clock_days"])  # 8 samples and a reward model of the policy's shape are the defaults


def test_default_render_matches_the_library(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    est = library()
    v = est.values
    assert_headline(at, v)
    assert 0 < v["rlhf_generation_flops_share"] < v["rlhf_generation_share"] < 1  # decoding: much time, few FLOPs
    assert number(metrics(at)["Sequences"]) == 800_000
    p = est.plan
    plan = f"Policy update plan: tp {p['tp']}, pp {p['pp']}, dp {p['dp']}, ZeRO {p['zero']}"
    rollout = next(a for a in est.assumptions if a.startswith("rlhf (grpo): 800,000 sequences of 1536 tokens"))
    assert "rollouts: tp = " in rollout
    assert any(plan in c.value and rollout in c.value for c in at.caption)
    assert at.get_by_key("rl_dl_toml") is not None and at.get_by_key("rl_dl_json") is not None


def test_breakdown_table_is_the_library_breakdown(at):
    est = library()
    v, rows = est.values, table(at)
    assert list(rows) == [r["component"] for r in est.breakdown]
    for r in est.breakdown:
        assert rows[r["component"]]["hours"] == pytest.approx(r["seconds"] / 3600)
        assert rows[r["component"]]["cost (USD)"] == pytest.approx(r["cost_usd"])
    assert rows["rollout_generation"]["hours"] == pytest.approx(v["rlhf_generation_s"] / 3600)
    assert rows["critic_update"]["hours"] == 0  # grpo: no critic
    assert sum(r["cost (USD)"] for r in rows.values()) == pytest.approx(v["cost_usd"])
    assert sum(r["energy (kWh)"] for r in rows.values()) == pytest.approx(v["energy_mwh"] * 1e3)
    assert sum(r["CO2e (kg)"] for r in rows.values()) == pytest.approx((v["co2e_t"] + v["embodied_co2e_t"]) * 1e3)
    assert sum(r["hours"] for r in rows.values()) == pytest.approx(v["wall_clock_days"] * 24)


def test_ppo_changes_the_figures_and_trains_a_critic(at):
    before = metrics(at)
    at.selectbox(key="rl_algo").select("ppo").run()
    assert not at.exception and not at.error
    v = library(rl_algo="ppo").values
    assert v["workload"] == "rlhf-ppo" and v["rlhf_sequences"] == 100_000  # ppo's default: 1 sample per prompt
    assert_headline(at, v)
    after = metrics(at)
    assert after["Sequences"] == "100,000" and after["Wall clock"] != before["Wall clock"]
    assert number(after["Cost"]) < number(before["Cost"])  # 8 times fewer sequences outweigh the critic
    rows = table(at)
    assert rows["critic_update"]["hours"] > 0 and rows["critic_update"]["energy (kWh)"] > 0
    # the critic has the reward model's shape, i.e. the policy's: its update costs what the policy's does
    assert rows["critic_update"]["hours"] == pytest.approx(rows["policy_update"]["hours"])


def test_dpo_has_no_rollouts(at):
    at.selectbox(key="rl_algo").select("dpo").run()
    assert not at.exception and not at.error
    v = library(rl_algo="dpo").values
    assert_headline(at, v)
    assert metrics(at)["Rollouts: share of time"] == "0.0%" and metrics(at)["Sequences"] == "200,000"
    assert table(at)["rollout_generation"]["hours"] == 0
    assert any("no generation (offline preference pairs)" in c.value for c in at.caption)


def test_twice_the_prompts_twice_the_wall_clock(at):
    before = metrics(at)
    at.text_input(key="rl_prompts").input("2e5").run()
    assert not at.exception and not at.error
    v = library(rl_prompts=200_000).values
    assert_headline(at, v)
    after = metrics(at)
    assert number(after["Wall clock"]) == pytest.approx(2 * number(before["Wall clock"]), rel=0.03)
    assert number(after["Cost"]) == pytest.approx(2 * number(before["Cost"]), rel=0.03)
    assert after["Sequences"] == "1,600,000"


def test_bigger_reward_model_slows_scoring(at):
    before = table(at)
    at.selectbox(key="rl_reward").select("llama3-70b").run()
    assert not at.exception and not at.error
    assert_headline(at, library(rl_reward="llama3-70b").values)
    after = table(at)
    assert after["scoring_forward"]["hours"] > 2 * before["scoring_forward"]["hours"]
    assert after["policy_update"]["hours"] == pytest.approx(before["policy_update"]["hours"])


def test_no_plan_fits_shows_the_library_message_beside_the_devices(at):
    at.selectbox(key="rl_model").select("llama3-70b")
    at.text_input(key="rl_dev").input("1").run()
    assert not at.exception
    with pytest.raises(InfeasiblePlanError) as exc:
        library(rl_model="llama3-70b", rl_dev=1)
    message = str(exc.value)
    assert message.startswith("parallelism: no plan fits in 80 GiB") and "over by" in message
    assert [e.value for e in at.error] == [message.replace("*", r"\*")]
    hw_column = next(c for c in at.columns if any(n.key == "rl_dev" for n in c.text_input))
    assert [e.value for e in hw_column.error] == [e.value for e in at.error]  # next to the Devices input
    assert not at.metric and not at.get("plotly_chart")


def test_unpriced_accelerator_gives_all_but_the_cost_until_priced(at):
    """Issue 13 item 12: a missing price no longer blocks time and energy; the cost says n/a."""
    at.selectbox(key="rl_hw").select("nvidia-b200").run()
    assert not at.exception and not at.error
    assert next(m.value for m in at.metric if m.label == "Cost") == "n/a"
    at.text_input(key="rl_price").input("6").run()
    assert not at.exception and not at.error
    v = library(rl_hw="nvidia-b200", rl_price=6.0).values
    assert_headline(at, v)
    assert v["usd_per_device_hour"] == pytest.approx(6.0, rel=0.2)  # the price, plus electricity if billed apart


def test_page_chart_is_the_breakdown_by_phase(at):
    est = library()
    fig = json.loads(at.get_by_key("rl_phases").proto.spec)
    rows = {r["component"]: r for r in est.breakdown}
    time, energy, cost = fig["data"]
    assert list(time["y"]) == [label(p) for p in PHASES]
    assert list(array(time["x"])) == pytest.approx([rows[p]["seconds"] / 3600 for p in PHASES])
    assert list(array(energy["x"])) == pytest.approx([rows[p]["energy_kwh"] for p in PHASES])
    assert list(array(cost["x"])) == pytest.approx([rows[p]["cost_usd"] for p in PHASES])


def test_chart_builder_traces_per_measure():
    breakdown = [{"component": p, "seconds": 3600.0 * (i + 1), "energy_kwh": 10.0 * i, "cost_usd": 100.0 + i,
                  "co2e_kg": 1.0} for i, p in enumerate(PHASES)]
    breakdown.append({"component": "host", "seconds": 0.0, "energy_kwh": 99.0, "cost_usd": 0.0, "co2e_kg": 5.0})
    fig = phases(breakdown).to_dict()
    assert [t["name"] for t in fig["data"]] == ["time (hours)", "device energy (kWh)", "device rental (USD)"]
    assert all(t["type"] == "bar" and t["orientation"] == "h" and list(t["y"]) == [label(p) for p in PHASES]
               for t in fig["data"])
    time, energy, cost = (list(array(t["x"])) for t in fig["data"])
    assert time == [1.0, 2.0, 3.0, 4.0, 5.0]  # hours, not seconds
    assert energy == [0.0, 10.0, 20.0, 30.0, 40.0] and cost == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert [a["text"] for a in fig["layout"]["annotations"]] == ["time (hours)", "device energy (kWh)",
                                                                  "device rental (USD)"]
    with pytest.raises(ValueError, match="not an RLHF breakdown: no rollout_generation"):
        phases([r for r in breakdown if r["component"] != "rollout_generation"])


def test_share_link_restores_the_inputs(app):
    app.query_params["rl_algo"] = "ppo"
    app.query_params["rl_prompts"] = "50000"
    app.query_params["rl_dev"] = "128"
    at = app.switch_page(PAGE).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="rl_algo").value == "ppo"
    assert at.text_input(key="rl_prompts").value == "50000" and at.text_input(key="rl_dev").value == "128"
    v = library(rl_algo="ppo", rl_prompts=50_000, rl_dev=128).values
    assert v["devices"] == 128 and v["rlhf_sequences"] == 50_000
    assert_headline(at, v)


def test_duration_hours_under_two_days():
    assert duration(1.5) == "36.00 hours"
    assert duration(2.0) == "2.00 days"
    assert duration(1234.5) == "1,234.50 days"
