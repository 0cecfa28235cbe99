"""Inherited `[perf]` tables (calibrate/inherit.py): every catalog part carries one, and a vendor
with no measured part inherits from the best-measured part of its generation, marked as such."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from calibrate.inherit import inherited_perf_toml
from calibrate.published import gemm_ceiling
from hardware_catalog import load_catalog
from simulator.validation.public_rows import load_kernel_rows

CAT = load_catalog()
KERNELS = load_kernel_rows()
H100 = "nvidia-h100-sxm-80gb"
CATALOG_DIR = Path(__file__).resolve().parents[2] / "hardware_catalog" / "accelerators"


def _line(text: str, name: str) -> str:
    return next(x for x in text.split("\n\n")[0].splitlines() if x.startswith(f"{name} ="))


def test_every_shipped_part_has_a_fitted_or_inherited_perf_table():
    """No part is left on the vendor-neutral defaults (A100-derived, 2021 software): each catalog file
    has a `[perf]` table, fitted to its own rows or inherited from a fitted part."""
    ids = [Path(p).stem for p in sorted(glob.glob(str(CATALOG_DIR / "*.toml")))]
    assert len(ids) == 26
    for acc_id in ids:
        perf = CAT.accelerator(acc_id).perf
        assert perf is not None, acc_id
        if perf.inherited_from:
            assert CAT.accelerator(perf.inherited_from).perf.inherited_from is None, acc_id  # one hop only


@pytest.mark.parametrize("acc_id", ["intel-gaudi2", "intel-gaudi3", "aws-trainium1", "aws-trainium2"])
def test_a_vendor_without_measured_parts_inherits_h100_marked_as_such(acc_id):
    """Neither Intel nor AWS has a usable published row: H100 SXM's fit, every value unverified and its
    note saying why (no part of the vendor measured)."""
    perf = CAT.accelerator(acc_id).perf
    assert perf.inherited_from == H100
    vendor = CAT.accelerator(acc_id).vendor
    assert perf.gemm_half_gflop.verified is False
    assert perf.gemm_half_gflop.note.endswith(f"no {vendor} part has usable published rows: "
                                              "the best-measured part of its generation")


def test_gaudi_ceilings_keep_h100s_share_of_their_own_maximum_achievable_matmul():
    """Gaudi 2: MAMF 418.7 TFLOP/s of 432 (0.969), H100 803 of 989 (0.803, torch 2.x): the ceiling is
    H100's fitted 0.650 x 0.969 / 0.803 = 0.784. Gaudi 3: 1,243.0 of the catalog's 1,835 (0.677):
    0.650 x 0.677 / 0.803 = 0.548. Across vendors attention keeps H100's fraction of peak (no same
    matrix units to slow in step; the held-out transfers ran attention faster than the ceilings' ratio)."""
    fitted = CAT.accelerator(H100).perf.gemm_eff_max.value
    h100_mamf = gemm_ceiling(H100, "bf16", CAT, KERNELS)
    gaudi2, gaudi3 = CAT.accelerator("intel-gaudi2").perf, CAT.accelerator("intel-gaudi3").perf
    assert gaudi2.gemm_eff_max.value == pytest.approx(fitted * (418.7 / 432) / h100_mamf, rel=1e-4)
    assert gaudi2.gemm_eff_max.value == pytest.approx(0.784, abs=0.001)
    assert gaudi3.gemm_eff_max.value == pytest.approx(fitted * (1243.0 / 1835) / h100_mamf, rel=1e-4)
    h100 = CAT.accelerator(H100).perf
    for gaudi in (gaudi2, gaudi3):
        assert gaudi.flash_attn_eff.value == h100.flash_attn_eff.value
        assert gaudi.stacks["fsdp"]["flash_attn_eff"].value == h100.stacks["fsdp"]["flash_attn_eff"].value


def test_across_vendors_the_parts_own_fp8_to_bf16_mamf_ratio_is_its_fp8_efficiency():
    """Gaudi 2: (826.5 / 865) / (418.7 / 432) = 0.986; Gaudi 3: fp8 1,289.5 against bf16 1,243.0 at one
    peak, capped at 1 (fp8 has no higher peak there). Within a vendor the sibling's fitted ratio stays
    (H200, whose fp8 MAMF row exists, keeps H100's fitted value): fitted to training rows."""
    gaudi2 = CAT.accelerator("intel-gaudi2").perf.fp8_gemm_eff
    assert gaudi2.value == pytest.approx((826.5 / 865) / (418.7 / 432), rel=1e-4)
    assert gaudi2.verified is not False and "own maximum achievable matmul" in gaudi2.source
    gaudi3 = CAT.accelerator("intel-gaudi3").perf.fp8_gemm_eff
    assert gaudi3.value == 1.0 and gaudi3.source.endswith("capped at 1")
    text = inherited_perf_toml("nvidia-h200-sxm-141gb", H100, CAT, KERNELS)
    assert gemm_ceiling("nvidia-h200-sxm-141gb", "fp8", CAT, KERNELS) is not None
    assert f"value = {CAT.accelerator(H100).perf.fp8_gemm_eff.value:.5g}" in _line(text, "fp8_gemm_eff")


def test_a_part_without_a_mamf_row_keeps_its_siblings_share_of_peak():
    """L40S (NVIDIA, no MAMF row) and Trainium 2 (no kernel row) take H100's fitted fractions as they are."""
    h100 = CAT.accelerator(H100).perf
    for acc_id in ("nvidia-l40s", "aws-trainium2"):
        perf = CAT.accelerator(acc_id).perf
        assert perf.gemm_eff_max.value == h100.gemm_eff_max.value
        assert perf.fp8_gemm_eff.value == h100.fp8_gemm_eff.value
        assert perf.stacks["fsdp"]["flash_attn_eff"].value == h100.stacks["fsdp"]["flash_attn_eff"].value
    assert "same vendor's nearest measured part" in CAT.accelerator("nvidia-l40s").perf.gemm_eff_max.note


def test_a_part_without_its_own_fp8_rate_runs_fp8_gemms_at_the_bf16_efficiency():
    """TPU v5p and v6e and Trainium 1 list FP8 peaks equal to BF16 (catalog sources): their fp8 GEMMs run
    on the bf16 path, efficiency 1, not the H200's FP8-kernel ratio 0.91 (fitted v5p and v6e) or H100's
    fitted 0.95 (Trainium 1, inherited across vendors). TPU7x has its own FP8 rate (twice BF16): it takes
    the vendor-neutral prior, not v6e's 1, which says only that v6e has none."""
    for acc_id in ("google-tpu-v5p", "google-tpu-v6e", "aws-trainium1"):
        fp8 = CAT.accelerator(acc_id).perf.fp8_gemm_eff
        assert fp8.value == 1.0 and fp8.source.startswith("rule: the catalog lists") and fp8.verified is False, acc_id
    tpu7x = CAT.accelerator("google-tpu7x")
    assert tpu7x.peak_flops("fp8") == 2 * tpu7x.peak_flops("bf16")
    assert tpu7x.perf.fp8_gemm_eff.value == 0.91 and tpu7x.perf.fp8_gemm_eff.source.startswith("vendor-neutral prior")
    text = inherited_perf_toml("aws-trainium1", H100, CAT, KERNELS)
    assert _line(text, "fp8_gemm_eff").startswith("fp8_gemm_eff = { value = 1, source = \"rule:")
