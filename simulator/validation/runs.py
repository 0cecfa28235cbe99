"""Predictions against published training runs (`simulator/data/published_runs.csv`).

Each row becomes a scenario and up to four checks:
- `device_hours (reported throughput (arithmetic))`: a round-trip, not a prediction: our FLOP
  count divided by the run's own MFU or TFLOP/s (`device_hours_at_mfu`). It tests the FLOP
  convention and the time arithmetic only; `summary` lists it apart from the predictions;
- `device_hours (default model)`: the parallelism model's best plan with the software of the
  run's year (`_era`), and goodput;
- `energy_mwh`: with the run's device-hours and PUE; `power_model = "tdp"` for rows whose authors
  computed device-hours x TDP (a round-trip of their arithmetic, listed apart like the first),
  the default (calibrated) power model for measured rows, in the reports' scope: processors and
  hosts (Patterson et al.'s system power per processor includes memory, NIC, fans and host CPU),
  never switches or storage, so those rows set the network and storage power to 0;
- `co2e_t`: predicted energy x the run's own grid intensity;
- `tflops_per_device`: the parallelism model's throughput for the run's plan, in the run's own
  FLOP convention (Megatron's, Narayanan et al. 2021 eq. 3, counts recomputation), for the
  throughput benchmarks (`THROUGHPUT_SETUP`), and MFU for the Llama 3 rows of
  `extra_throughput_runs.csv` (also rows of the public tables the H100 priors are fitted to). Each runs with the
  software its paper describes (`_MEGATRON_2021`, `_LLAMA3_2024`, `_DEEPSEEK_V3_2024`), never with
  per-row numbers; DeepSeek-V3's whole-run tokens/s per H800 (the public tables' row) likewise.
- serving (`serving_benchmarks.csv`): a replica's output tokens/s at the engine's batch limit, or
  the inter-token latency at concurrency 1, from the serving model (serving.py, inference.py).
How each row is read (model shape, convention, PUE scope) is in `ROW_SETUP`, with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from statistics import median
from typing import Any

import pandas as pd

from hardware_catalog import Catalog, load_catalog
from simulator.estimate import estimate
from simulator.model.flops import model_flops_per_token
from simulator.scenario import scenario_from_dict
from simulator.validation.mlperf import METHOD as MLPERF_METHOD, mlperf_gpt3_predictions

# Row name -> how to read it. preset: model shape; energy: "tdp" | "measured" | None (no energy
# check); pue: override of the row's PUE where the reported energy excludes it; devices: nominal
# count where the paper gives none (affects only plan and goodput); recompute: the FLOPs behind a
# reported TFLOP/s (BLOOM and Megatron count full activation recomputation).
ROW_SETUP: dict[str, dict[str, Any]] = {
    "GPT-3 175B": {"preset": "gpt3-175b", "energy": "measured"},
    "T5-11B": {"energy": "measured", "why": "encoder-decoder: dense decoder proxy, tokens from reported FLOPs"},
    "Meena 2.6B": {"energy": "measured", "why": "dense decoder proxy, tokens from reported FLOPs"},
    "GShard-600B (MoE translation)": {"energy": "measured", "active_proxy": True,
                                      "why": "MoE: dense proxy of the active parameters"},
    "Switch Transformer 1500B (MoE)": {"energy": "measured", "active_proxy": True,
                                       "why": "MoE: dense proxy of the active parameters"},
    "OPT-175B (LLaMA-paper normalized estimate)": {"preset": "gpt3-175b", "energy": "tdp"},
    "BLOOM-176B": {"preset": "bloom-176b", "energy": "tdp", "pue": 1.0, "recompute": "full",
                   "why": "reported MWh = GPU-h x 400 W without PUE; 156 TFLOP/s counts recompute"},
    "BLOOM-176B (LLaMA-paper normalized estimate)": {"preset": "bloom-176b", "energy": "tdp"},
    "LLaMA-7B": {"preset": "llama-7b", "energy": "tdp", "devices": 1024},
    "LLaMA-13B": {"preset": "llama-13b", "energy": "tdp", "devices": 1024},
    "LLaMA-33B": {"preset": "llama-33b", "energy": "tdp", "devices": 2048},
    "LLaMA-65B": {"preset": "llama-65b", "energy": "tdp"},
    "Llama 2 7B": {"preset": "llama2-7b", "devices": 1024},
    "Llama 2 13B": {"preset": "llama2-13b", "devices": 1024},
    "Llama 2 70B": {"preset": "llama2-70b", "devices": 2048},
    "Gopher 280B": {"energy": "measured", "why": "1,066 MWh uses a category-average 283 W per TPU v3"},
    "Phi-3-medium 14B": {},
    "Phi-3.5-mini": {},
    "StarCoderBase 15.5B": {"energy": "measured", "pue": 1.0,
                            "why": "reported kWh = GPU-h x an assumed 280 W average, no PUE"},
    "Megatron GPT-3 174.6B PTD-P (384 GPUs)": {"preset": "gpt3-175b", "recompute": "full"},
    "Megatron GPT-3 174.6B PTD-P (1536 GPUs)": {"preset": "gpt3-175b", "recompute": "full"},
    "Megatron GPT-3 174.6B ZeRO-3 (no MP) (384 GPUs)": {"preset": "gpt3-175b", "recompute": "full"},
    "Megatron GPT-3 174.6B ZeRO-3 (no MP) (1536 GPUs)": {"preset": "gpt3-175b", "recompute": "full"},
}

# Megatron-LM 2021 era (Narayanan et al. 2021; BLOOM's Megatron-DeepSpeed 2022): fp16 (BLOOM bf16),
# unfused attention (FlashAttention came in 2022), no sequence parallelism (Korthikanti 2022),
# full activation recomputation (their FLOP counts include it), no interleaving where the plan is
# not published, no TP/DP communication overlap. The plan fields given are the paper's; the micro-batch is searched.
_MEGATRON_2021 = {"recompute": "full", "sequence_parallel": False, "flash_attention": False, "interleave": 1,
                  "overlap_comm": False}
# DeepSpeed ZeRO-3 of 2021 (Narayanan et al. 2021's "ZeRO-3 without model parallelism" rows): each
# partitioned parameter gathered by a list-output all_gather, whose n chunks PyTorch's
# ProcessGroupNCCL copies one `copy_` at a time (perf_params.list_copy_overhead_s). 5 us per copy:
# the low end of the 5-25 us of host work per PyTorch op ("From PyTorch op to kernel launch",
# jiahuanglin.xyz), as the loop runs in C++ without the Python, pybind11 and autograd layers
# (engineering estimate, unverified).
_DEEPSPEED_2021 = {"list_copy_overhead_s": 5e-6}
THROUGHPUT_SETUP: dict[str, dict[str, Any]] = {
    "Megatron PTD-P GPT 1.7B (32 GPUs)": {"preset": "megatron-1.7b", "zero": 0},
    "Megatron PTD-P GPT 7.5B (128 GPUs)": {"preset": "megatron-7.5b", "zero": 0},
    "Megatron PTD-P GPT 39.1B (512 GPUs)": {"preset": "megatron-39.1b", "zero": 0},
    "Megatron PTD-P GPT 145.6B (1536 GPUs)": {"preset": "megatron-145.6b", "zero": 0},
    "Megatron PTD-P GPT 529.6B (2520 GPUs)": {"preset": "megatron-529.6b", "zero": 0},
    "Megatron GPT-3 174.6B PTD-P (384 GPUs)": {"preset": "gpt3-175b", "zero": 0, "tp": 8},
    "Megatron GPT-3 174.6B PTD-P (1536 GPUs)": {"preset": "gpt3-175b", "zero": 0, "tp": 8},
    "Megatron GPT-3 174.6B ZeRO-3 (no MP) (384 GPUs)": {"preset": "gpt3-175b", "zero": 3, "tp": 1, "pp": 1,
                                                        "perf": _DEEPSPEED_2021},
    "Megatron GPT-3 174.6B ZeRO-3 (no MP) (1536 GPUs)": {"preset": "gpt3-175b", "zero": 3, "tp": 1, "pp": 1,
                                                         "perf": _DEEPSPEED_2021},
    "BLOOM-176B": {"preset": "bloom-176b", "zero": 1, "precision": "bf16"},
}


def megatron_flops_per_step(batch_seqs: int, seq: int, layers: int, hidden: int, vocab: int) -> float:
    """Narayanan et al. 2021 eq. 3: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)), recompute included."""
    return 96.0 * batch_seqs * seq * layers * hidden**2 * (1 + seq / (6 * hidden) + vocab / (16 * layers * hidden))


# Checks whose "prediction" uses the run's own reported throughput: arithmetic round-trips.
ROUND_TRIP = "reported throughput (arithmetic)"
# The authors' own energy arithmetic (their device-hours x TDP x PUE) redone: also a round-trip,
# testing that we read their convention, not how well the power model predicts.
TDP_CONVENTION = "tdp convention"
ROUND_TRIPS = (ROUND_TRIP, TDP_CONVENTION)


def device_hours_at_mfu(train_flops: float, mfu: float, peak_flops_per_device: float) -> float:
    """Device-hours to execute `train_flops` model FLOPs at `mfu` of each device's dense peak
    (FLOP/s), failure-free: train_flops / (mfu x peak x devices) / 3600 s of wall clock on
    `devices` devices, i.e. train_flops / (mfu x peak) / 3600 device-hours (docs/design.md section 2)."""
    return train_flops / (mfu * peak_flops_per_device) / 3600.0


HARDWARE = [  # substring of the CSV's hardware column -> catalog id (first match wins)
    ("V100", "nvidia-v100-sxm2-32gb"), ("A100 40GB", "nvidia-a100-sxm-40gb"),
    ("A100", "nvidia-a100-sxm-80gb"), ("H100", "nvidia-h100-sxm-80gb"), ("TPU v3", "google-tpu-v3"),
]


@dataclass(frozen=True)
class Check:
    run: str
    quantity: str
    method: str
    predicted: float
    reported: float
    note: str = ""

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.predicted - self.reported) / self.reported


def load_runs() -> pd.DataFrame:
    """The packaged copy of ../shared/validation/published_runs.csv."""
    with resources.files("simulator").joinpath("data/published_runs.csv").open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


def _num(row: pd.Series, col: str) -> float | None:
    v = row.get(col)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _era(year: int) -> dict[str, bool]:
    """Software a run of `year` could use: FlashAttention (Dao et al., mid-2022) and sequence
    parallelism (Korthikanti et al., mid-2022) from 2023 on, overlapped TP/DP communication
    (Transformer Engine, Megatron-LM overlap options) from 2024 on."""
    return {"flash_attention": year >= 2023, "sequence_parallel": year >= 2023, "overlap_comm": year >= 2024}


def _base_scenario(row: pd.Series, setup: dict, acc_id: str) -> dict[str, Any]:
    seq = int(_num(row, "seq_len") or 2048)
    if setup.get("preset"):
        model: dict[str, Any] = {"preset": setup["preset"], "seq_len": seq}
    else:
        n = _num(row, "params_active") if setup.get("active_proxy") else _num(row, "params_total")
        model = {"params": n, "seq_len": seq}
    devices = int(_num(row, "num_accelerators") or setup.get("devices", 1024))
    tokens = _num(row, "tokens")
    if tokens is None:  # derive from the reported FLOPs so that train_flops matches them
        spec = scenario_from_dict({"model": model, "training": {"tokens": 1.0},
                                   "cluster": {"accelerator": acc_id, "devices": 1}}).model.spec()
        flops = _num(row, "reported_training_flops")
        tokens = flops / model_flops_per_token(spec) if flops else 300e9
    batch = _num(row, "global_batch_tokens") or 4 * 1024 * 1024
    return {
        "name": row["name"], "model": model,
        "training": {"tokens": tokens, "global_batch_tokens": batch, "precision": "bf16"},
        "cluster": {"accelerator": acc_id, "devices": devices},
        "parallelism": {**({"recompute": setup["recompute"]} if "recompute" in setup else {}),
                        **_era(int(row["year"]))},
        "pricing": {"usd_per_device_hour": 0.0},  # no run in the set publishes a cost to validate
    }


def _reported_device_hours(row: pd.Series) -> float | None:
    gh = _num(row, "gpu_hours")
    if gh:
        return gh
    n, days = _num(row, "num_accelerators"), _num(row, "wall_clock_days")
    return n * days * 24 if n and days else None


def _with(base: dict, **sections: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, extra in sections.items():
        out[key] = {**out.get(key, {}), **extra}
    return out


def checks_for_row(row: pd.Series, catalog: Catalog) -> list[Check]:
    """All checks that this row's published figures allow (module docstring)."""
    setup = ROW_SETUP.get(row["name"])
    acc_id = next((cid for key, cid in HARDWARE if key in str(row["hardware"])), None)
    if setup is None or acc_id is None:
        return []
    base = _base_scenario(row, setup, acc_id)
    why = setup.get("why", "")
    out: list[Check] = []
    no_failures = {"failures_per_device_hour": 0.0}
    reported_dh = _reported_device_hours(row)

    mfu, tflops = _num(row, "reported_mfu_pct"), _num(row, "reported_tflops_per_gpu")
    if reported_dh and (mfu or (tflops and setup.get("recompute") == "full")):
        peak = catalog.accelerator(acc_id).peak_flops(base["training"]["precision"])
        if mfu:
            run_mfu = mfu / 100
            note = "round-trip: our FLOPs / the run's MFU (PaLM convention)"
        else:  # hardware TFLOP/s counting full recompute -> model MFU = TFLOP/s * 3/4 / peak
            run_mfu = tflops * 1e12 * 0.75 / peak
            note = "round-trip: our FLOPs / the run's TFLOP/s (hardware FLOPs incl. full recompute)"
        spec = scenario_from_dict(base, row["name"]).model.spec()
        train_flops = model_flops_per_token(spec) * base["training"]["tokens"]
        out.append(Check(row["name"], "device_hours", ROUND_TRIP, device_hours_at_mfu(train_flops, run_mfu, peak),
                         reported_dh, "; ".join(x for x in (note, why) if x)))
    if reported_dh and _num(row, "tokens") and row["record_type"] == "training_run":
        est = estimate(scenario_from_dict(base, row["name"]), catalog)
        out.append(Check(row["name"], "device_hours", "default model", est.device_hours, reported_dh, why))

    mwh, kind = _num(row, "reported_energy_mwh"), setup.get("energy")
    if mwh and kind and reported_dh:
        pue = setup.get("pue", _num(row, "reported_pue") or 1.0)
        ci = _num(row, "reported_grid_intensity_kgco2_per_kwh")
        dc: dict[str, Any] = {"pue": pue, "power_model": "tdp" if kind == "tdp" else "calibrated"}
        if kind == "measured":  # the reports count processors and hosts only (module docstring)
            dc.update(network_w_per_device=0.0, storage_pb=0.0)
        if ci:
            dc["carbon_intensity_kg_per_kwh"] = ci
        sc = _with(base, training={"device_hours": reported_dh}, datacenter=dc, reliability=no_failures)
        est = estimate(scenario_from_dict(sc, row["name"]), catalog)
        method = TDP_CONVENTION if kind == "tdp" else "default power model"
        out.append(Check(row["name"], "energy_mwh", method, est.energy_mwh, mwh, why))
        tco2 = _num(row, "reported_tco2e")
        if tco2 and ci:
            out.append(Check(row["name"], "co2e_t", method, est.co2e_t, tco2, why))
    return out


