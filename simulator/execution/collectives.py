"""Alpha-beta collective times on a two-tier network, vectorised.

Ring algorithms (Thakur et al. 2005; NCCL-tests' bus-bandwidth conventions), for a group of n
ranks each moving S bytes over a link of B bytes/s per direction, efficiency eta, latency alpha:

    all-reduce       2 (n-1)/n * S / (B eta) + 2 (n-1) alpha
    reduce-scatter     (n-1)/n * S / (B eta) +   (n-1) alpha     (all-gather the same)
    all-to-all         (n-1)/n * S / (B eta) +   (n-1) alpha
    point-to-point               S / (B eta) +         alpha

Bandwidth: a group whose ranks span several scale-up domains moves data hierarchically (NCCL's
multi-channel rings, one per NIC): reduce-scatter inside the domain over the fast fabric, the
collective on S / n_inner across domains over each device's own NIC, all-gather inside again.
Latency: a ring takes n - 1 steps, once per collective call (`calls`); a step inside a scale-up
domain costs that fabric's alpha and a step from one domain to the next the network's, so a ring
over n ranks in `outer` domains costs (n - outer) alpha_up + (outer - 1) alpha_out per pass (NCCL's
own tuning model, src/graph/tuning.cc `ncclTopoTuneModel`: ring latency = base + (nsteps -
nInterSteps) x intraLat + nInterSteps x interLat, nInterSteps = nNodes - 1 for all-gather and
reduce-scatter, twice that for all-reduce). On a torus (TPU ICI, `scale_up.topology = "torus2d" |
"torus3d"`) a group inside the domain is laid out over the d axes and runs its rings along the axes,
d * (n**(1/d) - 1) steps (jax-ml/scaling-book, "How to think about TPUs": collectives on a torus are
per-axis rings over wraparound links), then outer - 1 steps between slices. On a
full mesh of point-to-point links (`"mesh"`: AMD Instinct's Infinity Fabric, Gaudi's RoCE ports) a
chip's scale-up bandwidth is the sum of one link to each other chip of the domain, and a group of
n_inner of them reaches its members over n_inner - 1 of those links: B (n_inner - 1) / (domain - 1)
(a TP pair on an 8-GPU MI300X node moves data at 1/7 of the 448 GB/s per direction; a point-to-point
send uses one link).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware_catalog.schema import Accelerator
from simulator.system.perf_params import PerfParams


@dataclass(frozen=True)
class Network:
    """Per-device, per-direction bandwidths (bytes/s) and the scale-up domain size."""

    up_bytes_per_s: float
    up_latency_s: float
    out_bytes_per_s: float
    out_latency_s: float
    domain: int
    torus_dims: int = 0  # 0: switched fabric or mesh; 2 or 3: torus axes of the scale-up domain
    mesh: bool = False  # point-to-point links to every chip of the domain (module docstring)

    @classmethod
    def of(cls, acc: Accelerator, pp: PerfParams) -> Network:
        domain = int(acc.scale_up.domain_devices.value)
        up = acc.scale_up.gb_per_s_bidir.value / 2 * 1e9 if acc.scale_up.gb_per_s_bidir else None
        out = acc.scale_out.gbit_per_s.value / 8 * 1e9 if acc.scale_out.gbit_per_s else None
        if up is None:  # no fabric figure: everything goes over the network
            up = out
        if out is None:  # no NIC figure (some TPUs): the fabric carries everything
            out = up
        if up is None:  # a lone device (e.g. a calibrated CPU): nothing to communicate with
            up = out = float("inf")
        dims = {"torus2d": 2, "torus3d": 3}.get(acc.scale_up.topology, 0)
        return cls(up * pp.scaleup_eff, pp.scaleup_latency_s, out * pp.scaleout_eff, pp.scaleout_latency_s,
                   domain, dims, acc.scale_up.topology == "mesh")

    def up_for(self, inner):
        """Scale-up bytes/s per direction of a group with `inner` ranks in one domain (a mesh
        gives it only the links between its members)."""
        if not self.mesh or self.domain <= 1:
            return self.up_bytes_per_s
        links = np.clip(np.asarray(inner, dtype=float) - 1, 1, None)
        return self.up_bytes_per_s * links / (self.domain - 1)


def _bw(n, size_bytes, bw, factor):
    n = np.asarray(n, dtype=float)
    return np.where(n > 1, factor * (n - 1) / n * size_bytes / bw, 0.0)


def _fabric_domain(acc: Accelerator) -> int:
    """Devices one scale-up fabric joins (1 when the catalog gives the part no fabric figure)."""
    return int(acc.scale_up.domain_devices.value) if acc.scale_up.gb_per_s_bidir else 1


def tp_reach(acc: Accelerator) -> int:
    """The largest tensor-parallel group a plan may use: the scale-up domain, or the whole node where
    the node holds more devices (PCIe cards such as L40S, or H100 PCIe beyond its NVLink-bridged
    pair: vLLM and Megatron run TP over PCIe inside a server, over the slower tier); at most 64."""
    return min(max(_fabric_domain(acc), int(acc.node.devices_per_node.value)), 64)


def tp_beyond_domain_note(acc: Accelerator, tp: int) -> str | None:
    """The assumption a plan makes when its TP group reaches past the scale-up domain, else None."""
    domain = _fabric_domain(acc)
    if tp <= domain:
        return None
    where = "inside its node" if tp <= int(acc.node.devices_per_node.value) else "across nodes"
    return (f"tensor parallelism: tp {tp} reaches past {acc.id}'s scale-up domain ({domain} device"
            f"{'s' if domain > 1 else ''}) {where}; its collectives cross PCIe or the network at the "
            "slower tier's figures (no published row checks this)")


def group_layout(net: Network, n, stride):
    """Ranks of a group inside one scale-up domain, and the number of domains it spans."""
    n = np.asarray(n)
    inner = np.clip(net.domain // np.maximum(stride, 1), 1, None)
    inner = np.minimum(inner, n)
    return inner, n // inner


def _ring_steps(net: Network, n, outer):
    """Steps of one ring pass inside scale-up domains and between them (module docstring): n - outer
    and outer - 1 on a switch; on a torus the per-axis rings of a domain's share of the group."""
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    outer = np.maximum(np.asarray(outer, dtype=float), 1.0)
    if not net.torus_dims:
        return n - outer, outer - 1
    inner = n / outer
    return np.minimum(inner - 1, net.torus_dims * (inner ** (1.0 / net.torus_dims) - 1)), outer - 1


