"""Memory per device, by hand: pipeline stages and in-flight activations, folded expert parallelism,
what each framework stores (gradient dtype, logits, remat policies, runtime overhead), and the
published public-table plans that must fit."""

import numpy as np
import pytest

from hardware_catalog import load_catalog
from simulator.errors import ScenarioError
from simulator.execution.memory import (DDP_BUCKET_BYTES, OVERHEAD_GB, TPU_RUNTIME_GB, memory_per_device, memory_stack,
                              params_per_device, split_params_per_device)
from simulator.model.shapes import ModelSpec, get_preset
from simulator.execution.plan import Plan, PlanGrid
from simulator.validation.public import refused_rows

# Narayanan et al. 2021 Table 1, the 1T (1008B) row: 128 layers, hidden 25600, 160 heads, seq 2048,
# vocab 51200; TP 8, PP 64, DP 6 on 3072 A100 80GB, batch 3072 (GPT-2-style blocks as megatron-*).
MEGATRON_1T = ModelSpec("megatron-1t", 128, 25600, 160, 160, 4 * 25600, 51200, 2048, gated_mlp=False,
                        tied_embeddings=True, learned_positions=True, bias=True, layernorm=True)
QWEN3 = ModelSpec("qwen3-235b-a22b", 94, 4096, 64, 4, 12288, 151936, 4096, head_dim=128, experts=128,
                  experts_per_token=8, expert_ffn_dim=1536, moe_layers=94)
GIB = 2**30


def grid(*plans):
    return PlanGrid.from_plans(list(plans))


def layer_params(m: ModelSpec) -> float:
    """Parameters of one layer as memory.py spreads them (the final norm shared out over the layers)."""
    return (m.params_total() - m.embedding_params()) / m.layers


# --- in-flight activations under 1F1B ---------------------------------------------------------
def test_1f1b_holds_one_model_of_activations_interleaving_more():
    """megatron-39.1b (48 layers, h 8192, ffn 4h, s 2048, trained with Megatron-LM's dropout 0.1),
    TP 8 + SP, PP 4, DP 2, selective recompute: 34 s b h / t = 34 x 2048 x 8192 / 8 = 71,303,168 B
    per layer and micro-batch (Korthikanti 2022 Table 2), 12 layers per stage. Batch 64: 32
    micro-batches per rank. 1F1B: PP = 4 in flight -> 48 layers' worth = 3.4226 GB. Interleaved
    v = 2: x (1 + 3/8). Without dropout (no masks: 32 s b h / t) the same plan holds 32/34 of it."""
    m = get_preset("megatron-39.1b")
    base = dict(tp=8, pp=4, dp=2, microbatch=1, zero=1, recompute="selective", sequence_parallel=True)
    act = memory_per_device(m, grid(Plan(**base), Plan(**base, interleave=2)), 64, dropout=True).activations_gb
    per_layer = 34 * 2048 * 8192 / 8
    assert per_layer == 71_303_168
    assert act[0] == pytest.approx(per_layer * 12 * 4 / 1e9, rel=1e-12)  # 3.422552064 GB
    assert act[1] == pytest.approx(per_layer * 12 * 4 * 1.375 / 1e9, rel=1e-12)  # 4.706009088 GB
    no_dropout = memory_per_device(m, grid(Plan(**base)), 64).activations_gb[0]
    assert no_dropout == pytest.approx(32 * 2048 * 8192 / 8 * 12 * 4 / 1e9, rel=1e-12)  # 3.221225472 GB
    # fewer micro-batches than stages (batch 4 over DP 2: 2 per rank): only 2 in flight
    few = memory_per_device(m, grid(Plan(**base)), 4, dropout=True).activations_gb[0]
    assert few == pytest.approx(per_layer * 12 * 2 / 1e9, rel=1e-12)
    # full recompute keeps each layer's input, 2 s b h / t, plus one layer's working set, which with
    # SP holds that input already: 12 x 4 x 2 sbh/t + (34 - 2) sbh/t
    full = memory_per_device(m, grid(Plan(**{**base, "recompute": "full"})), 64, dropout=True).activations_gb[0]
    assert full == pytest.approx((2 * 2048 * 8192 / 8 * 12 * 4 + 32 * 2048 * 8192 / 8) / 1e9,
                                 rel=1e-12)  # 0.268435456 GB