def throughput_check(row: pd.Series, catalog: Catalog) -> Check | None:
    """Predicted vs published per-device TFLOP/s for a benchmark row of `THROUGHPUT_SETUP`."""
    setup = THROUGHPUT_SETUP.get(row["name"])
    acc_id = next((cid for key, cid in HARDWARE if key in str(row["hardware"])), None)
    if setup is None or acc_id is None:
        return None
    seq = int(_num(row, "seq_len"))
    batch_seqs = round(_num(row, "global_batch_tokens") / seq)
    devices = int(_num(row, "num_accelerators"))
    plan = {**_MEGATRON_2021, **{k: v for k, v in setup.items() if k in ("zero", "tp", "pp")}}
    for key in ("tp", "pp", "dp"):
        if _num(row, key):
            plan[key] = int(_num(row, key))
    sc = {"name": row["name"], "model": {"preset": setup["preset"], "seq_len": seq},
          "training": {"tokens": 1e9, "global_batch_tokens": batch_seqs * seq,
                       "precision": setup.get("precision", "fp16")},
          "cluster": {"accelerator": acc_id, "devices": devices}, "parallelism": plan,
          "efficiency": {"perf": setup.get("perf", {})}, "pricing": {"usd_per_device_hour": 0.0}}
    est = estimate(scenario_from_dict(sc, row["name"]), catalog)
    m = scenario_from_dict(sc).model.spec()
    predicted = megatron_flops_per_step(batch_seqs, seq, m.layers, m.d_model, m.vocab) / est.step_time_s / devices
    role = "held out (A100 priors fitted to the public tables)"
    plan_s = " ".join(f"{k}={est.plan[k]}" for k in ("tp", "pp", "dp", "microbatch", "zero"))
    return Check(row["name"], "tflops_per_device", "parallelism model", predicted / 1e12,
                 float(_num(row, "reported_tflops_per_gpu")), f"{role}; plan {plan_s}")


