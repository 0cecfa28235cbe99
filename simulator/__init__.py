"""trainsim simulator: from a scenario to FLOPs, time, device-hours, dollars, MWh and CO2e.

Public API (docs/design.md section 4): `Scenario`, `load_scenario`, `estimate`, `Estimate`, `ModelSpec`.
Nothing is loaded at import time.
"""

from simulator.errors import CatalogError, InfeasiblePlanError, ScenarioError, TrainsimError
from simulator.estimate import Estimate, estimate
from simulator.model.shapes import PRESETS, ModelSpec
from simulator.scenario import Scenario, load_scenario, scenario_from_dict

__all__ = [
    "PRESETS",
    "CatalogError",
    "Estimate",
    "InfeasiblePlanError",
    "ModelSpec",
    "Scenario",
    "ScenarioError",
    "TrainsimError",
    "estimate",
    "load_scenario",
    "scenario_from_dict",
]
