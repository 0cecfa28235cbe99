"""Tensor parallelism past the scale-up domain, inside a node (collectives.tp_reach): PCIe cards such
as L40S (no NVLink) and H100 PCIe (NVLink-bridged pairs) run TP over PCIe in vLLM and Megatron, so
serving may use such a group and the training search considers it, over the slower tier's figures,
and the estimate says so."""

from __future__ import annotations

import pytest

from hardware_catalog import load_catalog
from simulator import estimate, scenario_from_dict
from simulator.errors import ScenarioError
from simulator.execution.collectives import tp_reach
from simulator.execution.inference import (NCCL_LL_BASE_S, NCCL_LL_NVLINK_HOP_S, NCCL_LL_PCI_HOP_S,
                                           tp_allreduce_s)
from simulator.system.perf_params import perf_params_for

CAT = load_catalog(use_env=False)
L40S, H100_PCIE, H100 = (CAT.accelerator(a) for a in ("nvidia-l40s", "nvidia-h100-pcie-80gb", "nvidia-h100-sxm-80gb"))


def _serve(acc_id, **serving):
    sc = {"model": {"preset": "llama3-70b"}, "cluster": {"accelerator": acc_id, "devices": 8},
          "serving": {"prompt_tokens": 1000, "output_tokens": 200, "dtype": "bf16", **serving}}
    return estimate(scenario_from_dict(sc), CAT)


def test_reach_is_the_scale_up_domain_or_the_node():
    assert tp_reach(L40S) == 8 and tp_reach(H100_PCIE) == 8 and tp_reach(H100) == 8
    assert tp_reach(CAT.accelerator("google-tpu-v5p")) == 64  # a pod's domain, capped at 64


def test_allreduce_past_the_domain_costs_pci_hops_and_the_slower_tier():
    """Hand-computed from NCCL's LL ring model (base 3.6 us, NVLink hop 0.47 us, PCI hop 1.0 us) and
    the ring's bandwidth term 2 (n-1)/n S / B. L40S lists no NIC: its PCIe link (64 GB/s
    bidirectional, 32 per direction) is the slower tier, at the scale-out efficiency."""
    size = 16 * 8192 * 2.0  # a batch of 16 tokens' d_model activations, bf16
    perf = perf_params_for(L40S)
    expected = NCCL_LL_BASE_S + 2 * 7 * NCCL_LL_PCI_HOP_S + 2 * 7 / 8 * size / (32e9 * perf.scaleout_eff)
    assert tp_allreduce_s(L40S, 8, size, perf) == pytest.approx(expected, rel=1e-12)
    perf = perf_params_for(H100)  # inside the NVLink domain: unchanged
    expected = NCCL_LL_BASE_S + 2 * 7 * NCCL_LL_NVLINK_HOP_S + 2 * 7 / 8 * size / (450e9 * perf.scaleup_eff)
    assert tp_allreduce_s(H100, 8, size, perf) == pytest.approx(expected, rel=1e-12)


def test_serving_llama3_70b_in_bf16_on_eight_l40s_runs_tp8_and_says_so():
    """141 GB of bf16 weights need more than one 48 GB card: before, refused ("does not fit on one
    scale-up domain"); now TP 8 over PCIe, as an 8-card L40S server runs it."""
    est = _serve("nvidia-l40s")
    assert est.plan["tp"] == 8 and est.values["capacity_tokens_per_s"] > 0
    assert any(a.startswith("tensor parallelism: tp 8 reaches past nvidia-l40s's scale-up domain (1 device) "
                            "inside its node") for a in est.assumptions)
    assert not any(a.startswith("tensor parallelism") for a in _serve("nvidia-h100-sxm-80gb").assumptions)


def test_a_tp_group_beyond_the_node_is_refused_naming_the_reach():
    with pytest.raises(ScenarioError, match=r"serving.tp: 16 must be a power of two within nvidia-l40s's reach "
                                            r"for tensor parallelism \(8 devices"):
        _serve("nvidia-l40s", tp=16)


def test_training_search_considers_tp_inside_the_node():
    """Llama 3 70B on 64 L40S: the search's best plan is at least as fast as the explicit TP 4 plan
    (before, the search stopped at the domain, TP 1, and found a slower plan than TP 4)."""
    def run(parallelism):
        sc = {"model": {"preset": "llama3-70b"}, "training": {"tokens": 1e9},
              "cluster": {"accelerator": "nvidia-l40s", "devices": 64}, "parallelism": parallelism}
        return estimate(scenario_from_dict(sc), CAT)

    searched, tp4 = run({}), run({"tp": 4})
    assert searched.tokens_per_s >= tp4.tokens_per_s * (1 - 1e-9)
    assert searched.plan["tp"] > 1
    assert any(a.startswith("tensor parallelism: tp") for a in searched.assumptions)
