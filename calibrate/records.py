"""Benchmark records: one JSON line per configuration in `RUNS/records.jsonl`, append-only.

A record holds the configuration, the machine and software, every timed window (steps, seconds,
energy, mean power, meter quality flags), the derived throughput and efficiency, and the status
(`ok`, `oom`, `error` with its message). Meter traces go beside it as CSV files in `traces/`.
Existing lines are never rewritten; a resumed sweep skips configurations whose id is present.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from calibrate.errors import MeasurementError

RECORDS_FILE = "records.jsonl"


class Window(BaseModel):
    """One synchronised timed window of `steps` training steps."""

    model_config = ConfigDict(extra="forbid")
    steps: int = Field(gt=0)
    duration_s: float = Field(gt=0)
    energy_j: float | None = None
    mean_power_w: float | None = None
    meter: str = "none"
    flags: list[str] = []
    estimated: bool = False
    trace_file: str | None = None
    details: dict[str, Any] = {}

    @property
    def step_time_s(self) -> float:
        return self.duration_s / self.steps


class RunRecord(BaseModel):
    """One configuration of a calibration sweep (see module docstring)."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    record_id: str
    status: Literal["ok", "oom", "error"]
    error: str | None = None
    created_utc: str
    config: dict[str, Any]
    parallel: Literal["single", "ddp", "fsdp"] = "single"
    world_size: int = 1
    device: dict[str, Any]
    software: dict[str, Any] = {}
    warmup_steps: int = 0
    windows: list[Window] = []
    model_flops_per_step: float | None = None
    hardware_flops_per_step: float | None = None
    tokens_per_step: int | None = None
    peak_flops: float | None = None  # per device, the dtype's dense peak (catalog or measured)
    peak_source: str | None = None
    collectives: list[dict[str, Any]] = []  # multi-GPU: bus bandwidth probe results
    meters: list[str] = []
    flags: list[str] = []

    # --- derived figures (median over windows) ------------------------------------------------
    def _median(self, values: list[float]) -> float | None:
        vals = sorted(v for v in values if v is not None)
        if not vals:
            return None
        mid = len(vals) // 2
        return vals[mid] if len(vals) % 2 else 0.5 * (vals[mid - 1] + vals[mid])

    @property
    def step_time_s(self) -> float | None:
        return self._median([w.step_time_s for w in self.windows])

    @property
    def step_time_spread(self) -> float | None:
        """(max - min) / median of the per-window step times."""
        times = [w.step_time_s for w in self.windows]
        med = self.step_time_s
        return (max(times) - min(times)) / med if times and med else None

    @property
    def energy_per_step_j(self) -> float | None:
        return self._median([w.energy_j / w.steps for w in self.windows if w.energy_j is not None])

    @property
    def mean_power_w(self) -> float | None:
        return self._median([w.mean_power_w for w in self.windows if w.mean_power_w is not None])

    @property
    def tokens_per_s(self) -> float | None:
        st = self.step_time_s
        return self.tokens_per_step * self.world_size / st if st and self.tokens_per_step else None

    @property
    def mfu(self) -> float | None:
        st = self.step_time_s
        if not (st and self.peak_flops and self.model_flops_per_step):
            return None
        return self.model_flops_per_step / (st * self.peak_flops)

    def summary(self) -> dict[str, Any]:
        """A flat row for tables and CSV."""
        e = self.energy_per_step_j
        return {"record_id": self.record_id, "name": self.config.get("name"), "status": self.status,
                "batch": self.config.get("batch_size"), "seq_len": self.config.get("seq_len"),
                "step_time_s": self.step_time_s, "spread": self.step_time_spread, "tokens_per_s": self.tokens_per_s,
                "mfu": self.mfu, "mean_power_w": self.mean_power_w, "energy_per_step_j": e,
                "j_per_token": e / self.tokens_per_step if e and self.tokens_per_step else None,
                "flags": ",".join(sorted(set(self.flags + [f for w in self.windows for f in w.flags]))),
                "error": self.error}


def record_id(config: dict[str, Any], device_name: str, parallel: str = "single", world_size: int = 1) -> str:
    """Stable id of a configuration on a device: the resume key."""
    blob = json.dumps({"c": config, "d": device_name, "p": parallel, "w": world_size}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_records(runs: str | Path) -> list[RunRecord]:
    """Every record in a runs folder (or a records.jsonl file); MeasurementError names the bad line."""
    path = Path(runs)
    if path.is_dir():
        path = path / RECORDS_FILE
    if not path.exists():
        raise MeasurementError(f"{path}: no records (run `trainsim calibrate run` first)")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(RunRecord.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise MeasurementError(f"{path}:{n}: malformed record ({loc}: {first['msg']})") from None
    return out


def append_record(runs: str | Path, record: RunRecord) -> Path:
    """Append one record (never rewrites existing lines)."""
    folder = Path(runs)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RECORDS_FILE
    with path.open("a", encoding="utf-8") as f:
        f.write(record.model_dump_json() + "\n")
    return path


def done_ids(runs: str | Path) -> set[str]:
    """Ids already recorded (any status) in a runs folder; empty when the folder is new."""
    path = Path(runs) / RECORDS_FILE
    return {r.record_id for r in load_records(runs)} if path.exists() else set()
