"""Calibration: measured benchmark runs against the simulator's fitted step-time and power model.

Records come from uploaded `records.jsonl` files (kept in this browser session) or, on a dashboard
its operator started with TRAINSIM_DASHBOARD_READ_FOLDERS=1 (one run for oneself), from a runs
folder on the server (`trainsim calibrate run -o DIR`). A shared dashboard never reads server paths
that a visitor types, and no link carries one. The fit is `calibrate.fit.fit_records`; the profile it
yields (`calibrate.profile`) can be handed to the Planner.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from calibrate.errors import MeasurementError
from calibrate.fit import (
    FIT_BOUNDS,
    FitReport,
    cases_for,
    fit_records,
    power_points,
    predict_step_times,
    usable,
)
from calibrate.profile import build_profile, dumps, write_profile
from calibrate.records import RECORDS_FILE, RunRecord, load_records
from dashboard import charts_model
from dashboard.data import plain
from dashboard.formats import NA, PERCENT_FORMAT
from simulator.system.efficiency import MEASURED_MFU_KEY

UPLOADS = "cal_uploads"  # list of (file_id, file name, text) in st.session_state
from dashboard.data import PROFILE_KEY  # noqa: E402  (read by the Planner)

DEFAULT_BOOTSTRAP = 20
EXAMPLE_KEY = "cal_example"  # st.session_state: the shipped example records are loaded
EXAMPLE_BUTTON = "Load the example records (a CPU sweep measured on a 2-core VM)"
EXAMPLE_NOTE = ("Example records: a CPU sweep, not a GPU calibration. Eight configurations of the calibration "
                "GPT (tiny and mini, batch 1 and 4, sequence 64 and 128, fp32, one thread, no power meter) measured "
                "on a 2-core x86-64 VM with `trainsim calibrate run` (the command is in "
                "tests/calibrate/test_bench_fit.py). The fit and its profile describe that CPU only; measure your own "
                "accelerator the same way and upload its records.jsonl.")
READ_FOLDERS_ENV = "TRAINSIM_DASHBOARD_READ_FOLDERS"  # "1": the operator lets visitors read server folders


def reads_server_folders() -> bool:
    return os.environ.get(READ_FOLDERS_ENV) == "1"


def records_from_text(name: str, text: str) -> list[RunRecord]:
    """`load_records` on uploaded text; the error names the uploaded file, not the temporary copy."""
    with tempfile.TemporaryDirectory(prefix="trainsim-upload-") as tmp:
        path = Path(tmp) / RECORDS_FILE
        path.write_text(text, encoding="utf-8")
        try:
            return load_records(path)
        except MeasurementError as exc:
            raise MeasurementError(str(exc).replace(str(path), name)) from None


@st.cache_data(show_spinner="Fitting the model to the records...", max_entries=16)
def fitted(records_json: tuple[str, ...], bootstrap: int) -> tuple[FitReport, list[float]]:
    """`fit_records` and the fitted model's step time for each usable record (in `usable` order)."""
    records = [RunRecord.model_validate_json(j) for j in records_json]
    report = fit_records(records, bootstrap=bootstrap)
    predicted = predict_step_times(cases_for(usable(records)), report.params)
    return report, [float(x) for x in predicted]


def example_records() -> list[RunRecord]:
    """The shipped example: a real CPU sweep (calibrate/data/example_cpu_sweep/records.jsonl)."""
    from importlib import resources

    with resources.as_file(resources.files("calibrate").joinpath("data", "example_cpu_sweep", RECORDS_FILE)) as path:
        return load_records(path)


def _example(records: list[RunRecord], origins: list[str]) -> None:
    """The button that loads the shipped example records, and, once loaded, what they are."""
    if not st.session_state.get(EXAMPLE_KEY):
        if st.button(EXAMPLE_BUTTON, key="cal_example_load", icon=":material/memory:"):
            st.session_state[EXAMPLE_KEY] = True
            st.rerun()
        return
    records += example_records()
    origins.append("example CPU sweep (calibrate/data/example_cpu_sweep)")
    st.info(EXAMPLE_NOTE, icon=":material/memory:")
    if st.button("Forget the example records", key="cal_example_off"):
        st.session_state[EXAMPLE_KEY] = False
        st.rerun()


