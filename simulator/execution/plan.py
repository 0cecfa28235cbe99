"""Parallelism plans: DP x TP x PP x CP x EP, ZeRO stage, micro-batch, interleaving, recompute.

`Plan` is one plan; `PlanGrid` holds many as numpy arrays so that memory and step time are
evaluated for all of them at once (no per-plan Python loop on the hot path).

Validity rules (Narayanan et al. 2021; Megatron-LM and DeepSpeed argument checks):
- TP divides the attention heads, and TP and the KV heads divide one another (GQA replication);
- PP does not exceed the layers; interleaving (v > 1) needs a micro-batch count divisible by PP
  and at most PP*v <= layers + 2 virtual stages: every one holds a layer except that the first
  may hold only the embedding and the last only the output layer and loss (Llama 3, Dubey et al.
  2024 sec. 3.3.2: 126 layers on 16 stages; Megatron-LM's account-for-embedding/loss-in-pipeline-
  split options). Uneven stages are allowed; timing uses the busiest stage, ceil(layers / PP);
- CP divides the sequence into 2*CP chunks (load-balanced causal ring attention);
- EP divides the experts, and EP x ETP divides the TP*CP*DP ranks of a pipeline stage; EP > 1
  only for MoE models. MoE parallel folding (Liu et al. 2025, arXiv:2504.14960; Megatron-Core's
  `expert_tensor_parallel_size`): the MoE layers re-partition a stage's TP x CP x DP ranks as
  ETP x EP x EDP (expert tensor-, expert- and expert-data-parallel). `expert_tp` gives ETP: TP when
  EP divides DP*CP (the classic layout, experts split like the dense MLP), else the largest divisor
  of TP that fits (typically 1: whole experts on every rank);
- ZeRO-3 cannot be combined with PP (DeepSpeed: "ZeRO-2 and ZeRO-3 are incompatible with
  pipeline parallelism"; Megatron-Core shards only the optimizer). ZeRO-2 with PP is allowed: FSDP
  that keeps the gathered parameters between forward and backward shards gradients and optimizer
  states, and Llama 3 ran it with 16 pipeline stages (Dubey et al. 2024 sec. 3.3.2; PyTorch
  torchtitan composes FSDP with pipeline parallelism);
- every DP rank gets at least one micro-batch (micro-batches per rank = ceil(batch / (DP*mb))).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields

import numpy as np

from simulator.errors import InfeasiblePlanError
from simulator.model.flops import RECOMPUTE, Recompute
from simulator.model.shapes import ModelSpec

# Activation recomputation levels (index = `PlanGrid.rc`; the order keeps the older indices):
# none; selective = the attention core (Korthikanti et al. 2022 sec. 4.2); full = every layer's
# forward; mlp = the attention core and the MLP (Megatron-Core `recompute_modules: [core_attn, mlp]`;
# MaxText `remat_policy=save_dot_except_mlpwi` is read as it); offload = MaxText's `remat_policy=custom`
# with the layer input, Q, K and V offloaded to host memory, the rest (attention core, output
# projection, MLP input projections) recomputed. Memory: memory.py; time: steptime.py.
# What the plan search tries: offload is only taken when a scenario fixes it (its host transfers are
# assumed hidden, which the search must not be allowed to exploit).
SEARCHED_RECOMPUTE = (0, 1, 2, 3)


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
    interleave: int = 1
    sequence_parallel: bool = True

    @property
    def devices(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PlanGrid:
    """Plans as parallel int arrays (recompute: the index in `RECOMPUTE`)."""

    tp: np.ndarray
    pp: np.ndarray
    cp: np.ndarray
    ep: np.ndarray
    dp: np.ndarray
    mb: np.ndarray
    zero: np.ndarray
    rc: np.ndarray
    v: np.ndarray
    sp: np.ndarray

    def __len__(self) -> int:
        return len(self.tp)

    @classmethod
    def from_plans(cls, plans: list[Plan]) -> PlanGrid:
        col = lambda f: np.array([f(p) for p in plans], dtype=np.int64)  # noqa: E731
        return cls(col(lambda p: p.tp), col(lambda p: p.pp), col(lambda p: p.cp), col(lambda p: p.ep),
                   col(lambda p: p.dp), col(lambda p: p.microbatch), col(lambda p: p.zero),
                   col(lambda p: RECOMPUTE.index(p.recompute)), col(lambda p: p.interleave),
                   col(lambda p: int(p.sequence_parallel)))

    def plan(self, i: int) -> Plan:
        return Plan(int(self.tp[i]), int(self.pp[i]), int(self.cp[i]), int(self.ep[i]), int(self.dp[i]),
                    int(self.mb[i]), int(self.zero[i]), RECOMPUTE[int(self.rc[i])], int(self.v[i]),
                    bool(self.sp[i]))

    def take(self, idx: np.ndarray) -> PlanGrid:
        return PlanGrid(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def microbatches(grid: PlanGrid, batch_seqs: int) -> np.ndarray:
    """Micro-batches per DP rank per step: ceil(batch / (DP * mb))."""
    return -(-batch_seqs // (grid.dp * grid.mb))


# Reason codes for rejected plans (the order is the order of the checks).
REASONS = (
    "tp does not divide the attention heads",
    "tp and the KV heads do not divide one another",
    "pp exceeds the layers",
    "interleaving needs pp*v <= layers + 2 and micro-batches divisible by pp",
    "cp does not split the sequence into 2*cp chunks",
    "ep must divide the experts and tp*cp*dp (and needs an MoE model)",
    "ZeRO-3 cannot be combined with pipeline parallelism",
    "global batch smaller than dp x micro-batch",
)


def expert_tp(grid: PlanGrid) -> np.ndarray:
    """Expert tensor-parallel size (ETP) of every plan: how many ranks split each expert's GEMMs.

    The MoE layers re-partition the tp*cp*dp ranks of a pipeline stage as ETP x EP x EDP (module
    docstring). ETP = TP when EP divides DP*CP (the classic layout: EP inside the data-parallel
    ranks, every existing result unchanged); otherwise the largest divisor of TP with EP*ETP dividing
    tp*cp*dp (folding EP into the TP ranks; typically 1). Where no divisor fits (EP does not divide
    tp*cp*dp) 1 is returned and `rule_violations` refuses the plan.
    """
    ranks = grid.tp * grid.cp * grid.dp
    ep = np.maximum(grid.ep, 1)
    etp = np.array(grid.tp, dtype=np.int64, copy=True)
    fold = (grid.dp * grid.cp) % ep != 0
    if fold.any():  # rare (MoE plans only): a short loop over candidate divisors, vectorised over plans
        tp, n, e = grid.tp[fold], ranks[fold], ep[fold]
        best = np.ones_like(tp)
        for d in range(2, int(tp.max()) + 1):
            best = np.where((tp % d == 0) & (n % (e * d) == 0), d, best)
        etp[fold] = best
    return etp


def expert_dp(grid: PlanGrid) -> np.ndarray:
    """Expert data-parallel size (EDP): tp*cp*dp / (EP x ETP), the ranks holding the same experts
    (the group expert gradients are reduced over, and ZeRO shards expert states over)."""
    return grid.tp * grid.cp * grid.dp // (np.maximum(grid.ep, 1) * expert_tp(grid))


def rule_violations(grid: PlanGrid, model: ModelSpec, batch_seqs: int) -> np.ndarray:
    """Boolean matrix (len(grid) x len(REASONS)): which rule each plan breaks."""
    m = microbatches(grid, batch_seqs)
    if model.is_moe:
        ep = np.maximum(grid.ep, 1)
        ep_ok = (grid.ep == 1) | ((model.experts % ep == 0)
                                  & ((grid.tp * grid.cp * grid.dp) % (ep * expert_tp(grid)) == 0))
    else:
        ep_ok = grid.ep == 1
    return np.stack([
        model.heads % grid.tp != 0,
        (model.kv_heads % grid.tp != 0) & (grid.tp % model.kv_heads != 0),
        grid.pp > model.layers,
        (grid.v > 1) & ((grid.pp == 1) | (model.layers + 2 < grid.pp * grid.v) | (m % grid.pp != 0)),
        (model.seq_len % (2 * grid.cp) != 0) & (grid.cp > 1),
        ~ep_ok,
        (grid.zero >= 3) & (grid.pp > 1),
        grid.dp * grid.mb > batch_seqs,
    ], axis=1)


def plan_problems(plan: Plan, model: ModelSpec, devices: int, batch_seqs: int) -> list[str]:
    """Every rule `plan` breaks, each naming the field; empty when the plan is valid."""
    out = []
    if plan.devices != devices:
        out.append(f"parallelism: tp*pp*cp*dp = {plan.tp}*{plan.pp}*{plan.cp}*{plan.dp} = {plan.devices}, "
                   f"but cluster.devices = {devices}")
    if plan.zero not in (0, 1, 2, 3):
        out.append(f"parallelism.zero: expected 0..3, got {plan.zero}")
    bad = rule_violations(PlanGrid.from_plans([plan]), model, batch_seqs)[0]
    p, mdl = plan, model
    messages = (
        f"parallelism.tp: {p.tp} does not divide the {mdl.heads} attention heads",
        f"parallelism.tp: {p.tp} and the {mdl.kv_heads} KV heads do not divide one another",
        f"parallelism.pp: {p.pp} stages for only {mdl.layers} layers",
        f"parallelism.interleave: {p.interleave} needs pp > 1, pp*interleave <= layers + 2 ({mdl.layers + 2}) "
        f"and micro-batches divisible by pp",
        f"parallelism.cp: {p.cp} does not split model.seq_len {mdl.seq_len} into {2 * p.cp} chunks",
        f"parallelism.ep: {p.ep} must divide model.experts ({mdl.experts}) and tp*cp*dp ({p.tp * p.cp * p.dp})"
        + ("" if mdl.is_moe else " (expert parallelism needs an MoE model)"),
        f"parallelism.zero: ZeRO-{p.zero} cannot be combined with pp = {p.pp}",
        f"parallelism.microbatch: global batch of {batch_seqs} sequences is smaller than dp={p.dp} x "
        f"microbatch={p.microbatch} (training.global_batch_tokens too small)",
    )
    out += [msg for broken, msg in zip(bad, messages, strict=True) if broken]
    return out


def check_plan(plan: Plan, model: ModelSpec, devices: int, batch_seqs: int) -> None:
    """Raise InfeasiblePlanError listing every broken rule."""
    problems = plan_problems(plan, model, devices, batch_seqs)
    if problems:
        raise InfeasiblePlanError("; ".join(problems))


MAX_PLANS = 20_000_000  # candidate plans one search enumerates (about 5 s at 4 M plans/s)


def _prime_factors(n: int) -> dict[int, int]:
    """{prime: exponent} of n by trial division up to sqrt(n) (3,163 steps for ten million)."""
    factors: dict[int, int] = {}
    p = 2
    while p * p <= n:
        while n % p == 0:
            factors[p] = factors.get(p, 0) + 1
            n //= p
        p += 1 if p == 2 else 2
    if n > 1:
        factors[n] = factors.get(n, 0) + 1
    return factors


def _divisors(n: int) -> list[int]:
    """The divisors of n, ascending, built from its prime factorisation (a scan of 1..n would
    take n steps: hours for a cluster of 10^12 devices)."""
    divs = [1]
    for p, e in _prime_factors(n).items():
        divs = [d * p**k for d in divs for k in range(e + 1)]
    return sorted(divs)


def enumerate_plans(model: ModelSpec, devices: int, max_tp: int, fixed: dict | None = None,
                    microbatch_sizes=(1, 2, 4, 8, 16), interleaves=(1, 2, 4, 8)) -> PlanGrid:
    """Every factorisation devices = tp*pp*cp*dp with the other knobs, as a PlanGrid.

    TP: powers of two up to `max_tp` (`tp_reach`: the scale-up domain or node); PP: divisors of the devices up to the
    layers; CP: powers of two up to 16; EP: divisors of the experts that divide tp*cp*dp (expert
    parallelism folded into the stage's ranks, `expert_tp`); ZeRO 0..3; recompute none /
    selective / full / mlp (offload only when fixed: `SEARCHED_RECOMPUTE`). Fields in `fixed`
    (scenario values) are held. Rule checks come later, vectorised (`rule_violations`).
    """
    fixed = {k: v for k, v in (fixed or {}).items() if v is not None}
    pick = lambda name, options: [fixed[name]] if name in fixed else list(options)  # noqa: E731
    tps = pick("tp", [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= max_tp])
    cps = pick("cp", (1, 2, 4, 8, 16))
    eps = pick("ep", _divisors(model.experts) if model.is_moe else [1])
    factors = []  # (tp, pp, cp, dp, ep): a few hundred tuples at most
    for tp, cp in itertools.product(tps, cps):
        if devices % (tp * cp):
            continue
        pps = pick("pp", [p for p in _divisors(devices // (tp * cp)) if p <= model.layers])
        for pp in pps:
            if devices % (tp * cp * pp):
                continue
            dp = devices // (tp * cp * pp)
            if "dp" in fixed and fixed["dp"] != dp:
                continue
            factors += [(tp, pp, cp, dp, ep) for ep in eps if (tp * cp * dp) % ep == 0]
    knobs = list(itertools.product(
        pick("microbatch", microbatch_sizes), pick("zero", (0, 1, 2, 3)),
        [RECOMPUTE.index(fixed["recompute"])] if "recompute" in fixed else list(SEARCHED_RECOMPUTE),
        pick("interleave", interleaves)))
    if not factors:
        return PlanGrid(*(np.zeros(0, dtype=np.int64) for _ in range(10)))
    if len(factors) * len(knobs) > MAX_PLANS:
        raise InfeasiblePlanError(
            f"parallelism: {len(factors) * len(knobs):,} candidate plans for {devices:,} devices, more than the "
            f"search enumerates ({MAX_PLANS:,}): fix some of parallelism.tp, pp, cp, ep, microbatch, zero, "
            "recompute or interleave")
    f = np.repeat(np.array(factors, dtype=np.int64), len(knobs), axis=0)
    k = np.tile(np.array(knobs, dtype=np.int64), (len(factors), 1))
    sp = np.full(len(f), int(fixed.get("sequence_parallel", True)), dtype=np.int64)
    return PlanGrid(tp=f[:, 0], pp=f[:, 1], cp=f[:, 2], ep=f[:, 4], dp=f[:, 3], mb=k[:, 0], zero=k[:, 1],
                    rc=k[:, 2], v=k[:, 3], sp=sp)
