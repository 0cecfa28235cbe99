"""Fuzzing every example scenario (issue 13): hostile values, missing and unknown keys, odd strings
and broken encodings, through the library as a script or the CLI would call it.

Accepted outcomes: an estimate whose figures are finite and inside physics (HFU <= 1, power at most
the device's TDP, wall time at or above the compute floor), or a refusal that is one line naming a
field. Anything else (a traceback, a case slower than 5 s twice in a row; FUZZ_SLOW_S) fails: cases take at
most about 0.3 s on the 2-core VM, so the ceiling catches a pathological input, not a busy machine. Cases per
run: FUZZ_EXAMPLES (default 2,000 dict mutations and 500 byte mutations; run once with 20,000 when the schema
changes).
"""

from __future__ import annotations

import copy
import math
import os
import time
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware_catalog import load_catalog
from hardware_catalog.errors import TrainsimError
from simulator import estimate, load_scenario, scenario_from_dict
from simulator.scenario import Scenario

ROOT = Path(__file__).parents[1]
EXAMPLES = {p.name: tomllib.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.toml"))
            if not p.name.startswith("project")}
CAT = load_catalog()
N = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
SECTIONS = tuple(Scenario.model_fields)
SLOW_S = float(os.environ.get("FUZZ_SLOW_S", "5.0"))
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy warnings must not leak either

HOSTILE = [float("inf"), float("-inf"), float("nan"), 0, -1, 0.0, -1e-300, 1e-300, 1e308, 10**400, 2**63,
           True, False, "64", "", "\x00", ":x: [bold red]boom[/]", "../../etc/passwd", "/dev/zero", "x" * 10_000,
           "caf\u00e9 \ud7ff", [], [1, 2], {}, {"a": 1}, 1e30, 3.7, 1e4, 7, 128, 100_000_000]


def _keys(data: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in data.items():
        out.append(prefix + (k,))
        if isinstance(v, dict):
            out += _keys(v, prefix + (k,))
    return out


def _schema_keys() -> list[tuple]:
    """Every (section, field) of the scenario schema, so fuzzing reaches keys no example sets."""
    out = []
    for name, f in Scenario.model_fields.items():
        sub = getattr(f.annotation, "model_fields", None)
        if sub is None:  # Optional[Section]
            sub = next((getattr(a, "model_fields", None) for a in getattr(f.annotation, "__args__", ())
                        if getattr(a, "model_fields", None)), None)
        out += [(name, k) for k in (sub or {})] if sub else [(name,)]
    return out


SCHEMA_KEYS = _schema_keys()


def _set(data: dict, path: tuple, value) -> dict:
    node = data
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[path[-1]] = value
    return data


def _delete(data: dict, path: tuple) -> dict:
    node = data
    for part in path[:-1]:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    if isinstance(node, dict):
        node.pop(path[-1], None)
    return data


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    data = copy.deepcopy(EXAMPLES[name])
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "set", "schema", "schema", "delete", "unknown"]))
        if kind == "set":
            path = draw(st.sampled_from(_keys(data) or [("name",)]))
            value = draw(st.sampled_from(HOSTILE) | st.floats() | st.integers() | st.text(max_size=40))
            _set(data, path, copy.deepcopy(value))
        elif kind == "schema":
            _set(data, draw(st.sampled_from(SCHEMA_KEYS)), copy.deepcopy(draw(st.sampled_from(HOSTILE))))
        elif kind == "delete":
            _delete(data, draw(st.sampled_from(_keys(data) or [("name",)])))
        else:
            section = draw(st.sampled_from(SECTIONS))
            if isinstance(data.get(section), dict):
                data[section][draw(st.text(min_size=1, max_size=12))] = 1
    return name, data


def _physics(values: dict, acc_id: str) -> None:
    """Finite figures; HFU in (0, 1]; power at most TDP; wall time at or above the compute floor."""
    bad = [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
    assert not bad, bad
    if "hfu" in values:
        assert 0 <= values["hfu"] <= 1 + 1e-9, values["hfu"]
        tdp = CAT.accelerator(acc_id).power.tdp_w.value
        assert values["power_w_per_device"] <= tdp * (1 + 1e-9)
        if values.get("tokens_per_s", 0) > 0 and values.get("hardware_tflops_per_device", 0) > 0:
            peak = CAT.accelerator(acc_id).peak_flops(values["precision"])
            floor_s = values["tokens"] * values["hardware_tflops_per_device"] * 1e12 / values["tokens_per_s"] / peak
            assert values["wall_clock_days"] * 86400 >= floor_s * (1 - 1e-6)


def _one_line_naming_a_field(msg: str, origin: str) -> None:
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    assert msg.startswith(origin) or any(s in msg for s in SECTIONS + ("parallelism", "model")), msg


def _run(origin: str, load) -> tuple[str, float]:
    """(outcome, seconds) of one case: an estimate inside physics or a one-line refusal."""
    t0 = time.perf_counter()
    try:
        est = estimate(load(), CAT)
    except TrainsimError as exc:
        _one_line_naming_a_field(str(exc), origin)
        outcome = "refused"
    else:
        if "accelerator" in est.values:
            _physics(est.values, est.values["accelerator"])
        outcome = "estimated"
    return outcome, time.perf_counter() - t0


def _check(origin: str, load) -> str:
    outcome, took_s = _run(origin, load)
    if took_s >= SLOW_S:  # a loaded machine can stall one call (a CI run saw it): slow only if slow twice
        outcome, took_s = _run(origin, load)
    assert took_s < SLOW_S, f"{origin}: {took_s:.1f} s, twice"
    return outcome


OUTCOMES: dict[str, int] = {}


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(case=mutated())
def test_mutated_scenarios_estimate_within_physics_or_refuse_in_one_line(case):
    name, data = case
    outcome = _check(name, lambda: scenario_from_dict(data, name))
    OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1


@settings(max_examples=max(N // 4, 50), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(name=st.sampled_from(sorted(EXAMPLES)), at=st.floats(0, 1), junk=st.binary(min_size=1, max_size=12),
       cut=st.booleans())
def test_byte_mutated_files_refuse_in_one_line(tmp_path_factory, name, at, junk, cut):
    raw = (ROOT / "examples" / name).read_bytes()
    i = int(at * len(raw))
    path = tmp_path_factory.getbasetemp() / name
    path.write_bytes(raw[:i] if cut else raw[:i] + junk + raw[i:])
    _check(str(path), lambda: load_scenario(path))


def test_fuzz_outcomes_are_reported():
    """Runs after the fuzz test in this file: it must have estimated some cases and refused others."""
    if not OUTCOMES:
        pytest.skip("the fuzz test did not run in this session")
    print(f"\nfuzz outcomes over {sum(OUTCOMES.values())} cases: {OUTCOMES}")
    assert OUTCOMES.get("estimated", 0) > 0 and OUTCOMES.get("refused", 0) > 0
