"""estimate(): contract keys, hand-computed chains, invariants and infeasible plans."""

import math
from pathlib import Path

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from hardware_catalog import load_catalog
from simulator import InfeasiblePlanError, ScenarioError, estimate, load_scenario, scenario_from_dict
from simulator.estimate import CONTRACT_KEYS
from simulator.system.perf_params import perf_params_for
from simulator.footprint.reliability import young_daly

EXAMPLES = [p for p in sorted((Path(__file__).parents[2] / "examples").glob("*.toml")) if not p.name.startswith("project-")]
CAT = load_catalog(use_env=False)


def base(**over):
    d = {
        "model": {"preset": "llama3-8b"},
        "training": {"tokens": 1e12, "global_batch_tokens": 4 * 1024 * 1024},
        "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 256},
        "datacenter": {"region": "US", "pue": 1.2},
    }
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v}
    return scenario_from_dict(d)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_have_all_contract_keys_finite(path):
    d = estimate(load_scenario(path), CAT).to_dict()
    for key in CONTRACT_KEYS:
        assert key in d, key
    for key in CONTRACT_KEYS[:-2]:
        assert isinstance(d[key], (int, float)) and math.isfinite(d[key]), (key, d[key])
    assert {"tp", "pp", "cp", "ep", "dp", "microbatch", "zero", "recompute"} <= set(d["plan"])
    assert d["breakdown"] and all({"component", "seconds", "energy_kwh", "cost_usd"} <= set(r) for r in d["breakdown"])


def test_hand_computed_chain_h100():
    """Throughput, device-hours, energy and cost of a fixed plan, recomputed by hand from the
    performance model's step time and the catalog."""
    sc = base(parallelism={"tp": 2, "pp": 1, "zero": 1, "recompute": "none"},
              reliability={"failures_per_device_hour": 0.0}, pricing={"usd_per_device_hour": 3.0})
    e = estimate(sc, CAT)
    h100 = CAT.accelerator("nvidia-h100-sxm-80gb")
    n_matmul = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336) + 128256 * 4096
    flops_per_token = 6 * n_matmul + 12 * 32 * 4096 * 8192
    assert e.model_flops_per_token == flops_per_token
    assert e.step_time_s == pytest.approx(sum(r["seconds"] for r in e.breakdown) / (1e12 / (4 * 1024 * 1024)))
    tokens_per_s = 4 * 1024 * 1024 / e.step_time_s
    assert e.tokens_per_s == pytest.approx(tokens_per_s)
    assert e.mfu == pytest.approx(tokens_per_s * flops_per_token / (256 * 989.4e12))
    # no recomputation; the causal FlashAttention kernel runs half of the attention term (HFU)
    executed_per_token = 6 * n_matmul + 12 * 32 * 4096 * 8192 / 2
    assert e.hardware_tflops_per_device == pytest.approx(tokens_per_s * executed_per_token / 256 / 1e12)
    hours = 1e12 / tokens_per_s / 3600
    assert e.device_hours == pytest.approx(256 * hours)
    assert e.cost_usd == pytest.approx(256 * hours * 3.0)
    tflops = tokens_per_s * executed_per_token / 256 / 1e12
    power = min(700, 90 + (700 - 90) / (989.4 * h100.efficiency.hfu_at_tdp.value) * tflops)
    # network: 256 x 400 Gb/s links, a 2-tier fat tree of 64-port switches: 768 ports, 12 switches of
    # 747 W, 8.5 W of optics per port; storage: 9.77 TB per device at 1,300 W per PB
    network_w = (12 * 747 + 768 * 8.5) / 256
    storage_w = 9.77 / 1e3 * 1300
    it_kwh = 256 * (power + h100.node.host_power_w_per_device.value + network_w + storage_w) * hours / 1e3
    assert e.energy_it_mwh == pytest.approx(it_kwh / 1e3)
    assert e.energy_mwh == pytest.approx(1.2 * it_kwh / 1e3)
    ci = CAT.region("US").carbon_intensity_kg_per_kwh.value
    assert e.co2e_t == pytest.approx(1.2 * it_kwh * ci / 1e3)


