"""MLPerf Training GPT-3 runs as checks no fit saw: the plan search against the logged throughput.

One responsibility: the public tables' MLPerf `gpt3` rows (rows.csv: tokens/s per device derived
from the result logs, whole runs with their evaluations) on catalog parts, predicted with the
default model and the plan search. The logs give the global batch but no TP/PP/DP, so these rows
are never fitted (`simulator.validation.public_rows_plan`: "no plan").

Precision, which the logs do not record:
- NVIDIA GPUs (NVIDIA's NeMo implementation, also run by Azure and Oracle): FP8. NeMo 24.07's FP8
  performance table links its GPT3-175B 512-GPU figure to mlcommons.org
  (excerpts/nemo_24.07_performance_summary.md, "at FP8 precision").
- TPUs under MaxText: BF16 assumed.
Left out: Gaudi 2 (Intel's own stack, precision not recorded) and TPU v5e under PAX (MLPerf v3.1;
precision not recorded).
"""

from __future__ import annotations

import re

from hardware_catalog import Catalog
from simulator.estimate import estimate
from simulator.scenario import scenario_from_dict
from simulator.validation.public_rows import load_public_rows
from simulator.validation.public_rows_csv import read_rows

METHOD = "plan search, MLPerf GPT-3 (never fitted)"


def _precision(acc_id: str, framework: str) -> str | None:
    """FP8 for NVIDIA parts, BF16 for MaxText on TPU, None for a stack whose precision is not known."""
    if acc_id.startswith("nvidia-"):
        return "fp8"
    if acc_id.startswith("google-tpu") and "maxtext" in framework.lower():
        return "bf16"
    return None


def mlperf_gpt3_predictions(catalog: Catalog) -> list[tuple[str, float, float, str]]:
    """(run, predicted, reported tokens/s per device, note) for every MLPerf gpt3 row on a catalog part
    with a known precision (module docstring)."""
    csv = read_rows(None)
    out = []
    for r in load_public_rows(catalog=catalog):
        if not (r.table.startswith("MLPerf Training v") and r.table.endswith(" gpt3") and r.accelerator_id):
            continue
        framework, notes = str(csv.loc[r.row, "framework"]), str(csv.loc[r.row, "notes"])
        precision = _precision(r.accelerator_id, framework)
        if precision is None:
            continue
        found = re.search(r"submitter=([^;]*)", notes)
        submitter = found.group(1) if found else "submitter not stated"
        sc = {"model": {"preset": "gpt3-175b", "seq_len": r.seq_len},
              "cluster": {"accelerator": r.accelerator_id, "devices": r.devices},
              "training": {"tokens": 1e11, "precision": precision,
                           "global_batch_tokens": float(r.global_batch_seqs * r.seq_len)},
              "pricing": {"usd_per_device_hour": 0.0}}
        est = estimate(scenario_from_dict(sc), catalog)
        name = f"{r.table.removesuffix(' gpt3')} GPT-3, {r.devices:,} {r.family} ({submitter})"
        out.append((name, est.tokens_per_s / r.devices, float(r.tokens_per_s_per_device),
                    f"{precision.upper()}; searched plan {est.plan}; {framework}; rows.csv row {r.row}"))
    return out