def load_extra_runs() -> pd.DataFrame:
    """Throughput rows outside the shared validation set (`simulator/data/extra_throughput_runs.csv`)."""
    with resources.files("simulator").joinpath("data/extra_throughput_runs.csv").open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


# Llama 3 405B pre-training (Dubey et al. 2024 sec. 3.3.2), as the paper describes it: context
# parallelism by all-gather of K and V (exposed, chosen for document masks). The attention kernel and
# everything else come from the catalog's H100 priors (fitted to the public tables).
_LLAMA3_2024 = {"parallelism": {"cp_comm": "all_gather"}}


def llama3_check(row: pd.Series, catalog: Catalog) -> Check:
    """Predicted vs published BF16 MFU for a Llama 3 405B row (the paper's TP/CP/PP/DP and CP
    method, 2024 attention kernels; the plan search picks the rest)."""
    sc = {"name": row["name"], "model": {"preset": row["preset"], "seq_len": int(row["seq_len"])},
          "training": {"tokens": 1e9, "global_batch_tokens": float(row["global_batch_tokens"])},
          "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": int(row["num_accelerators"])},
          "parallelism": {**{k: int(row[k]) for k in ("tp", "cp", "pp", "dp")}, **_LLAMA3_2024["parallelism"]},
          "pricing": {"usd_per_device_hour": 0.0}}
    est = estimate(scenario_from_dict(sc, row["name"]), catalog)
    return Check(row["name"], "mfu_pct", "parallelism model", 100 * est.mfu, float(row["reported_mfu_pct"]),
                 f"H100 priors fitted to the public tables (these rows among them); plan {' '.join(f'{k}={est.plan[k]}' for k in ('microbatch', 'recompute', 'interleave'))} "
                 "searched; Llama 3's all-gather CP; "
                 + str(row["verification"]))


