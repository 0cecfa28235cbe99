"""Planner, Serving, Post-training state: widget keys (= query parameters of a link) <-> a scenario mapping.

Every planner input is a keyed widget bound to the URL (`bind="query-params"`), so the page URL is
the shareable scenario. `scenario_data()` turns the widget values into the scenario file's
structure (docs/design.md section 4); `state_from_scenario()` does the reverse for uploaded TOML files.
`serving_data()` does the same for the Serving page's inputs (keys prefixed `sv_`), `rlhf_data()` for the
Post-training page's (keys prefixed `rl_`). `NUMBERS` says what each number field accepts (the
widgets parse typed text with it, the entry point checks a link's numbers with it); `choices()` lists
the values a link may give each choice field.
"""

from __future__ import annotations

from typing import Any

from dashboard.fields import Num, parse_number
from dashboard.formats import QUANTITIES, label
from simulator.model.finetune import ATTN_TARGETS
from simulator.model.shapes import PRESETS

# Default scenario: examples/llama3-70b-h100.toml, Llama 3 70B on 4,096 H100s in Northern Virginia
# (tests/dashboard/test_inputs.py checks that both give the same estimate).
DEFAULTS: dict[str, Any] = {
    "model": "llama3-70b",   # a preset, "params" (size only) or "optimal" (compute-optimal for a budget)
    "params_b": 70.0,        # billions of parameters, for model = params
    "budget_flops": 1e24,    # for model = optimal (Epoch 2024 fit)
    "tokens_t": 15.0,        # trillions of training tokens
    "seq": 8192,
    "batch_m": 16.777216,    # global batch, millions of tokens (2^24)
    "precision": "bf16",
    "hw": "nvidia-h100-sxm-80gb",
    "n_dev": 4096,
    "region": "us-virginia",
    "pue": 1.1,              # 0 = the region's default
    "price": 0.0,            # USD per device-hour, 0 = catalog market price
    "plan": "auto",          # auto (the plan search) | manual (the fields below)
    "stack": "auto",         # software stack of the catalog's [perf] priors: auto (reference) | megatron | fsdp | maxtext
    "moe_dispatcher": "alltoall",  # MoE token exchange: alltoall | deepep (parallelism.moe_dispatcher)
    "moe_cf": 0.0,           # MoE capacity factor, 0 = dropless (training.moe_capacity_factor)
    "tp": 8, "pp": 4, "cp": 1, "zero": 1, "recompute": "selective", "mb": 1,
    "ft": "full",            # what the run trains: full | lora ([finetune] section)
    "lora_rank": 16,
    "lora_targets": "attention",  # attention (q, k, v, o) | all (every linear layer)
}
PLAN_KEYS = ("tp", "pp", "cp", "zero", "recompute", "mb")
LORA_TARGETS = {"attention": ATTN_TARGETS, "all": "all"}  # widget value -> finetune.lora_targets


