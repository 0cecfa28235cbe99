"""A published row's parallel layout as a `Plan`, read from its cells and framework notes.

One responsibility: the plan a row ran. Plan fields a row does not give take the framework's
documented default and are listed in `assumptions`: FSDP FULL_SHARD / MaxText FSDP -> ZeRO-3,
SHARD_GRAD_OP -> 2, Megatron/NeMo distributed optimizer -> 1, DDP -> 0; recompute none unless
stated (MaxText remat full -> full, minimal -> selective, save_dot_except_mlpwi -> mlp, custom with host
offload -> offload);
dp = devices / (tp * pp * cp). A MaxText recipe quoted in the notes (`per_device_batch_size=`,
`ici_*=`, supplied by `simulator.validation.public_rows_supplements`) gives tp, dp, ep and the batch.
A row without a usable plan gets the reason (no layout printed, a plan the simulator's checks
refuse, or a layout inconsistent in its source). `devices_of` reads a device count a table misprints.
"""

from __future__ import annotations

import re

from simulator.model.shapes import ModelSpec
from simulator.execution.plan import Plan, plan_problems
from simulator.validation.public_rows_csv import cell_int, note_int

_B200_LONG_SEQ = "Long Sequence Performance: LLAMA3-8B (FP8) - B200"
_B200_DEVICES = ("# of GPUs read as TP x PP x DP x CP = {plan}, not the printed {devices} (the sequence length in K, "
                 "as in the H100 table below it): another revision of the same page, NVIDIA/NeMo "
                 "docs/source/performance/performance_long_sequence.md with the markdown table '| SeqLen (K) | # of "
                 "GPUs | Batch Size | TP | CP | DP | TFLOPS / GPU |' (its commit not recorded where it was read), prints # "
                 "of GPUs = TP x CP x DP (2 to 256) with "
                 "the same TFLOPS/GPU, and the printed batch (8 and 4 sequences at 512K and 1M) cannot feed 4x the "
                 "printed DP")


def devices_of(r: dict, devices: int, assumptions: list[str]) -> int:
    """The row's device count: as printed, except in NeMo's B200 long-sequence table @8cfedd72, whose
    '# of GPUs' column repeats the sequence length in K, 4x the printed plan on every row
    (`_B200_DEVICES`)."""
    plan = 1
    for c in ("tp", "pp", "cp", "dp"):
        plan *= cell_int(r[c]) or 1
    if r["table"] != _B200_LONG_SEQ or plan * 4 != devices:
        return devices
    assumptions.append(_B200_DEVICES.format(plan=plan, devices=devices))
    return plan


def framework_of(r: dict) -> str:
    """The row's software stack: "fsdp" | "megatron" | "maxtext" | "other"."""
    fw, zero = r["framework"].lower(), r["zero_or_fsdp"]
    if "maxtext" in fw or fw == "pax" or r["accelerator"].startswith("TPU"):
        return "maxtext"
    if any(k in fw for k in ("nemo", "megatron", "primus", "megascale")):
        return "megatron"
    if "llm-foundry" in fw or "torchtune" in fw or (zero.startswith("FSDP") and "meta internal" not in fw):
        return "fsdp"
    return "other"


def _zero(zero: str, framework: str, assumptions: list[str]) -> int:
    """ZeRO stage from the FSDP / ZeRO cell, or the framework's default."""
    if "SHARD_GRAD_OP" in zero:
        return 2
    if zero == "DDP":
        return 0
    if "no reshard after forward" in zero:
        assumptions.append("FSDP without reshard after forward (Llama 3): gradients and optimizer states sharded, "
                           "parameters kept between forward and backward: zero=2")
        return 2
    if "DCN data-parallel across" in zero and "across 1 slice" not in zero:
        assumptions.append("FSDP within a slice, data parallel across slices: modelled as ZeRO-3 over all dp")
    if zero.startswith("FSDP") or (not zero and framework in ("fsdp", "maxtext")):
        return 3
    assumptions.append("optimizer sharding not stated: Megatron/NeMo distributed optimizer (zero=1) assumed")
    return 1


def _recompute(r: dict, assumptions: list[str]) -> str:
    """Activation recomputation, a `RECOMPUTE` level (plan.py): MaxText's `remat_policy=full` -> full,
    `minimal` -> selective, `save_dot_except_mlpwi` -> mlp, `custom` with host offload -> offload."""
    text = f"{r['recompute']} {r['notes']}"
    if r["recompute"].startswith("full") or "remat_policy=full" in text:
        return "full"
    if r["recompute"].startswith("none"):
        return "none"
    if re.search(r"remat custom.*offload", text):
        assumptions.append("MaxText remat custom with host offload taken as recompute 'offload' (layer input, Q, K, "
                           "V in host memory; host transfers taken as hidden)")
        return "offload"
    if "save_dot_except_mlpwi" in text:
        assumptions.append("MaxText remat save_dot_except_mlpwi taken as recompute 'mlp' (charges the MLP output "
                           "projection's forward too, which MaxText saves)")
        return "mlp"
    if "remat_policy=minimal" in text:
        return "selective"
    assumptions.append("activation recomputation not stated: framework default (none)")
    return "none"


