"""The `[perf]` table of an accelerator no published row covers: inherited from its nearest measured
sibling (`trainsim calibrate fit --inherit-from SIBLING --accelerator ID`), every value marked
unverified.

The sibling is the same vendor's nearest measured part (H200 and H800 from H100, MI300X from MI325X,
GB200 from B200). A vendor with no measured part takes the best-measured accelerator of its
generation, H100 SXM (110 rows, four publishers, three software stacks): a fitted table of today's
software is a nearer prior than the vendor-neutral defaults, which are A100-derived and 2021-era.
What the part's own kernel measurements say replaces the sibling's values: its maximum achievable
matmul (MAMF table) scales the GEMM ceiling, and across vendors its own fp8/bf16 MAMF ratio is the
fp8 efficiency (within a vendor the sibling's fitted ratio is kept: the same matrix units, and
fitted to training rows rather than one GEMM shape). A part whose catalog lists no fp8 (fp4) rate
above its bf16 one runs those GEMMs at the bf16 efficiency, and a part with its own rate does not
take such a sibling's 1 (`low_precision_prior`: the vendor-neutral prior then).
"""

from __future__ import annotations

from pathlib import Path

from calibrate.published import gemm_ceiling, sourced_toml
from hardware_catalog import Catalog
from simulator.errors import DataFileError
from simulator.system.perf_params import LOW_PRECISION_EFFS, low_precision_prior, own_rate_missing
from simulator.validation.public_rows import KernelRow


def _inherited_ceiling(acc_id: str, sibling_id: str, catalog: Catalog,
                       kernels: list[KernelRow] | None) -> tuple[float | None, float, str]:
    """(own MAMF, inherited GEMM ceiling, its note or '' when it is the sibling's value unchanged)."""
    fitted = catalog.accelerator(sibling_id).perf.gemm_eff_max.value
    own, theirs = gemm_ceiling(acc_id, "bf16", catalog, kernels), gemm_ceiling(sibling_id, "bf16", catalog, kernels)
    if own is None:
        return None, fitted, ""
    if theirs is None:  # only the part's own measurement: a cap
        if own >= fitted:
            return own, fitted, ""
        return own, own, f"{acc_id}'s own maximum achievable matmul (MAMF table), below {sibling_id}'s {fitted:.3f}"
    value = min(own, fitted * own / theirs)
    return own, value, (f"{sibling_id}'s {fitted:.3f} x {own:.3f} / {theirs:.3f}: its fitted share of the maximum "
                        f"achievable matmul (MAMF table) on {acc_id}'s own")


def _own_fp8_ratio(acc_id: str, catalog: Catalog, kernels: list[KernelRow] | None) -> tuple[float, str] | None:
    """(fp8 efficiency relative to bf16, its source) from the part's own MAMF rows, or None."""
    bf16, fp8 = gemm_ceiling(acc_id, "bf16", catalog, kernels), gemm_ceiling(acc_id, "fp8", catalog, kernels)
    if bf16 is None or fp8 is None:
        return None
    return min(1.0, fp8 / bf16), (f"{acc_id}'s own maximum achievable matmul, fp8 {fp8:.3f} / bf16 {bf16:.3f} of "
                                  "peak (stas00/ml-engineering MAMF table)" + (", capped at 1" if fp8 > bf16 else ""))


