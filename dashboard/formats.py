"""How the dashboard writes figures and names: money, percentages, missing values, human names for the
library's keys (breakdown components, validation quantities, uncertain inputs), short names for what set
the step time, readable log axes. Plain Python, no Streamlit: every page and chart builder uses these, so
the same figure reads the same everywhere.
"""

from __future__ import annotations

import math
import re

NA = "—"  # a missing value in a table (st.dataframe's placeholder) or a sentence

# Breakdown components (Estimate.breakdown rows), memory parts and validation quantities -> human names
LABELS = {
    "compute": "compute", "tp_comm": "TP comm", "cp_comm": "CP comm", "ep_comm": "EP comm", "pp_comm": "PP comm",
    "dp_comm": "DP comm", "bubble": "pipeline bubble", "optimizer": "optimizer step",
    "checkpoint_and_failures": "checkpoints & failures", "host": "hosts (CPU, NIC)", "network": "network",
    "storage": "storage", "facility_overhead": "cooling & facility (PUE)", "embodied": "embodied carbon",
    "electricity": "electricity", "capex": "hardware (owned)",
    "prefill": "prefill", "decode": "decode", "kernel_overhead": "kernel launch overhead",
    "idle_capacity": "idle capacity", "rollout_generation": "rollout generation", "scoring_forward": "scoring passes",
    "policy_update": "policy update", "critic_update": "critic update",
    "weights": "weights", "gradients": "gradients", "optimizer_states": "optimizer states",
    "activations": "activations", "buffers": "buffers", "overhead": "runtime overhead",
    # validation quantities (simulator.validation.runs.Check.quantity)
    "device_hours": "Device-hours", "energy_mwh": "Energy (MWh)", "co2e_t": "Emissions (tCO2e)",
    "tflops_per_device": "Throughput (TFLOP/s per device)", "mfu_pct": "MFU (%)",
    "inter_token_latency_ms": "Inter-token latency (ms)", "output_tokens_per_s": "Output tokens/s",
    "tokens_per_s_per_device": "Tokens/s per device",
    # headline figures (the tornado's choices)
    "cost_usd": "Cost (USD)", "wall_clock_days": "Wall clock (days)",
}

# What the Validation page checks (simulator.validation.runs.Check.quantity), as its picker lists them
QUANTITIES = ("co2e_t", "device_hours", "energy_mwh", "inter_token_latency_ms", "mfu_pct", "output_tokens_per_s",
              "tflops_per_device", "tokens_per_s_per_device")

# The Monte Carlo's uncertain inputs (simulator.footprint.uncertainty.Spreads) -> (name, unit, number format)
INPUTS = {
    "throughput": ("Throughput", "TFLOP/s per device", ",.0f"),
    "power": ("Device power", "W", ",.0f"),
    "failure_rate": ("Failure rate", "per million device-hours", ",.1f"),
    "pue": ("PUE", "", ".2f"),
    "carbon_intensity": ("Grid intensity", "kgCO2e/kWh", ".3f"),
    "price": ("Price", "USD per device-hour", ",.2f"),
}


def label(key: str) -> str:
    """A library key as people read it: "rollout_generation" -> "rollout generation"."""
    return LABELS.get(key, key.replace("_", " "))


_KEY = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def humanize(text: str) -> str:
    """A library note with the breakdown's and figures' keys in human names ("rollout_generation" ->
    "rollout generation"); scenario keys ("model.seq_len") and other words stay as they are."""
    return _KEY.sub(lambda m: LABELS.get(m.group(0), m.group(0)), text)


def money(usd: float | None, none: str = "n/a") -> str:
    """A cost, rounded with its unit: $10.77 M, $1.23 B, $34,947, $5.32; `none` without a price."""
    if usd is None or not math.isfinite(usd):
        return none
    size = abs(usd)
    for scale, unit in ((1e9, "B"), (1e6, "M")):
        if size >= scale:
            return f"${usd / scale:,.2f} {unit}"
    return f"${usd:,.0f}" if size >= 100 else f"${usd:,.2f}"


def money_range(low: float | None, high: float | None) -> str:
    """A P10-P90 cost range: "$11.9 M-$15.0 M"."""
    return NA if low is None or high is None else f"{money(low)}–{money(high)}"


def money_column(values) -> tuple[float, str]:
    """(divisor, Streamlit number format) for a table column of costs: millions as "$12.28 M" when the
    largest is a million or more, else dollars and cents."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return (1e6, "$%.2f M") if finite and max(finite) >= 1e6 else (1.0, "dollar")


def percent(fraction: float | None, digits: int = 1) -> str:
    """A fraction as a percentage, always with `digits` decimals: 0.4758 -> "47.6%"."""
    return NA if fraction is None or not math.isfinite(fraction) else f"{fraction:.{digits}%}"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def scientific(x: float, digits: int = 3) -> str:
    """A large count as people write it: 7.22e24 -> "7.22 × 10²⁴"."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    exponent = math.floor(math.log10(abs(x)))
    mantissa = f"{x / 10 ** exponent:.{digits - 1}f}"
    if float(mantissa) >= 10:  # 9.999e24 rounds up to 10.00
        exponent, mantissa = exponent + 1, f"{x / 10 ** (exponent + 1):.{digits - 1}f}"
    return f"{mantissa} × 10{str(exponent).translate(_SUPERSCRIPT)}"


PERCENT_FORMAT = "%.1f%%"  # a table column of percentages (values x 100), as `percent` writes them


def efficiency_label(source: str) -> str:
    """What set the step time (the estimate's `efficiency_source`), in a few words."""
    if source.startswith("training.device_hours"):
        return "given device-hours"
    if source.startswith("scenario efficiency.perf"):
        return "your performance parameters"
    if source.startswith("calibration profile"):
        return "measured profile"
    if "(inherited from " in source:
        return f"fitted priors of {source.split('(inherited from ')[1].split(')')[0]}"
    if "fitted to public tables" in source:
        return "fitted priors"
    return "generic prior"


def power_label(source: str) -> str:
    """Where the power model comes from (the estimate's `power_source`), in a few words."""
    return "measured profile" if source.startswith("calibration profile") else "catalog prior"


# A logarithmic axis's ticks at 1, 2 and 5 of each decade, written 200, 5k, 1M (Plotly's "~s"): without them
# Plotly labels every minor tick ("2 3 4 5 6 7 8 9") under each decade
LOG_TICKS = {"type": "log", "tickvals": [m * 10.0 ** e for e in range(-4, 16) for m in (1, 2, 5)], "tickformat": "~s"}


def log_ticks(values) -> dict:
    """LOG_TICKS for an axis over `values`; under one and a half decades, more ticks per decade (10, 15, 20,
    30, ...) so that a narrow axis has some."""
    finite = [abs(v) for v in values if v and math.isfinite(v)]
    if not finite or math.log10(max(finite) / min(finite)) > 1.5:
        return LOG_TICKS
    steps = (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)
    return {**LOG_TICKS, "tickvals": [m * 10.0 ** e for e in range(-4, 16) for m in steps]}
