"""The scenario file (docs/design.md section 4): a strict pydantic schema, TOML loading and `--set` overrides.

Only `[model]`, `[training]` and `[cluster]` are required. Unknown keys are errors, so a typo never
becomes a silently ignored setting. Errors name the file and the dotted field.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from hardware_catalog.files import field_path, loads_toml, read_user_text
from simulator.errors import ScenarioError
from simulator.scenario_sections import (
    MAX_COUNT,
    MAX_DEVICES,
    MAX_HOURS,
    MAX_LAYERS,
    MAX_SAMPLES,
    MAX_SEQ_LEN,
    MAX_TOKENS,
    MIN_SAMPLES,
    ClusterSection,
    DatacenterSection,
    EfficiencySection,
    FinetuneSection,
    ModelSection,
    ParallelismSection,
    Precision,
    PricingSection,
    ReliabilitySection,
    RLHFSection,
    ServingSection,
    TrainingSection,
    UncertaintySection,
    _Section,
)

__all__ = [
    "MAX_COUNT", "MAX_DEVICES", "MAX_HOURS", "MAX_LAYERS", "MAX_SAMPLES", "MAX_SEQ_LEN", "MAX_TOKENS", "MIN_SAMPLES",
    "ClusterSection", "DatacenterSection", "EfficiencySection", "FinetuneSection", "ModelSection",
    "ParallelismSection", "Precision", "PricingSection", "RLHFSection", "ReliabilitySection", "Scenario",
    "ServingSection", "TrainingSection", "UncertaintySection", "apply_overrides", "load_scenario",
    "scenario_from_dict",
]


class Scenario(_Section):
    """A training run to estimate. Build it in code or with `load_scenario`."""

    name: str = Field(default="scenario", max_length=200, description="the run's name, repeated in the outputs")
    model: ModelSection = Field(description="the model: a preset, `params` alone, or the full shape")
    training: TrainingSection | None = Field(default=None, description=(
        "what is trained, and at which precision; required, except for a serving scenario"))
    cluster: ClusterSection = Field(description="the accelerators")
    parallelism: ParallelismSection = Field(default=ParallelismSection(), description=(
        "the parallelism plan; keys left out are chosen by the plan search"))
    finetune: FinetuneSection = Field(default=FinetuneSection(), description=(
        "every weight trained, or LoRA adapters on a frozen base"))
    serving: ServingSection | None = Field(default=None, description=(
        "serve the model for a period instead of training it (then no [training] and no [rlhf])"))
    rlhf: RLHFSection | None = Field(default=None, description=(
        "post-training with PPO, GRPO or DPO (then no training.tokens)"))
    datacenter: DatacenterSection = Field(default=DatacenterSection(), description=(
        "where it runs: grid region, PUE, water, power model, hourly carbon profile"))
    pricing: PricingSection = Field(default=PricingSection(), description="rented or owned hardware, and prices")
    efficiency: EfficiencySection = Field(default=EfficiencySection(), description=(
        "where the performance model's parameters come from"))
    reliability: ReliabilitySection = Field(default=ReliabilitySection(), description=(
        "failures, checkpoints and restarts (goodput)"))
    uncertainty: UncertaintySection = Field(default=UncertaintySection(), description=(
        "spreads of the uncertain inputs and Monte Carlo samples (P10-P90 bands)"))

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        self.finetune.tuning(self.model.spec())  # raises ScenarioError on a bad preset/shape or LoRA target
        if self.serving is None:
            if self.training is None:
                raise ScenarioError("training: required but missing")
            if self.training.tokens is None and self.rlhf is None:
                raise ScenarioError("training.tokens: required but missing")
            if self.training.tokens is not None and self.rlhf is not None:
                raise ScenarioError("training.tokens: with [rlhf] the trained tokens follow from rlhf.prompts "
                                    "(x samples x (prompt + response tokens) x epochs): remove training.tokens")
            if self.rlhf is not None and self.finetune.method != "full":
                raise ScenarioError("finetune.method: LoRA inside [rlhf] is not modelled; use method = \"full\"")
        elif self.rlhf is not None:
            raise ScenarioError("rlhf: a serving scenario cannot have [rlhf] (serve and train in separate scenarios)")
        elif self.training is not None:
            raise ScenarioError("serving: a serving scenario has no [training] section (serve and train in "
                                "separate scenarios, or as stages of a project)")
        return self

    def to_toml(self) -> str:
        """The scenario as TOML text (round-trips through `load_scenario`)."""
        lines = [f'name = "{self.name}"']
        for section, values in self.model_dump(exclude={"name"}, exclude_none=True).items():
            if not values:
                continue
            lines.append(f"\n[{section}]")
            for key, value in values.items():
                if value != {}:  # an empty table (e.g. efficiency.perf) is the default
                    lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _format_error(err: ValidationError, origin: str) -> str:
    parts = []
    for e in err.errors():
        loc = field_path(e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        if e["type"] == "missing":
            msg = "required but missing"
        msg = msg.removeprefix("Value error, ")  # our own validators' messages
        parts.append(f"{loc}: {msg}" if loc and not msg.startswith(loc + ".") else msg)
    return f"{origin}: " + "; ".join(parts)


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ScenarioError(f"--set {item!r}: expected key.path=value, e.g. cluster.devices=8192")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words are strings: --set cluster.accelerator=nvidia-b200
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides (values parsed as TOML, bare words as strings) to a copy."""
    out = copy.deepcopy(data)
    for item in overrides:
        path, value = _parse_override(item)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ScenarioError(f"--set {item!r}: '{part}' is not a section")
        node[path[-1]] = value
    return out


def scenario_from_dict(data: dict[str, Any], origin: str = "<scenario>") -> Scenario:
    """Validate a parsed scenario mapping; ScenarioError names `origin` and the field."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_error(exc, origin)) from None
    except ScenarioError as exc:
        raise ScenarioError(f"{origin}: {exc}") from None


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read a scenario TOML file, apply `--set` overrides, validate."""
    p = Path(path)
    data = loads_toml(read_user_text(p, "scenario file", ScenarioError), str(p), ScenarioError)
    return scenario_from_dict(apply_overrides(data, overrides or []), str(p))

