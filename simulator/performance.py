"""Step time and the plan used for it.

This is the first time model: achieved throughput from an end-to-end MFU (catalog prior,
calibration profile or scenario), so the whole step is one named part. The parallelism model
(compute per op, exposed communication, pipeline bubble) replaces `step_time` behind the same
`StepTime` result without changing `estimate()`.

    tokens_per_s = devices * MFU * peak_flops / model_flops_per_token     (DESIGN sec. 2)
    step_time_s  = global_batch_tokens / tokens_per_s
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from hardware_catalog.schema import Accelerator
from simulator.efficiency import Efficiency
from simulator.errors import InfeasiblePlanError
from simulator.flops import hardware_flops_per_token, model_flops_per_token
from simulator.memory import MemoryBreakdown, memory_per_device
from simulator.models import ModelSpec
from simulator.plan import Plan, check_plan, plan_problems


@dataclass(frozen=True)
class StepTime:
    """One optimizer step as a sum of named parts (seconds)."""

    parts_s: dict[str, float]
    model_flops_per_s_per_device: float
    hardware_flops_per_s_per_device: float

    @property
    def step_time_s(self) -> float:
        return sum(self.parts_s.values())


def step_time(model: ModelSpec, plan: Plan, acc: Accelerator, eff: Efficiency, precision: str,
              global_batch_tokens: float) -> StepTime:
    """Step time from the end-to-end MFU (module docstring)."""
    model_fps = eff.model_flops_per_s(acc, precision)
    tokens_per_s = plan.devices * model_fps / model_flops_per_token(model)
    hw_ratio = hardware_flops_per_token(model, plan.recompute) / model_flops_per_token(model)
    return StepTime({"compute": global_batch_tokens / tokens_per_s}, model_fps, model_fps * hw_ratio)


def _pow2_upto(n: int) -> list[int]:
    return [2**i for i in range(int(math.log2(max(n, 1))) + 1)]


def complete_plan(partial: dict, model: ModelSpec, acc: Accelerator, devices: int,
                  global_batch_seqs: int) -> tuple[Plan, MemoryBreakdown]:
    """Fill the fields a scenario left out with the smallest model parallelism that fits.

    Candidates: TP a power of two inside the scale-up domain (at most 8), PP any divisor of the
    devices up to the layer count, ZeRO-1 then ZeRO-3, selective then full recompute; the first
    (selective before full, fewest model-parallel ranks, ZeRO-1 before 3, more TP) that fits
    wins. Micro-batch 1 unless given.
    Fields the user set are kept.
    Raises InfeasiblePlanError naming the closest plan and its overflow when nothing fits.
    """
    hbm_gb = acc.memory.hbm_gb.value
    tp_max = min(8, int(acc.scale_up.domain_devices.value))
    tps = [partial["tp"]] if partial.get("tp") else _pow2_upto(tp_max)
    cp = partial.get("cp") or 1
    pps = [partial["pp"]] if partial.get("pp") else [
        p for p in range(1, model.layers + 1) if devices % (p * cp) == 0]
    zeros = [partial["zero"]] if partial.get("zero") is not None else [1, 3]
    recomputes = [partial["recompute"]] if partial.get("recompute") else ["selective", "full"]
    candidates = sorted(((rc, z, tp, pp) for rc in recomputes for z in zeros for tp in tps for pp in pps),
                        key=lambda t: (t[0] == "full", t[2] * t[3], t[1], -t[2]))
    best_fail: tuple[float, Plan, MemoryBreakdown] | None = None
    for recompute, zero, tp, pp in candidates:
        if devices % (tp * pp * cp):
            continue
        dp = partial.get("dp") or devices // (tp * pp * cp)
        ep = partial.get("ep") or (math.gcd(model.experts, dp * cp) if model.is_moe else 1)
        plan = Plan(tp=tp, pp=pp, cp=cp, ep=ep, dp=dp, microbatch=partial.get("microbatch") or 1,
                    zero=zero, recompute=recompute)
        if plan_problems(plan, model, devices, global_batch_seqs):
            continue
        mem = memory_per_device(model, plan, global_batch_seqs)
        if mem.total_gb <= hbm_gb:
            return plan, mem
        if best_fail is None or mem.total_gb < best_fail[0]:
            best_fail = (mem.total_gb, plan, mem)
    if best_fail is None:
        # No candidate is valid: report the rules the user's own choice breaks.
        plan = Plan(**{k: v for k, v in partial.items() if v is not None})
        plan = replace(plan, dp=partial.get("dp") or max(1, devices // (plan.tp * plan.pp * plan.cp)))
        check_plan(plan, model, devices, global_batch_seqs)
        raise InfeasiblePlanError(f"parallelism: no valid plan for {devices} devices")
    total, plan, mem = best_fail
    raise InfeasiblePlanError(
        f"parallelism: no plan fits in {hbm_gb:g} GB per {acc.id}; the closest, tp={plan.tp} pp={plan.pp} "
        f"dp={plan.dp} zero={plan.zero} recompute={plan.recompute}, needs {total:.1f} GB "
        f"(over by {total - hbm_gb:.1f} GB: weights {mem.weights_gb:.1f}, gradients {mem.gradients_gb:.1f}, "
        f"optimizer {mem.optimizer_gb:.1f}, activations {mem.activations_gb:.1f}); "
        "use more devices, a higher parallelism.zero, or recompute = \"full\""
    )


def fixed_plan(partial: dict, model: ModelSpec, acc: Accelerator, devices: int,
               global_batch_seqs: int) -> tuple[Plan, MemoryBreakdown]:
    """A fully specified plan: check its rules and that it fits, else InfeasiblePlanError."""
    tp, pp, cp = partial.get("tp") or 1, partial.get("pp") or 1, partial.get("cp") or 1
    dp = partial.get("dp") or max(1, devices // (tp * pp * cp))
    plan = Plan(tp=tp, pp=pp, cp=cp, ep=partial.get("ep") or 1, dp=dp,
                microbatch=partial.get("microbatch") or 1,
                zero=1 if partial.get("zero") is None else partial["zero"],
                recompute=partial.get("recompute") or "selective")
    check_plan(plan, model, devices, global_batch_seqs)
    mem = memory_per_device(model, plan, global_batch_seqs)
    hbm_gb = acc.memory.hbm_gb.value
    if mem.total_gb > hbm_gb:
        raise InfeasiblePlanError(
            f"parallelism: tp={plan.tp} pp={plan.pp} dp={plan.dp} zero={plan.zero} recompute={plan.recompute} "
            f"needs {mem.total_gb:.1f} GB per device but {acc.id} has {hbm_gb:g} GB (over by "
            f"{mem.total_gb - hbm_gb:.1f} GB: weights {mem.weights_gb:.1f}, gradients {mem.gradients_gb:.1f}, "
            f"optimizer {mem.optimizer_gb:.1f}, activations {mem.activations_gb:.1f}, "
            f"overhead {mem.overhead_gb:.1f})"
        )
    return plan, mem
