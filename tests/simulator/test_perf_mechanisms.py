"""Mechanisms of the performance model for today's hardware: catalog priors, low-precision GEMMs,
MoE experts, torus and full-mesh collectives. Expected values are hand-computed from the formulas' docstrings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hardware_catalog import load_catalog
from simulator.execution import collectives as coll
from simulator.model.shapes import ModelSpec, get_preset
from simulator.system.perf_params import PerfParams, catalog_priors, check_overrides, perf_params_for
from simulator.execution.plan import Plan, PlanGrid
from simulator.execution.moe_comm import MoeSetup
from simulator.execution.steptime import _Ops, step_parts

CAT = load_catalog()
H100 = CAT.accelerator("nvidia-h100-sxm-80gb")


def test_perf_params_for_reads_the_catalog_perf_table_and_names_it():
    acc = H100
    assert acc.perf is not None and not acc.perf.inherited_from
    p = perf_params_for(acc)
    for name, value in acc.perf.values().items():
        assert getattr(p, name) == value
    assert p.source.startswith("catalog [perf] of nvidia-h100-sxm-80gb")
    # overrides still apply on top, in order
    assert perf_params_for(acc, {"flash_attn_eff": 0.5}, {"flash_attn_eff": 0.25}).flash_attn_eff == 0.25


def test_accelerators_without_perf_table_keep_vendor_neutral_defaults():
    """A user's catalog entry without `[perf]` (every shipped part has one, fitted or inherited); one
    without its own fp8 rate (Gaudi 3: FP8 = BF16 peak) runs fp8 GEMMs at the bf16 efficiency."""
    bare = CAT.accelerator("intel-gaudi2").model_copy(update={"perf": None})
    assert catalog_priors(bare) == PerfParams()
    bare3 = CAT.accelerator("intel-gaudi3").model_copy(update={"perf": None})
    assert catalog_priors(bare3) == dataclasses.replace(PerfParams(), fp8_gemm_eff=1.0)


def test_a_stack_fitted_separately_overrides_only_its_parameters():
    a100 = CAT.accelerator("nvidia-a100-sxm-80gb")
    fsdp = a100.perf.stacks["fsdp"]
    ref, other = catalog_priors(a100), catalog_priors(a100, "fsdp")
    assert other.flash_attn_eff == fsdp["flash_attn_eff"].value != ref.flash_attn_eff
    assert other.gemm_eff_max == ref.gemm_eff_max  # hardware parameters are shared by the stacks
    assert catalog_priors(a100, "no-such-stack") == ref


def test_inherited_perf_tables_equal_their_sibling_and_say_so():
    """A family without public measurements copies its nearest measured sibling, marked as such (the
    GEMM ceiling keeps the sibling's fitted share of the maximum achievable matmul on the part's own,
    attention lowered with a lower ceiling)."""
    from calibrate.published import gemm_ceiling
    from simulator.validation.public_rows import load_kernel_rows

    kernels = load_kernel_rows()
    inherited = [a for a in CAT.accelerators.values() if a.perf is not None and a.perf.inherited_from]
    for acc in inherited:
        sibling = CAT.accelerator(acc.perf.inherited_from)
        assert sibling.perf is not None and not sibling.perf.inherited_from, acc.id
        own, theirs = (gemm_ceiling(a.id, "bf16", CAT, kernels) for a in (acc, sibling))
        for name, value in acc.perf.values().items():
            if name == "gemm_eff_max":  # sibling x own MAMF / sibling's MAMF, never above its own MAMF
                fitted = sibling.perf.values()[name]
                expected = fitted if own is None else min(own, fitted * own / theirs) if theirs else min(own, fitted)
                assert value == pytest.approx(expected, rel=1e-4), acc.id
            elif name == "gemm_kernel_max":  # the part's own maximum achievable matmul where measured
                continue
            elif name == "fp8_gemm_eff" and acc.vendor != sibling.vendor and "own maximum" in acc.perf.fp8_gemm_eff.source:
                continue  # across vendors: the part's own fp8/bf16 MAMF ratio (tests/calibrate/test_inherit.py)
            elif name in ("fp8_gemm_eff", "fp4_gemm_eff") and getattr(acc.perf, name).source.startswith(
                    ("rule:", "vendor-neutral")):
                continue  # no own fp8 rate on the part or its sibling (tests/calibrate/test_inherit.py)
            elif name == "flash_attn_eff":  # follows a lowered matmul ceiling (same matrix units, lower clock)
                same = acc.vendor == sibling.vendor
                clock = min(1.0, acc.perf.gemm_eff_max.value / sibling.perf.gemm_eff_max.value) if same else 1.0
                assert value == pytest.approx(sibling.perf.values()[name] * clock, rel=1e-4), acc.id
            else:
                assert value == sibling.perf.values()[name], (acc.id, name)
        measured = ("gemm_kernel_max", "fp8_gemm_eff") if acc.vendor != sibling.vendor else ("gemm_kernel_max",)
        assert all(not getattr(acc.perf, n).verified for n in acc.perf.values()
                   if n not in measured or "MAMF" not in getattr(acc.perf, n).source), acc.id
        assert "inherited" in catalog_priors(acc).source


def test_fp8_gemm_runs_at_fp8_peak_times_relative_ceiling_plus_cast():
    p = dataclasses.replace(PerfParams(), gemm_eff_max=0.8, gemm_half_gflop=1.0, fp8_gemm_eff=0.9, mem_bw_eff=1.0)
    bf16, fp8 = _Ops(H100, p, "bf16"), _Ops(H100, p, "fp8")
    m, n, k = 8192.0, 8192.0, 8192.0
    flops = 2 * m * n * k
    eta = 0.8 * (flops / 1e9) / (flops / 1e9 + 1.0)
    bw = 3.35e12
    expect_bf16 = flops / (989.4e12 * eta) + 2 * (m * k + k * n + m * n) / bw
    expect_fp8 = flops / (1978.9e12 * eta * 0.9) + (2 * (m * k + k * n + m * n) + 3 * m * k) / bw
    assert bf16.gemm(m, n, k) == pytest.approx(expect_bf16, rel=1e-12)
    assert fp8.gemm(m, n, k) == pytest.approx(expect_fp8, rel=1e-12)
    # attention stays at the bf16 peak under fp8 training
    assert fp8.peak_attn == bf16.peak_attn == 989.4e12


def test_fp8_training_is_faster_than_bf16_but_less_than_twice():
    model = get_preset("llama3-70b")
    grid = PlanGrid.from_plans([Plan(tp=4, pp=4, cp=2, dp=2, microbatch=1, zero=1)])
    p = perf_params_for(H100)
    t = {prec: float(step_parts(model, grid, H100, p, prec, 128).total_s[0]) for prec in ("bf16", "fp8")}
    assert 1.1 < t["bf16"] / t["fp8"] < 2.0


def test_fp4_needs_a_peak_and_uses_it():
    b200 = CAT.accelerator("nvidia-b200")
    model = get_preset("llama3-8b")
    grid = PlanGrid.from_plans([Plan(tp=1, pp=1, dp=8, microbatch=1, zero=1)])
    p = perf_params_for(b200)
    t4 = float(step_parts(model, grid, b200, p, "fp4", 64).total_s[0])
    t8 = float(step_parts(model, grid, b200, p, "fp8", 64).total_s[0])
    assert t4 < t8
    with pytest.raises(Exception, match="fp4"):
        step_parts(model, grid, H100, perf_params_for(H100), "fp4", 64)


def _moe(experts=64, k=8) -> ModelSpec:
    return ModelSpec("moe", 16, 2048, 16, 16, 8192, 32000, 4096, experts=experts, experts_per_token=k,
                     expert_ffn_dim=1024, moe_layers=16)


def test_moe_imbalance_and_grouped_gemm_slow_the_expert_compute():
    model = _moe()
    grid = PlanGrid.from_plans([Plan(tp=1, pp=1, dp=8, ep=8, microbatch=1, zero=1)])
    base = dataclasses.replace(PerfParams(), moe_imbalance=1.0, grouped_gemm_eff=1.0)
    t0 = float(step_parts(model, grid, H100, base, "bf16", 64).compute_s[0])
    t_imb = float(step_parts(model, grid, H100, dataclasses.replace(base, moe_imbalance=1.3), "bf16", 64).compute_s[0])
    t_grp = float(step_parts(model, grid, H100, dataclasses.replace(base, grouped_gemm_eff=0.5), "bf16", 64)
                  .compute_s[0])
    assert t_imb > t0 and t_grp > t0
    # ep_comm is the same whatever the compute priors
    a = step_parts(model, grid, H100, base, "bf16", 64).ep_comm_s[0]
    b = step_parts(model, grid, H100, dataclasses.replace(base, moe_imbalance=1.3), "bf16", 64).ep_comm_s[0]
    assert a == b > 0


def test_check_overrides_refuses_imbalance_below_one():
    with pytest.raises(ValueError, match=r"perf\.moe_imbalance: expected >= 1"):
        check_overrides({"moe_imbalance": 0.9}, "perf")


def test_torus_ring_latency_runs_per_axis():
    """256 chips on a 16x16 torus: 2 x (16 - 1) = 30 steps, not 255 (jax-ml/scaling-book)."""
    v5e = CAT.accelerator("google-tpu-v5e")
    assert v5e.scale_up.topology == "torus2d"
    p = PerfParams()
    net = coll.Network.of(v5e, p)
    tiny = 8.0  # bytes: latency-bound
    t = float(coll.reduce_scatter(net, 256, tiny))
    assert t == pytest.approx(30 * p.scaleup_latency_s + 255 / 256 * tiny / net.up_bytes_per_s, rel=1e-9)
    switched = dataclasses.replace(net, torus_dims=0)
    assert float(coll.reduce_scatter(switched, 256, tiny)) == pytest.approx(
        255 * p.scaleup_latency_s + 255 / 256 * tiny / net.up_bytes_per_s, rel=1e-9)
    # 3D torus: 4096 chips in 16x16x16 -> 45 steps
    v4 = coll.Network.of(CAT.accelerator("google-tpu-v4"), p)
    intra, inter = coll._ring_steps(v4, np.array(4096), np.array(1))
    assert float(intra) == pytest.approx(45.0) and float(inter) == 0.0
    # across slices (DCN): per-axis rings inside each 4096-chip slice, then a ring of the 2 slices
    intra, inter = coll._ring_steps(v4, np.array(8192), np.array(2))
    assert float(intra) == pytest.approx(45.0) and float(inter) == 1.0


def test_full_mesh_group_uses_only_its_members_links():
    """MI300X: 7 Infinity Fabric links of 128 GB/s to the other 7 GPUs of the node (ROCm mi300.md),
    448 GB/s per direction in all. A TP pair reaches its peer over one link, 64 GB/s; all 8 over
    7 links; a point-to-point send over one. NVSwitch (H100) gives any group the full bandwidth."""
    mi300x = CAT.accelerator("amd-mi300x")
    assert mi300x.scale_up.topology == "mesh" and H100.scale_up.topology == "switch"
    p = PerfParams()
    net = coll.Network.of(mi300x, p)
    link = 128e9 / 2 * p.scaleup_eff  # one link, one direction, at the fabric efficiency
    assert net.up_bytes_per_s == pytest.approx(7 * link, rel=1e-12)
    size = 1e9
    lat = p.scaleup_latency_s
    pair = float(coll.all_reduce(net, 2, size))
    assert pair == pytest.approx(2 * 1 / 2 * size / link + 2 * 1 * lat, rel=1e-12)
    node = float(coll.all_reduce(net, 8, size))
    assert node == pytest.approx(2 * 7 / 8 * size / (7 * link) + 2 * 7 * lat, rel=1e-12)
    four = float(coll.reduce_scatter(net, 4, size))
    assert four == pytest.approx(3 / 4 * size / (3 * link) + 3 * lat, rel=1e-12)
    assert float(coll.p2p(net, size, True)) == pytest.approx(size / link + lat, rel=1e-12)
    # a pair across two nodes (stride 8): one rank per domain, the NIC carries it as before
    cross = float(coll.all_reduce(net, 2, size, stride=8))
    assert cross == pytest.approx(2 * 1 / 2 * size / net.out_bytes_per_s + 2 * p.scaleout_latency_s, rel=1e-12)
    switched = coll.Network.of(H100, p)
    assert float(coll.all_reduce(switched, 2, size)) == pytest.approx(
        size / switched.up_bytes_per_s + 2 * lat, rel=1e-12)


def test_mesh_parts_in_the_catalog():
    """Point-to-point scale-up fabrics: AMD Instinct Infinity Fabric and Gaudi's on-chip RoCE."""
    mesh = sorted(a.id for a in CAT.accelerators.values() if a.scale_up.topology == "mesh")
    assert mesh == ["amd-mi300x", "amd-mi325x", "amd-mi355x", "intel-gaudi2", "intel-gaudi3"]


