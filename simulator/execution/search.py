"""Plan search: every valid plan for a cluster, evaluated at once with numpy.

enumerate (plan.enumerate_plans) -> rule checks (plan.rule_violations) -> memory per device
(memory.memory_per_device) -> step time parts (steptime.step_parts) -> time, energy and cost per
step -> best plan for an objective and the Pareto front over (time, energy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from hardware_catalog.schema import Accelerator
from simulator.system.efficiency import Efficiency
from simulator.errors import InfeasiblePlanError
from simulator.model.finetune import FULL, Tuning, executed_flops_per_token
from simulator.execution.collectives import tp_reach
from simulator.execution.memory import MemoryBreakdown, capacity_gb, memory_per_device, memory_stack
from simulator.execution.moe_comm import MoeSetup
from simulator.model.shapes import ModelSpec
from simulator.system.perf_params import PerfParams
from simulator.execution.plan import (
    REASONS,
    Plan,
    PlanGrid,
    enumerate_plans,
    plan_problems,
    rule_violations,
)
from simulator.execution.steptime import StepParts, step_parts

OBJECTIVES = ("time", "cost", "energy", "memory")


@dataclass(frozen=True)
class SearchResult:
    """The feasible plans (valid and fitting in memory) with their time, memory and power."""

    grid: PlanGrid
    parts: StepParts
    memory: MemoryBreakdown
    step_time_s: np.ndarray
    hardware_tflops_per_device: np.ndarray
    power_w: np.ndarray
    energy_per_step_j: np.ndarray
    cost_per_step_usd: np.ndarray
    plans_evaluated: int
    seconds: float
    rejected: dict[str, int]

    def __len__(self) -> int:
        return len(self.grid)

    def order(self, objective: str = "time") -> np.ndarray:
        """Indices of the plans, best first, for `objective` (ties broken by time, then memory)."""
        if objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
        key = {"time": self.step_time_s, "cost": self.cost_per_step_usd, "energy": self.energy_per_step_j,
               "memory": self.memory.total_gb}[objective]
        return np.lexsort((self.memory.total_gb, self.step_time_s, np.round(key, 12)))

    def pareto(self) -> np.ndarray:
        """Indices of plans no other plan beats on both step time and energy (fastest first).

        Cloud cost is proportional to step time for a fixed cluster, so this is also the
        cost-energy front. Vectorised: sort by time, keep strict new minima of energy.
        """
        idx = np.lexsort((self.memory.total_gb, self.energy_per_step_j, self.step_time_s))
        e = self.energy_per_step_j[idx]
        prev_min = np.concatenate([[np.inf], np.minimum.accumulate(e)[:-1]])
        return idx[e < prev_min]


def _explain(fixed: dict, model: ModelSpec, devices: int, batch_seqs: int) -> str:
    """Why the scenario's fixed plan fields leave no candidate (the rules they break)."""
    given = {k: v for k, v in fixed.items() if v is not None}
    tp, pp, cp = given.get("tp", 1), given.get("pp", 1), given.get("cp", 1)
    plan = Plan(**{**{k: v for k, v in given.items() if k in Plan.__dataclass_fields__},
                   "dp": given.get("dp") or max(1, devices // (tp * pp * cp))})
    problems = plan_problems(plan, model, devices, batch_seqs)
    return "; ".join(problems) if problems else f"parallelism: no plan for {devices} devices matches {given}"


def search_plans(model: ModelSpec, acc: Accelerator, devices: int, batch_seqs: int, precision: str,
                 params: PerfParams, eff: Efficiency, fixed: dict | None = None,
                 flash: bool = True, max_tp: int | None = None, overlap: bool = True,
                 rates: tuple[float, float, float] = (0.0, 0.0, 0.0), tuning: Tuning = FULL,
                 cp_comm: str = "p2p", stack: str | None = None, moe: MoeSetup = MoeSetup()) -> SearchResult:
    """All valid plans for `devices` that fit in memory, with their step time (module docstring).

    `tuning`: what is trained (finetune.py): every weight, or LoRA adapters on a frozen base.
    `cp_comm`: how context parallelism exchanges K/V ("p2p" ring or "all_gather", steptime.py).
    `moe`: how MoE tokens travel and whether they are dropped (moe_comm.MoeSetup).

    `rates` = (USD per device-hour, USD per kWh of device + host energy incl. PUE, host W per
    device) give each plan a cost per step: rental or amortised capex plus electricity.

    Raises InfeasiblePlanError naming the rules broken and the smallest overflow when none fits.
    """
    t0 = time.perf_counter()
    grid = enumerate_plans(model, devices, max_tp or tp_reach(acc), fixed)
    n_all = len(grid)
    if n_all == 0:
        raise InfeasiblePlanError(_explain(fixed or {}, model, devices, batch_seqs))
    bad = rule_violations(grid, model, batch_seqs)
    ok = ~bad.any(axis=1)
    rejected = {REASONS[j]: int(bad[:, j].sum()) for j in range(len(REASONS)) if bad[:, j].any()}
    if not ok.any():
        raise InfeasiblePlanError(f"parallelism: all {n_all} candidate plans break a rule: " + "; ".join(
            f"{reason} ({count})" for reason, count in rejected.items()))
    grid = grid.take(np.flatnonzero(ok))
    mem = memory_per_device(model, grid, batch_seqs, flash, tuning, cp_comm, stack=memory_stack(acc, stack),
                            precision=precision, moe_padding=moe.padding)
    hbm_gb = capacity_gb(acc)
    fits = mem.total_gb <= hbm_gb
    rejected["does not fit in memory"] = int((~fits).sum())
    if not fits.any():
        i = int(np.argmin(mem.total_gb))
        p, row = grid.plan(i), mem.row(i)
        raise InfeasiblePlanError(
            f"parallelism: no plan fits in {acc.memory.hbm_gb.value:g} GiB ({hbm_gb:.1f} GB) per {acc.id}; the closest, tp={p.tp} pp={p.pp} cp={p.cp} "
            f"dp={p.dp} zero={p.zero} recompute={p.recompute} microbatch={p.microbatch}, needs "
            f"{row['total_gb']:.1f} GB (over by {row['total_gb'] - hbm_gb:.1f} GB: weights {row['weights_gb']:.1f}, "
            f"gradients {row['gradients_gb']:.1f}, optimizer {row['optimizer_gb']:.1f}, activations "
            f"{row['activations_gb']:.1f}); use more devices, a higher parallelism.zero or recompute = \"full\"")
    idx = np.flatnonzero(fits)
    grid = grid.take(idx)
    mem = mem.take(idx)
    parts = step_parts(model, grid, acc, params, precision, batch_seqs, flash, overlap, tuning, cp_comm,
                       stack=memory_stack(acc, stack), moe=moe)
    step = parts.total_s
    tokens = batch_seqs * model.seq_len
    hw_per_token = executed_flops_per_token(model, tuning, grid.rc, causal_skip=flash)
    hw_tflops = tokens * hw_per_token / (devices * step) / 1e12
    power = np.minimum(eff.tdp_w, eff.idle_w + eff.dynamic_w_per_tflops * hw_tflops)
    usd_per_hour, usd_per_kwh, host_w = rates
    energy_j = devices * power * step
    cost = devices * step / 3600 * usd_per_hour + (energy_j + devices * host_w * step) / 3.6e6 * usd_per_kwh
    return SearchResult(grid, parts, mem, step, hw_tflops, power, energy_j, cost, n_all,
                        time.perf_counter() - t0, rejected)
