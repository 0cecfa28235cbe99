"""Plausibility warnings (issue 15 item 6): accepted inputs that no real run has are named, with the
value and what it was compared with; a plausible scenario has none, and a warning changes no figure."""

import json

import pytest
from typer.testing import CliRunner

from hardware_catalog import load_catalog
from simulator import estimate, scenario_from_dict
from simulator.cli import app

CAT = load_catalog(use_env=False)
BASE = {"model": {"preset": "llama3-8b"}, "training": {"tokens": 1e12, "global_batch_tokens": 4e6},
        "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 64}, "datacenter": {"region": "us-virginia"}}


def run(**sections):
    data = {k: dict(v) for k, v in BASE.items()}
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return estimate(scenario_from_dict(data), CAT)


def test_a_plausible_scenario_has_no_warning():
    assert run().warnings == []


LONG = {"cluster": {"devices": 8192}, "training": {"global_batch_tokens": 16 * 10_000_000.0}}


@pytest.mark.parametrize("sections, key, words", [
    ({"model": {"seq_len": 10_000_000}, **LONG}, "model.seq_len 10,000,000", "76x the longest published"),
    ({"training": {"global_batch_tokens": 1000}}, "training.global_batch_tokens 1,000", "less than one sequence"),
    ({"datacenter": {"pue": 5.0}}, "datacenter.pue 5", "industry average is 1.56"),
    ({"datacenter": {"carbon_intensity_kg_per_kwh": 3.5}}, "datacenter.carbon_intensity_kg_per_kwh 3.5", "above coal"),
    ({"pricing": {"usd_per_device_hour": 500.0}}, "pricing.usd_per_device_hour 500", "highest cloud price"),
    # the catalog lists v5p's FP8 peak equal to its BF16 one (Google's v5p page)
    ({"training": {"precision": "fp8"}, "cluster": {"accelerator": "google-tpu-v5p"}}, "training.precision fp8",
     "google-tpu-v5p's fp8 peak, 459 TFLOP/s, is no higher than its bf16 peak"),
])
def test_each_implausible_input_is_named_with_its_value(sections, key, words):
    warnings = run(**sections).warnings
    assert len(warnings) == 1 and warnings[0].startswith(key) and words in warnings[0], warnings


@pytest.mark.parametrize("sections", [
    # the threshold itself, 8 x Llama 3's 131,072 (enough devices for the context to fit)
    {"model": {"seq_len": 1_048_576}, "cluster": {"devices": 1024}, "training": {"global_batch_tokens": 16 * 1_048_576.0}},
    {"training": {"global_batch_tokens": 8192}},  # exactly one sequence
    {"datacenter": {"pue": 3.0}},
    {"datacenter": {"carbon_intensity_kg_per_kwh": 1.2}},
])
def test_thresholds_are_inclusive(sections):
    assert run(**sections).warnings == []


@pytest.mark.parametrize("acc", ["nvidia-h100-sxm-80gb", "intel-gaudi2", "google-tpu7x"])
def test_fp8_on_a_part_with_its_own_fp8_rate_is_not_warned(acc):
    assert run(training={"precision": "fp8"}, cluster={"accelerator": acc}).warnings == []


def test_a_warning_changes_no_figure():
    """PUE 3 (no warning) and 3.0001 (a warning): the same time, and facility energy in the PUE ratio."""
    quiet, loud = run(datacenter={"pue": 3.0}), run(datacenter={"pue": 3.0001})
    assert quiet.warnings == [] and len(loud.warnings) == 1
    assert loud.wall_clock_days == quiet.wall_clock_days
    assert loud.energy_mwh / quiet.energy_mwh == pytest.approx(3.0001 / 3.0, rel=1e-9)
    assert json.loads(loud.to_json())["warnings"] == loud.warnings


def test_cli_prints_warnings_on_stderr_and_json_keeps_them(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[model]\npreset = "llama3-8b"\n[training]\ntokens = 1e12\n[cluster]\n'
                    'accelerator = "nvidia-h100-sxm-80gb"\ndevices = 64\n[datacenter]\npue = 5.0\n')
    result = CliRunner().invoke(app, ["estimate", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "warning: datacenter.pue 5" in result.stderr
    assert json.loads(result.stdout)["warnings"][0].startswith("datacenter.pue 5")


def test_a_derived_or_substituted_peak_is_quoted_with_its_catalog_note():
    """The estimate says when the dense peak it ran at is not a plain vendor figure: V100's FP16 rate
    stored as bf16 (V100 has no BF16), B200's FP8 peak derived from the sparse figure. H100's sourced
    peaks carry no note and add nothing."""
    def peak_notes(acc, precision):
        est = run(cluster={"accelerator": acc, "devices": 8}, training={"precision": precision})
        return [a for a in est.assumptions if a.startswith("peak: ")]

    (v100,) = peak_notes("nvidia-v100-sxm2-32gb", "bf16")
    assert "bf16 dense peak, 125 TFLOP/s" in v100 and "V100 has no BF16" in v100
    (b200,) = peak_notes("nvidia-b200", "fp8")
    assert "fp8 dense peak, 4500 TFLOP/s" in b200 and "DERIVED: vendor sparse figure halved" in b200
    assert peak_notes("nvidia-h100-sxm-80gb", "bf16") == [] and peak_notes("nvidia-h100-sxm-80gb", "fp8") == []
    assert peak_notes("google-tpu-v5p", "fp8") == []  # the warning above says it once


def test_serving_quotes_the_note_on_the_peak_its_weights_dtype_runs_at():
    """FP8 weights on B200 run at its FP8 peak, derived from the sparse figure; H100's is sourced."""
    def peak_notes(acc, dtype):
        sc = {"model": {"preset": "llama3-8b"}, "cluster": {"accelerator": acc, "devices": 8},
              "serving": {"prompt_tokens": 1000, "output_tokens": 200, "dtype": dtype, "kv_dtype": "fp8"}}
        return [a for a in estimate(scenario_from_dict(sc), CAT).assumptions if a.startswith("peak: ")]

    assert peak_notes("nvidia-b200", "fp8") == [
        "peak: nvidia-b200's fp8 dense peak, 4500 TFLOP/s (catalog note: DERIVED: vendor sparse figure halved)"]
    assert peak_notes("nvidia-h100-sxm-80gb", "fp8") == []
