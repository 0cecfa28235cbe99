"""Strict pydantic schema of the hardware catalog.

Every number in the catalog is a `Sourced` value: the figure, where it comes from, and whether it
could be verified against that source. Unknown keys are rejected everywhere, so a typo in a user's
overlay file is an error naming the field rather than a silently ignored setting.

Units are in the field names (`tdp_w`, `hbm_tb_per_s`, `gb_per_s_bidir`, `kgco2e_per_device`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DType = Literal["fp64", "tf32", "bf16", "fp16", "fp8", "fp4", "int8"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Sourced(_Strict):
    """A catalog number with its provenance.

    `verified = false` marks a figure that could not be checked against its source (an estimate,
    an engineering prior, or a secondary quote); the CLI and dashboard show it as such.
    """

    value: float = Field(gt=0, allow_inf_nan=False)
    source: str = Field(min_length=3)
    note: str | None = None
    verified: bool = True
    as_of: str | None = None  # date of a price or grid figure, e.g. "2025-02"


class Memory(_Strict):
    hbm_gb: Sourced
    hbm_tb_per_s: Sourced


class Power(_Strict):
    tdp_w: Sourced
    idle_w: Sourced

    @model_validator(mode="after")
    def _idle_below_tdp(self) -> Power:
        if self.idle_w.value >= self.tdp_w.value:
            raise ValueError(f"power.idle_w ({self.idle_w.value}) must be below power.tdp_w ({self.tdp_w.value})")
        return self


class ScaleUp(_Strict):
    """Scale-up fabric (NVLink, Infinity Fabric, ICI): bandwidth per chip, both directions summed.

    `topology`: "switch" (NVSwitch: any group talks at full per-chip bandwidth, a ring of n ranks
    takes n - 1 steps), "mesh" (point-to-point links, one to each other chip of the domain: AMD
    Instinct's Infinity Fabric, "7 links of 128 GB/s forming a fully connected 8-GPU node" in ROCm's
    mi300.md, Gaudi's on-chip RoCE ports; a group of n chips of the domain has only the n - 1 links
    between its members, (n - 1) / (domain - 1) of the per-chip figure) or "torus2d" / "torus3d" (TPU
    ICI: a group of n chips is laid out over the torus axes and its collectives run as rings along
    each axis at once, n**(1/d) - 1 steps per axis; jax-ml/scaling-book, "How to think about TPUs",
    sec. on collectives).
    """

    name: str
    gb_per_s_bidir: Sourced | None = None
    domain_devices: Sourced
    topology: Literal["switch", "mesh", "torus2d", "torus3d"] = "switch"


class ScaleOut(_Strict):
    """Scale-out network (InfiniBand/RoCE/EFA/DCN): backend NIC bandwidth per device."""

    gbit_per_s: Sourced | None = None


class Network(_Strict):
    """Power of the scale-out fabric (simulator/footprint/infrastructure.py): a non-blocking fat tree
    of `switch_ports`-port switches at `port_gbit_per_s` per port, with optics on every switch port.
    The shared default is `hardware_catalog/infrastructure.toml`; an accelerator's own `[network]`
    replaces it. NICs and the server-side optics are powered by the server: they are in
    `node.host_power_w_per_device`, not here."""

    name: str
    switch_ports: Sourced
    port_gbit_per_s: Sourced
    switch_w: Sourced  # one switch without optics (passive cables), typical
    optics_w_per_port: Sourced  # transceiver power per switch port

    @field_validator("switch_ports")
    @classmethod
    def _whole_even_radix(cls, v: Sourced) -> Sourced:
        k = v.value
        if k < 4 or k != int(k) or int(k) % 2:
            raise ValueError(f"a fat tree needs a whole, even number of switch ports >= 4, got {k:g}")
        return v


class Storage(_Strict):
    """High-speed (training) storage: capacity provisioned per device and its power per PB."""

    tb_per_device: Sourced
    w_per_pb: Sourced


class Infrastructure(_Strict):
    """The shared network and storage defaults (`hardware_catalog/infrastructure.toml`)."""

    schema_version: Literal[1] = 1
    override: bool = False  # a user's file replacing the packaged defaults says so
    network: Network
    storage: Storage


class Node(_Strict):
    """The server the devices sit in: how many per node and the host's power share per device."""

    devices_per_node: Sourced
    host_power_w_per_device: Sourced


class Prices(_Strict):
    on_demand_usd_per_hour: Sourced | None = None
    reserved_usd_per_hour: Sourced | None = None
    purchase_usd: Sourced | None = None


class Embodied(_Strict):
    kgco2e_per_device: Sourced | None = None
    lifetime_years: Sourced


class EfficiencyPriors(_Strict):
    """Power-model prior until a calibration profile replaces it.

    `hfu_at_tdp`: hardware-FLOPs utilisation at which the device draws its TDP; the linear power
    model P = idle + (tdp - idle) * hfu / hfu_at_tdp follows from it (energy roofline, Choi et al.
    IPDPS 2013, with only the FLOP term).
    `mfu`: accepted so that older catalog files still load, and not read: the step time (and so the
    MFU) comes from the performance model and its `[perf]` priors.
    """

    hfu_at_tdp: Sourced
    mfu: Sourced | None = None

    @model_validator(mode="after")
    def _fractions(self) -> EfficiencyPriors:
        for name in ("mfu", "hfu_at_tdp"):
            field = getattr(self, name)
            if field is not None and field.value > 1:
                raise ValueError(f"efficiency.{name} is a fraction of peak; expected a value in (0, 1], got {field.value}")
        return self