def _no_plan_reason(r: dict) -> str:
    """Why a row that prints no parallel layout has no plan."""
    if r["source"].startswith("mlcommons"):
        return ("no plan: MLPerf result logs give the global batch and gradient-accumulation steps, not TP/PP/DP "
                "or step times (mlperf_training_extracted.jsonl); tokens/s spans the whole run, evals included")
    if "without CP" in r["notes"]:
        return "no plan: best configuration without CP not printed"
    if "tpu-recipes" in r["notes"]:
        return "no plan: recipe linked, not transcribed"
    return "no plan: parallel layout not stated"


def _maxtext_recipe(r: dict, devices: int) -> tuple[int, int, int, int] | str | None:
    """(tp, dp, ep, per-device batch) from a MaxText recipe quoted in the notes. MaxText's expert axis
    also shards the batch, so the data-parallel ranks are fsdp x expert x dcn (ep inside dp)."""
    pdbs = note_int(r, "per_device_batch_size")
    if pdbs is None:
        return None
    tp, fsdp, dcn = note_int(r, "ici_tp") or 1, note_int(r, "ici_fsdp") or -1, note_int(r, "dcn_fsdp") or 1
    ep = note_int(r, "ici_ep") or 1
    dp = devices // tp if fsdp == -1 else fsdp * ep * dcn
    if tp * dp != devices:
        return f"no plan: linked recipe is for {tp * dp} chips, the row for {devices}"
    return tp, dp, ep, pdbs


def row_plan(r: dict, fw: str, spec: ModelSpec | None, devices: int, assumptions: list[str]
             ) -> tuple[Plan | None, int | None, str]:
    """(plan, global batch in sequences, reason the row is unusable for its plan or '')."""
    par = {c: cell_int(r[c]) for c in ("tp", "pp", "cp", "ep", "dp")}
    gbs, mb = cell_int(r["global_batch_seqs"]), cell_int(r["microbatch"])
    recipe = _maxtext_recipe(r, devices) if fw == "maxtext" else None
    if isinstance(recipe, str):
        return None, gbs, recipe
    if recipe:
        par["tp"], par["dp"], par["ep"], gbs = recipe[0], recipe[1], recipe[2], recipe[3] * devices
        unverified = " (its mapping to this row is marked unverified)" if "not verified" in r["notes"] else ""
        assumptions.append(f"plan from the MaxText recipe quoted in the notes{unverified}")
    if (r["source"].startswith("mlcommons") or "without CP" in r["notes"]
            or not (any(par.values()) or r["zero_or_fsdp"])):
        return None, gbs, _no_plan_reason(r)
    tp, pp, cp, ep = (par[c] or 1 for c in ("tp", "pp", "cp", "ep"))
    dp = par["dp"] or devices // (tp * pp * cp)
    if not par["dp"]:
        assumptions.append("dp = devices / (tp * pp * cp)")
    if fw == "maxtext" and gbs:
        mb = gbs // dp
        assumptions.append("MaxText, no gradient accumulation: microbatch = global batch / dp")
    if mb is None and gbs is None:
        return None, None, "no plan: batch size not stated"
    if mb is None:
        mb = 1
        assumptions.append("microbatch not stated: 1 assumed")
    reason = ""
    if gbs is None and pp > 1:
        reason = "no global batch: with pp > 1 the pipeline bubble depends on it"
    elif gbs is None:
        gbs = mb * dp
        assumptions.append("global batch not stated: microbatch x dp (no gradient accumulation) assumed")
    if tp > 1 and fw != "fsdp":
        assumptions.append("sequence parallelism with tp > 1 assumed")
    plan = Plan(tp=tp, pp=pp, cp=cp, ep=ep, dp=dp, microbatch=mb, zero=_zero(r["zero_or_fsdp"], fw, assumptions),
                recompute=_recompute(r, assumptions), interleave=note_int(r, "VP") or note_int(r, "VPP") or 1,
                sequence_parallel=tp > 1)
    if not reason and spec is not None and gbs:
        problems = plan_problems(plan, spec, devices, gbs)
        reason = f"plan fails simulator checks: {'; '.join(problems)}" if problems else ""
    return plan, gbs, reason
