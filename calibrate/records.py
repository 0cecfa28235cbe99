"""Benchmark records: one JSON line per configuration in `RUNS/records.jsonl`, append-only.

A record holds the configuration, the machine and software, every timed window (steps, seconds,
energy, mean power, meter quality flags), the derived throughput and efficiency, and the status
(`ok`, `oom`, `error` with its message). Meter traces go beside it as CSV files in `traces/`.
Existing lines are never rewritten; a resumed sweep skips configurations whose id is present.

Robustness (issue 13, item 6):
* One run per folder: `done_ids` (a run's resume step) and `append_record` take the folder's run
  lock (`calibrate.runs_lock`) and keep it for the rest of the process; a second run on the
  folder fails at once with one line naming the folder.
* Loading dedupes by `record_id`: a line repeating an earlier record is counted once; two
  different records with one id are an error naming the file, both lines and the id.
* An incomplete last line (no newline, not JSON: a crash mid-write) is skipped with a warning by
  `load_records`; before a run appends, it is moved to `records.jsonl.partial`. Any other bad
  line is an error naming the file, the line and the field.
* Records are physical: finite numbers, positive durations, counts and FLOPs, non-negative
  energy and power, a valid workload config. The file is read without blocking and only when it
  is a regular file of at most `MAX_RECORDS_BYTES`.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from calibrate.errors import MeasurementError
from calibrate.runs_lock import hold_runs_lock
from hardware_catalog.files import open_regular, read_user_bytes

log = logging.getLogger(__name__)

RECORDS_FILE = "records.jsonl"
PARTIAL_SUFFIX = ".partial"  # RUNS/records.jsonl.partial: incomplete last lines set aside
MAX_RECORDS_BYTES = 256 * 2**20  # 256 MiB, far above any sweep (a record is a few kB)


class Window(BaseModel):
    """One synchronised timed window of `steps` training steps."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    steps: int = Field(gt=0)
    duration_s: float = Field(gt=0)
    energy_j: float | None = Field(None, ge=0)
    mean_power_w: float | None = Field(None, ge=0)
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

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    schema_version: Literal[1] = 1
    record_id: str = Field(min_length=1)
    status: Literal["ok", "oom", "error"]
    error: str | None = None
    created_utc: str
    config: dict[str, Any]
    parallel: Literal["single", "ddp", "fsdp"] = "single"
    world_size: int = Field(1, gt=0)
    device: dict[str, Any]
    software: dict[str, Any] = {}
    warmup_steps: int = Field(0, ge=0)
    windows: list[Window] = []
    model_flops_per_step: float | None = Field(None, gt=0)
    hardware_flops_per_step: float | None = Field(None, gt=0)
    tokens_per_step: int | None = Field(None, gt=0)
    peak_flops: float | None = Field(None, gt=0)  # per device, the dtype's dense peak (catalog or measured)
    peak_source: str | None = None
    collectives: list[dict[str, Any]] = []  # multi-GPU: bus bandwidth probe results
    meters: list[str] = []
    flags: list[str] = []

    @model_validator(mode="after")
    def _physical(self) -> RunRecord:
        """A valid workload config (positive sizes) and finite, non-negative device figures."""
        _check_config(self.config)
        for key, v in self.device.items():
            if isinstance(v, float) and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"device.{key}: expected a finite non-negative number, got {v!r}")
        return self

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


def _check_config(config: dict[str, Any]) -> None:
    """ValueError naming the field unless `config` is a valid `WorkloadConfig` (what the fit rebuilds)."""
    from calibrate.workload import WorkloadConfig

    try:
        WorkloadConfig.from_dict(config)
    except ValueError as exc:
        raise ValueError(str(exc).replace("workload.", "config.", 1)) from None
    except TypeError:  # a required key is missing
        missing = [f.name for f in dataclasses.fields(WorkloadConfig)
                   if f.default is dataclasses.MISSING and f.name not in config]
        raise ValueError(f"config.{missing[0]}: missing" if missing else "config: not a workload config") from None


