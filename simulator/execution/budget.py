"""Compute-optimal model for a dollar or deadline budget, timed by the performance model.

A scaling-law fit turns a compute budget C into a compute-optimal (N, D) (`scaling.plan_for_budget`,
C = 6 N D). A dollar or deadline budget is not a compute budget: the compute it buys depends on the
throughput the cluster reaches on the model it trains, which depends on N. So C is solved for: the C
whose compute-optimal run, estimated by `estimate()` (plan search, performance model, goodput) on the
given cluster, costs `usd` (its `cost_usd`) or finishes in `deadline_days` (its `wall_clock_days`).
The figures reported are those of that estimate, so `trainsim estimate` of the same scenario
(`BudgetRun.scenario`) reproduces them exactly.

Two steps. (1) Brent's method (`scipy.optimize.brentq`) in log C, bracketed by the devices' dense
peak (an upper bound of the compute any plan reaches) and successive quarters of it, to within
`ALLOCATION_RTOL` in log C (about that relative gap to the budget) where it can: the measure is
not smooth in C, because the model shape (`ModelSpec.from_params`, a fine grid) and the best plan
change with N, and the step time moves a few percent between neighbouring shapes. (2) The model
shape found is kept and the tokens are scaled to fill the budget exactly: with the shape, plan and
goodput fixed, time and cost are proportional to tokens. D / N then departs from the fit's optimum
by at most those few percent, where the loss is flat (`plan.loss` is the fit's loss at that N, D).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy.optimize import brentq

from hardware_catalog import Catalog, load_catalog
from simulator.errors import InfeasiblePlanError, ScenarioError
from simulator.estimate import Estimate, estimate
from simulator.model.scaling import (
    FLOPS_PER_PARAM_TOKEN,
    BudgetPlan,
    ScalingFit,
    get_fit,
    plan_for_budget,
)
from simulator.scenario import scenario_from_dict

ALLOCATION_RTOL = 1e-3  # step (1): tolerance in log C of the compute-optimal run before tokens fill the budget
MAX_STEPS = 40
OVER_BUDGET = 50.0  # log(measure / budget) given to a model that does not fit: far over any budget


@dataclass(frozen=True)
class BudgetRun:
    """A compute-optimal allocation within a budget and the estimate of its training run."""

    plan: BudgetPlan  # the allocation (flops = 6 N D, params N, tokens D, the fit's loss there)
    scenario: dict[str, Any]  # what was estimated (a scenario mapping: `scenario_from_dict`)
    estimate: Estimate
    budget_used: float  # the estimate's cost (or days) / the budget (1 up to rounding)
    optimal_tokens: float  # the fit's compute-optimal D for this N (D / optimal_tokens - 1: the departure)


def budget_scenario(n_params: float, n_tokens: float, accelerator: str, devices: int,
                    usd_per_device_hour: float | None = None, precision: str = "bf16") -> dict[str, Any]:
    """The scenario of a budget run: a `ModelSpec.from_params(N)` shape trained on D tokens, everything
    else the scenario defaults (global batch, plan search, reliability, region)."""
    sc: dict[str, Any] = {
        "name": f"budget-{n_params / 1e9:.3g}b",
        "model": {"params": n_params},
        "training": {"tokens": n_tokens, "precision": precision},
        "cluster": {"accelerator": accelerator, "devices": devices},
    }
    if usd_per_device_hour is not None:
        sc["pricing"] = {"usd_per_device_hour": usd_per_device_hour}
    return sc


def _check_budget(usd: float | None, deadline_days: float | None,
                  usd_per_device_hour: float | None) -> tuple[float, str]:
    """(the budget, its name): exactly one positive budget; a dollar budget needs a price."""
    if (usd is None) == (deadline_days is None):
        raise ScenarioError("budget: give exactly one of usd or deadline_days")
    budget = usd if usd is not None else deadline_days
    what = "usd" if usd is not None else "deadline_days"
    if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
        raise ScenarioError(f"{what}: expected a positive number, got {budget}")
    if usd is not None and not (usd_per_device_hour is not None and usd_per_device_hour > 0):
        raise ScenarioError(f"usd_per_device_hour: a positive price is required for a dollar budget, "
                            f"got {usd_per_device_hour}")
    return budget, what


def plan_within_budget(fit: ScalingFit | str, *, accelerator: str, devices: int, usd: float | None = None,
                       deadline_days: float | None = None, usd_per_device_hour: float | None = None,
                       precision: str = "bf16", catalog: Catalog | None = None) -> BudgetRun:
    """The compute-optimal run of `fit` that costs `usd` or takes `deadline_days` on `devices` x
    `accelerator` (exactly one budget; module docstring). Raises ScenarioError for a bad budget,
    InfeasiblePlanError when even the smallest model tried does not fit."""
    budget, what = _check_budget(usd, deadline_days, usd_per_device_hour)
    fit = get_fit(fit) if isinstance(fit, str) else fit
    cat = catalog or load_catalog()
    acc = cat.accelerator(accelerator)

    def measure(est: Estimate) -> float:
        return est.cost_usd if usd is not None else est.wall_clock_days

    def run(log_c: float) -> tuple[BudgetPlan, dict[str, Any], Estimate]:
        plan = plan_for_budget(fit, flops=math.exp(log_c))
        sc = budget_scenario(plan.n_params, plan.n_tokens, acc.id, devices, usd_per_device_hour, precision)
        return plan, sc, estimate(scenario_from_dict(sc, f"{what} budget"), cat)

    # (1) Bracket log C: the dense peak with no failures buys at least the real compute (hi); quarter
    # it until the run is under budget (lo); then Brent's method in between (scipy.optimize.brentq).
    seconds = (usd / usd_per_device_hour * 3600.0 / devices) if usd is not None else deadline_days * 86400.0
    hi = math.log(seconds * devices * acc.peak_flops(precision))
    runs: dict[float, tuple[float, tuple]] = {}  # log C -> (log(measure / budget), run)
    errors: list[InfeasiblePlanError] = []

    def gap(x: float) -> float:  # log(measure / budget); a model that does not fit counts as over
        try:
            result = run(x)
        except InfeasiblePlanError as exc:
            errors.append(exc)
            return OVER_BUDGET
        runs[x] = (math.log(measure(result[2]) / budget), result)
        return runs[x][0]

    lo = hi
    if gap(hi) > 0:
        for _ in range(MAX_STEPS):
            lo -= math.log(4.0)
            if gap(lo) < 0:
                brentq(gap, lo, hi, xtol=ALLOCATION_RTOL, maxiter=MAX_STEPS, disp=False)
                break
    if not runs:
        if errors:
            raise InfeasiblePlanError(f"budget: no compute-optimal model within {what} = {budget:g} fits on "
                                      f"{devices} x {acc.id}: {errors[-1]}") from None
        raise ScenarioError(f"budget: no solution found for {what} = {budget:g} on {devices} x {acc.id}")
    best = min(runs.values(), key=lambda r: abs(r[0]))
    # (2) Keep the model shape and plan; time and cost are proportional to tokens.
    plan, sc, est = best[1]
    tokens = plan.n_tokens * budget / measure(est)
    final = BudgetPlan(fit=fit.name, flops=FLOPS_PER_PARAM_TOKEN * plan.n_params * tokens, n_params=plan.n_params,
                       n_tokens=tokens, tokens_per_param=tokens / plan.n_params, loss=fit.loss(plan.n_params, tokens))
    sc = budget_scenario(plan.n_params, tokens, acc.id, devices, usd_per_device_hour, precision)
    est = estimate(scenario_from_dict(sc, f"{what} budget"), cat)
    return BudgetRun(final, sc, est, budget_used=measure(est) / budget, optimal_tokens=plan.n_tokens)
