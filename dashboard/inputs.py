"""The training scenario's inputs, shared by the Planner, Compare and Explorer pages.

The same keyed widgets (keys = DEFAULTS' = link parameters) on every page that shows the scenario, each
bound to the URL: a page's address restores its scenario, and a value set on one page is there on the
others. Each section returns {key: value} for the inputs it shows; a number that cannot be read is None,
with its message under the field (widgets.invalid lists them).
"""

from __future__ import annotations

import streamlit as st

from dashboard import widgets
from dashboard.state import DEFAULTS, MODEL_CHOICES, MOE_DISPATCHERS, PRECISIONS, RECOMPUTE, STACKS


def select(kind: str, label: str, key: str, **kw):
    """A keyed choice widget bound to the URL; its default (left out of the URL) comes from DEFAULTS."""
    return widgets.bound(kind, label, key, DEFAULTS, **kw)


def number(key: str):
    return widgets.number(key, DEFAULTS)


def model_and_data() -> dict:
    """Model, tokens (or compute budget), sequence, batch, precision and what is trained."""
    v = {"model": select("selectbox", "Model", "model", options=MODEL_CHOICES,
                         help="a preset; 'params': a standard shape for a size; 'optimal': compute-optimal "
                              "for a budget")}
    if v["model"] == "params":
        v["params_b"] = number("params_b")
    if v["model"] == "optimal":
        v["budget_flops"] = number("budget_flops")
    else:
        v["tokens_t"] = number("tokens_t")
    v["seq"], v["batch_m"] = number("seq"), number("batch_m")
    v["precision"] = select("selectbox", "Precision", "precision", options=PRECISIONS)
    # no format_func: a bound widget's URL value is its displayed label, so the labels are the values
    v["ft"] = select("radio", "Fine-tuning", "ft", options=["full", "lora"], horizontal=True,
                     help="full: every weight trained (pre-training or full fine-tuning); lora: low-rank "
                          "adapters on a frozen base (no weight gradients for the base)")
    if v["ft"] == "lora":
        a, b = st.columns(2)
        with a:
            v["lora_rank"] = number("lora_rank")
        with b:
            v["lora_targets"] = select("selectbox", "LoRA targets", "lora_targets", options=["attention", "all"],
                                       help="attention: the q, k, v, o projections; all: every linear layer "
                                            "(+ gate, up, down)")
    return v


def hardware_and_site(cat, extra_accelerators: set[str] = frozenset()) -> dict:
    """Accelerator, device count, region, PUE and price."""
    v = {"hw": select("selectbox", "Accelerator", "hw", options=sorted(set(cat.accelerators) | extra_accelerators))}
    v["n_dev"] = number("n_dev")
    v["region"] = widgets.region("region", DEFAULTS, cat)
    v["pue"], v["price"] = number("pue"), number("price")
    return v


def stack() -> dict:
    """The software stack, and for MoE models how tokens reach their experts."""
    v = {"stack": select("selectbox", "Software stack", "stack", options=STACKS,
                         help="whose fitted performance parameters the catalog's [perf] table gives: auto = "
                              "the reference (Megatron-Core/NeMo on GPUs, MaxText on TPUs); fsdp = PyTorch "
                              "FSDP stacks such as llm-foundry")}
    v["moe_dispatcher"] = select("selectbox", "MoE token exchange", "moe_dispatcher", options=MOE_DISPATCHERS,
                                 help="MoE models only: alltoall = Megatron-Core's all-to-all (every token-expert "
                                      "pair sent separately); deepep = DeepSeek's DeepEP (once per destination "
                                      "node, then NVLink)")
    v["moe_cf"] = number("moe_cf")
    return v


def plan() -> dict:
    """The parallelism plan: auto (the search's best) or manual (the planner's own)."""
    v = {"plan": select("radio", "Plan", "plan", options=["auto", "manual"], horizontal=True,
                        help="auto: the best plan the search finds; manual: your own")} | stack()
    if v["plan"] == "manual":
        a, b = st.columns(2)
        with a:
            v.update(tp=number("tp"), cp=number("cp"), mb=number("mb"))
        with b:
            v["pp"] = number("pp")
            v["zero"] = select("selectbox", "ZeRO", "zero", options=[0, 1, 2, 3])
            v["recompute"] = select("selectbox", "Recompute", "recompute", options=RECOMPUTE)
    return v


def scenario_columns(cat) -> dict:
    """Model and data, hardware and site, software stack side by side: the scenario the Compare and
    Explorer pages share with the Planner (all but the plan)."""
    a, b, c = st.columns(3)
    with a:
        v = model_and_data()
    with b:
        v |= hardware_and_site(cat)
    with c:
        v |= stack()
    return v
