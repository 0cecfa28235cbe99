"""Scaling, calibration, validation and catalog pages (AppTest through the entry point) and the
pure builders of dashboard/charts_model.py."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import charts_model
from dashboard.data import UPLOADS_KEY
from hardware_catalog import load_catalog
from simulator.model.scaling import get_fit
from simulator.validation.runs import run_validation
from simulator.validation.public import heldout_summary

ROOT = Path(__file__).parents[2]
APP = str(ROOT / "dashboard" / "streamlit_app.py")
H100 = (ROOT / "hardware_catalog" / "accelerators" / "nvidia-h100-sxm-80gb.toml").read_text()
RENDER_TIMES: dict[str, float] = {}


def page(at: AppTest, name: str) -> AppTest:
    at.switch_page(f"app_pages/{name}.py")
    t0 = time.perf_counter()
    at.run()
    RENDER_TIMES.setdefault(name, time.perf_counter() - t0)
    return at


def df(at: AppTest, key: str) -> pd.DataFrame:
    return at.get_by_key(key).dataframe[0].value


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.mark.parametrize("name", ["scaling", "calibration", "validation", "catalog"])
def test_default_render(app, name):
    at = page(app, name)
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    print(f"{name}: default render {RENDER_TIMES[name]:.2f} s")


# --- scaling -------------------------------------------------------------------------------------
def test_scaling_default_matches_library(app):
    at = page(app, "scaling")
    table = df(at, "sc_table")
    assert list(table["fit"]) == ["Hoffmann 2022", "Epoch 2024", "Kaplan 2020"]
    n, d = get_fit("epoch2024").compute_optimal(1e24)
    row = table[table["fit"] == "Epoch 2024"].iloc[0]
    assert row["N* (params)"] == pytest.approx(n) and row["D* (tokens)"] == pytest.approx(d)
    loss, frontier = figures(at)
    names = [t["name"] for t in loss["data"]]
    assert {"Hoffmann 2022", "Epoch 2024", "Kaplan 2020"} <= set(names) and any("your run" in x for x in names)
    assert frontier["layout"]["yaxis"]["type"] == "log" and frontier["layout"]["xaxis"]["type"] == "log"
    assert "llama3-70b" in at.info[0].value


def test_budget_changes_compute_optimal_allocation(app):
    at = page(app, "scaling")
    before = df(at, "sc_table")["N* (params)"].tolist()
    at.number_input(key="sc_flops").set_value(1e22).run()
    after = df(at, "sc_table")
    assert not at.exception
    assert all(a < b for a, b in zip(after["N* (params)"], before))
    n, d = get_fit("hoffmann2022").compute_optimal(1e22)
    row = after[after["fit"] == "Hoffmann 2022"].iloc[0]
    assert row["N* (params)"] == pytest.approx(n) and row["tokens per param"] == pytest.approx(d / n)


def test_scaling_reads_planner_state_and_reports_a_bad_one(app):
    app.session_state["model"] = "params"
    app.session_state["params_b"] = 7.0
    app.session_state["tokens_t"] = 2.0
    at = page(app, "scaling")
    assert "7B parameters" in at.info[0].value and "2T tokens" in at.info[0].value
    at.session_state["params_b"] = -1.0
    at.run()
    assert not at.exception
    assert "not valid" in texts(at.warning)


def test_budget_from_share_link(app):
    app.query_params["sc_flops"] = "3e21"
    at = page(app, "scaling")
    assert at.number_input(key="sc_flops").value == pytest.approx(3e21)


# --- validation ------------------------------------------------------------------------------------
def test_validation_table_matches_library(app):
    at = page(app, "validation")
    rows = df(at, "val_rows")
    checks = run_validation()
    assert len(rows) == len(checks)
    assert rows["error_pct"].tolist() == pytest.approx([c.error_pct for c in checks])
    assert len(figures(at)) == rows["quantity"].nunique()


def test_validation_public_tables_match_library(app):
    at = page(app, "validation")
    table = df(at, "val_public_table")
    expected = heldout_summary("table")
    assert table["family"].tolist() == [g["family"] for g in expected]
    assert table["median_abs_pct"].tolist() == pytest.approx([g["median_abs_pct"] for g in expected])


def test_validation_shows_each_accelerators_throughput_spread(app):
    from hardware_catalog import load_catalog
    from simulator.validation.spread import spread_table

    table = df(page(app, "validation"), "val_spread")
    expected = spread_table(load_catalog())
    assert table["accelerator"].tolist() == [r["accelerator"] for r in expected] and len(table) == 26
    assert table["sigma"].tolist() == pytest.approx([r["sigma"] for r in expected])


def test_validation_filter_by_quantity(app):
    at = page(app, "validation")
    at.selectbox(key="val_quantity").select("energy_mwh").run()
    rows, summ = df(at, "val_rows"), df(at, "val_summary")
    assert len(rows) > 0 and set(rows["quantity"]) == {"Energy (MWh)"}  # by name (dashboard.formats.label)
    assert set(summ["quantity"]) == {"Energy (MWh)"}
    (fig,) = figures(at)
    assert fig["layout"]["xaxis"]["type"] == "log" and any(t["name"] == "y = x (perfect)" for t in fig["data"])


def test_validation_bad_link_falls_back_to_all(app):
    app.query_params["val_quantity"] = "no-such-quantity"
    at = page(app, "validation")
    assert not at.exception and at.selectbox(key="val_quantity").value == "all"


# --- catalog -------------------------------------------------------------------------------------------
def test_catalog_tables_and_sources(app):
    at = page(app, "catalog")
    cat = load_catalog()
    assert set(df(at, "cat_acc_table")["id"]) == set(cat.accelerators)
    priors = df(at, "cat_acc_table").set_index("id")["perf_priors"]
    assert priors["nvidia-h100-sxm-80gb"] == "fitted to public tables"
    assert priors["aws-trainium2"] == "inherited from nvidia-h100-sxm-80gb"
    assert set(df(at, "cat_region_table")["id"]) == set(cat.regions)
    detail = df(at, "cat_accelerator_detail")
    bf16 = detail[detail["field"] == "peak_tflops_dense.bf16"].iloc[0]
    assert bf16["value"] == 989.4 and "glennklockwood" in bf16["source"]
    assert (detail["status"] == "⚠ unverified").any()


def test_catalog_selection_changes_the_entry(app):
    at = page(app, "catalog")
    at.selectbox(key="cat_acc").select("amd-mi300x").run()
    detail = df(at, "cat_accelerator_detail")
    mi300 = load_catalog().accelerator("amd-mi300x")
    assert detail[detail["field"] == "memory.hbm_gb"]["value"].iloc[0] == mi300.memory.hbm_gb.value
    assert "amd-mi300x" in texts(at.markdown)
    at.selectbox(key="cat_region").select("FR").run()
    detail = df(at, "cat_region_detail")
    fr = load_catalog().region("FR")
    assert detail[detail["field"] == "carbon_intensity_kg_per_kwh"]["value"].iloc[0] == fr.carbon_intensity_kg_per_kwh.value


def _upload(at: AppTest, name: str, text: str) -> AppTest:
    at.file_uploader(key="cat_upload").set_value((name, text.encode(), "application/toml"))
    return at.run()


def test_catalog_upload_reaches_the_planner(app):
    at = page(app, "catalog")
    custom = H100.replace('id = "nvidia-h100-sxm-80gb"', 'id = "my-h100-variant"').replace(
        'aliases = ["h100", "h100-sxm", "nvidia-h100-sxm5-80gb"]', "aliases = []")
    _upload(at, "mine.toml", custom)
    assert not at.exception and not at.error, texts(at.error)
    assert "my-h100-variant" in texts(at.success)
    assert "my-h100-variant" in set(df(at, "cat_acc_table")["id"])
    assert [o for o, _ in at.session_state[UPLOADS_KEY]] == ["upload:mine.toml"]
    at.switch_page("app_pages/planner.py").run()
    assert "my-h100-variant" in at.selectbox(key="hw").options


@pytest.mark.parametrize("text, message", [
    ("id = [", "not valid TOML"),
    (H100.replace("bf16 = { value = 989.4, source", "bf16 = { value = 989.4, src"), "peak_tflops_dense.bf16"),
    (H100, "set `override = true`"),
])
def test_catalog_bad_upload_shows_the_loader_message(app, text, message):
    at = _upload(page(app, "catalog"), "bad.toml", text)
    assert not at.exception
    assert message in texts(at.error) and "upload:bad.toml" in texts(at.error)
    assert UPLOADS_KEY not in at.session_state or not at.session_state[UPLOADS_KEY]


def test_catalog_override_replaces_an_entry(app):
    at = _upload(page(app, "catalog"), "h100.toml", H100.replace("schema_version = 1", "schema_version = 1\noverride = true")
                 .replace("989.4, source", "900.0, source"))
    assert not at.error, texts(at.error)
    row = df(at, "cat_acc_table").set_index("id").loc["nvidia-h100-sxm-80gb"]
    assert row["bf16_tflops"] == 900.0 and row["origin"] == "upload:h100.toml"


def test_catalog_malformed_session_upload_shows_error(app):
    app.session_state[UPLOADS_KEY] = [("upload:broken.toml", "id = [")]
    at = page(app, "catalog")
    assert not at.exception
    assert "upload:broken.toml: not valid TOML" in texts(at.error)
    assert len(df(at, "cat_acc_table")) == len(load_catalog().accelerators)  # packaged catalog still browsable


# --- calibration -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cpu_runs(tmp_path_factory):
    from calibrate.bench import BenchSettings, run_sweep, sweep_configs
    from calibrate.meters import NullMeter

    runs = tmp_path_factory.mktemp("runs")
    fast = BenchSettings(warmup_steps=1, windows=2, window_s=0.01, min_steps=2, meter="none", device="cpu")
    records = run_sweep(sweep_configs(["tiny"], [1, 2, 4], [32], dtype="fp32"), runs, fast, meter=NullMeter(),
                        progress=False)
    assert all(r.status == "ok" for r in records)
    return runs


def test_calibration_reads_no_server_path_from_a_link_or_a_visitor(app):
    """Issue 13 item 1: `?cal_runs=PATH` read server folders. A shared dashboard has no folder input
    and ignores the parameter; only the operator's opt-in (READ_FOLDERS_ENV) shows the input."""
    at = page(app, "calibration")
    at.query_params["cal_runs"] = "/etc"
    at.run()
    assert not at.exception and not at.error
    assert not [t for t in at.text_input if t.key == "cal_runs"]
    assert "TRAINSIM_DASHBOARD_READ_FOLDERS=1" in " ".join(c.value for c in at.caption)