def test_megatron_1t_fits_on_80gb():
    """The 1T plan of Narayanan et al. 2021 Table 1 (TP 8, PP 64, DP 6, micro-batch 1, batch 3072;
    2 layers per stage, 512 micro-batches per rank so 64 in flight; GPT-style dropout 0.1). With
    selective recompute and sequence parallelism (Korthikanti 2022's setting): activations
    34 s h / t x 2 layers x 64 = 28.52 GB; static 18 B x (2 layers + word and position embeddings) / 8
    on the first stage = 38.46 GB; 72.67 GB in all. With full recompute, no SP, unfused attention:
    2 s h / t x 2 x 64 + one layer's 13 s h (its input gathered again: --distribute-saved-activations)
    = 2.36 GB."""
    base = dict(tp=8, pp=64, dp=6, microbatch=1, zero=0)
    g = grid(Plan(**base, recompute="selective", sequence_parallel=True),
             Plan(**base, recompute="full", sequence_parallel=False))
    mem = memory_per_device(MEGATRON_1T, g, 3072, flash=False, dropout=True)
    s, h = 2048, 25600
    assert mem.activations_gb[0] == pytest.approx(34 * s * h / 8 * 2 * 64 / 1e9, rel=1e-12)  # 28.5212672
    assert mem.activations_gb[1] == pytest.approx((2 * s * h / 8 * 2 * 64 + s * h * (10 + 24 / 8)) / 1e9,
                                                  rel=1e-12)  # 2.359296
    n_first = (2 * layer_params(MEGATRON_1T) + 51200 * h + s * h) / 8  # stage 0: embedding + positions
    assert mem.weights_gb[0] == pytest.approx(2 * n_first / 1e9, rel=1e-12)
    assert mem.gradients_gb[0] == pytest.approx(4 * n_first / 1e9, rel=1e-12)
    assert mem.optimizer_gb[0] == pytest.approx(12 * n_first / 1e9, rel=1e-12)  # zero 0: nothing sharded
    total = (18 * n_first + 34 * s * h / 8 * 2 * 64 + DDP_BUCKET_BYTES) / 1e9 + OVERHEAD_GB
    assert mem.total_gb[0] == pytest.approx(total, rel=1e-12)
    assert mem.total_gb[0] == pytest.approx(72.67, abs=0.005)
    assert mem.total_gb.max() < 80


# --- pipeline stages: Llama 3's balanced split ---------------------------------------------------
def test_llama3_405b_short_first_and_last_stages():
    """Llama 3 405B (Dubey et al. 2024 sec. 3.3.2), TP 8 + SP, PP 16, DP 64, micro-batch 1, batch 2048
    (32 micro-batches per rank), 8K tokens, no recompute. 126 layers on 16 stages: the first and the
    last hold 7 layers, the others 8. One layer and micro-batch, per token (GQA: 8 KV heads of 128,
    one per TP rank): (4 x 2 h + 2 h + 2 h + 4 x 1.5 ffn) / 8 + 2 x (2 x 8 x 128) / 8
    = (131072 + 32768 + 32768 + 319488) / 8 + 512 = 65,024 B; x 8192 tokens = 532,676,608 B.
    Stage 0: 7 layers x 16 in flight = 112; stage 1: 8 x 15 = 120 (the most loaded, 63.92 GB);
    without the balanced split stage 0 would hold 8 x 16 = 128.
    Its FSDP "shards optimizer states and gradients" without resharding the weights (ZeRO-2): with
    zero = 2 the fp32 gradients are sharded over the 64 DP ranks too, and the plan fits in 80 GB."""
    m = get_preset("llama3-405b")
    per_token = (4 * 2 * 16384 + 2 * 16384 + 2 * 16384 + 4 * 1.5 * 53248) / 8 + 2 * (2 * 8 * 128) / 8
    assert per_token == 65_024
    per_layer = per_token * 8192
    plan = dict(tp=8, pp=16, dp=64, microbatch=1, recompute="none", sequence_parallel=True)
    mem = memory_per_device(m, grid(Plan(**plan, zero=1), Plan(**plan, zero=2)), 2048, stack="other")
    assert mem.activations_gb[0] == pytest.approx(per_layer * 8 * 15 / 1e9, rel=1e-12)  # 63.92 GB
    n = 8 * layer_params(m) / 8  # stage 1: 8 layers, no embedding
    assert mem.weights_gb[0] == pytest.approx(2 * n / 1e9, rel=1e-12)
    assert mem.gradients_gb[0] == pytest.approx(4 * n / 1e9, rel=1e-12)  # fp32, whole at zero 1
    assert mem.optimizer_gb[0] == pytest.approx(12 * n / 64 / 1e9, rel=1e-12)
    assert mem.gradients_gb[1] == pytest.approx(4 * n / 64 / 1e9, rel=1e-12)  # zero 2: sharded
    total = (2 * n + 4 * n / 64 + 12 * n / 64 + per_layer * 120 + DDP_BUCKET_BYTES) / 1e9 + OVERHEAD_GB
    assert mem.total_gb[1] == pytest.approx(total, rel=1e-12)  # 76.5 GB
    assert mem.total_gb[0] > 85.9 > mem.total_gb[1]


