"""Published throughput rows (simulator/validation/public_rows.py): exact reads of chosen rows, conventions."""

from collections import Counter
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from hardware_catalog import load_catalog
from simulator.model.shapes import PRESETS
from simulator.execution.plan import Plan, plan_problems
from simulator.validation.public_rows import (
    ACCELERATORS,
    DATA_FILE,
    NOT_IN_CATALOG_FAMILY,
    coverage,
    llm_foundry_flops_per_token,
    load_kernel_rows,
    load_public_rows,
    megatron_flops_per_token,
    palm_flops_per_token,
)

SHARED_CSV = Path(__file__).parents[3] / "shared/validation/public_throughput/rows.csv"
CATALOG = load_catalog(use_env=False)
ROWS = load_public_rows(catalog=CATALOG)
RAW = pd.read_csv(resources.files("simulator").joinpath(DATA_FILE), dtype=str, keep_default_na=False)


def test_packaged_copy_is_the_shared_file_byte_for_byte():
    if not SHARED_CSV.exists():
        pytest.skip(f"{SHARED_CSV} absent")
    assert resources.files("simulator").joinpath(DATA_FILE).read_bytes() == SHARED_CSV.read_bytes()


def test_one_record_per_csv_row_in_order():
    assert len(ROWS) == len(RAW) == 722
    assert [r.row for r in ROWS] == list(range(722))
    assert all(r.model_name == m for r, m in zip(ROWS, RAW["model"], strict=True))


def test_llm_foundry_mpt70b_on_512_h100():
    r = ROWS[0]
    assert (r.source, r.model_name, r.devices) == ("mosaicml/llm-foundry", "MPT-70b", 512)
    assert (r.spec.layers, r.spec.d_model, r.spec.heads, r.spec.kv_heads, r.spec.ffn_dim) == (80, 8192, 64, 64, 32768)
    assert not r.spec.gated_mlp
    assert r.spec.params_total() == 64_862_437_376  # NumParams column of the llm-foundry table
    assert r.plan == Plan(tp=1, pp=1, cp=1, ep=1, dp=512, microbatch=8, zero=3, recompute="full", interleave=1,
                          sequence_parallel=False)
    assert r.tokens_per_s_per_device == 1007 and r.measured_from == "tokens/s"
    assert (r.accelerator_id, r.family, r.kind, r.framework) == ("nvidia-h100-sxm-80gb", "H100", "dense", "fsdp")
    assert (r.precision, r.global_batch_seqs, r.seq_len) == ("bf16", 4096, 2048)
    assert r.usable and r.reason == ""


def test_every_mpt_shape_reproduces_the_tables_numparams():
    mpt = [r for r in ROWS if r.source == "mosaicml/llm-foundry"]
    assert len(mpt) == 216
    assert all(f"NumParams={r.spec.params_total()};" in RAW["notes"][r.row] for r in mpt)


def test_llm_foundry_model_tflop_is_its_own_convention():
    """'Model TFLOP' = tokens/s x (6 NumParams + 12 L d s), truncated to an integer by collect_results.py."""
    for r in (r for r in ROWS if r.source == "mosaicml/llm-foundry"):
        reported = float(RAW["tflops_per_device"][r.row]) * 1e12
        assert r.tokens_per_s_per_device * llm_foundry_flops_per_token(r.spec) == pytest.approx(reported, rel=1e-2)


def test_nemo_row_with_only_tflops_uses_megatron_full_attention_flops():
    r = ROWS[249]
    assert (r.model_name, r.seq_len, r.devices) == ("LLAMA2-7B", 4096, 4) and "Long Sequence" in r.table
    # Megatron-LM formula, Llama 2 7B, s = 4096 (attention counted in full, NeMo 24.x):
    # 6 * (32 * (4 * 4096^2 + 3 * 4096 * 11008) + 32000 * 4096) = 6 * 6,607,077,376 = 39,642,464,256
    # + 12 * 32 * 4096 * 4096 = 6,442,450,944  -> 46,084,915,200 FLOPs per token
    flops_per_token = 6 * (32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32000 * 4096) + 12 * 32 * 4096 * 4096
    assert flops_per_token == 46_084_915_200 == megatron_flops_per_token(r.spec)
    assert r.tokens_per_s_per_device == pytest.approx(768e12 / 46_084_915_200)  # 16,665 tokens/s
    assert r.measured_from.startswith("TFLOP/s")
    assert (r.plan.tp, r.plan.pp, r.plan.cp, r.plan.dp, r.global_batch_seqs) == (1, 1, 1, 4, 1024)
    assert r.usable


