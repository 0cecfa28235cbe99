"""Hourly grid-carbon profiles: loading and validation, CO2e of a run by start time, the shipped
(synthetic) example and `trainsim carbon`."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from simulator import estimate, load_scenario
from simulator.footprint.carbon_profile import (
    EXAMPLE_FILE,
    EXAMPLE_MEAN_KG_PER_KWH,
    HourlyProfile,
    co2e_for_estimate,
    example_comments,
    example_profile_path,
    load_example,
    load_profile_csv,
    parse_profile_csv,
    run_co2e_t,
    start_time_sweep,
    sweep_for_estimate,
    synthetic_example,
)
from simulator.cli import app
from simulator.errors import ScenarioError

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "llama3-70b-h100.toml"
T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
RAMP = np.arange(1, 25) / 100.0  # 0.01 .. 0.24 kg/kWh for hours 00..23, sum 3.00
runner = CliRunner()


def profile(values, first=T0) -> HourlyProfile:
    return HourlyProfile(first, np.asarray(values, dtype=float))


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def csv_text(values, first="2024-03-01T00:00:00Z", comments=("a comment",)) -> str:
    t0 = datetime.fromisoformat(first)
    lines = [f"# {c}" for c in comments] + ["timestamp,carbon_intensity_kg_per_kwh"]
    lines += [f"{(t0 + timedelta(hours=i)).isoformat().replace('+00:00', 'Z')},{v}" for i, v in enumerate(values)]
    return "\n".join(lines) + "\n"


def direct_co2e(c, s: float, power, hours: float) -> float:
    """Reference: integrate power x intensity piece by piece (a Python loop, for checking only)."""
    n = len(c)
    pts = {s, s + hours}
    pts |= {math.floor(s) + j for j in range(1, math.ceil(hours) + 2) if s < math.floor(s) + j < s + hours}
    pts |= {s + k for k in range(1, math.ceil(hours))}
    pts = sorted(pts)
    total = 0.0
    for a, b in zip(pts, pts[1:]):
        mid = (a + b) / 2
        p = power if np.ndim(power) == 0 else power[int(math.floor(mid - s))]
        total += c[int(math.floor(mid)) % n] * p * (b - a)
    return total


# ---- CO2e of a run -----------------------------------------------------------------------------


@pytest.mark.parametrize("start_h", [0, 5, 23.5, 24 * 3 + 7.25, -30.0, 24 * 400])
@pytest.mark.parametrize("hours", [0.5, 3, 47.75, 24 * 40])
def test_constant_profile_is_energy_times_intensity(start_h, hours):
    prof = profile([0.4] * 24)
    power_mw = 2.5
    assert run_co2e_t(prof, at(start_h), power_mw, hours) == pytest.approx(power_mw * hours * 0.4, rel=1e-12)
    assert prof.annual_mean() == pytest.approx(0.4)


def test_hand_computed_runs_over_a_24_row_profile():
    prof = profile(RAMP)
    # 01:00, 2.5 h at 4 MW: hours 01 and 02 in full, half of 03 -> 4 x (0.02 + 0.03 + 0.5 x 0.04) = 0.28 t
    assert run_co2e_t(prof, at(1), 4.0, 2.5) == pytest.approx(0.28, rel=1e-12)
    # 3 h at 4 MW: 4 x (0.02 + 0.03 + 0.04) = 0.36 t
    assert run_co2e_t(prof, "2024-03-01T01:00:00Z", 4.0, 3) == pytest.approx(0.36, rel=1e-12)
    # 01:30, 3 h: half of 01, 02 and 03, half of 04 -> 4 x (0.01 + 0.03 + 0.04 + 0.025) = 0.42 t
    assert run_co2e_t(prof, at(1.5), 4.0, 3) == pytest.approx(0.42, rel=1e-12)
    # hourly power 1, 2, 3 MW from 01:00 for 2.5 h: 1 x 0.02 + 2 x 0.03 + 3 x 0.5 x 0.04 = 0.14 t
    assert run_co2e_t(prof, at(1), np.array([1.0, 2.0, 3.0]), 2.5) == pytest.approx(0.14, rel=1e-12)
    # a naive datetime is UTC; another offset is converted: 03:00+02:00 = 01:00Z
    assert run_co2e_t(prof, datetime(2024, 3, 1, 1), 4.0, 3) == pytest.approx(0.36, rel=1e-12)
    assert run_co2e_t(prof, "2024-03-01T03:00:00+02:00", 4.0, 3) == pytest.approx(0.36, rel=1e-12)


def test_cyclic_wrap():
    prof = profile(RAMP)
    # 22:00 for 4 h: 22, 23, then the file starts again: 00, 01 -> 2 x (0.23 + 0.24 + 0.01 + 0.02) = 1.00 t
    assert run_co2e_t(prof, at(22), 2.0, 4) == pytest.approx(1.00, rel=1e-12)
    # the same hour a period later or earlier (outside the file's span) gives the same
    for shift in (24, 24 * 10, -24):
        assert run_co2e_t(prof, at(22 + shift), 2.0, 4) == pytest.approx(1.00, rel=1e-12)
    # a run longer than the file: two whole periods (3.00 kg/kWh x h each) plus 1 h at 0.01
    assert run_co2e_t(prof, at(0), 1.0, 49) == pytest.approx(6.01, rel=1e-12)


def test_sweep_best_and_worst():
    prof = profile(RAMP)
    sw = start_time_sweep(prof, 1.0, 3)
    assert sw.co2e_t.shape == (24,)
    assert sw.co2e_t[0] == pytest.approx(0.01 + 0.02 + 0.03)
    best_at, best = sw.best()
    worst_at, worst = sw.worst()
    assert best_at == at(0) and best == pytest.approx(0.06)  # 00-02 (23,00,01 = 0.27 is worse)
    assert worst_at == at(21) and worst == pytest.approx(0.22 + 0.23 + 0.24)
    assert sw.worst_vs_best_pct() == pytest.approx((0.69 - 0.06) / 0.06 * 100)
    assert str(sw.starts[21]) == "2024-03-01T21:00:00"
    # ties: the earliest start wins
    flat = start_time_sweep(profile([0.3] * 24), 1.0, 5)
    assert flat.best()[0] == at(0) and flat.worst()[0] == at(0) and flat.worst_vs_best_pct() == 0.0


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(0, 1.5, allow_nan=False), min_size=24, max_size=60),
    hours=st.floats(0.05, 150),
    power=st.one_of(st.floats(0, 500), st.lists(st.floats(0, 50), min_size=151, max_size=151)),
    fractions=st.lists(st.floats(-100, 300), min_size=1, max_size=5),
)
def test_sweep_equals_direct_per_start_sum(values, hours, power, fractions):
    prof = profile(values)
    p = power if isinstance(power, float) else np.array(power)
    sw = start_time_sweep(prof, p, hours)  # every hour of the profile
    expected = [direct_co2e(values, float(s), p, hours) for s in range(len(values))]
    np.testing.assert_allclose(sw.co2e_t, expected, rtol=1e-9, atol=1e-9)
    starts = [T0 + timedelta(hours=f) for f in fractions]  # arbitrary (fractional, outside the file) starts
    sw2 = start_time_sweep(prof, p, hours, starts)
    expected2 = [direct_co2e(values, prof.offset_h(s), p, hours) for s in starts]
    np.testing.assert_allclose(sw2.co2e_t, expected2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(run_co2e_t(prof, starts[0], p, hours), expected2[0], rtol=1e-9, atol=1e-9)


def test_sweep_in_blocks_matches_one_block(monkeypatch):
    import simulator.footprint.carbon_profile as cp

    prof = profile(np.random.default_rng(0).uniform(0, 1, 48))
    power = np.linspace(1, 3, 100)
    whole = start_time_sweep(prof, power, 99.5).co2e_t
    monkeypatch.setattr(cp, "_SWEEP_CHUNK", 250)  # 2 starts per block
    np.testing.assert_allclose(start_time_sweep(prof, power, 99.5).co2e_t, whole, rtol=1e-12)


def test_bad_run_inputs():
    prof = profile(RAMP)
    with pytest.raises(ScenarioError, match="hours"):
        run_co2e_t(prof, T0, 1.0, 0)
    with pytest.raises(ScenarioError, match="one value per started hour"):
        run_co2e_t(prof, T0, np.ones(3), 3.5)
    with pytest.raises(ScenarioError, match="facility_power_mw"):
        run_co2e_t(prof, T0, -1.0, 3)
    with pytest.raises(ScenarioError, match="ISO 8601"):
        run_co2e_t(prof, "next tuesday", 1.0, 3)


def test_scaled_to_mean_keeps_the_shape():
    prof = profile(RAMP).scaled_to_mean(0.5)
    assert prof.annual_mean() == pytest.approx(0.5)
    assert prof.intensity_kg_per_kwh[23] / prof.intensity_kg_per_kwh[0] == pytest.approx(24)


# ---- with an Estimate ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def est():
    return estimate(load_scenario(EXAMPLE))


def test_constant_profile_reproduces_the_estimate(est):
    v = est.values
    flat = HourlyProfile(T0, np.full(8760, v["carbon_intensity_kg_per_kwh"]))
    for start in (T0, at(1234.5)):
        assert co2e_for_estimate(est, flat, start) == pytest.approx(v["co2e_t"], rel=1e-9)
    sw = sweep_for_estimate(est, flat)
    np.testing.assert_allclose(sw.co2e_t, v["co2e_t"], rtol=1e-9)


def test_example_profile_on_the_example_scenario(est):
    prof = load_example()
    hourly = co2e_for_estimate(est, prof)  # from the profile's first hour (1 January)
    sw = sweep_for_estimate(est, prof)
    assert sw.best()[1] <= hourly <= sw.worst()[1]
    assert sw.best()[1] < est.values["co2e_t"] < sw.worst()[1]  # same mean: the annual average lies between
    # a ~39-day run: winter starts are worse than summer starts in the solar-share example
    assert sw.worst()[0].month in (10, 11, 12, 1) and sw.best()[0].month in (5, 6, 7)


# ---- the shipped example -------------------------------------------------------------------------


def test_shipped_example_is_reproducible_and_has_the_stated_mean():
    path = example_profile_path()
    assert path.name == EXAMPLE_FILE and path.parent.name == "data"
    shipped = load_profile_csv(path)
    regenerated = synthetic_example()
    assert shipped.hours == regenerated.hours == 8760
    assert shipped.first_hour == regenerated.first_hour == datetime(2023, 1, 1, tzinfo=timezone.utc)
    np.testing.assert_allclose(shipped.intensity_kg_per_kwh, regenerated.intensity_kg_per_kwh, atol=5.1e-6, rtol=0)
    assert list(shipped.comments) == example_comments()
    assert "SYNTHETIC, NOT MEASURED" in shipped.comments[0]
    assert shipped.annual_mean() == pytest.approx(EXAMPLE_MEAN_KG_PER_KWH, rel=0.005)
    assert regenerated.annual_mean() == pytest.approx(EXAMPLE_MEAN_KG_PER_KWH, rel=1e-12)
    assert EXAMPLE_MEAN_KG_PER_KWH == 0.3231  # grid.csv: GCP us-east4 (Northern Virginia), 2024


def test_example_shape():
    c = synthetic_example().intensity_kg_per_kwh.reshape(365, 24)
    # night (about 05:00 UTC = midnight in Virginia) is the no-solar level; solar noon (~17:00 UTC) is lower
    assert np.all(c[:, 5] >= c[:, 17])
    assert c[:, 5].std() == pytest.approx(0, abs=1e-12)
    assert c[172, 17] < c[355, 17]  # June solstice noon cleaner than December's


# ---- validation -----------------------------------------------------------------------------------

GOOD = [round(0.3 + 0.01 * (i % 5), 2) for i in range(30)]


def _bad_csv(kind: str) -> tuple[str, int, str]:
    """(file text, line number of the problem, column named) for each validation error."""
    good = csv_text(GOOD)  # 1 comment line, header on line 2, rows from line 3
    lines = good.splitlines()
    row = 7  # 0-based index into lines: file line 8, the 6th data row (05:00)
    ts, val = lines[row].split(",")
    edits = {
        "bad_timestamp": ("2024-03-01T5 o'clock", val, "timestamp"),
        "no_offset": (ts.removesuffix("Z"), val, "timestamp"),
        "gap": (lines[row + 1].split(",")[0], val, "timestamp"),
        "duplicate": (lines[row - 1].split(",")[0], val, "timestamp"),
        "out_of_order": ("2024-02-01T00:00:00Z", val, "timestamp"),
        "half_hour": (ts.replace(":00:00Z", ":30:00Z"), val, "timestamp"),
        "missing_timestamp": ("", val, "timestamp"),
        "negative": (ts, "-0.1", "carbon_intensity_kg_per_kwh"),
        "missing_value": (ts, "", "carbon_intensity_kg_per_kwh"),
        "not_a_number": (ts, "n/a", "carbon_intensity_kg_per_kwh"),
        "nan": (ts, "nan", "carbon_intensity_kg_per_kwh"),
        "grams": (ts, "412", "carbon_intensity_kg_per_kwh"),
    }
    if kind == "short_row":
        lines[row] = ts
        return "\n".join(lines) + "\n", row + 1, "carbon_intensity_kg_per_kwh"
    if kind == "too_few_rows":
        return csv_text(GOOD[:23]), 25, "carbon_intensity_kg_per_kwh"
    if kind == "missing_column":
        return good.replace("carbon_intensity_kg_per_kwh", "gco2_per_kwh"), 2, "carbon_intensity_kg_per_kwh"
    new_ts, new_val, column = edits[kind]
    lines[row] = f"{new_ts},{new_val}"
    return "\n".join(lines) + "\n", row + 1, column


KINDS = ["bad_timestamp", "no_offset", "gap", "duplicate", "out_of_order", "half_hour", "missing_timestamp",
         "negative", "missing_value", "not_a_number", "nan", "grams", "short_row", "too_few_rows", "missing_column"]


@pytest.mark.parametrize("kind", KINDS)
def test_validation_errors_name_file_line_and_column(tmp_path, kind):
    text, line, column = _bad_csv(kind)
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_profile_csv(path)
    msg = str(info.value)
    assert str(path) in msg and f"line {line}:" in msg and column in msg, msg
    assert "\n" not in msg


def test_validation_messages_say_what_is_wrong():
    def err(kind):
        with pytest.raises(ScenarioError) as info:
            parse_profile_csv(_bad_csv(kind)[0], "p.csv")
        return str(info.value)

    assert "gap: 1 missing hour" in err("gap")
    assert "duplicate of line 7" in err("duplicate")
    assert "time order" in err("out_of_order")
    assert "1.5 h after line 7" in err("half_hour") and "exactly 1 h" in err("half_hour")
    assert "no UTC offset" in err("no_offset")
    half_hourly = "timestamp,carbon_intensity_kg_per_kwh\n2024-01-01T00:00Z,0.1\n2024-01-01T00:30Z,0.1\n"
    with pytest.raises(ScenarioError, match="line 3: column timestamp: .*30 min after line 2.*exactly 1 h"):
        parse_profile_csv(half_hourly, "p.csv")
    assert "negative" in err("negative")
    assert "g/kWh" in err("grams")
    assert "at least 24" in err("too_few_rows")


def test_other_file_problems(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read carbon profile \\(No such file"):
        load_profile_csv(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("# only a comment\n")
    with pytest.raises(ScenarioError, match=r"empty.csv: line 1: no header row \(expected timestamp,carbon"):
        load_profile_csv(empty)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("# caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_profile_csv(latin)


def test_accepted_variants(tmp_path):
    # BOM, CRLF, extra columns, column order, blank lines, +00:00 and other offsets (converted to UTC)
    rows = [f"{i % 3},{(datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))) + timedelta(hours=i)).isoformat()},"
            f"{0.1 + i / 1000}" for i in range(24)]
    text = "\ufeffnote,timestamp,carbon_intensity_kg_per_kwh\r\n" + "\r\n".join(rows[:10]) + "\r\n\r\n" + "\r\n".join(rows[10:])
    p = tmp_path / "ok.csv"
    p.write_bytes(text.encode("utf-8"))
    prof = load_profile_csv(p)
    assert prof.hours == 24 and prof.first_hour == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert prof.intensity_kg_per_kwh[23] == pytest.approx(0.123)


# ---- CLI ----------------------------------------------------------------------------------------------

JSON_KEYS = {"co2e_t_annual_average", "co2e_t_hourly", "start", "best_start", "best_co2e_t", "worst_start",
             "worst_co2e_t"}


def cli(*args):
    return runner.invoke(app, ["carbon", *map(str, args)])


def test_cli_json(est):
    r = cli(EXAMPLE, "--profile", example_profile_path(), "--start", "2023-07-01T00:00:00Z", "-f", "json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert JSON_KEYS <= set(d)
    assert d["co2e_t_annual_average"] == pytest.approx(est.values["co2e_t"])
    assert d["start"] == "2023-07-01T00:00:00Z"
    assert d["co2e_t_hourly"] == pytest.approx(co2e_for_estimate(est, load_example(), "2023-07-01T00:00:00Z"))
    assert d["best_co2e_t"] <= d["co2e_t_hourly"] <= d["worst_co2e_t"]
    assert d["worst_vs_best_pct"] == pytest.approx((d["worst_co2e_t"] / d["best_co2e_t"] - 1) * 100)
    datetime.fromisoformat(d["best_start"]), datetime.fromisoformat(d["worst_start"])


def test_cli_default_start_table_and_csv():
    r = cli(EXAMPLE, "--profile", example_profile_path())
    assert r.exit_code == 0, r.output
    assert "CO2e, best start" in r.stdout and "2023-01-01T00:00:00Z" in r.stdout
    r = cli(EXAMPLE, "--profile", example_profile_path(), "-f", "csv")
    lines = r.stdout.strip().splitlines()
    assert r.exit_code == 0 and len(lines) == 2 and JSON_KEYS <= set(lines[0].split(","))


def test_cli_errors_are_one_line(tmp_path):
    r = cli(EXAMPLE, "--profile", tmp_path / "nope.csv")
    assert r.exit_code == 1 and "nope.csv" in r.output and "cannot read carbon profile (No such file" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text(_bad_csv("negative")[0])
    r = cli(EXAMPLE, "--profile", bad)
    assert r.exit_code == 1 and "line 8" in r.output and len(r.output.strip().splitlines()) == 1
    r = cli(EXAMPLE, "--profile", example_profile_path(), "--start", "soon")
    assert r.exit_code == 1 and "--start" in r.output and len(r.output.strip().splitlines()) == 1


def test_scenario_carbon_profile_adds_hourly_co2e(tmp_path):
    """A constant hourly profile equal to the annual figure reproduces co2e_t; a bad one names the field."""
    from simulator import estimate, load_scenario

    example = Path(__file__).parents[2] / "examples" / "llama3-70b-h100.toml"
    base = estimate(load_scenario(example))
    ci = base.values["carbon_intensity_kg_per_kwh"]
    rows = "\n".join(f"2023-01-01T{h:02d}:00:00Z,{ci}" for h in range(24))
    (tmp_path / "flat.csv").write_text("timestamp,carbon_intensity_kg_per_kwh\n" + rows + "\n")
    est = estimate(load_scenario(example, [f'datacenter.carbon_profile="{tmp_path / "flat.csv"}"',
                                           'datacenter.start_utc="2023-01-01T05:00:00Z"']))
    assert est.values["co2e_t_hourly"] == pytest.approx(base.co2e_t, rel=1e-9)
    assert est.co2e_t == base.co2e_t  # the contract key stays the annual-average figure
    with pytest.raises(ScenarioError, match="datacenter.carbon_profile"):
        estimate(load_scenario(example, [f'datacenter.carbon_profile="{tmp_path / "missing.csv"}"']))