PERF_FRACTIONS = ("gemm_eff_max", "gemm_kernel_max", "flash_attn_eff", "mem_bw_eff", "scaleup_eff", "scaleout_eff", "fp8_gemm_eff",
                  "fp4_gemm_eff", "grouped_gemm_eff")


class PerfPriors(_Strict):
    """Performance-model priors of one accelerator (`simulator.system.perf_params.PerfParams` fields).

    Fitted to published throughput tables (`trainsim calibrate fit --published ...`; `method` says
    how), or `inherited` from the nearest measured sibling when no table covers the accelerator.
    Fields left out keep the vendor-neutral defaults of `PerfParams`.
    """

    method: str = Field(min_length=3)
    inherited_from: str | None = None
    gemm_eff_max: Sourced | None = None
    gemm_half_gflop: Sourced | None = None
    gemm_kernel_max: Sourced | None = None
    flash_attn_eff: Sourced | None = None
    mem_bw_eff: Sourced | None = None
    scaleup_eff: Sourced | None = None
    scaleup_latency_s: Sourced | None = None
    scaleout_eff: Sourced | None = None
    scaleout_latency_s: Sourced | None = None
    layer_overhead_s: Sourced | None = None
    fp8_gemm_eff: Sourced | None = None
    fp4_gemm_eff: Sourced | None = None
    grouped_gemm_eff: Sourced | None = None
    moe_imbalance: Sourced | None = None
    elementwise_bytes: Sourced | None = None
    # Software stacks other than the reference one the fields above describe (e.g. "fsdp" for
    # PyTorch FSDP stacks such as llm-foundry): the parameters fitted separately for each.
    stacks: dict[str, dict[str, Sourced]] = {}

    @model_validator(mode="after")
    def _fractions(self) -> PerfPriors:
        known = {k for k, f in type(self).model_fields.items() if k not in ("method", "inherited_from", "stacks")}
        for stack, values in self.stacks.items():
            for key, v in values.items():
                if key not in known:
                    raise ValueError(f"perf.stacks.{stack}.{key}: unknown performance parameter")
                if key in PERF_FRACTIONS and v.value > 1:
                    raise ValueError(f"perf.stacks.{stack}.{key} is a fraction; expected a value in (0, 1], got {v.value}")
        for name in PERF_FRACTIONS:
            v = getattr(self, name)
            if v is not None and v.value > 1:
                raise ValueError(f"perf.{name} is a fraction; expected a value in (0, 1], got {v.value}")
        if self.moe_imbalance is not None and self.moe_imbalance.value < 1:
            raise ValueError(f"perf.moe_imbalance: expected >= 1 (busiest expert / mean), got {self.moe_imbalance.value}")
        return self

    def values(self) -> dict[str, float]:
        """The set fields (the reference stack) as {PerfParams field: value}."""
        return {k: v.value for k, v in self if isinstance(v, Sourced)}


class Accelerator(_Strict):
    """One accelerator SKU. Peaks are dense (no 2:4 sparsity), per chip."""

    schema_version: Literal[1] = 1
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    vendor: str
    kind: Literal["gpu", "tpu", "npu"]
    aliases: list[str] = []
    override: bool = False
    launch_year: Sourced
    peak_tflops_dense: dict[DType, Sourced]
    memory: Memory
    power: Power
    scale_up: ScaleUp
    scale_out: ScaleOut
    node: Node
    prices: Prices
    embodied: Embodied
    efficiency: EfficiencyPriors
    perf: PerfPriors | None = None
    network: Network | None = None  # this family's scale-out fabric; default: infrastructure.toml's

    @model_validator(mode="after")
    def _needs_bf16(self) -> Accelerator:
        if "bf16" not in self.peak_tflops_dense:
            raise ValueError("peak_tflops_dense.bf16 is required (the 16-bit dense tensor peak)")
        return self

    def peak_key(self, dtype: str) -> str:
        """The `peak_tflops_dense` entry `dtype` reads: its own, fp16 falling back to bf16."""
        return "bf16" if dtype == "fp16" and "fp16" not in self.peak_tflops_dense else dtype

    def peak_caveat(self, dtype: str) -> str | None:
        """What the catalog says of the dense peak `dtype` reads when it is not a plain sourced figure
        (its note: derived, substituted; or unverified), as a phrase naming the part; else None."""
        key = self.peak_key(dtype)
        peak = self.peak_tflops_dense.get(key)
        if peak is None or (not peak.note and peak.verified):
            return None
        words = "; ".join(w for w in (peak.note, "" if peak.verified else "unverified") if w)
        return f"{self.id}'s {key} dense peak, {peak.value:g} TFLOP/s (catalog note: {words})"

    def peak_flops(self, dtype: str) -> float:
        """Dense peak in FLOP/s for `dtype`; fp16 falls back to bf16 (same tensor rate)."""
        key = self.peak_key(dtype)
        if key not in self.peak_tflops_dense:
            from hardware_catalog.errors import CatalogError

            have = ", ".join(sorted(self.peak_tflops_dense))
            raise CatalogError(f"{self.id}: no dense peak for precision '{dtype}' (catalog has: {have})")
        return self.peak_tflops_dense[key].value * 1e12


class Region(_Strict):
    """A grid region: location-based carbon intensity, datacenter overheads, electricity price."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")
    name: str
    kind: Literal["world", "country", "subnational", "cloud"]
    aliases: list[str] = []
    override: bool = False
    carbon_intensity_kg_per_kwh: Sourced
    pue: Sourced
    wue_l_per_kwh: Sourced
    electricity_usd_per_kwh: Sourced | None = None


class RegionFile(_Strict):
    """A TOML file holding several regions as `[[region]]` tables."""

    schema_version: Literal[1] = 1
    region: list[Region] = Field(min_length=1)
