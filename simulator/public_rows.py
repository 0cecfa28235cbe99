"""Published throughput measurements (`data/public_throughput_rows.csv`) as typed records.

The CSV is a byte copy of `../shared/validation/public_throughput/rows.csv` (722 rows transcribed
from llm-foundry, NeMo, Megatron-LM, MaxText, MLPerf, Primus, MegaScale, Llama 3, ...). Each row
becomes a `PublicRow`: model shape (`ModelSpec`), catalog accelerator, parallel `Plan` and the
measured throughput normalised to tokens/s per device, with `usable` / `reason`. The kernel
microbenchmarks also become `KernelRow`s (`load_kernel_rows`).

A published TFLOP/s (or MFU) becomes tokens/s with *that source's own* FLOPs per token:
- llm-foundry (scripts/train/benchmarking/collect_results.py): 6 * NumParams + 12 * L * d * s
  (3x forward, attention in full, no recompute); its rows give tokens/s directly.
- Megatron-LM core_r0.8.0 (training.py `num_floating_point_operations`) and NeMo 24.x, which
  uses it (checked on every NeMo pre-training row: tokens/s x FLOPs = TFLOP/s within 0.5%):
  6 * N_matmul (logits included, no norms or biases) + 12 * L * H * hd * s, attention not halved.
- MaxText @76bd53b0f (train.py `calculate_training_tflops`): 6 * N_all_parameters
  + 12 * H * L * hd * s / 2 (causal halved); its MFU is TFLOP/s over 275/197/459 (v4/v5e/v5p).
- Llama 3 (Dubey et al. 2024 sec. 3.3.2, "BF16 MFU per Chowdhery et al."): PaLM App. B, i.e.
  `simulator.flops.model_flops_per_token` (DESIGN section 2).
- FlashAttention benchmarks (benchmarks/benchmark_flash_attention.py): 4 * b * s^2 * h * d per
  forward, halved when causal; forward + backward = 3.5x forward. MAMF (ml-engineering): 2 M N K.
- NeMo 25.04 (the B200 long-sequence table) is read with the same Megatron formula (assumed: the
  H100 x B200 figures at 1M tokens are implausible with causal halving); those rows are unusable.
Rows that print tokens/s keep them (MegaScale, MLPerf and DeepSeek figures were derived in rows.csv).
Plan fields a row does not give take the framework's documented default and are listed in
`assumptions`: FSDP FULL_SHARD / MaxText FSDP -> ZeRO-3, SHARD_GRAD_OP -> 2, Megatron/NeMo
distributed optimizer -> 1, DDP -> 0; recompute none unless stated (MaxText remat full -> full,
minimal / save_dot_* / custom -> selective); dp = devices / (tp * pp * cp). Every source is from 2023
or later, so `overlap_comm` is True. Fine-tuning rows (LoRA, packed SFT with per-document attention,
unpacked full fine-tuning) are kept but unusable: they are not the pre-training step the simulator times.

Fields a row's own table does not print but a file the source links or runs states are supplied by
`SUPPLEMENTS` (CSV cells filled, recipe keys appended to the notes), each with its file and commit in
`assumptions`; `SUPPLEMENTS` also pins a precise reason on rows that stay unusable. `cp_comm` is how
context parallelism exchanges K/V: "p2p" (Megatron-Core / NeMo ring attention, the default) unless
the source states all-gather (Llama 3, Dubey et al. 2024 sec. 3.3.2: "our CP implementation adopts an
all-gather based method where we first all-gather the key (K) and value (V) tensors").
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from hardware_catalog import Accelerator, Catalog, load_catalog
from hardware_catalog.files import read_user_text
from simulator.errors import DataFileError, ScenarioError
from simulator.flops import model_flops_per_token
from simulator.models import PRESETS, ModelSpec
from simulator.perf_params import PerfParams
from simulator.plan import Plan, PlanGrid, plan_problems, rule_violations
from simulator.steptime import step_parts

DATA_FILE = "data/public_throughput_rows.csv"
REQUIRED_COLUMNS = (
    "source", "table", "model", "layers", "d_model", "heads", "kv_heads", "ffn_dim", "vocab", "seq_len",
    "experts", "experts_per_token", "accelerator", "devices", "precision", "tp", "pp", "cp", "ep", "dp",
    "zero_or_fsdp", "microbatch", "global_batch_seqs", "recompute", "framework", "tokens_per_s_per_device",
    "tflops_per_device", "mfu_pct", "notes",
)
KERNEL_SOURCES = ("Dao-AILab/flash-attention", "stas00/ml-engineering")


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
    cp_comm: str = "p2p"  # "p2p" (ring) | "all_gather" (simulator.steptime / memory spelling)
    # gradient buffer in fp32 (Megatron-LM's bf16 default) or in bf16: NVIDIA's NeMo performance
    # configurations sync gradients in bf16 (`grad_sync_dtype: bf16`; simulator/memory.py docstring)
    grad_reduce_in_fp32: bool = True


@dataclass(frozen=True)
class KernelRow:
    """One kernel microbenchmark: a GEMM (MAMF) or an attention kernel on one device."""

    row: int
    source: str
    accelerator_id: str | None
    op: str  # "gemm" | "attention_fwd" | "attention_fwd_bwd"
    precision: str
    tflops: float | None
    flop_convention: str
    usable: bool
    reason: str
    m: int | None = None
    n: int | None = None
    k: int | None = None
    seq_len: int | None = None
    head_dim: int | None = None
    causal: bool | None = None
    implementation: str = ""


# --- FLOPs per token, one function per published convention ------------------------------------
def llm_foundry_flops_per_token(spec: ModelSpec) -> float:
    """llm-foundry collect_results.py: (3 * 2 * n_params * s + 3 * L * 2 * 2 * d * s^2) / s."""
    return 6.0 * spec.params_total() + 12.0 * spec.layers * spec.d_model * spec.seq_len


def megatron_flops_per_token(spec: ModelSpec) -> float:
    """Megatron-LM core_r0.8.0 num_floating_point_operations / (batch * s) (NeMo 24.x alike):
    12 L h^2 [(1 + g/n + s/h) q/h + (f/h) topk (3/2 if swiglu)] + 6 V h; attention not halved."""
    d, hd, mlp_mult = spec.d_model, spec.hd, 3 if spec.gated_mlp else 2
    attn = 2 * d * spec.heads * hd + 2 * d * spec.kv_heads * hd
    mlp = mlp_mult * d * (spec.expert_ffn_dim * spec.experts_per_token if spec.is_moe else spec.ffn_dim)
    return 6.0 * (spec.layers * (attn + mlp) + spec.vocab * d) + 12.0 * spec.layers * spec.heads * hd * spec.seq_len


def maxtext_2023_flops_per_token(spec: ModelSpec) -> float:
    """MaxText train.py calculate_training_tflops @76bd53b0f: 6 N_params + 12 H L hd s / 2."""
    return 6.0 * spec.params_total() + 6.0 * spec.heads * spec.layers * spec.hd * spec.seq_len


def palm_flops_per_token(spec: ModelSpec) -> float:
    """Chowdhery et al. 2022 (PaLM) App. B, as Llama 3 reports MFU: the project convention."""
    return model_flops_per_token(spec)


def _convention(r: dict) -> Callable[[ModelSpec], float] | None:
    src = r["source"]
    if src in ("NVIDIA/NeMo", "NVIDIA/Megatron-LM"):
        return megatron_flops_per_token
    if src == "AI-Hypercomputer/maxtext" and "76bd53b0f" in r["framework"]:
        return maxtext_2023_flops_per_token
    return palm_flops_per_token if src.startswith("Llama 3 Herd") else None


# --- accelerators ----------------------------------------------------------------------------
_ACCELERATOR_TEXT: dict[str, tuple[str, ...]] = {
    "nvidia-h100-sxm-80gb": ("H100 SXM 80GB", "H100 SXM 80GB (700W)", "H100 SXM 80GB (700W, Grand Teton, RoCE)",
                             "H100 SXM 80GB (README says H100; SXM/DGX not stated)",
                             "H100 SXM 80GB (README says H100)", "H100 (SXM assumed)", "NVIDIA H100 SXM"),
    "nvidia-a100-sxm-40gb": ("A100 40GB",),
    "nvidia-a100-sxm-80gb": ("A100 80GB", "A100 SXM 80GB", "NVIDIA A100 SXM",
                             "A100 (paper: NVIDIA Ampere GPUs; secondary note says A100)"),
    "nvidia-h200-sxm-141gb": ("H200 SXM 141GB", "H200 (SXM assumed)", "H200 SXM (700W)", "NVIDIA H200 SXM"),
    "nvidia-h800-sxm-80gb": ("H800",),
    "nvidia-b200": ("B200", "B200 SXM 180GB", "NVIDIA B200 SXM"),
    "nvidia-b300": ("NVIDIA B300 SXM",),
    "nvidia-gb200": ("NVIDIA GB200 SXM",),
    "nvidia-l40s": ("L40S",),
    "amd-mi300x": ("MI300X", 'MI300X (doc says "MI300")', "AMD MI300X"),
    "amd-mi325x": ("MI325X", "AMD MI325X"),
    "amd-mi355x": ("MI355X", 'MI355X (doc says "MI355")', "AMD MI355X"),
    "google-tpu-v4": ("TPU v4",),
    "google-tpu-v5e": ("TPU v5e",),
    "google-tpu-v5p": ("TPU v5p",),
    "google-tpu-v6e": ("TPU v6e (Trillium)",),
    "intel-gaudi2": ("Gaudi 2", "Intel Gaudi 2"),
    "intel-gaudi3": ("Intel Gaudi 3",),
}
ACCELERATORS = {text: acc for acc, texts in _ACCELERATOR_TEXT.items() for text in texts}
FAMILY = {"nvidia-h100-sxm-80gb": "H100", "nvidia-a100-sxm-40gb": "A100", "nvidia-a100-sxm-80gb": "A100",
          "nvidia-h200-sxm-141gb": "H200", "nvidia-h800-sxm-80gb": "H800", "nvidia-b200": "B200",
          "nvidia-b300": "B300", "nvidia-gb200": "GB200", "nvidia-l40s": "L40S", "amd-mi300x": "MI300X",
          "amd-mi325x": "MI325X", "amd-mi355x": "MI355X", "google-tpu-v4": "TPU v4", "google-tpu-v5e": "TPU v5e",
          "google-tpu-v5p": "TPU v5p", "google-tpu-v6e": "TPU v6e", "intel-gaudi2": "Gaudi 2",
          "intel-gaudi3": "Gaudi 3"}
NOT_IN_CATALOG_FAMILY = {"NVIDIA GH200 SXM": "GH200", "NVIDIA A100 PCIe": "A100"}


def _accelerator(text: str, catalog: Catalog) -> tuple[str | None, str]:
    """(catalog id or None, family) for the CSV's free-text accelerator."""
    acc = ACCELERATORS.get(text)
    if acc is None or acc not in catalog.accelerators:
        return None, NOT_IN_CATALOG_FAMILY.get(text, text)
    return acc, FAMILY[acc]


