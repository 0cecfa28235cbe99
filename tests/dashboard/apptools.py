"""Helpers shared by the dashboard page tests (imported as `apptools`: pytest puts this folder on sys.path)."""

import base64
from pathlib import Path

import numpy as np

APP = str(Path(__file__).parents[2] / "dashboard" / "streamlit_app.py")


def metrics(at) -> dict[str, str]:
    """A rendered page's metrics, label -> shown value."""
    return {m.label: m.value for m in at.metric}


def number(text: str) -> float:
    """"$5.32" -> 5.32, "61.3%" -> 61.3, "6.55 MWh" -> 6.55, "1,234" -> 1234."""
    return float(text.split()[0].strip("$%").replace(",", ""))


def array(value) -> np.ndarray:
    """A trace array from a figure's JSON: Plotly writes numeric arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value, dtype=float)
