"""Serving through estimate(): a [serving] scenario, hand-computed fleet and cost arithmetic,
properties, bad input, and the published benchmarks of simulator/data/serving_benchmarks.csv."""

import math
from statistics import median

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware_catalog import load_catalog
from simulator.errors import InfeasiblePlanError, ScenarioError
from simulator.estimate import CONTRACT_KEYS, estimate
from simulator.execution.inference import prefill_time_s
from simulator.model.shapes import get_preset
from simulator.system.perf_params import PerfParams, perf_params_for
from simulator.scenario import scenario_from_dict
from simulator.workloads.serving import batch_curve
from simulator.validation.runs import load_serving_benchmarks, serving_check

CAT = load_catalog()
H100 = CAT.accelerator("nvidia-h100-sxm-80gb")
LLAMA3_70B = get_preset("llama3-70b")


def serve(devices=16, **serving):
    return scenario_from_dict({"name": "serve", "model": {"preset": "llama3-70b"},
                               "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": devices},
                               "serving": {"prompt_tokens": 1000, "output_tokens": 500, "tp": 8, **serving},
                               "datacenter": {"region": "US", "pue": 1.2},
                               "pricing": {"usd_per_device_hour": 2.0}})


def test_contract_keys_and_hand_computed_cycle():
    est = estimate(serve(batch=32))
    assert all(k in est.to_dict() for k in CONTRACT_KEYS)
    assert est.train_flops == 0 and est.plan["tp"] == 8 and est.plan["dp"] == 2 and est.plan["microbatch"] == 32
    curve = batch_curve(LLAMA3_70B, H100, 8, [32], 1000, 500, perf_params_for(H100))
    # t_cycle = 499 / 500 x t_decode(32, context 1250) + 32 / 500 x t_prefill(1000 tokens, 8 prompts per
    # 8192-token chunk): the prefill emits each sequence's first output token
    t_prefill = prefill_time_s(LLAMA3_70B, H100, 8, 1000, 8, params=perf_params_for(H100)) / 8
    t_cycle = 499 / 500 * float(curve.decode.time_s[0]) + 32 / 500 * t_prefill
    assert est.step_time_s == pytest.approx(t_cycle, rel=1e-12)
    assert est.capacity_tokens_per_s == pytest.approx(2 * 32 / t_cycle, rel=1e-12)
    assert est.tokens_per_s_per_user == pytest.approx(1 / t_cycle, rel=1e-12)
    assert est.ttft_s == pytest.approx(prefill_time_s(LLAMA3_70B, H100, 8, 1000, 1, params=perf_params_for(H100)),
                                       rel=1e-12)
    assert est.decode_memory_bound


def test_fleet_cost_and_energy_hand_computed():
    est = estimate(serve(requests_per_s=2.0, months=1.0))
    hours = 730.5
    assert est.wall_clock_days == pytest.approx(hours / 24)
    assert est.device_hours == pytest.approx(16 * hours)
    assert est.cost_usd == pytest.approx(16 * hours * 2.0, rel=1e-12)  # cloud: rental only
    traffic = 2.0 * 500  # output tokens/s
    assert est.utilisation == pytest.approx(traffic / est.capacity_tokens_per_s, rel=1e-12)
    assert est.output_mtok == pytest.approx(traffic * hours * 3600 / 1e6, rel=1e-12)
    assert est.usd_per_mtok == pytest.approx(est.cost_usd / est.output_mtok, rel=1e-12)
    # Busy share at full-load power, the rest idle, host, network and storage throughout, x PUE
    eff_idle = next(b for b in est.breakdown if b["component"] == "idle_capacity")
    busy = sum(b["energy_kwh"] for b in est.breakdown if b["component"] in ("decode", "tp_comm", "kernel_overhead", "prefill"))
    host = next(b for b in est.breakdown if b["component"] == "host")["energy_kwh"]
    assert busy == pytest.approx(16 * est.power_w_per_device * est.utilisation * hours / 1e3, rel=1e-9)
    # network: 16 x 400 Gb/s links on one 64-port switch (747 W) with 8.5 W of optics per port;
    # storage: 16 x 9.77 TB at 1,300 W per PB; both over the whole period
    network = (747 + 16 * 8.5) * hours / 1e3
    storage = 16 * 9.77 / 1e3 * 1300 * hours / 1e3
    rows = {b["component"]: b["energy_kwh"] for b in est.breakdown}
    assert rows["network"] == pytest.approx(network, rel=1e-9) and rows["storage"] == pytest.approx(storage, rel=1e-9)
    assert est.energy_mwh * 1e3 == pytest.approx((busy + eff_idle["energy_kwh"] + host + network + storage) * 1.2,
                                                 rel=1e-9)
    assert sum(b["cost_usd"] for b in est.breakdown) == pytest.approx(est.cost_usd, rel=1e-9)
    assert est.kgco2e_per_mtok == pytest.approx(est.co2e_t * 1e3 / est.output_mtok, rel=1e-12)


