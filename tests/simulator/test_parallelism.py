"""Plans, memory, step time and search: hand-computed values, published plans, invariants."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware_catalog import load_catalog
from simulator.execution import collectives as coll
from simulator.system.efficiency import resolve_efficiency
from simulator.execution.memory import capacity_gb, memory_per_device, params_per_device
from simulator.model.shapes import get_preset
from simulator.system.perf_params import PerfParams
from simulator.execution.plan import Plan, PlanGrid, enumerate_plans, plan_problems, rule_violations
from simulator.execution.search import search_plans
from simulator.execution.steptime import step_parts

CAT = load_catalog(use_env=False)
A100 = CAT.accelerator("nvidia-a100-sxm-80gb")
H100 = CAT.accelerator("nvidia-h100-sxm-80gb")
P = PerfParams()


def grid(**kw):
    return PlanGrid.from_plans([Plan(**kw)])


# --- rules -----------------------------------------------------------------------------------
def test_rules_name_the_field():
    m = get_preset("llama3-8b")  # 32 heads, 8 KV heads, 32 layers
    msgs = plan_problems(Plan(tp=3, pp=40, dp=1, zero=3), m, 120, 512)
    text = " ".join(msgs)
    assert "parallelism.tp: 3 does not divide the 32 attention heads" in text
    assert "parallelism.pp: 40 stages for only 32 layers" in text
    assert "parallelism.zero" in text
    assert plan_problems(Plan(tp=8, pp=4, dp=8), m, 256, 512) == []


def test_interleaving_allows_embedding_and_output_only_virtual_stages():
    """Llama 3 405B: 126 layers on 16 stages x 8 chunks = 128 virtual stages, the first holding only
    the embedding and the last only the output layer (Dubey et al. 2024 sec. 3.3.2). One fewer
    layer (125 + 2 < 128) leaves a virtual stage with nothing in it."""
    from dataclasses import replace

    m = get_preset("llama3-405b")
    assert m.layers == 126
    plan = Plan(tp=8, pp=16, dp=64, interleave=8, zero=1)
    assert plan_problems(plan, m, 8192, 2048) == []
    msgs = plan_problems(plan, replace(m, layers=125), 8192, 2048)
    assert msgs == [("parallelism.interleave: 8 needs pp > 1, pp*interleave <= layers + 2 (127) and "
                     "micro-batches divisible by pp")]


def test_ep_rules():
    mix = get_preset("mixtral-8x7b")
    dense = get_preset("llama3-8b")
    bad = rule_violations(PlanGrid.from_plans([Plan(ep=3, dp=6), Plan(ep=8, dp=8), Plan(ep=2, dp=2)]), mix, 64)
    assert bad[0].any() and not bad[1].any()
    assert rule_violations(grid(ep=2, dp=2), dense, 64).any()


def test_enumeration_covers_factorisations():
    m = get_preset("llama3-8b")
    g = enumerate_plans(m, 64, max_tp=8, fixed={"microbatch": 1, "zero": 1, "recompute": "full", "interleave": 1})
    assert np.all(g.tp * g.pp * g.cp * g.dp == 64)
    triples = set(zip(g.tp.tolist(), g.pp.tolist(), g.cp.tolist(), strict=True))
    # tp in {1,2,4,8}, cp in {1,2,4,8,16}, pp any divisor of 64/(tp*cp) up to the 32 layers
    expected = sum(len([p for p in range(1, 33) if (64 // (t * c)) % p == 0])
                   for t in (1, 2, 4, 8) for c in (1, 2, 4, 8, 16) if 64 % (t * c) == 0)
    assert len(triples) == expected


# --- memory ----------------------------------------------------------------------------------
def test_static_memory_hand_computed():
    m = get_preset("llama2-7b")
    g = grid(tp=2, pp=2, dp=4, zero=1, microbatch=1, recompute="full")
    n = params_per_device(m, g)[0]
    per_layer = (m.params_total() - m.embedding_params()) / m.layers
    assert n == pytest.approx((per_layer * 16 + 32000 * 4096) / 2)
    mem = memory_per_device(m, g, batch_seqs=64)
    assert mem.weights_gb[0] == pytest.approx(2 * n / 1e9)
    assert mem.gradients_gb[0] == pytest.approx(4 * n / 1e9)
    assert mem.optimizer_gb[0] == pytest.approx(12 * n / 4 / 1e9)


def test_korthikanti_activations_gpt_mlp():
    """Korthikanti 2022 Table 2: TP + SP stores 34 s b h / t bytes per layer (ffn = 4h) with the
    paper's dropout masks, 32 s b h / t without them (dropout 0, as modern LLMs train)."""
    m = get_preset("gpt3-175b")
    from simulator.execution.activations import activation_bytes_per_layer
    g = grid(tp=8, microbatch=1, sequence_parallel=True, recompute="selective")
    assert activation_bytes_per_layer(m, g, dropout=True)[0] == pytest.approx(34 * 2048 * 12288 / 8)
    assert activation_bytes_per_layer(m, g)[0] == pytest.approx(32 * 2048 * 12288 / 8)
    g_nosp = grid(tp=8, microbatch=1, sequence_parallel=False, recompute="selective")
    assert activation_bytes_per_layer(m, g_nosp, dropout=True)[0] == pytest.approx(2048 * 12288 * (10 + 24 / 8))