# --- what each software stack stores ------------------------------------------------------------
def test_nemo_distributed_optimizer_llama3_8b_hand_computed():
    """NeMo 24.07 Llama 3 8B on 8 H100 (the performance table's row: TP 1, PP 1, CP 2, DP 4,
    micro-batch 1, batch 128, 8K tokens): distributed optimizer (ZeRO-1) over DP x CP = 8 ranks, bf16
    gradient buffer (`grad_sync_dtype: bf16` in NeMo's performance configs), no recompute.
    n = 8,030,261,248 parameters: weights 2n = 16.06 GB, gradients 2n = 16.06 GB, optimizer 12n / 8
    = 12.05 GB. Activations per layer, 4096 tokens per CP rank, per token: 4 x 2 h + Q 2 h + attention
    output 2 h + K, V 2 x (2 x 8 x 128) + MLP 4 x 1.5 x 14336 = 139,264 B -> 570,425,344 B x 32 layers;
    logits 6 B x 4096 x 128,256 (bf16 + the fp32 copy of vocab_parallel_cross_entropy) = 3.152 GB.
    71.3 GB in all (refused at 102.1 GB when the gradients were fp32 and sharding ignored CP)."""
    m = get_preset("llama3-8b")
    n = m.params_total()
    assert n == 8_030_261_248
    g = grid(Plan(tp=1, pp=1, cp=2, dp=4, microbatch=1, zero=1, recompute="none", sequence_parallel=False))
    mem = memory_per_device(m, g, 128, grad_reduce_in_fp32=False)
    per_token = 4 * 2 * 4096 + 2 * 4096 + 2 * 4096 + 2 * (2 * 8 * 128) + 4 * 1.5 * 14336
    assert per_token == 139_264
    act = per_token * 4096 * 32 + 6 * 4096 * 128256
    assert mem.weights_gb[0] == pytest.approx(2 * n / 1e9, rel=1e-12)
    assert mem.gradients_gb[0] == pytest.approx(2 * n / 1e9, rel=1e-12)
    assert mem.optimizer_gb[0] == pytest.approx(12 * n / 8 / 1e9, rel=1e-12)
    assert mem.activations_gb[0] == pytest.approx(act / 1e9, rel=1e-12)  # 21.405 GB
    total = (2 * n + 2 * n + 12 * n / 8 + act + DDP_BUCKET_BYTES) / 1e9 + OVERHEAD_GB
    assert mem.total_gb[0] == pytest.approx(total, rel=1e-12)
    assert mem.total_gb[0] == pytest.approx(71.27, abs=0.01)
    # Megatron-LM's and NeMo 2's default: fp32 gradients, 2n more
    fp32 = memory_per_device(m, g, 128)
    assert fp32.gradients_gb[0] == pytest.approx(4 * n / 1e9, rel=1e-12)


