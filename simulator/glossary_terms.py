"""The hand-written part of docs/glossary.md: what the typed `Estimate` figures (simulator/result.py)
do not say themselves. `simulator.reference_docs` renders it; tests/test_reference_docs.py checks
every key here against real outputs (an entry for a key no estimate gives fails, and so does an
output key without an entry).
"""

from __future__ import annotations

from simulator.system.perf_params import PerfParams

#: The paragraphs that open the glossary and its sections.
TEXT = {
    "intro": (
        "`trainsim estimate -f json` prints, and `Estimate.to_dict()` returns, one JSON object: flat figures at the "
        "top level (in Python also attributes: `est.mfu`), the `plan`, the `breakdown`, the `assumptions` and, "
        "with uncertainty samples, `p10` / `p50` / `p90`. Units are in the names: `_s` seconds, `_days`, `_w` "
        "watts, `_kwh`, `_mwh`, `_gb` (10^9 bytes), `_t` tonnes and `_kg` of CO2e, `_m3`, `_usd`. *Given: some* "
        "marks a figure only some estimates have (serving, RLHF, an hourly carbon profile); cost figures are null "
        "when there is no price. The scenario's keys are in docs/scenario-keys.md."),
    "plan": (
        "The parallelism plan: what `[parallelism]` fixed, the plan search's choice for the rest. A serving plan "
        "describes its replicas and has no `interleave` or `sequence_parallel`."),
    "breakdown": (
        "One row per component, for the whole run (a step's parts scaled to the run, then the rows that are "
        "energy, cost or carbon only)."),
    "assumptions": (
        "A list of sentences: the defaults the estimate chose (the global batch, the shape built from "
        "`model.params`), its approximations (hourly carbon at constant power), a missing price, MFU above HFU, the catalog's "
        "note on a dense peak that is derived or substituted (B200's FP8 from the sparse figure, V100's FP16 "
        "rate under bf16). "
        "`trainsim estimate` prints them on stderr as `note:` lines."),
    "warnings": (
        "A list of sentences, empty for a plausible scenario: inputs the schema accepts but no real run has (a "
        "sequence far beyond any published training context, a global batch below one sequence, fp8 or fp4 training "
        "on a part whose catalog lists no faster rate for it than bf16, a PUE above 3, a grid intensity above "
        "coal's, a price far above any cloud price), each naming the key, the value and "
        "what it was compared with (simulator/plausibility.py). They change no figure. `trainsim estimate` prints "
        "them on stderr as `warning:` lines and the dashboard beside the figures."),
    "bands": (
        "Only with `uncertainty.samples` > 0 (`trainsim estimate --uncertainty N`): percentiles over N joint draws "
        "of throughput, device power, failure rate, PUE, grid intensity and price (spreads in `[uncertainty]`, "
        "sources in simulator/footprint/uncertainty.py); the medians stay close to the point estimate. Each is an "
        "object with these keys:"),
    "project": (
        "`trainsim project -f json` (`ProjectEstimate.to_dict()`) gives the stages of a project file one by one "
        "and their sums. A serving or evaluation stage trains nothing, so its `train_flops` counts 0 in the "
        "project (its `run` keeps the estimate's figure); a sum with a stage without a price is null."),
}

#: Headings of the top-level figures, each starting at the first `Estimate` figure it names
#: (the figures keep their declaration order in simulator/result.py).
GROUPS = {
    "name": "What was estimated",
    "tokens": "Compute and time",
    "memory_gb_per_device": "Memory per device",
    "power_w_per_device": "Energy, carbon, water and cost",
    "utilisation": "Serving only",
    "rlhf_sequences": "RLHF only",
}

#: The top-level keys that are not flat figures.
STRUCTURED = {
    "plan": ("object", "the parallelism plan the estimate used (section `plan` below)"),
    "breakdown": ("list of objects", "time, energy, cost and CO2e by component (section `breakdown` below)"),
    "assumptions": ("list of strings", "what the estimate assumed or noted (section `assumptions` below)"),
    "warnings": ("list of strings", "inputs that are probably not what was meant (section `warnings` below)"),
    "p10": ("object", "10th percentiles of the Monte Carlo figures; only with uncertainty samples (below)"),
    "p50": ("object", "medians of the Monte Carlo figures; only with uncertainty samples"),
    "p90": ("object", "90th percentiles of the Monte Carlo figures; only with uncertainty samples"),
}

#: `plan` (simulator.execution.plan.Plan): the chosen values of the [parallelism] keys.
PLAN = {
    "tp": "tensor-parallel degree: each layer's matrices split over `tp` devices (serving: devices per replica)",
    "pp": "pipeline-parallel stages",
    "cp": "context-parallel degree: each sequence split over `cp` devices",
    "ep": "expert-parallel degree: MoE experts spread over `ep` devices",
    "dp": "data-parallel degree: model replicas (serving: replicas)",
    "microbatch": "sequences per micro-batch (serving: sequences in flight per replica)",
    "zero": "ZeRO stage: 0 none, 1 optimizer states, 2 and gradients, 3 and weights (FSDP) sharded over DP",
    "recompute": ("activation recomputation: none, selective (the attention core), mlp (the attention core and the "
                  "MLP), full (the whole forward) or offload (MaxText: layer input, Q, K, V in host memory, the rest "
                  "recomputed)"),
    "interleave": "virtual pipeline stages per device (interleaved 1F1B); training only",
    "sequence_parallel": "Megatron sequence parallelism on (activations outside the matmuls split over TP); "
                         "training only",
}

