"""Plan rules: expert parallelism folded into the stage's TP x CP x DP ranks (MoE parallel folding)."""

import numpy as np
import pytest

from simulator.model.shapes import ModelSpec, get_preset
from simulator.execution.plan import (REASONS, Plan, PlanGrid, enumerate_plans, expert_dp, expert_tp, plan_problems,
                            rule_violations)

# Qwen3-235B-A22B (released config.json): 94 layers, all MoE, d_model 4096, 64 query heads of 128,
# 4 KV heads, 128 experts of width 1536, top-8, no shared expert, vocab 151,936; 4k pre-training context.
QWEN3 = ModelSpec("qwen3-235b-a22b", 94, 4096, 64, 4, 12288, 151936, 4096, head_dim=128, experts=128,
                  experts_per_token=8, expert_ffn_dim=1536, moe_layers=94)
BATCH = 1024  # sequences (4M tokens)
EP_RULE = REASONS.index("ep must divide the experts and tp*cp*dp (and needs an MoE model)")


def grid(*plans):
    return PlanGrid.from_plans(list(plans))


def test_expert_tp_classic_folded_and_impossible():
    g = grid(Plan(tp=2, dp=8, ep=8),         # classic: EP 8 inside DP 8, experts split like the MLP (ETP = TP)
             Plan(tp=4, pp=8, dp=8, ep=32),  # 32 ranks, EP 32 > DP 8: fold EP into TP, ETP 1
             Plan(tp=4, pp=4, dp=16, ep=32),  # 64 ranks = ETP 2 x EP 32 (the largest divisor of TP 4)
             Plan(tp=8, cp=2, dp=2, ep=4),   # EP 4 divides DP*CP 4: classic, ETP 8
             Plan(tp=1, pp=8, dp=32, ep=64),  # EP 64 > the 32 ranks: nothing fits, 1 (rule refuses)
             Plan(tp=8, dp=4))               # no EP: ETP = TP
    assert expert_tp(g).tolist() == [2, 1, 2, 8, 1, 8]
    # EDP = tp*cp*dp / (EP x ETP): 16/16, 32/32, 64/64, 32/32, -, 32/8
    assert expert_dp(g)[[0, 1, 2, 3, 5]].tolist() == [1, 1, 1, 1, 4]


@pytest.mark.parametrize("pp", [8, 4])
def test_qwen3_published_plan_accepted_and_enumerated(pp):
    """EP 32 on 256 H100 at TP 1, PP 8 or 4, DP = 256 / (tp*pp)."""
    plan = Plan(tp=1, pp=pp, dp=256 // pp, ep=32, zero=1, microbatch=1, recompute="full")
    assert plan_problems(plan, QWEN3, 256, BATCH) == []
    g = enumerate_plans(QWEN3, 256, max_tp=8, fixed={"microbatch": 1, "zero": 1, "recompute": "full",
                                                       "interleave": 1})
    rows = (g.tp == 1) & (g.pp == pp) & (g.cp == 1) & (g.dp == 256 // pp) & (g.ep == 32)
    assert rows.sum() == 1
    assert not rule_violations(g.take(np.flatnonzero(rows)), QWEN3, BATCH).any()


def test_folded_plan_accepted_and_enumerated():
    """TP 4 x PP 8 x DP 8: EP 32 does not divide DP 8 (the old rule refused it) but does divide the
    32 ranks of a stage, the experts running at ETP 1 (Megatron-Core expert_tensor_parallel_size 1)."""
    plan = Plan(tp=4, pp=8, dp=8, ep=32, zero=1, recompute="full")
    assert plan_problems(plan, QWEN3, 256, BATCH) == []
    g = enumerate_plans(QWEN3, 256, max_tp=8, fixed={"microbatch": 1, "zero": 1, "recompute": "full",
                                                       "interleave": 1, "tp": 4, "pp": 8})
    assert 32 in g.ep.tolist() and 128 not in g.ep.tolist()  # 128 > the 32 ranks of a stage


def test_ep_rule_refuses_with_the_field_named():
    bad_experts = Plan(tp=1, pp=8, dp=32, ep=48, zero=1)  # 48 does not divide 128
    assert plan_problems(bad_experts, QWEN3, 256, BATCH) == [
        "parallelism.ep: 48 must divide model.experts (128) and tp*cp*dp (32)"]
    too_wide = Plan(tp=1, pp=8, dp=32, ep=64, zero=1)  # 64 x ETP 1 does not divide the 32 ranks
    assert plan_problems(too_wide, QWEN3, 256, BATCH) == [
        "parallelism.ep: 64 must divide model.experts (128) and tp*cp*dp (32)"]
    dense = get_preset("llama3-8b")
    assert plan_problems(Plan(tp=1, dp=8, ep=2), dense, 8, 64) == [
        "parallelism.ep: 2 must divide model.experts (0) and tp*cp*dp (8) (expert parallelism needs an MoE model)"]
    bad = rule_violations(grid(bad_experts, too_wide, Plan(tp=4, pp=8, dp=8, ep=32)), QWEN3, BATCH)
    assert bad[:, EP_RULE].tolist() == [True, True, False]


def test_enumerated_ep_values_are_exactly_the_valid_ones():
    g = enumerate_plans(QWEN3, 256, max_tp=8, fixed={"microbatch": 1, "zero": 1, "recompute": "full",
                                                       "interleave": 1})
    ranks = g.tp * g.cp * g.dp
    assert np.all(128 % g.ep == 0)
    assert np.all(ranks % (g.ep * expert_tp(g)) == 0)
    assert not rule_violations(g, QWEN3, BATCH)[:, EP_RULE].any()
    for tp, cp, dp in {(int(a), int(b), int(c)) for a, b, c in zip(g.tp, g.cp, g.dp, strict=True)}:
        sel = (g.tp == tp) & (g.cp == cp) & (g.dp == dp) & (g.pp == 256 // (tp * cp * dp))
        n = tp * cp * dp
        assert sorted(set(g.ep[sel].tolist())) == [e for e in (1, 2, 4, 8, 16, 32, 64, 128) if n % e == 0]


def test_check_plan_is_the_explorer_check():
    """Issue 14: one implementation of 'does this plan run and fit' (the Explorer page calls it)."""
    from hardware_catalog import load_catalog
    from simulator import scenario_from_dict
    from simulator.execution.explore import check_plan
    from simulator.execution.plan import Plan

    cat = load_catalog()
    sc = scenario_from_dict({"model": {"preset": "llama3-70b"}, "training": {"tokens": 1e12},
                             "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 1024}})
    ok = check_plan(sc, Plan(tp=8, pp=4, cp=1, dp=32, microbatch=1, zero=1, recompute="selective"), cat)
    assert ok.fits and not ok.problems and 0 < ok.memory_gb["total_gb"] <= ok.capacity_gb
    broken = check_plan(sc, Plan(tp=8, pp=4, cp=1, dp=32, microbatch=1, zero=3, recompute="full"), cat)
    assert not broken.fits and any("ZeRO-3" in p for p in broken.problems) and broken.memory_gb is None
    small = sc.model_copy(update={"cluster": sc.cluster.model_copy(update={"devices": 8})})
    too_big = check_plan(small, Plan(tp=1, pp=1, cp=1, dp=8, microbatch=1, zero=0, recompute="none"), cat)
    assert not too_big.problems and not too_big.fits and too_big.memory_gb["total_gb"] > too_big.capacity_gb