def test_efficiency_mfu_is_refused_and_says_what_to_use():
    """The MFU override is gone: the step time comes from the performance model."""
    with pytest.raises(ScenarioError, match=r"efficiency\.mfu: no longer an input") as info:
        base(efficiency={"mfu": 0.5})
    msg = str(info.value)
    assert "[efficiency] perf" in msg and "training.device_hours" in msg
    assert "Value error" not in msg and "efficiency: efficiency." not in msg


def test_efficiency_source_names_what_set_the_step_time(tmp_path):
    from simulator.system.perf_params import perf_params_for

    prior = perf_params_for(CAT.accelerator("nvidia-h100-sxm-80gb")).source
    e = estimate(base(), CAT)
    assert e.efficiency_source == f"performance model: {prior}"
    assert e.power_source == "catalog prior (nvidia-h100-sxm-80gb)"
    e = estimate(base(efficiency={"perf": {"flash_attn_eff": 0.35}}), CAT)
    assert e.efficiency_source.startswith("scenario efficiency.perf (flash_attn_eff)")
    prof = tmp_path / "h100.toml"
    prof.write_text('accelerator = "nvidia-h100-sxm-80gb"\nsource = "test profile"\nidle_w = 100.0\n'
                    'dynamic_w_per_tflops = 0.6\n[perf]\nmem_bw_eff = 0.8\n')
    e = estimate(base(efficiency={"profile": str(prof)}), CAT)
    assert e.efficiency_source == f"calibration profile {prof} over performance model: {prior}"
    assert e.power_source == f"calibration profile {prof}"
    e = estimate(base(training={"device_hours": 1e5}), CAT)
    assert e.efficiency_source == "training.device_hours"
    assert e.device_hours == pytest.approx(1e5)


def test_old_profile_with_top_level_mfu_loads_and_the_mfu_is_not_used(tmp_path):
    """Profiles written before the performance model carried `mfu`: it loads, moved to quality as
    information, with a note; the step time is the same as without it."""
    from simulator.system.efficiency import load_profile

    text = ('accelerator = "nvidia-h100-sxm-80gb"\nsource = "old profile"\nidle_w = 100.0\n'
            'dynamic_w_per_tflops = 0.6\n[perf]\nmem_bw_eff = 0.8\n')
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text("mfu = 0.05\n" + text)
    new.write_text(text)
    prof = load_profile(old)
    assert prof.quality["best_measured_mfu"] == 0.05
    assert "information only" in prof.notes and not hasattr(prof, "mfu")
    a = estimate(base(efficiency={"profile": str(old)}), CAT)
    b = estimate(base(efficiency={"profile": str(new)}), CAT)
    assert a.step_time_s == b.step_time_s and a.mfu == b.mfu


def test_tdp_convention_reproduces_llama65b_table15():
    """Touvron et al. 2023 Table 15: 1,022,362 GPU-h x 400 W x PUE 1.1 = 449 MWh; x 0.385 = 173 t."""
    e = estimate(load_scenario(Path(__file__).parents[2] / "examples/llama-65b-reported-hours.toml"), CAT)
    assert e.device_hours == pytest.approx(1_022_362)
    assert e.energy_mwh == pytest.approx(449, rel=0.005)
    assert e.co2e_t == pytest.approx(173, rel=0.005)


def test_breakdown_sums_to_headlines():
    e = estimate(base(), CAT)
    rows = e.breakdown
    assert sum(r["energy_kwh"] for r in rows) == pytest.approx(e.energy_mwh * 1e3)
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(e.cost_usd)
    assert sum(r["seconds"] for r in rows) == pytest.approx(e.wall_clock_days * 86400)
    assert sum(r["co2e_kg"] for r in rows) == pytest.approx((e.co2e_t + e.embodied_co2e_t) * 1e3)


def test_owned_cost_hand_computed():
    sc = base(pricing={"mode": "owned", "electricity_usd_per_kwh": 0.1, "purchase_usd_per_device": 30000,
                       "amortisation_years": 4})
    e = estimate(sc, CAT)
    hours = e.wall_clock_days * 24
    capex = 256 * 30000 * hours / (4 * 8766)
    assert e.cost_usd == pytest.approx(capex + e.energy_mwh * 1e3 * 0.1)


