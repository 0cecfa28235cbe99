"""Links from the Claims page into the Planner: a ledger scenario as the Planner's query parameters.

The Planner's link is its widget values (`dashboard.state.DEFAULTS` keys: model, params_b, tokens_t, seq,
batch_m, precision, hw, n_dev, region, pue, price, ...); `state.state_from_scenario` turns a scenario
mapping into them, and `state.left_out` names what the Planner's inputs cannot hold. A scenario whose
model, training or cluster the Planner cannot hold (a custom MoE shape) gets no link, and the reason.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

PLANNER_PATH = "/"  # the Planner is the app's default page (dashboard/streamlit_app.py)
_ESSENTIAL = ("model", "training", "cluster")


def planner_link(data: dict[str, Any]) -> tuple[str | None, str]:
    """(the Planner link for scenario mapping `data`, or None; a note: what the Planner leaves out, or why
    there is no link)."""
    from dashboard.state import left_out, state_from_scenario

    missing = left_out(data)
    blocking = [m for m in missing if m.split(".", 1)[0] in _ESSENTIAL]
    if blocking:
        keys = ", ".join(m.split(" ", 1)[0] for m in blocking)
        return None, f"the Planner's inputs cannot express this scenario ({keys})"
    params = {k: str(v) for k, v in state_from_scenario(data).items()}
    note = f"the Planner leaves out: {'; '.join(missing)}" if missing else ""
    return f"{PLANNER_PATH}?{urlencode(params)}", note
