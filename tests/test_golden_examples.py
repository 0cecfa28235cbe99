"""Contracts unchanged (issue 14): every example's JSON output (`trainsim estimate -f json`, and
`trainsim project -f json` for the project examples) equals the golden copy in tests/data/golden/.

A deliberate change of the numbers regenerates the copies (`python tests/test_golden_examples.py`)
and says why in its commit; a restructuring must leave them untouched.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.toml"))


def output(path: Path) -> dict:
    """The JSON the CLI prints for an example (scenario or project)."""
    from hardware_catalog import load_catalog
    from simulator import estimate, load_scenario
    from simulator.workloads.project import estimate_project, load_project

    cat = load_catalog()
    if path.name.startswith("project"):
        text = estimate_project(load_project(path), cat).to_json()
    else:
        text = estimate(load_scenario(path), cat).to_json()
    return json.loads(text.replace(str(ROOT), "<checkout>"))  # stage sources are absolute paths


def same(a, b, where: str = "") -> list[str]:
    """Differences between two JSON trees (floats to 1e-12 relative: the same arithmetic in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in one" for k in set(a) ^ set(b)]
        return out + [d for k in set(a) & set(b) for d in same(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return [] if math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300) else [f"{where}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_output_is_unchanged(path):
    golden = json.loads((GOLDEN / f"{path.stem}.json").read_text())
    diffs = same(output(path), golden)
    assert not diffs, f"{path.name}: {len(diffs)} differences, e.g. {diffs[:5]}"


if __name__ == "__main__":  # regenerate after a deliberate change of the numbers
    sys.path[0] = str(ROOT)  # not tests/ (its hardware_catalog/ folder would shadow the package)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for p in EXAMPLES:
        (GOLDEN / f"{p.stem}.json").write_text(json.dumps(output(p), indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN / p.stem}.json", file=sys.stderr)
