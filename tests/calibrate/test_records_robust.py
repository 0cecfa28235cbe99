"""Calibration records under hostile input (issue 13 item 6): concurrent runs on one folder,
duplicate ids, a crash mid-write, impossible or undecodable records, and files that are not files."""

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calibrate import records as rec_mod
from calibrate.errors import MeasurementError
from calibrate.records import (
    PARTIAL_SUFFIX,
    RECORDS_FILE,
    RunRecord,
    Window,
    append_record,
    done_ids,
    load_records,
)
from calibrate.runs_lock import release_runs_lock, runs_lock
from calibrate.workload import SIZES
from simulator.cli import app

REPO = Path(__file__).resolve().parents[2]
PARTIAL = RECORDS_FILE + PARTIAL_SUFFIX


def make_record(i: int, **window) -> RunRecord:
    """A small valid record (tiny model, batch 1, seq 32 + i) with id `id<i>`."""
    cfg = replace(SIZES["tiny"], name=f"tiny-b1-s{32 + i}", batch_size=1, seq_len=32 + i, dtype="fp32").to_dict()
    w = {"steps": 2, "duration_s": 0.5 + 0.1 * i, "energy_j": 10.0, "mean_power_w": 20.0} | window
    return RunRecord(record_id=f"id{i}", status="ok", created_utc="2026-01-01T00:00:00+00:00", config=cfg,
                     device={"name": "cpu-test", "kind": "cpu", "catalog_id": None, "mem_bw_gb_per_s": 10.0},
                     windows=[Window(**w)], tokens_per_step=32 + i, model_flops_per_step=1e9, peak_flops=1e12)


def line(record: RunRecord) -> bytes:
    return (record.model_dump_json() + "\n").encode()


@pytest.fixture
def runs(tmp_path):
    """A runs folder with three good records (written as bytes: no lock taken by this process)."""
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / RECORDS_FILE).write_bytes(b"".join(line(make_record(i)) for i in range(3)))
    yield folder
    release_runs_lock(folder)


def assert_one_line(exc_info, *parts: str) -> None:
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for part in parts:
        assert part in msg, msg


def with_field(record: RunRecord, path: tuple, value) -> bytes:
    """The record's JSON line with one field replaced (json.dumps writes NaN and Infinity)."""
    obj = json.loads(record.model_dump_json())
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return (json.dumps(obj) + "\n").encode()


# --- 1. two runs on one folder ------------------------------------------------------------------
SWEEP = textwrap.dedent('''
    """One `run_sweep` over 4 configs with a fake benchmark; waits for RELEASE before its 2nd config."""
    import sys, time
    from pathlib import Path
    from calibrate import bench
    from calibrate.errors import MeasurementError
    from calibrate.meters import NullMeter
    from calibrate.records import RunRecord, Window, record_id

    runs, release = Path(sys.argv[1]), Path(sys.argv[2])
    calls = []

    def fake_run_config(config, settings, device, meter, info, peak, runs_dir=None):
        if calls:
            deadline = time.monotonic() + 60
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        calls.append(config.name)
        cfg = config.to_dict()
        return RunRecord(record_id=record_id(cfg, info["name"]), status="ok", created_utc=str(time.time()),
                         config=cfg, device=info, windows=[Window(steps=2, duration_s=time.perf_counter() % 1 + 0.1)],
                         tokens_per_step=config.tokens_per_step)

    bench.run_config = fake_run_config
    bench.resolve_device = lambda name: "cpu"
    bench.describe_device = lambda device: {"kind": "cpu", "name": "cpu-test", "catalog_id": None}
    bench.peak_for = lambda info, dtype: (1e12, "test")
    configs = bench.sweep_configs(["tiny"], [1, 2], [32, 64], dtype="fp32")
    try:
        out = bench.run_sweep(configs, runs, bench.BenchSettings(device="cpu", meter="none"), meter=NullMeter(),
                              progress=False)
    except MeasurementError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"recorded {len(out)}")
''')


def start_sweep(script: Path, runs: Path, release: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), str(runs), str(release)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def python(*args: str) -> subprocess.CompletedProcess:
    """Run this Python on `args` in the repository, output captured (the exit code is the caller's)."""
    return subprocess.run([sys.executable, *args], cwd=REPO, text=True, capture_output=True, timeout=60,
                          check=False)