def test_nemo_tokens_and_tflops_agree_under_the_megatron_formula():
    """The convention (and the shapes NeMo does not print) reproduce every pre-training row."""
    pre = [r for r in ROWS if r.source == "NVIDIA/NeMo" and r.table.startswith("Pretraining")]
    assert len(pre) == 12
    for r in pre:
        reported = float(RAW["tflops_per_device"][r.row]) * 1e12
        assert r.tokens_per_s_per_device * megatron_flops_per_token(r.spec) == pytest.approx(reported, rel=5e-3)


def test_maxtext_v5e_row_uses_maxtext_2023_causal_halved_flops():
    r = ROWS[284]
    assert (r.model_name, r.family, r.devices) == ("MaxText synthetic 16B", "TPU v5e", 256)
    # 6 * N_all + 12 * H * L * hd * s / 2, 32 layers, d 5120, 32 heads of 256, ReLU MLP 32768, tied vocab 32768:
    # N = 32 * (4*5120*8192 + 2*5120*32768 + 2*5120) + 5120 + 32768*5120 = 16,274,232,320
    n_params = 32 * (4 * 5120 * 8192 + 2 * 5120 * 32768 + 2 * 5120) + 5120 + 32768 * 5120
    assert n_params == 16_274_232_320 == r.spec.params_total()
    flops_per_token = 6 * n_params + 12 * 32 * 32 * 256 * 2048 / 2  # 100,866,619,392
    assert r.tokens_per_s_per_device == pytest.approx(120e12 / flops_per_token)  # 1,190 tokens/s per chip
    assert r.plan == Plan(tp=1, pp=1, cp=1, ep=1, dp=256, microbatch=6, zero=3, recompute="full", interleave=1,
                          sequence_parallel=False)
    assert r.framework == "maxtext" and r.usable


def test_maxtext_microbatch_is_per_data_parallel_rank_with_tensor_parallelism():
    r = ROWS[287]  # 128B on v5e-256: ici_tensor_parallelism=16, per_device_batch_size=1
    assert (r.plan.tp, r.plan.dp, r.global_batch_seqs, r.plan.microbatch) == (16, 16, 256, 16)


def test_llama3_row_uses_palm_flops():
    r = ROWS[464]
    assert r.spec.layers == 126 and r.plan.tp == 8 and r.plan.pp == 16 and r.plan.dp == 64
    # 6 * (126 * (2*16384^2 + 2*16384*1024 + 3*16384*53248) + 128256*16384) + 12 * 126 * 16384 * 8192
    flops = 6 * (126 * (2 * 16384**2 + 2 * 16384 * 1024 + 3 * 16384 * 53248) + 128256 * 16384) \
        + 12 * 126 * 16384 * 8192
    assert flops == palm_flops_per_token(r.spec)
    assert r.tokens_per_s_per_device == pytest.approx(430e12 / flops)  # ~164 tokens/s per GPU
    assert r.usable


def test_moe_mixtral_8x22b_on_mi355x():
    r = ROWS[345]
    assert (r.model_name, r.family, r.accelerator_id, r.kind) == ("Mixtral 8x22B", "MI355X", "amd-mi355x", "moe")
    assert (r.spec.experts, r.spec.experts_per_token, r.spec.expert_ffn_dim, r.spec.moe_layers) == (8, 2, 16384, 56)
    assert (r.plan.tp, r.plan.pp, r.plan.ep, r.plan.dp, r.plan.microbatch, r.plan.interleave) == (1, 4, 8, 16, 2, 2)
    assert r.tokens_per_s_per_device == 3534
    assert not r.usable and r.reason.startswith("no global batch")