def test_fp8_keeps_gemm_inputs_in_one_byte():
    """Transformer Engine saves FP8 copies of its GEMMs' inputs for the weight gradients. GPT-3
    (ffn = 4h, MHA), TP + SP, per token per layer: 32 h bytes in bf16; FP8 takes 1 B off the QKV and
    first-MLP inputs (-2h) and off the second MLP GEMM's input (-4h), and adds the output
    projection's FP8 copy of the attention output (+h): 27 h. Llama 3 70B (gated, f = 28672, GQA):
    the same -2h - f + H hd."""
    from simulator.execution.activations import activation_bytes_per_layer
    g = grid(tp=8, microbatch=1, sequence_parallel=True, recompute="selective")
    gpt3 = get_preset("gpt3-175b")
    assert activation_bytes_per_layer(gpt3, g, precision="fp8")[0] == pytest.approx(27 * 2048 * 12288 / 8)
    llama = get_preset("llama3-70b")
    s, h, f = llama.seq_len, llama.d_model, llama.ffn_dim
    delta = s * (-2 * h - f + llama.heads * llama.hd) / 8
    bf16 = activation_bytes_per_layer(llama, g)[0]
    assert activation_bytes_per_layer(llama, g, precision="fp8")[0] == pytest.approx(bf16 + delta, rel=1e-12)
    assert activation_bytes_per_layer(llama, g, precision="fp4")[0] == bf16  # no public FP4 recipe: as bf16


@pytest.mark.parametrize("preset,plan,batch", [
    ("megatron-1.7b", dict(tp=1, pp=1, dp=32), 512),
    ("megatron-7.5b", dict(tp=4, pp=1, dp=32), 512),
    ("megatron-39.1b", dict(tp=8, pp=2, dp=32), 1536),
    ("megatron-145.6b", dict(tp=8, pp=8, dp=24), 2304),
    ("megatron-529.6b", dict(tp=8, pp=35, dp=9), 2520),
    ("bloom-176b", dict(tp=4, pp=12, dp=8, zero=1), 2048),
])
def test_published_plans_fit_on_80gb(preset, plan, batch):
    """Narayanan et al. 2021 Table 1 and BLOOM (TP4 PP12 DP8) ran on 80 GB A100s."""
    g = grid(**{"zero": 0, "microbatch": 1, "recompute": "full", "sequence_parallel": False, **plan})
    assert memory_per_device(get_preset(preset), g, batch, flash=False).total_gb[0] < 80


def test_175b_without_model_parallelism_does_not_fit():
    mem = memory_per_device(get_preset("gpt3-175b"), grid(tp=1, pp=1, dp=1024, zero=0), 1536)
    assert mem.total_gb[0] > 16 * 175e9 / 1e9  # 18 B/param of static state alone is 3.1 TB


# --- collectives and step time ---------------------------------------------------------------
def test_ring_collectives_hand_computed():
    net = coll.Network(up_bytes_per_s=100e9, up_latency_s=1e-5, out_bytes_per_s=10e9, out_latency_s=2e-5, domain=8)
    s = 1e9
    assert coll.all_reduce(net, 8, s) == pytest.approx(2 * 7 / 8 * s / 100e9 + 2 * 7 * 1e-5)
    # 32 ranks, 8 per domain: RS/AG inside, then 4 domains on S/8 over the NIC; of the ring's 31 steps
    # 3 cross domains (NIC latency) and 28 stay inside (fabric latency: NCCL tuning.cc's ring model)
    expected = 7 / 8 * s / 100e9 + 3 / 4 * (s / 8) / 10e9 + 28 * 1e-5 + 3 * 2e-5
    assert coll.reduce_scatter(net, 32, s) == pytest.approx(expected)
    assert coll.p2p(net, s, False) == pytest.approx(s / 10e9 + 2e-5)