def record_id(config: dict[str, Any], device_name: str, parallel: str = "single", world_size: int = 1) -> str:
    """Stable id of a configuration on a device: the resume key."""
    blob = json.dumps({"c": config, "d": device_name, "p": parallel, "w": world_size}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --- bounded reading ------------------------------------------------------------------------------
def _open_regular(path: Path) -> int:
    """A read-only fd of `path`, opened without blocking; MeasurementError unless a regular file."""
    if not os.path.lexists(path):
        raise MeasurementError(f"{path}: no records (run `trainsim calibrate run` first)")
    return open_regular(path, "records", MeasurementError)


def _read_bounded(path: Path) -> bytes:
    """The bytes of a regular records file, at most MAX_RECORDS_BYTES (MeasurementError beyond)."""
    if not os.path.lexists(path):
        raise MeasurementError(f"{path}: no records (run `trainsim calibrate run` first)")
    return read_user_bytes(path, "records", MeasurementError, MAX_RECORDS_BYTES)


# --- parsing --------------------------------------------------------------------------------------
def _leaves(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, item) of every key and leaf value of parsed JSON."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            sub = f"{path}.{k}" if path else str(k)
            yield sub, k
            yield from _leaves(v, sub)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}.{i}" if path else str(i))
    else:
        yield path, obj


