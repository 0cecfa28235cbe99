"""The Monte Carlo's throughput spread per accelerator (simulator.validation.spread): read from the
public tables' held-out errors, so a part the tables never measured gets a wider band than H100."""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from hardware_catalog import load_catalog
from simulator import estimate, scenario_from_dict
from simulator.footprint.uncertainty import Z_P90, Spreads, monte_carlo
from simulator.validation.spread import heldout_sigmas, throughput_spread

CAT = load_catalog(use_env=False)
with resources.files("simulator").joinpath("data/public_fit_heldout.csv").open() as f:
    HELD = pd.read_csv(f)


def _sigma(errors_pct) -> float:
    """Median |ln(1 + e)| / 0.6745: the normal sigma whose median absolute value it is."""
    return float(np.median(np.abs(np.log1p(np.asarray(errors_pct, dtype=float) / 100)))) / 0.6744897501960817


def test_sigmas_are_the_held_out_errors_read_as_a_normal_spread():
    """Recomputed from the CSV: all rows and each family with tables held out; 'unseen part' from the
    families whose every row one holdout removes (B200's one table; MI325X's and the TPUs' one publisher)."""
    sigmas = heldout_sigmas()
    assert sigmas["all"] == pytest.approx(_sigma(HELD["held_out_table_pct"]), rel=1e-9)
    assert sigmas["H100"] == pytest.approx(_sigma(HELD.loc[HELD.family == "H100", "held_out_table_pct"]), rel=1e-9)
    tables = HELD.groupby("family").apply(lambda f: len(f.groupby(["source", "table"])), include_groups=False)
    sources = HELD.groupby("family").source.nunique()
    one_table = sorted(tables[tables == 1].index)
    one_source = sorted(set(sources[sources == 1].index) - set(one_table))
    assert one_table == ["B200", "MI325X", "TPU v5e"] and one_source == ["TPU v4", "TPU v5p", "TPU v6e"]
    unseen = pd.concat([HELD.loc[HELD.family.isin(one_table), "held_out_table_pct"],
                        HELD.loc[HELD.family.isin(one_source), "held_out_source_pct"]])
    assert len(unseen) == 64
    assert sigmas["unseen part"] == pytest.approx(_sigma(unseen), rel=1e-9)
    assert 0.13 < sigmas["unseen part"] < 0.15 and 0.06 < sigmas["all"] < 0.07  # median errors 10% and 4.2%


def test_a_fitted_part_a_sibling_and_a_part_no_table_measured():
    sigmas = heldout_sigmas()
    h100, source = throughput_spread(CAT.accelerator("nvidia-h100-sxm-80gb"))
    assert h100 == max(sigmas["all"], sigmas["H100"]) and "H100 rows" in source
    assert throughput_spread(CAT.accelerator("google-tpu-v4"))[0] == sigmas["all"]  # 6 rows: never below all rows
    gaudi3, source = throughput_spread(CAT.accelerator("intel-gaudi3"))
    assert gaudi3 == sigmas["unseen part"] and "inherited from nvidia-h100-sxm-80gb" in source
    assert throughput_spread(CAT.accelerator("nvidia-gb200"))[0] == sigmas["B200"] > sigmas["unseen part"]
    bare = CAT.accelerator("intel-gaudi3").model_copy(update={"perf": None})
    assert throughput_spread(bare) == (sigmas["unseen part"], pytest.approx(throughput_spread(bare)[1]))
    assert "no published rows of its own" in throughput_spread(bare)[1]


def test_a_part_with_its_siblings_compute_takes_its_siblings_spread():
    """H200 and H800 have H100's dense bf16 peak (989 TFLOP/s): what differs (memory, NVLink) the model
    reads from the catalog, so H100's spread applies. The tables' one such transfer, A100 40GB predicted
    from the 80GB rows with its only table held out, has sigma 0.051 (recomputed here). H100 PCIe (756
    TFLOP/s) and GB200 (2,500 against B200's 2,250) are other compute: the unseen-part rule."""
    sigmas = heldout_sigmas()
    forty = HELD.loc[HELD.accelerator == "nvidia-a100-sxm-40gb", "held_out_table_pct"]
    assert sigmas["same compute"] == pytest.approx(_sigma(forty), rel=1e-9) and 0.04 < sigmas["same compute"] < 0.06
    for acc in ("nvidia-h200-sxm-141gb", "nvidia-h800-sxm-80gb"):
        sigma, source = throughput_spread(CAT.accelerator(acc), CAT)
        assert sigma == max(sigmas["all"], sigmas["H100"]) and "the same compute" in source
        assert throughput_spread(CAT.accelerator(acc))[0] == sigmas["unseen part"]  # no catalog: not recognised
    assert throughput_spread(CAT.accelerator("nvidia-h100-pcie-80gb"), CAT)[0] == sigmas["unseen part"]
    assert throughput_spread(CAT.accelerator("nvidia-gb200"), CAT)[0] == sigmas["B200"]


