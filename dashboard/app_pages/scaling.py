"""Scaling laws: compute-optimal loss and allocation for each published fit, and where the
planner's run sits on them. Every number comes from `simulator.model.scaling`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts_model
from dashboard.data import plain
from dashboard.formats import NA, scientific
from dashboard.state import DEFAULTS, scenario_data
from hardware_catalog.errors import TrainsimError
from simulator import scenario_from_dict
from simulator.model.scaling import FITS, FLOPS_PER_PARAM_TOKEN, get_fit

DEFAULT_FLOPS = 1e24
C_RANGE = (1e18, 1e28)


@st.cache_data(show_spinner=False, max_entries=16)
def curves(lo: float, hi: float, points: int = 120) -> pd.DataFrame:
    """Per fit, over C in [lo, hi]: compute-optimal N*, D* and the loss there."""
    flops = np.logspace(np.log10(lo), np.log10(hi), points)
    frames = []
    for name in FITS:
        fit = get_fit(name)
        n, d = fit.compute_optimal(flops)
        frames.append(pd.DataFrame({"fit": name, "flops": flops, "n_params": n, "n_tokens": d,
                                    "loss": fit.loss_at_compute_optimal(flops)}))
    return pd.concat(frames, ignore_index=True)


def budget_table(flops: float) -> pd.DataFrame:
    """Each fit's compute-optimal allocation of one budget."""
    rows = []
    for name in FITS:
        fit = get_fit(name)
        n, d = fit.compute_optimal(flops)
        rows.append({"fit": charts_model.fit_label(name), "N* (params)": n, "D* (tokens)": d,
                     "tokens per param": d / n, "loss at optimum": fit.loss_at_compute_optimal(flops),
                     "source": fit.source})
    return pd.DataFrame(rows)


def planner_run() -> tuple[dict[str, float] | None, str]:
    """(params, tokens, flops) of the planner's scenario (session values or DEFAULTS), and a caption."""
    values = {k: st.session_state.get(k) for k in DEFAULTS}
    try:
        sc = scenario_from_dict(scenario_data(values), "planner")
        spec = sc.model.spec()
    except (TrainsimError, ValueError, TypeError) as exc:
        return None, f"The planner's scenario is not valid ({exc}); open the Planner to fix it."
    n = float(spec.params_active())
    d = float(sc.training.tokens)
    moe = " active" if spec.is_moe else ""
    note = (f"Your run (from the Planner): {spec.name or 'model'}, {n / 1e9:.3g}B{moe} parameters, "
            f"{d / 1e12:.3g}T tokens, C = 6 N D = {scientific(FLOPS_PER_PARAM_TOKEN * n * d)} FLOPs, "
            f"{d / n:.1f} tokens per parameter.")
    return {"n_params": n, "n_tokens": d, "flops": FLOPS_PER_PARAM_TOKEN * n * d}, note


def main() -> None:
    st.title("Scaling laws")
    st.caption("Chinchilla form L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022 and the Epoch AI refit, "
               "Besiroglu et al. 2024) and Kaplan et al. 2020, with C = 6 N D. Losses are in each paper's own "
               "units (its data set and tokenizer): compare allocations across fits, not losses. Kaplan's N "
               "counts non-embedding parameters.")
    run, note = planner_run()
    left, right = st.columns([1, 3])
    with left:
        flops = st.number_input("Compute budget (FLOPs)", key="sc_flops", bind="query-params", value=DEFAULT_FLOPS,
                                min_value=1e15, max_value=1e32, format="%.3e",
                                help="Training compute to allocate between parameters and tokens (C = 6 N D).")
        msg = st.empty()
    if not (flops and np.isfinite(flops) and flops > 0):
        msg.error(f"Compute budget must be a finite number of FLOPs > 0, got {flops!r}")
        return
    with right:
        st.subheader(f"Compute-optimal allocation of {scientific(flops)} FLOPs")
        st.container(key="sc_table").dataframe(budget_table(flops), hide_index=True, placeholder=NA,
                     column_config={"N* (params)": st.column_config.NumberColumn(format="compact"),
                                    "D* (tokens)": st.column_config.NumberColumn(format="compact"),
                                    "tokens per param": st.column_config.NumberColumn(format="%.1f"),
                                    "loss at optimum": st.column_config.NumberColumn(format="%.3f")})
    if run is None:
        st.warning(plain(note))
    else:
        st.info(note)
    lo = min(C_RANGE[0], flops / 10, run["flops"] / 10 if run else C_RANGE[0])
    hi = max(C_RANGE[1], flops * 10, run["flops"] * 10 if run else C_RANGE[1])
    data = curves(float(lo), float(hi))
    marks = None
    if run:
        marks = pd.DataFrame([{"fit": name, "flops": run["flops"], "loss": get_fit(name).loss(run["n_params"], run["n_tokens"])}
                              for name in FITS])
    st.plotly_chart(charts_model.loss_vs_compute(data, marks, flops), key="sc_loss")
    st.plotly_chart(charts_model.compute_optimal_frontier(data, run, flops), key="sc_frontier")
    if run:
        rows = []
        for name in FITS:
            fit = get_fit(name)
            n_opt, d_opt = fit.compute_optimal(run["flops"])
            rows.append({"fit": charts_model.fit_label(name), "your loss": fit.loss(run["n_params"], run["n_tokens"]),
                         "optimal loss at your C": fit.loss_at_compute_optimal(run["flops"]),
                         "N* at your C": n_opt, "D* at your C": d_opt,
                         "your N / N*": run["n_params"] / n_opt})
        st.subheader("Your run against each fit's optimum at the same compute")
        st.container(key="sc_run_table").dataframe(pd.DataFrame(rows), hide_index=True, placeholder=NA,
                     column_config={**{c: st.column_config.NumberColumn(format="compact")
                                       for c in ("N* at your C", "D* at your C")},
                                    **{c: st.column_config.NumberColumn(format="%.3f")
                                       for c in ("your loss", "optimal loss at your C", "your N / N*")}})
        st.caption("N / N* > 1: a larger model trained on fewer tokens than the fit's optimum (N / N* < 1: "
                   "over-trained, typical for models meant for heavy inference use).")


main()