def test_derived_values_parse_and_say_so():
    r = ROWS[468]  # MegaScale "153.5 (derived)"
    assert r.tokens_per_s_per_device == 153.5 and r.measured_from == "tokens/s (derived in rows.csv)"
    assert (r.spec.heads, r.spec.hd, r.seq_len, r.family) == (128, 96, 2048, "A100")


@pytest.mark.parametrize("row, reason", [
    (382, "no plan: MLPerf result logs give the global batch and gradient-accumulation steps, not TP/PP/DP"),
    (393, "fine-tuning (LoRA)"),
    (228, "fine-tuning (SFT)"),
    (467, "whole-run average"),
    (361, "preliminary issue-thread numbers"),
    (503, "kernel measurement"),
    (332, "no model shape: vocab, seq_len not stated"),
    (235, "no plan: best configuration without CP not printed"),
    (324, "no plan: the linked recipe (tpu-recipes training/trillium/Llama2-70B-MaxText"),
    (327, "no plan: linked recipe is for 512 chips, the row for 256"),
    (331, "no plan: the linked recipe (tpu-recipes training/v5p/Mixtral-8X7B-Maxtext"),
    (345, "no global batch"),
])
def test_unusable_rows_say_why(row, reason):
    assert not ROWS[row].usable and ROWS[row].reason.startswith(reason)