def test_bubble_is_pp_minus_1_over_v_microbatches():
    m = get_preset("megatron-39.1b")
    parts = step_parts(m, PlanGrid.from_plans([Plan(tp=8, pp=4, dp=4, microbatch=1, interleave=v, zero=1)
                                               for v in (1, 2)]), A100, P, "bf16", 64)
    per_mb_1 = (parts.total_s[0] - parts.bubble_s[0] - parts.dp_comm_s[0] - parts.optimizer_s[0]) / 16
    assert parts.bubble_s[0] == pytest.approx(3 * per_mb_1)
    assert parts.bubble_s[1] < parts.bubble_s[0]


def test_cp_all_gather_is_exposed_and_hand_computed():
    """cp_comm = "all_gather" (Llama 3 sec. 3.3.2): per layer and micro-batch, an all-gather of the
    whole sequence's K and V before the forward (and the recomputed forward) and a reduce-scatter
    of their gradients, none of it hidden; the p2p ring hides behind attention at long sequences."""
    m = get_preset("llama3-405b").with_seq_len(131072)
    g = PlanGrid.from_plans([Plan(tp=8, cp=16, pp=16, dp=8, microbatch=1, interleave=8, zero=1, recompute=r)
                             for r in ("full", "none")])
    ring = step_parts(m, g, H100, P, "bf16", 128)
    gathered = step_parts(m, g, H100, P, "bf16", 128, cp_comm="all_gather")
    assert np.all(ring.cp_comm_s == 0.0)
    # this rank's K/V chunk: 2 (K, V) x 8192 tokens x 1 KV head (8 over TP 8) x 128 x 2 bytes
    chunk = 2 * 8192 * 1 * 128 * 2
    net = coll.Network.of(H100, P)
    # 16 CP ranks, one per node (stride TP = 8 fills a node): 15/16 of the gathered 16 chunks over
    # the NIC at its efficiency, 15 ring steps at the NIC latency
    one = 15 / 16 * 16 * chunk / (50e9 * P.scaleout_eff) + 15 * P.scaleout_latency_s
    assert H100.scale_out.gbit_per_s.value == 400 and net.domain == 8
    m_per_rank, layers_per_stage = 16, 8
    assert gathered.cp_comm_s[0] == pytest.approx(m_per_rank * layers_per_stage * 3 * one)
    assert gathered.cp_comm_s[1] == pytest.approx(m_per_rank * layers_per_stage * 2 * one)
    assert np.allclose(gathered.compute_s, ring.compute_s)


def test_cp_all_gather_holds_one_layers_full_kv_and_grads():
    """Llama 3 405B at 131,072 tokens, TP 8 (1 KV head per rank), CP 16: the gathered K and V of the
    whole sequence and their gradients, 2 x 2 x 131072 x 1 x 128 x 2 B = 0.134 GB more buffer."""
    m = get_preset("llama3-405b").with_seq_len(131072)
    g = grid(tp=8, cp=16, pp=16, dp=8, microbatch=1, interleave=8, zero=1, recompute="full")
    ring = memory_per_device(m, g, 128)
    gathered = memory_per_device(m, g, 128, cp_comm="all_gather")
    assert gathered.buffers_gb[0] - ring.buffers_gb[0] == pytest.approx(2 * 2 * 131072 * 128 * 2 / 1e9)
    assert gathered.activations_gb[0] == ring.activations_gb[0]


def test_zero3_regathers_only_what_deepspeed_releases_before_backward():
    """Full recompute under ZeRO-3: a matrix is kept from its recomputed forward to its backward
    when 2 x the parameters of the layer's later matrices < stage3_max_reuse_distance (1e9).
    GPT-3 175B (h = 12288, 4h MLP): only the MLP output (4h^2 = 604M; nothing after it) is kept;
    QKV 3h^2 + out h^2 + MLP in 4h^2 = 8h^2 of 12h^2 are gathered again. Llama 2 7B: every matrix
    is within 1e9 (2 x (16.8M + 2 x 45.1M + 45.1M) for Q/K/V), so nothing is. FSDP: inf."""
    from simulator.execution.steptime import _regathered_share

    gpt3 = get_preset("gpt3-175b")
    assert float(_regathered_share(gpt3, 1, 1e9)) == pytest.approx(8 / 12, rel=1e-4)  # biases aside
    # TP 8 shrinks the per-rank distances 8x: the MLP input (2 x 604M / 8 = 151M) is now kept, and
    # so are the attention output (2 x 1208M / 8 = 302M) and QKV (2 x 1359M / 8 = 340M)
    assert float(_regathered_share(gpt3, 8, 1e9)) == 0.0
    assert float(_regathered_share(get_preset("llama2-7b"), 1, 1e9)) == 0.0
    assert float(_regathered_share(gpt3, 1, math.inf)) == 0.0
    g = PlanGrid.from_plans([Plan(dp=384, zero=3, microbatch=4, recompute=r) for r in ("full", "selective")])
    parts = step_parts(gpt3, g, A100, P, "fp16", 1536, flash=False, overlap=False)
    net = coll.Network.of(A100, P)
    weights = float(params_per_device(gpt3, g)[0]) * 2  # fp16, gathered in 4 calls per layer
    gather = coll.reduce_scatter(net, 384, weights, 1, 4 * 96)
    assert parts.dp_comm_s[0] - parts.dp_comm_s[1] == pytest.approx(8 / 12 * gather, rel=1e-4)


