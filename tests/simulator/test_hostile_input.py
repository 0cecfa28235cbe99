"""Issue 13: hostile and careless input through the library and the CLI. Every refusal is one line
naming the field; nothing runs away; no estimate breaks physics."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hardware_catalog import load_catalog
from simulator import ScenarioError, estimate, scenario_from_dict
from simulator.cli import app
from simulator.errors import InfeasiblePlanError
from simulator.model.flops import attention_flops_per_token, hardware_flops_per_token, model_flops_per_token
from simulator.model.shapes import ModelSpec, get_preset
from simulator.execution.plan import _divisors, enumerate_plans

CAT = load_catalog()
BASE = {"model": {"preset": "llama3-8b"}, "training": {"tokens": 1e12},
        "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 64}}


def with_(section: str, key: str, value) -> dict:
    data = {k: dict(v) for k, v in BASE.items()}
    data.setdefault(section, {})[key] = value
    return data


# --- item 2: no input pins the server ---------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 12, 97, 360, 1024, 8192, 510510, 999_983, 10**7])
def test_divisors_from_the_factorisation(n):
    assert _divisors(n) == [d for d in range(1, n + 1) if n % d == 0]


def test_a_trillion_devices_is_refused_at_once_and_ten_million_answer_fast():
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"cluster\.devices: Input should be less than or equal to 10000000"):
        scenario_from_dict(with_("cluster", "devices", 10**12))
    assert _divisors(10**12)[-1] == 10**12  # 169 divisors, microseconds (a scan of 1..n took hours)
    grid = enumerate_plans(get_preset("llama3-8b"), 10**7, 8)
    assert len(grid) > 0 and time.perf_counter() - t0 < 5


def test_the_search_refuses_to_enumerate_more_than_its_cap(monkeypatch):
    import simulator.execution.plan

    full = len(enumerate_plans(get_preset("llama3-8b"), 8192, 8))
    monkeypatch.setattr(simulator.execution.plan, "MAX_PLANS", full - 1)
    with pytest.raises(InfeasiblePlanError, match=rf"parallelism: {full:,} candidate plans for 8,192 devices, more "
                                                  rf"than the search enumerates \({full - 1:,}\): fix some of"):
        enumerate_plans(get_preset("llama3-8b"), 8192, 8)
    assert len(enumerate_plans(get_preset("llama3-8b"), 8192, 8, {"tp": 8})) < full  # fixing a field shrinks it


# --- item 4: strict, finite numbers ------------------------------------------------------------------
@pytest.mark.parametrize("section, key, value, message", [
    ("training", "tokens", float("inf"), "training.tokens: Input should be a finite number"),
    ("training", "tokens", float("nan"), "training.tokens: Input should be a finite number"),
    ("datacenter", "pue", float("inf"), "datacenter.pue: Input should be a finite number"),
    ("datacenter", "carbon_intensity_kg_per_kwh", float("inf"), "carbon_intensity_kg_per_kwh: Input should be a finite"),
    ("datacenter", "wue_l_per_kwh", float("nan"), "datacenter.wue_l_per_kwh: Input should be a finite number"),
    ("pricing", "usd_per_device_hour", float("inf"), "pricing.usd_per_device_hour: Input should be a finite"),
    ("uncertainty", "throughput", float("inf"), "uncertainty.throughput: Input should be a finite number"),
    ("cluster", "devices", True, "cluster.devices: Input should be a valid integer"),
    ("cluster", "devices", "64", "cluster.devices: Input should be a valid integer"),
    ("cluster", "devices", 64.0, "cluster.devices: Input should be a valid integer"),
    ("training", "tokens", "1e12", "training.tokens: Input should be a valid number"),
    ("training", "global_batch_tokens", 1e30, "training.global_batch_tokens: Input should be less than or equal"),
    ("model", "layers", 10**30, "model.layers: Input should be less than or equal to 100000"),
    ("uncertainty", "samples", 1, "uncertainty: samples: 1 draws give no P10/P90"),
    ("uncertainty", "samples", 10**8, "uncertainty.samples: Input should be less than or equal to 1000000"),
    ("datacenter", "pue", 50.0, "datacenter.pue: Input should be less than or equal to 10"),
])
def test_non_finite_mistyped_and_huge_numbers_are_one_line(section, key, value, message):
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(with_(section, key, value), "s.toml")
    msg = str(info.value)
    assert msg.startswith("s.toml: ") and message in msg and "\n" not in msg


def test_serving_and_rlhf_refuse_infinity():
    serving = {"model": {"preset": "llama3-8b"}, "cluster": BASE["cluster"],
               "serving": {"requests_per_s": float("inf")}}
    with pytest.raises(ScenarioError, match=r"serving\.requests_per_s: Input should be a finite number"):
        scenario_from_dict(serving)
    rlhf = {"model": {"preset": "llama3-8b"}, "training": {}, "cluster": BASE["cluster"],
            "rlhf": {"prompts": float("inf")}}
    with pytest.raises(ScenarioError, match=r"rlhf\.prompts: Input should be a finite number"):
        scenario_from_dict(rlhf)
    nan_reward = {**rlhf, "rlhf": {"prompts": 1e5, "reward_model": float("nan")}}
    with pytest.raises(ScenarioError, match=r"rlhf\.reward_model"):
        scenario_from_dict(nan_reward)


def test_cli_bounds_monte_carlo_and_top():
    r = CliRunner().invoke(app, ["estimate", "examples/llama3-70b-h100.toml", "--uncertainty", "100000000"])
    assert r.exit_code == 2 and "--uncertainty: 0 (none) or 100..1000000 samples" in r.output
    r = CliRunner().invoke(app, ["search", "examples/llama3-70b-h100.toml", "--top", "100000000"])
    assert r.exit_code == 2 and "--top: 1..10000 plans" in r.output


# --- item 5: no silent clamping ---------------------------------------------------------------------
@pytest.mark.parametrize("params", [1e8, 1e13, 1e15])
def test_params_outside_the_shape_grid_are_refused(params):
    with pytest.raises(ScenarioError, match=r"model\.params: .* is outside what a Llama-style shape .* covers "
                                            r"\(1\.38e\+08 to 6\.03e\+12 parameters"):
        ModelSpec.from_params(params)


def test_params_inside_the_grid_say_what_was_built():
    est = estimate(scenario_from_dict({**BASE, "model": {"params": 2.5e8}}), CAT)
    note = next(a for a in est.assumptions if a.startswith("model.params 2.5e+08"))
    assert f"{est.values['params_total']:.3g} parameters" in note


# --- item 3: impossible figures ---------------------------------------------------------------------
def test_hfu_counts_the_half_a_causal_kernel_runs():
    """HFU 1.037 for Llama 3 8B at 131k context on 64 H100 came from counting full attention while
    the time model runs the causal half. Hand count: 6N + 12 L d T / 2 executed."""
    m = get_preset("llama3-8b").with_seq_len(131072)
    executed = hardware_flops_per_token(m, "none", causal_skip=True)
    assert executed == pytest.approx(model_flops_per_token(m) - attention_flops_per_token(m) / 2)
    full = hardware_flops_per_token(m, "full", causal_skip=True)
    assert full == pytest.approx(model_flops_per_token(m) * 4 / 3 - attention_flops_per_token(m) * 4 / 3 / 2)
    est = estimate(scenario_from_dict(with_("model", "seq_len", 131072)), CAT)
    assert est.hfu <= 1 and est.mfu > est.hfu
    assert any(a.startswith(f"mfu {est.mfu:.3f} above hfu") for a in est.assumptions)


@pytest.mark.parametrize("hours", [1e-9, 1.0, 1e3])
def test_reported_hours_below_the_compute_floor_are_refused(hours):
    """MFU 1.6e11 came from device_hours = 1e-9: hours below the peak-FLOP floor are refused."""
    with pytest.raises(ScenarioError, match=r"training\.device_hours: the run's 5\.\d+e\+22 hardware FLOPs need at "
                                            r"least 1\.\d+e\+04 device-hours .*HFU above 1"):
        estimate(scenario_from_dict(with_("training", "device_hours", hours)), CAT)


@settings(max_examples=40, deadline=None)
@given(preset=st.sampled_from(["llama2-7b", "llama3-8b", "llama3-70b", "gpt3-175b", "mixtral-8x7b"]),
       seq=st.sampled_from([1024, 4096, 32768, 131072]),
       acc=st.sampled_from(["nvidia-h100-sxm-80gb", "nvidia-a100-sxm-80gb", "amd-mi300x", "google-tpu-v5p"]),
       devices=st.sampled_from([8, 64, 512, 4096]),
       recompute=st.sampled_from([None, "none", "selective", "mlp", "full", "offload"]),
       dispatcher=st.sampled_from(["alltoall", "deepep"]), capacity=st.sampled_from([None, 1.0, 1.25, 2.0]))
def test_every_estimate_keeps_hfu_at_most_one_and_time_above_the_floor(preset, seq, acc, devices, recompute,
                                                                       dispatcher, capacity):
    training = {"tokens": 1e12} if capacity is None else {"tokens": 1e12, "moe_capacity_factor": capacity}
    data = {"model": {"preset": preset, "seq_len": seq}, "training": training,
            "cluster": {"accelerator": acc, "devices": devices}, "pricing": {"usd_per_device_hour": 2.0},
            "parallelism": {"moe_dispatcher": dispatcher}}
    if recompute:
        data["parallelism"]["recompute"] = recompute
    try:
        est = estimate(scenario_from_dict(data), CAT)
    except InfeasiblePlanError:
        return  # does not fit: a clear refusal is fine
    v = est.values
    assert 0 < v["hfu"] <= 1
    floor_s = v["tokens"] * v["hardware_tflops_per_device"] * 1e12 / v["tokens_per_s"] / (
        CAT.accelerator(acc).peak_flops("bf16"))
    assert v["wall_clock_days"] * 86400 >= floor_s * (1 - 1e-9)


# --- item 12: a missing price does not block time and energy ----------------------------------------
@pytest.mark.parametrize("acc", ["nvidia-b200", "google-tpu-v4", "nvidia-h800-sxm-80gb", "aws-trainium2"])
def test_unpriced_accelerator_gives_every_figure_but_the_cost(acc):
    est = estimate(scenario_from_dict({**BASE, "cluster": {"accelerator": acc, "devices": 64}}), CAT)
    v = est.values
    assert v["cost_usd"] is None and v["usd_per_device_hour"] is None
    assert all(r["cost_usd"] is None for r in est.breakdown)
    assert v["wall_clock_days"] > 0 and v["energy_mwh"] > 0 and v["co2e_t"] > 0
    assert any(a.startswith(f"cost: no price for {acc} in the catalog") for a in est.assumptions)
    assert '"cost_usd": null' in est.to_json()
    priced = estimate(scenario_from_dict({**BASE, "cluster": {"accelerator": acc, "devices": 64},
                                          "pricing": {"usd_per_device_hour": 2.0}}), CAT)
    assert priced.values["wall_clock_days"] == v["wall_clock_days"]  # the price does not move the time
    assert priced.values["cost_usd"] == pytest.approx(2.0 * v["device_hours"])


def test_unpriced_accelerator_has_no_cost_band_either():
    """The P10-P90 bands drop cost too (they held a cost of 0 next to a null cost_usd)."""
    est = estimate(scenario_from_dict({**BASE, "cluster": {"accelerator": "nvidia-b200", "devices": 64},
                                       "uncertainty": {"samples": 200}}), CAT)
    assert set(est.uncertainty) == {"p10", "p50", "p90"}
    for band in est.uncertainty.values():
        assert "cost_usd" not in band and band["wall_clock_days"] > 0


def test_unpriced_stage_leaves_the_project_cost_empty():
    from simulator.workloads.project import estimate_project, project_from_dict

    stage = lambda name, acc: {"name": name, "kind": "pretraining", "model": {"preset": "llama3-8b"},  # noqa: E731
                               "training": {"tokens": 1e11}, "cluster": {"accelerator": acc, "devices": 64}}
    pe = estimate_project(project_from_dict({"stage": [stage("a", "nvidia-h100-sxm-80gb"), stage("b", "nvidia-b200")]},
                                            "p.toml"), CAT)
    assert pe.stages[0].values["cost_usd"] > 0 and pe.stages[1].values["cost_usd"] is None
    assert pe.totals["cost_usd"] is None and pe.totals["energy_mwh"] > 0  # a partial sum would read as the whole


def test_cli_table_shows_na_for_the_missing_cost():
    r = CliRunner().invoke(app, ["estimate", "examples/llama3-70b-h100.toml", "--set",
                                 "cluster.accelerator=nvidia-b200"])
    assert r.exit_code == 0, r.output
    assert any(line.startswith("│ cost ") and "n/a" in line for line in r.stdout.splitlines())


def test_user_text_is_printed_literally():
    """Rich read ':x:' as an emoji and '[bold red]' as markup in names and errors."""
    r = CliRunner().invoke(app, ["estimate", "examples/llama3-70b-h100.toml", "--set",
                                 "cluster.accelerator=[bold red]:x:"])
    assert r.exit_code == 1 and "[bold red]:x:" in r.output and "❌" not in r.output
    r = CliRunner().invoke(app, ["estimate", "--help"])
    assert "[finetune], [rlhf], [serving]" in " ".join(r.output.split())


def test_project_repeat_and_months_are_bounded():
    from simulator.workloads.project import project_from_dict

    stage = {"name": "a", "kind": "pretraining", "model": {"preset": "llama3-8b"}, "training": {"tokens": 1e11},
             "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 64}}
    with pytest.raises(ScenarioError, match=r"p\.toml: stage 1 'a': repeat: Input should be less than or equal to "
                                            r"1000000"):
        project_from_dict({"stage": [{**stage, "repeat": 10**400}]}, "p.toml")
    with pytest.raises(ScenarioError, match=r"stage 1 'a': months: Input should be a finite number"):
        project_from_dict({"stage": [{**stage, "months": float("inf")}]}, "p.toml")


def test_plan_with_a_zero_price_is_refused_for_a_dollar_budget_not_replaced():
    """`plan --usd-per-device-hour 0` silently took the catalog price."""
    r = CliRunner().invoke(app, ["plan", "--usd", "1e6", "--devices", "64", "--accelerator", "nvidia-h100-sxm-80gb",
                                 "--usd-per-device-hour", "0"])
    assert r.exit_code == 2 and "--usd-per-device-hour: expected a finite price above 0 with --usd" in r.output
