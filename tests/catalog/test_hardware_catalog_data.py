"""The shipped catalog: it loads, the ids the outside relies on resolve, and its numbers match the
sourced reference tables (../shared/reference/hardware.csv and grid.csv)."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest

from hardware_catalog import load_catalog
from hardware_catalog.schema import Accelerator, Region

# Copies of ../shared/reference/{hardware,grid}.csv, so the cross-checks run in CI too.
REFERENCE = Path(__file__).resolve().parents[1] / "data"

DESIGN_ACCELERATORS = [
    "nvidia-v100-sxm2-32gb", "nvidia-a100-sxm-40gb", "nvidia-a100-sxm-80gb", "nvidia-h100-sxm-80gb",
    "nvidia-h100-pcie-80gb", "nvidia-h800-sxm-80gb", "nvidia-h200-sxm-141gb", "nvidia-b200",
    "nvidia-gb200", "amd-mi250x", "amd-mi300x", "amd-mi325x", "amd-mi355x", "google-tpu-v3",
    "google-tpu-v4", "google-tpu-v5e", "google-tpu-v5p", "google-tpu-v6e", "intel-gaudi3",
    "aws-trainium2",
]
EXTRA_ACCELERATORS = [
    "nvidia-b300", "nvidia-gb300", "nvidia-l40s", "google-tpu7x", "intel-gaudi2", "aws-trainium1",
]
COUNTRIES = [
    "US", "CA", "FR", "DE", "GB", "SE", "NO", "FI", "NL", "IE", "CN", "IN", "JP", "SG", "TW", "KR",
    "AU", "BE", "ES", "IT", "PL", "CH", "BR", "IS",
]
NAMED_REGIONS = ["WORLD", "us-virginia", "us-oregon", "us-iowa", "us-texas", "ca-quebec"]


@pytest.fixture(scope="module")
def cat():
    return load_catalog(use_env=False)


def _sourced(node, path=""):
    """Yield (path, dict) for every Sourced value in a model_dump tree."""
    if isinstance(node, dict):
        if "value" in node and "source" in node:
            yield path, node
            return
        for k, v in node.items():
            yield from _sourced(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _sourced(v, f"{path}[{i}]")


def test_packaged_catalog_loads(cat):
    assert len(cat.accelerators) == 26
    assert len(cat.regions) >= 24 + 44 + len(NAMED_REGIONS)
    assert all(isinstance(a, Accelerator) for a in cat.accelerators.values())
    assert all(isinstance(r, Region) for r in cat.regions.values())


@pytest.mark.parametrize("acc_id", DESIGN_ACCELERATORS + EXTRA_ACCELERATORS)
def test_accelerator_ids_resolve(cat, acc_id):
    acc = cat.accelerator(acc_id)
    assert acc.id == acc_id
    assert cat.origins[f"accelerator:{acc_id}"] == f"hardware_catalog/accelerators/{acc_id}.toml"


@pytest.mark.parametrize("region_id", COUNTRIES + NAMED_REGIONS)
def test_region_ids_resolve(cat, region_id):
    assert cat.region(region_id).id == region_id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a100", "nvidia-a100-sxm-80gb"), ("A100-80GB", "nvidia-a100-sxm-80gb"),
        ("a100-40gb", "nvidia-a100-sxm-40gb"), ("v100", "nvidia-v100-sxm2-32gb"),
        ("H100", "nvidia-h100-sxm-80gb"), ("h100-pcie", "nvidia-h100-pcie-80gb"), ("h200", "nvidia-h200-sxm-141gb"),
        ("mi300x", "amd-mi300x"), ("tpu-v5p", "google-tpu-v5p"), ("trillium", "google-tpu-v6e"),
        ("ironwood", "google-tpu7x"), ("gaudi3", "intel-gaudi3"), ("trn2", "aws-trainium2"),
    ],
)
def test_accelerator_aliases(cat, name, expected):
    assert cat.accelerator(name).id == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("usa", "US"), ("FRA", "FR"), ("United Kingdom", "GB"), ("fr", "FR"), ("world", "WORLD"),
        ("aws-us-east-1", "us-virginia"), ("aws-us-west-2", "us-oregon"), ("aws-eu-west-3", "FR"),
        ("us-east4", "gcp-us-east4"), ("europe-west9", "gcp-europe-west9"), ("SE3", "SE-SE3"),
        ("quebec", "ca-quebec"),
    ],
)
def test_region_aliases(cat, name, expected):
    assert cat.region(name).id == expected


@pytest.mark.parametrize(
    ("acc_id", "field", "expected"),
    [
        ("nvidia-h100-sxm-80gb", "peak_tflops_dense.bf16", 989.4),
        ("nvidia-a100-sxm-40gb", "peak_tflops_dense.bf16", 312),
        ("nvidia-a100-sxm-80gb", "memory.hbm_tb_per_s", 2.039),
        ("nvidia-v100-sxm2-32gb", "peak_tflops_dense.fp16", 125),
        ("nvidia-b200", "peak_tflops_dense.fp4", 9000),
        ("nvidia-gb200", "scale_up.domain_devices", 72),
        ("amd-mi300x", "memory.hbm_gb", 192),
        ("amd-mi300x", "peak_tflops_dense.bf16", 1307.4),
        ("amd-mi355x", "power.tdp_w", 1400),
        ("google-tpu-v5p", "peak_tflops_dense.bf16", 459),
        ("google-tpu-v5p", "scale_up.domain_devices", 6144),  # the largest slice (ICI); the pod is 8960
        ("google-tpu-v4", "power.tdp_w", 192),
        ("google-tpu-v6e", "prices.on_demand_usd_per_hour", 2.7),
        ("intel-gaudi3", "peak_tflops_dense.bf16", 1835),
        ("aws-trainium2", "peak_tflops_dense.fp8", 1299),
    ],
)
def test_accelerator_spot_checks(cat, acc_id, field, expected):
    node = cat.accelerator(acc_id)
    for part in field.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    assert node.value == pytest.approx(expected)


@pytest.mark.parametrize(
    ("region_id", "expected"),
    [
        ("WORLD", 0.445), ("FR", 0.056), ("US", 0.3695), ("SE", 0.0407), ("IS", 0.0277),
        ("us-oregon", 0.0792), ("us-virginia", 0.3231), ("us-iowa", 0.4127), ("us-texas", 0.3029),
        ("ca-quebec", 0.0055), ("us-virginia-egrid2016", 0.3691), ("gcp-europe-north2", 0.0027),
    ],
)
def test_region_spot_checks(cat, region_id, expected):
    assert cat.region(region_id).carbon_intensity_kg_per_kwh.value == pytest.approx(expected)


def test_peak_flops_units(cat):
    h100 = cat.accelerator("nvidia-h100-sxm-80gb")
    assert h100.peak_flops("bf16") == pytest.approx(989.4e12)
    assert h100.peak_flops("fp16") == pytest.approx(989.4e12)  # falls back to bf16
    assert cat.accelerator("v100").peak_flops("fp16") == pytest.approx(125e12)


def test_every_sourced_value_has_a_source(cat):
    items = [("accelerator", a) for a in cat.accelerators.values()] + [("region", r) for r in cat.regions.values()]
    checked = 0
    for kind, item in items:
        for path, sv in _sourced(item.model_dump()):
            where = f"{kind} {item.id}: {path}"
            assert sv["source"].strip(), f"{where} has an empty source"
            assert len(sv["source"].strip()) >= 10, f"{where}: source too vague: {sv['source']!r}"
            assert math.isfinite(sv["value"]) and sv["value"] > 0, where
            checked += 1
    assert checked > 26 * 15 + 96 * 3


def test_estimates_are_marked_unverified(cat):
    """A value whose source says it is an estimate, prior or proxy must carry verified = false."""
    pattern = re.compile(r"^(engineering (estimate|prior)|proxy|conservative prior|prior)\b", re.I)
    for a in cat.accelerators.values():
        for path, sv in _sourced(a.model_dump()):
            if pattern.match(sv["source"]):
                assert sv["verified"] is False, f"{a.id}: {path} is an estimate but not marked verified = false"


def test_fp8_not_below_bf16(cat):
    for a in cat.accelerators.values():
        peaks = a.peak_tflops_dense
        if "fp8" in peaks:
            assert peaks["fp8"].value >= peaks["bf16"].value, a.id
        if "fp4" in peaks:
            assert peaks["fp4"].value >= peaks["fp8"].value, a.id


def test_physical_sanity(cat):
    for a in cat.accelerators.values():
        assert a.power.idle_w.value < a.power.tdp_w.value, a.id
        assert a.efficiency.mfu is None, a.id  # not read by any model: not shipped
        assert 0.5 <= a.efficiency.hfu_at_tdp.value <= 1.0, a.id
        assert a.embodied.lifetime_years.value == 5, a.id
        assert a.embodied.kgco2e_per_device is not None, a.id
        assert 2015 <= a.launch_year.value <= 2026, a.id
        assert a.scale_up.domain_devices.value >= 1, a.id
        assert a.node.devices_per_node.value >= 1, a.id
        assert a.kind == ("tpu" if a.vendor == "Google" else "gpu" if a.vendor in ("NVIDIA", "AMD") else "npu")
    for r in cat.regions.values():
        assert 0 < r.carbon_intensity_kg_per_kwh.value < 1.2, r.id
        assert 1.0 <= r.pue.value <= 2.0, r.id
        assert r.carbon_intensity_kg_per_kwh.as_of, f"{r.id}: grid figure without a year"


def test_pue_choice_by_region_kind(cat):
    for r in cat.regions.values():
        if r.id.startswith("gcp-"):
            assert r.kind == "cloud" and r.pue.value == pytest.approx(1.10), r.id
        elif r.kind in ("country", "subnational"):
            assert r.pue.value == pytest.approx(1.25), r.id


def test_names_unique_case_insensitive(cat):
    for table in (cat.accelerators, cat.regions):
        owner = {}
        for item in table.values():
            for name in {item.id.lower(), *(a.lower() for a in item.aliases)}:
                assert owner.setdefault(name, item.id) == item.id, f"'{name}' names {owner[name]} and {item.id}"


# --- cross-checks against the reference tables (copies in tests/data) ------

HW_ROWS = {
    "NVIDIA V100 SXM2 32GB": "nvidia-v100-sxm2-32gb", "NVIDIA A100 SXM 40GB": "nvidia-a100-sxm-40gb",
    "NVIDIA A100 SXM 80GB": "nvidia-a100-sxm-80gb", "NVIDIA H100 SXM 80GB": "nvidia-h100-sxm-80gb",
    "NVIDIA H100 PCIe 80GB": "nvidia-h100-pcie-80gb", "NVIDIA H800 SXM 80GB": "nvidia-h800-sxm-80gb",
    "NVIDIA H200 SXM 141GB": "nvidia-h200-sxm-141gb", "NVIDIA B200 (HGX)": "nvidia-b200",
    "NVIDIA GB200 (per Blackwell GPU)": "nvidia-gb200", "NVIDIA B300 (HGX, Blackwell Ultra)": "nvidia-b300",
    "NVIDIA GB300 (per Blackwell Ultra GPU)": "nvidia-gb300", "NVIDIA L40S": "nvidia-l40s",
    "AMD Instinct MI250X": "amd-mi250x", "AMD Instinct MI300X": "amd-mi300x", "AMD Instinct MI325X": "amd-mi325x",
    "AMD Instinct MI355X": "amd-mi355x", "Google TPU v3": "google-tpu-v3", "Google TPU v4": "google-tpu-v4",
    "Google TPU v5e": "google-tpu-v5e", "Google TPU v5p": "google-tpu-v5p",
    "Google TPU v6e (Trillium)": "google-tpu-v6e", "Google TPU7x (Ironwood)": "google-tpu7x",
    "Intel Gaudi 2": "intel-gaudi2", "Intel Gaudi 3": "intel-gaudi3", "AWS Trainium (Trn1)": "aws-trainium1",
    "AWS Trainium2 (Trn2)": "aws-trainium2",
}
HW_COLUMNS = {
    "year": "launch_year", "fp64_dense_tflops": "peak_tflops_dense.fp64", "tf32_dense_tflops": "peak_tflops_dense.tf32",
    "bf16_dense_tflops": "peak_tflops_dense.bf16", "fp8_dense_tflops": "peak_tflops_dense.fp8",
    "int8_dense_tops": "peak_tflops_dense.int8", "fp4_dense_tflops": "peak_tflops_dense.fp4",
    "hbm_gb": "memory.hbm_gb", "hbm_tbps": "memory.hbm_tb_per_s", "tdp_w": "power.tdp_w",
    "scaleup_gbyte_s_bidir_per_chip": "scale_up.gb_per_s_bidir", "scaleup_domain": "scale_up.domain_devices",
    "scaleout_gbit_s_per_chip": "scale_out.gbit_per_s", "price_on_demand_usd_per_hour": "prices.on_demand_usd_per_hour",
    "price_reserved_or_market_usd_per_hour": "prices.reserved_usd_per_hour",
}
# Deliberate, documented departures from a CSV cell: (row, column) -> catalog value.
HW_DEPARTURES = {
    # BLOOM's 150 kg excludes the server; the catalog adds 2500 kg / 8 (see the file's note).
    ("NVIDIA A100 SXM 80GB", "embodied_kgco2e"): 462.5,
    # The CSV's scale-up domain for TPU v5p is the pod (8960); one job's ICI domain is its slice, at most
    # 6144 chips (the same source, GTPU_V5P in hardware-sources.md); beyond it slices are joined by DCN.
    ("Google TPU v5p", "scaleup_domain"): 6144,
}


def _reference(name: str) -> list[dict[str, str]]:
    path = REFERENCE / name
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _get(model, dotted: str):
    node = model
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part)
        if node is None:
            return None
    return node.value


def test_accelerators_match_hardware_csv(cat):
    rows = _reference("hardware.csv")
    assert {r["accelerator"] for r in rows} == set(HW_ROWS)
    for row in rows:
        acc = cat.accelerator(HW_ROWS[row["accelerator"]])
        for col, field in [*HW_COLUMNS.items(), ("embodied_kgco2e", "embodied.kgco2e_per_device")]:
            cell = row[col].strip()
            if not cell:
                continue
            want = HW_DEPARTURES.get((row["accelerator"], col), float(cell))
            got = _get(acc, field)
            assert got is not None, f"{acc.id}: {field} missing although hardware.csv has {cell}"
            assert got == pytest.approx(want), f"{acc.id}: {field} = {got}, hardware.csv {col} = {cell}"


def _grid_row_id(name: str) -> str:
    fixed = {
        "World (IEA)": "WORLD", "World (Ember)": "WORLD-ember", "World (codecarbon fallback)": "WORLD-codecarbon",
        "Sweden Bidding Zone 3 (Southern Sweden) (SE3)": "SE-SE3", "Norway Bidding Zone 1 (Oslo) (NO1)": "NO-NO1",
        "Finland (FI)": "FI-entsoe", "Canada-Quebec (province, codecarbon method)": "ca-quebec-codecarbon",
    }
    if name in fixed:
        return fixed[name]
    if m := re.match(r"GCP (\S+) \(", name):
        return f"gcp-{m.group(1)}"
    if m := re.match(r"US-(\w+) \(state\)$", name):
        return f"us-{m.group(1).lower()}-egrid2016"
    return name  # a country: resolved through its English-name alias


def test_regions_cover_every_grid_csv_row(cat):
    rows = _reference("grid.csv")
    assert len(rows) == 82
    for row in rows:
        region = cat.region(_grid_row_id(row["region"]))
        assert region.carbon_intensity_kg_per_kwh.value == pytest.approx(float(row["kgco2e_per_kwh"])), row["region"]
        assert region.carbon_intensity_kg_per_kwh.as_of == row["year"], row["region"]


@pytest.mark.parametrize(
    ("named", "gcp"),
    [("us-virginia", "gcp-us-east4"), ("us-oregon", "gcp-us-west1"), ("us-iowa", "gcp-us-central1"),
     ("us-texas", "gcp-us-south1"), ("ca-quebec", "gcp-northamerica-northeast1")],
)
def test_named_regions_use_google_2024_proxy(cat, named, gcp):
    a, b = cat.region(named), cat.region(gcp)
    assert a.carbon_intensity_kg_per_kwh.value == b.carbon_intensity_kg_per_kwh.value
    assert a.kind == "subnational"
    assert "proxy" in (a.carbon_intensity_kg_per_kwh.note or "")
