"""Generated reference documents: docs/scenario-keys.md and docs/glossary.md.

The scenario-key reference is read from the pydantic schema (`Scenario` and its sections: type,
default, bounds and the field's `description`); the glossary from the typed figures of `Estimate`
(simulator/result.py: each `Value` carries its one-line meaning) and the hand-written terms of
`simulator.glossary_terms`. tests/test_reference_docs.py fails when the committed files differ from
what these functions give, so edit the sources, then regenerate:

    python -m simulator.reference_docs          # writes both files
    python -m simulator.reference_docs --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from simulator import glossary_terms as terms
from simulator.execution.plan import Plan
from simulator.footprint.uncertainty import HEADLINES
from simulator.result import Estimate, Value
from simulator.scenario import Scenario, _toml_value
from simulator.workloads.project import KINDS, SUMMED_KEYS

DOCS = Path(__file__).resolve().parents[1] / "docs"
REGENERATE = "python -m simulator.reference_docs"
BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="), (annotated_types.Lt, "lt", "<"),
          (annotated_types.Le, "le", "<="))
JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
SCENARIO_INTRO = (
    "A scenario is a TOML file (`trainsim estimate FILE`, `simulator.load_scenario(path)`); `--set "
    "section.key=value` overrides any key below. `[model]` and `[cluster]` are always required, `[training]` "
    "too except in a serving scenario. Unknown keys are errors and numbers are strict: `64.0`, `\"64\"` and "
    "`true` are not a device count, and `inf` and `nan` are refused everywhere. A default of *unset* means "
    "the simulator chooses or derives the value, as the description says. The contracts around the file are "
    "in docs/design.md section 4; `examples/` has complete scenarios.")


def _cell(text: str) -> str:
    """Text for a markdown table cell (one line, pipes escaped)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float) -> str:
    """1e18 as `1e18`, 10000000 as `10,000,000`, 5.0 as `5`."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    mantissa, _, exponent = f"{value:g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def _type_name(tp: Any) -> str:
    """A field's type in words: `int`, `float or str`, `list of str`, `table` (a section)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_type_name(a) for a in args if a is not type(None)))
    if origin is Literal:
        return " or ".join(dict.fromkeys(type(a).__name__ for a in args))
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"table of {_type_name(args[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "table"
    return getattr(tp, "__name__", str(tp))


def _choices(tp: Any) -> list[str]:
    """The choices of a Literal type (or an optional one); none for a type that also takes other values."""
    if typing.get_origin(tp) is Literal:
        return [str(a) for a in typing.get_args(tp)]
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and all(typing.get_origin(a) is Literal for a in args):
        return [c for a in args for c in _choices(a)]
    return []


def _bounds(field: FieldInfo) -> str:
    """`> 0, <= 10,000,000`, `one of: bf16, fp8`, `at most 200 characters`."""
    out = [f"{sign} {_number(getattr(m, attr))}" for m in field.metadata for kind, attr, sign in BOUNDS
           if isinstance(m, kind)]
    out += ["not empty" if m.min_length == 1 else f"at least {m.min_length} characters"
            for m in field.metadata if isinstance(m, annotated_types.MinLen)]
    out += [f"at most {m.max_length} characters" for m in field.metadata if isinstance(m, annotated_types.MaxLen)]
    choices = _choices(field.annotation)
    if choices:
        out.append("one of: " + ", ".join(f"`{c}`" for c in choices))
    return ", ".join(out)


def _default(field: FieldInfo) -> str:
    """`required`, `unset` (None: chosen or derived, see the description), `absent` (an optional
    section), `defaults` (a section of defaults), or the default as TOML."""
    if field.is_required():
        return "required"
    if field.default is None:
        return "absent" if _section_model(field) else "unset"
    if isinstance(field.default, BaseModel):
        return "defaults"
    return f"`{_toml_value(field.default)}`"


def _section_model(field: FieldInfo) -> type[BaseModel] | None:
    """The section model of a `Scenario` field (None for a plain key such as `name`)."""
    args = typing.get_args(field.annotation) or (field.annotation,)
    return next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)


def _sentence(text: str) -> str:
    """A description as a sentence: capitalised, one line, ending with a full stop."""
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def scenario_sections() -> list[tuple[str, FieldInfo, type[BaseModel]]]:
    """(name, `Scenario` field, section model) for every section of a scenario, in schema order."""
    return [(name, f, model) for name, f in Scenario.model_fields.items() if (model := _section_model(f))]


def scenario_keys_markdown() -> str:
    """docs/scenario-keys.md: every key of every section of the scenario schema."""
    banner = (f"*Generated from the pydantic schema (simulator/scenario.py, simulator/scenario_sections.py) by "
              f"`{REGENERATE}`; edit the fields' descriptions there, not this file.*")
    head = ["# Scenario keys", "", banner, "", SCENARIO_INTRO, "", "## Top level", "", ""]
    top = [[f"`{name}`" if not _section_model(f) else f"`[{name}]`", _type_name(f.annotation), _default(f),
             _bounds(f) if not _section_model(f) else "", f.description or ""]
           for name, f in Scenario.model_fields.items()]
    parts = ["\n".join(head) + _table(["key", "type", "default", "bounds", "description"], top)]
    for name, f, model in scenario_sections():
        intro = " ".join(inspect.cleandoc(model.__doc__).split()) if model.__doc__ else _sentence(f.description or "")
        rows = [[f"`{key}`", _type_name(kf.annotation), _default(kf), _bounds(kf), kf.description or ""]
                for key, kf in model.model_fields.items()]
        parts.append(f"## `[{name}]`\n\n{intro}\n\n" + _table(["key", "type", "default", "bounds", "description"],
                                                                 rows))
    return "\n\n".join(parts) + "\n"


