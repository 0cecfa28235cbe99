"""One published training measurement as a `PublicRow`: usable for validation, or why not.

One responsibility: assembling a row from its parts and deciding whether it is usable. Each CSV row
(`simulator.validation.public_rows_csv`) becomes a `PublicRow`: model shape (`simulator.validation.public_rows_shape`),
catalog accelerator, parallel `Plan` (`simulator.validation.public_rows_plan`) and the measured throughput
normalised to tokens/s per device (`simulator.validation.public_rows_throughput`), with `usable` / `reason`
(the first failed check of `_public_row`). Every source is from 2023 or later, so `overlap_comm`
is True except for MegaScale's Megatron-LM baseline. Fine-tuning rows (LoRA, packed SFT with
per-document attention, unpacked full fine-tuning) are kept but unusable: they are not the
pre-training step the simulator times. `cp_comm` is how context parallelism exchanges K/V: "p2p"
(Megatron-Core / NeMo ring attention, the default) unless the source states all-gather (Llama 3,
Dubey et al. 2024 sec. 3.3.2: "our CP implementation adopts an all-gather based method where we
first all-gather the key (K) and value (V) tensors").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hardware_catalog import Catalog, load_catalog
from simulator.model.shapes import ModelSpec
from simulator.execution.moe_comm import MoeSetup
from simulator.execution.plan import Plan
from simulator.validation.public_rows_csv import accelerator_of, cell_int, precision_of, read_rows
from simulator.validation.public_rows_kernels import KERNEL_SOURCES
from simulator.validation.public_rows_plan import devices_of, framework_of, row_plan
from simulator.validation.public_rows_shape import row_spec
from simulator.validation.public_rows_supplements import supplemented
from simulator.validation.public_rows_throughput import tokens_per_s


@dataclass(frozen=True)
class PublicRow:
    """One published training measurement, normalised. `row` is the 0-based CSV row index."""

    row: int
    source: str
    table: str
    model_name: str
    family: str
    kind: str  # "dense" | "moe"
    spec: ModelSpec | None
    accelerator_id: str | None
    devices: int
    precision: str  # "bf16" | "fp8" | "fp16"
    global_batch_seqs: int | None
    seq_len: int | None
    plan: Plan | None
    framework: str  # "fsdp" | "megatron" | "maxtext" | "other"
    overlap_comm: bool
    flash_attention: bool
    tokens_per_s_per_device: float | None
    measured_from: str
    usable: bool
    reason: str
    assumptions: tuple[str, ...] = ()
    cp_comm: str = "p2p"  # "p2p" (ring) | "all_gather" (simulator.execution.steptime / memory spelling)
    # gradient buffer in fp32 (Megatron-LM's bf16 default) or in bf16: NVIDIA's NeMo performance
    # configurations sync gradients in bf16 (`grad_sync_dtype: bf16`; simulator/execution/memory.py docstring)
    grad_reduce_in_fp32: bool = True
    # MoE token dropping (MaxText's dropping MoE, `capacity_factor=` in the row's evidence): expert
    # buffers padded to it (simulator.execution.moe_comm.MoeSetup); None: dropless
    moe_capacity_factor: float | None = None

    @property
    def moe(self) -> MoeSetup:
        """How the row routes MoE tokens (all-to-all dispatch; token dropping when stated)."""
        return MoeSetup(capacity_factor=self.moe_capacity_factor)


EXCLUDED_SOURCES = {
    "DeepSeek-V3 Technical Report (arXiv:2412.19437)":
        "whole-run average: from reported GPU-hours, restarts and overheads included",
    "ROCm/TransformerEngine issues":
        "preliminary issue-thread numbers: TFLOP/s in an unstated FLOP convention",
}


def _cp_comm(r: dict) -> str:
    """Llama 3 states all-gather CP (sec. 3.3.2); Megatron-Core / NeMo / Primus default to p2p ring."""
    return "all_gather" if r["source"].startswith("Llama 3 Herd") else "p2p"


def _fine_tuning_reason(r: dict) -> str:
    """Fine-tuning is not the pre-training step the simulator times. LoRA skips the frozen weights'
    gradients; NeMo's packed SFT attends per document (its TFLOP/s = tokens/s x 6N, no s^2 term)."""
    text = f"{r['table']} {r['model']}".lower()
    if "task=SFT" in r["notes"]:
        return "fine-tuning (SFT): packed documents, attention per document"
    if "lora" in text or "task=LoRA" in r["notes"]:
        return "fine-tuning (LoRA)"
    return "fine-tuning (full): unpacked variable-length sequences" if "fine-tun" in text else ""