def test_second_concurrent_run_fails_at_once_and_records_stay_one_per_config(tmp_path):
    """Run A holds the folder (1 of 4 configs written, waiting); run B on the same folder fails at
    once with one line; A finishes: 4 records, one per config. A resumed run afterwards adds none."""
    script, runs, release = tmp_path / "sweep.py", tmp_path / "runs", tmp_path / "release"
    script.write_text(SWEEP)
    a = start_sweep(script, runs, release)
    try:
        deadline = time.monotonic() + 60
        while not ((runs / RECORDS_FILE).exists() and (runs / RECORDS_FILE).read_bytes().count(b"\n") >= 1):
            assert a.poll() is None and time.monotonic() < deadline, a.communicate()
            time.sleep(0.02)
        b = python(str(script), str(runs), str(release))
        assert (runs / RECORDS_FILE).read_bytes().count(b"\n") == 1  # B wrote nothing
    finally:
        release.touch()
        out_a, err_a = a.communicate(timeout=60)
    assert b.returncode == 1, (b.stdout, b.stderr)
    msg = b.stderr.strip()
    assert "\n" not in msg and "Traceback" not in b.stderr
    assert str(runs.resolve()) in msg and "another calibration run holds this runs folder" in msg
    assert f"pid {a.pid}" in msg
    assert a.returncode == 0 and "recorded 4" in out_a, err_a
    records = load_records(runs)
    assert len(records) == 4 and len({r.record_id for r in records}) == 4
    assert (runs / RECORDS_FILE).read_bytes().count(b"\n") == 4
    # A's lock went with A: a resumed run gets the folder and finds nothing to do.
    again = python(str(script), str(runs), str(release))
    assert again.returncode == 0 and "recorded 0" in again.stdout, again.stderr
    assert (runs / RECORDS_FILE).read_bytes().count(b"\n") == 4


def test_lock_held_by_another_process_refuses_append_and_resume(runs):
    """While another process holds the folder's lock, this one can neither resume nor append."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from calibrate.runs_lock import hold_runs_lock
        hold_runs_lock({str(runs)!r})
        print("held", flush=True)
        sys.stdin.read()
    """)], cwd=REPO, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = (runs / RECORDS_FILE).read_bytes()
        t0 = time.monotonic()
        with pytest.raises(MeasurementError) as info:
            done_ids(runs)
        assert_one_line(info, str(runs.resolve()), "another calibration run", f"pid {holder.pid}")
        with pytest.raises(MeasurementError, match="another calibration run"):
            append_record(runs, make_record(7))
        with pytest.raises(MeasurementError, match="another calibration run"), runs_lock(runs):
            pass
        assert time.monotonic() - t0 < 5  # non-blocking
        assert (runs / RECORDS_FILE).read_bytes() == before
        assert len(load_records(runs)) == 3  # plain reading (fit) needs no lock
    finally:
        holder.communicate("", timeout=30)
    assert done_ids(runs) == {"id0", "id1", "id2"}  # free again once the holder is gone


def test_runs_lock_is_released_after_with_block(runs):
    with runs_lock(runs):
        assert (runs / ".lock").read_text().strip() == str(os.getpid())
    # released: another process can take it now
    r = python("-c", f"from calibrate.records import done_ids; print(sorted(done_ids({str(runs)!r})))")
    assert r.returncode == 0 and "'id0', 'id1', 'id2'" in r.stdout, r.stderr


# --- dedupe by record id --------------------------------------------------------------------------
def test_repeated_identical_record_is_counted_once(runs, caplog):
    path = runs / RECORDS_FILE
    path.write_bytes(path.read_bytes() + line(make_record(1)) + line(make_record(0)))
    with caplog.at_level(logging.WARNING, logger="calibrate.records"):
        records = load_records(runs)
    assert [r.record_id for r in records] == ["id0", "id1", "id2"]
    assert "2 line(s) repeat an earlier record" in caplog.text
    assert done_ids(runs) == {"id0", "id1", "id2"}


def test_one_id_with_two_different_records_is_an_error(runs):
    path = runs / RECORDS_FILE
    other = make_record(1).model_copy(update={"created_utc": "2026-02-02T00:00:00+00:00"})
    path.write_bytes(path.read_bytes() + line(other))
    with pytest.raises(MeasurementError) as info:
        load_records(runs)
    assert_one_line(info, str(path), "lines 2 and 4", "id1")


# --- a crash mid-write ----------------------------------------------------------------------------
def truncated(runs: Path) -> tuple[bytes, bytes]:
    """Cut a 4th record mid-line (no newline): returns (the good bytes, the fragment)."""
    path = runs / RECORDS_FILE
    good = path.read_bytes()
    fragment = line(make_record(3))[:57]
    path.write_bytes(good + fragment)
    return good, fragment


def test_truncated_last_line_is_skipped_by_plain_loading(runs, caplog):
    good, fragment = truncated(runs)
    with caplog.at_level(logging.WARNING, logger="calibrate.records"):
        records = load_records(runs)
    assert [r.record_id for r in records] == ["id0", "id1", "id2"]
    assert f"{runs / RECORDS_FILE}:4: incomplete last line" in caplog.text
    assert (runs / RECORDS_FILE).read_bytes() == good + fragment  # fit leaves the file as it is
    assert not (runs / PARTIAL).exists()