def estimate_figures() -> list[tuple[str, Value]]:
    """The typed figures of `Estimate`, in declaration order."""
    return [(key, v) for key, v in vars(Estimate).items() if isinstance(v, Value)]


def _json_type(value: Value) -> str:
    """A figure's JSON type from its `Value[...]` parameter: `number`, `string or null`, ..."""
    (arg,) = typing.get_args(value.__orig_class__)  # type: ignore[attr-defined]
    name = arg.__forward_arg__ if isinstance(arg, typing.ForwardRef) else getattr(arg, "__name__", str(arg))
    return " or ".join(JSON_TYPES.get(p.strip(), "null" if p.strip() == "None" else p.strip())
                       for p in name.split("|"))


def _figure_tables() -> str:
    """The top-level figures, a table per group of `glossary_terms.GROUPS`."""
    out: list[str] = []
    rows: list[list[str]] = []
    for key, value in estimate_figures():
        if key in terms.GROUPS:
            if rows:
                out.append(_table(["key", "type", "given", "meaning"], rows))
            out.append(f"### {terms.GROUPS[key]}")
            rows = []
        rows.append([f"`{key}`", _json_type(value), "some" if value.optional else "always", value.__doc__ or ""])
    out.append(_table(["key", "type", "given", "meaning"], rows))
    structured = [[f"`{k}`", t, meaning] for k, (t, meaning) in terms.STRUCTURED.items()]
    out += ["### Structured keys", _table(["key", "type", "meaning"], structured)]
    return "\n\n".join(out)


def _concepts() -> str:
    """The explanatory paragraphs, with the tables of what the source strings can say."""
    out = ["## Concepts"]
    for title, text in terms.CONCEPTS.items():
        out += [f"### {title}", " ".join(text.split())]
        if title.startswith("Where the step time"):
            out.append(_table(["`efficiency_source`", "meaning"],
                              [[f"`{k}`", v] for k, v in terms.EFFICIENCY_SOURCES.items()]))
            out.append(_table(["`power_source`", "meaning"], [[f"`{k}`", v] for k, v in terms.POWER_SOURCES.items()]))
    return "\n\n".join(out)


def _keyed(mapping: dict[str, str]) -> list[list[str]]:
    """Table rows of a key -> meaning mapping."""
    return [[f"`{k}`", v] for k, v in mapping.items()]


def _project() -> str:
    """`trainsim project -f json`: top level, stage keys and totals."""
    docs = {key: value.__doc__ or "" for key, value in estimate_figures()}
    stage = {**terms.STAGE, "kind": f"{terms.STAGE['kind']}: " + ", ".join(KINDS)}
    stage_rows = _keyed(stage) + [[f"`{k}`", f"the run's: {docs[k]}"] for k in ("model", "accelerator", "devices",
                                                                               "region")]
    stage_rows += [[f"`{k}`", f"one run's `{k}` x repeat: {docs[k]}"] for k in SUMMED_KEYS]
    totals = [[f"`{k}`", f"the stages' `{k}` added up"] for k in SUMMED_KEYS]
    return "\n\n".join([
        "## Project output",
        terms.TEXT["project"],
        "### Top level", _table(["key", "meaning"], _keyed(terms.PROJECT)),
        "### Stage keys", _table(["key", "meaning"], stage_rows),
        "### `totals`", _table(["key", "meaning"], totals),
    ])


def glossary_markdown() -> str:
    """docs/glossary.md: every output key of an estimate (and a project), with the concepts behind them."""
    plan_keys = [f.name for f in fields(Plan)]
    plan = [[f"`{k}`", terms.PLAN.get(k, "")] for k in plan_keys] + [
        [f"`{k}`", v] for k, v in terms.PLAN.items() if k not in plan_keys]
    bands = [[f"`{k}`", f"the percentile of the top-level `{k}`"] for k in HEADLINES]
    return "\n\n".join([
        "# Glossary of the outputs",
        (f"*Generated from the typed figures of `Estimate` (simulator/result.py) and simulator/glossary_terms.py "
         f"by `{REGENERATE}`; edit those, not this file.*"),
        terms.TEXT["intro"],
        _concepts(),
        "## Top-level keys",
        _figure_tables(),
        "## `plan`",
        terms.TEXT["plan"],
        _table(["key", "meaning"], plan),
        "## `breakdown`",
        terms.TEXT["breakdown"],
        "### Row fields", _table(["field", "meaning"], _keyed(terms.BREAKDOWN_FIELDS)),
        "### Components", _table(["component", "meaning"], _keyed(terms.COMPONENTS)),
        "## `assumptions`",
        terms.TEXT["assumptions"],
        "## `warnings`",
        terms.TEXT["warnings"],
        "## Uncertainty bands: `p10`, `p50`, `p90`",
        terms.TEXT["bands"],
        _table(["key", "meaning"], bands),
        _project(),
    ]) + "\n"


def documents() -> dict[Path, str]:
    """Each generated file and its text."""
    return {DOCS / "scenario-keys.md": scenario_keys_markdown(), DOCS / "glossary.md": glossary_markdown()}


def main(argv: list[str] | None = None) -> int:
    """Write the documents (`--check`: only say which are out of date, exit 1 if any)."""
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = []
    for path, text in documents().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current != text:
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        print(f"{'out of date' if check and current != text else 'wrote' if current != text else 'up to date'}: "
              f"{path}", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
