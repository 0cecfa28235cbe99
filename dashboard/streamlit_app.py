"""trainsim dashboard entry point: `trainsim dashboard` or `streamlit run dashboard/streamlit_app.py`.

Streamlit multipage app (st.navigation); every page calls the simulator library.
"""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
st.set_page_config(page_title="trainsim: AI training cost & energy", page_icon="⚡", layout="wide")

# The Planner is served at the root ("/", its links `/?n_dev=...`) and at /planner: Streamlit serves a
# default page only at the root, so a hidden page of the same script takes /planner (the default
# still reserves its own url_path, hence "home").
PAGES = {
    "Plan": [
        st.Page(HERE / "app_pages/planner.py", title="Planner", url_path="home", default=True),
        st.Page(HERE / "app_pages/planner.py", title="Planner", url_path="planner", visibility="hidden"),
    ],
}
extra = [("compare.py", "Compare", "compare"), ("explorer.py", "Parallelism explorer", "explorer"),
         ("project.py", "Project", "project"), ("serving.py", "Serving", "serving"),
         ("posttraining.py", "Post-training (RL)", "posttraining"),
         ("scaling.py", "Scaling laws", "scaling"), ("calibration.py", "Calibration", "calibration"),
         ("validation.py", "Validation", "validation"), ("catalog.py", "Catalog", "catalog"),
         ("claims.py", "Claims", "claims")]
for file, title, path in extra:
    if (HERE / "app_pages" / file).exists():
        group = ("Plan" if path in ("compare", "explorer", "project", "serving", "posttraining")
                 else "Model" if path in ("scaling", "calibration") else "Trust")
        PAGES.setdefault(group, []).append(st.Page(HERE / "app_pages" / file, title=title, url_path=path))

from dashboard import widgets  # after set_page_config
from dashboard.data import packaged_catalog, session_catalog
from dashboard.state import PAGE_INPUTS
from hardware_catalog.errors import TrainsimError

nav = st.navigation(PAGES, position="top")
switched = st.session_state.get("page", nav.url_path) != nav.url_path
st.session_state["page"] = nav.url_path
if switched and widgets.restore_inputs(PAGE_INPUTS.get(nav.url_path, ())):  # shared inputs keep their values
    st.rerun()
if "link_checked" not in st.session_state:  # the link the session opened with; later, the user's own inputs
    st.session_state["link_checked"] = True
    try:
        catalog = session_catalog()
    except TrainsimError:  # a broken upload: the page says so
        catalog = packaged_catalog()
    ignored, changed = widgets.check_link(catalog)
    if changed:  # rerun: the widgets seed from the link as it was when the run started
        st.session_state["ignored_params"] = ignored
        st.rerun()
if st.session_state.get("ignored_params"):
    st.warning(f"Ignored link parameter(s) {'; '.join(st.session_state.pop('ignored_params'))}.", icon=":material/link_off:")
nav.run()