def test_scenario_stack_picks_the_catalog_stack_and_is_not_a_plan_field():
    from simulator.estimate import estimate
    from simulator.scenario import scenario_from_dict

    def run(**par):
        return estimate(scenario_from_dict({
            "model": {"preset": "llama2-7b"}, "training": {"tokens": 1e11},
            "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 8},
            "parallelism": {"tp": 1, "pp": 1, "dp": 8, "zero": 3, "microbatch": 2, "recompute": "none", **par}}), CAT)

    ref, fsdp = run(), run(stack="fsdp")
    # llm-foundry's FSDP stack: FlashAttention-2 (0.16 of peak on H100 vs 0.27) and more elementwise traffic
    assert fsdp.step_time_s > ref.step_time_s
    assert "fsdp stack" in fsdp.values["efficiency_source"] and "stack" not in fsdp.plan
    assert run(stack="maxtext").step_time_s == ref.step_time_s  # H100 has no maxtext table: the reference
    with pytest.raises(Exception, match="stack"):
        run(stack="deepspeed")


def _perf_notes(acc: str, devices: int, **extra) -> list[str]:
    from simulator.estimate import estimate
    from simulator.scenario import scenario_from_dict

    sc = {"model": {"preset": "llama3-70b"}, "training": {"tokens": 1e12}, "cluster": {"accelerator": acc, "devices": devices}}
    for key, value in extra.items():
        sc[key] = value
    return [a for a in estimate(scenario_from_dict(sc), CAT).assumptions if a.startswith("performance:")]


