"""Bounded reads of user-named files (hardware_catalog/files.py) through every reader that takes a
path: FIFOs, devices, folders, oversized, binary and deeply nested inputs are one-line refusals,
quickly and without reading what they name."""

from __future__ import annotations

import os
import time

import pytest

from calibrate.bench import load_sweep
from calibrate.errors import MeasurementError
from hardware_catalog.errors import CatalogError, TrainsimError
from hardware_catalog.files import loads_toml, read_user_text
from hardware_catalog.loader import parse_file
from simulator.footprint.carbon_profile import load_profile_csv
from simulator.system.efficiency import load_profile
from simulator.errors import DataFileError, ScenarioError
from simulator.workloads.project import load_project
from simulator.validation.public_rows import load_public_rows
from simulator.scenario import load_scenario

READERS = [
    (load_scenario, ScenarioError, "scenario file"),
    (load_project, ScenarioError, "project file"),
    (load_profile_csv, ScenarioError, "carbon profile"),
    (load_profile, ScenarioError, "calibration profile"),
    (parse_file, CatalogError, "catalog file"),
    (load_sweep, MeasurementError, "sweep file"),
    (lambda p: load_public_rows(p), DataFileError, "rows file"),
]


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("reader, error, what", READERS)
def test_fifo_device_and_folder_are_refused_at_once(reader, error, what, fifo, tmp_path):
    for path, reason in ((fifo, "a FIFO, expected a file"), ("/dev/zero", "a character device, expected a file"),
                         (tmp_path, "a folder, expected a file"),
                         (tmp_path / "missing.toml", "No such file or directory")):
        t0 = time.perf_counter()
        with pytest.raises(error) as info:
            reader(path)
        assert time.perf_counter() - t0 < 5  # a FIFO with no writer would block a plain open()
        msg = str(info.value)
        assert f"cannot read {what} ({reason})" in msg and str(path) in msg and "\n" not in msg


@pytest.mark.parametrize("reader, error, what", READERS)
def test_binary_file_is_refused_as_not_utf8(reader, error, what, tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(error, match=r"not UTF-8 text \(invalid continuation byte at byte 11\)"):
        reader(path)


def test_size_limit(tmp_path):
    path = tmp_path / "big.toml"
    path.write_bytes(b"#" * 2049)
    with pytest.raises(ScenarioError, match=r"big.toml: scenario file larger than 0.00195312 MiB"):
        read_user_text(path, "scenario file", ScenarioError, max_bytes=2048)
    assert read_user_text(path, "scenario file", ScenarioError, max_bytes=4096) == "#" * 2049


def test_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbfa = 1\n")
    assert read_user_text(path, "x", ScenarioError) == "a = 1\n"


@pytest.mark.parametrize("text, message", [
    ("a = " + "[" * 50_000 + "]" * 50_000, "nested too deep"),
    ("a = " + "9" * 5000, "Exceeds the limit (4300 digits)"),
    ("a = [1,", "Invalid value"),
])
def test_toml_that_breaks_the_parser_is_one_line(text, message):
    with pytest.raises(TrainsimError) as info:
        loads_toml(text, "x.toml", ScenarioError)
    assert str(info.value).startswith("x.toml: not valid TOML (") and message in str(info.value)


def test_scenario_file_with_deep_arrays_is_one_line(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("[model]\nlayers = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ScenarioError, match="deep.toml: not valid TOML .arrays or tables nested too deep"):
        load_scenario(path)
