"""Reading and cleaning the published throughput CSV (`data/public_throughput_rows.csv`).

One responsibility: the file and its cells. The CSV is a byte copy of
`../shared/validation/public_throughput/rows.csv` (722 rows transcribed from llm-foundry, NeMo,
Megatron-LM, MaxText, MLPerf, Primus, MegaScale, Llama 3, ...); every cell is text. This module
reads it (`DataFileError` naming the file on anything unreadable or a missing column), parses the
numbers, `key=value` notes and precision a row prints, and maps the CSV's free-text accelerator to
a catalog id and a family. A row whose accelerator the catalog lacks keeps its family name (the
row is then unusable: `simulator.validation.public_rows_build`).
"""

from __future__ import annotations

import io
import re
from importlib import resources
from pathlib import Path

import pandas as pd

from hardware_catalog import Catalog
from hardware_catalog.files import read_user_text
from simulator.errors import DataFileError

DATA_FILE = "data/public_throughput_rows.csv"
REQUIRED_COLUMNS = (
    "source", "table", "model", "layers", "d_model", "heads", "kv_heads", "ffn_dim", "vocab", "seq_len",
    "experts", "experts_per_token", "accelerator", "devices", "precision", "tp", "pp", "cp", "ep", "dp",
    "zero_or_fsdp", "microbatch", "global_batch_seqs", "recompute", "framework", "tokens_per_s_per_device",
    "tflops_per_device", "mfu_pct", "notes",
)

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


def accelerator_of(text: str, catalog: Catalog) -> tuple[str | None, str]:
    """(catalog id or None, family) for the CSV's free-text accelerator."""
    acc = ACCELERATORS.get(text)
    if acc is None or acc not in catalog.accelerators:
        return None, NOT_IN_CATALOG_FAMILY.get(text, text)
    return acc, FAMILY[acc]


# --- cells -----------------------------------------------------------------------------------
def cell_num(text: str) -> float | None:
    """Leading number of a cell: '153.5 (derived)' -> 153.5, '1,671' -> 1671, '' -> None."""
    m = re.match(r"\s*(\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?)", text or "")
    return float(m.group(1).replace(",", "")) if m else None


def cell_int(text: str) -> int | None:
    """`cell_num` rounded to an int (None for an empty or non-numeric cell)."""
    v = cell_num(text)
    return None if v is None else int(round(v))


def note_int(r: dict, key: str) -> int | None:
    """The integer of `key=N` in the row's notes, or None."""
    m = re.search(rf"\b{key}=(-?\d+)", r["notes"])
    return int(m.group(1)) if m else None


def precision_of(text: str, assumptions: list[str]) -> str:
    """"fp8" | "bf16" | "fp16" from the precision cell; bf16 (noted in `assumptions`) when none is named."""
    m = re.search(r"fp8|bf16|fp16", text)
    if m is None:
        assumptions.append("precision not stated: bf16 assumed")
    return m.group(0) if m else "bf16"


# --- the file --------------------------------------------------------------------------------
def read_rows(path: str | Path | None) -> pd.DataFrame:
    """The CSV as text cells (packaged copy unless `path`); DataFileError on a malformed file."""
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
