"""Scaling laws: published numbers, hand-computed points and inversion properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq, minimize_scalar

from simulator.model.scaling import (
    EPOCH_2024,
    FITS,
    HOFFMANN_2022,
    KAPLAN_2020,
    BudgetPlan,
    budget_flops,
    get_fit,
    overtrained_plan,
    plan_for_budget,
)

CHINCHILLA_FITS = [HOFFMANN_2022, EPOCH_2024]
ALL_FITS = [HOFFMANN_2022, EPOCH_2024, KAPLAN_2020]


# --- Chinchilla form -------------------------------------------------------------------------

def test_epoch_fit_recovers_chinchilla_at_its_compute():
    # Chinchilla: 70B params, 1.4T tokens, C = 6 * 70e9 * 1.4e12 = 5.88e23 (Hoffmann 2022 Table 1;
    # 5.76e23 is the figure in Table 3). The Epoch refit gives N = 72.2B, D = 1.329T here
    # (+3.2%, -5.1%); the brief asked for within 15%.
    n, d = EPOCH_2024.compute_optimal(5.76e23)
    assert n == pytest.approx(70e9, rel=0.15)
    assert d == pytest.approx(1.4e12, rel=0.15)
    assert n == pytest.approx(7.225e10, rel=1e-3)
    assert d == pytest.approx(1.329e12, rel=1e-3)


def test_hoffmann_rounded_fit_allocates_far_more_tokens_per_param():
    # The rounded published coefficients give N = 32.2B, D = 2.98T (93 tokens/param) at 5.76e23:
    # the inconsistency Besiroglu et al. 2024 report (sec. 3).
    n, d = HOFFMANN_2022.compute_optimal(5.76e23)
    assert n == pytest.approx(3.219e10, rel=1e-3)
    assert d / n == pytest.approx(92.65, rel=1e-3)


@pytest.mark.parametrize("fit, ratios", [
    (HOFFMANN_2022, [63, 98, 153]),  # shared/reference/simulators.md sec. 6 (Hoffmann, rounded)
    (EPOCH_2024, [20.4, 18.1, 16.1]),  # same source, Epoch refit
])
def test_tokens_per_param_at_1e22_1e24_1e26(fit, ratios):
    # We get 62.6, 97.7, 152.6 (Hoffmann) and 20.37, 18.14, 16.15 (Epoch); tolerance 5%.
    for flops, ratio in zip([1e22, 1e24, 1e26], ratios):
        n, d = fit.compute_optimal(flops)
        assert d / n == pytest.approx(ratio, rel=0.05)


def test_chinchilla_loss_hand_computed():
    # Hoffmann at N=70e9, D=1.4e12 by hand: 406.4 * exp(-0.34 ln 7e10) = 406.4 * exp(-8.49037)
    # = 0.08351; 410.7 * exp(-0.28 ln 1.4e12) = 410.7 * exp(-7.83093) = 0.16313;
    # L = 1.69 + 0.08351 + 0.16313 = 1.93664 (hand rounding, tolerance 1e-4 relative).
    assert HOFFMANN_2022.loss(70e9, 1.4e12) == pytest.approx(1.93664, rel=1e-4)
    # Vectorised: a grid gives the same values as scalar calls.
    n = np.array([1e9, 1e10, 1e11])
    d = np.array([[2e10], [2e11]])
    grid = EPOCH_2024.loss(n, d)
    assert grid.shape == (2, 3)
    assert grid[1, 2] == pytest.approx(EPOCH_2024.loss(1e11, 2e11))


@pytest.mark.parametrize("fit", CHINCHILLA_FITS, ids=lambda f: f.name)
@pytest.mark.parametrize("flops", [1e18, 1e21, 5.76e23, 1e26])
def test_compute_optimal_is_iso_flop_argmin(fit, flops):
    n, d = fit.compute_optimal(flops)
    assert 6 * n * d == pytest.approx(flops, rel=1e-12)
    iso = lambda log_n: fit.loss(math.exp(log_n), flops / (6 * math.exp(log_n)))  # noqa: E731
    res = minimize_scalar(iso, bracket=(math.log(n) - 3, math.log(n) + 3), tol=1e-12)
    assert math.exp(res.x) == pytest.approx(n, rel=1e-3)
    assert fit.loss(n, d) <= res.fun + 1e-12


@pytest.mark.parametrize("fit", CHINCHILLA_FITS, ids=lambda f: f.name)
def test_closed_form_compute_for_loss_matches_brentq(fit):
    # Closed form C = 6 (K / (L - E))^(1/gamma) against a numeric root of L*(C) = target.
    for target in (fit.E + 0.05, 2.5, 3.5):
        f = lambda log_c: fit.loss_at_compute_optimal(math.exp(log_c)) - target  # noqa: E731
        numeric = math.exp(brentq(f, math.log(1e3), math.log(1e40), xtol=1e-13))
        assert fit.compute_for_loss(target) == pytest.approx(numeric, rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(fit=st.sampled_from(ALL_FITS), log10_flops=st.floats(15, 30))
def test_compute_for_loss_inverts_loss_at_compute_optimal(fit, log10_flops):
    flops = 10.0**log10_flops
    assert fit.compute_for_loss(fit.loss_at_compute_optimal(flops)) == pytest.approx(flops, rel=1e-8)


@settings(max_examples=100, deadline=None)
@given(fit=st.sampled_from(CHINCHILLA_FITS), log10_n=st.floats(7, 13), log10_d=st.floats(9, 15))
def test_tokens_for_loss_inverts_loss(fit, log10_n, log10_d):
    n, d = 10.0**log10_n, 10.0**log10_d
    assert fit.tokens_for_loss(n, fit.loss(n, d)) == pytest.approx(d, rel=1e-6)


def test_loss_below_floor_raises():
    with pytest.raises(ValueError, match="irreducible"):
        EPOCH_2024.compute_for_loss(EPOCH_2024.E)
    with pytest.raises(ValueError, match="irreducible"):
        HOFFMANN_2022.compute_for_loss(1.0)
    # 1e9 params cannot beat E + A / N^alpha = 1.8172 + 482.01 / exp(0.3478 * 20.7233)
    # = 1.8172 + 482.01 / 1349.6 = 2.1744 (Epoch), whatever the token count.
    with pytest.raises(ValueError, match="unreachable.*2.1744"):
        EPOCH_2024.tokens_for_loss(1e9, 2.1)
    with pytest.raises(ValueError, match="target_loss"):
        KAPLAN_2020.compute_for_loss(0.0)


# --- Kaplan ----------------------------------------------------------------------------------

def test_kaplan_loss_hand_computed():
    # N=1e9, D=1e10: (6.4e13/1e9)^(0.076/0.103) = exp(0.737864 * 11.06664) = 3520.6;
    # + 1.8e13/1e10 = 1800 -> 5320.6; ^0.103 = exp(0.103 * 8.57935) = 2.4198 (tolerance 1e-4 rel).
    assert KAPLAN_2020.loss(1e9, 1e10) == pytest.approx(2.4198, rel=1e-4)


def test_kaplan_compute_optimal_exponent_and_scale():
    # Kaplan 2020 Table 6 / Fig. 14: N_opt = 1.3e9 (C_min / PF-day)^0.73. Fitted slope over
    # 1e20..1e26 FLOPs: 0.7300 (exactly the published exponent, as implemented).
    flops = np.logspace(20, 26, 25)
    n, d = KAPLAN_2020.compute_optimal(flops)
    slope = np.polyfit(np.log(flops), np.log(n), 1)[0]
    assert slope == pytest.approx(0.73, abs=0.05)
    assert slope == pytest.approx(0.73, abs=1e-9)
    assert KAPLAN_2020.compute_optimal(8.64e19)[0] == pytest.approx(1.3e9)  # 1 PF-day
    np.testing.assert_allclose(6 * n * d, flops, rtol=1e-12)
    # GPT-3's 3.14e23 FLOPs (Brown et al. 2020): Kaplan's frontier says N = 516B, D = 101B.
    n_gpt3, d_gpt3 = KAPLAN_2020.compute_optimal(3.14e23)
    assert n_gpt3 == pytest.approx(5.165e11, rel=1e-3)
    assert d_gpt3 == pytest.approx(1.013e11, rel=1e-3)


def test_kaplan_joint_law_argmin_has_exponent_0_575_not_0_73():
    # Minimising eq. 1.5 along C = 6 N D gives N* ∝ C^(alpha_D / (alpha_N + alpha_D))
    # = 0.103 / 0.179 = 0.5754: the 0.73 comes from L(N, S_min) at the critical batch (Kaplan
    # sec. 6), not from the converged L(N, D). Checked against a numeric minimiser.
    flops = np.logspace(20, 26, 7)
    n, _ = KAPLAN_2020.joint_optimum(flops)
    assert np.polyfit(np.log(flops), np.log(n), 1)[0] == pytest.approx(0.103 / 0.179, rel=1e-9)
    for c, n_star in zip(flops, n):
        iso = lambda log_n: KAPLAN_2020.loss(math.exp(log_n), c / (6 * math.exp(log_n)))  # noqa: E731, B023
        res = minimize_scalar(iso, bracket=(math.log(n_star) - 3, math.log(n_star) + 3), tol=1e-12)
        assert math.exp(res.x) == pytest.approx(n_star, rel=1e-3)


# --- registry and budgets --------------------------------------------------------------------

def test_get_fit():
    assert set(FITS) == {"hoffmann2022", "epoch2024", "kaplan2020"}
    assert get_fit("epoch2024") is EPOCH_2024
    with pytest.raises(ValueError, match="epoch2024, hoffmann2022, kaplan2020"):
        get_fit("chinchilla")


def test_dollar_budget_hand_computed():
    # $1M at $2/device-hour = 5e5 device-hours * 3600 s * 4e14 FLOP/s = 7.2e23 FLOPs.
    plan = plan_for_budget("epoch2024", usd=1e6, usd_per_device_hour=2.0, achieved_flops_per_device=4e14)
    assert plan.flops == pytest.approx(7.2e23)
    n, d = EPOCH_2024.compute_optimal(7.2e23)
    assert plan == BudgetPlan("epoch2024", plan.flops, n, d, d / n, EPOCH_2024.loss(n, d))


def test_deadline_budget_hand_computed():
    # 30 days * 86400 s * 1024 devices * 4e14 FLOP/s = 1.0616832e24 FLOPs.
    plan = plan_for_budget(EPOCH_2024, deadline_days=30, n_devices=1024, achieved_flops_per_device=4e14)
    assert plan.flops == pytest.approx(1.0616832e24, rel=1e-12)
    assert plan.tokens_per_param == pytest.approx(18.1, rel=0.02)  # Epoch ratio near 1e24


def test_flops_budget_and_loss():
    plan = plan_for_budget(HOFFMANN_2022, flops=5.76e23)
    assert plan.loss == pytest.approx(HOFFMANN_2022.loss_at_compute_optimal(5.76e23))
    assert plan.n_params * plan.n_tokens * 6 == pytest.approx(5.76e23)


def test_overtrained_plan():
    # 8e9 params at 200 tokens/param: D = 1.6e12, C = 6 * 8e9 * 1.6e12 = 7.68e22.
    plan = overtrained_plan("epoch2024", 8e9, 200)
    assert (plan.n_tokens, plan.flops) == (pytest.approx(1.6e12), pytest.approx(7.68e22))
    assert plan.loss == pytest.approx(EPOCH_2024.loss(8e9, 1.6e12))
    # Same compute spent compute-optimally reaches a lower loss.
    assert plan_for_budget(EPOCH_2024, flops=plan.flops).loss < plan.loss


@pytest.mark.parametrize("kwargs, name", [
    ({}, "exactly one budget"),
    ({"flops": 1e23, "usd": 1e6}, "exactly one budget"),
    ({"flops": -1.0}, "flops"),
    ({"flops": float("nan")}, "flops"),
    ({"flops": True}, "flops"),
    ({"usd": 1e6, "achieved_flops_per_device": 4e14}, "usd_per_device_hour"),
    ({"usd": 0.0, "usd_per_device_hour": 2.0, "achieved_flops_per_device": 4e14}, "usd"),
    ({"usd": 1e6, "usd_per_device_hour": 2.0}, "achieved_flops_per_device"),
    ({"usd": 1e6, "usd_per_device_hour": 2.0, "achieved_flops_per_device": 4e14, "n_devices": 8},
     "n_devices"),
    ({"deadline_days": 30, "achieved_flops_per_device": 4e14}, "n_devices"),
    ({"deadline_days": -30, "n_devices": 8, "achieved_flops_per_device": 4e14}, "deadline_days"),
    ({"deadline_days": 30, "n_devices": 8, "achieved_flops_per_device": "fast"},
     "achieved_flops_per_device"),
    ({"flops": 1e23, "usd_per_device_hour": 2.0}, "usd_per_device_hour"),
])
def test_bad_budgets_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        plan_for_budget(EPOCH_2024, **kwargs)
    with pytest.raises(ValueError, match=name):
        budget_flops(**kwargs)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="n_params"):
        EPOCH_2024.loss(0, 1e12)
    with pytest.raises(ValueError, match="n_tokens"):
        KAPLAN_2020.loss(1e9, [1e12, -1])
    with pytest.raises(ValueError, match="flops"):
        HOFFMANN_2022.compute_optimal(0)
    with pytest.raises(ValueError, match="tokens_per_param"):
        overtrained_plan(EPOCH_2024, 8e9, 0)
    with pytest.raises(ValueError, match="valid choices"):
        plan_for_budget("gpt", flops=1e23)
