"""Monte Carlo uncertainty: consistency with the point estimate, invariants, tornado, CLI keys."""

import json
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hardware_catalog import load_catalog
from simulator import estimate, load_scenario
from simulator.cli import app
from simulator.footprint.uncertainty import (
    HEADLINES,
    Spreads,
    input_ranges,
    monte_carlo,
    neutral,
    propagate,
    tornado,
)

EXAMPLES = Path(__file__).parents[2] / "examples"
CAT = load_catalog(use_env=False)
EST = estimate(load_scenario(EXAMPLES / "llama3-70b-h100.toml"), CAT)


ALL_EXAMPLES = [p for p in sorted(EXAMPLES.glob("*.toml")) if not p.name.startswith("project-")]


def test_serving_monte_carlo_moves_utilisation_not_the_period():
    sc = load_scenario(EXAMPLES / "llama3-70b-serving.toml", ["uncertainty.samples=4000"])
    est = estimate(sc, CAT)
    p10, p50, p90 = (est.uncertainty[q] for q in ("p10", "p50", "p90"))
    assert p10["wall_clock_days"] == p90["wall_clock_days"] == pytest.approx(est.wall_clock_days)  # the period
    assert p10["energy_mwh"] < est.energy_mwh < p90["energy_mwh"]
    assert p50["energy_mwh"] == pytest.approx(est.energy_mwh, rel=0.02)
    assert p50["cost_usd"] == pytest.approx(est.cost_usd, rel=0.02)
    # Half the throughput: the fleet is busy twice as long at a FLOP rate half as high. With the linear
    # power model the energy is idle power x the period + W per FLOP/s x the traffic's FLOPs: unchanged.
    # (exactly so without the TDP cap; with it, full-load power is capped, so the slower fleet uses more)
    half = {**neutral(), "throughput": np.array([0.5])}
    uncapped = replace(est.basis, tdp_w=1e9, active_w=est.basis.idle_w + est.basis.dynamic_w_per_tflops * est.basis.hardware_tflops)
    assert propagate(uncapped, half)["energy_it_mwh"][0] == pytest.approx(propagate(uncapped, neutral())["energy_it_mwh"][0], rel=1e-9)
    assert propagate(est.basis, half)["energy_it_mwh"][0] >= est.energy_it_mwh * (1 - 1e-12)
    assert est.utilisation < 0.5  # (so the fleet still copes at half the throughput)
    hot = propagate(est.basis, {**neutral(), "power": np.array([1.2])})
    # the power multiplier scales the devices' power, not the constant host, network and storage draw
    constant_mwh = sum(b["energy_kwh"] for b in est.breakdown if b["component"] in ("host", "network", "storage")) / 1e3
    assert hot["energy_it_mwh"][0] - est.energy_it_mwh == pytest.approx(0.2 * (est.energy_it_mwh - constant_mwh),
                                                                        rel=1e-9)


def test_rlhf_monte_carlo_p50_matches_the_point_estimate():
    est = estimate(load_scenario(EXAMPLES / "llama3-8b-grpo.toml", ["uncertainty.samples=4000",
                                                                     "uncertainty.failure_rate=0"]), CAT)
    for key in ("wall_clock_days", "energy_mwh", "cost_usd", "co2e_t"):
        assert est.uncertainty["p50"][key] == pytest.approx(est.values[key], rel=0.02), key


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=lambda p: p.stem)
def test_neutral_multipliers_reproduce_the_point_estimate(path):
    est = estimate(load_scenario(path), CAT)
    point = propagate(est.basis, neutral())
    for key in HEADLINES:
        assert point[key][0] == pytest.approx(est.values[key], rel=1e-9), key


def test_p50_matches_point_for_symmetric_inputs():
    """Only the (median-1, symmetric in log) throughput, price and grid spreads: P50 within 1%."""
    u = monte_carlo(EST.basis, 20_000, Spreads(throughput=0.06, power=0.0, failure_rate=0.0, pue=0.0,
                                               carbon_intensity=0.1, price=0.25))
    p50 = u.percentile(50)
    for key in ("wall_clock_days", "device_hours", "cost_usd", "co2e_t"):
        assert p50[key] == pytest.approx(EST.values[key], rel=0.01), key