def test_owned_without_electricity_price_is_an_error():
    with pytest.raises(ScenarioError, match="pricing.electricity_usd_per_kwh"):
        estimate(base(pricing={"mode": "owned"}, datacenter={"region": "WORLD"}), CAT)


def test_175b_tp1_pp1_zero0_does_not_fit_and_says_why():
    sc = base(model={"preset": "gpt3-175b"}, cluster={"devices": 1024},
              training={"global_batch_tokens": 3_145_728},
              parallelism={"tp": 1, "pp": 1, "zero": 0})
    with pytest.raises(InfeasiblePlanError, match=r"no plan fits in 80 GiB.*needs [0-9.]+ GB \(over by") as info:
        estimate(sc, CAT)
    assert "weights" in str(info.value) and "optimizer" in str(info.value)


def test_invalid_plan_names_field():
    with pytest.raises(InfeasiblePlanError, match="parallelism.tp: 3 does not divide"):
        estimate(base(parallelism={"tp": 3, "pp": 1}), CAT)


def test_unknown_accelerator_and_region_suggest():
    with pytest.raises(ScenarioError, match="cluster.accelerator.*did you mean.*nvidia-h100-sxm-80gb"):
        estimate(base(cluster={"accelerator": "nvidia-h100-sxm-8gb"}), CAT)
    with pytest.raises(ScenarioError, match="datacenter.region"):
        estimate(base(datacenter={"region": "Atlantis"}), CAT)


def test_goodput_young_daly_hand_computed():
    g = young_daly(16384, 2e-5, 30.0, 300.0)
    mtbf_s = 3600 / (16384 * 2e-5)
    tau = math.sqrt(2 * 30 * mtbf_s)
    assert g.checkpoint_interval_s == pytest.approx(tau)
    assert g.goodput == pytest.approx(1 - 30 / tau - (tau / 2 + 300) / mtbf_s)
    assert 0.85 < g.goodput < 0.95  # ~1 interruption / 3 h at 16k GPUs -> ~90% (Llama 3 sec. 3.3.4)


@settings(max_examples=25, deadline=None)
@given(devices=st.sampled_from([64, 128, 256, 512, 1024]), pue=st.floats(1.0, 2.0),
       ci=st.floats(0.0, 1.0))
def test_invariants(devices, pue, ci):
    e = estimate(base(cluster={"devices": devices},
                      datacenter={"pue": pue, "carbon_intensity_kg_per_kwh": ci}), CAT)
    assert e.energy_mwh == pytest.approx(e.energy_it_mwh * pue)
    assert e.co2e_t == pytest.approx(e.energy_mwh * ci)
    assert e.device_hours == pytest.approx(devices * e.wall_clock_days * 24)
    # HFU counts the causal half the kernel runs: below MFU without recompute, never above 1
    assert 0 < e.goodput <= 1 and 0 < e.hfu < e.mfu < 1
    assert e.memory_gb_per_device <= e.memory_capacity_gb


def test_more_devices_is_faster_not_cheaper_in_flops():
    a, b = estimate(base(cluster={"devices": 128}), CAT), estimate(base(cluster={"devices": 512}), CAT)
    assert b.wall_clock_days < a.wall_clock_days
    assert a.train_flops == b.train_flops


def test_fp8_uses_fp8_peak_for_mfu():
    bf, f8 = estimate(base(), CAT), estimate(base(training={"precision": "fp8"}), CAT)
    assert f8.tokens_per_s > bf.tokens_per_s
    assert f8.mfu == pytest.approx(f8.model_tflops_per_device * 1e12 / 1978.9e12)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_scenario_toml_round_trip(tmp_path, path):
    sc = load_scenario(path)
    p = tmp_path / "rt.toml"
    p.write_text(sc.to_toml())
    assert load_scenario(p) == sc