def _public_row(i: int, r: dict, catalog: Catalog) -> PublicRow:
    """CSV row `i` as a `PublicRow`: its parts, the assumptions made and the first reason it is unusable."""
    notes: list[str] = []
    r, sup = supplemented(r)
    if sup is not None and sup.evidence:
        notes.append(sup.evidence)
    acc, family = accelerator_of(r["accelerator"], catalog)
    base = dict(row=i, source=r["source"], table=r["table"], model_name=r["model"], family=family,
                accelerator_id=acc, devices=cell_int(r["devices"]) or 0, precision=precision_of(r["precision"], notes),
                flash_attention="no flash" not in r["notes"].lower())
    if r["source"] in KERNEL_SOURCES:
        return PublicRow(**base, kind="dense", spec=None, global_batch_seqs=None, seq_len=cell_int(r["seq_len"]),
                         plan=None, framework="other", overlap_comm=False, tokens_per_s_per_device=None,
                         measured_from="", usable=False, reason="kernel measurement")
    if acc and acc.startswith("nvidia-a100") and "GB" not in r["accelerator"]:
        notes.append("A100 memory size not stated: 80GB assumed")
    fw = framework_of(r)
    spec, spec_reason = row_spec(r, notes)
    base["devices"] = devices_of(r, base["devices"], notes)
    plan, gbs, plan_reason = row_plan(r, fw, spec, base["devices"], notes)
    tokens, measured_from = tokens_per_s(r, spec, acc, base["precision"], catalog)
    if _cp_comm(r) == "all_gather" and plan is not None and plan.cp > 1:
        notes.append("context parallelism all-gathers K/V (Llama 3 sec. 3.3.2), not Megatron's p2p ring")
    checks = (
        (r["source"] in EXCLUDED_SOURCES, EXCLUDED_SOURCES.get(r["source"], "")),
        (True, _fine_tuning_reason(r)),
        (sup is not None, sup.gap_for(r) if sup else ""),
        (spec is None, spec_reason),
        (tokens is None, "no tokens/s: no throughput figure convertible in the source's FLOP convention"),
        (acc is None, f"accelerator not in catalog: {r['accelerator']}"),
        (plan is None or bool(plan_reason), plan_reason),
    )
    reason = next((why for failed, why in checks if failed and why), "")
    # MegaScale (Jiang et al. 2024, sec. 3.2-3.3) compares against a Megatron-LM baseline whose data-
    # and pipeline-parallel communication is not overlapped with compute; that overlap is theirs.
    overlap = "baseline" not in str(r["framework"]).lower()
    if not overlap:
        notes.append("Megatron-LM baseline of MegaScale: DP/PP communication not overlapped (MegaScale sec. 3)")
    return PublicRow(**base, kind="moe" if (cell_int(r["experts"]) or (spec and spec.is_moe)) else "dense", spec=spec,
                     global_batch_seqs=gbs, seq_len=cell_int(r["seq_len"]) or (spec.seq_len if spec else None),
                     plan=plan, framework=fw, overlap_comm=overlap, tokens_per_s_per_device=tokens,
                     measured_from=measured_from, usable=not reason, reason=reason,
                     assumptions=tuple(dict.fromkeys(notes)), cp_comm=_cp_comm(r),
                     grad_reduce_in_fp32=r["source"] != "NVIDIA/NeMo",
                     moe_capacity_factor=(_capacity_factor(" ".join([r["notes"], *notes]))
                                          if spec and spec.is_moe else None))


def _capacity_factor(text: str) -> float | None:
    """The `capacity_factor=` a row's notes or evidence state for a dropping MoE, or None (dropless)."""
    m = re.search(r"capacity_factor=(\d+(?:\.\d+)?)", text)
    return float(m.group(1)) if m else None


def load_public_rows(path: str | Path | None = None, catalog: Catalog | None = None) -> list[PublicRow]:
    """Every CSV row as a `PublicRow` (packaged copy unless `path`); ValueError on a malformed file."""
    df, catalog = read_rows(path), catalog or load_catalog()
    return [_public_row(i, r, catalog) for i, r in enumerate(df.to_dict("records"))]