def inherited_perf_toml(acc_id: str, sibling_id: str, catalog: Catalog, kernels: list[KernelRow] | None = None) -> str:
    """`[perf]` of an accelerator without published rows: its nearest measured sibling's values,
    marked unverified (module docstring). The GEMM ceiling keeps the sibling's fitted share of the
    maximum achievable matmul (MAMF table), as `transfer_params` does for a held-out part: sibling's
    ceiling x own MAMF / sibling's MAMF, never above its own MAMF (only capped by it when the sibling
    has no MAMF row). A lower ceiling lowers the attention-kernel efficiency in the same ratio:
    attention runs on the same matrix units under the same power cap, and a lower matmul ceiling is a
    lower sustained clock (MI300X at 750 W: 0.511 of peak; MI325X, the same CDNA3 die at 1,000 W:
    0.600). Across vendors neither holds: attention keeps the sibling's fraction of peak, as the
    held-out transfer does (`transfer_params`, whose errors set the unseen-part throughput spread), and
    the two cross-architecture transfers the tables test run attention faster than the ceilings' ratio
    would give, not slower (B200 from H100: 14-23% slow at 64K-1M tokens; MI325X: 10-22% slow); the
    part's own fp8/bf16 MAMF ratio, where both are measured, is its fp8 efficiency (at most 1)."""
    sib = catalog.accelerator(sibling_id).perf
    if sib is None or sib.inherited_from:
        raise DataFileError(f"--inherit-from {sibling_id}: it has no fitted [perf] table to inherit "
                            "(fit it first with --published)")
    own, ceiling, ceiling_note = _inherited_ceiling(acc_id, sibling_id, catalog, kernels)
    lines = ["[perf]", f'method = "trainsim calibrate fit --write-catalog --inherit-from {sibling_id} --accelerator '
                       f'{acc_id} (no usable published rows for {acc_id})"',
             f'inherited_from = "{sibling_id}"']
    acc, donor = catalog.accelerator(acc_id), catalog.accelerator(sibling_id)
    same_vendor = acc.vendor == donor.vendor
    kin = ("same vendor's nearest measured part" if same_vendor else
           f"no {acc.vendor} part has usable published rows: the best-measured part of its generation")
    fp8 = None if same_vendor else _own_fp8_ratio(acc_id, catalog, kernels)
    clock = min(1.0, ceiling / sib.gemm_eff_max.value) if sib.gemm_eff_max and same_vendor else 1.0
    for name, field in sib:
        if not hasattr(field, "value"):
            continue
        value, note = field.value, f"{sibling_id}'s value: {kin}"
        if name == "fp8_gemm_eff" and fp8 is not None:
            lines.append(f"{name} = {sourced_toml(fp8[0], fp8[1])}")
            continue
        dtype = name.split("_")[0]
        if name in LOW_PRECISION_EFFS and (own_rate_missing(acc, dtype) or own_rate_missing(donor, dtype)):
            # a part without its own fp8/fp4 rate, or a sibling whose 1 said only that it had none
            rule, source = low_precision_prior(acc, name)
            lines.append(f"{name} = {sourced_toml(rule, source, verified=False)}")
            continue
        if name == "gemm_eff_max" and ceiling_note:
            value, note = ceiling, ceiling_note
        if name == "flash_attn_eff" and clock < 1.0:
            value, note = value * clock, (f"{sibling_id}'s {field.value:.3f} x {clock:.3f}, the ratio of the "
                                          f"matmul ceilings (lower sustained clock on the same matrix units)")
        if name == "gemm_kernel_max" and own is not None:
            lines.append(f"{name} = {sourced_toml(own, 'maximum achievable matmul, bf16 (stas00/ml-engineering MAMF table)')}")
            continue
        lines.append(f"{name} = {sourced_toml(value, f'inherited from {sibling_id}', note, verified=False)}")
    for sw, values in sib.stacks.items():
        lines += ["", f"[perf.stacks.{sw}]"]
        for k, v in values.items():
            scale = clock if k == "flash_attn_eff" else 1.0
            note = (f"{sibling_id}'s {sw} value {v.value:.3f} x {clock:.3f}, the ratio of the matmul ceilings"
                    if scale < 1.0 else "")
            lines.append(f"{k} = {sourced_toml(v.value * scale, f'inherited from {sibling_id}', note, verified=False)}")
    return "\n".join(lines) + "\n"


def catalog_file(acc_id: str) -> Path:
    """The packaged catalog file of `acc_id` (`hardware_catalog/accelerators/<id>.toml`)."""
    path = Path(__file__).resolve().parents[1] / "hardware_catalog" / "accelerators" / f"{acc_id}.toml"
    if not path.is_file():
        raise DataFileError(f"--accelerator {acc_id}: no packaged catalog file {path}")
    return path


def write_perf_table(path: Path, table: str) -> None:
    """Replace the `[perf]` table (and its sub-tables, always the last in the file) of a catalog file."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.strip() == "[perf]"), len(lines))
    head = "\n".join(lines[:cut]).rstrip("\n")
    path.write_text(head + "\n\n" + table, encoding="utf-8")