def _est(acc: str, **uncertainty):
    return estimate(scenario_from_dict({"model": {"preset": "llama3-70b"}, "training": {"tokens": 1e12},
                                        "cluster": {"accelerator": acc, "devices": 64},
                                        "uncertainty": {"samples": 2000, **uncertainty}}), CAT)


def test_the_estimate_carries_its_accelerators_spread_into_the_monte_carlo_band():
    """Throughput alone: the compute time's P90 / P10 is exp(2 x 1.2816 x sigma) (lognormal), 1.18x on
    H100 and 1.44x on Gaudi 3, whose priors no Intel row ever tested."""
    only_throughput = {"power": 0.0, "failure_rate": 0.0, "pue": 0.0, "carbon_intensity": 0.0, "price": 0.0}
    for acc in ("nvidia-h100-sxm-80gb", "intel-gaudi3"):
        est = _est(acc)
        sigma = throughput_spread(CAT.accelerator(acc), CAT)[0]
        assert est.basis.throughput_spread == sigma
        u = monte_carlo(est.basis, 40_000, Spreads.for_basis(est.basis, only_throughput), seed=3)
        p10, p90 = np.percentile(u.samples["device_hours"], [10, 90])
        assert p90 / p10 == pytest.approx(math.exp(2 * Z_P90 * sigma), rel=0.02), acc
    h100, gaudi3 = (_est(a).uncertainty for a in ("nvidia-h100-sxm-80gb", "intel-gaudi3"))
    width = lambda u: u["p90"]["device_hours"] / u["p10"]["device_hours"]  # noqa: E731
    assert width(gaudi3) > width(h100)


def test_a_scenarios_uncertainty_section_still_sets_the_spread():
    narrow = _est("intel-gaudi3", throughput=0.01, power=0.0, failure_rate=0.0, pue=0.0,
                  carbon_intensity=0.0, price=0.0).uncertainty
    ratio = narrow["p90"]["device_hours"] / narrow["p10"]["device_hours"]
    assert ratio == pytest.approx(math.exp(2 * Z_P90 * 0.01), rel=0.01)


def test_validate_lists_every_parts_spread_and_its_p10_p90_factors():
    import json

    from typer.testing import CliRunner

    from simulator.cli import app

    out = CliRunner().invoke(app, ["validate", "-f", "json"])
    assert out.exit_code == 0, out.output
    table = json.loads(out.output)["public_tables"]["throughput_spread"]
    assert len(table) == len(CAT.accelerators) == 26
    for row in table:
        sigma = throughput_spread(CAT.accelerator(row["accelerator"]), CAT)[0]
        assert row["sigma"] == round(sigma, 3)
        assert row["p90_x"] == pytest.approx(math.exp(Z_P90 * sigma), abs=1e-3)
        assert row["p10_x"] == pytest.approx(1 / math.exp(Z_P90 * sigma), abs=1e-3)
    priors = {r["accelerator"]: r["priors"] for r in table}
    assert priors["nvidia-h100-sxm-80gb"] == "fitted to public tables"
    assert priors["intel-gaudi2"] == "inherited from nvidia-h100-sxm-80gb"


def test_an_estimate_with_monte_carlo_samples_says_which_throughput_spread_it_used():
    said = [a for a in _est("intel-gaudi3").assumptions if a.startswith("uncertainty: throughput")]
    assert len(said) == 1 and "log-sigma 0.142" in said[0] and "inherited from nvidia-h100-sxm-80gb" in said[0]
    assert not [a for a in _est("intel-gaudi3", throughput=0.2).assumptions if a.startswith("uncertainty:")]
    plain = estimate(scenario_from_dict({"model": {"preset": "llama3-70b"}, "training": {"tokens": 1e12},
                                         "cluster": {"accelerator": "intel-gaudi3", "devices": 64}}), CAT)
    assert not [a for a in plain.assumptions if a.startswith("uncertainty:")]
