"""Whole-project cost: project files, stage forms, sums, errors, and `trainsim project`."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hardware_catalog import load_catalog
from simulator import ScenarioError, estimate, load_scenario, scenario_from_dict
from simulator.cli import app
from simulator.workloads.project import (
    SUMMED_KEYS,
    estimate_project,
    load_project,
    project_from_dict,
    project_from_text,
)

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "project-llama3-70b.toml"
CAT = load_catalog()
runner = CliRunner()

SCENARIO = {
    "model": {"preset": "llama3-8b", "seq_len": 4096},
    "training": {"tokens": 1e11, "global_batch_tokens": 4194304},
    "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 256},
    "datacenter": {"region": "FR"},
}
SCENARIO_TOML = """name = "pre"
[model]
preset = "llama3-8b"
seq_len = 4096
[training]
tokens = 1e11
global_batch_tokens = 4194304
[cluster]
accelerator = "nvidia-h100-sxm-80gb"
devices = 256
[datacenter]
region = "FR"
"""


def inline_stage(name="pre", kind="pretraining", **extra):
    return {"name": name, "kind": kind, **SCENARIO, **extra}


def write(tmp_path, text, name="proj.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def example():
    return estimate_project(load_project(EXAMPLE), CAT)


# --- the shipped example -------------------------------------------------------------------------

def test_example_stages_sum_exactly_to_totals(example):
    assert set(example.totals) == set(SUMMED_KEYS)
    for key in SUMMED_KEYS:
        assert sum(s.values[key] for s in example.stages) == example.totals[key], key
        assert example.totals[key] > 0
    assert [s.kind for s in example.stages] == ["ablations", "pretraining", "context_extension", "post_training",
                                                "evaluation", "serving"]


def test_example_stage_figures_are_one_run_times_repeat(example):
    for s in example.stages:
        for key in SUMMED_KEYS:
            one = 0.0 if key == "train_flops" and s.kind in ("evaluation", "serving") else s.estimate.values[key]
            assert s.values[key] == one * s.repeat, (s.name, key)
    ablations = example.stages[0]
    assert ablations.repeat == 20 and ablations.values["cost_usd"] == 20 * ablations.estimate.cost_usd


def test_example_pretraining_is_the_shipped_scenario(example):
    pre = next(s for s in example.stages if s.kind == "pretraining")
    ref = estimate(load_scenario(ROOT / "examples" / "llama3-70b-h100.toml"), CAT)
    assert pre.estimate.values == ref.values
    assert pre.values["cost_usd"] == ref.cost_usd


def test_example_breakdown_sums_to_totals(example):
    b = example.breakdown
    assert sum(r["cost_usd"] for r in b) == pytest.approx(example.totals["cost_usd"], rel=1e-9)
    assert sum(r["energy_kwh"] for r in b) / 1e3 == pytest.approx(example.totals["energy_mwh"], rel=1e-9)
    co2 = example.totals["co2e_t"] + example.totals["embodied_co2e_t"]
    assert sum(r["co2e_kg"] for r in b) / 1e3 == pytest.approx(co2, rel=1e-9)


def test_example_serving_is_modelled_for_the_stage_months(example):
    serving = next(s for s in example.stages if s.kind == "serving")
    v = serving.estimate.values
    assert v["device_hours"] == pytest.approx(256 * 6 * 730.5)
    assert serving.values["train_flops"] == 0.0
    assert not any("without a [serving] section" in n for n in serving.notes)
    # 60 requests/s x 500 output tokens, fleet sized for the 1.5x peak
    assert v["utilisation"] == pytest.approx(60 * 500 / v["capacity_tokens_per_s"], rel=1e-12)
    assert v["devices_needed"] <= 256 and v["utilisation"] * 1.5 <= 1
    assert v["output_mtok"] == pytest.approx(60 * 500 * 6 * 730.5 * 3600 / 1e6, rel=1e-12)


def test_example_post_training_is_rlhf(example):
    post = next(s for s in example.stages if s.kind == "post_training")
    v = post.estimate.values
    assert v["workload"] == "rlhf-ppo" and v["rlhf_sequences"] == 1_000_000
    phases = {b["component"] for b in post.estimate.breakdown}
    assert {"rollout_generation", "scoring_forward", "policy_update", "critic_update"} <= phases


def test_to_dict_has_stages_and_totals(example):
    d = json.loads(example.to_json())
    assert [s["name"] for s in d["stages"]] == [s.name for s in example.stages]
    assert d["totals"] == example.totals
    assert d["stages"][0]["repeat"] == 20 and "breakdown" in d["stages"][0]["run"]
    assert len(example.rows()) == len(example.stages) and example.total_row()["name"] == "total"


def test_to_toml_round_trips_as_a_self_contained_project(example):
    project = load_project(EXAMPLE)
    again = estimate_project(project_from_text(project.to_toml(), "upload.toml", base_dir=None), CAT)
    assert again.totals == example.totals


# --- stage forms ---------------------------------------------------------------------------------

def test_inline_path_and_base_set_forms_give_the_library_numbers(tmp_path):
    write(tmp_path, SCENARIO_TOML, "pre.toml")
    write(tmp_path, SCENARIO_TOML.replace("tokens = 1e11", "tokens = 5e10"), "small.toml")
    proj = write(tmp_path, """name = "forms"
