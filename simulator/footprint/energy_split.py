"""The energy split as people report it: accelerators / hosts / network / storage / cooling and
facility overhead, as shares of the facility energy, read from an estimate's breakdown rows.

Rows map to groups by component name: `host` -> hosts; `network` -> network; `storage` -> storage;
`facility_overhead` -> facility overhead (cooling and power distribution, PUE - 1); every other row
with energy -> accelerators (the step's parts, checkpoints and failures at idle power, serving's idle
capacity, RLHF's phases). Rows without energy (embodied, capex, electricity) count for nothing. The
shares sum to 1 (all 0 for an estimate without energy). The claims ledger and the Planner use this one
function, so a published split ("GPU compute 80%, cooling 16%, networking and storage 4%") is compared
with the same numbers everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SPLIT_GROUPS = ("accelerators", "hosts", "network", "storage", "facility_overhead")
SPLIT_LABELS = {"accelerators": "accelerators", "hosts": "hosts", "network": "network", "storage": "storage",
                "facility_overhead": "cooling & facility (PUE)"}
_NAMED = {"host": "hosts", "network": "network", "storage": "storage", "facility_overhead": "facility_overhead"}


def split_group(component: str) -> str:
    """The split group of a breakdown row's component (module docstring)."""
    return _NAMED.get(component, "accelerators")


def _rows(estimate_or_rows: Any) -> Sequence[Mapping[str, Any]]:
    return getattr(estimate_or_rows, "breakdown", estimate_or_rows)


def energy_split_kwh(estimate_or_rows: Any) -> dict[str, float]:
    """Facility kWh per split group (`SPLIT_GROUPS` order) of an `Estimate` or its breakdown rows."""
    out = dict.fromkeys(SPLIT_GROUPS, 0.0)
    for row in _rows(estimate_or_rows):
        out[split_group(row["component"])] += float(row.get("energy_kwh") or 0.0)
    return out


def energy_split(estimate_or_rows: Any) -> dict[str, float]:
    """Shares (0-1, summing to 1) of the facility energy per split group (`SPLIT_GROUPS` order)."""
    kwh = energy_split_kwh(estimate_or_rows)
    total = sum(kwh.values())
    return {g: (v / total if total > 0 else 0.0) for g, v in kwh.items()}
