"""Whole-project cost: several stages (ablations, pretraining, context extension, post-training,
evaluation, serving), each a scenario, estimated one by one and summed with their breakdown.

A project file is TOML with a `name` and one `[[stage]]` table per stage:

```toml
name = "my-model"

[[stage]]
name = "ablations"
kind = "ablations"          # ablations | pretraining | context_extension | post_training
repeat = 20                 #   | evaluation | serving | other;  repeat: runs of this stage (>= 1)
scenario = "ablation.toml"  # a scenario file, relative to the project file

[[stage]]
name = "pretraining"
kind = "pretraining"
base = "pretrain.toml"      # a scenario file to start from ...
set = ["training.tokens=15e12", "cluster.devices=8192"]   # ... with `--set`-style overrides

[[stage]]
name = "post-training"
kind = "post_training"
[stage.model]               # or the scenario inline: the sections of a scenario file
preset = "llama3-70b"       # (model, training, cluster, parallelism, datacenter, pricing,
[stage.training]            #  efficiency, reliability) under [stage.<section>]
tokens = 50e9
[stage.cluster]
accelerator = "nvidia-h100-sxm-80gb"
devices = 1024
```

Each stage gives exactly one of `scenario`, `base` (optionally with `set`; `set` also works with
`scenario`) or inline sections. Unknown keys are errors.

**Serving** is modelled when the stage's scenario has a `[serving]` section (simulator/workloads/serving.py:
traffic, prompt and output tokens; `months = N` on the stage sets `serving.months`). Post-training
stages can use `[rlhf]` (simulator/workloads/rlhf.py) and `[finetune]` (LoRA). **Evaluation is not modelled**,
nor serving without `[serving]`: such a stage gives its device-hours, `training.device_hours` in its
scenario or `months = N` on the stage (device-hours = `cluster.devices x N x 730.5 h`, i.e. 365.25
days / 12); the time model is then skipped, and energy, CO2e and cost come from those device-hours
at the power the simulator implies from `training.tokens` (training FLOPs per token, about three
times a forward pass, so the implied utilisation and power err high). Serving and evaluation train
nothing, so their `train_flops` count 0 in the project (their per-run estimate keeps the
simulator's figure).

Totals are plain sums over the stages of each stage's one-run figure times `repeat`;
`wall_clock_days` is the sum too, i.e. stages and repeated runs one after another (overlap is not
modelled).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardware_catalog.files import loads_toml, read_user_text
from simulator.errors import ScenarioError, TrainsimError
from simulator.estimate import Estimate, estimate
from simulator.scenario import (
    Scenario,
    _format_error,
    _toml_value,
    load_scenario,
    scenario_from_dict,
)
from simulator.workloads.serving import HOURS_PER_MONTH
from simulator.uploads import scenario_for_upload

Kind = Literal["ablations", "pretraining", "context_extension", "post_training", "evaluation", "serving", "other"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
NON_TRAINING_KINDS = frozenset({"evaluation", "serving"})  # their train_flops count 0 in the project
#: The figures summed over stages (each stage: one run's figure x repeat).
SUMMED_KEYS = ("wall_clock_days", "device_hours", "cost_usd", "energy_mwh", "energy_it_mwh", "co2e_t",
               "embodied_co2e_t", "water_m3", "train_flops")


class StageSpec(BaseModel):
    """One `[[stage]]` table as written (scenario not yet resolved)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    kind: Kind
    repeat: int = Field(default=1, ge=1, le=1_000_000)
    description: str | None = None
    scenario: str | None = Field(default=None, min_length=1)
    base: str | None = Field(default=None, min_length=1)
    set: list[str] | None = None
    months: float | None = Field(default=None, gt=0, le=1200)
    model: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    cluster: dict[str, Any] | None = None
    parallelism: dict[str, Any] | None = None
    finetune: dict[str, Any] | None = None
    serving: dict[str, Any] | None = None
    rlhf: dict[str, Any] | None = None
    datacenter: dict[str, Any] | None = None
    pricing: dict[str, Any] | None = None
    efficiency: dict[str, Any] | None = None
    reliability: dict[str, Any] | None = None