# DeepSeek-V3 pre-training (arXiv:2412.19437) as its report describes it: sec. 3.2, 16-way pipeline,
# 64-way expert parallelism over 8 nodes, ZeRO-1, no tensor parallelism; DeepEP-style dispatch (once
# per node, FP8) with node-limited routing (the preset's 4 of 8 groups); DualPipe hides the
# all-to-all (sec. 3.2.1). 14.8T tokens (sec. 4.2), batch up to 15,360 sequences of 4,096 (sec. 4.2).
_DEEPSEEK_V3_2024 = {"parallelism": {"pp": 16, "ep": 64, "tp": 1, "cp": 1, "zero": 1, "moe_dispatcher": "deepep"},
                     "efficiency": {"perf": {"ep_overlap": 1.0}}}
DEEPSEEK_SOURCE = "DeepSeek-V3 Technical Report (arXiv:2412.19437)"


def deepseek_v3_check(catalog: Catalog) -> Check:
    """Predicted vs reported whole-run tokens/s per H800 for DeepSeek-V3's pre-training (the public
    tables' row, derived there from 180K H800-hours per trillion tokens): the report's plan and
    software, the catalog's H800 priors (inherited from H100's fit), goodput included."""
    from simulator.validation.public_rows_csv import cell_num, read_rows

    rows = read_rows(None)
    (row,) = rows[rows["source"] == DEEPSEEK_SOURCE].to_dict("records")
    tokens = 14.8e12
    sc = {"name": "DeepSeek-V3 (2048 H800)", "model": {"preset": "deepseek-v3"},
          "training": {"tokens": tokens, "global_batch_tokens": 15360 * 4096, "precision": "fp8"},
          "cluster": {"accelerator": "nvidia-h800-sxm-80gb", "devices": int(row["devices"])},
          **_DEEPSEEK_V3_2024, "pricing": {"usd_per_device_hour": 0.0}}
    est = estimate(scenario_from_dict(sc, sc["name"]), catalog)
    predicted = tokens / (est.device_hours * 3600)
    return Check(sc["name"], "tokens_per_s_per_device", "parallelism model", predicted,
                 cell_num(row["tokens_per_s_per_device"]),
                 f"whole run, goodput included; plan recompute={est.plan['recompute']} searched; DeepEP dispatch, "
                 "DualPipe overlap (ep_overlap 1.0), H800 priors inherited from H100's fit; reported figure derived "
                 "in the public tables from 180K H800-hours per trillion tokens")