def test_fsdp_llm_foundry_mpt_1b_hand_computed():
    """llm-foundry MPT-1b (24 layers, d 2048, 16 heads, GeLU MLP 4d, vocab 50,368, 2K tokens; no
    biases, ALiBi) on 64 H100, FSDP FULL_SHARD (ZeRO-3), micro-batch 20, no recompute, no dropout
    (MPT `resid_pdrop: 0.0`). Static 2 + 2 + 12 B per parameter over 64 ranks. Activations per layer
    and token: 4 x 2 h + Q 2 h + K, V 4 h + output 2 h + MLP 4 x 4 h = 32 h = 65,536 B; x 40,960 tokens
    x 24 layers = 64.42 GB; logits 4 B x 40,960 x 50,368 = 8.25 GB (flash-attn's fused cross entropy:
    bf16 logits and bf16 dlogits). Two layers' bf16 weights gathered. 78.6 GB (refused at 86.7 GB)."""
    m = ModelSpec("mpt-1b", 24, 2048, 16, 16, 8192, 50368, 2048, gated_mlp=False, tied_embeddings=True,
                  layernorm=True)
    n = m.params_total()
    g = grid(Plan(tp=1, pp=1, dp=64, microbatch=20, zero=3, recompute="none", sequence_parallel=False))
    mem = memory_per_device(m, g, 1280, stack="fsdp")
    act = 32 * 2048 * 40960 * 24 + 4 * 40960 * 50368
    assert mem.weights_gb[0] == pytest.approx(2 * n / 64 / 1e9, rel=1e-12)
    assert mem.gradients_gb[0] == pytest.approx(2 * n / 64 / 1e9, rel=1e-12)
    assert mem.optimizer_gb[0] == pytest.approx(12 * n / 64 / 1e9, rel=1e-12)
    assert mem.activations_gb[0] == pytest.approx(act / 1e9, rel=1e-12)  # 72.68 GB
    assert mem.buffers_gb[0] == pytest.approx(2 * 2 * n / 24 / 1e9, rel=1e-12)
    total = (16 * n / 64 + act + 4 * n / 24) / 1e9 + OVERHEAD_GB
    assert mem.total_gb[0] == pytest.approx(total, rel=1e-12)
    assert mem.total_gb[0] == pytest.approx(78.6, abs=0.05)
    # Megatron's cross entropy (6 B per logit) on the same plan: 4.1 GB more
    megatron = memory_per_device(m, g, 1280)
    assert megatron.activations_gb[0] - mem.activations_gb[0] == pytest.approx(2 * 40960 * 50368 / 1e9)


def test_maxtext_minimal_remat_and_tpu_overhead():
    """MaxText synthetic 32B (32 layers, emb 10240, 32 heads of 256, ReLU MLP 32768, vocab 32768) on
    64 TPU v5p, ici_tensor 4 x ici_fsdp 16, 32 sequences per FSDP rank, remat_policy=minimal
    (checkpoint_dots_with_no_batch_dims). Per layer and token, sharded over the tensor axis: the layer
    input and the output projection 2 x 2 x 10240, Q 2 x 8192, the MLP input projection 2 x 32768 and
    K, V 2 x 2 x 8192: 38,912 B / t-rank -> x 65,536 tokens x 32 layers = 81.60 GB; the recomputed
    rest of a layer (30,720 B per token, 2.01 GB) is smaller than the fp32 logits
    (4 x 65,536 x 32,768 / 4 = 2.15 GB), which never coexist with it. XLA on TPU: the runtime's
    1.25 GiB, not the CUDA stack's 5 GiB. Fits in the 95 GiB of a v5p (refused at 183.1 GB)."""
    m = ModelSpec("maxtext-32b", 32, 10240, 32, 32, 32768, 32768, 2048, gated_mlp=False, head_dim=256,
                  tied_embeddings=True)
    g = grid(Plan(tp=4, pp=1, dp=16, microbatch=32, zero=3, recompute="selective", sequence_parallel=True))
    mem = memory_per_device(m, g, 512, stack="maxtext")
    kept = (2 * (2 * 10240 + 8192 + 32768)) / 4 + 2 * (2 * 8192) / 4
    assert kept == 38_912
    whole = (4 * 2 * 10240 + 2 * 8192 + 2 * 8192 + 4 * 32768) / 4 + 2 * (2 * 8192) / 4
    assert whole - kept == 30_720
    tokens = 2048 * 32
    logits = 4 * tokens * 32768 / 4
    assert (whole - kept) * tokens < logits
    assert mem.activations_gb[0] == pytest.approx((kept * tokens * 32 + logits) / 1e9, rel=1e-12)  # 83.75
    assert mem.overhead_gb == TPU_RUNTIME_GB == (32 * GIB - 33_014_415_360) / 1e9  # 1.253 GiB
    assert mem.total_gb[0] < 95 * GIB / 1e9