def test_zero3_communicates_more_than_zero1():
    m = get_preset("llama2-7b")
    parts = step_parts(m, PlanGrid.from_plans([Plan(dp=64, zero=1), Plan(dp=64, zero=3)]), A100, P, "bf16", 256)
    assert parts.dp_comm_s[1] > 2 * parts.dp_comm_s[0]


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_vectorised_equals_one_plan_at_a_time(seed):
    m = get_preset("llama3-8b")
    g = enumerate_plans(m, 64, max_tp=8)
    ok = np.flatnonzero(~rule_violations(g, m, 256).any(axis=1))
    i = int(ok[seed % len(ok)])
    batch = step_parts(m, g.take(ok), H100, P, "bf16", 256).total_s
    single = step_parts(m, g.take(np.array([i])), H100, P, "bf16", 256).total_s[0]
    assert batch[np.flatnonzero(ok == i)[0]] == pytest.approx(single)


# --- search ----------------------------------------------------------------------------------
def test_search_best_and_pareto():
    m = get_preset("llama3-70b")
    res = search_plans(m, H100, 512, 512, "bf16", P, resolve_efficiency(H100))
    assert len(res) > 0 and res.plans_evaluated >= len(res)
    assert np.all(res.memory.total_gb <= capacity_gb(H100))  # 80 GiB = 85.9 GB
    best = res.order("time")[0]
    assert res.step_time_s[best] == res.step_time_s.min()
    front = res.pareto()
    t, e = res.step_time_s, res.energy_per_step_j
    for i in front:  # nobody is at least as good on both and better on one
        dominated = (t <= t[i]) & (e <= e[i]) & ((t < t[i]) | (e < e[i]))
        assert not dominated.any()
    assert res.order("energy")[0] in set(front.tolist()) or e[res.order("energy")[0]] == e[front].min()


def test_search_405b_16k_h100_full_space():
    m = get_preset("llama3-405b")
    res = search_plans(m, H100, 16384, 2048, "bf16", P, resolve_efficiency(H100))
    assert res.plans_evaluated > 10_000 and len(res) > 0
    i = res.order("time")[0]
    mfu = 2048 * 8192 * 6 * m.matmul_params_active() / (16384 * 989.4e12 * res.step_time_s[i])
    assert 0.3 < mfu < 0.65  # Llama 3 reports 38-43% (Dubey et al. 2024 Table 4); our best plan may beat theirs


def test_goodput_about_90pct_at_one_failure_per_3h():
    from simulator.footprint.reliability import FAILURES_PER_DEVICE_HOUR, young_daly
    g = young_daly(16384, FAILURES_PER_DEVICE_HOUR, 30.0, 300.0)
    assert g.job_mtbf_h == pytest.approx(3.09, abs=0.05)  # Llama 3: ~1 interruption every 3 h
    assert g.goodput == pytest.approx(0.90, abs=0.02)  # Llama 3: ">90% effective training time"
    assert math.isclose(g.checkpoint_interval_s, math.sqrt(2 * 30 * g.job_mtbf_h * 3600))


def test_cost_objective_prices_time_and_energy():
    m = get_preset("llama3-8b")
    eff = resolve_efficiency(H100)
    cloud = search_plans(m, H100, 64, 256, "bf16", P, eff, rates=(2.0, 0.0, 0.0))
    i = cloud.order("cost")[0]
    assert cloud.step_time_s[i] == cloud.step_time_s.min()  # rental cost is proportional to time
    assert cloud.cost_per_step_usd[i] == pytest.approx(64 * cloud.step_time_s[i] / 3600 * 2.0)
    power_only = search_plans(m, H100, 64, 256, "bf16", P, eff, rates=(0.0, 0.1, 0.0))
    j = power_only.order("cost")[0]
    assert power_only.energy_per_step_j[j] == power_only.energy_per_step_j.min()