def load_serving_benchmarks() -> pd.DataFrame:
    """Published inference benchmarks (`simulator/data/serving_benchmarks.csv`, sources per row)."""
    with resources.files("simulator").joinpath("data/serving_benchmarks.csv").open("r", encoding="utf-8") as f:
        return pd.read_csv(f)


def serving_check(row: pd.Series, catalog: Catalog) -> Check:
    """Predicted vs published serving figure: a replica's output tokens/s at the engine's batch limit
    (max-throughput rows) or the inter-token latency at a fixed batch (per-user rows)."""
    serving = {"prompt_tokens": int(row["prompt_tokens"]), "output_tokens": int(row["output_tokens"]),
               "tp": int(row["tp"]), "dtype": row["dtype"], "kv_dtype": row["dtype"], "min_tokens_per_s_per_user": 0}
    if not pd.isna(row["batch"]) and str(row["batch"]).strip():
        serving["batch"] = int(float(row["batch"]))
    sc = {"name": row["name"], "model": {"preset": row["preset"]},
          "cluster": {"accelerator": row["accelerator"], "devices": int(row["devices"])}, "serving": serving,
          "pricing": {"usd_per_device_hour": 0.0}}
    est = estimate(scenario_from_dict(sc, row["name"]), catalog)
    if row["metric"] == "inter_token_latency_ms":
        predicted = 1e3 * est.values["decode_step_s"]
    else:
        predicted = est.values["capacity_tokens_per_s"]
    return Check(row["name"], row["metric"], "serving roofline", predicted, float(row["reported"]),
                 f"batch {est.values['batch']}; {row['software']}; {row['verification']}")