def test_weakly_identified_attention_prior_is_said_where_it_matters():
    """Llama 3 70B at 8k tokens: attention is 13% of the model FLOPs (PaLM convention:
    12 L s d / (6 N + 12 L s d)). TPU v5p's MaxText rows barely inform its attention kernel (catalog note),
    nor do MI325X's five rows, which MI300X inherits; H100's 110 rows do."""
    from simulator.system.perf_params import weak_priors

    v5p = CAT.accelerator("google-tpu-v5p")
    assert weak_priors(v5p)["flash_attn_eff"].startswith(("weakly identified", "not identified"))
    assert "flash_attn_eff" not in weak_priors(H100)
    (note,) = _perf_notes("google-tpu-v5p", 1024)
    assert note.startswith("performance: attention is 13% of this run's model FLOPs and google-tpu-v5p's")
    (mi300x,) = _perf_notes("amd-mi300x", 64)
    assert "amd-mi300x's attention-kernel efficiency (0.263 of peak, inherited from amd-mi325x) is not " \
           "identified by amd-mi325x's published rows" in mi300x  # inherited: the sibling's fit says it
    assert _perf_notes("nvidia-h100-sxm-80gb", 64) == []
    assert _perf_notes("google-tpu-v5p", 1024, efficiency={"perf": {"flash_attn_eff": 0.3}}) == []
    assert _perf_notes("google-tpu-v5p", 1024, model={"preset": "llama3-70b", "seq_len": 2048}) == []  # 4%