def _sources() -> tuple[list[RunRecord], list[str]]:
    """Records of the folder, the uploads and the shipped example; inline errors for the ones that cannot
    be read."""
    c_dir, c_up = st.columns(2)
    records: list[RunRecord] = []
    origins: list[str] = []
    with c_dir:
        _example(records, origins)
        folder = ""
        if reads_server_folders():  # never bound to the URL: a link must not name a server path
            folder = st.text_input("Runs folder on this machine (or a records.jsonl file)", key="cal_runs",
                                   value="", placeholder="e.g. runs/cpu",
                                   help="The folder given to `trainsim calibrate run -o`.")
        else:
            st.caption(f"Upload the `records.jsonl` of a runs folder. (A dashboard you run for yourself reads "
                       f"folders directly when started with `{READ_FOLDERS_ENV}=1`.)")
        if folder.strip():
            path = Path(folder.strip()).expanduser()
            try:
                records += load_records(path)
                origins.append(str(path))
            except MeasurementError as exc:
                st.error(plain(str(exc)), icon=":material/warning:")
        st.number_input("Bootstrap resamples (confidence intervals)", key="cal_boot", bind="query-params",
                        value=DEFAULT_BOOTSTRAP, min_value=0, max_value=500, step=10,
                        help="More resamples: steadier 5-95% intervals, slower fit. 0 skips the intervals.")
    with c_up:
        files = st.file_uploader("Or upload records.jsonl files", type=["jsonl", "json"], accept_multiple_files=True,
                                 key="cal_upload")
        kept = list(st.session_state.get(UPLOADS, []))
        seen = {fid for fid, _, _ in kept}
        for f in files or []:
            if f.file_id not in seen:
                kept.append((f.file_id, f.name, f.getvalue().decode("utf-8", errors="replace")))
        st.session_state[UPLOADS] = kept
        for _, name, text in kept:
            try:
                records += records_from_text(name, text)
                origins.append(f"upload:{name}")
            except MeasurementError as exc:
                st.error(plain(str(exc)), icon=":material/warning:")
        if kept:
            st.caption("Kept for this browser session: " + ", ".join(f"`{n}`" for _, n, _ in kept))
            if st.button("Forget uploaded records", key="cal_clear"):
                st.session_state[UPLOADS] = []
                st.rerun()
    return records, origins


def quality(report: FitReport) -> None:
    m = st.columns(3)
    m[0].metric("Configurations fitted", report.n_configs)
    m[1].metric("Step time, held-out error", f"{report.step_loco_mape:.1f} %",
                help="Mean absolute leave-one-config-out error: fit without a configuration, predict it.")
    m[2].metric("Energy per step, held-out error",
                f"{report.energy_loco_mape:.1f} %" if report.energy_loco_pct else "n/a (no energy)")
    left, right = st.columns(2)
    with left:
        st.markdown("**Leave-one-config-out errors (%)**")
        loco = pd.DataFrame({"config": list(report.step_loco_pct),
                             "step_time_err_pct": list(report.step_loco_pct.values())})
        loco["energy_err_pct"] = loco["config"].map(report.energy_loco_pct)
        st.container(key="cal_loco").dataframe(loco, hide_index=True, placeholder=NA,
                     column_config={c: st.column_config.NumberColumn(format="%+.1f")
                                    for c in ("step_time_err_pct", "energy_err_pct")})
    with right:
        st.markdown("**Fitted parameters and bootstrap 5-95% intervals**")
        rows = [{"parameter": n, "fitted": getattr(report.params, n), "p05": report.intervals.get(n, (None, None))[0],
                 "p95": report.intervals.get(n, (None, None))[1], "bounds": f"{lo:g} .. {hi:g}"}
                for n, (lo, hi) in FIT_BOUNDS.items()]
        if report.power is not None:
            rows += [{"parameter": "idle_w", "fitted": report.power.idle_w, "p05": None, "p95": None, "bounds": ">= 0"},
                     {"parameter": "dynamic_w_per_tflops", "fitted": report.power.dynamic_w_per_tflops, "p05": None,
                      "p95": None, "bounds": ">= 0"}]
        st.container(key="cal_params").dataframe(pd.DataFrame(rows), hide_index=True, placeholder=NA,
                     column_config={c: st.column_config.NumberColumn(format="%.4g") for c in ("fitted", "p05", "p95")})
        if not report.intervals:
            st.caption("No intervals: bootstrap resamples = 0.")