# The scenario sections a stage may write inline (all but [uncertainty]: no Monte Carlo per stage).
SCENARIO_SECTIONS = tuple(f for f in StageSpec.model_fields if f in Scenario.model_fields and f != "name")


class _ProjectHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    name: str | None = Field(default=None, min_length=1)
    description: str | None = None
    stage: list[Any] = Field(default_factory=list)


@dataclass(frozen=True)
class Stage:
    """A resolved stage: its validated scenario and how many runs of it the project makes."""

    name: str
    kind: str
    repeat: int
    scenario: Scenario
    source: str  # the scenario file it came from, or "inline"
    description: str | None = None


@dataclass(frozen=True)
class Project:
    """A validated project: a name and its stages in order. Build it with `load_project`."""

    name: str
    stages: tuple[Stage, ...]
    origin: str = "<project>"
    description: str | None = None

    def to_toml(self) -> str:
        """The project as self-contained TOML: every stage's resolved scenario inline (a stage's
        `months` appears as its `training.device_hours`). Round-trips through `project_from_text`."""
        lines = [f"name = {_toml_value(self.name)}"]
        if self.description:
            lines.append(f"description = {_toml_value(self.description)}")
        for st in self.stages:
            lines += ["", "[[stage]]", f"name = {_toml_value(st.name)}", f"kind = {_toml_value(st.kind)}"]
            if st.repeat != 1:
                lines.append(f"repeat = {st.repeat}")
            if st.description:
                lines.append(f"description = {_toml_value(st.description)}")
            sections = st.scenario.model_dump(include=set(SCENARIO_SECTIONS), exclude_none=True)
            for section in SCENARIO_SECTIONS:
                if sections.get(section):
                    lines.append(f"[stage.{section}]")
                    lines += [f"{k} = {_toml_value(v)}" for k, v in sections[section].items()]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class StageEstimate:
    """One stage's estimate: `estimate` is one run; `values` are the summed figures x repeat."""

    name: str
    kind: str
    repeat: int
    source: str
    estimate: Estimate
    values: dict[str, float]
    notes: list[str] = field(default_factory=list)
    description: str | None = None

    def row(self) -> dict[str, Any]:
        v = self.estimate.values
        return {"name": self.name, "kind": self.kind, "repeat": self.repeat, "model": v["model"],
                "accelerator": v["accelerator"], "devices": v["devices"], "region": v["region"], **self.values}

    def to_dict(self) -> dict[str, Any]:
        return {**self.row(), "source": self.source, "description": self.description, "notes": list(self.notes),
                "run": self.estimate.to_dict()}