# --- parsing helpers -------------------------------------------------------------------------
def _num(text: str) -> float | None:
    """Leading number of a cell: '153.5 (derived)' -> 153.5, '1,671' -> 1671, '' -> None."""
    m = re.match(r"\s*(\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?)", text or "")
    return float(m.group(1).replace(",", "")) if m else None


def _int(text: str) -> int | None:
    v = _num(text)
    return None if v is None else int(round(v))


def _note(r: dict, key: str) -> int | None:
    m = re.search(rf"\b{key}=(-?\d+)", r["notes"])
    return int(m.group(1)) if m else None


def _precision(text: str, assumptions: list[str]) -> str:
    m = re.search(r"fp8|bf16|fp16", text)
    if m is None:
        assumptions.append("precision not stated: bf16 assumed")
    return m.group(0) if m else "bf16"


def _read(path: str | Path | None) -> pd.DataFrame:
    origin = f"simulator/{DATA_FILE}" if path is None else str(path)
    try:
        if path is None:
            with resources.files("simulator").joinpath(DATA_FILE).open("r", encoding="utf-8") as f:
                df = pd.read_csv(f, dtype=str, keep_default_na=False)
        else:
            text = read_user_text(path, "rows file", DataFileError)
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataFileError(f"{origin}: not a readable rows.csv ({e})") from None
    except OSError as e:
        raise DataFileError(f"{origin}: cannot read ({e.strerror or e})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataFileError(f"{origin}: missing column(s) {', '.join(missing)} (expected the rows.csv header)")
    return df


# --- model shape ----------------------------------------------------------------------------
def _gpt(name: str, layers: int, d: int, heads: int, vocab: int, seq: int, **kw) -> ModelSpec:
    return ModelSpec(name, layers, d, heads, heads, 4 * d, vocab, seq, gated_mlp=False, bias=True, layernorm=True,
                     learned_positions=True, **kw)


# Shapes the rows do not print. NeMo: NeMo-Megatron launcher configs; each agrees with the row's
# TFLOP/s / tokens/s under the Megatron formula within 0.5% (tests check it).
NAMED_SHAPES: dict[str, ModelSpec] = {
    "GPT3-5B": _gpt("GPT3-5B", 24, 4096, 32, 50257, 2048, tied_embeddings=True),
    "GPT3-20B": _gpt("GPT3-20B", 44, 6144, 48, 50257, 2048, tied_embeddings=True),
    "GPT3-175B": PRESETS["gpt3-175b"],
    "Nemotron-8B": ModelSpec("Nemotron-8B", 32, 4096, 32, 32, 16384, 256000, 4096, gated_mlp=False, layernorm=True),
    "Nemotron-22B": ModelSpec("Nemotron-22B", 40, 6144, 48, 48, 24576, 256000, 4096, gated_mlp=False,
                              layernorm=True),
    "Nemotron-340B": ModelSpec("Nemotron-340B", 96, 18432, 96, 8, 73728, 256000, 4096, gated_mlp=False,
                               layernorm=True),
    "GPT-3 175B (MLPerf gpt3, from checkpoint)": PRESETS["gpt3-175b"],
    # MegaScale Table 1: 128 heads of 96; GPT-3's 2k context (768 seqs x 2048 / 40.0 s = 39.3k tok/s).
    "GPT-3-style 175B": replace(PRESETS["gpt3-175b"], name="GPT-3-style 175B", heads=128, kv_heads=128),
    "GPT-3 175B (slightly >175B due to larger vocab; 177B in chart)":
        _gpt("GPT-3 177B (Megatron-LM)", 96, 12288, 96, 131072, 4096),
    "DeepSeek-V3 (671B total / 37B active MoE)": PRESETS["deepseek-v3"],
}
HEAD_DIM = {"Qwen3-235B-A22B": 128}  # maxtext qwen3-235b-a22b.yml: 64 heads of 128 on d = 4096


def _style(name: str) -> dict:
    """Block style by model family: MPT (llm-foundry benchmarks: learned positions, biases, tied;
    NumParams in the table match exactly), Megatron GPT (ffn 4d, MHA, untied), MaxText 2023
    synthetic (ReLU MLP, head_dim 256, tied), else Llama-like (SwiGLU, RMSNorm, untied)."""
    if name.startswith("MPT"):
        return dict(gated_mlp=False, tied_embeddings=True, learned_positions=True, bias=True, layernorm=True)
    if name.startswith("GPT-style"):
        return dict(gated_mlp=False, learned_positions=True, bias=True, layernorm=True)
    if name.startswith("MaxText synthetic"):
        return dict(gated_mlp=False, tied_embeddings=True, head_dim=256)
    return {}


def _spec(r: dict, assumptions: list[str]) -> tuple[ModelSpec | None, str]:
    name = r["model"]
    seq = _int(r["seq_len"])
    if name in NAMED_SHAPES:
        spec = NAMED_SHAPES[name]
        assumptions.append(f"shape of {spec.name} (what the row does not print is filled from it)")
        return (spec.with_seq_len(seq) if seq else spec), ""
    style = _style(name)
    val = {c: _int(r[c]) for c in ("layers", "d_model", "heads", "kv_heads", "ffn_dim", "vocab", "experts",
                                   "experts_per_token")}
    if style.get("gated_mlp") is False and val["heads"]:
        for col, default in (("kv_heads", val["heads"]), ("ffn_dim", 4 * (val["d_model"] or 0))):
            if not val[col]:
                val[col] = default
                assumptions.append(f"{col} not printed: GPT default {default}")
    missing = [c for c in ("layers", "d_model", "heads", "kv_heads", "ffn_dim", "vocab") if not val[c]]
    if not seq:
        missing.append("seq_len")
    if missing:
        return None, f"no model shape: {', '.join(missing)} not stated"
    moe = {}
    if val["experts"]:
        moe = dict(experts=val["experts"], experts_per_token=val["experts_per_token"] or 1,
                   expert_ffn_dim=val["ffn_dim"], moe_layers=val["layers"])
    style_head_dim = style.pop("head_dim", 0)
    head_dim = HEAD_DIM.get(name) or _note(r, "head_dim") or style_head_dim
    try:
        return ModelSpec(name, val["layers"], val["d_model"], val["heads"], val["kv_heads"], val["ffn_dim"],
                         val["vocab"], seq, head_dim=head_dim, **style, **moe), ""
    except ScenarioError as e:
        return None, f"no model shape: {e}"


# --- plan ------------------------------------------------------------------------------------
def _framework(r: dict) -> str:
    fw, zero = r["framework"].lower(), r["zero_or_fsdp"]
    if "maxtext" in fw or fw == "pax" or r["accelerator"].startswith("TPU"):
        return "maxtext"
    if any(k in fw for k in ("nemo", "megatron", "primus", "megascale")):
        return "megatron"
    if "llm-foundry" in fw or "torchtune" in fw or (zero.startswith("FSDP") and "meta internal" not in fw):
        return "fsdp"
    return "other"


def _zero(zero: str, framework: str, assumptions: list[str]) -> int:
    if "SHARD_GRAD_OP" in zero:
        return 2
    if zero == "DDP":
        return 0
    if "no reshard after forward" in zero:
        assumptions.append("FSDP without reshard after forward (Llama 3): gradients and optimizer states sharded, "
                           "parameters kept between forward and backward: zero=2")
        return 2
    if "DCN data-parallel across" in zero and "across 1 slice" not in zero:
        assumptions.append("FSDP within a slice, data parallel across slices: modelled as ZeRO-3 over all dp")
    if zero.startswith("FSDP") or (not zero and framework in ("fsdp", "maxtext")):
        return 3
    assumptions.append("optimizer sharding not stated: Megatron/NeMo distributed optimizer (zero=1) assumed")
    return 1


def _recompute(r: dict, assumptions: list[str]) -> str:
    text = f"{r['recompute']} {r['notes']}"
    if r["recompute"].startswith("full") or "remat_policy=full" in text:
        return "full"
    if r["recompute"].startswith("none"):
        return "none"
    if re.search(r"remat_policy=minimal|remat save_dot|remat custom", text):
        assumptions.append("MaxText remat minimal / save_dot_* / custom offload taken as selective recompute")
        return "selective"
    assumptions.append("activation recomputation not stated: framework default (none)")
    return "none"


def _no_plan_reason(r: dict) -> str:
    if r["source"].startswith("mlcommons"):
        return ("no plan: MLPerf result logs give the global batch and gradient-accumulation steps, not TP/PP/DP "
                "or step times (mlperf_training_extracted.jsonl); tokens/s spans the whole run, evals included")
    if "without CP" in r["notes"]:
        return "no plan: best configuration without CP not printed"
    if "tpu-recipes" in r["notes"]:
        return "no plan: recipe linked, not transcribed"
    return "no plan: parallel layout not stated"


def _maxtext_recipe(r: dict, devices: int) -> tuple[int, int, int, int] | str | None:
    """(tp, dp, ep, per-device batch) from a MaxText recipe quoted in the notes. MaxText's expert axis
    also shards the batch, so the data-parallel ranks are fsdp x expert x dcn (ep inside dp)."""
    pdbs = _note(r, "per_device_batch_size")
    if pdbs is None:
        return None
    tp, fsdp, dcn = _note(r, "ici_tp") or 1, _note(r, "ici_fsdp") or -1, _note(r, "dcn_fsdp") or 1
    ep = _note(r, "ici_ep") or 1
    dp = devices // tp if fsdp == -1 else fsdp * ep * dcn
    if tp * dp != devices:
        return f"no plan: linked recipe is for {tp * dp} chips, the row for {devices}"
    return tp, dp, ep, pdbs


def _plan(r: dict, fw: str, spec: ModelSpec | None, devices: int, assumptions: list[str]
          ) -> tuple[Plan | None, int | None, str]:
    """(plan, global batch in sequences, reason the row is unusable for its plan or '')."""
    par = {c: _int(r[c]) for c in ("tp", "pp", "cp", "ep", "dp")}
    gbs, mb = _int(r["global_batch_seqs"]), _int(r["microbatch"])
    recipe = _maxtext_recipe(r, devices) if fw == "maxtext" else None
    if isinstance(recipe, str):
        return None, gbs, recipe
    if recipe:
        par["tp"], par["dp"], par["ep"], gbs = recipe[0], recipe[1], recipe[2], recipe[3] * devices
        unverified = " (its mapping to this row is marked unverified)" if "not verified" in r["notes"] else ""
        assumptions.append(f"plan from the MaxText recipe quoted in the notes{unverified}")
    if (r["source"].startswith("mlcommons") or "without CP" in r["notes"]
            or not (any(par.values()) or r["zero_or_fsdp"])):
        return None, gbs, _no_plan_reason(r)
    tp, pp, cp, ep = (par[c] or 1 for c in ("tp", "pp", "cp", "ep"))
    dp = par["dp"] or devices // (tp * pp * cp)
    if not par["dp"]:
        assumptions.append("dp = devices / (tp * pp * cp)")
    if fw == "maxtext" and gbs:
        mb = gbs // dp
        assumptions.append("MaxText, no gradient accumulation: microbatch = global batch / dp")
    if mb is None and gbs is None:
        return None, None, "no plan: batch size not stated"
    if mb is None:
        mb = 1
        assumptions.append("microbatch not stated: 1 assumed")
    reason = ""
    if gbs is None and pp > 1:
        reason = "no global batch: with pp > 1 the pipeline bubble depends on it"
    elif gbs is None:
        gbs = mb * dp
        assumptions.append("global batch not stated: microbatch x dp (no gradient accumulation) assumed")
    if tp > 1 and fw != "fsdp":
        assumptions.append("sequence parallelism with tp > 1 assumed")
    plan = Plan(tp=tp, pp=pp, cp=cp, ep=ep, dp=dp, microbatch=mb, zero=_zero(r["zero_or_fsdp"], fw, assumptions),
                recompute=_recompute(r, assumptions), interleave=_note(r, "VP") or _note(r, "VPP") or 1,
                sequence_parallel=tp > 1)
    if not reason and r["table"] == _B200_LONG_SEQ and plan.devices * 4 == devices:
        reason = _B200_GAP.format(plan=plan.devices, devices=devices)
    if not reason and spec is not None and gbs:
        problems = plan_problems(plan, spec, devices, gbs)
        reason = f"plan fails simulator checks: {'; '.join(problems)}" if problems else ""
    return plan, gbs, reason


# --- supplements: what a row's table omits but a file the source links or runs states -----------
@dataclass(frozen=True)
class Supplement:
    """For one (table, model): where the values come from (`evidence`, kept in `assumptions`), CSV
    cells to fill (only empty ones), recipe keys appended to the notes (read by `_maxtext_recipe` /
    `_recompute`), and a precise reason for a row that stays unusable (`gap`, replacing the generic one)."""

    evidence: str = ""
    cells: tuple[tuple[str, str], ...] = ()
    notes: str = ""
    gap: str = ""


_V4_HEADS = ("heads {h} (MHA): MaxText/configs/v4/{size}b.sh sets base_num_heads={h} (an early version, '{comment}'; "
             "base_num_query_heads={h} base_num_kv_heads={h} in AI-Hypercomputer/maxtext @{commit}); the key list "
             "transcribed from the .sh @76bd53b0f (maxtext_configs_at_76bd53b0f.txt) shows no heads key; with {h} "
             "heads of 256 the model has {params} parameters, the README's '{size}B' (base.yml's default 8 heads: "
             "{params8})")
_QWEN_PRIMUS = ("seq_len 4096: Primus default, examples/megatron/configs/MI355X/qwen3_235B_A22B-BF16-pretrain.yaml "
                "@05b350b3 (seq_length: ${PRIMUS_SEQ_LENGTH:4096}); the blog prints none. Cross-check: printed TFLOPS "
                "/ tokens/s = 148.0 GFLOP per token on every row = Megatron-LM's current num_floating_point_operations "
                "(core attention causal-halved) for Qwen3-235B-A22B at s = 4096 (148.03)")
_QWEN_TABLE = "Primus-pipeline experiments: Qwen 235B verification (MI355, 4 nodes, PP4, EP8)"
_TIERING = "Optimized models tiering: "
_MOE_DROPPED = ("; MaxText dropping MoE (sparse_matmul=False, megablox=False, capacity_factor=1.25): one-hot "
                "dispatch/combine einsums and expert GEMMs padded to 1.25x the routed tokens, not in the simulator's "
                "MoE cost")
SUPPLEMENTS: dict[tuple[str, str], Supplement] = {
    ("High Performance Model Configs on TPU v4: 22B model", "MaxText synthetic 22B"): Supplement(
        _V4_HEADS.format(size=22, h=24, comment="# 158TFLOP/s, 22B params", commit="232369cc",
                         params="21.9B", params8="17.1B"),
        cells=(("heads", "24"), ("kv_heads", "24"))),
    ("High Performance Model Configs on TPU v4: 52B model", "MaxText synthetic 52B"): Supplement(
        _V4_HEADS.format(size=52, h=32, comment="# achieves 162 TFLOP/s, 52B", commit="0a18c20f",
                         params="51.9B", params8="42.3B"),
        cells=(("heads", "32"), ("kv_heads", "32"))),
    (_TIERING + "TPU v6e (Trillium) Gold", "Llama 3.1 8B"): Supplement(
        "plan from the linked recipe AI-Hypercomputer/tpu-recipes training/trillium/Llama3.1-8B-MaxText/v6e-256/"
        "README.md @a9e09290 (llama3_1_8b_8192, MaxText tpu-recipes-v0.1.4): per_device_batch_size=4, "
        "ici_fsdp_parallelism=-1, remat_policy=custom with offload; its log line 'Tokens/s/device: 7207.336, "
        "total_weights: 8388608' (= 256 x 4 x 8192) matches the table's 7,207",
        notes="per_device_batch_size=4 ici_fsdp=-1 remat custom (offload)"),
    (_TIERING + "TPU v6e (Trillium) Silver", "Mixtral 8X7B"): Supplement(
        "plan from the linked recipe AI-Hypercomputer/tpu-recipes training/trillium/Mixtral-8x7B-MaxText/README.md "
        "@e008533b (mixtral_8x7b_dropped, MaxText tpu-recipes-v0.1.2): per_device_batch_size=12, "
        "ici_fsdp_parallelism=-1 (no expert parallelism), remat_policy=custom with offload; its sample log shows "
        "3,645 tokens/s/device (total_weights 12582912 = 256 x 12 x 4096), the table 3,899: same recipe, another "
        "software version" + _MOE_DROPPED,
        notes="per_device_batch_size=12 ici_fsdp=-1 remat custom (offload)"),
    (_TIERING + "TPU v6e (Trillium) Silver", "Mixtral 8X22B"): Supplement(
        "plan from the linked recipe AI-Hypercomputer/tpu-recipes training/trillium/Mixtral-8x22B-MaxText "
        "(README.md and cluster_toolkit/run_recipe.sh @03fb496c, mixtral_8x22b_dropped): per_device_batch_size=8, "
        "ici_fsdp_parallelism=64, ici_expert_parallelism=4, remat_policy=custom with offload; its log line "
        "'Tokens/s/device: 1326.307, total_weights: 8388608' (= 256 x 8 x 4096) matches the table's 1,326"
        + _MOE_DROPPED,
        notes="per_device_batch_size=8 ici_fsdp=64 ici_ep=4 remat custom (offload)"),
    (_TIERING + "TPU v6e (Trillium) Gold", "Llama 2 70B"): Supplement(gap=(
        "no plan: the linked recipe (tpu-recipes training/trillium/Llama2-70B-MaxText/README.md @9e458c71, "
        "llama2_70b_4096_sc) says per_device_batch_size=3 but its own log line has total_weights 2,097,152 "
        "= 256 x 2 x 4096 tokens per step; the batch of the tabulated run is not known")),
    (_TIERING + "TPU v5p Silver", "Mixtral 8X7B"): Supplement(gap=(
        "no plan: the linked recipe (tpu-recipes training/v5p/Mixtral-8X7B-Maxtext, cluster_toolkit/run_recipe.sh: "
        "per_device_batch_size=36, topology 4x4x4) is for 64 chips (v5p-128), the row for 256")),
    (_QWEN_TABLE, "Qwen3-235B-A22B"): Supplement(
        _QWEN_PRIMUS, cells=(("seq_len", "4096"),),
        gap=("no plan: micro-batch and global batch not stated (the Primus config's global_batch_size 8192 is "
             "marked '# 32nodes', this run used 4 nodes); with pp = 4 the pipeline bubble depends on them")),
    ("Validation: Projected vs. Measured Results / MI355X - MoE Models (Mixtral 8x22B)", "Mixtral 8x22B"): Supplement(
        gap=("no global batch: with pp = 4 the pipeline bubble depends on it; the table prints only Batch 2 (the "
             "micro-batch), and Primus's MI355X mixtral_8x22B_v0.1-BF16-pretrain.yaml (global_batch_size 128) is "
             "not stated to be the 8-node run's")),
    ("Primus-pipeline experiments: llama2 7B verification (MI300, 1 node, PP8)", "Llama2-7B"): Supplement(gap=(
        "no model shape: seq_len not stated, and the printed TFLOPS / tokens/s (23.4 GFLOP per token on every row) "
        "is below the 39.6 GFLOP per token the Megatron count gives the 32-layer Llama2-7B before any attention "
        "term: the run's model is not the one the row names")),
}
_B200_LONG_SEQ = "Long Sequence Performance: LLAMA3-8B (FP8) - B200"
_B200_GAP = ("plan inconsistent in source: printed TP x PP x DP x CP = {plan} is a quarter of the {devices} GPUs "
             "(every B200 row of performance_long_sequence.md @8cfedd72; the file does not say where the factor 4 "
             "goes, and another stored version of it prints '# of GPUs' = TP x CP x DP with the same TFLOPS/GPU)")


def _supplemented(r: dict) -> tuple[dict, Supplement | None]:
    """The row with its `SUPPLEMENTS` entry applied (empty cells filled, recipe keys appended to notes)."""
    sup = SUPPLEMENTS.get((r["table"], r["model"]))
    if sup is None:
        return r, None
    r = dict(r)
    for col, value in sup.cells:
        if not r[col]:
            r[col] = value
    if sup.notes:
        r["notes"] = f"{r['notes']}; {sup.notes}"
    return r, sup


def _cp_comm(r: dict) -> str:
    """Llama 3 states all-gather CP (sec. 3.3.2); Megatron-Core / NeMo / Primus default to p2p ring."""
    return "all_gather" if r["source"].startswith("Llama 3 Herd") else "p2p"


# --- rows ------------------------------------------------------------------------------------
EXCLUDED_SOURCES = {
    "DeepSeek-V3 Technical Report (arXiv:2412.19437)":
        "whole-run average: from reported GPU-hours, restarts and overheads included",
    "ROCm/TransformerEngine issues":
        "preliminary issue-thread numbers: TFLOP/s in an unstated FLOP convention",
}


def _fine_tuning_reason(r: dict) -> str:
    """Fine-tuning is not the pre-training step the simulator times. LoRA skips the frozen weights'
    gradients; NeMo's packed SFT attends per document (its TFLOP/s = tokens/s x 6N, no s^2 term)."""
    text = f"{r['table']} {r['model']}".lower()
    if "task=SFT" in r["notes"]:
        return "fine-tuning (SFT): packed documents, attention per document"
    if "lora" in text or "task=LoRA" in r["notes"]:
        return "fine-tuning (LoRA)"
    return "fine-tuning (full): unpacked variable-length sequences" if "fine-tun" in text else ""


def _tokens(r: dict, spec: ModelSpec | None, acc: str | None, precision: str, catalog: Catalog
            ) -> tuple[float | None, str]:
    """(tokens/s per device, how it was obtained) in the source's own FLOP convention."""
    if r["tokens_per_s_per_device"]:
        derived = "derived" in r["tokens_per_s_per_device"]
        return _num(r["tokens_per_s_per_device"]), "tokens/s (derived in rows.csv)" if derived else "tokens/s"
    conv = _convention(r)
    if conv is None or spec is None:
        return None, ""
    tflops = _num(r["tflops_per_device"])
    if tflops:
        return tflops * 1e12 / conv(spec), f"TFLOP/s / {conv.__name__}"
    mfu = _num(r["mfu_pct"])
    if mfu and acc:
        peak = catalog.accelerators[acc].peak_flops(precision)
        return mfu / 100 * peak / conv(spec), f"MFU x catalog peak / {conv.__name__}"
    return None, ""


def _public_row(i: int, r: dict, catalog: Catalog) -> PublicRow:
    notes: list[str] = []
    r, sup = _supplemented(r)
    if sup is not None and sup.evidence:
        notes.append(sup.evidence)
    acc, family = _accelerator(r["accelerator"], catalog)
    base = dict(row=i, source=r["source"], table=r["table"], model_name=r["model"], family=family,
                accelerator_id=acc, devices=_int(r["devices"]) or 0, precision=_precision(r["precision"], notes),
                flash_attention="no flash" not in r["notes"].lower())
    if r["source"] in KERNEL_SOURCES:
        return PublicRow(**base, kind="dense", spec=None, global_batch_seqs=None, seq_len=_int(r["seq_len"]),
                         plan=None, framework="other", overlap_comm=False, tokens_per_s_per_device=None,
                         measured_from="", usable=False, reason="kernel measurement")
    if acc and acc.startswith("nvidia-a100") and "GB" not in r["accelerator"]:
        notes.append("A100 memory size not stated: 80GB assumed")
    fw = _framework(r)
    spec, spec_reason = _spec(r, notes)
    plan, gbs, plan_reason = _plan(r, fw, spec, base["devices"], notes)
    tokens, measured_from = _tokens(r, spec, acc, base["precision"], catalog)
    if _cp_comm(r) == "all_gather" and plan is not None and plan.cp > 1:
        notes.append("context parallelism all-gathers K/V (Llama 3 sec. 3.3.2), not Megatron's p2p ring")
    checks = (
        (r["source"] in EXCLUDED_SOURCES, EXCLUDED_SOURCES.get(r["source"], "")),
        (True, _fine_tuning_reason(r)),
        (sup is not None, sup.gap if sup else ""),
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
    return PublicRow(**base, kind="moe" if (_int(r["experts"]) or (spec and spec.is_moe)) else "dense", spec=spec,
                     global_batch_seqs=gbs, seq_len=_int(r["seq_len"]) or (spec.seq_len if spec else None),
                     plan=plan, framework=fw, overlap_comm=overlap, tokens_per_s_per_device=tokens,
                     measured_from=measured_from, usable=not reason, reason=reason,
                     assumptions=tuple(dict.fromkeys(notes)), cp_comm=_cp_comm(r),
                     grad_reduce_in_fp32=r["source"] != "NVIDIA/NeMo")


def load_public_rows(path: str | Path | None = None, catalog: Catalog | None = None) -> list[PublicRow]:
    """Every CSV row as a `PublicRow` (packaged copy unless `path`); ValueError on a malformed file."""
    df, catalog = _read(path), catalog or load_catalog()
    return [_public_row(i, r, catalog) for i, r in enumerate(df.to_dict("records"))]


def _kernel_row(i: int, r: dict, catalog: Catalog) -> KernelRow:
    acc, _ = _accelerator(r["accelerator"], catalog)
    tflops = _num(r["tflops_per_device"])
    reason = "" if acc and tflops else (f"accelerator not in catalog: {r['accelerator']}" if not acc
                                         else "no TFLOP/s value")
    common = dict(row=i, source=r["source"], accelerator_id=acc, precision=_precision(r["precision"], []),
                  tflops=tflops, usable=not reason, reason=reason)
    if r["source"] == "stas00/ml-engineering":
        m, n, k = (int(x) for x in re.search(r"(\d+)x(\d+)x(\d+)", r["model"]).groups())
        return KernelRow(op="gemm", m=m, n=n, k=k, flop_convention="2*M*N*K per matmul (MAMF, mamf-finder.py)",
                         **common)
    table = r["table"].lower()
    fwd_bwd = "fwd+bwd" in table
    convention = ("FlashAttention benchmark: 4*b*s^2*h*d per forward, halved when causal"
                  + ("; forward+backward = 3.5x forward" if fwd_bwd else ""))
    if "caption not printed" in table:
        convention += "; causal mask inferred (panel caption not printed)"
    return KernelRow(op="attention_fwd_bwd" if fwd_bwd else "attention_fwd", seq_len=_int(r["seq_len"]),
                     head_dim=int(re.search(r"hd(\d+)", table).group(1)),
                     causal="causal" in table and "no causal" not in table and "without causal" not in table,
                     implementation=r["framework"], flop_convention=convention, **common)


def load_kernel_rows(path: str | Path | None = None, catalog: Catalog | None = None) -> list[KernelRow]:
    """The GEMM (MAMF) and FlashAttention rows as `KernelRow`s."""
    df, catalog = _read(path), catalog or load_catalog()
    return [_kernel_row(i, r, catalog) for i, r in enumerate(df.to_dict("records")) if r["source"] in KERNEL_SOURCES]


def coverage(rows: list[PublicRow] | None = None) -> pd.DataFrame:
    """Rows per (family, kind): usable, unusable, and unusable by reason (text before ':')."""
    rows = load_public_rows() if rows is None else rows
    df = pd.DataFrame({"family": [r.family for r in rows], "kind": [r.kind for r in rows],
                       "status": ["usable" if r.usable else r.reason.split(":")[0] for r in rows]})
    table = pd.crosstab([df["family"], df["kind"]], df["status"])
    usable = table.pop("usable") if "usable" in table else pd.Series(0, index=table.index, name="usable")
    reasons = table[table.sum().sort_values(ascending=False).index]
    out = pd.concat([usable, reasons.sum(axis=1).rename("unusable"), reasons], axis=1)
    return out.sort_values(["usable", "unusable"], ascending=False)


if __name__ == "__main__":
    public = load_public_rows()
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(coverage(public).to_string())
        print("\nUnusable rows by reason:")
        print(pd.Series([r.reason for r in public if not r.usable]).value_counts().to_string())
    kernels = load_kernel_rows()
    print(f"\nKernel rows: {sum(k.usable for k in kernels)} usable of {len(kernels)}")


INTERLEAVES = (1, 2, 4, 8)


def row_plans(row: PublicRow) -> PlanGrid:
    """The row's plan; for a pipelined run, every interleaving the plan rules allow (no table prints
    the schedule, which Megatron-LM, NeMo and Llama 3's stack tune; the fastest is taken)."""
    plans = [row.plan]
    if row.plan.pp > 1 and row.plan.interleave == 1:
        plans += [replace(row.plan, interleave=v) for v in INTERLEAVES[1:]]
    grid = PlanGrid.from_plans(plans)
    ok = ~rule_violations(grid, row.spec, int(row.global_batch_seqs)).any(axis=1)
    ok[0] = True  # the published plan itself always stays
    return grid.take(np.flatnonzero(ok))


def row_step_time_s(row: PublicRow, acc: Accelerator, params: PerfParams) -> float:
    """The simulator's step time of a usable row: its own plan (fastest schedule), precision and software."""
    parts = step_parts(row.spec, row_plans(row), acc, params, row.precision, int(row.global_batch_seqs),
                       flash=row.flash_attention, overlap=row.overlap_comm, cp_comm=row.cp_comm)
    return float(np.min(parts.total_s))