def test_devices_needed_and_too_much_traffic():
    est = estimate(serve(devices=8, requests_per_s=0.1))
    capacity_per_replica = est.capacity_tokens_per_s
    rps = 3 * capacity_per_replica / 500  # three replicas' worth
    with pytest.raises(InfeasiblePlanError, match=r"cluster\.devices: 8 devices .* use at least 24 devices"):
        estimate(serve(devices=8, requests_per_s=rps * 0.999))
    assert estimate(serve(devices=24, requests_per_s=rps * 0.999)).devices_needed == 24
    with pytest.raises(InfeasiblePlanError, match="peak"):
        estimate(serve(devices=24, requests_per_s=rps * 0.999, peak_to_average=1.5))


def test_batch_search_respects_latency_target_and_engine_limit():
    free = estimate(serve(min_tokens_per_s_per_user=0))
    strict = estimate(serve(min_tokens_per_s_per_user=40))
    assert free.batch == 256  # the engine limit (max_batch) binds, memory allows more
    assert strict.tokens_per_s_per_user >= 40 and strict.batch < free.batch
    assert strict.capacity_tokens_per_s < free.capacity_tokens_per_s
    assert estimate(serve(min_tokens_per_s_per_user=0, max_batch=64)).batch == 64


@settings(max_examples=25, deadline=None)
@given(replicas=st.integers(1, 6), rps=st.floats(0.05, 0.5))
def test_more_devices_for_the_same_traffic_cost_more_per_token(replicas, rps):
    small = estimate(serve(devices=8 * replicas, requests_per_s=rps))
    big = estimate(serve(devices=8 * (replicas + 1), requests_per_s=rps))
    assert big.utilisation < small.utilisation
    assert big.usd_per_mtok > small.usd_per_mtok
    assert big.kwh_per_mtok > small.kwh_per_mtok  # idle capacity still draws power


def test_auto_tp_maximises_tokens_per_device():
    def run(devices=32, **serving):
        return estimate(scenario_from_dict({"model": {"preset": "llama3-70b"},
                                            "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": devices},
                                            "serving": {"dtype": "fp8", "kv_dtype": "fp8", **serving}}))
    auto = run()
    fixed = {tp: run(tp=tp) for tp in (1, 2, 4, 8)}  # 70.6 GB of fp8 weights fit on one 80 GB device (barely)
    assert auto.tp in fixed
    assert auto.tokens_per_s_per_device == pytest.approx(max(f.tokens_per_s_per_device for f in fixed.values()))
    assert fixed[1].batch < fixed[2].batch  # one device leaves little room for the KV cache
    assert run(devices=2).tp in (1, 2)  # only groups that divide the fleet
    bf16 = estimate(scenario_from_dict({"model": {"preset": "llama3-70b"}, "cluster": {"accelerator": "nvidia-h100-sxm-80gb",
                                        "devices": 8}, "serving": {}}))
    assert bf16.tp >= 2  # 141 GB of bf16 weights need two devices at least


@pytest.mark.parametrize("serving, match", [
    ({"requests_per_s": 1, "output_tokens_per_day": 1e6}, "not both"),
    ({"tp": 3}, "serving.tp: 3"),
    ({"tp": 16}, "serving.tp: 16"),
    ({"dtype": "int3"}, "serving.dtype: unknown 'int3'"),
    ({"batch": 100000, "tp": 8}, "serving.batch: 100000"),
    ({"prompt_tokens": 0}, "serving.prompt_tokens"),
])
def test_bad_serving_input(serving, match):
    with pytest.raises((ScenarioError, InfeasiblePlanError), match=match):
        estimate(scenario_from_dict({"model": {"preset": "llama3-70b"},
                                     "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 8},
                                     "serving": serving}))