#: The fields of every `breakdown` row.
BREAKDOWN_FIELDS = {
    "component": "what the row is (the components below)",
    "seconds": "wall-clock seconds of the whole run spent in it (0 for rows that are energy, cost or carbon only); "
               "the rows add up to `wall_clock_days`",
    "energy_kwh": "its energy (kWh): the devices' or the hosts' IT energy, and PUE's share in `facility_overhead`; "
                  "the rows add up to `energy_mwh`",
    "cost_usd": "its cost (USD; null without a price); the rows add up to `cost_usd`",
    "co2e_kg": "its CO2e (kg): operational, and embodied in the `embodied` row; the rows add up to "
               "`co2e_t` + `embodied_co2e_t`",
}

#: `breakdown` components, by workload.
COMPONENTS = {
    "compute": "training: the step's compute (GEMMs, attention, elementwise ops, recomputation), over the run",
    "tp_comm": "tensor-parallel communication not hidden behind compute (serving: the per-layer all-reduces)",
    "cp_comm": "context parallelism's K/V exchange not hidden behind attention",
    "ep_comm": "expert parallelism's all-to-alls (MoE dispatch and combine)",
    "pp_comm": "pipeline sends of activations and gradients",
    "bubble": "the pipeline bubble: (pp - 1) / interleave micro-batch times per step",
    "dp_comm": "data-parallel gradient reduction and ZeRO gathers not hidden behind compute",
    "optimizer": "the optimizer (AdamW) update",
    "checkpoint_and_failures": "time lost to checkpoints, failures and restarts (1 - goodput), at idle power",
    "host": "the hosts' energy (CPUs, memory, NICs and their optics, fans; scale-up switches such as NVSwitch)",
    "network": "the scale-out network's switches and their optics (a fat tree sized for the cluster, "
               "simulator/footprint/infrastructure.py), at constant power over the whole wall clock; "
               "0 inside one scale-up domain and under the tdp convention",
    "storage": "the high-speed storage kept powered for the run (PB x W per PB), over the whole wall clock; "
               "0 under the tdp convention",
    "facility_overhead": "facility energy beyond IT: cooling and power distribution (PUE - 1)",
    "embodied": "embodied CO2e of the devices' share of their life (co2e_kg only)",
    "capex": "owned hardware: the amortised purchase (cost only)",
    "electricity": "the electricity bill as its own row (owned hardware, serving and RLHF; 0 when the rental "
                   "price includes it)",
    "decode": "serving: decode steps (weights and KV cache read from HBM, or compute when that is longer)",
    "kernel_overhead": "serving: the kernel gaps of every layer of a decode step",
    "prefill": "serving: prompt prefills, in chunks",
    "idle_capacity": "serving: the fleet idle below full load, at idle power",
    "rollout_generation": "RLHF: generating the responses (the serving model)",
    "scoring_forward": "RLHF: forward passes of the reference, policy, reward and (ppo) critic models",
    "policy_update": "RLHF: training the policy (the ordinary training estimate)",
    "critic_update": "RLHF, ppo: training the critic",
}

#: What `efficiency_source` can say; `<...>` stands for a part that varies. Most specific layer first.
EFFICIENCY_SOURCES = {
    "training.device_hours": "the scenario gave the run's device-hours: the time model was skipped",
    "performance model: catalog [perf] of <accelerator> (fitted to public tables)":
        "the step time of the chosen plan, with the accelerator's own [perf] priors, fitted to published "
        "throughput tables (`, <stack> stack` added when `parallelism.stack` picked a separately fitted stack)",
    "performance model: catalog [perf] of <accelerator> (inherited from <sibling>)":
        "the same, with the priors of its nearest measured sibling (a part without published rows)",
    f"performance model: {PerfParams().source}": "the same, for a part without a [perf] table",
    "calibration profile <path> over <the rest>": "a calibration profile's `perf` parameters over the priors",
    "scenario efficiency.perf (<keys>) over <the rest>": "parameters set by hand in `[efficiency] perf`, "
                                                         "over the profile's and the priors",
}

#: What `power_source` can say.
POWER_SOURCES = {
    "catalog prior (<accelerator>)": "idle and TDP power from the catalog; the dynamic power per TFLOP/s so "
                                     "that a device reaches TDP at the catalog's `hfu_at_tdp`",
    "calibration profile <path>": "idle and dynamic power fitted to measured runs (`trainsim calibrate fit`)",
}

