"""The trainsim CLI: output formats and one-line errors (no tracebacks) on bad input."""

import json
from pathlib import Path

import pytest

from typer.testing import CliRunner

from simulator.cli import app
from simulator.estimate import CONTRACT_KEYS

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "llama3-70b-h100.toml"
runner = CliRunner()

GOOD = """
[model]
preset = "llama3-8b"
[training]
tokens = 1e12
global_batch_tokens = 4194304
[cluster]
accelerator = "nvidia-h100-sxm-80gb"
devices = 256
"""


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_estimate_json_has_contract_keys():
    r = run("estimate", EXAMPLE, "--format", "json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert all(k in d for k in CONTRACT_KEYS)


def test_set_override_changes_result():
    a = json.loads(run("estimate", EXAMPLE, "-f", "json").stdout)
    b = json.loads(run("estimate", EXAMPLE, "-f", "json", "--set", "cluster.devices=8192").stdout)
    assert b["devices"] == 8192
    assert b["wall_clock_days"] < a["wall_clock_days"]
    c = json.loads(run("estimate", EXAMPLE, "-f", "json", "--set", "cluster.accelerator=nvidia-h200-sxm-141gb").stdout)
    assert c["accelerator"] == "nvidia-h200-sxm-141gb"


def test_csv_is_one_row_with_header():
    r = run("estimate", EXAMPLE, "-f", "csv")
    lines = r.stdout.strip().splitlines()
    assert r.exit_code == 0 and len(lines) == 2
    assert "device_hours" in lines[0].split(",") and "plan_tp" in lines[0].split(",")


def test_table_output():
    r = run("estimate", EXAMPLE)
    assert r.exit_code == 0 and "device-hours" in r.stdout and "breakdown" in r.stdout


@pytest.mark.parametrize("text,expected", [
    (GOOD.replace("nvidia-h100-sxm-80gb", "nvidia-h100-sxm-8gb"), "cluster.accelerator: unknown accelerator"),
    (GOOD.replace("devices = 256", "devices = -4"), "cluster.devices: Input should be greater than 0"),
    (GOOD.replace("devices = 256", 'devices = "many"'), "cluster.devices"),
    (GOOD.replace("[training]\ntokens = 1e12\nglobal_batch_tokens = 4194304\n", ""), "training: required but missing"),
    (GOOD + "\n[datacenter]\npeu = 1.2\n", "datacenter.peu: unknown key"),
    (GOOD.replace('preset = "llama3-8b"', 'preset = "llama9"'), "model.preset: unknown preset"),
    (GOOD.replace("tokens = 1e12", "tokens = 0"), "training.tokens"),
    (GOOD + "\n[datacenter]\nregion = \"XX\"\n", "datacenter.region: unknown region"),
    (GOOD + "\n[parallelism]\ntp = 3\npp = 1\n", "parallelism.tp: 3 does not divide"),
    (GOOD.replace("[model]", "[model\n"), "not valid TOML"),
    (GOOD + "\n[efficiency]\nmfu = 0.4\n", "efficiency.mfu: no longer an input"),
])
def test_bad_scenario_one_line_error(tmp_path, text, expected):
    p = write(tmp_path, text)
    r = run("estimate", p)
    assert r.exit_code == 1
    assert expected in r.stderr
    assert str(p) in r.stderr  # names the file
    assert "Traceback" not in r.output and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1


def test_missing_file(tmp_path):
    r = run("estimate", tmp_path / "nope.toml")
    assert r.exit_code == 1 and "cannot read scenario file" in r.stderr


def test_bad_set_syntax():
    r = run("estimate", EXAMPLE, "--set", "cluster.devices")
    assert r.exit_code == 1 and "expected key.path=value" in r.stderr


def test_plan_too_large_says_by_how_much(tmp_path):
    p = write(tmp_path, GOOD.replace("llama3-8b", "gpt3-175b").replace("4194304", "3145728")
              + "\n[parallelism]\ntp = 1\npp = 1\nzero = 0\ndp = 256\n")
    r = run("estimate", p)
    assert r.exit_code == 1 and "over by" in r.stderr and "GB" in r.stderr


def test_plan_command_json():
    r = run("plan", "--flops", "5.76e23", "-f", "json", "--fit", "epoch2024")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)[0]
    assert row["params"] == pytest.approx(70e9, rel=0.05)  # Hoffmann 2022: Chinchilla 70B / 1.4T
    assert row["tokens"] == pytest.approx(1.4e12, rel=0.08)