def run_validation(catalog: Catalog | None = None) -> list[Check]:
    """Every check for every published run the catalog can simulate."""
    cat = catalog or load_catalog()
    runs = load_runs()
    checks = [c for _, row in runs.iterrows() for c in checks_for_row(row, cat)]
    checks += [c for _, row in runs.iterrows() if (c := throughput_check(row, cat)) is not None]
    checks += [llama3_check(row, cat) for _, row in load_extra_runs().iterrows()]
    checks.append(deepseek_v3_check(cat))
    checks += [Check(run, "tokens_per_s_per_device", MLPERF_METHOD, predicted, reported, note)
               for run, predicted, reported, note in mlperf_gpt3_predictions(cat)]
    checks += [serving_check(row, cat) for _, row in load_serving_benchmarks().iterrows()]
    return checks


def summary(checks: list[Check]) -> list[dict[str, Any]]:
    """Median and max absolute % error per (quantity, method): the predictions first, then the
    arithmetic round-trips (`kind` says which), which do not measure the simulator's accuracy."""
    groups: dict[tuple[str, str], list[float]] = {}
    for c in checks:
        groups.setdefault((c.quantity, c.method), []).append(abs(c.error_pct))
    rows = [{"kind": "round-trip" if m in ROUND_TRIPS else "prediction", "quantity": q, "method": m, "rows": len(v),
             "median_abs_error_pct": median(v), "max_abs_error_pct": max(v)} for (q, m), v in groups.items()]
    return sorted(rows, key=lambda r: r["kind"] == "round-trip")  # stable: predictions first