def test_default_spreads_bracket_the_point():
    s = monte_carlo(EST.basis, 10_000).summary()
    for key in ("wall_clock_days", "cost_usd", "energy_mwh", "co2e_t"):
        assert s["p10"][key] < EST.values[key] < s["p90"][key]
        assert s["p50"][key] == pytest.approx(EST.values[key], rel=0.02)


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(1.2, 4.0), field=st.sampled_from(["throughput", "power", "carbon_intensity", "price"]))
def test_wider_inputs_give_wider_intervals(scale, field):
    base = Spreads()
    wide = replace(base, **{field: getattr(base, field) * scale})
    metric = {"throughput": "wall_clock_days", "power": "energy_mwh", "carbon_intensity": "co2e_t",
              "price": "cost_usd"}[field]
    width = lambda sp: np.subtract(*np.percentile(monte_carlo(EST.basis, 4000, sp, seed=1).samples[metric],
                                                  [90, 10]))
    assert width(wide) > width(base)


def test_tornado_ranks_price_first_for_cloud_cost():
    rows = tornado(EST.basis, "cost_usd")
    assert rows[0]["input"] == "price"
    assert [r["swing"] for r in rows] == sorted((r["swing"] for r in rows), reverse=True)
    assert all(r["low"] <= r["base"] <= r["high"] for r in rows)
    assert next(r for r in rows if r["input"] == "carbon_intensity")["swing"] == 0  # no effect on cloud cost


def test_input_ranges_are_what_the_tornado_sets():
    """Each input's P10-P90 in its own unit (the dashboard names the tornado's bars with them): setting an
    input to its P10 or P90 value gives the tornado's low and high of a figure it alone drives."""
    ranges, b = input_ranges(EST.basis), EST.basis
    assert set(ranges) == {f.name for f in fields(Spreads)}
    assert ranges["price"][0] < b.usd_per_device_hour < ranges["price"][1]
    assert ranges["pue"] == pytest.approx((b.pue - 1.2816 * 0.05, b.pue + 1.2816 * 0.05), abs=1e-4)
    assert ranges["carbon_intensity"][0] * ranges["carbon_intensity"][1] == pytest.approx(
        b.carbon_intensity_kg_per_kwh ** 2)  # lognormal: symmetric in log
    price = next(r for r in tornado(b, "cost_usd") if r["input"] == "price")
    at = lambda usd: float(propagate(replace(b, usd_per_device_hour=usd), neutral())["cost_usd"][0])
    assert (at(ranges["price"][0]), at(ranges["price"][1])) == pytest.approx((price["low"], price["high"]))


def test_bad_sample_count():
    with pytest.raises(ValueError, match="at least 2"):
        monte_carlo(EST.basis, 1)


def test_cli_uncertainty_keys():
    r = CliRunner().invoke(app, ["estimate", str(EXAMPLES / "llama3-70b-h100.toml"), "-f", "json",
                                 "--uncertainty", "2000", "--set", "cluster.devices=8192"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["devices"] == 8192
    for q in ("p10", "p50", "p90"):
        assert set(HEADLINES) <= set(d[q])
    assert d["p10"]["cost_usd"] < d["cost_usd"] < d["p90"]["cost_usd"]
    assert CliRunner().invoke(app, ["estimate", str(EXAMPLES / "llama3-70b-h100.toml"), "--uncertainty", "1"]).exit_code == 2


def test_scenario_uncertainty_section_overrides_spreads(tmp_path):
    sc = load_scenario(EXAMPLES / "llama3-70b-h100.toml", ["uncertainty.samples=3000", "uncertainty.price=0.0",
                                                            "uncertainty.throughput=0.0", "uncertainty.failure_rate=0.0"])
    est = estimate(sc, CAT)
    assert est.uncertainty["p10"]["cost_usd"] == pytest.approx(est.cost_usd, rel=1e-9)
    with pytest.raises(Exception, match="uncertainty.price"):
        load_scenario(EXAMPLES / "llama3-70b-h100.toml", ["uncertainty.price=-1"])
