"""Newcomer basics (issue 15 item 10): an `[all]` extra, the version, examples for each vendor."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# extras that `all` leaves out: `test` holds the tools for working on trainsim itself (pytest,
# hypothesis, Playwright), not a feature of it; `pip install -e ".[all,test]"` gets both
DEVELOPER_EXTRAS = {"test"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_all_extra_installs_every_user_extra():
    extras = PROJECT["optional-dependencies"]
    everything = extras["all"]
    wanted = [r for name, reqs in extras.items() if name not in DEVELOPER_EXTRAS | {"all"} for r in reqs]
    assert {"dashboard", "calibrate"} <= set(extras) - DEVELOPER_EXTRAS
    assert sorted(everything) == sorted(set(wanted)), "`all` must list every user extra's requirements, same bounds"
    assert len({_name(r) for r in everything}) == len(everything), "a package twice in `all`"
    assert not {_name(r) for r in everything} & {_name(r) for x in DEVELOPER_EXTRAS for r in extras[x]}


def test_installed_version_is_the_pyprojects():
    from importlib.metadata import version

    from simulator.cli.common import DISTRIBUTION, version_text

    assert DISTRIBUTION == PROJECT["name"]
    assert version(DISTRIBUTION) == PROJECT["version"], "stale install: pip install -e ."
    assert version_text() == f"trainsim {PROJECT['version']}"


def test_examples_cover_nvidia_amd_and_tpu():
    from hardware_catalog import load_catalog

    cat = load_catalog(use_env=False)
    vendors = set()
    for path in (ROOT / "examples").glob("*.toml"):
        acc = tomllib.loads(path.read_text(encoding="utf-8")).get("cluster", {}).get("accelerator")
        if acc:
            vendors.add(cat.accelerator(acc).vendor)
    assert {"NVIDIA", "AMD", "Google"} <= vendors, vendors