@dataclass(frozen=True)
class ProjectEstimate:
    """Per-stage estimates and their totals (`SUMMED_KEYS`), plus the breakdown summed by component."""

    name: str
    stages: tuple[StageEstimate, ...]
    totals: dict[str, float]
    breakdown: list[dict[str, Any]]
    origin: str = "<project>"

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per stage (name, kind, repeat, model, accelerator, devices, region, totals keys)."""
        return [s.row() for s in self.stages]

    def total_row(self) -> dict[str, Any]:
        """The totals as a row shaped like `rows()` (name "total")."""
        return {"name": "total", "kind": "", "repeat": "", "model": "", "accelerator": "", "devices": "",
                "region": "", **self.totals}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: name, `stages` (each with its figures x repeat and the one-run estimate as `run`),
        `totals` and `breakdown` (components summed over stages)."""
        return {"name": self.name, "stages": [s.to_dict() for s in self.stages], "totals": dict(self.totals),
                "breakdown": [dict(b) for b in self.breakdown]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _label(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"stage {index} '{name}'" if isinstance(name, str) and name else f"stage {index}"


def _resolve_path(raw: str, base_dir: Path | None, prefix: str, field_name: str) -> Path:
    if base_dir is None:  # an upload: never read files on the server, absolute paths included
        raise ScenarioError(
            f"{prefix}: {field_name}: '{raw}' is a file path, but an uploaded project cannot bring the files it "
            "refers to: make the stage self-contained (its scenario inline under [stage.model], [stage.training], "
            "[stage.cluster], ...)")
    path = Path(raw) if Path(raw).is_absolute() else base_dir / raw
    if not path.is_file():
        raise ScenarioError(f"{prefix}: {field_name}: scenario file not found: {path}")
    return path


def _stage_scenario(spec: StageSpec, prefix: str, base_dir: Path | None) -> tuple[Scenario, str]:
    inline = {s: getattr(spec, s) for s in SCENARIO_SECTIONS if getattr(spec, s) is not None}
    forms = [f for f, given in (("scenario", spec.scenario is not None), ("base", spec.base is not None),
                                ("inline sections", bool(inline))) if given]
    if not forms:
        raise ScenarioError(f"{prefix}: scenario: required: give scenario = \"file.toml\", base = \"file.toml\" "
                            "with set = [...], or the scenario inline ([stage.model], [stage.training], "
                            "[stage.cluster], ...)")
    if len(forms) > 1:
        raise ScenarioError(f"{prefix}: {forms[0]}: give only one of scenario, base or inline sections "
                            f"(this stage has {' and '.join(forms)})")
    overrides = list(spec.set or [])
    if overrides and inline:
        raise ScenarioError(f"{prefix}: set: only with base = \"file.toml\" or scenario = \"file.toml\"; "
                            "for an inline stage write the values in its sections")
    for j, item in enumerate(overrides):
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(f"{prefix}: set[{j}]: {item!r}: expected key.path=value, e.g. training.tokens=1e12")
    if inline:
        scenario = scenario_from_dict({"name": spec.name, **inline}, prefix)
        if base_dir is None:  # an upload: no key may name a file on the server
            scenario = scenario_for_upload(scenario, prefix)
        return scenario, "inline"
    field_name = "scenario" if spec.scenario is not None else "base"
    path = _resolve_path(spec.scenario or spec.base or "", base_dir, prefix, field_name)
    try:
        return load_scenario(path, overrides), str(path)
    except ScenarioError as exc:
        raise ScenarioError(f"{prefix}: {exc}") from None


def _stage(index: int, raw: Any, origin: str, base_dir: Path | None) -> Stage:
    prefix = f"{origin}: {_label(index, raw)}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{prefix}: expected a [[stage]] table")
    try:
        spec = StageSpec.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError(_format_error(exc, prefix)) from None
    scenario, source = _stage_scenario(spec, prefix, base_dir)
    if spec.months is not None and scenario.serving is not None:  # a modelled serving period
        scenario = scenario.model_copy(update={"serving": scenario.serving.model_copy(update={"months": spec.months})})
    elif spec.months is not None:
        if scenario.training.device_hours is not None:
            raise ScenarioError(f"{prefix}: months: give months or training.device_hours, not both")
        hours = scenario.cluster.devices * spec.months * HOURS_PER_MONTH
        scenario = scenario.model_copy(update={"training": scenario.training.model_copy(update={"device_hours": hours})})
    if spec.kind == "serving" and scenario.serving is None and scenario.training.device_hours is None:
        raise ScenarioError(f"{prefix}: training.device_hours: required for kind = \"serving\" without a [serving] "
                            "section: give [stage.serving] (traffic, prompt and output tokens), or training.device_hours, "
                            "or months = N on the stage (device-hours = cluster.devices x N x 730.5 h)")
    return Stage(spec.name, spec.kind, spec.repeat, scenario, source, spec.description)


def project_from_dict(data: dict[str, Any], origin: str = "<project>", base_dir: str | Path | None = None,
                      default_name: str = "project") -> Project:
    """Validate a parsed project mapping. Stage files are read relative to `base_dir`; with
    `base_dir=None` (an upload) every stage must be inline: no file is read, and an inline
    `efficiency.profile` is refused too. Errors name `origin`, the stage and the field."""
    stages_raw = data.get("stage") if isinstance(data, dict) else None
    if isinstance(stages_raw, dict):
        raise ScenarioError(f"{origin}: stage: expected [[stage]] tables (an array of tables), got one [stage] table")
    try:
        header = _ProjectHeader.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_error(exc, origin)) from None
    if not header.stage:
        raise ScenarioError(f"{origin}: stage: no stages: add [[stage]] tables (each with name, kind and a scenario)")
    folder = Path(base_dir) if base_dir is not None else None
    stages: list[Stage] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(header.stage, start=1):
        name = raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str) and name in seen:
            raise ScenarioError(f"{origin}: {_label(i, raw)}: name: duplicate stage name (stage {seen[name]} "
                                "has it too); stage names must be unique")
        stage = _stage(i, raw, origin, folder)
        seen[stage.name] = i
        stages.append(stage)
    return Project(header.name or default_name, tuple(stages), origin, header.description)