[[stage]]
name = "by-path"
kind = "pretraining"
scenario = "pre.toml"
[[stage]]
name = "by-base"
kind = "pretraining"
base = "small.toml"
set = ["training.tokens=1e11"]
[[stage]]
name = "inline"
kind = "pretraining"
[stage.model]
preset = "llama3-8b"
seq_len = 4096
[stage.training]
tokens = 1e11
global_batch_tokens = 4194304
[stage.cluster]
accelerator = "nvidia-h100-sxm-80gb"
devices = 256
[stage.datacenter]
region = "FR"
""")
    pe = estimate_project(load_project(proj), CAT)
    ref = estimate(scenario_from_dict(SCENARIO), CAT)
    assert [s.source for s in pe.stages] == [str(tmp_path / "pre.toml"), str(tmp_path / "small.toml"), "inline"]
    for s in pe.stages:
        for key in SUMMED_KEYS:
            assert s.values[key] == ref.values[key], (s.name, key)


def test_repeat_multiplies(tmp_path):
    one = estimate_project(project_from_dict({"stage": [inline_stage()]}, "p.toml"), CAT)
    three = estimate_project(project_from_dict({"stage": [inline_stage(repeat=3)]}, "p.toml"), CAT)
    for key in SUMMED_KEYS:
        assert three.totals[key] == 3 * one.totals[key]


def test_device_hours_serving_stage(tmp_path):
    serving = inline_stage("serve", "serving", months=2)
    pe = estimate_project(project_from_dict({"name": "x", "stage": [serving]}, "p.toml"), CAT)
    assert pe.totals["device_hours"] == pytest.approx(256 * 2 * 730.5)
    assert pe.totals["train_flops"] == 0.0
    given = inline_stage("serve", "serving")
    given["training"] = {**SCENARIO["training"], "tokens": 1e9, "device_hours": 1000.0}
    pe = estimate_project(project_from_dict({"stage": [given]}, "p.toml"), CAT)
    assert pe.totals["device_hours"] == pytest.approx(1000.0)


# --- errors name the file, the stage and the field -----------------------------------------------

def test_bad_inline_field_names_file_stage_and_field():
    bad = inline_stage("big", cluster={"accelerator": "nvidia-h100-sxm-80gb", "devices": 0})
    with pytest.raises(ScenarioError, match=r"^proj\.toml: stage 2 'big': cluster\.devices: "):
        project_from_dict({"stage": [inline_stage("a"), bad]}, "proj.toml")


def test_bad_field_in_a_stage_file_names_both_files(tmp_path):
    write(tmp_path, SCENARIO_TOML.replace("devices = 256", "devices = -1"), "pre.toml")
    proj = write(tmp_path, '[[stage]]\nname = "p"\nkind = "pretraining"\nscenario = "pre.toml"\n')
    with pytest.raises(ScenarioError, match=r"proj\.toml: stage 1 'p': .*pre\.toml: cluster\.devices: "):
        load_project(proj)


def test_bad_set_override_names_the_field(tmp_path):
    write(tmp_path, SCENARIO_TOML, "pre.toml")
    proj = write(tmp_path, '[[stage]]\nname = "p"\nkind = "pretraining"\nbase = "pre.toml"\n'
                           'set = ["training.tokens=-5"]\n')
    with pytest.raises(ScenarioError, match=r"proj\.toml: stage 1 'p': .*pre\.toml: training\.tokens: "):
        load_project(proj)
    proj = write(tmp_path, '[[stage]]\nname = "p"\nkind = "pretraining"\nbase = "pre.toml"\nset = ["oops"]\n')
    with pytest.raises(ScenarioError, match=r"proj\.toml: stage 1 'p': set\[0\]: 'oops'"):
        load_project(proj)


def test_missing_stage_file(tmp_path):
    proj = write(tmp_path, '[[stage]]\nname = "p"\nkind = "pretraining"\nscenario = "nope.toml"\n')
    with pytest.raises(ScenarioError, match=r"proj\.toml: stage 1 'p': scenario: scenario file not found: .*nope\.toml"):
        load_project(proj)


def test_uploaded_project_with_a_path_says_it_must_be_self_contained():
    text = '[[stage]]\nname = "p"\nkind = "pretraining"\nscenario = "pre.toml"\n'
    with pytest.raises(ScenarioError, match=r"up\.toml: stage 1 'p': scenario: .*uploaded project.*inline"):
        project_from_text(text, "up.toml", base_dir=None)


def test_duplicate_stage_names():
    with pytest.raises(ScenarioError, match=r"proj\.toml: stage 2 'a': name: duplicate stage name \(stage 1"):
        project_from_dict({"stage": [inline_stage("a"), inline_stage("a")]}, "proj.toml")


def test_no_stages():
    with pytest.raises(ScenarioError, match=r"proj\.toml: stage: no stages"):
        project_from_dict({"name": "empty"}, "proj.toml")
    with pytest.raises(ScenarioError, match=r"proj\.toml: stage: expected \[\[stage\]\] tables"):
        project_from_dict({"stage": inline_stage()}, "proj.toml")


@pytest.mark.parametrize("stage, message", [
    ({"name": "x", "kind": "pretraining"}, r"stage 1 'x': scenario: required"),
    ({"kind": "pretraining", **SCENARIO}, r"stage 1: name: required but missing"),
    (inline_stage("x", kind="finetune"), r"stage 1 'x': kind: Input should be 'ablations'"),
    (inline_stage("x", repeat=0), r"stage 1 'x': repeat: Input should be greater than or equal to 1"),
    (inline_stage("x", colour="red"), r"stage 1 'x': colour: unknown key"),
    (inline_stage("x", scenario="a.toml"), r"stage 1 'x': scenario: give only one of scenario, base or inline"),
    (inline_stage("x", set=["a.b=1"]), r"stage 1 'x': set: only with base"),
    (inline_stage("x", "serving"), r"stage 1 'x': training\.device_hours: required for kind = \"serving\""),
    (inline_stage("x", months=1, training={**SCENARIO["training"], "device_hours": 5.0}),
     r"stage 1 'x': months: give months or training.device_hours, not both"),
    (inline_stage("x", model={"preset": "llama-9000"}), r"stage 1 'x': model.preset: unknown preset 'llama-9000'"),
])
def test_stage_errors(tmp_path, stage, message):
    with pytest.raises(ScenarioError, match=r"^proj\.toml: " + message):
        project_from_dict({"stage": [stage]}, "proj.toml", tmp_path)


def test_estimate_time_error_names_the_stage():
    bad = inline_stage("hw", cluster={"accelerator": "nvidia-h100-sxm-8gb", "devices": 8})
    project = project_from_dict({"stage": [bad]}, "proj.toml")
    with pytest.raises(ScenarioError, match=r"^proj\.toml: stage 1 'hw': cluster\.accelerator: "):
        estimate_project(project, CAT)


def test_unknown_top_level_key_and_bad_toml(tmp_path):
    with pytest.raises(ScenarioError, match=r"^proj\.toml: stages: unknown key"):
        project_from_dict({"stages": []}, "proj.toml")
    with pytest.raises(ScenarioError, match=r"proj\.toml: not valid TOML"):
        load_project(write(tmp_path, "name = ["))
    with pytest.raises(ScenarioError, match=r"cannot read project file"):
        load_project(tmp_path / "missing.toml")


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_json_has_stages_and_totals(example):
    r = runner.invoke(app, ["project", str(EXAMPLE), "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert set(d) >= {"stages", "totals"}
    assert d["totals"]["cost_usd"] == pytest.approx(example.totals["cost_usd"])
    assert [s["name"] for s in d["stages"]] == [s.name for s in example.stages]


def test_cli_table_and_csv_render(example):
    r = runner.invoke(app, ["project", str(EXAMPLE)])
    assert r.exit_code == 0, r.output
    for s in example.stages:
        assert s.name in r.stdout
    assert "total" in r.stdout and "device_hours" in r.stdout
    r = runner.invoke(app, ["project", str(EXAMPLE), "--format", "csv"])
    assert r.exit_code == 0
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("name,kind,repeat") and lines[-1].startswith("total,")
    assert len(lines) == len(example.stages) + 2


def test_cli_error_is_one_line(tmp_path):
    proj = write(tmp_path, '[[stage]]\nname = "p"\nkind = "pretraining"\nscenario = "nope.toml"\n')
    r = runner.invoke(app, ["project", str(proj)])
    assert r.exit_code == 1
    assert r.stdout == ""
    err = r.stderr.strip()
    assert err.startswith("error: ") and "stage 1 'p': scenario:" in err and "\n" not in err
    assert "Traceback" not in r.output


def test_uploaded_project_reads_no_server_files(tmp_path):
    write(tmp_path, SCENARIO_TOML, "pre.toml")
    text = f'[[stage]]\nname = "p"\nkind = "pretraining"\nscenario = "{tmp_path / "pre.toml"}"\n'
    with pytest.raises(ScenarioError, match=r"stage 1 'p': scenario: .*uploaded project"):
        project_from_text(text, "up.toml", base_dir=None)
    assert load_project(write(tmp_path, text)).stages[0].source == str(tmp_path / "pre.toml")  # fine from a file
    profile = inline_stage("p", efficiency={"profile": "/etc/profile.toml"})
    with pytest.raises(ScenarioError, match=r"stage 1 'p': efficiency\.profile: an uploaded scenario cannot name files"):
        project_from_dict({"stage": [profile]}, "up.toml", None)


def test_uploaded_carbon_profile_path_reveals_nothing_about_the_server():
    """Issue 13 item 1: `carbon_profile = "/etc/passwd"` in an upload showed the file's first line;
    "not found" vs "malformed" told which files exist. Now every server path gets the same refusal,
    before anything is opened; only the shipped example may be named (by its file name)."""
    messages = []
    for path in ("/etc/passwd", "/etc/no-such-file", "/dev/zero", "../simulator/data/grid.csv"):
        stage = inline_stage("p", datacenter={"carbon_profile": path})
        with pytest.raises(ScenarioError) as info:
            project_from_dict({"stage": [stage]}, "up.toml", None)
        messages.append(str(info.value))
    assert len(set(messages)) == 1 and "root" not in messages[0] and "/etc" not in messages[0]
    assert messages[0].startswith("up.toml: stage 1 'p': datacenter.carbon_profile: an uploaded scenario cannot name")
    shipped = inline_stage("p", datacenter={"carbon_profile": "carbon_profile_us-virginia_example.csv",
                                            "region": "us-virginia"})  # the example's region (issue 15 item 1)
    with pytest.raises(ScenarioError, match="carbon_profile_us-virginia_example.csv is an hourly profile for "
                                            "region 'us-virginia', not for datacenter.region 'WORLD'") as info:
        estimate_project(project_from_dict({"stage": [inline_stage(
            "p", datacenter={"carbon_profile": "carbon_profile_us-virginia_example.csv"})]}, "up.toml", None), CAT)
    assert "/" not in str(info.value).split("datacenter.carbon_profile: ", 1)[1]  # no server path
    proj = project_from_dict({"stage": [shipped]}, "up.toml", None)
    est = estimate_project(proj, CAT)
    assert est.stages[0].estimate.values["co2e_t_hourly"] > 0
