"""The claims ledger (issue 16): verdict rules on hand-made ranges, property tests that a claim moved out of
its range flips its verdict, the packaged ledger's claims evaluated (every claim of the issue covered,
deterministic), ledger errors that name the entry and the key, the trend fit."""

from __future__ import annotations

import copy
import math
import tomllib
from importlib import resources

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.claims import evaluate_claims, load_ledger
from simulator.claims.ledger import parse_ledger
from simulator.claims.montecarlo import split_energy
from simulator.claims.trends import Point, fit_trend, parse_points
from simulator.claims.units import fmt, fmt_range, sig
from simulator.claims.verdict import (
    CONSISTENT,
    INCONSISTENT,
    NOT_CHECKED,
    TOO_HIGH,
    TOO_LOW,
    Band,
    arithmetic_verdict,
    combined_verdict,
    consistency_verdict,
    miss,
    point_verdict,
    range_verdict,
)
from simulator.errors import DataFileError
from simulator.footprint.energy_split import split_group

RAW = tomllib.loads(resources.files("simulator").joinpath("data/claims.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def results():
    return {r.id: r for r in evaluate_claims()}


def raw() -> dict:
    return copy.deepcopy(RAW)


def claim(data: dict, cid: str) -> dict:
    return next(c for c in data["claims"] if c["id"] == cid)


# --- verdict rules on hand-made ranges -------------------------------------------------------------

def test_point_verdict_on_a_hand_made_band():
    band = Band(10.0, 15.0, 20.0)
    assert point_verdict(12, band) == CONSISTENT
    assert point_verdict(10, band) == point_verdict(20, band) == CONSISTENT  # bounds included
    assert point_verdict(20.001, band) == TOO_HIGH
    assert point_verdict(9.999, band) == TOO_LOW


def test_range_verdict_overlap_rule():
    band = Band(65.0, 98.0, 140.0)
    assert range_verdict(60, 100, band) == CONSISTENT  # overlaps
    assert range_verdict(150, 200, band) == TOO_HIGH
    assert range_verdict(10, 64, band) == TOO_LOW
    assert range_verdict(140, 141, band) == CONSISTENT  # touches the top
    with pytest.raises(ValueError, match="low <= high"):
        range_verdict(5, 4, band)


def test_arithmetic_verdict_widens_the_claim_by_its_rounding():
    exact = Band(137.96, 139.5, 141.1, "exact")
    assert arithmetic_verdict(140, 5, exact) == CONSISTENT
    assert arithmetic_verdict(150, 5, exact) == TOO_HIGH  # 145 > 141.1
    assert arithmetic_verdict(130, 5, exact) == TOO_LOW  # 135 < 137.96
    assert arithmetic_verdict(146, 5, exact) == CONSISTENT  # 141 <= 141.1


def test_consistency_verdict():
    assert consistency_verdict(50_000, 50, 2) == INCONSISTENT
    assert consistency_verdict(50, 49.9, 2) == CONSISTENT
    assert consistency_verdict(100, 50, 2) == CONSISTENT  # exactly the factor
    assert consistency_verdict(100.1, 50, 2) == INCONSISTENT


def test_combined_verdict_takes_the_part_that_misses_most():
    assert combined_verdict([(CONSISTENT, 0.0), (NOT_CHECKED, 0.0)]) == CONSISTENT
    assert combined_verdict([(TOO_LOW, 0.1), (TOO_HIGH, 0.3), (NOT_CHECKED, 0.0)]) == TOO_HIGH
    assert combined_verdict([(NOT_CHECKED, 0.0)]) == NOT_CHECKED
    assert miss(16, 16, Band(1.0, 7.0, 12.5)) == pytest.approx(3.5 / 12.5)


def test_band_must_be_ordered():
    with pytest.raises(ValueError, match="low <= mid <= high"):
        Band(2.0, 1.0, 3.0)


bands = st.tuples(*[st.floats(0.01, 1e9, allow_nan=False)] * 3).map(lambda t: Band(*sorted(t)))
factors = st.floats(1.0001, 100, allow_nan=False)


@given(bands, st.floats(0, 1, allow_nan=False))
def test_a_claim_inside_the_band_is_consistent(band, t):
    assert point_verdict(band.low + t * (band.high - band.low), band) == CONSISTENT


@given(bands, factors)
def test_a_claim_moved_above_p90_is_too_high_and_below_p10_too_low(band, k):
    assert point_verdict(band.high * k, band) == TOO_HIGH
    assert point_verdict(band.low / k, band) == TOO_LOW
    assert range_verdict(band.high * k, band.high * k * 2, band) == TOO_HIGH
    assert range_verdict(band.low / k / 2, band.low / k, band) == TOO_LOW


@given(bands, st.floats(0, 1e9, allow_nan=False), st.floats(0, 1e9, allow_nan=False))
def test_range_verdict_is_consistent_iff_the_intervals_overlap(band, a, b):
    low, high = sorted((a, b))
    overlap = low <= band.high and high >= band.low
    assert (range_verdict(low, high, band) == CONSISTENT) == overlap


# --- the packaged ledger ---------------------------------------------------------------------------

ISSUE_CLAIMS = {  # issue 16's table -> the ledger ids that test each row
    "GPT-4 $78 M, Gemini Ultra $191 M": {"cost-gpt-4", "cost-gemini-ultra"},
    "16,000-25,000 GPUs for 60-100 days": {"frontier-days"},
    "10-15 T tokens": {"frontier-tokens"},
    "50,000 MWh, 80/16/4, 1,700 homes": {"energy-total", "energy-split", "energy-homes"},
    "70B weights 140 GB in FP16": {"weights-70b"},
    "fine-tuning 1-5%": {"finetune-share"},
    "compute doubles every 6 months": {"compute-doubling"},
}


def test_every_claim_of_the_issue_is_in_the_ledger(results):
    assert set().union(*ISSUE_CLAIMS.values()) == set(results)


def test_verdicts_of_the_packaged_ledger(results):
    """The verdicts as documented in the README (tests/test_readme_claims.py checks the numbers there)."""
    verdicts = {cid: r.verdict for cid, r in results.items()}
    assert verdicts["energy-homes"] == INCONSISTENT
    assert verdicts["energy-split"] in (TOO_HIGH, TOO_LOW)  # hyperscaler PUEs leave far less than 16% for cooling
    assert verdicts["weights-70b"] == CONSISTENT
    assert all(v in (CONSISTENT, TOO_HIGH, TOO_LOW, INCONSISTENT) for v in verdicts.values())


def test_each_verdict_follows_from_its_band(results):
    """Recomputing the rule on the reported band gives the reported verdict; moving the claim past
    either end of the band flips it."""
    for r in results.values():
        if r.band is None or r.kind == "consistency":
            continue
        if r.kind == "arithmetic":
            assert arithmetic_verdict(r.claim_low, claim(RAW, r.id)["tolerance"], r.band) == r.verdict, r.id
        else:
            assert range_verdict(r.claim_low, r.claim_high, r.band) == r.verdict, r.id
        assert range_verdict(r.band.high * 2 + 10, r.band.high * 3 + 20, r.band) == TOO_HIGH
        assert range_verdict(r.band.low / 3, r.band.low / 2, r.band) == TOO_LOW


def test_gpt4_and_gemini_show_inputs_sources_and_p10_p50_p90(results):
    for cid in ("cost-gpt-4", "cost-gemini-ultra"):
        r = results[cid]
        (row,) = r.details
        assert row["p10"] < row["p50"] < row["p90"] and row["driver"] == "price"
        assert {i["input"] for i in row["inputs"]} >= {"cluster.devices", "cluster.accelerator", "training.tokens"}
        assert all(i["source"] for i in row["inputs"])
        assert any(not i["verified"] for i in row["inputs"])  # the leak / second-hand figures are marked
    assert results["cost-gpt-4"].details[0]["figures"]["train_flops"] == pytest.approx(2.1e25, rel=0.01)


def test_a_moved_cost_claim_flips_its_verdict():
    """End to end: the GPT-4 claim at $10 M and at $1 B, evaluated through the ledger."""
    for value, verdict in ((10e6, TOO_LOW), (1e9, TOO_HIGH)):
        data = raw()
        data["claims"] = [dict(claim(data, "cost-gpt-4"), value=value)]
        (r,) = evaluate_claims(parse_ledger(data))
        assert r.verdict == verdict


def test_energy_split_reads_the_rows_as_they_are(results):
    """The split has every group; a group without breakdown rows (network and storage before issue 16 item 2)
    is None and its part of the claim is not checked; the others have a P10 < P50 < P90 share."""
    r = results["energy-split"]
    groups = {g["group"]: g for g in r.split}
    assert set(groups) == {"accelerators", "hosts", "network", "storage", "facility overhead (cooling)"}
    assert sum(g["share_pct"] for g in r.split if g["share_pct"] is not None) == pytest.approx(100)
    parts = {p["part"]: p for p in r.details}
    missing = groups["network"]["energy_mwh"] is None and groups["storage"]["energy_mwh"] is None
    assert (parts["networking and storage"]["verdict"] == NOT_CHECKED) == missing
    for p in parts.values():
        assert p["verdict"] == NOT_CHECKED or p["p10"] < p["p50"] < p["p90"]
    assert r.claimed == "80 / 16 / 4%"


def test_a_split_without_network_rows_says_so():
    from simulator.claims.ledger import Part
    from simulator.claims.montecarlo import _part_row

    energy = split_energy([{"component": "compute", "energy_kwh": 800.0}, {"component": "host", "energy_kwh": 100.0},
                           {"component": "facility_overhead", "energy_kwh": 100.0}])
    assert energy["network"] is None and energy["storage"] is None
    row = _part_row(Part(label="net", share=4, rows=["network", "storage"]), energy, np.array([0.9, 0.91]))
    assert row["verdict"] == NOT_CHECKED and "not yet separate" in row["note"]


def test_split_groups_network_and_storage_rows_when_they_appear():
    rows = [{"component": "compute", "energy_kwh": 700.0}, {"component": "host", "energy_kwh": 150.0},
            {"component": "network", "energy_kwh": 30.0}, {"component": "storage", "energy_kwh": 20.0},
            {"component": "facility_overhead", "energy_kwh": 100.0}, {"component": "embodied", "energy_kwh": 0.0}]
    assert split_group("network") == "network" and split_group("bubble") == "accelerators"
    assert split_energy(rows) == {"accelerators": 700.0, "hosts": 150.0, "network": 30.0, "storage": 20.0,
                                  "facility_overhead": 100.0}


def test_network_and_storage_parts_are_checked_once_they_are_rows():
    """With `network` and `storage` rows (issue 16 item 2) the 4% part gets a band and a verdict."""
    from simulator.claims.ledger import Part
    from simulator.claims.montecarlo import _part_row

    energy = {"accelerators": 700.0, "hosts": 150.0, "network": 30.0, "storage": 20.0, "facility_overhead": 100.0}
    it_frac = np.array([0.88, 0.9, 0.92])
    row = _part_row(Part(label="networking and storage", share=4, rows=["network", "storage"]), energy, it_frac)
    assert row["p50"] == pytest.approx(100 * 0.9 * 50 / 900)  # 5.0% of facility energy
    assert row["verdict"] == TOO_LOW  # 4% < P10 (4.9%)
    cooling = _part_row(Part(label="cooling", share=10, rows=["facility_overhead"]), energy, it_frac)
    assert cooling["p50"] == pytest.approx(10.0) and cooling["verdict"] == CONSISTENT


def test_the_split_claim_is_consistent_when_it_matches_trainsims_split(results):
    parts = {p["part"]: p for p in results["energy-split"].details}
    data = raw()
    split = claim(data, "energy-split")
    for part in split["parts"]:  # each part at trainsim's P50 (a part without rows stays unchecked)
        if parts[part["label"]]["p50"] is not None:
            part["share"] = round(parts[part["label"]]["p50"], 1)
    data["claims"] = [split]
    (r,) = evaluate_claims(parse_ledger(data))
    assert r.verdict == CONSISTENT


def test_the_homes_statement_is_inconsistent_with_the_headline_but_right_on_its_own(results):
    r = results["energy-homes"]
    recomputed = r.details[-1]["value_mwh"]
    assert recomputed == pytest.approx(1700 * 29.36 / 1e3)
    assert consistency_verdict(50, recomputed, 2) == CONSISTENT
    data = raw()
    data["claims"] = [dict(claim(data, "energy-homes"), value=50.0)]  # had it said 50 MWh for the run
    assert evaluate_claims(parse_ledger(data))[0].verdict == CONSISTENT


def test_weights_are_exact_arithmetic(results):
    r = results["weights-70b"]
    from simulator.model.shapes import get_preset

    assert r.band.low == pytest.approx(get_preset("llama2-70b").params_total() * 2 / 1e9)
    assert 137 < r.band.low < r.band.high < 142


def test_evaluation_is_deterministic(results):
    again = {r.id: r for r in evaluate_claims()}
    assert [again[k].to_dict() for k in results] == [r.to_dict() for r in results.values()]


def test_to_dict_is_json_ready(results):
    import json

    text = json.dumps([r.to_dict() for r in results.values()], allow_nan=False)
    d = json.loads(text)[0]
    assert {"id", "claimed", "p10", "p50", "p90", "verdict", "driver", "details"} <= set(d)


# --- malformed ledgers: one line naming the entry and the key -------------------------------------

@pytest.mark.parametrize("edit, expected", [
    (lambda d: claim(d, "cost-gpt-4").update(value="78e6"), "claim 'cost-gpt-4': key 'value':"),
    (lambda d: claim(d, "cost-gpt-4").update(colour="red"), "claim 'cost-gpt-4': key 'colour': unknown key"),
    (lambda d: claim(d, "cost-gpt-4").pop("quantity"), "claim 'cost-gpt-4': key 'quantity': required for kind"),
    (lambda d: claim(d, "cost-gpt-4").update(fits=["epoch2024"]), "claim 'cost-gpt-4': key 'fits': does not apply"),
    (lambda d: claim(d, "cost-gpt-4").update(source="nowhere"), "claim 'cost-gpt-4': key 'source': unknown source"),
    (lambda d: claim(d, "cost-gpt-4").update(scenarios=["gpt-5"]), "claim 'cost-gpt-4': key 'scenarios[0]': unknown"),
    (lambda d: claim(d, "frontier-days").update(low=200), "claim 'frontier-days': key 'low':"),
    (lambda d: claim(d, "energy-split").update(value=80.0), "claim 'energy-split': key 'value':"),
    (lambda d: d["sources"]["eia-faq-97"].update(year=True), "source 'eia-faq-97': key 'year':"),
    (lambda d: d["scenarios"]["gpt-4"]["inputs"].pop("cluster.devices"),
     "scenario 'gpt-4': key 'inputs': no source for scenario input 'cluster.devices'"),
    (lambda d: d["scenarios"]["gpt-4"]["scenario"]["cluster"].update(devices=-1),
     "scenario 'gpt-4': key 'scenario': cluster.devices"),
    (lambda d: d["claims"].append(dict(claim(d, "weights-70b"))), "claim 'weights-70b': key 'id': used twice"),
])
def test_malformed_ledger_names_the_entry_and_key(edit, expected):
    data = raw()
    edit(data)
    with pytest.raises(DataFileError) as err:
        parse_ledger(data, "claims.toml")
    message = str(err.value)
    assert message.startswith("claims.toml: ") and expected in message, message
    assert "\n" not in message


def test_unknown_quantity_is_named():
    data = raw()
    data["claims"] = [dict(claim(data, "cost-gpt-4"), quantity="happiness")]
    with pytest.raises(DataFileError, match="claim 'cost-gpt-4': key 'quantity': expected one of"):
        evaluate_claims(parse_ledger(data))


def test_a_ledger_file_that_is_not_toml(tmp_path):
    p = tmp_path / "claims.toml"
    p.write_text("[[claims]\n")
    with pytest.raises(DataFileError, match="not valid TOML"):
        load_ledger(p)


# --- the trend -------------------------------------------------------------------------------------

def _points(months: float, noise: np.ndarray | None = None) -> list[Point]:
    from datetime import date, timedelta

    out = []
    for i in range(8):
        when = date(2018, 1, 1) + timedelta(days=int(i * 182.5))
        years = (when - date(2018, 1, 1)).days / 365.25
        flop = 1e22 * 2 ** (years * 12 / months) * (1 if noise is None else 10 ** noise[i])
        out.append(Point(f"m{i}", "x", when, flop, False, True, "synthetic"))
    return out


def test_trend_fit_recovers_a_known_doubling_time():
    fit = fit_trend(_points(6.0))
    assert fit.doubling_months == pytest.approx(6.0, rel=0.01)
    noisy = fit_trend(_points(6.0, np.random.default_rng(0).normal(0, 0.2, 8)))
    assert noisy.doubling_low < noisy.doubling_months < noisy.doubling_high


def test_packaged_trend_and_its_claim(results):
    r = results["compute-doubling"]
    assert r.band.low < r.band.mid < r.band.high
    assert r.verdict == point_verdict(6.0, r.band)
    assert point_verdict(r.band.high + 1, r.band) == TOO_HIGH and point_verdict(r.band.low - 1, r.band) == TOO_LOW
    assert len(r.details) >= 8 and any(p["estimated"] for p in r.details)


@pytest.mark.parametrize("row, expected", [
    ("GPT-9,X,2030-13-01,1e27,false,true,s", "line 2 (GPT-9): key 'date'"),
    ("GPT-9,X,2030-01-01,lots,false,true,s", "line 2 (GPT-9): key 'training_flop'"),
    ("GPT-9,X,2030-01-01,1e27,maybe,true,s", "line 2 (GPT-9): key 'estimated'"),
])
def test_malformed_trend_rows_are_named(row, expected):
    header = "model,organization,date,training_flop,estimated,verified,source\n"
    with pytest.raises(DataFileError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_points(header + row + "\n", "f.csv")


# --- numbers in words ------------------------------------------------------------------------------

def test_formatting():
    assert fmt(78e6, "USD", trim=True) == "$78 M" and fmt(94.94e6, "USD") == "$94.9 M"
    assert fmt_range(60, 100, "days", trim=True) == "60-100 days"
    assert fmt_range(10e12, 15e12, "tokens", trim=True) == "10-15 T tokens"
    assert fmt(22073.6, "MWh") == "22,100 MWh" and fmt(1.78, "%") == "1.78%"
    assert sig(math.inf) == "inf" and sig(0.0178) == "0.0178"