class _Parsed(dict):
    """Widget values whose number fields may still be the typed text (another page reading the Planner's
    session values): parsed when read, so a value the scenario does not use is never looked at."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return parse_number(value, NUMBERS[key]) if isinstance(value, str) and key in NUMBERS else value


def scenario_data(v: dict[str, Any]) -> dict[str, Any]:
    """The scenario mapping for widget values `v` (missing keys take DEFAULTS; number fields may be text,
    ValueError with the field's message when one cannot be read)."""
    v = _Parsed({**DEFAULTS, **{k: x for k, x in v.items() if x is not None}})
    if v["model"] == "params":
        model: dict[str, Any] = {"params": float(v["params_b"]) * 1e9}
    elif v["model"] == "optimal":
        from simulator.model.scaling import EPOCH_2024

        n, _ = EPOCH_2024.compute_optimal(float(v["budget_flops"]))
        model = {"params": float(n)}
    else:
        model = {"preset": v["model"]}
    model["seq_len"] = int(v["seq"])
    tokens = float(v["tokens_t"]) * 1e12
    if v["model"] == "optimal":
        from simulator.model.scaling import EPOCH_2024

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
    if v["stack"] != "auto":
        data.setdefault("parallelism", {})["stack"] = v["stack"]
    if v["moe_dispatcher"] != DEFAULTS["moe_dispatcher"]:
        data.setdefault("parallelism", {})["moe_dispatcher"] = v["moe_dispatcher"]
    if float(v["moe_cf"]) > 0:
        data["training"]["moe_capacity_factor"] = float(v["moe_cf"])
    if v["ft"] == "lora":
        targets = LORA_TARGETS[v["lora_targets"]]
        data["finetune"] = {"method": "lora", "lora_rank": int(v["lora_rank"]),
                            "lora_targets": targets if targets == "all" else list(targets)}
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
    elif "preset" in m:  # the preset's own context length, not the planner's default
        from simulator.model.shapes import get_preset

        out["seq"] = get_preset(m["preset"]).seq_len
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
    out["region"] = dc.get("region", "WORLD")  # a file without a region is the world average
    out["pue"] = float(dc.get("pue", 0.0))  # 0: the region's default, as in a file without one
    out["price"] = float(data.get("pricing", {}).get("usd_per_device_hour", 0.0))  # 0: the catalog's
    par = data.get("parallelism", {})
    out["plan"] = "manual" if {"tp", "pp"} <= set(par) else "auto"  # no tp and pp: the search's best plan
    if out["plan"] == "manual":
        out.update({k: par[k2] for k, k2 in (("tp", "tp"), ("pp", "pp"), ("cp", "cp"), ("zero", "zero"),
                                             ("recompute", "recompute"), ("mb", "microbatch")) if k2 in par})
    out["stack"] = par.get("stack") or "auto"
    out["moe_dispatcher"] = par.get("moe_dispatcher", DEFAULTS["moe_dispatcher"])
    out["moe_cf"] = float(t.get("moe_capacity_factor") or 0.0)  # unset: dropless
    ft = data.get("finetune", {})
    out["ft"] = ft.get("method", "full")  # no [finetune] section: every weight is trained
    if out["ft"] == "lora":  # a subset of q, k, v, o shows as "attention", any MLP target as "all"
        targets = ft.get("lora_targets", ATTN_TARGETS)
        out.update(lora_rank=int(ft.get("lora_rank", DEFAULTS["lora_rank"])),
                   lora_targets="attention" if targets != "all" and set(targets) <= set(ATTN_TARGETS) else "all")
    return out


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def left_out(data: dict[str, Any]) -> list[str]:
    """The settings of an uploaded scenario that the planner's inputs cannot hold: the dotted fields
    whose validated value differs once the upload goes through the widgets (`state_from_scenario`,
    then `scenario_data`), e.g. pricing.mode = "owned" or [reliability] figures."""
    from simulator.scenario import scenario_from_dict

    def settings(mapping: dict[str, Any]) -> dict[str, Any]:
        sc = scenario_from_dict(mapping)
        out = sc.model_dump(exclude={"name"})
        out["model"]["seq_len"] = sc.model.spec().seq_len  # a preset's own length, written or not
        return _flat(out)

    given, shown = settings(data), settings(scenario_data(state_from_scenario(data)))
    show = lambda v: "default" if v is None else repr(v)
    return [f"{k} (file: {show(given.get(k))}, planner: {show(shown.get(k))})"
            for k in sorted(set(given) | set(shown)) if given.get(k) != shown.get(k)]


# ---------------------------------------------------------------- Serving page
# Default: Llama-3-70B on 16 H100s in Northern Virginia, 5 requests/s of 1,000 tokens in, 500 out.
SERVING_DEFAULTS: dict[str, Any] = {
    "sv_model": "llama3-70b", "sv_hw": "nvidia-h100-sxm-80gb", "sv_dev": 16, "sv_region": "us-virginia",
    "sv_tp": 0,              # devices per replica; 0 = the TP group with the most tokens/s per device
    "sv_prompt": 1000, "sv_output": 500,
    "sv_rps": 5.0,           # requests per second; 0 = full load (no traffic given)
    "sv_peak": 1.0,          # peak-to-average traffic: the fleet must serve the peak
    "sv_months": 1.0, "sv_dtype": "bf16", "sv_kv": "bf16",
    "sv_price": 0.0,         # USD per device-hour, 0 = catalog market price
    "sv_min_user": 20.0,     # output tokens/s each user must at least see
}


def serving_data(v: dict[str, Any]) -> dict[str, Any]:
    """The serving scenario mapping for Serving-page widget values `v` (missing keys take SERVING_DEFAULTS)."""
    v = {**SERVING_DEFAULTS, **{k: x for k, x in v.items() if x is not None}}
    serving: dict[str, Any] = {
        "prompt_tokens": int(v["sv_prompt"]), "output_tokens": int(v["sv_output"]), "months": float(v["sv_months"]),
        "peak_to_average": float(v["sv_peak"]), "min_tokens_per_s_per_user": float(v["sv_min_user"]),
        "dtype": v["sv_dtype"], "kv_dtype": v["sv_kv"]}
    if float(v["sv_rps"]) > 0:
        serving["requests_per_s"] = float(v["sv_rps"])
    if int(v["sv_tp"]) > 0:
        serving["tp"] = int(v["sv_tp"])
    data = {"name": "dashboard-serving", "model": {"preset": v["sv_model"]},
            "cluster": {"accelerator": v["sv_hw"], "devices": int(v["sv_dev"])},
            "serving": serving, "datacenter": {"region": v["sv_region"]}}
    if float(v["sv_price"]) > 0:
        data["pricing"] = {"usd_per_device_hour": float(v["sv_price"])}
    return data


# ---------------------------------------------------------------- Post-training (RL) page
# Default: GRPO on Llama-3-8B, 100k prompts of 512 tokens, 1,024-token responses, on 64 H100s in Oregon.
SAME_AS_POLICY = "same as policy"  # rl_reward: the reward model has the policy's shape (the library's default)
RLHF_DEFAULTS: dict[str, Any] = {
    "rl_model": "llama3-8b", "rl_algo": "grpo", "rl_reward": SAME_AS_POLICY,
    "rl_prompts": 100_000, "rl_prompt": 512, "rl_response": 1024,
    "rl_samples": 0,         # responses per prompt; 0 = the algorithm's default (ppo 1, grpo 8, dpo 2)
    "rl_epochs": 1,          # optimisation passes over each batch of rollouts
    "rl_hw": "nvidia-h100-sxm-80gb", "rl_dev": 64, "rl_region": "us-oregon",
    "rl_batch_m": 2.097152,  # global batch of the policy update, millions of tokens (2^21)
    "rl_price": 0.0,         # USD per device-hour, 0 = catalog market price
}


def rlhf_data(v: dict[str, Any]) -> dict[str, Any]:
    """The [rlhf] scenario mapping for Post-training-page widget values `v` (missing keys take RLHF_DEFAULTS).
    No training.tokens: the library derives them from the prompts, samples and epochs."""
    v = {**RLHF_DEFAULTS, **{k: x for k, x in v.items() if x is not None}}
    rlhf: dict[str, Any] = {"algorithm": v["rl_algo"], "prompts": int(v["rl_prompts"]),
                            "prompt_tokens": int(v["rl_prompt"]), "response_tokens": int(v["rl_response"]),
                            "epochs": int(v["rl_epochs"])}
    if int(v["rl_samples"]) > 0:
        rlhf["samples_per_prompt"] = int(v["rl_samples"])
    if v["rl_reward"] != SAME_AS_POLICY:
        rlhf["reward_model"] = v["rl_reward"]
    data = {"name": "dashboard-rlhf", "model": {"preset": v["rl_model"]},
            "training": {"global_batch_tokens": round(float(v["rl_batch_m"]) * 1e6)},
            "cluster": {"accelerator": v["rl_hw"], "devices": int(v["rl_dev"])},
            "rlhf": rlhf, "datacenter": {"region": v["rl_region"]}}
    if float(v["rl_price"]) > 0:
        data["pricing"] = {"usd_per_device_hour": float(v["rl_price"])}
    return data


# ---------------------------------------------------------------- Compare and Explorer pages' own inputs
COMPARE_DEFAULTS: dict[str, Any] = {"cmp_price": 0.0}  # fallback USD/device-hour; 0 = leave unpriced ones out
DEVICE_CHOICES = sorted({2 ** k for k in range(3, 17)} | {3072, 6144, 12288, 24576, 49152})
EXPLORER_DEFAULTS: dict[str, Any] = {"exp_top": 10, "exp_tp": DEFAULTS["tp"], "exp_pp": DEFAULTS["pp"],
                                     "exp_cp": DEFAULTS["cp"], "exp_mb": DEFAULTS["mb"]}
OBJECTIVE_LABELS = {"time": "step time", "cost": "cost", "energy": "energy", "memory": "memory per device"}

# ---------------------------------------------------------------- what each input accepts
MODEL_CHOICES = [*PRESETS, "params", "optimal"]
PRECISIONS = ["bf16", "fp8", "fp4", "fp16", "tf32"]
STACKS = ["auto", "megatron", "fsdp", "maxtext"]
MOE_DISPATCHERS = ["alltoall", "deepep"]
RECOMPUTE = ["none", "selective", "mlp", "full", "offload"]
DTYPES = ["bf16", "fp16", "fp8", "int8", "fp4"]  # serving weights
ALGORITHMS = ["grpo", "ppo", "dpo"]  # option values are the URL's: no format_func (the URL would hold the label)


_WHOLE = {"integer": True, "low": 1}
_PRICE = "Price USD per device-hour (0 = catalog)"
NUMBERS: dict[str, Num] = {
    # Planner (and the Compare / Explorer pages, which show the same scenario)
    "params_b": Num("Parameters (billions)", open_low=True),
    "budget_flops": Num("Compute budget (FLOPs)", low=1e15),
    "tokens_t": Num("Training tokens (trillions)", open_low=True),
    "seq": Num("Sequence length", **_WHOLE),
    "batch_m": Num("Global batch (million tokens)", open_low=True),
    "n_dev": Num("Devices", **_WHOLE),
    "pue": Num("PUE (0 = region default)"),
    "price": Num(_PRICE),
    "lora_rank": Num("LoRA rank", **_WHOLE),
    "tp": Num("TP", **_WHOLE), "pp": Num("PP", **_WHOLE), "cp": Num("CP", **_WHOLE), "mb": Num("Micro-batch", **_WHOLE),
    "moe_cf": Num("MoE capacity factor (0 = dropless)", high=1000,
                  help="MoE models only: each expert takes at most this x its mean share of tokens and its "
                       "input is padded to it (token dropping); 0: dropless routing"),
    # Serving
    "sv_dev": Num("Devices", **_WHOLE),
    "sv_tp": Num("TP per replica (0 = auto)", integer=True,
                 help="devices per replica; auto: the TP group with the most output tokens/s per device"),
    "sv_months": Num("Months", open_low=True),
    "sv_price": Num(_PRICE),
    "sv_prompt": Num("Prompt tokens", **_WHOLE), "sv_output": Num("Output tokens", **_WHOLE),
    "sv_rps": Num("Requests per second (0 = full load)"),
    "sv_peak": Num("Peak-to-average traffic", low=1,
                   help="the fleet is sized for the peak; it is busy only the mean's share of the time"),
    "sv_min_user": Num("Minimum tokens/s per user",
                       help="the batch is the largest-throughput one at which each user still sees this speed"),
    # Post-training (RL)
    "rl_prompts": Num("Prompts", **_WHOLE, help="over the whole run"),
    "rl_prompt": Num("Prompt tokens", **_WHOLE), "rl_response": Num("Response tokens", **_WHOLE),
    "rl_samples": Num("Samples per prompt (0 = default)", integer=True,
                      help="responses per prompt; 0: the algorithm's default, ppo 1, grpo 8 (the group), "
                           "dpo 2 (chosen and rejected)"),
    "rl_epochs": Num("Epochs", **_WHOLE, help="optimisation passes over each batch of rollouts"),
    "rl_batch_m": Num("Global batch (million tokens)", open_low=True,
                      help="tokens per optimizer step of the policy update (default 2^21)"),
    "rl_dev": Num("Devices", **_WHOLE),
    "rl_price": Num(_PRICE),
    # Compare and Explorer
    "cmp_price": Num("Fallback USD/device-h", help="Price for accelerators the catalog has no price for "
                                                    "(0 = leave them out)."),
    "exp_top": Num("Top plans", integer=True, low=1, high=50),
    "exp_tp": Num("TP", **_WHOLE), "exp_pp": Num("PP", **_WHOLE), "exp_cp": Num("CP", **_WHOLE),
    "exp_mb": Num("Micro-batch", **_WHOLE),
}
ALL_DEFAULTS = {**DEFAULTS, **SERVING_DEFAULTS, **RLHF_DEFAULTS, **COMPARE_DEFAULTS, **EXPLORER_DEFAULTS}


def choices(cat) -> dict[str, list[str]]:
    """The values a link may give each choice field (as the URL holds them: a bound widget with a
    format_func holds its label), for catalog `cat`."""
    from dashboard.charts_compare import VIEWS

    accelerators, regions = sorted(cat.accelerators), sorted(cat.regions)
    presets = list(PRESETS)
    out = {"model": MODEL_CHOICES, "precision": PRECISIONS, "plan": ["auto", "manual"], "stack": STACKS,
           "moe_dispatcher": MOE_DISPATCHERS,
           "ft": ["full", "lora"], "lora_targets": list(LORA_TARGETS), "zero": ["0", "1", "2", "3"],
           "recompute": RECOMPUTE, "sv_model": presets, "sv_dtype": DTYPES, "sv_kv": ["bf16", "fp8"],
           "rl_model": presets, "rl_algo": ALGORITHMS, "rl_reward": [SAME_AS_POLICY, *presets],
           "cmp_hw": accelerators,
           "cmp_devices": [str(n) for n in DEVICE_CHOICES], "cmp_view": list(VIEWS),
           "exp_objective": list(OBJECTIVE_LABELS.values()), "exp_color": ["cost per step", "energy per step"],
           "exp_zero": ["0", "1", "2", "3"], "exp_recompute": RECOMPUTE}
    out.update({k: accelerators for k in ("hw", "sv_hw", "rl_hw")})
    out.update({k: [region_label(r, cat) for r in regions] for k in REGION_KEYS})
    out["val_quantity"] = ["all", *(label(q) for q in QUANTITIES)]  # the Validation page's picker shows names
    return out


def link_aliases(cat) -> dict[str, dict[str, str]]:
    """Per choice field, the other names a link may give an option (its id where the picker shows a
    label): ?region=FR or ?region=France -> "FR — France", ?val_quantity=mfu_pct -> "MFU (%)"."""
    out = dict.fromkeys(REGION_KEYS, region_aliases(cat))
    out["val_quantity"] = {q: label(q) for q in QUANTITIES}
    return out


REGION_KEYS = ("region", "sv_region", "rl_region", "cmp_region")


def region_label(rid: str, cat) -> str:
    """A region as the pickers list it (and a link holds it): "FR — France", so that typing "France" or
    "Virginia" finds it."""
    return f"{rid} — {cat.regions[rid].name}"


def region_aliases(cat) -> dict[str, str]:
    """Other names of each region's label, as old links and people write them: its id ("FR"), its place
    name ("France") and the former "FR (France)"."""
    out = {}
    for rid, r in cat.regions.items():
        label = region_label(rid, cat)
        out |= {r.name: label, f"{rid} ({r.name})": label, rid: label}
    return out


# ---------------------------------------------------------------- which inputs each page shows
# (url_path -> keys): a page switch carries their values into the new page's link (widgets.restore_inputs)
_PLAN = ("plan", *PLAN_KEYS)
PAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "": tuple(DEFAULTS), "planner": tuple(DEFAULTS),
    "compare": (*(k for k in DEFAULTS if k not in _PLAN and k not in ("hw", "n_dev", "region", "pue", "price",
                                                                        "stack", "moe_dispatcher", "moe_cf")),
                "cmp_hw", "cmp_region", "cmp_devices", "cmp_price", "cmp_view"),
    "explorer": (*(k for k in DEFAULTS if k not in _PLAN), "exp_objective", "exp_top", "exp_color", "exp_tp",
                 "exp_pp", "exp_cp", "exp_zero", "exp_mb", "exp_recompute"),
    "serving": tuple(SERVING_DEFAULTS), "posttraining": tuple(RLHF_DEFAULTS),
}