def test_recompute_levels_re_run_their_named_forward_parts():
    """Per micro-batch and layer, a recompute level adds the forward of what it re-runs (steptime
    `_recompute`): selective the attention core; "mlp" the core and the MLP's two GEMMs (Megatron-Core
    re-runs the checkpointed MLP module), with the maxtext stack only the gate and up projections
    (`save_dot_except_mlpwi` saves the output projection's result); offload the core, the attention
    output projection and the gate and up projections. Llama 2 7B, TP 1, one 4k sequence, 8 micro-batches,
    no communication to hide anything."""
    model = get_preset("llama2-7b")
    p = perf_params_for(H100)
    ops = _Ops(H100, p, "bf16")
    tok, h, f = 4096.0, 4096.0, 11008.0
    gate_up, down, out_proj = ops.gemm(tok, 2 * f, h), ops.gemm(tok, h, f), ops.gemm(tok, h, h)

    def compute(rc, stack="megatron"):
        grid = PlanGrid.from_plans([Plan(tp=1, pp=1, dp=1, microbatch=1, zero=0, recompute=rc,
                                         sequence_parallel=False)])
        return float(step_parts(model, grid, H100, p, "bf16", 8, stack=stack).compute_s[0])

    per_layer = 8 * 32  # micro-batches x layers
    core = (compute("selective") - compute("none")) / per_layer
    assert core > 0
    assert (compute("mlp") - compute("selective")) / per_layer == pytest.approx(gate_up + down, rel=1e-9)
    assert (compute("mlp", "maxtext") - compute("selective")) / per_layer == pytest.approx(gate_up, rel=1e-9)
    assert (compute("offload") - compute("selective")) / per_layer == pytest.approx(out_proj + gate_up, rel=1e-9)
    assert compute("none") < compute("selective") < compute("offload") < compute("mlp") < compute("full")