def profile_section(report: FitReport, records: list[RunRecord], origins: list[str]) -> None:
    st.subheader("Calibration profile")
    origin = " + ".join(origins)
    try:
        profile = build_profile(report, records, origin)
    except (MeasurementError, ValueError) as exc:
        st.error(plain(f"The fit cannot be written as a profile: {exc}"))
        return
    mfu = profile["quality"].get(MEASURED_MFU_KEY)
    st.caption(f"Applies to accelerator `{profile['accelerator']}`"
               + (" (this measured device, carried inside the profile)" if "device" in profile else "")
               + (f"; best measured MFU {mfu:.1%} (information only)" if mfu else "") + f". {profile['notes']}.")
    c = st.columns(2)
    if c[0].button("Use this profile in the planner", key="cal_use", type="primary"):
        path = Path(tempfile.mkdtemp(prefix="trainsim-profile-")) / "profile.toml"
        write_profile(path, profile)
        st.session_state[PROFILE_KEY] = str(path)
    c[1].download_button("Profile TOML", dumps(profile), file_name="profile.toml", mime="application/toml",
                         on_click="ignore", key="cal_profile_dl")
    if st.session_state.get(PROFILE_KEY):
        st.success(f"The Planner uses the profile {st.session_state[PROFILE_KEY]} (accelerator "
                   f"`{profile['accelerator']}`).")


def main() -> None:
    st.title("Calibration")
    st.caption("Benchmark records (`trainsim calibrate run`) against the simulator's own single-device step-time "
               "model with fitted efficiency parameters, and the power model P = idle + k x TFLOP/s.")
    records, origins = _sources()
    if not records:
        st.info("Upload records.jsonl files (or load the example records) to see the measurements and the fit.")
        return
    st.subheader(f"Records ({len(records)})")
    table = pd.DataFrame([{**r.summary(), "device": r.device.get("name")} for r in records])
    st.container(key="cal_records").dataframe(table.assign(mfu=table["mfu"] * 100), hide_index=True, placeholder=NA,
                 column_config={"step_time_s": st.column_config.NumberColumn(format="%.4g"),
                                "tokens_per_s": st.column_config.NumberColumn(format="%.0f"),
                                "mfu": st.column_config.NumberColumn("MFU", format=PERCENT_FORMAT)})
    boot = int(st.session_state.get("cal_boot", DEFAULT_BOOTSTRAP) or 0)
    try:
        report, predicted = fitted(tuple(r.model_dump_json() for r in records), boot)
    except MeasurementError as exc:
        st.error(plain(str(exc)), icon=":material/warning:")
        return
    ok = usable(records)
    names = [r.config.get("name", r.record_id) for r in ok]
    measured = [float(r.step_time_s) for r in ok]
    points = pd.concat([
        pd.DataFrame({"name": names, "measured_s": measured, "predicted_s": predicted, "kind": "fit (in-sample)"}),
        pd.DataFrame({"name": names, "measured_s": measured, "kind": "held out (LOCO)",
                      "predicted_s": [t * (1 + report.step_loco_pct.get(n, float("nan")) / 100) for n, t in zip(names, measured)]}),
    ], ignore_index=True).dropna()
    st.subheader("Fit")
    left, right = st.columns(2)
    left.plotly_chart(charts_model.step_time_parity(points), key="cal_parity")
    right.plotly_chart(charts_model.mfu_bars(pd.DataFrame({"name": names, "mfu": [r.mfu or 0.0 for r in ok]})),
                       key="cal_mfu")
    power_rows = []
    for name, r in zip(names, ok):
        tflops, power = power_points([r])
        if len(power):
            power_rows.append({"name": name, "tflops": float(tflops[0]), "power_w": float(power[0])})
    if power_rows:
        pw = report.power
        fig = charts_model.power_vs_throughput(pd.DataFrame(power_rows), pw.idle_w if pw else None,
                                               pw.dynamic_w_per_tflops if pw else None)
        st.plotly_chart(fig, key="cal_power")
    else:
        st.info("No energy readings in these records (meter `none`): power is not fitted; the profile keeps the "
                "catalog's power prior. Run with `--meter nvml|codecarbon|rapl` to calibrate power.")
    quality(report)
    profile_section(report, records, origins)


main()
