"""Content from remote users (an upload, a link): it must never name files on the server
(issue 13). A path-valued scenario key may only name a shipped example by its file name; anything
else is refused with one message that says nothing about the path.
"""

from __future__ import annotations

from typing import Any

from simulator.errors import ScenarioError
from simulator.scenario import Scenario


def _shipped_files() -> dict[str, dict[str, str]]:
    """Path-valued keys -> {file name: packaged path} of the files an upload may name."""
    from importlib import resources

    from simulator.footprint.carbon_profile import EXAMPLE_FILE

    example = str(resources.files("simulator").joinpath("data", EXAMPLE_FILE))
    return {"datacenter.carbon_profile": {EXAMPLE_FILE: example}, "efficiency.profile": {}}


def scenario_for_upload(scenario: Scenario, origin: str) -> Scenario:
    """`scenario` as content from a remote user (an upload, a link) may give it: no key names a file
    on the server. A path-valued key may only name a shipped example by its file name (resolved to
    the packaged file); anything else is refused without saying anything about what it names."""
    updates: dict[str, dict[str, Any]] = {}
    for key, allowed in _shipped_files().items():
        section, field = key.split(".")
        value = getattr(getattr(scenario, section), field)
        if value is None:
            continue
        if value not in allowed:
            names = ", ".join(f"'{n}'" for n in allowed) or "none"
            raise ScenarioError(f"{origin}: {key}: an uploaded scenario cannot name files on the server (shipped "
                                f"examples it may name: {names}); upload the file's content where the page offers it")
        updates.setdefault(section, {})[field] = allowed[value]
    return scenario.model_copy(update={s: getattr(scenario, s).model_copy(update=u) for s, u in updates.items()})