def test_offload_is_never_searched_and_says_what_it_assumes():
    """The host transfers of recompute "offload" are not timed, so the search must not pick it on its
    own, and an estimate that runs it says so."""
    from simulator.estimate import estimate
    from simulator.scenario import scenario_from_dict

    def run(parallelism):
        return estimate(scenario_from_dict({
            "model": {"preset": "llama3-8b"}, "training": {"tokens": 1e12},
            "cluster": {"accelerator": "google-tpu-v6e", "devices": 256}, "parallelism": parallelism}), CAT)

    searched, fixed = run({}), run({"recompute": "offload"})
    assert searched.plan["recompute"] != "offload" and fixed.plan["recompute"] == "offload"
    noted = [a for a in fixed.assumptions if a.startswith("parallelism.recompute = offload")]
    assert len(noted) == 1 and "host-link bandwidth not modelled" in noted[0]
    assert not [a for a in searched.assumptions if "offload" in a]


# --- MoE token exchange (execution/moe_comm.py) ------------------------------------------------
H800 = CAT.accelerator("nvidia-h800-sxm-80gb")


def test_destination_nodes_by_hand():
    """Balanced routing: k of E experts over N nodes reach N (1 - C(E - E/N, k) / C(E, k)) nodes;
    DeepSeek-V3's node-limited routing (4 of 8 groups, one group per node of EP64) caps it at
    8 (1 - C(7, 4) / C(8, 4)) = 4 (its report: "at most M = 4 nodes")."""
    from math import comb

    from simulator.execution.moe_comm import destination_nodes

    ds = get_preset("deepseek-v3")
    assert destination_nodes(ds, 8) == pytest.approx(8 * (1 - comb(7, 4) / comb(8, 4))) == pytest.approx(4.0)
    free = dataclasses.replace(ds, expert_groups=0, expert_groups_per_token=0)
    assert destination_nodes(free, 8) == pytest.approx(8 * (1 - comb(224, 8) / comb(256, 8)))  # 5.25
    mixtral = get_preset("mixtral-8x7b")
    assert destination_nodes(mixtral, 4) == pytest.approx(4 * (1 - comb(6, 2) / comb(8, 2)))  # 1.86
    assert destination_nodes(mixtral, 1) == 1.0


def test_deepep_dispatch_by_hand():
    """DeepSeek-V3, EP 64 over 8 H800 nodes, 4096 tokens per rank, FP8: each token crosses the
    network to 4 x 7/8 = 3.5 remote nodes on average (1 B per element forward, 2 B for the combine and
    the backward) while NVLink forwards its 8 copies (7/8 of them off the rank); the slower leg sets
    each exchange's time."""
    from simulator.execution.moe_comm import dispatch_combine_s

    ds = get_preset("deepseek-v3")
    p = perf_params_for(H800)
    net = coll.Network.of(H800, p)
    tokens, h = 4096, 7168

    def leg(b):
        rdma = tokens * h * b * 4.0 * 7 / 8 / net.out_bytes_per_s
        nvlink = tokens * h * b * 8 * 7 / 8 / net.up_for(8)
        return max(rdma, nvlink) + net.out_latency_s

    fwd, bwd = (float(x) for x in dispatch_combine_s(net, ds, 64, 1, tokens, "fp8", MoeSetup("deepep")))
    assert (fwd, bwd) == (pytest.approx(leg(1) + leg(2), rel=1e-9), pytest.approx(2 * leg(2), rel=1e-9))
    # the all-to-all dispatcher sends every (token, expert) pair in bf16, 56/64 of them over the NIC
    a2a = [float(x) for x in dispatch_combine_s(net, ds, 64, 1, tokens, "fp8", MoeSetup("alltoall"))]
    assert a2a == [pytest.approx(2 * float(coll.all_to_all(net, 64, tokens * h * 2 * 8)), rel=1e-12)] * 2
    assert sum(a2a) > 2 * (fwd + bwd)
    assert [float(x) for x in dispatch_combine_s(net, ds, 1, 1, tokens, "bf16", MoeSetup("deepep"))] == [0.0, 0.0]
    with pytest.raises(ValueError, match="parallelism.moe_dispatcher: expected one of alltoall, deepep"):
        MoeSetup("nccl")


