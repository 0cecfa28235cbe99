"""Published throughput rows (simulator/public_rows.py): exact reads of chosen rows, conventions."""

from collections import Counter
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from hardware_catalog import load_catalog
from simulator.models import PRESETS
from simulator.plan import Plan, plan_problems
from simulator.public_rows import (
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
    (382, "no plan: MLPerf publishes time-to-train only"),
    (393, "fine-tuning (LoRA)"),
    (228, "fine-tuning (SFT)"),
    (467, "whole-run average"),
    (361, "preliminary issue-thread numbers"),
    (503, "kernel measurement"),
    (278, "no model shape: heads"),
    (235, "no plan: best configuration without CP not printed"),
    (234, "plan fails simulator checks: parallelism: tp*pp*cp*dp = 1*1*1*2 = 2"),
])
def test_unusable_rows_say_why(row, reason):
    assert not ROWS[row].usable and ROWS[row].reason.startswith(reason)


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
    for family in ("H100", "A100", "TPU v5e", "TPU v5p", "MI325X"):
        assert usable[family] > 0, family


def test_mi300x_rows_lack_what_a_fit_needs():
    """No MI300X row is usable: Primus PP8 omits seq_len/batch/precision, the ROCm issue numbers use an
    unstated FLOP convention, torchtune fine-tunes on unpacked sequences, MAMF is a kernel."""
    reasons = {r.reason.split(":")[0] for r in ROWS if r.family == "MI300X"}
    assert not any(r.usable for r in ROWS if r.family == "MI300X")
    assert reasons == {"no model shape", "preliminary issue-thread numbers", "fine-tuning (full)",
                       "fine-tuning (LoRA)", "kernel measurement"}


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