def test_maxtext_save_dot_except_mlpwi_llama2_70b_on_v5p():
    """MaxText's v5p Llama 2 70B recipe (benchmarks/maxtext_v5p_model_configs.py @92e59fdf:
    per_device_batch_size 4, ici_fsdp -1, remat_policy save_dot_except_mlpwi = save only query_proj,
    key_proj, value_proj, qkv_proj, out_proj, mlpwo): recompute "mlp" with the maxtext stack. Per layer
    and token: the layer input, the output projection and Q, 2 x 3 x 8192, and K, V 2 x 2 x 1024:
    53,248 B x 16,384 tokens x 80 layers = 69.79 GB; the recomputed rest of one layer (4 x 2 h + 2 Q
    + 2 O + 6 f + KV = 274,432 B per token, less the kept 53,248) is 3.62 GB, above the fp32 logits
    (4 x 16,384 x 32,000 = 2.10 GB). 80.4 GB in all, inside a v5p's 95 GiB (229 GB when read as
    MaxText minimal, which also keeps the MLP input projections, 4 f = 114,688 B per token)."""
    m = ModelSpec("llama2-70b", 80, 8192, 64, 8, 28672, 32000, 4096)
    g = grid(Plan(tp=1, pp=1, dp=512, microbatch=4, zero=3, recompute="mlp", sequence_parallel=False))
    mem = memory_per_device(m, g, 2048, stack="maxtext")
    tokens, kept = 4 * 4096, 2 * 3 * 8192 + 2 * 2 * 1024
    whole = 4 * 2 * 8192 + 2 * 8192 + 2 * 8192 + 4 * 1.5 * 28672 + 2 * 2 * 1024
    assert (kept, whole) == (53_248, 274_432)
    assert mem.activations_gb[0] == pytest.approx((kept * tokens * 80 + (whole - kept) * tokens) / 1e9, rel=1e-12)
    assert mem.total_gb[0] == pytest.approx(80.37, abs=0.01) and mem.total_gb[0] < 95 * GIB / 1e9
    minimal = memory_per_device(m, grid(Plan(tp=1, pp=1, dp=512, microbatch=4, zero=3, recompute="selective",
                                             sequence_parallel=False)), 2048, stack="maxtext")
    # minimal: 53,248 + 4 x 28,672 = 167,936 B per token and layer; its recomputed rest (1.74 GB) < logits
    assert minimal.activations_gb[0] == pytest.approx((167_936 * tokens * 80 + 4 * tokens * 32_000) / 1e9, rel=1e-12)


def test_megatron_mlp_recompute_drops_the_mlp_intermediates():
    """Megatron-Core `recompute_modules: [core_attn, mlp]` checkpoints the MLP on its input: Llama 3 8B,
    TP 1, 8K tokens, per layer and token 139,264 B less the MLP's gate, up and product (4 x 1.5 x
    14,336 = 86,016 B) = 53,248 B kept; one layer's 86,016 B are held again while it is recomputed,
    after the logits (6 B x 8192 x 128,256 = 6.30 GB, larger) are gone. FP8: the product, the second
    GEMM's input, takes 1 B (14,336 B less in the intermediates)."""
    m = get_preset("llama3-8b")
    plans = [Plan(tp=1, pp=1, dp=8, microbatch=1, zero=1, recompute=rc, sequence_parallel=False)
             for rc in ("selective", "mlp")]
    sel, mlp = (memory_per_device(m, grid(p), 64) for p in plans)
    tokens, logits = 8192, 6 * 8192 * 128256
    assert sel.activations_gb[0] == pytest.approx((139_264 * tokens * 32 + logits) / 1e9, rel=1e-12)
    assert mlp.activations_gb[0] == pytest.approx((53_248 * tokens * 32 + logits) / 1e9, rel=1e-12)
    fp8 = [memory_per_device(m, grid(p), 64, precision="fp8") for p in plans]
    saved_fp8 = (fp8[0].activations_gb[0] - fp8[1].activations_gb[0]) * 1e9
    assert saved_fp8 == pytest.approx((86_016 - 14_336) * tokens * 32, rel=1e-12)


