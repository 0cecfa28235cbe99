"""`search(scenario)`: the best plans for a scenario's cluster, each as a full `Estimate`.

The plan search itself (`simulator.execution.search.search_plans`) is vectorised over every candidate; this
module turns the top plans and the time-energy Pareto front into estimates for people and scripts.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware_catalog import Catalog, load_catalog
from simulator.errors import ScenarioError
from simulator.estimate import Estimate, estimate
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