def test_b200_long_sequence_rows_read_the_gpu_count_from_their_plan():
    """NeMo's B200 long-sequence table @8cfedd72 prints '# of GPUs' = the sequence length in K, 4x
    TP x PP x DP x CP on every row; its batch (8 and 4 sequences at 512K and 1M) cannot feed 4x the
    printed DP, and another revision of the page prints TP x CP x DP: the rows run on that many."""
    rows = [r for r in ROWS if r.table == "Long Sequence Performance: LLAMA3-8B (FP8) - B200" and r.usable]
    assert [r.devices for r in rows] == [2, 4, 8, 16, 32, 64, 128, 256]
    assert all(r.plan.devices == r.devices and r.accelerator_id == "nvidia-b200" for r in rows)
    assert [r.global_batch_seqs // r.plan.dp for r in rows][-2:] == [2, 1]  # 4x the DP would need 8 and 4 more
    assert all("# of GPUs read as TP x PP x DP x CP" in " ".join(r.assumptions) for r in rows)
    assert ROWS[235].devices == 8 and not ROWS[235].usable  # a without-CP figure keeps the printed count


def test_every_row_is_usable_or_has_a_reason():
    for r in ROWS:
        if r.usable:
            assert r.reason == "" and None not in (r.spec, r.accelerator_id, r.plan, r.tokens_per_s_per_device)
            assert r.tokens_per_s_per_device > 0 and r.plan.devices == r.devices
            assert plan_problems(r.plan, r.spec, r.devices, r.global_batch_seqs) == []
        else:
            assert r.reason
        assert r.kind in ("dense", "moe") and r.precision in ("bf16", "fp8", "fp16")
        assert r.framework in ("fsdp", "megatron", "maxtext", "other")


def test_usable_rows_cover_the_main_families():
    usable = Counter(r.family for r in ROWS if r.usable)
    for family in ("H100", "A100", "B200", "TPU v5e", "TPU v5p", "MI325X", "TPU v4", "TPU v6e"):
        assert usable[family] > 0, family


def test_usable_rows_per_family_and_kind():
    """Where the published material supports a plan, shape and throughput; every other family's rows
    stay unusable with a reason (MI300X, MI355X, H200, Gaudi: see the tests below)."""
    usable = Counter((r.family, r.kind) for r in ROWS if r.usable)
    assert usable == {("A100", "dense"): 155, ("H100", "dense"): 110, ("TPU v5e", "dense"): 24,
                      ("TPU v5p", "dense"): 17, ("MI325X", "dense"): 5, ("TPU v4", "dense"): 6,
                      ("TPU v6e", "dense"): 2, ("TPU v6e", "moe"): 2, ("B200", "dense"): 8}
    assert sum(usable.values()) == 329


def test_maxtext_v4_22b_heads_from_the_v4_script():
    """README (maxtext_tpu_readmes.md, v4/README.md @e591f30c): '| 1x v4-128   | 156              | 56.7% |'.
    Shape: base.yml @76bd53b0f (maxtext_configs_at_76bd53b0f.txt) 'head_dim: 256', 'vocab_size: 32_768',
    'mlp_activations: ["relu"]'; 22b.sh 'base_emb_dim=6144 base_mlp_dim=24576 base_num_decoder_layers=48';
    heads: MaxText/configs/v4/22b.sh 'base_num_heads=24' ('# 158TFLOP/s, 22B params'), later
    'base_num_kv_heads=24 base_num_query_heads=24' (AI-Hypercomputer/maxtext @232369cc)."""
    r = ROWS[278]
    assert (r.model_name, r.family, r.devices, r.usable) == ("MaxText synthetic 22B", "TPU v4", 64, True)
    assert (r.spec.layers, r.spec.d_model, r.spec.heads, r.spec.kv_heads, r.spec.hd, r.spec.ffn_dim,
            r.spec.vocab, r.spec.seq_len) == (48, 6144, 24, 24, 256, 24576, 32768, 2048)
    # N = 48 * (4*6144*6144 + 2*6144*24576 + 2*6144) + 6144 + 32768*6144: the README's "22B" (8 heads: 17.1B)
    n_params = 48 * (4 * 6144 * 6144 + 2 * 6144 * 24576 + 2 * 6144) + 6144 + 32768 * 6144
    assert n_params == 21_945_194_496 == r.spec.params_total()
    flops_per_token = 6 * n_params + 12 * 24 * 48 * 256 * 2048 / 2  # 135,295,045,632 (MaxText @76bd53b0f)
    assert r.tokens_per_s_per_device == pytest.approx(156e12 / flops_per_token)  # 1,153 tokens/s per chip
    # 22b.sh @76bd53b0f: 'ici_fsdp_parallelism=64 per_device_batch_size=16 remat_policy=full'
    assert r.plan == Plan(tp=1, pp=1, cp=1, ep=1, dp=64, microbatch=16, zero=3, recompute="full", interleave=1,
                          sequence_parallel=False)
    assert r.global_batch_seqs == 1024 and any("base_num_heads=24" in a for a in r.assumptions)
    # '| 8x v4-128   | 146              | 53.2% |': 8 slices of 64 chips, FSDP within, DP across
    r8 = ROWS[281]
    assert (r8.devices, r8.plan.dp, r8.global_batch_seqs) == (512, 512, 8192)
    assert r8.tokens_per_s_per_device == pytest.approx(146e12 / flops_per_token)


def test_maxtext_v4_52b_heads_from_the_v4_script():
    """'| 2x v4-384   | 162              | 58.9% |'; 52b.sh @76bd53b0f 'ici_fsdp_parallelism=192
    ici_tensor_parallelism=1 per_device_batch_size=10 remat_policy=full base_num_decoder_layers=32
    base_emb_dim=12288 base_mlp_dim=49152'; heads: 52b.sh 'base_num_heads=32' ('# achieves 162 TFLOP/s, 52B'),
    'base_num_query_heads=32 base_num_kv_heads=32' (AI-Hypercomputer/maxtext @0a18c20f)."""
    r = ROWS[283]
    assert (r.model_name, r.devices, r.usable) == ("MaxText synthetic 52B", 384, True)
    assert (r.spec.heads, r.spec.kv_heads, r.spec.hd, r.spec.layers, r.spec.d_model) == (32, 32, 256, 32, 12288)
    n_params = 32 * (4 * 12288 * 8192 + 2 * 12288 * 49152 + 2 * 12288) + 12288 + 32768 * 12288
    assert n_params == 51_943_059_456 == r.spec.params_total()  # the README's "52B"
    flops_per_token = 6 * n_params + 12 * 32 * 32 * 256 * 2048 / 2
    assert r.tokens_per_s_per_device == pytest.approx(162e12 / flops_per_token)  # 514 tokens/s per chip
    assert (r.plan.tp, r.plan.dp, r.plan.microbatch, r.global_batch_seqs, r.plan.recompute) == (1, 384, 10, 3840,
                                                                                                  "full")


def test_trillium_llama31_8b_plan_from_the_linked_recipe():
    """maxtext_tiering_and_custom_model.md: '| Llama 3.1  8B  | [Link](.../Llama3.1-8B-MaxText/v6e-256) |
    256 Chips, BF16, SL=8192 | 45.46% | 7,207 |'; the recipe (tpu-recipes @a9e09290): 'per_device_batch_size': 4,
    'ici_fsdp_parallelism': -1, 'remat_policy': 'custom' with the layer input, Q, K and V offloaded to host
    memory (recompute "offload"); its log 'Tokens/s/device: 7207.336, total_weights: 8388608' (= 256 x 4 x 8192)."""
    r = ROWS[325]
    assert (r.model_name, r.family, r.kind, r.devices, r.usable) == ("Llama 3.1 8B", "TPU v6e", "dense", 256, True)
    assert r.tokens_per_s_per_device == 7207 and r.measured_from == "tokens/s"
    assert r.plan == Plan(tp=1, pp=1, cp=1, ep=1, dp=256, microbatch=4, zero=3, recompute="offload",
                          interleave=1, sequence_parallel=False)
    assert any("host offload taken as recompute 'offload'" in a for a in r.assumptions)
    assert (r.global_batch_seqs, r.seq_len) == (1024, 8192) and 256 * 4 * 8192 == 8_388_608


def test_trillium_mixtral_rows_are_usable_moe():
    """Mixtral 8x22B: '| Mixtral 8X22B | [Link](.../Mixtral-8x22B-MaxText) | 256 Chips, BF16, SL=4096 | 36.2% |
    1,326 |'; recipe (tpu-recipes @03fb496c): per_device_batch_size=8, ici_fsdp_parallelism=64,
    ici_expert_parallelism=4; log 'Tokens/s/device: 1326.307, total_weights: 8388608'. Mixtral 8x7B:
    '| Mixtral 8X7B | ... | 256 Chips, BF16, SL=4096 | 35.23% | 3,899 |'; recipe (@e008533b):
    'per_device_batch_size': 12, 'ici_fsdp_parallelism': -1 (its sample log: 3,645 tokens/s)."""
    x22 = ROWS[329]
    assert (x22.model_name, x22.family, x22.kind, x22.usable) == ("Mixtral 8X22B", "TPU v6e", "moe", True)
    assert (x22.spec.experts, x22.spec.experts_per_token, x22.spec.expert_ffn_dim, x22.spec.moe_layers) == (
        8, 2, 16384, 56)
    assert x22.plan == Plan(tp=1, pp=1, cp=1, ep=4, dp=256, microbatch=8, zero=3, recompute="offload",
                            interleave=1, sequence_parallel=False)
    assert (x22.global_batch_seqs, x22.seq_len, x22.tokens_per_s_per_device) == (2048, 4096, 1326)
    x7 = ROWS[328]
    assert (x7.model_name, x7.family, x7.kind, x7.usable) == ("Mixtral 8X7B", "TPU v6e", "moe", True)
    assert (x7.plan.tp, x7.plan.ep, x7.plan.dp, x7.plan.microbatch, x7.global_batch_seqs) == (1, 1, 256, 12, 3072)
    assert x7.tokens_per_s_per_device == 3899
    for r in (x7, x22):
        assert any("capacity_factor=1.25" in a for a in r.assumptions)
        assert any("tpu-recipes" in a for a in r.assumptions)


def test_primus_qwen3_seq_len_is_the_primus_default_and_reproduces_the_tflops():
    """amd_primus_tables.md: '| 4  | 1   | 1f1b         | 2742.4         | 406    | ...'. No seq_len printed;
    Primus's qwen3_235B_A22B-BF16-pretrain.yaml: 'seq_length: ${PRIMUS_SEQ_LENGTH:4096}'. Megatron-LM's current
    num_floating_point_operations (core attention '/ 2  # causal mask') at s = 4096 gives 148.03 GFLOP per token,
    which every row's TFLOPS / tokens/s reproduces; still no micro-batch or global batch, so no plan."""
    qwen = [r for r in ROWS if r.model_name == "Qwen3-235B-A22B" and r.family == "MI355X"]
    assert len(qwen) == 7
    L, d, q, kv, fe, k, V, s = 94, 4096, 64 * 128, 4 * 128, 1536, 8, 151936, 4096
    flops = 6 * (L * (d * (q + 2 * kv) + q * d + k * 3 * d * fe) + V * d) + 6 * L * q * s
    assert flops == 148_034_813_952
    for r in qwen:
        assert r.seq_len == 4096 == r.spec.seq_len and r.kind == "moe"
        assert float(RAW["tflops_per_device"][r.row]) * 1e12 / r.tokens_per_s_per_device == pytest.approx(
            flops, rel=5e-4)
        assert not r.usable and r.reason.startswith("no plan: micro-batch and global batch not stated")
        assert any("PRIMUS_SEQ_LENGTH:4096" in a for a in r.assumptions)


def test_cp_comm_all_gather_only_where_the_source_states_it():
    """Llama 3 sec. 3.3.2: 'our CP implementation adopts an all-gather based method where we first all-gather
    the key (K) and value (V) tensors'; NeMo / Megatron-Core default to the p2p ring."""
    llama3 = [r for r in ROWS if r.source.startswith("Llama 3 Herd")]
    assert len(llama3) == 3 and all(r.cp_comm == "all_gather" for r in llama3)
    assert ROWS[466].plan.cp == 16 and any("all-gathers K/V" in a for a in ROWS[466].assumptions)
    assert {r.cp_comm for r in ROWS if not r.source.startswith("Llama 3 Herd")} == {"p2p"}
    nemo_cp = [r for r in ROWS if r.source == "NVIDIA/NeMo" and r.plan and r.plan.cp > 1]
    assert nemo_cp and all(r.cp_comm == "p2p" for r in nemo_cp)


def test_families_with_no_usable_row_say_why():
    """MI355X (Primus: no batch), H200 and Gaudi 2 (LoRA, issue threads, MLPerf, kernels): no row the
    published material supports. B200's unusable rows: without-CP configurations not printed, MLPerf,
    LoRA, kernels (its eight with-CP long-sequence rows are usable)."""
    reasons = {fam: {r.reason.split(":")[0] for r in ROWS if r.family == fam and not r.usable} for fam in
               ("MI355X", "B200", "H200", "Gaudi 2")}
    assert not any(r.usable for r in ROWS if r.family in reasons and r.family != "B200")
    assert reasons == {
        "MI355X": {"no plan", "no global batch", "kernel measurement"},
        "B200": {"no plan", "fine-tuning (LoRA)", "kernel measurement"},
        "H200": {"fine-tuning (LoRA)", "preliminary issue-thread numbers", "kernel measurement"},
        "Gaudi 2": {"no plan", "fine-tuning (LoRA)", "kernel measurement"},
    }


def test_mi300x_rows_lack_what_a_fit_needs():
    """No MI300X row is usable: Primus PP8 omits seq_len/batch/precision, the ROCm issue numbers use an
    unstated FLOP convention, torchtune fine-tunes on unpacked sequences, MAMF is a kernel."""
    reasons = {r.reason.split(":")[0] for r in ROWS if r.family == "MI300X"}
    assert not any(r.usable for r in ROWS if r.family == "MI300X")
    assert reasons == {"no model shape", "preliminary issue-thread numbers", "fine-tuning (full)",
                       "fine-tuning (LoRA)", "kernel measurement"}


def test_primus_llama2_7b_rows_do_not_fit_the_named_model():
    """amd_primus_tables.md: '| 8  | 1   | 1f1b        | 10057          | 235.7  | ...': 235.7e12 / 10057 =
    23.4 GFLOP per token on every row, below 6 x the matmul parameters of the 32-layer Llama2-7B (Megatron:
    6 * (32 * (4*4096^2 + 3*4096*11008) + 32000*4096) = 39.6 GFLOP) before any attention term."""
    rows = [r for r in ROWS if r.model_name == "Llama2-7B" and r.family == "MI300X"]
    assert len(rows) == 6
    floor = 6 * (32 * (4 * 4096**2 + 3 * 4096 * 11008) + 32000 * 4096)
    for r in rows:
        per_token = float(RAW["tflops_per_device"][r.row]) * 1e12 / r.tokens_per_s_per_device
        assert 23.4e9 < per_token < 23.5e9 < floor == 39_642_464_256
        assert r.reason.startswith("no model shape: seq_len not stated, and the printed TFLOPS / tokens/s")


def test_primus_llama31_70b_rows_recompute_as_primus_configures_them():
    """The MI325X table prints no recomputation. Primus's own MI325X configurations for Llama 3.1 70B
    (examples/torchtitan/configs/MI325X/llama3.1_70B-{FP8,BF16}-pretrain.yaml) set
    `activation_checkpoint: mode: full`, and without it the FSDP plans need 336-895 GB of 275 GB;
    the 8B rows keep the default (their FP8 configuration says mode "none"). The 1-node FP8 70B row
    prints the BF16 row's figure (1,135) and is unusable, named as a copied cell."""
    rows = [r for r in ROWS if r.source == "AMD-AGI/Primus" and r.family == "MI325X"]
    by_model = {(r.model_name, r.devices, r.precision): r for r in rows}
    assert len(rows) == 6
    copied = by_model[("Llama 3.1 70B", 8, "fp8")]
    assert not copied.usable and copied.reason.startswith("source inconsistent: the 1-node FP8 figure, 1,135")
    assert all(r.usable for r in rows if r is not copied)
    for r in rows:
        if r.model_name == "Llama 3.1 70B":
            assert r.plan.recompute == "full" and r.plan.zero == 3
            assert "activation_checkpoint: mode: full" in r.assumptions[0]
        else:
            assert r.plan.recompute == "none"
    assert by_model[("Llama 3.1 70B", 64, "fp8")].plan.microbatch == 4


def test_accelerator_texts_map_to_catalog_ids():
    assert set(ACCELERATORS.values()) <= set(CATALOG.accelerators)
    assert set(RAW["accelerator"]) <= set(ACCELERATORS) | set(NOT_IN_CATALOG_FAMILY)
    assert ROWS[486].accelerator_id is None and ROWS[486].family == "GH200"  # MAMF NVIDIA GH200 SXM


def test_kernel_rows():
    kernels = load_kernel_rows(catalog=CATALOG)
    assert len(kernels) == 238 and Counter(k.op for k in kernels) == {
        "attention_fwd": 151, "attention_fwd_bwd": 68, "gemm": 19}
    h100 = next(k for k in kernels if k.op == "gemm" and k.accelerator_id == "nvidia-h100-sxm-80gb")
    assert (h100.m, h100.n, h100.k, h100.tflops, h100.precision) == (2048, 2048, 13312, 794.5, "bf16")
    fa3 = [k for k in kernels if k.implementation == "FA3" and k.head_dim == 128 and k.causal and k.seq_len == 16384]
    assert [k.tflops for k in fa3] == [616.0] and fa3[0].op == "attention_fwd"
    assert "halved when causal" in fa3[0].flop_convention
    fa2_causal = [k for k in kernels if k.implementation == "FlashAttention-2" and k.causal]
    assert len(fa2_causal) == 12 and all(k.op == "attention_fwd_bwd" for k in fa2_causal)
    unusable = {k.reason for k in kernels if not k.usable}
    assert unusable == {"accelerator not in catalog: NVIDIA GH200 SXM", "accelerator not in catalog: NVIDIA A100 PCIe"}


def test_coverage_table():
    table = coverage(ROWS)
    assert table["usable"].sum() == sum(r.usable for r in ROWS)
    assert (table["usable"] + table["unusable"]).sum() == 722
    assert table.loc[("H100", "dense"), "usable"] == sum(r.usable for r in ROWS if r.family == "H100")
    assert table.loc[("H100", "dense"), "kernel measurement"] == 220


def test_missing_column_raises_naming_file_and_column(tmp_path):
    bad = tmp_path / "rows.csv"
    RAW.drop(columns="tokens_per_s_per_device").to_csv(bad, index=False)
    with pytest.raises(ValueError, match="tokens_per_s_per_device") as err:
        load_public_rows(bad, catalog=CATALOG)
    assert str(bad) in str(err.value)


def test_presets_untouched():
    """Named shapes are copies: the shared gpt3-175b preset keeps its 96 heads."""
    assert PRESETS["gpt3-175b"].heads == 96