def test_serving_scenario_rejects_training_and_405b_on_one_gpu():
    with pytest.raises(ScenarioError, match="serving: a serving scenario has no \\[training\\]"):
        scenario_from_dict({"model": {"preset": "llama3-70b"}, "training": {"tokens": 1e9},
                            "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 8}, "serving": {}})
    with pytest.raises(InfeasiblePlanError, match="does not fit on the 8 nvidia-a100-sxm-40gb \\(a scale-up domain or node"):
        estimate(scenario_from_dict({"model": {"preset": "llama3-405b"},
                                     "cluster": {"accelerator": "nvidia-a100-sxm-40gb", "devices": 8}, "serving": {}}))


# --- published benchmarks ------------------------------------------------------------------------

ROWS = load_serving_benchmarks()


def test_benchmark_file_has_sources():
    assert len(ROWS) == 16
    assert ROWS["source"].str.len().min() > 40 and ROWS["verification"].notna().all()


def test_per_user_decode_speed_against_nim():
    # NVIDIA NIM 1.8.0, Llama 3.3 70B, 2 x H100, FP8, TP2, concurrency 1: inter-token latency 18.58 ms
    # (5000 in / 500 out) and 18.91 ms (500 / 2000) (serving_benchmarks.csv for the page). The model
    # (bandwidth roofline + NCCL all-reduce latency + kernel gaps) must be memory-bound, faster than
    # the measurement (it is a ceiling: no scheduler, sampling or host overhead) and within 25%.
    for _, row in ROWS[ROWS.metric == "inter_token_latency_ms"].iterrows():
        check = serving_check(row, CAT)
        assert 0.75 * check.reported < check.predicted < check.reported, check


def test_max_throughput_against_tensorrt_llm():
    # TensorRT-LLM 0.14 perf-overview, Llama 3.1 70B on 8 x H100, TP8, FP8 and FP16, 7 ISL/OSL pairs
    # each (total output tokens/s at an infinite request rate). The model is a roofline at the engine's
    # 256-sequence limit: prefill-heavy rows (2048/128, 128/128) within 12%, decode-heavy rows high
    # (up to 2.3x for 128/4096 in FP16: attention-kernel and scheduler losses are not modelled).
    # Median ratio measured when written: 1.34. Inference compute runs at the part's measured
    # maximum achievable matmul (H100: 0.803 of peak, `gemm_kernel_max`), not the training stacks'
    # fitted ceiling.
    ratios = {row["name"]: (c := serving_check(row, CAT)).predicted / c.reported
              for _, row in ROWS[ROWS.metric == "output_tokens_per_s"].iterrows()}
    assert all(0.85 < r < 2.4 for r in ratios.values()), ratios
    assert 1.1 < median(ratios.values()) < 1.6


def test_prefill_heavy_rows_against_tensorrt_llm_within_12pct():
    # Measured when written: FP8 128/128 0.884, FP16 128/128 0.974, FP8 2048/128 1.017, FP16 2048/128 1.074.
    # The FP8 128/128 row was 0.879 while the model charged a decode step for every output token; the
    # prefill emits the first one (serving.py docstring), 1 of 128 here.
    for _, row in ROWS[ROWS.metric == "output_tokens_per_s"].iterrows():
        if row["name"].endswith("/128"):
            c = serving_check(row, CAT)
            assert c.predicted / c.reported == pytest.approx(1.0, abs=0.12), row["name"]


def test_fp8_serves_more_than_bf16():
    fp8 = estimate(serve(dtype="fp8", kv_dtype="fp8", min_tokens_per_s_per_user=0))
    bf16 = estimate(serve(min_tokens_per_s_per_user=0))
    assert fp8.capacity_tokens_per_s > 1.3 * bf16.capacity_tokens_per_s
    assert not math.isnan(fp8.usd_per_mtok) and fp8.usd_per_mtok < bf16.usd_per_mtok


def test_curve_is_vectorised_and_monotone_in_throughput():
    b = np.arange(1, 257)
    c = batch_curve(LLAMA3_70B, H100, 8, b, 1000, 500, PerfParams())
    assert c.tokens_per_s.shape == (256,)
    assert np.all(np.diff(c.tokens_per_s) > 0)  # more sequences in flight, more tokens/s ...
    assert np.all(np.diff(c.tokens_per_s_per_user) < 0)  # ... each user slower


def test_cli_estimate_and_search_on_a_serving_scenario():
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from simulator.cli import app

    example = str(Path(__file__).parents[2] / "examples" / "llama3-70b-serving.toml")
    r = CliRunner().invoke(app, ["estimate", example, "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["workload"] == "serving" and d["usd_per_mtok"] > 0 and all(k in d for k in CONTRACT_KEYS)
    r = CliRunner().invoke(app, ["estimate", example])
    assert r.exit_code == 0 and "cost per million tokens" in r.stdout
    r = CliRunner().invoke(app, ["search", example])
    assert r.exit_code == 1 and "serving: trainsim search ranks training plans" in r.output
    assert "Traceback" not in r.output
