"""Catalog: browse accelerators and regions with every number's source, and add custom entries.

Uploaded TOML files are validated by `hardware_catalog.parse_toml_text` and kept in this browser
session only (`st.session_state[UPLOADS_KEY]`), where `dashboard.data.session_catalog()` (and so
the Planner's lists) picks them up. An id that already exists needs `override = true`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from calibrate.profile import dumps
from dashboard import charts_model
from dashboard.data import UPLOADS_KEY, packaged_catalog, plain, session_catalog
from dashboard.formats import NA
from hardware_catalog import Accelerator, Catalog, CatalogError, Region, parse_toml_text
from hardware_catalog.schema import Infrastructure
from simulator.system.perf_params import priors_origin

DEFAULT_ACC = "nvidia-h100-sxm-80gb"
DEFAULT_REGION = "us-virginia"


def _value(s) -> float | None:
    return None if s is None else s.value


def _unverified(item: Accelerator | Region) -> int:
    return sum(r["status"] != "verified" for r in charts_model.sourced_rows(item.model_dump()))


def _origin(cat: Catalog, kind: str, item_id: str) -> str:
    origin = cat.origins.get(f"{kind}:{item_id}", "?")
    return origin if origin.startswith("upload:") else "packaged"


def accelerator_frame(cat: Catalog) -> pd.DataFrame:
    rows = []
    for a in sorted(cat.accelerators.values(), key=lambda a: a.id):
        peaks = a.peak_tflops_dense
        rows.append({"id": a.id, "name": a.name, "vendor": a.vendor, "kind": a.kind, "year": int(a.launch_year.value),
                     "bf16_tflops": peaks["bf16"].value, "fp8_tflops": _value(peaks.get("fp8")),
                     "hbm_gb": a.memory.hbm_gb.value, "hbm_tb_per_s": a.memory.hbm_tb_per_s.value,
                     "tdp_w": a.power.tdp_w.value, "on_demand_usd_per_h": _value(a.prices.on_demand_usd_per_hour),
                     "perf_priors": priors_origin(a), "unverified": _unverified(a),
                     "origin": _origin(cat, "accelerator", a.id)})
    return pd.DataFrame(rows)


def region_frame(cat: Catalog) -> pd.DataFrame:
    rows = [{"id": r.id, "name": r.name, "kind": r.kind, "kg_co2_per_kwh": r.carbon_intensity_kg_per_kwh.value,
             "pue": r.pue.value, "wue_l_per_kwh": r.wue_l_per_kwh.value,
             "usd_per_kwh": _value(r.electricity_usd_per_kwh), "unverified": _unverified(r),
             "origin": _origin(cat, "region", r.id)}
            for r in sorted(cat.regions.values(), key=lambda r: r.id)]
    return pd.DataFrame(rows)


def _uploads() -> list[tuple[str, str]]:
    return list(st.session_state.get(UPLOADS_KEY, []))


def add_upload(name: str, content: bytes) -> tuple[str, str]:
    """Validate an uploaded catalog file against the schema and this session's catalog; keep it
    when valid. Returns (kind, message) with kind "success" or "error"."""
    origin = f"upload:{name}"
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "error", f"{origin}: not UTF-8 text ({exc.reason})"
    try:
        items = parse_toml_text(text, origin)
        entries = [(item, o) for o, t in _uploads() for item in parse_toml_text(t, o)]
        packaged_catalog().with_entries(entries + [(item, origin) for item in items])
    except CatalogError as exc:
        return "error", str(exc)
    st.session_state[UPLOADS_KEY] = _uploads() + [(origin, text)]
    names = ", ".join("the network and storage defaults" if isinstance(i, Infrastructure) else
                      f"{'accelerator' if isinstance(i, Accelerator) else 'region'} '{i.id}'" for i in items)
    return "success", f"Added {names} for this browser session; the Planner's lists include it now."


def upload_section() -> None:
    st.caption("Add or replace an accelerator (one `.toml` file in the catalog's accelerator format) or regions "
               "(`[[region]]` tables). Every number needs a `source`; an id that already exists needs "
               "`override = true`. Entries stay in this browser session only. Start from an entry's TOML template "
               "(download it under the entry's details).")
    up = st.file_uploader("Custom accelerator or region TOML", type=["toml"], key="cat_upload")
    if up is not None:
        if st.session_state.get("cat_upload_seen") != up.file_id:
            st.session_state["cat_upload_seen"] = up.file_id
            st.session_state["cat_upload_msg"] = add_upload(up.name, up.getvalue())
        kind, msg = st.session_state["cat_upload_msg"]
        (st.error if kind == "error" else st.success)(plain(msg))
    if _uploads():
        st.write("Your uploaded files: " + ", ".join(f"`{o.removeprefix('upload:')}`" for o, _ in _uploads()))
        if st.button("Remove my uploads", key="cat_clear"):
            st.session_state[UPLOADS_KEY] = []
            st.session_state.pop("cat_upload_msg", None)
            st.rerun()


def entry_details(item: Accelerator | Region, cat: Catalog, kind: str) -> None:
    dump = item.model_dump()
    rows = pd.DataFrame(charts_model.sourced_rows(dump))
    n_unv = int((rows["status"] != "verified").sum()) if len(rows) else 0
    st.markdown(f"**{item.name}** (`{item.id}`), {kind} from {cat.origins.get(f'{kind}:{item.id}', '?')}"
                + (f"; aliases: {', '.join(item.aliases)}" if item.aliases else ""))
    if n_unv:
        st.warning(f"{n_unv} of {len(rows)} numbers are marked unverified (an estimate or prior the source could not "
                   "confirm); a calibration profile or your own figures can replace them.")
    st.container(key=f"cat_{kind}_detail").dataframe(rows, hide_index=True, placeholder=NA,
                 column_config={"source": st.column_config.TextColumn(width="large")})
    if kind == "accelerator":
        template: dict[str, Any] = item.model_dump(exclude_none=True, exclude={"override"})
    else:
        template = {"schema_version": 1, "region": [item.model_dump(exclude_none=True, exclude={"override"})]}
    st.download_button("TOML template of this entry", dumps(template), file_name=f"{item.id}.toml",
                       mime="application/toml", on_click="ignore", key=f"cat_{kind}_toml",
                       help="Edit it, change the id (or add override = true), and upload it above.")


def main() -> None:
    st.title("Hardware and region catalog")
    t_acc, t_reg, t_up = st.tabs(["Accelerators", "Regions", "Add your own"])
    with t_up:  # first, so that an accepted upload shows in the tables of this same run
        upload_section()
    try:
        cat = session_catalog()
    except CatalogError as exc:
        st.error(plain(f"Your uploaded catalog entries cannot be used: {exc}. Showing the packaged catalog; "
                       "remove the uploads under 'Add your own'."))
        cat = packaged_catalog()

    with t_acc:
        accs = accelerator_frame(cat)
        st.container(key="cat_acc_table").dataframe(accs, hide_index=True, placeholder=NA,
                     column_config={"bf16_tflops": st.column_config.NumberColumn("bf16 TFLOP/s", format="%.0f"),
                                    "fp8_tflops": st.column_config.NumberColumn("fp8 TFLOP/s", format="%.0f"),
                                    "hbm_gb": st.column_config.NumberColumn("HBM GB", format="%.0f"),
                                    "hbm_tb_per_s": st.column_config.NumberColumn("HBM TB/s", format="%.2f"),
                                    "tdp_w": st.column_config.NumberColumn("TDP W", format="%.0f"),
                                    "on_demand_usd_per_h": st.column_config.NumberColumn("on-demand $/h", format="%.2f"),
                                    "unverified": st.column_config.NumberColumn("unverified numbers")})
        ids = sorted(cat.accelerators)
        acc_id = st.selectbox("Accelerator details", ids, key="cat_acc", bind="query-params",
                              index=ids.index(DEFAULT_ACC) if DEFAULT_ACC in ids else 0)
        entry_details(cat.accelerators[acc_id], cat, "accelerator")
        st.plotly_chart(charts_model.accelerator_scatter(accs), key="cat_acc_scatter")

    with t_reg:
        st.container(key="cat_region_table").dataframe(region_frame(cat), hide_index=True, placeholder=NA,
                     column_config={"kg_co2_per_kwh": st.column_config.NumberColumn("kg CO2e/kWh", format="%.3f"),
                                    "usd_per_kwh": st.column_config.NumberColumn("USD/kWh", format="%.3f"),
                                    "unverified": st.column_config.NumberColumn("unverified numbers")})
        rids = sorted(cat.regions)
        region_id = st.selectbox("Region details", rids, key="cat_region", bind="query-params",
                                 index=rids.index(DEFAULT_REGION) if DEFAULT_REGION in rids else 0)
        entry_details(cat.regions[region_id], cat, "region")


main()