def test_truncated_last_line_is_set_aside_on_resume(runs, caplog):
    good, fragment = truncated(runs)
    with caplog.at_level(logging.WARNING, logger="calibrate.records"):
        assert done_ids(runs) == {"id0", "id1", "id2"}
    assert f"{runs / RECORDS_FILE}:4: incomplete last line" in caplog.text and PARTIAL in caplog.text
    assert (runs / RECORDS_FILE).read_bytes() == good
    assert (runs / PARTIAL).read_bytes() == fragment + b"\n"
    append_record(runs, make_record(3))
    assert [r.record_id for r in load_records(runs)] == ["id0", "id1", "id2", "id3"]


def test_append_after_a_crash_does_not_glue_onto_the_fragment(runs):
    """A run that appends without resuming (distributed, no --resume) sets the fragment aside first."""
    good, fragment = truncated(runs)
    append_record(runs, make_record(5))
    assert (runs / RECORDS_FILE).read_bytes() == good + line(make_record(5))
    assert (runs / PARTIAL).read_bytes() == fragment + b"\n"
    # a second crash's fragment is appended to the .partial file, not over the first
    (runs / RECORDS_FILE).write_bytes(good + b'{"schema_version": 1, "rec')
    append_record(runs, make_record(6))
    assert (runs / PARTIAL).read_bytes() == fragment + b'\n{"schema_version": 1, "rec\n'
    assert [r.record_id for r in load_records(runs)] == ["id0", "id1", "id2", "id6"]


def test_complete_last_line_without_newline_is_kept(runs):
    path = runs / RECORDS_FILE
    path.write_bytes(path.read_bytes() + line(make_record(3)).rstrip(b"\n"))
    assert len(load_records(runs)) == 4
    append_record(runs, make_record(4))
    assert [r.record_id for r in load_records(runs)] == ["id0", "id1", "id2", "id3", "id4"]
    assert not (runs / PARTIAL).exists()


def test_broken_line_before_the_last_is_an_error(runs):
    path = runs / RECORDS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1][:40] + b"\n" + lines[2])
    before = path.read_bytes()
    with pytest.raises(MeasurementError) as info:
        load_records(runs)
    assert_one_line(info, f"{path}:2: malformed record", "Invalid JSON")
    with pytest.raises(MeasurementError, match=r"records.jsonl:2: malformed record"):
        done_ids(runs)
    assert path.read_bytes() == before and not (runs / PARTIAL).exists()


def test_invalid_last_line_with_newline_is_an_error_not_a_fragment(runs):
    path = runs / RECORDS_FILE
    path.write_bytes(path.read_bytes() + b'{"schema_version": 1, "rec\n')
    with pytest.raises(MeasurementError, match=r"records.jsonl:4: malformed record \(Invalid JSON"):
        done_ids(runs)
    assert not (runs / PARTIAL).exists()


# --- impossible and undecodable records -----------------------------------------------------------
@pytest.mark.parametrize("field,value,expected", [
    (("windows", 0, "energy_j"), float("nan"), "windows.0.energy_j: Input should be a finite number, got nan"),
    (("windows", 0, "energy_j"), -5.0, "windows.0.energy_j: Input should be greater than or equal to 0"),
    (("windows", 0, "duration_s"), float("inf"), "windows.0.duration_s: Input should be a finite number, got inf"),
    (("windows", 0, "duration_s"), 1e400, "windows.0.duration_s: Input should be a finite number"),
    (("windows", 0, "mean_power_w"), -1.0, "windows.0.mean_power_w: Input should be greater than or equal to 0"),
    (("windows", 0, "steps"), 0, "windows.0.steps: Input should be greater than 0"),
    (("config", "seq_len"), 0, "config.seq_len: expected a positive integer, got 0"),
    (("config", "batch_size"), -2, "config.batch_size: expected a positive integer, got -2"),
    (("tokens_per_step",), 0, "tokens_per_step: Input should be greater than 0"),
    (("world_size",), 0, "world_size: Input should be greater than 0"),
    (("peak_flops",), float("-inf"), "peak_flops: Input should be a finite number"),
    (("device", "mem_bw_gb_per_s"), float("nan"), "device.mem_bw_gb_per_s: expected a finite non-negative number"),
])
def test_impossible_record_is_refused_naming_line_and_field(runs, field, value, expected):
    path = runs / RECORDS_FILE
    path.write_bytes(path.read_bytes() + with_field(make_record(3), field, value) + line(make_record(4)))
    with pytest.raises(MeasurementError) as info:
        load_records(runs)
    assert_one_line(info, f"{path}:4: malformed record", expected)


