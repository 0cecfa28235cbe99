"""The claims ledger's schema and loader (`simulator/data/claims.toml`, issue 16).

A strict schema, as for scenarios: unknown keys are errors, `true` is not a number, every claim names
a source that the ledger lists and every scenario gives a source for each of its inputs. A malformed
ledger raises `DataFileError` in one line naming the file, the entry (claim id, source or scenario)
and the key. The ledger's format is described at the top of the packaged file.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hardware_catalog.files import field_path, loads_toml, read_user_text
from simulator.errors import DataFileError, TrainsimError

PACKAGED = "data/claims.toml"
KINDS = ("estimate", "energy_split", "consistency", "arithmetic", "published_ratio", "compute_optimal_tokens",
         "trend")
ROW_GROUPS = ("accelerators", "hosts", "network", "storage", "facility_overhead")
COMMON = {"id", "text", "value", "low", "high", "unit", "source", "kind", "note"}
KIND_KEYS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required keys, optional keys) beyond COMMON
    "estimate": ({"quantity", "scenarios"}, set()),
    "energy_split": ({"scenario", "parts"}, set()),
    "consistency": ({"stated", "count", "days", "per_unit_kwh_per_day", "per_unit_source", "factor"}, set()),
    "arithmetic": ({"models", "bytes_per_param", "tolerance"}, set()),
    "published_ratio": ({"cases"}, set()),
    "compute_optimal_tokens": ({"fits", "budgets"}, set()),
    "trend": ({"data"}, set()),
}
_POS = {"gt": 0, "le": 1e32}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Source(_Strict):
    """A publication a claim or an input comes from."""

    title: str = Field(min_length=1, max_length=500)
    year: int = Field(ge=1900, le=2100)
    url: str | None = Field(default=None, max_length=500)
    verified: bool = True
    note: str = Field(default="", max_length=1000)

    def cite(self) -> str:
        return f"{self.title} ({self.year})" + ("" if self.verified else " [unverified]")


class Input(_Strict):
    """Where one scenario input comes from."""

    source: str
    verified: bool = True
    note: str = Field(default="", max_length=500)


class ScenarioEntry(_Strict):
    """A trainsim scenario made of public facts: `scenario` is the scenario mapping, `inputs` a source per key."""

    name: str = Field(min_length=1, max_length=200)
    scenario: dict[str, Any]
    inputs: dict[str, Input]


class Budget(_Strict):
    name: str
    flop: float = Field(**_POS)
    source: str


class Part(_Strict):
    label: str
    share: float = Field(ge=0, le=100)
    rows: list[Literal[ROW_GROUPS]] = Field(min_length=1)  # type: ignore[valid-type]


class Case(_Strict):
    name: str
    numerator: float = Field(**_POS)
    denominator: float = Field(**_POS)
    source: str
    note: str = ""


class Claim(_Strict):
    """One claim; which keys beyond the common ones it takes depends on `kind` (KIND_KEYS)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    text: str = Field(min_length=1, max_length=500)
    value: float | None = Field(default=None, ge=0, le=1e32)
    low: float | None = Field(default=None, ge=0, le=1e32)
    high: float | None = Field(default=None, ge=0, le=1e32)
    unit: str = Field(min_length=1, max_length=20)
    source: str
    kind: Literal[KINDS]  # type: ignore[valid-type]
    note: str = Field(default="", max_length=1000)
    quantity: str | None = None
    scenarios: list[str] | None = Field(default=None, min_length=1)
    scenario: str | None = None
    parts: list[Part] | None = Field(default=None, min_length=1)
    stated: float | None = Field(default=None, **_POS)
    count: float | None = Field(default=None, **_POS)
    days: float | None = Field(default=None, **_POS)
    per_unit_kwh_per_day: float | None = Field(default=None, **_POS)
    per_unit_source: str | None = None
    factor: float | None = Field(default=None, ge=1, le=1e6)
    models: list[str] | None = Field(default=None, min_length=1)
    bytes_per_param: float | None = Field(default=None, gt=0, le=64)
    tolerance: float | None = Field(default=None, ge=0, le=1e32)
    cases: list[Case] | None = Field(default=None, min_length=1)
    fits: list[str] | None = Field(default=None, min_length=1)
    budgets: list[Budget] | None = Field(default=None, min_length=1)
    data: str | None = None

    @model_validator(mode="after")
    def _kind_keys(self) -> Claim:
        given = {k for k in type(self).model_fields if getattr(self, k) is not None and k not in ("note",)}
        required, optional = KIND_KEYS[self.kind]
        if missing := sorted(required - given):
            raise ValueError(f"key '{missing[0]}': required for kind {self.kind!r}")
        if extra := sorted(given - COMMON - required - optional):
            raise ValueError(f"key '{extra[0]}': does not apply to kind {self.kind!r}")
        numbers = self.value is not None or self.low is not None or self.high is not None
        if self.kind == "energy_split":
            if numbers:
                raise ValueError("key 'value': an energy split's numbers are its parts' shares")
            return self
        if (self.value is None) == (self.low is None and self.high is None):
            raise ValueError("key 'value': give either value or low and high")
        if self.value is None and (self.low is None or self.high is None or self.low > self.high):
            raise ValueError("key 'low': expected low and high with low <= high")
        return self

    @property
    def claimed(self) -> tuple[float, float]:
        """The claim as an interval (a point claim: [value, value]; an energy split: NaN, its parts hold it)."""
        if self.kind == "energy_split":
            return math.nan, math.nan
        return (self.value, self.value) if self.value is not None else (self.low, self.high)  # type: ignore[return-value]