def _undecodable_field(raw: bytes) -> str:
    """', in FIELD' for the first JSON key or string holding bytes that are not UTF-8 ('' if unknown)."""
    try:
        obj = json.loads(raw.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return ""
    bad = next((p for p, v in _leaves(obj) if isinstance(v, str) and any("\udc80" <= c <= "\udcff" for c in v)), "")
    return f", in {bad.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')}" if bad else ""


def _line_text(path: Path, n: int, raw: bytes) -> str:
    """Line `n` decoded as UTF-8 (a leading byte-order mark dropped); MeasurementError otherwise."""
    try:
        return raw.decode("utf-8-sig" if n == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        raise MeasurementError(f"{path}:{n}: not UTF-8 text (byte 0x{byte:02x} at column {exc.start + 1}"
                               f"{_undecodable_field(raw)})") from None


def _first_error(exc: ValidationError) -> str:
    """The first validation error as 'field: what was wrong, got VALUE'."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if loc and isinstance(value, int | float | str | None) and not isinstance(value, bool):
        msg += f", got {value!r:.60}"
    return f"{loc}: {msg}" if loc else msg


def _parse_line(path: Path, n: int, raw: bytes) -> RunRecord | None:
    """The record on line `n` (None when blank); MeasurementError names the file, line and field."""
    text = _line_text(path, n, raw)
    if not text.strip():
        return None
    try:
        return RunRecord.model_validate_json(text)
    except ValidationError as exc:
        raise MeasurementError(f"{path}:{n}: malformed record ({_first_error(exc)})") from None


def _is_fragment(tail: bytes) -> bool:
    """Whether an unterminated last line is the remains of an interrupted write (not UTF-8 JSON)."""
    try:
        json.loads(tail.removeprefix(codecs.BOM_UTF8).decode("utf-8"))
    except RecursionError:
        return False  # complete but nested too deep: `_parse_line` reports it
    except ValueError:  # UnicodeDecodeError too
        return True
    return False


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """The newline-terminated lines of `data` and what follows the last newline."""
    cut = data.rfind(b"\n") + 1
    return data[:cut].split(b"\n")[:-1], data[cut:]


def _dedupe(path: Path, numbered: list[tuple[int, RunRecord]]) -> list[RunRecord]:
    """Records with repeated lines counted once; MeasurementError when one id holds two records."""
    first: dict[str, tuple[int, RunRecord]] = {}
    repeats = 0
    for n, rec in numbered:
        if rec.record_id not in first:
            first[rec.record_id] = (n, rec)
        elif first[rec.record_id][1].model_dump() == rec.model_dump():
            repeats += 1
        else:
            raise MeasurementError(f"{path}: lines {first[rec.record_id][0]} and {n} hold different records with "
                                   f"one record id {rec.record_id} (two runs on one folder?); keep one of them")
    if repeats:
        log.warning("%s: %d line(s) repeat an earlier record; counted once", path, repeats)
    return [rec for _, rec in first.values()]


def _parse(path: Path, data: bytes) -> tuple[list[RunRecord], int | None]:
    """The records in `data` and the line number of an incomplete last line (None when there is none)."""
    lines, tail = _split(data)
    numbered = [(n, r) for n, raw in enumerate(lines, start=1) if (r := _parse_line(path, n, raw)) is not None]
    tail_line = len(lines) + 1
    if tail.strip() and _is_fragment(tail):
        return _dedupe(path, numbered), tail_line
    if (r := _parse_line(path, tail_line, tail)) is not None:
        numbered.append((tail_line, r))
    return _dedupe(path, numbered), None


def _records_path(runs: str | Path) -> Path:
    """records.jsonl of a runs folder, or the file itself."""
    path = Path(runs)
    return path / RECORDS_FILE if path.is_dir() else path


def load_records(runs: str | Path) -> list[RunRecord]:
    """Every record in a runs folder (or a records.jsonl file), each id once; MeasurementError names
    the bad line. An incomplete last line is skipped with a warning (the file is left as it is)."""
    path = _records_path(runs)
    records, tail_line = _parse(path, _read_bounded(path))
    if tail_line is not None:
        log.warning("%s:%d: incomplete last line (a crash mid-write?) skipped; the next "
                    "`trainsim calibrate run` on the folder moves it to %s%s",
                    path, tail_line, path.name, PARTIAL_SUFFIX)
    return records


# --- writing --------------------------------------------------------------------------------------
def _ends_with_newline(path: Path) -> bool:
    """Whether the records file is empty or ends with a newline (read without blocking)."""
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        return size == 0 or os.pread(fd, 1, size - 1) == b"\n"
    finally:
        os.close(fd)


def _end_cleanly(path: Path) -> None:
    """Before appending: move an incomplete last line to `records.jsonl.partial` (appended) and cut
    it from the records file, or end a complete last line with its newline. Other lines stay."""
    data = _read_bounded(path)
    lines, tail = _split(data)
    if not tail.strip():
        return
    if not _is_fragment(tail):
        _append_bytes(path, b"\n")
        return
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    _append_bytes(partial, tail + b"\n")
    os.truncate(path, len(data) - len(tail))
    log.warning("%s:%d: incomplete last line (a crash mid-write?) moved to %s; the other lines are kept",
                path, len(lines) + 1, partial)


def _append_bytes(path: Path, data: bytes) -> None:
    """Append and flush to disk."""
    with path.open("ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def append_record(runs: str | Path, record: RunRecord) -> Path:
    """Append one record (never rewrites existing lines) under the folder's run lock."""
    folder = Path(runs)
    hold_runs_lock(folder)
    path = folder / RECORDS_FILE
    if path.exists() and not _ends_with_newline(path):
        _end_cleanly(path)
    _append_bytes(path, (record.model_dump_json() + "\n").encode("utf-8"))
    return path


def done_ids(runs: str | Path) -> set[str]:
    """Ids already recorded (any status) in a runs folder; empty when the folder is new.

    The resume step of a run: it takes the folder's run lock for the rest of the process (a second
    run fails here, at once) and, once every line has been checked, sets an incomplete last line aside."""
    folder = Path(runs)
    hold_runs_lock(folder)
    path = folder / RECORDS_FILE
    if not path.exists():
        return set()
    records, tail_line = _parse(path, _read_bounded(path))
    if tail_line is not None:
        _end_cleanly(path)
    return {r.record_id for r in records}
