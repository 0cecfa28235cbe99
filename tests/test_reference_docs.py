"""The reference documents cannot drift (issue 14): docs/scenario-keys.md and docs/glossary.md are what
`simulator.reference_docs` generates now; every scenario field has a description; the glossary
defines exactly the keys the examples' outputs have (estimates, projects, Monte Carlo bands, an
hourly carbon profile); docs/design.md exists, the README links to it, and every "docs/design.md
section N" reference in the repository names a section it has.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

ROOT = Path(__file__).parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
GLOSSARY = ROOT / "docs" / "glossary.md"
DESIGN = ROOT / "docs" / "design.md"
PROFILE = ROOT / "simulator" / "data" / "carbon_profile_us-virginia_example.csv"
# one estimate that has what no example has: an hourly carbon profile and Monte Carlo bands
VARIANT = ("llama3-70b-h100.toml", [f'datacenter.carbon_profile="{PROFILE}"', "uncertainty.samples=200"])


@pytest.fixture(scope="module")
def outputs() -> dict[str, list[dict]]:
    """The JSON-ready outputs, as tests/test_golden_examples.py makes them: every estimate (the
    scenario examples, each project stage's run, the variant) and every project."""
    from hardware_catalog import load_catalog
    from simulator import estimate, load_scenario
    from simulator.workloads.project import estimate_project, load_project

    cat = load_catalog()
    estimates, projects = [], []
    for path in EXAMPLES:
        if path.name.startswith("project"):
            projects.append(estimate_project(load_project(path), cat).to_dict())
            estimates += [stage["run"] for stage in projects[-1]["stages"]]
        else:
            estimates.append(estimate(load_scenario(path), cat).to_dict())
    estimates.append(estimate(load_scenario(ROOT / "examples" / VARIANT[0], VARIANT[1]), cat).to_dict())
    assert projects and len(estimates) > len(EXAMPLES)
    return {"estimates": estimates, "projects": projects}


def glossary_keys(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """(## heading, ### heading) -> {key: meaning} of the table rows under it that start with a `key`."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    h2 = h3 = ""
    for line in text.splitlines():
        if line.startswith("## "):
            h2, h3 = line[3:].strip(), ""
        elif line.startswith("### "):
            h3 = line[4:].strip()
        elif m := re.match(r"\| `([^`]+)` \| (.*) \|$", line):
            out.setdefault((h2, h3), {})[m.group(1)] = m.group(2).rsplit(" | ", 1)[-1].strip()
    return out


def defined(sections: dict, h2: str, h3: str | None = None) -> dict[str, str]:
    """The keys defined under the ## heading starting with `h2` (and the ### heading `h3`, if given)."""
    found = {k: v for (a, b), rows in sections.items() if a.startswith(h2) and h3 in (None, b) for k, v in rows.items()}
    assert found, f"docs/glossary.md has no table under '## {h2}'" + (f" / '### {h3}'" if h3 else "")
    return found


def same_keys(real: set[str], documented: dict[str, str], what: str) -> None:
    """Every real key documented (with a meaning), and nothing documented that no output has."""
    missing, extra = sorted(real - set(documented)), sorted(set(documented) - real)
    assert not missing, f"{what}: in the outputs but not in docs/glossary.md: {missing}"
    assert not extra, f"{what}: in docs/glossary.md but in no example's output: {extra}"
    empty = [k for k, v in documented.items() if not v]
    assert not empty, f"{what}: no meaning in docs/glossary.md for {empty}"


def test_the_committed_documents_are_generated_from_the_code():
    from simulator.reference_docs import REGENERATE, documents

    for path, text in documents().items():
        assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run `{REGENERATE}`"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} differs from what the code documents: run `{REGENERATE}` and commit it")


def undescribed(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of the fields of `model` and its section models without a description."""
    from simulator.reference_docs import _section_model

    out = []
    for name, f in model.model_fields.items():
        if not (f.description or "").strip():
            out.append(prefix + name)
        if section := _section_model(f):
            out += undescribed(section, f"{prefix}{name}.")
    return out


def test_every_scenario_field_has_a_description():
    from simulator.scenario import Scenario

    class Section(BaseModel):
        said: int = Field(default=1, description="a documented key")
        unsaid: int = 2

    class Outer(BaseModel):
        inner: Section = Field(default=Section(), description="a section")

    assert undescribed(Outer) == ["inner.unsaid"]  # the check finds what it is for
    missing = undescribed(Scenario)
    assert not missing, f"scenario fields without a description (Field(description=...)): {missing}"


def test_the_scenario_reference_lists_every_key():
    from simulator.reference_docs import scenario_sections

    text = (ROOT / "docs" / "scenario-keys.md").read_text(encoding="utf-8")
    for section, _, model in scenario_sections():
        body = text.split(f"## `[{section}]`", 1)[-1].split("\n## ", 1)[0]
        assert f"## `[{section}]`" in text, f"docs/scenario-keys.md has no [{section}] section"
        rows = set(re.findall(r"^\| `([^`]+)` \|", body, re.MULTILINE))
        assert rows == set(model.model_fields), f"[{section}]: {rows ^ set(model.model_fields)}"


def test_the_glossary_defines_every_output_key_and_no_other(outputs):
    sections = glossary_keys(GLOSSARY.read_text(encoding="utf-8"))
    est = outputs["estimates"]
    same_keys({k for d in est for k in d}, defined(sections, "Top-level keys"), "top-level keys")
    same_keys({k for d in est for k in d["plan"]}, defined(sections, "`plan`"), "plan keys")
    rows = [r for d in est for r in d["breakdown"]]
    same_keys({k for r in rows for k in r}, defined(sections, "`breakdown`", "Row fields"), "breakdown fields")
    same_keys({r["component"] for r in rows}, defined(sections, "`breakdown`", "Components"), "breakdown components")
    bands = [d[p] for d in est for p in ("p10", "p50", "p90") if p in d]
    assert bands, "no output has uncertainty bands: the variant lost its samples"
    same_keys({k for b in bands for k in b}, defined(sections, "Uncertainty bands"), "keys of p10/p50/p90")


def test_the_glossary_defines_every_project_key_and_no_other(outputs):
    sections = glossary_keys(GLOSSARY.read_text(encoding="utf-8"))
    projects = outputs["projects"]
    same_keys({k for p in projects for k in p}, defined(sections, "Project output", "Top level"), "project keys")
    same_keys({k for p in projects for s in p["stages"] for k in s}, defined(sections, "Project output", "Stage keys"),
              "stage keys")
    same_keys({k for p in projects for k in p["totals"]}, defined(sections, "Project output", "`totals`"), "totals")
    fields = defined(sections, "`breakdown`", "Row fields")
    assert {k for p in projects for r in p["breakdown"] for k in r} <= set(fields)


def test_the_source_strings_have_the_documented_forms(outputs):
    from simulator.glossary_terms import EFFICIENCY_SOURCES, POWER_SOURCES

    def pattern(form: str) -> re.Pattern:  # `<...>` stands for any text
        return re.compile(".+?".join(re.escape(part) for part in re.split(r"<[^>]+>", form)))

    for key, forms in (("efficiency_source", EFFICIENCY_SOURCES), ("power_source", POWER_SOURCES)):
        patterns = [pattern(f) for f in forms]
        assert not any(p.fullmatch("catalog") for p in patterns)  # the patterns are not catch-alls
        for d in outputs["estimates"]:
            assert any(p.fullmatch(d[key]) for p in patterns), f"{key} {d[key]!r}: not a form docs/glossary.md gives"


def test_the_breakdown_adds_up_as_the_glossary_says(outputs):
    for d in outputs["estimates"]:
        rows = d["breakdown"]
        assert sum(r["seconds"] for r in rows) == pytest.approx(d["wall_clock_days"] * 86400, rel=1e-9)
        assert sum(r["energy_kwh"] for r in rows) == pytest.approx(d["energy_mwh"] * 1e3, rel=1e-9)
        assert sum(r["co2e_kg"] for r in rows) == pytest.approx((d["co2e_t"] + d["embodied_co2e_t"]) * 1e3, rel=1e-9)
        if d["cost_usd"] is not None:
            assert sum(r["cost_usd"] for r in rows) == pytest.approx(d["cost_usd"], rel=1e-9)


def test_the_design_document_is_in_the_repository_and_linked():
    assert DESIGN.is_file(), "docs/design.md is missing"
    design = DESIGN.read_text(encoding="utf-8")
    assert re.search(r"^## 4\. .*[Cc]ontracts", design, re.MULTILINE), "docs/design.md has no '## 4. ... contracts' section"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in ("docs/design.md", "docs/scenario-keys.md", "docs/glossary.md"):
        assert doc in readme, f"README.md does not point to {doc}"


def test_design_references_name_sections_that_exist():
    headings = set(re.findall(r"^## (\d+)\. ", DESIGN.read_text(encoding="utf-8"), re.MULTILINE))
    files = [ROOT / "README.md"] + [p for pkg in ("simulator", "calibrate", "dashboard", "hardware_catalog", "tests")
                                    for p in (ROOT / pkg).rglob("*.py")]
    stale, dangling = [], []
    for path in files:
        text = path.read_text(encoding="utf-8")
        stale += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(r"DESIGN (?:section|sec\.) \d", text)]
        dangling += [f"{path.relative_to(ROOT)}: section {n}" for n in
                     re.findall(r"docs/design\.md,? (?:section|sec\.) (\d+)", text) if n not in headings]
    assert not stale, f"references to the old DESIGN document (use 'docs/design.md section N'): {stale}"
    assert not dangling, f"references to sections docs/design.md does not have: {dangling}"