def test_scenario_toml_round_trip_with_tables_and_lists(tmp_path):
    """Inline tables (efficiency.perf) and string lists (finetune.lora_targets) are written as TOML."""
    sc = base(efficiency={"perf": {"flash_attn_eff": 0.35, "zero3_reuse_params": 1e12}},
              parallelism={"cp_comm": "all_gather"}, finetune={"method": "lora", "lora_targets": ["q", "v"]})
    text = sc.to_toml()
    assert "perf = {flash_attn_eff = 0.35, zero3_reuse_params = 1000000000000.0}" in text
    assert 'lora_targets = ["q", "v"]' in text
    p = tmp_path / "rt.toml"
    p.write_text(text)
    assert load_scenario(p) == sc
    assert "perf" not in base().to_toml()  # the empty default table is left out


def test_trainsim_catalog_env_overlay(tmp_path, monkeypatch):
    src = (Path(__file__).parents[2] / "hardware_catalog/regions/world.toml").read_text()
    (tmp_path / "r.toml").write_text(src.split("[[region]]")[0] + "[[region]]" + src.split("[[region]]")[1].replace(
        'id = "WORLD"', 'id = "my-site"').replace('aliases = ["world", "global"]', "aliases = []").replace(
        "value = 0.445", "value = 0.01"))
    monkeypatch.setenv("TRAINSIM_CATALOG", str(tmp_path))
    e = estimate(base(datacenter={"region": "my-site"}))
    assert e.carbon_intensity_kg_per_kwh == 0.01


def test_efficiency_perf_overrides_the_priors():
    """`[efficiency] perf` sets performance-model parameters by hand. The attention core's time is
    flops / (peak x flash_attn_eff), so on a fixed plan the step time is linear in 1/flash_attn_eff:
    the differences between three values stand in the ratio of the differences of their inverses."""
    plan = {"tp": 8, "pp": 4, "dp": 8, "microbatch": 1, "zero": 1, "recompute": "selective", "interleave": 1}
    steps = [estimate(base(parallelism=plan, efficiency={"perf": {"flash_attn_eff": e}}), CAT).step_time_s
             for e in (0.3, 0.45, 0.6)]
    assert steps[0] > steps[1] > steps[2]
    assert (steps[0] - steps[1]) / (steps[1] - steps[2]) == pytest.approx((1 / 0.3 - 1 / 0.45) / (1 / 0.45 - 1 / 0.6))
    prior = perf_params_for(CAT.accelerator(base().cluster.accelerator)).flash_attn_eff
    with_prior = estimate(base(parallelism=plan, efficiency={"perf": {"flash_attn_eff": prior}}), CAT).step_time_s
    assert estimate(base(parallelism=plan), CAT).step_time_s == pytest.approx(with_prior)  # the catalog's prior


@pytest.mark.parametrize("perf, message", [
    ({"flash_eff": 0.5}, r"efficiency.perf.flash_eff: unknown performance parameter \(known: .*flash_attn_eff"),
    ({"gemm_eff_max": 1.4}, r"efficiency.perf.gemm_eff_max: expected a fraction in \(0, 1\], got 1.4"),
    ({"scaleout_latency_s": -1e-6}, r"efficiency.perf.scaleout_latency_s: expected a positive number"),
])
def test_efficiency_perf_bad_keys_and_values_name_the_field(perf, message):
    with pytest.raises(ScenarioError, match=message) as info:
        base(efficiency={"perf": perf})
    assert "Value error" not in str(info.value) and "efficiency: efficiency." not in str(info.value)


def test_every_figure_is_a_typed_attribute():
    """Issue 14: `Estimate` has no __getattr__; every key an estimate gives is a declared, typed
    `Value`, so a new figure without its declaration fails here."""
    from simulator.result import Estimate, Value

    declared = {k for k, v in vars(Estimate).items() if isinstance(v, Value)}
    assert "__getattr__" not in vars(Estimate)
    for path in sorted(Path(__file__).parents[2].joinpath("examples").glob("*.toml")):
        if path.name.startswith("project"):
            continue
        est = estimate(load_scenario(path), CAT)
        assert set(est.values) <= declared, (path.name, set(est.values) - declared)
        assert est.mfu == est.values["mfu"] and (est.workload is None) == ("workload" not in est.values)
    with pytest.raises(AttributeError, match="this estimate has no mfu"):
        Estimate({}, {}, []).mfu
