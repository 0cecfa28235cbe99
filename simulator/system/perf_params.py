"""The parameters of the performance model: what the calibration trainer fits.

Shape after Calculon (Isaev et al. SC'23): per-op efficiency that depends on op size, a memory
bandwidth efficiency, and per-network-tier bandwidth efficiency and latency. Calculon's tables are
piecewise; we use the smooth curve

    eta_gemm(g) = gemm_eff_max * g / (g + gemm_half_gflop)      (g = GFLOP of one GEMM)

with Calculon's A100/H100 shape (>=128 GFLOP 0.95, >=16 0.90, >=1 0.60 of the ceiling).

The defaults below are vendor-neutral priors, each with its source (the GEMM ceiling 0.84 was
fitted in 2021-software terms to the five Megatron-LM weak-scaling rows, Narayanan et al. 2021
Table 1). Each accelerator's catalog `[perf]` table replaces them with values fitted to the public
throughput tables (`trainsim calibrate fit --published`, calibrate/published.py) or inherited from
a measured sibling; a calibration profile and a scenario's `efficiency.perf` come on top.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hardware_catalog.schema import Accelerator


@dataclass(frozen=True)
class PerfParams:
    # Compute: ceiling fitted to Megatron-LM Table 1 (module docstring); half-efficiency size
    # from Calculon systems/a100_80g.json and h100_80g_nvl8.json matrix tables (1 GFLOP -> 0.6).
    gemm_eff_max: float = 0.84
    gemm_half_gflop: float = 0.6
    # The GEMM ceiling of tuned kernels alone: the maximum achievable matmul (MAMF table), which
    # inference engines approach (TensorRT-LLM, vLLM); training stacks reach `gemm_eff_max`, which
    # also carries their framework losses. Prior: the A100's MAMF, 86.9% (stas00/ml-engineering).
    gemm_kernel_max: float = 0.869
    # Attention kernel, forward + backward: FlashAttention-2 on H100, causal, head dim 128, 8k tokens,
    # 308 TFLOP/s of 989 (Dao-AILab/flash-attention benchmark; the kernel rows of
    # public_throughput/rows.csv; 328 at 16k). Dao 2023's "50-73% of A100 peak" is the forward pass
    # alone; the training stacks the public tables identify land at 0.16-0.27 (catalog [perf]).
    flash_attn_eff: float = 0.31
    # HBM: Calculon mem1 efficiency for >= 100 MB transfers.
    mem_bw_eff: float = 0.9
    # Bytes moved per token per hidden unit per layer by forward elementwise ops (LayerNorm x2
    # 8 B, residual adds x2 12 B, dropout x2 10 B, bias+GeLU/SwiGLU on the 4h MLP 16 B: 46 B).
    elementwise_bytes: float = 46.0
    # Unfused attention (pre-FlashAttention): bytes per score element forward (QK^T write 2,
    # scale-mask-softmax read 2 + write 2, dropout read 2 + write 2 + mask 1, AV read 2: 13 B).
    softmax_bytes: float = 13.0
    # Networks: Calculon systems/a100_80e.json, the file its authors validated against Selene
    # (NVLink tier efficiency 0.65, latency 10 us; InfiniBand tier efficiency 0.9, latency 20 us).
    scaleup_eff: float = 0.65
    scaleup_latency_s: float = 10e-6
    scaleout_eff: float = 0.9
    scaleout_latency_s: float = 20e-6
    # Gradient bucket for DDP / distributed-optimizer reductions (Megatron-LM: 40M elements, fp32).
    dp_bucket_bytes: float = 160e6
    # Communication hidden behind computation when the scenario runs with `overlap_comm = true`
    # (current Megatron-LM / Transformer Engine: overlapped gradient reduce-scatter and parameter
    # all-gather, TP comm-GEMM overlap). Unverified engineering priors; with overlap_comm = false
    # (Megatron-LM 2021, DeepSpeed ZeRO-3 2021) nothing is hidden.
    dp_overlap: float = 0.9
    tp_overlap: float = 0.6
    # MoE dispatch and combine hidden behind another micro-batch's compute (never more than it):
    # none in Megatron-Core by default (its batch-level overlap, --overlap-moe-expert-parallel-comm,
    # came in v0.14, 2025-09); DeepSeek-V3's DualPipe hides it all (report sec. 3.2.1): set 1.0.
    ep_overlap: float = 0.0
    # Fixed cost per layer per micro-batch forward pass (kernel launches, framework overhead); the
    # backward pass costs twice as much. Negligible for large models; calibration fits it.
    layer_overhead_s: float = 0.0
    # Host time per rank of a list-output all-gather or list-input reduce-scatter: PyTorch's
    # ProcessGroupNCCL flattens the list, runs one NCCL call and copies each of the n chunks with its
    # own `copy_` (c10d ProcessGroupNCCL::allgather), which DeepSpeed ZeRO-3 of 2021 called once per
    # partitioned parameter (`_allgather_param`: `all_gather(partitions, ...)` on n narrow views).
    # Current stacks gather into one tensor (`all_gather_into_tensor`): 0. Set it to run that era.
    list_copy_overhead_s: float = 0.0
    # ZeRO-3 with full recompute: a parameter used again within this many parameters is kept
    # between the recomputed forward and the backward, not gathered again (DeepSpeed's
    # `stage3_max_reuse_distance` default, 1e9; steptime._regathered_share). PyTorch FSDP keeps a
    # unit's parameters through its recompute and backward (not re-checked here): inf for FSDP.
    zero3_reuse_params: float = 1e9
    # Optimizer step (AdamW, fp32 master): bytes per local parameter read + written
    # (master, grad, m, v read 16 B; master, m, v written 12 B; bf16 weight written 2 B).
    optimizer_bytes_per_param: float = 30.0
    # Low-precision GEMMs: ceiling as a fraction of the fp8 (fp4) dense peak, relative to the bf16
    # ceiling. Maximum achievable matmul TFLOP/s (stas00/ml-engineering MAMF table): H200 fp8
    # 73.4% of peak vs H100/H200 bf16 80.3% -> 0.91; B200 76.3% vs 77.6% -> 0.98. fp4: no public
    # kernel table in our data; the fp8 ratio is assumed (unverified). Per-tensor casts to fp8 add
    # `fp8_cast_bytes` per GEMM input element (read bf16 2 B, write fp8 1 B; Transformer Engine).
    fp8_gemm_eff: float = 0.91
    fp4_gemm_eff: float = 0.91
    fp8_cast_bytes: float = 3.0
    # MoE experts: grouped GEMMs of small experts run below a dense GEMM of the same size
    # (`grouped_gemm_eff` multiplies their efficiency), and the busiest expert rank receives
    # `moe_imbalance` x the mean tokens (dropless routing; token-drop with capacity factor c caps it
    # at c). Priors: 1.0 and 1.1 (unverified); fitted where MoE rows exist.
    grouped_gemm_eff: float = 1.0
    moe_imbalance: float = 1.1
    source: str = "vendor-neutral priors: Calculon a100_80g tables, FlashAttention-2, byte counts in perf_params.py"

    @property
    def kernel_ceiling(self) -> float:
        """The GEMM ceiling inference engines run at: the tuned-kernel maximum, never below what
        training reaches."""
        return max(self.gemm_kernel_max, self.gemm_eff_max)


LOW_PRECISION_EFFS = ("fp8_gemm_eff", "fp4_gemm_eff")  # priors that depend on the part's peaks

# Where each default comes from (the comments above), for the catalog's `[perf]` tables.
PRIOR_SOURCES: dict[str, str] = {
    "gemm_kernel_max": "vendor-neutral prior: A100 maximum achievable matmul, 86.9% of peak (MAMF table)",
    "mem_bw_eff": "vendor-neutral prior: Calculon mem1 efficiency for >= 100 MB transfers",
    "scaleup_eff": "vendor-neutral prior: Calculon systems/a100_80e.json NVLink tier (validated on Selene)",
    "scaleup_latency_s": "vendor-neutral prior: Calculon systems/a100_80e.json NVLink tier latency",
    "scaleout_eff": "vendor-neutral prior: Calculon systems/a100_80e.json InfiniBand tier",
    "scaleout_latency_s": "vendor-neutral prior: Calculon systems/a100_80e.json InfiniBand tier latency",
    "fp8_gemm_eff": "vendor-neutral prior: MAMF table, H200 fp8 73.4% vs bf16 80.3% of peak",
    "fp4_gemm_eff": "vendor-neutral prior: the fp8 ratio assumed (no public fp4 kernel table)",
    "grouped_gemm_eff": "vendor-neutral prior: grouped expert GEMMs at the dense GEMM efficiency",
    "moe_imbalance": "vendor-neutral prior: busiest expert rank 1.1 x the mean (dropless routing)",
}


def own_rate_missing(acc: Accelerator, dtype: str) -> bool:
    """True when `dtype` is fp8 or fp4 and the catalog lists `acc`'s dense peak for it no higher than
    its bf16 peak: no matrix rate of its own (TPU v5p and v6e, Gaudi 3, Trainium 1 list FP8 equal to BF16)."""
    peaks = acc.peak_tflops_dense
    return dtype in ("fp8", "fp4") and dtype in peaks and peaks[dtype].value <= peaks["bf16"].value


def low_precision_prior(acc: Accelerator, name: str) -> tuple[float, str]:
    """(value, source) of the prior for `name` ("fp8_gemm_eff" or "fp4_gemm_eff") on `acc`. The
    vendor-neutral ratio is the H200's FP8 kernels' share of their own, doubled peak; a part without
    a matrix rate of its own for the precision (`own_rate_missing`) runs those GEMMs on its bf16
    path, at the bf16 efficiency: 1 (the casts are still charged, steptime.py)."""
    dtype = name.split("_")[0]
    if own_rate_missing(acc, dtype):
        return 1.0, (f"rule: the catalog lists {acc.id}'s {dtype} peak no higher than its bf16 peak (no {dtype} "
                     f"matrix rate of its own), so {dtype} GEMMs run at the bf16 efficiency")
    return getattr(PerfParams(), name), PRIOR_SOURCES[name]


def neutral_priors(acc: Accelerator) -> PerfParams:
    """The vendor-neutral defaults as they apply to `acc`: its low-precision GEMM efficiencies follow
    its own peaks (`low_precision_prior`)."""
    return replace(PerfParams(), **{name: low_precision_prior(acc, name)[0] for name in LOW_PRECISION_EFFS})


def check_overrides(overrides: dict[str, float], where: str) -> None:
    """Raise ValueError naming `where`.<key> for a key that is not a `PerfParams` field or a value
    out of range: efficiencies in (0, 1], overlaps in [0, 1], overheads and latencies >= 0,
    `moe_imbalance` >= 1, other values > 0."""
    known = set(PerfParams.__dataclass_fields__) - {"source"}
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown performance parameter (known: {', '.join(sorted(known))})")
        may_be_zero = key.endswith(("_overlap", "_overhead_s", "_latency_s"))
        fraction = "_eff" in key or key.endswith("_overlap")
        if not (value > 0 or (may_be_zero and value == 0)) or (fraction and value > 1):
            expected = "a fraction in (0, 1]" if fraction else "a positive number"
            raise ValueError(f"{where}.{key}: expected {expected}, got {value}")
        if key == "moe_imbalance" and value < 1:
            raise ValueError(f"{where}.{key}: expected >= 1 (busiest expert rank / mean), got {value}")


def priors_origin(acc: Accelerator) -> str:
    """Where `acc`'s performance priors come from, in a few words: "fitted to public tables",
    "inherited from <sibling>" or "vendor-neutral defaults" (no `[perf]` table)."""
    if acc.perf is None:
        return "vendor-neutral defaults"
    return f"inherited from {acc.perf.inherited_from}" if acc.perf.inherited_from else "fitted to public tables"


def catalog_priors(acc: Accelerator, stack: str | None = None) -> PerfParams:
    """`acc`'s own `[perf]` table over the vendor-neutral defaults; its `source` says which. With
    `stack` (a software stack the table fitted separately, e.g. "fsdp"), that stack's parameters;
    a stack the table lacks keeps the reference stack's."""
    if acc.perf is None:
        return neutral_priors(acc)
    how = priors_origin(acc)
    values = {**acc.perf.values(), **{k: v.value for k, v in acc.perf.stacks.get(stack or "", {}).items()}}
    named = f", {stack} stack" if stack in acc.perf.stacks else ""
    return replace(PerfParams(), **values, source=f"catalog [perf] of {acc.id} ({how}{named})")


def perf_params_for(acc: Accelerator, *overrides: dict | None, stack: str | None = None) -> PerfParams:
    """Priors for `acc` (its catalog `[perf]` table, else the vendor-neutral defaults), with
    overrides applied in order (a calibration profile's `perf`, then a scenario's `efficiency.perf`)."""
    params = catalog_priors(acc, stack)
    for o in overrides:
        if o:
            params = replace(params, **o)
    return params


def weak_priors(acc: Accelerator, sibling: Accelerator | None = None) -> dict[str, str]:
    """Fitted `[perf]` values of the reference stack that the published rows barely inform (their
    catalog note says "weakly identified" or "not identified", calibrate.published.row_information):
    {field: note}. An inherited table's values are its `sibling`'s, whose notes say it."""
    table = (sibling if acc.perf is not None and acc.perf.inherited_from and sibling is not None else acc).perf
    if table is None:
        return {}
    return {name: v.note for name, v in table if getattr(v, "note", None)
            and v.note.startswith(("weakly identified", "not identified"))}
