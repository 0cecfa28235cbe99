"""Memory per device: pipeline in-flight activations and folded expert parallelism, by hand."""

import pytest

from simulator.memory import memory_per_device, params_per_device, split_params_per_device
from simulator.models import ModelSpec, get_preset
from simulator.plan import Plan, PlanGrid

# Narayanan et al. 2021 Table 1, the 1T (1008B) row: 128 layers, hidden 25600, 160 heads, seq 2048,
# vocab 51200; TP 8, PP 64, DP 6 on 3072 A100 80GB, batch 3072 (GPT-2-style blocks as megatron-*).
MEGATRON_1T = ModelSpec("megatron-1t", 128, 25600, 160, 160, 4 * 25600, 51200, 2048, gated_mlp=False,
                        tied_embeddings=True, learned_positions=True, bias=True, layernorm=True)
QWEN3 = ModelSpec("qwen3-235b-a22b", 94, 4096, 64, 4, 12288, 151936, 4096, head_dim=128, experts=128,
                  experts_per_token=8, expert_ffn_dim=1536, moe_layers=94)


def grid(*plans):
    return PlanGrid.from_plans(list(plans))


# --- in-flight activations under 1F1B ---------------------------------------------------------
def test_1f1b_holds_one_model_of_activations_interleaving_more():
    """megatron-39.1b (48 layers, h 8192, ffn 4h, s 2048), TP 8 + SP, PP 4, DP 2, selective
    recompute: 34 s b h / t = 34 x 2048 x 8192 / 8 = 71,303,168 B per layer and micro-batch
    (Korthikanti 2022 Table 2), 12 layers per stage. Batch 64: 32 micro-batches per rank.
    1F1B: PP = 4 in flight -> 48 layers' worth = 3.4226 GB. Interleaved v = 2: x (1 + 3/8)."""
    m = get_preset("megatron-39.1b")
    base = dict(tp=8, pp=4, dp=2, microbatch=1, zero=1, recompute="selective", sequence_parallel=True)
    act = memory_per_device(m, grid(Plan(**base), Plan(**base, interleave=2)), 64).activations_gb
    per_layer = 34 * 2048 * 8192 / 8
    assert per_layer == 71_303_168
    assert act[0] == pytest.approx(per_layer * 12 * 4 / 1e9, rel=1e-12)  # 3.422552064 GB
    assert act[1] == pytest.approx(per_layer * 12 * 4 * 1.375 / 1e9, rel=1e-12)  # 4.706009088 GB
    # fewer micro-batches than stages (batch 4 over DP 2: 2 per rank): only 2 in flight
    few = memory_per_device(m, grid(Plan(**base)), 4).activations_gb[0]
    assert few == pytest.approx(per_layer * 12 * 2 / 1e9, rel=1e-12)
    # full recompute keeps each layer's input, 2 s b h / t, plus one layer's working set
    full = memory_per_device(m, grid(Plan(**{**base, "recompute": "full"})), 64).activations_gb[0]
    assert full == pytest.approx((2 * 2048 * 8192 / 8 * 12 * 4 + per_layer) / 1e9, rel=1e-12)  # 0.27263 GB


def test_megatron_1t_fits_on_80gb():
    """The 1T plan of Narayanan et al. 2021 Table 1 (TP 8, PP 64, DP 6, micro-batch 1, batch 3072;
    2 layers per stage, 512 micro-batches per rank so 64 in flight). With selective recompute and
    sequence parallelism (Korthikanti 2022's setting) it was refused at 100.6 GB when the 1F1B
    in-flight count was doubled: activations 34 s h / t x 2 layers x 64 = 28.52 GB now, 72.6 GB in all.
    With full recompute, no SP, unfused attention: 2 s h / t x 2 x 64 + one layer's 13 s h = 2.36 GB."""
    base = dict(tp=8, pp=64, dp=6, microbatch=1, zero=0)
    g = grid(Plan(**base, recompute="selective", sequence_parallel=True),
             Plan(**base, recompute="full", sequence_parallel=False))
    mem = memory_per_device(MEGATRON_1T, g, 3072, flash=False)
    s, h = 2048, 25600
    assert mem.activations_gb[0] == pytest.approx(34 * s * h / 8 * 2 * 64 / 1e9, rel=1e-12)  # 28.5212672
    assert mem.activations_gb[1] == pytest.approx((2 * s * h / 8 * 2 * 64 + s * h * (10 + 24 / 8)) / 1e9,
                                                  rel=1e-12)  # 2.359296
    assert mem.total_gb[0] == pytest.approx(72.6, abs=0.05)
    assert mem.total_gb.max() < 80


