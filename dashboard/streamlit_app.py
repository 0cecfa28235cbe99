"""trainsim dashboard entry point: `trainsim dashboard` or `streamlit run dashboard/streamlit_app.py`.

Streamlit multipage app (st.navigation); every page calls the simulator library.
"""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
st.set_page_config(page_title="trainsim: AI training cost & energy", page_icon="⚡", layout="wide")

PAGES = {
    "Plan": [
        st.Page(HERE / "app_pages/planner.py", title="Planner", url_path="planner", default=True),
    ],
}
extra = [("compare.py", "Compare", "compare"), ("explorer.py", "Parallelism explorer", "explorer"),
         ("project.py", "Project", "project"), ("serving.py", "Serving", "serving"),
         ("posttraining.py", "Post-training (RL)", "posttraining"),
         ("scaling.py", "Scaling laws", "scaling"), ("calibration.py", "Calibration", "calibration"),
         ("validation.py", "Validation", "validation"), ("catalog.py", "Catalog", "catalog")]
for file, title, path in extra:
    if (HERE / "app_pages" / file).exists():
        group = ("Plan" if path in ("compare", "explorer", "project", "serving", "posttraining")
                 else "Model" if path in ("scaling", "calibration") else "Trust")
        PAGES.setdefault(group, []).append(st.Page(HERE / "app_pages" / file, title=title, url_path=path))

from dashboard.widgets import drop_non_finite_query_params  # noqa: E402  (after set_page_config)

nav = st.navigation(PAGES, position="top")
dropped = drop_non_finite_query_params()
if dropped:  # rerun: the widgets seed from the link as it was when the run started
    st.session_state["dropped_params"] = dropped
    st.rerun()
if st.session_state.get("dropped_params"):
    st.warning(f"Ignored link parameter(s) {', '.join(st.session_state.pop('dropped_params'))}: not a finite "
               "number; the default is used.")
nav.run()
