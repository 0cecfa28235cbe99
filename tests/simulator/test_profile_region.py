"""An hourly carbon profile belongs to its region (issue 15 item 1): the `# region:` line, refusal of
another region's profile in estimate(), `sweep_for_estimate` and `trainsim carbon`, a note when the
region is unknown or the profile's mean is far from the annual intensity."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hardware_catalog import load_catalog
from simulator import estimate, load_scenario
from simulator.cli import app
from simulator.errors import ScenarioError
from simulator.footprint.carbon_profile import (
    EXAMPLE_MEAN_KG_PER_KWH,
    EXAMPLE_REGION,
    HourlyProfile,
    example_profile_path,
    load_example,
    parse_profile_csv,
    profile_notes,
    profile_to_csv,
    same_region,
    sweep_for_estimate,
)

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "llama3-70b-h100.toml"  # region us-virginia
PROFILE = example_profile_path()
runner = CliRunner()


def csv_text(region_lines=(), n=24, value=0.3) -> str:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [f"{(t0 + timedelta(hours=i)).isoformat().replace('+00:00', 'Z')},{value}" for i in range(n)]
    return "\n".join([*(f"# {c}" for c in region_lines), "timestamp,carbon_intensity_kg_per_kwh", *rows]) + "\n"


def with_profile(path, region=None) -> list[str]:
    sets = [f'datacenter.carbon_profile="{path}"']
    return sets + ([f'datacenter.region="{region}"'] if region else [])


# ---- the file's region line -------------------------------------------------------------------------


def test_region_line_is_read_and_written():
    prof = parse_profile_csv(csv_text(["a comment", "region: FR"]), "fr.csv")
    assert prof.region == "FR"
    assert parse_profile_csv(csv_text(["Region :  us-virginia "]), "x.csv").region == "us-virginia"
    assert parse_profile_csv(csv_text(["a comment"]), "x.csv").region is None
    again = parse_profile_csv(profile_to_csv(prof), "again.csv")  # the comments are not passed: the region is
    assert again.region == "FR"
    assert profile_to_csv(prof, ["region: FR"]).count("region") == 1
    assert prof.scaled_to_mean(0.1).region == "FR"


@pytest.mark.parametrize("lines, message", [
    (["region: FR", "region: DE"], "'# region:' appears 2 times"),
    (["region: us-virginia (Northern Virginia)"], "expected one catalog region id"),
    (["region:"], "expected one catalog region id"),
])
def test_bad_region_lines_are_refused(lines, message):
    with pytest.raises(ScenarioError, match=message) as info:
        parse_profile_csv(csv_text(lines), "bad.csv")
    assert str(info.value).startswith("bad.csv: ") and "\n" not in str(info.value)


def test_the_shipped_example_belongs_to_virginia_and_has_its_annual_mean():
    """The example's mean is the catalog's us-virginia figure: no rescaling, no mean note."""
    assert load_example().region == EXAMPLE_REGION == "us-virginia"
    catalog_ci = load_catalog().region(EXAMPLE_REGION).carbon_intensity_kg_per_kwh.value
    assert catalog_ci == EXAMPLE_MEAN_KG_PER_KWH
    assert profile_notes(load_example(), "us-virginia", catalog_ci) == []


def test_same_region_goes_through_the_catalog_aliases():
    assert same_region("us-virginia", "US-VIRGINIA") and same_region("virginia", "us-virginia")
    assert same_region("France", "FR")
    assert not same_region("us-virginia", "FR") and not same_region(None, "FR")
    assert not same_region("ercot", "us-texas")  # not in the catalog: compared as written


# ---- estimate() --------------------------------------------------------------------------------------


def test_estimate_refuses_another_regions_profile():
    with pytest.raises(ScenarioError) as info:
        estimate(load_scenario(EXAMPLE, with_profile(PROFILE, "FR")))
    msg = str(info.value)
    assert msg.startswith("datacenter.carbon_profile: ") and "\n" not in msg
    assert "region 'us-virginia'" in msg and "datacenter.region 'FR'" in msg
    assert "use a profile for FR" in msg and 'set datacenter.region = "us-virginia"' in msg


def test_estimate_accepts_the_matching_region_by_id_or_alias():
    for region in (None, "virginia"):
        est = estimate(load_scenario(EXAMPLE, with_profile(PROFILE, region)))
        assert est.values["co2e_t_hourly"] > 0
        assert not any("region is unknown" in a or "differs from the annual" in a for a in est.assumptions)


def test_a_profile_without_a_region_is_used_with_a_note(tmp_path):
    path = tmp_path / "anywhere.csv"
    path.write_text(csv_text(value=0.056 * 2))  # twice France's annual figure
    est = estimate(load_scenario(EXAMPLE, with_profile(path, "FR")))
    assert est.values["co2e_t_hourly"] == pytest.approx(2 * est.co2e_t, rel=1e-9)
    notes = [a for a in est.assumptions if a.startswith("datacenter.carbon_profile: ")]
    assert any("names no region" in a and "its region is unknown" in a for a in notes), notes
    assert any("differs from the annual intensity (0.056 kg/kWh, FR) by +100%" in a and "not rescaled" in a
               for a in notes), notes


def test_sweep_for_estimate_refuses_another_regions_profile():
    est = estimate(load_scenario(EXAMPLE, ['datacenter.region="FR"']))
    with pytest.raises(ScenarioError, match="not for datacenter.region 'FR'"):
        sweep_for_estimate(est, load_example())
    flat = HourlyProfile(datetime(2023, 1, 1, tzinfo=UTC), np.full(48, 0.056))  # no region: allowed
    assert sweep_for_estimate(est, flat).co2e_t == pytest.approx(est.co2e_t, rel=1e-9)


# ---- trainsim carbon ---------------------------------------------------------------------------------


def test_cli_refuses_another_regions_profile():
    r = runner.invoke(app, ["carbon", str(EXAMPLE), "--profile", str(PROFILE), "--set", 'datacenter.region="FR"'])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert "--profile (datacenter.carbon_profile)" in r.output and "'us-virginia'" in r.output and "'FR'" in r.output


def test_cli_says_when_the_region_is_unknown(tmp_path):
    path = tmp_path / "anywhere.csv"
    path.write_text(csv_text(value=0.3231))
    r = runner.invoke(app, ["carbon", str(EXAMPLE), "--profile", str(path), "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["profile_region"] is None and any("its region is unknown" in n for n in d["notes"])
    r = runner.invoke(app, ["carbon", str(EXAMPLE), "--profile", str(PROFILE), "-f", "json"])
    d = json.loads(r.stdout)
    assert d["profile_region"] == "us-virginia" and d["notes"] == []
    r = runner.invoke(app, ["carbon", str(EXAMPLE), "--profile", str(path)])
    assert r.exit_code == 0 and "region unknown" in r.stdout and "its region is unknown" in r.stderr
