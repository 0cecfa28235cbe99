"""Parallelism plans: DP x TP x PP x CP x EP with ZeRO stage, micro-batch and recompute.

Validity rules (Narayanan et al. 2021; Megatron-LM argument checks): TP divides the attention
heads and the KV heads (or KV heads divide TP, replicated), PP does not exceed the layers,
TP*PP*CP*DP = devices, EP divides the experts and the DP*CP group, every DP rank gets at least one
micro-batch (the batch is rounded to whole micro-batches per rank).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from simulator.errors import InfeasiblePlanError
from simulator.models import ModelSpec

Recompute = Literal["none", "selective", "full"]


@dataclass(frozen=True)
class Plan:
    tp: int = 1
    pp: int = 1
    cp: int = 1
    ep: int = 1
    dp: int = 1
    microbatch: int = 1
    zero: int = 1
    recompute: Recompute = "selective"

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    def to_dict(self) -> dict:
        return asdict(self)


def plan_problems(plan: Plan, model: ModelSpec, devices: int, global_batch_seqs: int) -> list[str]:
    """Every rule `plan` breaks, each naming the field; empty when the plan is valid."""
    out = []
    if plan.devices != devices:
        out.append(f"parallelism: tp*pp*cp*dp = {plan.tp}*{plan.pp}*{plan.cp}*{plan.dp} = {plan.devices}, "
                   f"but cluster.devices = {devices}")
    if model.heads % plan.tp:
        out.append(f"parallelism.tp: {plan.tp} does not divide the {model.heads} attention heads")
    elif model.kv_heads % plan.tp and plan.tp % model.kv_heads:
        out.append(f"parallelism.tp: {plan.tp} and the {model.kv_heads} KV heads do not divide one another")
    if plan.pp > model.layers:
        out.append(f"parallelism.pp: {plan.pp} stages for only {model.layers} layers")
    if model.seq_len % plan.cp:
        out.append(f"parallelism.cp: {plan.cp} does not divide model.seq_len {model.seq_len}")
    if plan.ep > 1 and not model.is_moe:
        out.append(f"parallelism.ep: {plan.ep} needs an MoE model (model.experts > 0)")
    if model.is_moe and (model.experts % plan.ep or (plan.dp * plan.cp) % plan.ep):
        out.append(f"parallelism.ep: {plan.ep} must divide model.experts ({model.experts}) and dp*cp "
                   f"({plan.dp * plan.cp})")
    if global_batch_seqs < plan.dp * plan.microbatch:
        out.append(f"parallelism.microbatch: global batch of {global_batch_seqs} sequences is smaller than "
                   f"dp={plan.dp} ranks x microbatch={plan.microbatch} (training.global_batch_tokens too small)")
    if plan.zero not in (0, 1, 2, 3):
        out.append(f"parallelism.zero: expected 0..3, got {plan.zero}")
    return out


def check_plan(plan: Plan, model: ModelSpec, devices: int, global_batch_seqs: int) -> None:
    """Raise InfeasiblePlanError listing every broken rule."""
    problems = plan_problems(plan, model, devices, global_batch_seqs)
    if problems:
        raise InfeasiblePlanError("; ".join(problems))