def test_missing_config_key_is_named(runs):
    obj = json.loads(make_record(3).model_dump_json())
    del obj["config"]["seq_len"]
    (runs / RECORDS_FILE).write_text(json.dumps(obj) + "\n")
    with pytest.raises(MeasurementError, match=r"records.jsonl:1: malformed record \(config.seq_len: missing\)"):
        load_records(runs)


def test_impossible_window_cannot_be_built():
    with pytest.raises(ValueError, match="finite"):
        Window(steps=1, duration_s=1.0, energy_j=float("nan"))
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Window(steps=1, duration_s=1.0, energy_j=-1.0)


def test_non_utf8_record_names_line_and_field(runs):
    path = runs / RECORDS_FILE
    bad = line(make_record(3)).replace(b'"cpu-test"', b'"cpu-\xff\xfetest"', 1)
    path.write_bytes(path.read_bytes() + bad + line(make_record(4)))
    with pytest.raises(MeasurementError) as info:
        load_records(runs)
    assert_one_line(info, f"{path}:4: not UTF-8 text (byte 0xff at column", "in device.name")


def test_whole_file_not_utf8(tmp_path):
    path = tmp_path / RECORDS_FILE
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n")
    with pytest.raises(MeasurementError) as info:
        load_records(path)
    assert_one_line(info, f"{path}:1: not UTF-8 text (byte 0x89 at column 1")


def test_cli_fit_on_impossible_records_is_one_line_and_writes_no_profile(runs):
    path = runs / RECORDS_FILE
    path.write_bytes(path.read_bytes() + with_field(make_record(3), ("windows", 0, "energy_j"), float("nan")))
    prof = runs.parent / "p.toml"
    r = CliRunner().invoke(app, ["calibrate", "fit", str(runs), "-o", str(prof), "--bootstrap", "0"])
    assert r.exit_code == 1, r.output
    assert "records.jsonl:4: malformed record (windows.0.energy_j" in r.stderr
    assert "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1
    assert not prof.exists()


def test_bom_at_start_is_accepted(tmp_path):
    path = tmp_path / RECORDS_FILE
    path.write_bytes(b"\xef\xbb\xbf" + line(make_record(0)) + line(make_record(1)))
    assert [r.record_id for r in load_records(path)] == ["id0", "id1"]


# --- files that are not records files -------------------------------------------------------------
def refused_quickly(target) -> MeasurementError:
    """`load_records(target)` in a thread: it must end within 5 s with a MeasurementError."""
    box: dict = {}

    def go():
        try:
            load_records(target)
        except MeasurementError as exc:
            box["err"] = exc

    t = threading.Thread(target=go, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(5)
    assert not t.is_alive(), f"load_records({target}) blocked"
    assert time.monotonic() - t0 < 5 and "err" in box
    assert "\n" not in str(box["err"])
    return box["err"]


def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / RECORDS_FILE)
    err = refused_quickly(tmp_path)
    assert str(err) == f"{tmp_path / RECORDS_FILE}: cannot read records (a FIFO, expected a file)"


def test_fifo_is_refused_by_resume_and_append(tmp_path):
    os.mkfifo(tmp_path / RECORDS_FILE)
    try:
        with pytest.raises(MeasurementError, match="a FIFO"):
            done_ids(tmp_path)
        with pytest.raises(MeasurementError, match="a FIFO"):
            append_record(tmp_path, make_record(0))
    finally:
        release_runs_lock(tmp_path)


def test_dev_zero_is_refused(tmp_path):
    err = refused_quickly("/dev/zero")
    assert str(err) == "/dev/zero: cannot read records (a character device, expected a file)"


def test_folder_named_records_jsonl_is_refused(tmp_path):
    (tmp_path / RECORDS_FILE).mkdir()
    err = refused_quickly(tmp_path)
    assert str(err) == f"{tmp_path / RECORDS_FILE}: cannot read records (a folder, expected a file)"


def test_file_over_the_limit_is_refused_without_reading(tmp_path):
    path = tmp_path / RECORDS_FILE
    with path.open("wb") as f:
        f.truncate(rec_mod.MAX_RECORDS_BYTES + 1)  # sparse: nothing is written
    err = refused_quickly(path)
    assert str(err) == f"{path}: records larger than 256 MiB, the most this reads"


def test_growing_file_is_read_up_to_the_limit(tmp_path, monkeypatch):
    """The read itself stops at the limit + 1 byte (a file that grows after fstat)."""
    path = tmp_path / RECORDS_FILE
    path.write_bytes(line(make_record(0)) * 3)
    monkeypatch.setattr(rec_mod, "MAX_RECORDS_BYTES", len(line(make_record(0))) * 2)
    real_fstat = os.fstat
    monkeypatch.setattr(rec_mod.os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 0, *real_fstat(fd)[7:])))
    with pytest.raises(MeasurementError, match="records larger than"):
        load_records(path)