#: `trainsim project -f json`: its top level, and every stage's own keys (the rest are the run's).
PROJECT = {
    "name": "the project's name",
    "stages": "one object per stage, in order (keys below)",
    "totals": "the summed figures over the stages (keys below)",
    "breakdown": "the stages' breakdown rows summed by component (fields as in an estimate's `breakdown`)",
}
STAGE = {
    "name": "the stage's name",
    "kind": "what the stage is",
    "repeat": "runs of this stage; its figures are one run's x repeat, the runs one after another",
    "source": "the scenario file the stage came from, or `inline`",
    "description": "the stage's description (null when none)",
    "notes": "the run's assumptions, then what the project assumed about the stage",
    "run": "one run's estimate, as `trainsim estimate -f json` gives it",
}

#: Short explanations of the figures people confuse, in order.
CONCEPTS = {
    "MFU and HFU": """\
`mfu` and `hfu` both divide an achieved FLOP rate per device by the device's dense peak at the run's
precision; they differ in which FLOPs they count. **Model FLOPs** (`mfu`, `train_flops`,
`model_flops_per_token`) follow one convention everywhere, PaLM's (Chowdhery et al. 2022, appendix B):
`6 N + 12 L d_attn T` per token, with N the active matmul weights (non-embedding matrices plus the
output projection) and the attention matmuls counted in full, not halved for the causal mask. They
depend on the model and the tokens only, so MFU compares runs fairly (LoRA: `4 N + 6 N_lora + 12 L d_attn
T`, the frozen base gets no weight gradients). **Hardware FLOPs** (`hfu`) are what the devices execute:
recomputation added (full recompute runs the forward again, +1/3; selective re-runs the attention core,
mlp also the MLP) and attention as the kernel runs it: a causal FlashAttention kernel skips the masked half of the score
and value matmuls. So recomputation lifts HFU above MFU, while at long causal contexts the skipped half
can put MFU above HFU, even above 1 (the assumptions then say so). HFU never exceeds 1: every estimate
checks it. Published figures use several conventions (some halve causal attention): compare tokens/s
per device where you can.""",
    "Goodput": """\
`goodput` is the share of the wall clock spent on productive training. Large runs are interrupted
(Llama 3: 419 interruptions in 54 days on 16,384 GPUs): the job writes a checkpoint every tau seconds
and after a failure restarts and redoes the work since the last checkpoint. The Young (1974) / Daly
(2006) first-order model takes the job's mean time between failures M = 1 / (devices x failures per
device-hour), the checkpoint write time delta and the restart time R, checkpoints at the optimal
interval tau = sqrt(2 delta M), and gives goodput = 1 - delta / tau - (tau / 2 + R) / M. The wall clock
is the productive time divided by goodput; the lost time is the `checkpoint_and_failures` row of the
breakdown, at idle power. Serving reports 1 (replicas fail over; lost work is not modelled).""",
    "Where the step time and the power come from": """\
There is no MFU input: the step time comes from the performance model for the chosen plan, or from
reported device-hours. `efficiency_source` names which, and whose parameters the model used; layers
set in the scenario or a calibration profile come first, joined by ` over `. `power_source` names the
power model's parameters. `<...>` stands for a part that varies:""",
    "IT energy and facility energy": """\
`energy_it_mwh` is the IT equipment's energy: the accelerators (while computing, at the power their
achieved TFLOP/s implies, capped at TDP; idle while checkpointing, restarting or waiting for traffic),
their hosts (CPUs, memory, NICs: the catalog's host power per device), the scale-out network's
switches and optics (a fat tree sized for the cluster) and the high-speed storage, the last three at
constant power over the whole wall clock. `energy_mwh` is the facility's: IT energy x PUE (The Green
Grid), which adds cooling and power distribution (the `facility_overhead` row). Operational CO2e and
the electricity bill use facility energy; water uses IT energy (WUE is litres per IT kWh). With
`datacenter.power_model = "tdp"` the IT energy is device-hours x TDP and hosts, network and storage are
left out, the convention of many published reports. The split people quote ("GPU compute 80%, cooling
16%, networking and storage 4%") is `simulator.footprint.energy_split.energy_split(est)`: the shares
of facility energy of accelerators, hosts, network, storage and cooling & facility, from the breakdown
rows (the Planner draws it).""",
    "Operational, hourly and embodied CO2e": """\
`co2e_t` is operational: facility energy x the grid's annual-average intensity
(`carbon_intensity_kg_per_kwh`; location-based, GHG Protocol scope 2). `co2e_t_hourly` appears only
with `datacenter.carbon_profile`: the same facility energy, at constant power from `run_start_utc`,
against an hourly intensity profile, to show how much the start time matters (`trainsim carbon`
sweeps the start); `co2e_t` stays the annual-average figure. A profile belongs to its region (its
CSV's `# region: <id>` line): one for another region than `datacenter.region` is refused, one without
the line is used with a note that its region is unknown, and a profile whose mean differs from
`carbon_intensity_kg_per_kwh` by more than 5% is used as given (not rescaled), with a note. `embodied_co2e_t` is the devices'
manufacturing footprint, the run's share of their life (per-device footprint x devices x run time /
lifetime, the linear amortisation of LLMCarbon). It is not in `co2e_t`: the total is `co2e_t +
embodied_co2e_t`, which is also what the breakdown's `co2e_kg` adds up to.""",
}
