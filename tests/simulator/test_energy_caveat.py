"""Issue 15 item 9: memory-bound phases (RLHF rollouts, serving decode) are priced by the FLOP-only power
curve and err low; the Estimate's assumptions say so, with the phase's power and the TDP bound, so the
CLI and the dashboard show the same caveat."""

from pathlib import Path

import pytest

from simulator import estimate, load_scenario
from simulator.footprint.energy import MEMORY_BOUND_NOTE, memory_bound_note

EXAMPLES = Path(__file__).parents[2] / "examples"


def caveat(est) -> str:
    found = [a for a in est.assumptions if MEMORY_BOUND_NOTE in a]
    assert len(found) == 1, est.assumptions
    return found[0]


def test_the_note_gives_the_power_and_the_tdp_bound():
    note = memory_bound_note("phase", 150.0, 700.0, busy_device_h=1000.0, pue=1.2, facility_mwh=2.0)
    # 1000 device-hours x 550 W x PUE 1.2 = 0.66 MWh more at TDP: +33% of 2 MWh
    assert note.startswith("phase: decode priced at 150 W per device by the FLOP-only power curve")
    assert "errs low" in note and "700 W TDP" in note and "0.66 MWh (+33% of energy_mwh)" in note
    capped = memory_bound_note("phase", 700.0, 700.0, 1000.0, 1.2, 2.0)
    assert "errs low" not in capped and "cannot raise" in capped and MEMORY_BOUND_NOTE in capped


def test_rlhf_rollouts_carry_the_caveat_with_their_bound():
    est = estimate(load_scenario(EXAMPLES / "llama3-8b-grpo.toml"))
    b, v = est.basis, est.values
    gen_w = b.idle_w + b.dynamic_w_per_tflops * v["rlhf_generation_tflops_per_device"]  # ~149 W on an H100
    assert gen_w == pytest.approx(149, abs=1)
    extra = v["devices"] * v["rlhf_generation_s"] / 3600 * (b.tdp_w - gen_w) * b.pue / 1e6
    note = caveat(est)
    assert note.startswith("rlhf rollout_generation: decode priced at 149 W per device") and "errs low" in note
    assert f"{extra:.3g} MWh" in note and f"+{extra / v['energy_mwh']:.0%}" in note


def test_rlhf_under_the_tdp_convention_has_no_low_bias():
    est = estimate(load_scenario(EXAMPLES / "llama3-8b-grpo.toml", ['datacenter.power_model="tdp"']))
    assert "errs low" not in caveat(est) and "cannot raise" in caveat(est)


def test_memory_bound_serving_below_tdp_carries_the_caveat():
    est = estimate(load_scenario(EXAMPLES / "llama3-70b-serving.toml", ["serving.requests_per_s=1",
                                                                       "serving.max_batch=8"]))
    v = est.values
    assert v["decode_memory_bound"] and v["power_w_per_device"] < est.basis.tdp_w
    note = caveat(est)
    assert note.startswith(f"serving power: decode priced at {v['power_w_per_device']:,.0f} W per device")
    assert "errs low" in note