@pytest.mark.parametrize("budget, measure", [(("--days", "20"), "wall_clock_days"),
                                             (("--usd", "1e6", "--usd-per-device-hour", "2.5"), "cost_usd")])
def test_plan_budget_agrees_with_trainsim_estimate(tmp_path, budget, measure):
    """`plan --days/--usd` times the compute-optimal run with the performance model: `trainsim estimate`
    of the scenario it reports gives the same tokens/s and days, and the run meets the budget."""
    from simulator import scenario_from_dict

    r = run("plan", *budget, "--devices", "256", "--fit", "epoch2024", "-f", "json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert row["scenario"]["model"] == {"params": row["params"]} and row["scenario"]["training"]["tokens"] == row["tokens"]
    p = write(tmp_path, scenario_from_dict(row["scenario"]).to_toml())
    r = run("estimate", p, "-f", "json")
    assert r.exit_code == 0, r.output
    est = json.loads(r.stdout)
    for key in ("tokens_per_s", "wall_clock_days", "mfu", "device_hours"):
        assert row[key] == pytest.approx(est[key], rel=1e-9), key
    assert row["efficiency_source"] == est["efficiency_source"]
    assert row[measure] == pytest.approx(float(budget[1]), rel=1e-9)
    assert row["tokens"] == pytest.approx(row["optimal_tokens"], rel=0.1)  # within a few % of the fit's D / N


def test_plan_usd_needs_devices():
    r = run("plan", "--usd", "1e6")
    assert r.exit_code == 2 and "--devices" in r.output


def test_plan_command_needs_one_budget():
    assert run("plan").exit_code == 2
    r = run("plan", "--flops", "1e23", "--fit", "nope")
    assert r.exit_code == 1 and "nope" in r.stderr


def test_catalog_list_show_validate(tmp_path):
    r = run("catalog", "list", "-f", "json")
    listed = {row["id"]: row for row in json.loads(r.stdout)}
    assert "nvidia-h100-sxm-80gb" in listed and "google-tpu-v5p" in listed
    assert listed["nvidia-h100-sxm-80gb"]["perf_priors"] == "fitted to public tables"
    assert listed["intel-gaudi3"]["perf_priors"] == "inherited from nvidia-h100-sxm-80gb"
    r = run("catalog", "show", "h100")
    assert r.exit_code == 0 and "989.4" in r.stdout
    r = run("catalog", "list", "--kind", "regions", "-f", "json")
    assert {"US", "FR", "WORLD", "us-virginia"} <= {row["id"] for row in json.loads(r.stdout)}


def test_catalog_validate_missing_source(tmp_path):
    src = (ROOT / "hardware_catalog/accelerators/nvidia-h100-sxm-80gb.toml").read_text()
    bad = src.replace('id = "nvidia-h100-sxm-80gb"', 'id = "my-gpu"').replace(
        'bf16 = { value = 989.4, source = "glennklockwood.com/garden/processors/h100; Epoch AI ML hardware data (dense)" }',
        "bf16 = { value = 989.4 }")
    p = write(tmp_path, bad, "my-gpu.toml")
    r = run("catalog", "validate", p)
    assert r.exit_code == 1
    assert "peak_tflops_dense.bf16.source" in r.stderr and "my-gpu.toml" in r.stderr
    good = write(tmp_path, src.replace('id = "nvidia-h100-sxm-80gb"', 'id = "my-gpu"').replace(
        'aliases = ["h100", "h100-sxm", "nvidia-h100-sxm5-80gb"]', "aliases = []"), "ok.toml")
    r = run("catalog", "validate", good)
    assert r.exit_code == 0 and "ok: 1 entries valid" in r.stderr


def test_user_catalog_overlay_used_by_estimate(tmp_path):
    src = (ROOT / "hardware_catalog/accelerators/nvidia-h100-sxm-80gb.toml").read_text()
    mine = src.replace('id = "nvidia-h100-sxm-80gb"', 'id = "my-h100-capped"').replace(
        'aliases = ["h100", "h100-sxm", "nvidia-h100-sxm5-80gb"]', "aliases = []").replace(
        "tdp_w = { value = 700", "tdp_w = { value = 500")
    (tmp_path / "cat").mkdir()
    write(tmp_path / "cat", mine, "mine.toml")
    scen = write(tmp_path, GOOD.replace("nvidia-h100-sxm-80gb", "my-h100-capped"))
    r = run("estimate", scen, "-f", "json", "--catalog", tmp_path / "cat", "--set", "datacenter.power_model=\"tdp\"")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["accelerator"] == "my-h100-capped" and d["power_w_per_device"] == 500


@pytest.mark.parametrize("path", [p for p in sorted((ROOT / "examples").glob("*.toml")) if not p.name.startswith("project-")], ids=lambda p: p.stem)
def test_every_example_through_cli_json(path):
    r = run("estimate", path, "--format", "json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    missing = [k for k in CONTRACT_KEYS if k not in d]
    assert not missing
    assert all(d[k] == d[k] and abs(d[k]) != float("inf") for k in CONTRACT_KEYS[:-2])


def test_validate_command_reports_rows_and_summary():
    r = run("validate", "-f", "json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    quantities = {(s["quantity"], s["method"]) for s in d["summary"]}
    assert ("energy_mwh", "tdp convention") in quantities and ("device_hours", "reported throughput (arithmetic)") in quantities
    assert len(d["rows"]) >= 40


def test_plan_reverse_from_target_loss():
    r = run("plan", "--loss", "2.0", "--fit", "epoch2024", "-f", "json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)[0]
    assert row["loss"] == pytest.approx(2.0, rel=1e-6)
    r = run("plan", "--loss", "1.5", "--fit", "epoch2024")  # below Epoch's irreducible E = 1.8172
    assert r.exit_code == 1 and "1.8172" in r.stderr


def test_catalog_validate_shipped_folder_and_duplicate_overlay(tmp_path):
    r = run("catalog", "validate", ROOT / "hardware_catalog")
    assert r.exit_code == 0, r.output
    copy = write(tmp_path, (ROOT / "hardware_catalog/accelerators/amd-mi300x.toml").read_text(), "copy.toml")
    r = run("catalog", "validate", copy)
    assert r.exit_code == 1 and "already defined" in r.stderr and "override = true" in r.stderr


def test_search_command_json_contract():
    r = run("search", EXAMPLE, "--top", "3", "-f", "json", "--set", "parallelism.tp=8")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["plans_evaluated"] >= len(d["plans"]) == 3 and d["seconds"] > 0
    assert all(all(k in p for k in CONTRACT_KEYS) for p in d["plans"])
    times = [p["step_time_s"] for p in d["plans"]]
    assert times == sorted(times)
    assert d["pareto"] and d["pareto"][0]["step_time_s"] == pytest.approx(times[0])


def test_search_command_bad_input(tmp_path):
    assert run("search", EXAMPLE, "--objective", "speed").exit_code == 2
    p = write(tmp_path, GOOD + "\n[parallelism]\ntp = 3\n")
    r = run("search", p)
    assert r.exit_code == 1 and "parallelism.tp: 3" in r.stderr and "Traceback" not in r.output


def test_version_prints_the_package_version():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    r = run("--version")
    assert r.exit_code == 0 and r.stdout == f"{project['name']} {project['version']}\n"
    assert run("--help").stdout.count("--version") == 1


def test_uncertainty_table_shows_p10_p50_p90():
    r = run("estimate", EXAMPLE, "--uncertainty", "1000")
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stdout.splitlines() if "quantity" in line and "value" in line)
    assert "p10" in header and "p50" in header and "p90" in header
    assert header.index("p10") < header.index("p50") < header.index("p90")
    wall = next(line for line in r.stdout.splitlines() if "wall clock" in line)
    p10, p50, p90 = (float(x.replace(",", "")) for x in wall.strip("│┃ ").split("│")[-3:])
    assert p10 < p50 < p90