def test_offload_keeps_no_layer_on_the_device():
    """MaxText's v6e Llama 3.1 8B recipe (remat custom, decoder_layer_input, query_proj, key_proj and
    value_proj offloaded, 4 x 8192 tokens per chip): nothing per layer stays in HBM; the largest
    transient is the fp32 logits, 4 x 32,768 x 128,256 = 16.81 GB (one layer's whole working set,
    139,264 B x 32,768 = 4.56 GB, is smaller). 19.7 GB of the 32 GiB (110 GB when read as MaxText
    minimal)."""
    m = get_preset("llama3-8b")
    g = grid(Plan(tp=1, pp=1, dp=256, microbatch=4, zero=3, recompute="offload", sequence_parallel=False))
    mem = memory_per_device(m, g, 1024, stack="maxtext")
    assert 139_264 * 32_768 < 4 * 32_768 * 128_256
    assert mem.activations_gb[0] == pytest.approx(4 * 32_768 * 128_256 / 1e9, rel=1e-12)
    assert mem.total_gb[0] == pytest.approx(19.66, abs=0.01)


def test_unknown_stack_is_refused():
    with pytest.raises(ScenarioError, match="parallelism.stack"):
        memory_per_device(get_preset("llama2-7b"), grid(Plan()), 8, stack="deepspeed")


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
    EDP = tp*cp*dp / (EP x ETP): EP 32 at TP 1, PP 8, DP 32 leaves EDP 1, at PP 4, DP 64, EDP 2.
    94 layers: on PP 8 (12 per stage, 2 short) the first and last stages hold 11 layers, the others
    12; the first, with the 622M-parameter input embedding, is the most loaded. On PP 4 likewise 23
    layers and the embedding."""
    g = grid(Plan(tp=1, pp=8, dp=32, ep=32, zero=1, recompute="full"),
             Plan(tp=1, pp=4, dp=64, ep=32, zero=1, recompute="full"))
    expert_layer = 128 * 3 * 4096 * 1536
    other_layer = (QWEN3.params_total() - QWEN3.embedding_params() - 94 * expert_layer) / 94
    embedding = 151936 * 4096
    mem = memory_per_device(QWEN3, g, 1024)
    dense = np.array([11 * other_layer, 23 * other_layer]) + embedding
    expert = np.array([11 * expert_layer / 32, 23 * expert_layer / 32])
    assert mem.optimizer_gb[0] == pytest.approx(12 * (dense[0] / 32 + expert[0] / 1) / 1e9, rel=1e-12)
    assert mem.optimizer_gb[1] == pytest.approx(12 * (dense[1] / 64 + expert[1] / 2) / 1e9, rel=1e-12)
    assert mem.weights_gb[0] == pytest.approx(2 * (dense[0] + expert[0]) / 1e9, rel=1e-12)
    assert mem.total_gb.max() < 80  # the published plans fit on 80 GB H100s


# --- the published plans of the public throughput tables ---------------------------------------------
def test_fewer_published_plans_refused():
    """Of the 321 usable public rows (322 before one copied AMD cell was set aside), 76 were refused (131 with capacity read as 1e9-byte GB and
    ZeRO-3 at 18 B); 2 are now (no dropout masks, GQA-exact activations, ZeRO over DP x CP,
    stage-by-stage pipeline memory, logits and recompute working set not summed, each row's
    framework as its stack and NeMo's bf16 gradient buffer: validation_public.refused_rows). Still
    refused, and why:
    - 225 NeMo Nemotron-4 340B (TP 8, PP 8, DP 2, v 12, FP8): 86.1 of 85.9 GB (90.9 before FP8
      GEMM inputs were kept in 1 B, as Transformer Engine does); the 12 B optimizer states are sharded
      over only 2 ranks (34.6 GB), and the 5 GiB runtime allowance (EleutherAI's Megatron-DeepSpeed
      figure) is the likeliest excess;
    - 282 MaxText 52B on 192 TPU v4, remat full: 35.2 of 34.4 GB; 6.5 GB of it is the two layers'
      gathered weights assumed for ZeRO-3 (DeepSpeed/FSDP prefetch), XLA's depth is not documented.
    MaxText's v6e rows (325, 326, 328, 329: remat custom with host offload, 110-581 GB when read as
    MaxText minimal) and v5p Llama 2 70B (330: save_dot_except_mlpwi, 229 GB) fit since public_rows
    reads them as recompute "offload" and "mlp".
    Primus Llama 3.1 70B FSDP on MI325X (341, 342, 343) fit since public_rows reads them with the full
    activation checkpointing of Primus's own configurations (examples/torchtitan/configs/MI325X/
    llama3.1_70B-*-pretrain.yaml `activation_checkpoint: mode: full`; they were read as none: 336-895 GB).
    Llama 3 405B (464-466) fits since its FSDP is modelled as ZeRO-2 (gradients sharded too), which
    plan.py now allows with PP (89 GB at zero = 1)."""
    assert refused_rows()["row"].tolist() == [225, 282]


def test_memory_stack_resolves_the_reference_stack():
    """No `parallelism.stack`: the catalog's reference stack, MaxText on TPUs, Megatron-Core on GPUs."""
    cat = load_catalog()
    assert memory_stack(cat.accelerator("google-tpu-v5p")) == "maxtext"
    assert memory_stack(cat.accelerator("nvidia-h100-sxm-80gb")) == "megatron"
    assert memory_stack(cat.accelerator("nvidia-h100-sxm-80gb"), "fsdp") == "fsdp"


