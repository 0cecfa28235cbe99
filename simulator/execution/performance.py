"""The plan and step time of a scenario: the bridge between `estimate()` and the plan search.

The step time comes from the parallelism model (`steptime.step_parts`) for the best plan the
search finds among those the scenario allows; there is no MFU input. The achieved throughput
follows from it (docs/design.md section 2):

    model_flops_per_s_per_device = tokens_per_step * model_flops_per_token / (devices * step_time_s)
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware_catalog.schema import Accelerator
from simulator.system.efficiency import Efficiency
from simulator.model.finetune import FULL, Tuning, executed_flops_per_token, flops_per_token
from simulator.model.shapes import ModelSpec
from simulator.system.perf_params import PerfParams
from simulator.execution.moe_comm import MoeSetup
from simulator.execution.plan import RECOMPUTE, Plan
from simulator.execution.search import SearchResult, search_plans


@dataclass(frozen=True)
class StepTime:
    """One optimizer step as a sum of named parts (seconds), and the throughput it implies."""

    parts_s: dict[str, float]
    model_flops_per_s_per_device: float
    hardware_flops_per_s_per_device: float

    @property
    def step_time_s(self) -> float:
        return sum(self.parts_s.values())


@dataclass(frozen=True)
class Choice:
    plan: Plan
    memory_gb: dict[str, float]
    step: StepTime
    search: SearchResult


def choose_plan(model: ModelSpec, acc: Accelerator, devices: int, batch_seqs: int, precision: str,
                params: PerfParams, eff: Efficiency, fixed: dict, flash: bool = True,
                objective: str = "time", overlap: bool = True,
                rates: tuple[float, float, float] = (0.0, 0.0, 0.0), tuning: Tuning = FULL,
                cp_comm: str = "p2p", stack: str | None = None, moe: MoeSetup = MoeSetup()) -> Choice:
    """Best plan for `objective` among those `fixed` allows, with its step time.

    `rates` = (USD per device-hour, USD per device kWh incl. PUE, W per device drawn over the whole
    wall clock: host, network and storage) price the "cost" objective.
    """
    res = search_plans(model, acc, devices, batch_seqs, precision, params, eff, fixed, flash, overlap=overlap,
                       rates=rates, tuning=tuning, cp_comm=cp_comm, stack=stack, moe=moe)
    i = int(res.order(objective)[0])
    plan = res.grid.plan(i)
    tokens = batch_seqs * model.seq_len
    mfpt = flops_per_token(model, tuning)
    hw_ratio = float(executed_flops_per_token(model, tuning, RECOMPUTE.index(plan.recompute), flash)) / mfpt
    parts = res.parts.row(i)
    model_fps = tokens * mfpt / (devices * float(res.step_time_s[i]))
    return Choice(plan, res.memory.row(i), StepTime(parts, model_fps, model_fps * hw_ratio), res)