def _latency(net: Network, n, outer, steps_factor, calls):
    intra, inter = _ring_steps(net, n, outer)
    return steps_factor * (intra * net.up_latency_s + inter * net.out_latency_s) * calls


def all_reduce_bandwidth_s(net: Network, n, size_bytes, stride=1):
    """The bandwidth part of `all_reduce`: inside the domain over the fabric, across over the NIC."""
    inner, outer = group_layout(net, n, stride)
    return _bw(inner, size_bytes, net.up_for(inner), 2.0) + _bw(outer, size_bytes / inner, net.out_bytes_per_s, 2.0)


def all_reduce(net: Network, n, size_bytes, stride=1, calls=1):
    _, outer = group_layout(net, n, stride)
    return all_reduce_bandwidth_s(net, n, size_bytes, stride) + _latency(net, n, outer, 2.0, calls)


def reduce_scatter(net: Network, n, size_bytes, stride=1, calls=1):
    """Also the time of an all-gather of the same total size."""
    inner, outer = group_layout(net, n, stride)
    bw = _bw(inner, size_bytes, net.up_for(inner), 1.0) + _bw(outer, size_bytes / inner, net.out_bytes_per_s, 1.0)
    return bw + _latency(net, n, outer, 1.0, calls)


def all_to_all(net: Network, n, size_bytes, stride=1, calls=1):
    """Each rank sends (n-1)/n of S; the cross-domain share goes over the NIC."""
    inner, outer = group_layout(net, n, stride)
    n_f = np.asarray(n, dtype=float)
    cross = np.where(n_f > 1, (n_f - inner) / np.maximum(n_f, 1), 0.0)
    local = np.where(n_f > 1, (inner - 1) / np.maximum(n_f, 1), 0.0)
    return (local * size_bytes / net.up_for(inner) + cross * size_bytes / net.out_bytes_per_s
            + _latency(net, n, outer, 1.0, calls))


def p2p(net: Network, size_bytes, inside_domain):
    bw = np.where(inside_domain, net.up_for(2), net.out_bytes_per_s)
    lat = np.where(inside_domain, net.up_latency_s, net.out_latency_s)
    return size_bytes / bw + lat