def test_moe_layers_keep_the_dispatched_tokens():
    """The routed experts' first GEMM reads the k copies of each token the dispatch delivers and keeps
    them for its weight gradient: Mixtral 8x7B (top-2, d 4096), 4096 tokens per micro-batch, bf16:
    4096 x 2 x 2 x 4096 B = 67.1 MB per layer more than a dense twin with the same MLP width. With
    TP 2 and experts split like the dense MLP (EP divides DP, expert TP = 2) each TP rank holds every
    token's copies (the tokens are gathered over TP first); with EP folded into TP (expert TP 1) a
    rank holds its 1/t share. FP8 keeps them in 1 B; recompute "mlp" drops them with the MLP block."""
    from dataclasses import replace

    from simulator.execution.activations import activation_bytes_per_layer
    from simulator.execution.plan import expert_tp

    moe = get_preset("mixtral-8x7b").with_seq_len(4096)
    dense = replace(moe, experts=0, experts_per_token=0, expert_ffn_dim=0, moe_layers=0, ffn_dim=2 * 14336)
    copies = 4096 * 2 * 2 * 4096
    for plan, share in ((Plan(tp=1, dp=8, ep=8, microbatch=1), 1.0), (Plan(tp=2, dp=4, ep=4, microbatch=1), 1.0),
                        (Plan(tp=2, dp=4, ep=8, microbatch=1), 0.5)):
        g = grid(plan)
        assert int(expert_tp(g)[0]) == (2 if share == 1.0 and plan.tp == 2 else 1)
        extra = activation_bytes_per_layer(moe, g)[0] - activation_bytes_per_layer(dense, g)[0]
        assert extra == pytest.approx(copies * share, rel=1e-12), plan
    g = grid(Plan(tp=1, dp=8, ep=8, microbatch=1))
    fp8 = activation_bytes_per_layer(moe, g, precision="fp8")[0] - activation_bytes_per_layer(dense, g, precision="fp8")[0]
    assert fp8 == pytest.approx(copies / 2, rel=1e-12)
    sel, mlp = (memory_per_device(moe, grid(Plan(tp=1, dp=8, ep=8, microbatch=1, zero=1, recompute=rc)), 64)
                for rc in ("selective", "mlp"))
    # 32 layers; one layer's MLP block (772 MB) held again while recomputed is below the logits (6 B x 4096 x 32,000)
    assert 6 * 4096 * 32000 > copies + 4096 * 6 * 2 * 14336
    kept_per_layer = (sel.activations_gb[0] - mlp.activations_gb[0]) * 1e9 / 32
    assert kept_per_layer == pytest.approx(copies + 4096 * 6 * 2 * 14336, rel=1e-9)


def test_token_dropping_pads_the_expert_activations():
    """With capacity factor c the routed experts' intermediates and dispatched copies are padded to c x
    the mean: Mixtral 8x7B at c = 1.25 keeps 0.25 x (2 x 4096 + 6 x 14,336) x 2 B more per token and layer."""
    from simulator.execution.activations import activation_bytes_per_layer

    moe = get_preset("mixtral-8x7b").with_seq_len(4096)
    g = grid(Plan(tp=1, dp=8, ep=8, microbatch=1))
    extra = activation_bytes_per_layer(moe, g, padding=1.25)[0] - activation_bytes_per_layer(moe, g)[0]
    assert extra == pytest.approx(4096 * 0.25 * 2 * (2 * 4096 + 6 * 14336), rel=1e-12)
