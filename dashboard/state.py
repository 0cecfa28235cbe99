"""Planner state: widget keys (= query parameters of a shared link) <-> a scenario mapping.

Every planner input is a keyed widget bound to the URL (`bind="query-params"`), so the page URL is
the shareable scenario. `scenario_data()` turns the widget values into the scenario file's
structure (DESIGN section 4); `state_from_scenario()` does the reverse for uploaded TOML files.
"""

from __future__ import annotations

from typing import Any

# Default scenario: a Llama-3-70B-class run on 4,096 H100s in Northern Virginia.
DEFAULTS: dict[str, Any] = {
    "model": "llama3-70b",   # a preset, "params" (size only) or "optimal" (compute-optimal for a budget)
    "params_b": 70.0,        # billions of parameters, for model = params
    "budget_flops": 1e24,    # for model = optimal (Epoch 2024 fit)
    "tokens_t": 15.0,        # trillions of training tokens
    "seq": 8192,
    "batch_m": 16.0,         # global batch, millions of tokens
    "precision": "bf16",
    "hw": "nvidia-h100-sxm-80gb",
    "n_dev": 4096,
    "region": "us-virginia",
    "pue": 0.0,              # 0 = the region's default
    "price": 0.0,            # USD per device-hour, 0 = catalog market price
    "plan": "auto",          # auto | manual
    "tp": 8, "pp": 4, "cp": 1, "zero": 1, "recompute": "selective", "mb": 1,
}
PLAN_KEYS = ("tp", "pp", "cp", "zero", "recompute", "mb")


def scenario_data(v: dict[str, Any]) -> dict[str, Any]:
    """The scenario mapping for widget values `v` (missing keys take DEFAULTS)."""
    v = {**DEFAULTS, **{k: x for k, x in v.items() if x is not None}}
    if v["model"] == "params":
        model: dict[str, Any] = {"params": float(v["params_b"]) * 1e9}
    elif v["model"] == "optimal":
        from simulator.scaling import EPOCH_2024

        n, _ = EPOCH_2024.compute_optimal(float(v["budget_flops"]))
        model = {"params": float(n)}
    else:
        model = {"preset": v["model"]}
    model["seq_len"] = int(v["seq"])
    tokens = float(v["tokens_t"]) * 1e12
    if v["model"] == "optimal":
        from simulator.scaling import EPOCH_2024

        tokens = float(EPOCH_2024.compute_optimal(float(v["budget_flops"]))[1])
    data: dict[str, Any] = {
        "name": "dashboard",
        "model": model,
        "training": {"tokens": tokens, "global_batch_tokens": float(v["batch_m"]) * 1e6,
                     "precision": v["precision"]},
        "cluster": {"accelerator": v["hw"], "devices": int(v["n_dev"])},
        "datacenter": {"region": v["region"]},
    }
    if float(v["pue"]) > 0:
        data["datacenter"]["pue"] = float(v["pue"])
    if float(v["price"]) > 0:
        data["pricing"] = {"usd_per_device_hour": float(v["price"])}
    if v["plan"] == "manual":
        data["parallelism"] = {"tp": int(v["tp"]), "pp": int(v["pp"]), "cp": int(v["cp"]), "zero": int(v["zero"]),
                               "recompute": v["recompute"], "microbatch": int(v["mb"])}
    return data


def state_from_scenario(data: dict[str, Any]) -> dict[str, Any]:
    """Widget values for an uploaded scenario mapping (what the planner can show of it)."""
    out: dict[str, Any] = {}
    m, t, c = data.get("model", {}), data.get("training", {}), data.get("cluster", {})
    if "preset" in m:
        out["model"] = m["preset"]
    elif "params" in m:
        out.update(model="params", params_b=float(m["params"]) / 1e9)
    if "seq_len" in m:
        out["seq"] = int(m["seq_len"])
    if "tokens" in t:
        out["tokens_t"] = float(t["tokens"]) / 1e12
    if "global_batch_tokens" in t:
        out["batch_m"] = float(t["global_batch_tokens"]) / 1e6
    if "precision" in t:
        out["precision"] = t["precision"]
    if "accelerator" in c:
        out["hw"] = c["accelerator"]
    if "devices" in c:
        out["n_dev"] = int(c["devices"])
    dc = data.get("datacenter", {})
    if "region" in dc:
        out["region"] = dc["region"]
    if "pue" in dc:
        out["pue"] = float(dc["pue"])
    if "usd_per_device_hour" in data.get("pricing", {}):
        out["price"] = float(data["pricing"]["usd_per_device_hour"])
    par = data.get("parallelism", {})
    if {"tp", "pp"} <= set(par):
        out["plan"] = "manual"
        out.update({k: par[k2] for k, k2 in (("tp", "tp"), ("pp", "pp"), ("cp", "cp"), ("zero", "zero"),
                                             ("recompute", "recompute"), ("mb", "microbatch")) if k2 in par})
    return out