def test_ep_overlap_hides_at_most_the_compute():
    """`ep_overlap` hides that share of the dispatch and combine behind another micro-batch's
    compute, never more than the compute itself; with overlap_comm off nothing is hidden."""
    ds = get_preset("deepseek-v3")
    grid = PlanGrid.from_plans([Plan(tp=1, pp=16, dp=128, ep=64, microbatch=1, zero=1, recompute="mlp")])
    p = perf_params_for(H800)
    parts = {o: step_parts(ds, grid, H800, dataclasses.replace(p, ep_overlap=o), "fp8", 15360,
                           moe=MoeSetup("deepep")) for o in (0.0, 0.5, 1.0)}
    none, half, full = (float(parts[o].ep_comm_s[0]) for o in (0.0, 0.5, 1.0))
    compute = float(parts[0.0].compute_s[0])
    assert none > 0 and half == pytest.approx(none - min(0.5 * none, compute), rel=1e-12)
    assert full == pytest.approx(max(none - compute, 0.0), abs=1e-9)
    off = step_parts(ds, grid, H800, dataclasses.replace(p, ep_overlap=1.0), "fp8", 15360, overlap=False,
                     moe=MoeSetup("deepep"))
    assert float(off.ep_comm_s[0]) == pytest.approx(none, rel=1e-12)
    # a recomputed MoE block dispatches and combines its tokens again (the forward pair, not the backward)
    selective = step_parts(ds, PlanGrid.from_plans([Plan(tp=1, pp=16, dp=128, ep=64, microbatch=1, zero=1,
                                                         recompute="selective")]),
                           H800, p, "fp8", 15360, moe=MoeSetup("deepep"))
    net = coll.Network.of(H800, p)
    from simulator.execution.moe_comm import dispatch_combine_s

    fwd, _ = dispatch_combine_s(net, ds, 64, 1, 4096, "fp8", MoeSetup("deepep"))
    m, moe_layers_on_stage = 15360 / 128, 4 * 58 / 61  # micro-batches per DP rank; ceil(61/16) layers
    assert none - float(selective.ep_comm_s[0]) == pytest.approx(m * moe_layers_on_stage * float(fwd), rel=1e-9)


def test_tp_and_ep_share_one_compute_budget():
    """TP and EP collectives of a micro-batch hide behind the same compute, so together never more
    than it: with both overlaps 1 and a TP exchange longer than the compute (scale-up links at 1% of
    their rate), the exposed TP and EP time is the unhidden total less one micro-batch's compute (it
    was less two while each was capped on its own)."""
    model = _moe()
    grid = PlanGrid.from_plans([Plan(tp=2, pp=1, dp=8, ep=8, microbatch=1, zero=1)])
    p = dataclasses.replace(perf_params_for(H100), tp_overlap=1.0, ep_overlap=1.0, scaleup_eff=0.01)
    on, off = (step_parts(model, grid, H100, p, "bf16", 64, overlap=o) for o in (True, False))
    compute, tp_raw, ep_raw = (float(x[0]) for x in (on.compute_s, off.tp_comm_s, off.ep_comm_s))
    assert tp_raw > compute and ep_raw > 0
    assert float(on.tp_comm_s[0]) == pytest.approx(tp_raw - compute, rel=1e-9)
    assert float(on.ep_comm_s[0]) == pytest.approx(ep_raw, rel=1e-9)