# --- experts under MoE parallel folding ---------------------------------------------------------
def test_expert_params_divided_by_ep_times_etp():
    """Qwen3-235B-A22B: a layer's 128 experts hold 128 x 3 x 4096 x 1536 = 2,415,919,104 parameters.
    TP 4 PP 8 DP 8 EP 32: ETP 1, 12 layers on the busiest stage -> 12 x 2.416e9 / 32 = 905,969,664 on a
    device, the rest (attention, routers, norms, output layer) / TP 4. TP 4 PP 4 DP 16 EP 32:
    ETP 2, 24 layers -> 24 x 2.416e9 / 64."""
    expert_layer = 128 * 3 * 4096 * 1536
    assert expert_layer == 2_415_919_104
    other_layer = (QWEN3.params_total() - QWEN3.embedding_params() - 94 * expert_layer) / 94
    head = 151936 * 4096
    g = grid(Plan(tp=4, pp=8, dp=8, ep=32), Plan(tp=4, pp=4, dp=16, ep=32))
    dense, expert = split_params_per_device(QWEN3, g)
    assert expert[0] == pytest.approx(12 * expert_layer / 32, rel=1e-12)
    assert expert[1] == pytest.approx(24 * expert_layer / 64, rel=1e-12)
    assert dense[0] == pytest.approx((12 * other_layer + head) / 4, rel=1e-12)
    assert dense[1] == pytest.approx((24 * other_layer + head) / 4, rel=1e-12)


def test_classic_layout_params_unchanged():
    """EP dividing DP: experts / (EP x TP), as before folding (Mixtral: 8 experts on EP 8, TP 2)."""
    m = get_preset("mixtral-8x7b")
    g = grid(Plan(tp=2, dp=8, ep=8))
    expert = 32 * 8 * 3 * 4096 * 14336
    rest = m.params_total() - m.embedding_params() - expert
    assert params_per_device(m, g)[0] == pytest.approx(
        (rest + expert / 8) / 2 + m.embedding_params() / 2, rel=1e-12)


def test_zero_shards_expert_states_over_expert_dp():
    """ZeRO-1 shards the non-expert optimizer states over DP and the expert ones over
    EDP = tp*cp*dp / (EP x ETP): EP 32 at TP 1, PP 8, DP 32 leaves EDP 1, at PP 4, DP 64, EDP 2."""
    g = grid(Plan(tp=1, pp=8, dp=32, ep=32, zero=1, recompute="full"),
             Plan(tp=1, pp=4, dp=64, ep=32, zero=1, recompute="full"))
    dense, expert = split_params_per_device(QWEN3, g)
    mem = memory_per_device(QWEN3, g, 1024)
    assert mem.optimizer_gb[0] == pytest.approx(12 * (dense[0] / 32 + expert[0] / 1) / 1e9, rel=1e-12)
    assert mem.optimizer_gb[1] == pytest.approx(12 * (dense[1] / 64 + expert[1] / 2) / 1e9, rel=1e-12)
    assert mem.weights_gb[0] == pytest.approx(2 * (dense[0] + expert[0]) / 1e9, rel=1e-12)
    assert mem.total_gb.max() < 80  # the published plans fit on 80 GB H100s
