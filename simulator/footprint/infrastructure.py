"""Power of the scale-out network and the high-speed storage of a run (their own rows in the energy
breakdown, next to the devices, the hosts and the facility overhead).

Network: the scale-out fabric (InfiniBand / RoCE / EFA / DCN) as a non-blocking fat tree (folded
Clos) of radix-k switches, rail-optimised or not (the port counts are the same):

- links = devices x NIC Gb/s per device / port Gb/s (a device with 800 Gb/s uses two 400 Gb/s ports;
  a TPU chip's 25 Gb/s share of its host's NIC, 1/16 of one);
- tiers t: the fewest with 2 (k/2)^t >= links (k, k^2/2, k^3/4, ...: one switch, leaf-spine, three
  tiers; the three-tier k-ary fat tree of Al-Fares et al., SIGCOMM 2008, connects k^3/4 hosts with
  5 k^2/4 switches);
- every link uses 2t - 1 switch ports (its leaf port, then one port up and one down per tier above);
  switches = ceil(links (2t - 1) / k);
- watts = switches x switch W (typical, without optics) + links (2t - 1) x optics W per port.

A run inside one scale-up domain (an HGX node's 8 GPUs, an NVL72 rack, a TPU pod) uses no scale-out
fabric: 0 W. NICs, server-side optics and scale-up switches are inside the host power
(hardware_catalog/infrastructure.toml says why). Networks draw nearly constant power whatever the
traffic ("the general practice is to always leave them on", Heller et al., ElasticTree, NSDI 2010;
Abts et al., Energy Proportional Datacenter Networks, ISCA 2010), so the energy is power x the whole
wall clock, checkpoints and failures included.

Storage: PB of high-speed storage (the scenario's, else devices x TB per device, the share of a
reference cluster's storage fabric) x W per PB, over the whole wall clock as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Fabric:
    """The scale-out fabric of a run: its size and power."""

    links: float  # switch-facing links (400 Gb/s ports at the edge)
    tiers: int  # 0: no fabric
    switches: int
    w_per_device: float


NO_FABRIC = Fabric(0.0, 0, 0, 0.0)


def fat_tree_tiers(links: float, switch_ports: int) -> int:
    """The fewest tiers of a non-blocking fat tree of `switch_ports`-port switches that connects
    `links` endpoints: t tiers connect 2 (k/2)^t (module docstring)."""
    tiers = 1
    while 2 * (switch_ports / 2) ** tiers < links:
        tiers += 1
    return tiers


def fabric(devices: int, domain_devices: float, nic_gbit_per_s: float | None, port_gbit_per_s: float,
           switch_ports: int, switch_w: float, optics_w_per_port: float) -> Fabric:
    """The scale-out fat tree of `devices` (module docstring); none inside one scale-up domain or
    without a scale-out NIC."""
    if devices <= domain_devices or not nic_gbit_per_s:
        return NO_FABRIC
    links = devices * nic_gbit_per_s / port_gbit_per_s
    tiers = fat_tree_tiers(links, switch_ports)
    ports = links * (2 * tiers - 1)
    switches = math.ceil(ports / switch_ports - 1e-9)
    return Fabric(links, tiers, switches, (switches * switch_w + ports * optics_w_per_port) / devices)


def storage_w(storage_pb: float, w_per_pb: float) -> float:
    """Power of `storage_pb` PB of high-speed storage (W)."""
    return storage_pb * w_per_pb