class Ledger(_Strict):
    schema_version: Literal[1]
    sources: dict[str, Source]
    scenarios: dict[str, ScenarioEntry] = {}
    claims: list[Claim] = Field(min_length=1)

    def source(self, sid: str) -> Source:
        return self.sources[sid]


def _entry(data: dict[str, Any], loc: tuple) -> tuple[str, tuple]:
    """(entry description, location inside it) for a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "claims" and isinstance(loc[1], int):
        items = data.get("claims")
        raw = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        cid = raw.get("id") if isinstance(raw, dict) else None
        name = f"claim {cid!r}" if isinstance(cid, str) else f"claims[{loc[1]}]"
        return name, loc[2:]
    if len(loc) >= 2 and loc[0] in ("sources", "scenarios"):
        return f"{loc[0][:-1]} {str(loc[1])!r}", loc[2:]
    return "ledger", loc


def _format(err: ValidationError, data: dict[str, Any], origin: str) -> str:
    e = err.errors()[0]
    entry, inner = _entry(data, tuple(e["loc"]))
    msg = "unknown key" if e["type"] == "extra_forbidden" else "required but missing" if e["type"] == "missing" \
        else e["msg"].removeprefix("Value error, ")
    key = f"key '{field_path(inner)}': " if inner and not msg.startswith("key '") else ""
    return f"{origin}: {entry}: {key}{msg}"


def _leaf_keys(mapping: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in mapping.items():
        path = f"{prefix}{k}"
        out.extend(_leaf_keys(v, path + ".") if isinstance(v, dict) else [path])
    return out


def _check_scenarios(ledger: Ledger, origin: str) -> None:
    """Each scenario is a valid trainsim scenario and each of its inputs has a listed source."""
    from simulator.scenario import scenario_from_dict

    for sid, entry in ledger.scenarios.items():
        where = f"{origin}: scenario {sid!r}"
        try:
            scenario_from_dict(entry.scenario, origin=f"{where}: key 'scenario'")
        except TrainsimError as exc:
            raise DataFileError(str(exc)) from None
        for key in _leaf_keys(entry.scenario):
            if key != "name" and not any(key == k or key.startswith(k + ".") for k in entry.inputs):
                raise DataFileError(f"{where}: key 'inputs': no source for scenario input {key!r}")
        for key, inp in entry.inputs.items():
            if inp.source not in ledger.sources:
                raise DataFileError(f"{where}: key 'inputs.{key}.source': unknown source {inp.source!r}")


def _check_claims(ledger: Ledger, origin: str) -> None:
    """Unique ids; every source and scenario a claim names is in the ledger."""
    seen: set[str] = set()
    for c in ledger.claims:
        where = f"{origin}: claim {c.id!r}"
        if c.id in seen:
            raise DataFileError(f"{where}: key 'id': used twice")
        seen.add(c.id)
        named = [("source", c.source), ("per_unit_source", c.per_unit_source)]
        named += [(f"cases[{i}].source", x.source) for i, x in enumerate(c.cases or [])]
        named += [(f"budgets[{i}].source", x.source) for i, x in enumerate(c.budgets or [])]
        for key, sid in named:
            if sid is not None and sid not in ledger.sources:
                raise DataFileError(f"{where}: key '{key}': unknown source {sid!r}")
        for i, sid in enumerate(c.scenarios or ([c.scenario] if c.scenario else [])):
            if sid not in ledger.scenarios:
                key = f"scenarios[{i}]" if c.scenarios else "scenario"
                raise DataFileError(f"{where}: key '{key}': unknown scenario {sid!r}")


def parse_ledger(data: dict[str, Any], origin: str = "claims.toml") -> Ledger:
    """Validate a parsed ledger mapping; DataFileError (one line: file, entry, key) otherwise."""
    try:
        ledger = Ledger.model_validate(data)
    except ValidationError as exc:
        raise DataFileError(_format(exc, data, origin)) from None
    _check_claims(ledger, origin)
    _check_scenarios(ledger, origin)
    return ledger


def load_ledger(path: str | Path | None = None) -> Ledger:
    """The packaged ledger, or the TOML file at `path` (read as a user file: regular, UTF-8, size-capped)."""
    if path is None:
        text = resources.files("simulator").joinpath(PACKAGED).read_text(encoding="utf-8")
        origin = f"simulator/{PACKAGED}"
    else:
        text, origin = read_user_text(path, "claims ledger", DataFileError), str(path)
    return parse_ledger(loads_toml(text, origin, DataFileError), origin)
