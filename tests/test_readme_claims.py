"""The README's Claims table is `trainsim claims --format json` made into markdown
(simulator.claims.report.markdown_table): a change of the ledger or of the model that moves a claim's
range or verdict fails here until the README is regenerated:

    .venv/bin/python tests/test_readme_claims.py   # rewrites the table in README.md
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
START = "<!-- claims table: generated from `trainsim claims --format json` by simulator.claims.report.markdown_table (tests/test_readme_claims.py) -->\n"
END = "<!-- end of claims table -->"


def generated() -> str:
    from simulator.claims.report import markdown_table
    from simulator.cli import app

    r = CliRunner().invoke(app, ["claims", "--format", "json"])
    assert r.exit_code == 0, r.output
    return markdown_table(json.loads(r.stdout))


def readme_table(text: str) -> str:
    match = re.search(re.escape(START) + r"(.*?)" + re.escape(END), text, flags=re.DOTALL)
    assert match, "README.md has no generated claims table (see this file's docstring)"
    return match.group(1)


def test_readme_claims_table_is_the_commands_output():
    assert readme_table(README.read_text(encoding="utf-8")) == generated(), \
        "README's Claims table is stale: run `.venv/bin/python tests/test_readme_claims.py`"


def test_readme_claims_section_says_how_to_read_it():
    text = " ".join(README.read_text(encoding="utf-8").split())
    for phrase in ("## Claims", "trainsim claims", "simulator/data/claims.toml", "not yet separate",
                   "simulator/data/frontier_compute.csv"):
        assert phrase in text, phrase


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))  # not tests/ first: tests/simulator/ would shadow the package
    text = README.read_text(encoding="utf-8")
    old = readme_table(text)
    README.write_text(text.replace(START + old + END, START + generated() + END), encoding="utf-8")
