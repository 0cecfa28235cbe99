"""Expert-parallel token dispatch and combine: seconds per MoE layer and micro-batch, vectorised.

A routed token goes to its k experts' ranks (dispatch) and their outputs come back (combine), in
the forward and, as gradients, in the backward: four exchanges per MoE layer and micro-batch, and
two more when the forward is recomputed (steptime.py: full, mlp and offload recompute the MoE
block, whose dispatched tokens are not kept); with token dropping every buffer is padded to the
capacity (`MoeSetup`). Two dispatchers (scenario `parallelism.moe_dispatcher`):

- "alltoall": Megatron-Core's `--moe-token-dispatcher-type alltoall` (the one its MoE guide
  recommends with expert parallelism) and MaxText's: every (token, expert) pair is sent to the
  expert's rank in bf16, the share of the EP group outside the scale-up domain over the NIC and
  the rest over the scale-up links (`collectives.all_to_all`).
- "deepep": DeepSeek's DeepEP (Megatron-Core `--moe-token-dispatcher-type flex --moe-enable-deepep`;
  DeepSeek-V3 report, arXiv:2412.19437, sec. 3.2.2): a token crosses the network once per
  destination node, to the rank of the same index there, which forwards it over NVLink to its
  experts' ranks; the network and NVLink legs run at once, so the slower sets the time. With FP8
  training the forward dispatch sends FP8 activations, 1 B per element, the combine and the
  backward BF16 (the report's sec. 3.3.2: activations quantised to FP8 before dispatch, combine in
  BF16). Inside one scale-up domain it is the all-to-all's scale-up leg.

Destination nodes per token, under balanced routing (the aux-loss-free balancing DeepSeek-V3 and
Megatron-Core use): k experts drawn from E spread evenly over the N scale-up domains the EP group
spans reach N (1 - C(E - E/N, k) / C(E, k)) of them on average. Node-limited routing
(`ModelSpec.expert_groups_per_token` = M of `expert_groups` = G; Megatron-Core
`--moe-router-group-topk` / `--moe-router-num-groups`, whose guide sets G to the EP group's nodes)
keeps a token's experts in M groups, on N (1 - C(G - G/N, M) / C(G, M)) nodes when G >= N (each
chosen group receives at least one of the token's experts: it is chosen for its top scores); the
smaller of the two counts. One of those nodes is the token's own with probability D / N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import comb

from simulator.execution import collectives as coll
from simulator.model.shapes import ModelSpec

DISPATCHERS = ("alltoall", "deepep")
BYTES_BF16, BYTES_FP8 = 2, 1


@dataclass(frozen=True)
class MoeSetup:
    """How a run routes MoE tokens: the dispatcher (module docstring) and token dropping.

    `capacity_factor` None: dropless routing, the busiest expert rank gets `PerfParams.moe_imbalance` x
    its mean share. A capacity factor c drops tokens beyond c x the mean share of each expert and pads
    every expert's input to it (Megatron-Core `--moe-expert-capacity-factor` with
    `--moe-pad-expert-input-to-capacity`; MaxText's dropping MoE, whose expert einsums run over the
    whole capacity): each expert GEMM, exchange buffer and expert activation is c x the mean."""

    dispatcher: str = "alltoall"
    capacity_factor: float | None = None

    def __post_init__(self) -> None:
        if self.dispatcher not in DISPATCHERS:
            raise ValueError(f"parallelism.moe_dispatcher: expected one of {', '.join(DISPATCHERS)}, "
                             f"got '{self.dispatcher}'")
        if self.capacity_factor is not None and not self.capacity_factor > 0:
            raise ValueError(f"training.moe_capacity_factor: expected a positive number, got {self.capacity_factor}")

    def busiest_share(self, moe_imbalance: float) -> float:
        """Tokens of the busiest expert rank's experts / their mean share: c padded, else the imbalance."""
        return self.capacity_factor if self.capacity_factor is not None else moe_imbalance

    @property
    def padding(self) -> float:
        """Expert buffers / the mean routed tokens: c with token dropping, 1 when dropless."""
        return self.capacity_factor if self.capacity_factor is not None else 1.0


def _miss(total, per_node, draws):
    """Probability that `draws` items drawn without replacement from `total`, `per_node` on each
    node, miss a given node: C(total - per_node, draws) / C(total, draws)."""
    return comb(total - per_node, draws) / comb(total, draws)


def destination_nodes(model: ModelSpec, nodes) -> np.ndarray:
    """Expected distinct scale-up domains a token's routed experts lie in (module docstring)."""
    n = np.maximum(np.asarray(nodes, dtype=float), 1.0)
    e, k = model.experts, model.experts_per_token
    spread = n * (1.0 - _miss(e, e / n, k))
    g, m = model.expert_groups, model.expert_groups_per_token
    if g and m and m < g:
        limited = np.where(g >= n, n * (1.0 - _miss(g, g / n, m)), np.minimum(n, m * n / g))
        spread = np.minimum(spread, limited)
    return np.where(n > 1, spread, 1.0)


def dispatch_combine_s(net: coll.Network, model: ModelSpec, ep, stride, tokens, precision: str,
                       moe: MoeSetup = MoeSetup()):
    """(forward, backward) seconds of one MoE layer's exchanges (dispatch and combine) for one
    micro-batch of `tokens` per rank of an EP group of `ep` ranks `stride` apart; a recomputed
    forward repeats the forward ones. With token dropping the buffers are padded to capacity."""
    k, h = model.experts_per_token * moe.padding, model.d_model
    if moe.dispatcher == "alltoall":
        pair = 2 * coll.all_to_all(net, ep, tokens * h * BYTES_BF16 * k, stride=stride)
        return pair, pair
    inner, outer = coll.group_layout(net, ep, stride)
    n_nodes = np.asarray(outer, dtype=float)
    remote = destination_nodes(model, n_nodes) * (n_nodes - 1) / np.maximum(n_nodes, 1)
    local_share = np.where(inner > 1, (inner - 1) / np.maximum(inner, 1), 0.0)

    def one(bytes_per_elem):
        rdma = tokens * h * bytes_per_elem * remote * moe.padding / net.out_bytes_per_s
        nvlink = tokens * h * bytes_per_elem * k * local_share / net.up_for(inner)
        latency = np.where(n_nodes > 1, net.out_latency_s, net.up_latency_s)
        return np.where(np.asarray(ep) > 1, np.maximum(rdma, nvlink) + latency, 0.0)

    first = BYTES_FP8 if precision in ("fp8", "fp4") else BYTES_BF16
    return one(first) + one(BYTES_BF16), 2 * one(BYTES_BF16)