def test_node_limited_routing_fields_are_checked():
    from simulator.errors import ScenarioError

    ds = get_preset("deepseek-v3")
    with pytest.raises(ScenarioError, match="model.expert_groups: 6 must divide experts"):
        dataclasses.replace(ds, expert_groups=6)
    with pytest.raises(ScenarioError, match="model.expert_groups_per_token: expected 0..expert_groups"):
        dataclasses.replace(ds, expert_groups_per_token=9)


def test_token_dropping_pads_experts_to_capacity():
    """A capacity factor c (Megatron-Core --moe-expert-capacity-factor with padding, MaxText's dropping
    MoE) gives every expert c x its mean share of tokens: the expert GEMMs run as under a dropless
    imbalance of c, and the exchange buffers are c x the dropless ones."""
    model = _moe()
    grid = PlanGrid.from_plans([Plan(tp=1, pp=1, dp=8, ep=8, microbatch=1, zero=1)])
    p = perf_params_for(H100)
    dropped = step_parts(model, grid, H100, p, "bf16", 64, moe=MoeSetup(capacity_factor=1.25))
    as_imbalance = step_parts(model, grid, H100, dataclasses.replace(p, moe_imbalance=1.25), "bf16", 64)
    assert float(dropped.compute_s[0]) == pytest.approx(float(as_imbalance.compute_s[0]), rel=1e-12)
    from simulator.execution.moe_comm import dispatch_combine_s

    net = coll.Network.of(H100, p)
    fwd, _ = dispatch_combine_s(net, model, 8, 1, 4096, "bf16", MoeSetup(capacity_factor=1.25))
    assert float(fwd) == pytest.approx(2 * float(coll.all_to_all(net, 8, 4096 * 2048 * 2 * 8 * 1.25)), rel=1e-12)
    assert MoeSetup().busiest_share(1.1) == 1.1 and MoeSetup(capacity_factor=2.0).busiest_share(1.1) == 2.0
    with pytest.raises(ValueError, match="training.moe_capacity_factor: expected a positive number"):
        MoeSetup(capacity_factor=0.0)


def test_maxtext_dropping_rows_carry_their_capacity_factor():
    """The two MaxText Mixtral rows on TPU v6e run its dropping MoE at capacity_factor=1.25 (the
    tpu-recipes evidence in public_rows_supplements)."""
    from simulator.validation.public_rows import load_public_rows

    dropping = {r.row: r.moe_capacity_factor for r in load_public_rows(catalog=CAT) if r.moe_capacity_factor}
    assert dropping == {328: 1.25, 329: 1.25}


def test_overlap_hides_at_most_the_compute():
    """Overlapped communication hides behind computation, so never more than there is of it: with
    `dp_overlap` 0.9 a data-parallel sync of 10 s over 3 s of compute leaves 7 s, not 1 s."""
    from simulator.execution.steptime import _exposed

    assert float(_exposed(10.0, 0.9, 3.0)) == pytest.approx(7.0)
    assert float(_exposed(2.0, 0.9, 3.0)) == pytest.approx(0.2)
    assert float(_exposed(2.0, 0.0, 3.0)) == 2.0
    # MPT-3b-like FSDP on 512 H100 at 2 sequences per GPU: the sync exceeds the step's compute
    model = ModelSpec("mpt-3b", 32, 2560, 32, 32, 10240, 50368, 2048, gated_mlp=False, tied_embeddings=True)
    grid = PlanGrid.from_plans([Plan(tp=1, pp=1, dp=512, microbatch=2, zero=3, recompute="none",
                                     sequence_parallel=False)])
    p = perf_params_for(H100, stack="fsdp")
    on = step_parts(model, grid, H100, p, "bf16", 1024, stack="fsdp")
    off = step_parts(model, grid, H100, p, "bf16", 1024, overlap=False, stack="fsdp")
    raw, compute = float(off.dp_comm_s[0]), float(on.compute_s[0])
    assert raw > compute
    assert float(on.dp_comm_s[0]) == pytest.approx(raw - min(p.dp_overlap * raw, compute), rel=1e-12)