def project_from_text(text: str, origin: str = "<project>", base_dir: str | Path | None = None) -> Project:
    """Parse and validate project TOML text (e.g. an upload: `base_dir=None`, stages must be inline)."""
    data = loads_toml(text, origin, ScenarioError)
    return project_from_dict(data, origin, base_dir, Path(origin).stem or "project")


def load_project(path: str | Path) -> Project:
    """Read and validate a project TOML file; stage scenario files are relative to its folder."""
    p = Path(path)
    text = read_user_text(p, "project file", ScenarioError)
    return project_from_text(text, str(p), p.parent)


def estimate_project(project: Project, catalog=None, *,
                     estimator: Callable[[Scenario], Estimate] | None = None) -> ProjectEstimate:
    """Estimate every stage (one run each) and sum `SUMMED_KEYS` over stages, x repeat.

    `estimator` replaces `estimate(scenario, catalog)` (the dashboard passes its cached one).
    Errors name the project, the stage and the field.
    """
    if estimator is None:
        from hardware_catalog import load_catalog

        cat = catalog or load_catalog()

        def estimator(sc: Scenario) -> Estimate:
            return estimate(sc, cat)

    results: list[StageEstimate] = []
    components: dict[str, dict[str, Any]] = {}
    for i, stage in enumerate(project.stages, start=1):
        prefix = f"{project.origin}: stage {i} '{stage.name}'"
        if stage.source != "inline":
            prefix += f" ({stage.source})"
        try:
            est = estimator(stage.scenario)
        except TrainsimError as exc:
            raise type(exc)(f"{prefix}: {exc}") from None
        values = {k: _add(0.0, est.values[k], stage.repeat) for k in SUMMED_KEYS}
        notes = list(est.assumptions)
        if stage.kind in NON_TRAINING_KINDS:
            values["train_flops"] = 0.0
            notes.append(f"kind = {stage.kind}: trains nothing, so train_flops counts 0 in the project")
        if stage.kind == "serving" and stage.scenario.serving is None:
            notes.append("serving without a [serving] section is not modelled: energy, CO2e and cost come from the "
                         "given device-hours, at the power implied by training.tokens as tokens served (training "
                         "FLOPs per token: errs high)")
        if stage.repeat > 1:
            notes.append(f"repeat = {stage.repeat}: figures are one run's x {stage.repeat}, runs one after another")
        results.append(StageEstimate(stage.name, stage.kind, stage.repeat, stage.source, est, values, notes,
                                     stage.description))
        for row in est.breakdown:
            acc = components.setdefault(row["component"], {"component": row["component"], "seconds": 0.0,
                                                            "energy_kwh": 0.0, "cost_usd": 0.0, "co2e_kg": 0.0})
            for k in ("seconds", "energy_kwh", "cost_usd", "co2e_kg"):
                acc[k] = _add(acc[k], row[k], stage.repeat)
    totals = {k: _total(s.values[k] for s in results) for k in SUMMED_KEYS}
    return ProjectEstimate(project.name, tuple(results), totals, list(components.values()), project.origin)


def _add(total: float | None, value: float | None, repeat: int) -> float | None:
    """total + value x repeat; None (no price) stays None: a partial sum would read as the whole."""
    return None if total is None or value is None else total + value * repeat


def _total(values) -> float | None:
    out: float | None = 0.0
    for v in values:
        out = _add(out, v, 1)
    return out


__all__ = ["KINDS", "SUMMED_KEYS", "Project", "ProjectEstimate", "Stage", "StageEstimate", "StageSpec",
           "estimate_project", "load_project", "project_from_dict", "project_from_text"]
