"""`search(scenario)`: the best plans for a scenario's cluster, each as a full `Estimate`.

The plan search itself (`simulator.execution.search.search_plans`) is vectorised over every candidate; this
module turns the top plans and the time-energy Pareto front into estimates for people and scripts.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware_catalog import Catalog, load_catalog
from simulator.errors import ScenarioError
from simulator.estimate import Estimate, estimate
from simulator.execution.plan import Plan
from simulator.scenario import Scenario


@dataclass(frozen=True)
class SearchReport:
    plans_evaluated: int
    feasible: int
    seconds: float
    rejected: dict[str, int]
    plans: list[Estimate]
    pareto: list[Estimate]

    def to_dict(self) -> dict:
        return {"plans_evaluated": self.plans_evaluated, "feasible": self.feasible, "seconds": self.seconds,
                "rejected": dict(self.rejected), "plans": [e.to_dict() for e in self.plans],
                "pareto": [e.to_dict() for e in self.pareto]}


def _with_plan(scenario: Scenario, plan: dict) -> Scenario:
    par = scenario.parallelism.model_copy(update={k: v for k, v in plan.items() if k in type(scenario.parallelism).model_fields})
    return scenario.model_copy(update={"parallelism": par})


def search(scenario: Scenario, catalog: Catalog | None = None, top: int = 10, objective: str | None = None) -> SearchReport:
    """Top `top` plans by `objective` (default: the scenario's) and the Pareto front, as estimates."""
    cat = catalog or load_catalog()
    if scenario.serving is not None:
        raise ScenarioError("serving: trainsim search ranks training plans; a serving scenario's TP and batch "
                            "search runs inside trainsim estimate (see its tp, batch and devices_needed)")
    if objective is not None:
        scenario = _with_plan(scenario, {"objective": objective})
    best = estimate(scenario, cat)  # validates the scenario and runs the full search once
    res = best.search
    order = res.order(scenario.parallelism.objective)[:top]
    front = res.pareto()[:top]
    to_est = lambda i: estimate(_with_plan(scenario, res.grid.plan(int(i)).to_dict()), cat)
    return SearchReport(res.plans_evaluated, len(res), res.seconds, res.rejected,
                        [to_est(i) for i in order], [to_est(i) for i in front])


@dataclass(frozen=True)
class PlanCheck:
    """A hand-made plan against the framework rules and the device memory."""

    plan: Plan
    problems: list[str]  # rules it breaks (plan.plan_problems); empty when it may run
    memory_gb: dict[str, float] | None  # per device, by part (None when a rule is broken)
    capacity_gb: float

    @property
    def fits(self) -> bool:
        return not self.problems and self.memory_gb is not None and self.memory_gb["total_gb"] <= self.capacity_gb


def check_plan(scenario: Scenario, plan: Plan, catalog: Catalog | None = None) -> PlanCheck:
    """Whether `plan` may run the scenario's training (the rules the search applies, then memory per
    device at the scenario's batch, software stack and fine-tuning): the Explorer's "check a plan"."""
    from simulator.execution.memory import capacity_gb, memory_per_device, memory_stack
    from simulator.execution.plan import PlanGrid, plan_problems
    from simulator.workloads.training import DEFAULT_GLOBAL_BATCH_TOKENS, batch_sequences, moe_setup

    cat = catalog or load_catalog()
    spec, acc = scenario.model.spec(), cat.accelerator(scenario.cluster.accelerator)
    batch_seqs = batch_sequences(scenario.training.global_batch_tokens or DEFAULT_GLOBAL_BATCH_TOKENS, spec.seq_len)
    problems = plan_problems(plan, spec, scenario.cluster.devices, batch_seqs)
    if problems:
        return PlanCheck(plan, problems, None, capacity_gb(acc))
    par = scenario.parallelism
    mem = memory_per_device(spec, PlanGrid.from_plans([plan]), batch_seqs, par.flash_attention,
                            scenario.finetune.tuning(spec), par.cp_comm, stack=memory_stack(acc, par.stack),
                            precision=scenario.training.precision,
                            moe_padding=moe_setup(scenario).padding).row(0)
    return PlanCheck(plan, [], mem, capacity_gb(acc))