def test_calibration_missing_folder_shows_error(app, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINSIM_DASHBOARD_READ_FOLDERS", "1")
    at = page(app, "calibration")
    at.text_input(key="cal_runs").input(str(tmp_path / "nope")).run()
    assert not at.exception
    assert "no records" in texts(at.error)


def test_calibration_malformed_upload_shows_error(app):
    at = page(app, "calibration")
    at.file_uploader(key="cal_upload").set_value([("records.jsonl", b'{"schema_version": 1}\n', "application/json")])
    at.run()
    assert not at.exception
    assert "records.jsonl:1: malformed record" in texts(at.error)
    assert "trainsim-upload" not in texts(at.error)


def test_calibration_fits_a_runs_folder_and_hands_the_profile_over(app, cpu_runs, monkeypatch):
    from calibrate.profile import read_profile

    monkeypatch.setenv("TRAINSIM_DASHBOARD_READ_FOLDERS", "1")
    app.session_state["cal_boot"] = 3
    at = page(app, "calibration")
    at.text_input(key="cal_runs").input(str(cpu_runs)).run()
    assert not at.exception and not at.error, texts(at.error)
    records = df(at, "cal_records")
    assert len(records) == 3 and set(records["status"]) == {"ok"}
    params = df(at, "cal_params")
    assert set(params["parameter"]) == {"gemm_eff_max", "gemm_half_gflop", "flash_attn_eff", "mem_bw_eff"}
    assert params["p05"].notna().all()
    assert set(df(at, "cal_loco")["config"]) == set(records["name"])
    parity = next(f for f in figures(at) if "Step time" in f["layout"]["title"]["text"])
    assert {t["name"] for t in parity["data"]} >= {"fit (in-sample)", "held out (LOCO)", "y = x (perfect)"}
    assert "No energy readings" in texts(at.info)
    at.button(key="cal_use").click().run()
    path = at.session_state["profile_path"]
    assert Path(path).exists() and read_profile(path).perf["gemm_eff_max"] > 0


def test_calibration_uploaded_records_are_kept_in_the_session(app, cpu_runs):
    at = page(app, "calibration")
    text = (cpu_runs / "records.jsonl").read_bytes()
    at.session_state["cal_boot"] = 0
    at.file_uploader(key="cal_upload").set_value([("records.jsonl", text, "application/json")])
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert len(df(at, "cal_records")) == 3 and len(at.session_state["cal_uploads"]) == 1
    at.file_uploader(key="cal_upload").set_value(None)
    at.run()
    assert len(df(at, "cal_records")) == 3  # still there without the widget's file


def test_calibration_ships_example_records(app):
    """Issue 15 item 8: the page ships a real CPU sweep (the records tests/calibrate/test_bench_fit.py
    fits), loaded with a button and labelled a CPU example, not a GPU calibration."""
    app.session_state["cal_boot"] = 0
    at = page(app, "calibration")
    assert at.button(key="cal_example_load").label == "Load the example records (a CPU sweep measured on a 2-core VM)"
    at.button(key="cal_example_load").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "a CPU sweep, not a GPU calibration" in texts(at.info)
    records = df(at, "cal_records")
    assert len(records) == 8 and set(records["device"]) == {"cpu-x86-64-2c"}
    assert next(m.value for m in at.metric if m.label == "Configurations fitted") == "8"
    at.button(key="cal_example_off").click().run()
    assert "load the example records) to see the measurements" in texts(at.info)  # gone again


# --- pure builders -------------------------------------------------------------------------------
def _curves():
    flops = np.logspace(20, 26, 7)
    rows = []
    for name in ("hoffmann2022", "epoch2024", "kaplan2020"):
        fit = get_fit(name)
        n, d = fit.compute_optimal(flops)
        rows.append(pd.DataFrame({"fit": name, "flops": flops, "n_params": n, "n_tokens": d,
                                  "loss": fit.loss_at_compute_optimal(flops)}))
    return pd.concat(rows, ignore_index=True)


def test_loss_vs_compute_builder():
    scen = pd.DataFrame([{"fit": "epoch2024", "flops": 1e24, "loss": 2.0}])
    fig = charts_model.loss_vs_compute(_curves(), scen, budget_flops=1e23).to_dict()
    assert [t["name"] for t in fig["data"]] == ["Hoffmann 2022", "Epoch 2024", "Kaplan 2020", "your run (Epoch 2024)"]
    assert fig["layout"]["xaxis"]["type"] == "log" and len(fig["layout"]["shapes"]) == 1
    assert "not comparable" in fig["layout"]["title"]["text"]


def test_frontier_builder():
    fig = charts_model.compute_optimal_frontier(_curves(), {"flops": 1e24, "n_params": 7e10, "n_tokens": 1.5e13}).to_dict()
    assert len(fig["data"]) == 8  # 3 fits + your run, on two panels
    assert fig["layout"]["yaxis"]["type"] == fig["layout"]["yaxis2"]["type"] == "log"
    stars = [t for t in fig["data"] if t["name"] == "your run"]
    assert [s["y"][0] for s in stars] == [7e10, 1.5e13]
    assert sum(t["showlegend"] for t in fig["data"]) == 4


def test_calibration_builders():
    pts = pd.DataFrame({"name": ["a", "b", "a", "b"], "measured_s": [0.1, 0.2, 0.1, 0.2],
                        "predicted_s": [0.11, 0.19, 0.12, 0.18], "kind": ["fit (in-sample)"] * 2 + ["held out (LOCO)"] * 2})
    fig = charts_model.step_time_parity(pts).to_dict()
    assert [t["name"] for t in fig["data"]] == ["fit (in-sample)", "held out (LOCO)", "y = x (perfect)"]
    line = fig["data"][-1]
    assert line["x"][0] == line["y"][0] and line["x"][0] < 0.1 and line["x"][1] > 0.2
    bars = charts_model.mfu_bars(pd.DataFrame({"name": ["a", "b"], "mfu": [0.25, 0.5]}))
    assert list(bars.data[0].y) == [25.0, 50.0]
    pw = charts_model.power_vs_throughput(pd.DataFrame({"name": ["a", "b"], "tflops": [100.0, 300.0],
                                                        "power_w": [300.0, 500.0]}), 200.0, 1.0)
    fit_line = pw.data[1]
    assert fit_line.name == "fit" and fit_line.y[0] == pytest.approx(200.0)
    assert fit_line.y[-1] == pytest.approx(200.0 + fit_line.x[-1])
    assert len(charts_model.power_vs_throughput(pd.DataFrame({"name": ["a"], "tflops": [1.0], "power_w": [5.0]})).data) == 1


def test_validation_parity_builder():
    checks = pd.DataFrame({"run": ["r1", "r2", "r3"], "quantity": ["energy_mwh", "energy_mwh", "co2e_t"],
                           "method": ["tdp convention", "default power model", "tdp convention"],
                           "predicted": [110.0, 900.0, 5.0], "reported": [100.0, 1000.0, 4.0], "error_pct": [10.0, -10.0, 25.0]})
    fig = charts_model.validation_parity(checks, "energy_mwh").to_dict()
    assert [t["name"] for t in fig["data"]] == ["tdp convention", "default power model", "y = x (perfect)"]
    assert fig["layout"]["xaxis"]["type"] == fig["layout"]["yaxis"]["type"] == "log"
    assert "Energy (MWh)" in fig["layout"]["xaxis"]["title"]["text"]


def test_catalog_builders():
    acc = load_catalog().accelerator("nvidia-h100-sxm-80gb")
    rows = charts_model.sourced_rows(acc.model_dump())
    by_field = {r["field"]: r for r in rows}
    assert by_field["power.idle_w"]["status"] == "⚠ unverified" and by_field["power.tdp_w"]["status"] == "verified"
    assert by_field["prices.on_demand_usd_per_hour"]["as_of"] == "2025-02"
    assert "id" not in by_field and all(r["source"] for r in rows)
    accs = pd.DataFrame({"id": ["x", "y"], "vendor": ["A", "B"], "bf16_tflops": [1.0, 2.0], "hbm_tb_per_s": [1.0, 3.0],
                         "hbm_gb": [80.0, 192.0]})
    fig = charts_model.accelerator_scatter(accs).to_dict()
    assert [t["name"] for t in fig["data"]] == ["A", "B"]