def test_fsdp_gathers_a_block_in_one_call():
    """PyTorch FSDP flattens a wrapped block's parameters into one FlatParameter and gathers it in one
    collective; the other stacks gather each of the 4 weight matrices: with ZeRO-3 and no overlap the
    data-parallel sync differs by 3 ring latencies per layer, per gather (2) and reduce-scatter (1)."""
    model = get_preset("llama2-7b")
    grid = PlanGrid.from_plans([Plan(tp=1, pp=1, dp=64, microbatch=1, zero=3, recompute="none",
                                     sequence_parallel=False)])
    p = perf_params_for(H100)
    dp = {s: float(step_parts(model, grid, H100, p, "bf16", 64, overlap=False, stack=s).dp_comm_s[0])
          for s in ("megatron", "fsdp")}
    ring_latency = float(coll.reduce_scatter(coll.Network.of(H100, p), 64, 0.0, 1, 1))
    assert dp["megatron"] - dp["fsdp"] == pytest.approx((2 + 1) * 3 * 32 * ring_latency, rel=1e-9)


def test_list_collectives_add_a_host_copy_per_rank_and_call():
    """DeepSpeed ZeRO-3 of 2021 gathers each weight matrix with a list-output all_gather, whose n
    chunks PyTorch copies one at a time: per micro-batch, (gathers + 1 reduce-scatter) x 4 matrices x
    layers x n ranks x the copy's host time. GPT-3 175B on 1,536 A100 (Narayanan et al. 2021 Table 2's
    ZeRO-3 row): with full recompute 2 gathers plus a third of the 8/12 of the weights released before
    the backward (all but the MLP output matrix, used again within DeepSpeed's reuse distance:
    steptime._regathered_share), so (2 + 2/3 + 1) x 4 x 96 x 1536 x 5 us = 10.8 s per micro-batch;
    0 on current stacks."""
    a100 = CAT.accelerator("nvidia-a100-sxm-80gb")
    m = get_preset("gpt3-175b")
    g = PlanGrid.from_plans([Plan(tp=1, pp=1, dp=1536, microbatch=1, zero=3, recompute="full")])
    base = step_parts(m, g, a100, PerfParams(), "fp16", 1536, flash=False, overlap=False)
    slow = step_parts(m, g, a100, PerfParams(list_copy_overhead_s=5e-6), "fp16", 1536, flash=False, overlap=False)
    assert float(slow.dp_comm_s[0] - base.dp_comm_s[0]) == pytest.approx((2 + 8 / 12 + 1) * 4 * 96 * 1536 * 5e-6, rel=1e-5)  # biases aside
    with pytest.raises(ValueError, match="list_copy_overhead_s"):
        check_overrides({"list_copy_overhead_s": -1.0}, "efficiency.perf")


def test_fp8_on_a_part_without_its_own_fp8_rate_costs_only_its_casts():
    """TPU v5p lists FP8 at its BF16 peak: with fp8_gemm_eff 1 the GEMMs take the bf16 time, so an fp8
    step is no faster than bf16 and slower only by the casts (within 3% on Llama 3 8B, 64 chips, one
    plan)."""
    from simulator.estimate import estimate
    from simulator.scenario import scenario_from_dict

    def step(precision):
        sc = {"model": {"preset": "llama3-8b"}, "training": {"tokens": 1e11, "precision": precision},
              "cluster": {"accelerator": "google-tpu-v5p", "devices": 64},
              "parallelism": {"tp": 1, "pp": 1, "cp": 1, "dp": 64, "zero": 3, "recompute": "full", "microbatch": 1}}
        return estimate(scenario_from_dict(sc), CAT).step_time_s

    assert CAT.accelerator("google-tpu-v5p").perf.fp8_gemm_eff.value == 1.0
    assert 1.0 < step("fp8") / step("bf16") < 1.03


def test_own_rate_missing_reads_only_fp8_and_fp4_against_bf16():
    from simulator.system.perf_params import own_rate_missing

    v5p, h100 = CAT.accelerator("google-tpu-v5p"), CAT.accelerator("nvidia-h100-sxm-80gb")
    assert own_rate_missing(v5p, "fp8") and not own_rate_missing(h100, "fp8")
    assert not own_rate_missing(v5p, "bf16") and not own_rate_missing(v5p, "fp4")  # bf16 itself; no fp4 peak listed
    assert [a for a in CAT.accelerators if own_rate_missing(CAT.accelerator(a), "fp8")] == [
        "aws-trainium1", "google-tpu-v5p", "google-tpu-v6e", "intel-gaudi3"]
