"""Input widgets shared by the pages: bound to the URL (the page address is the share link)."""

from __future__ import annotations

import difflib

import streamlit as st

from dashboard.fields import parse_number, text_of
from dashboard.state import ALL_DEFAULTS, NUMBERS, choices, link_aliases, region_label


def number(key: str, defaults: dict):
    """A number field bound to the URL: typed text (scientific notation too) parsed by `parse_number`
    with NUMBERS[key]. Returns the number, or None after showing under the field why it cannot be read."""
    spec = NUMBERS[key]
    text = st.text_input(spec.label, value=text_of(defaults[key]), key=key, bind="query-params",
                         help=spec.help)
    remember(key, text, text_of(defaults[key]))
    try:
        return parse_number(text, spec)
    except ValueError as exc:
        st.error(str(exc), icon=":material/warning:")
        return None


def read_numbers(defaults: dict) -> tuple[dict, list[str]]:
    """The values of a page whose every input is shown on each run (keys of `defaults`): number fields
    parsed, None where they cannot be; and the labels of those."""
    values, bad = {}, []
    for key, default in defaults.items():
        value = st.session_state.get(key, default)
        if key in NUMBERS:
            try:
                value = parse_number(value, NUMBERS[key])
            except ValueError:
                value = None
                bad.append(NUMBERS[key].label)
        values[key] = value
    return values, bad


def invalid(values: dict) -> list[str]:
    """Labels of the number fields in `values` that could not be read (None)."""
    return [NUMBERS[k].label for k, v in values.items() if v is None and k in NUMBERS]


def no_figures(labels: list[str], where=st) -> None:
    """Instead of the figures while an input cannot be read: say which, so no earlier figures stay."""
    where.warning(f"No figures while {', '.join(labels)} cannot be read: see the message under "
                  f"{'that field' if len(labels) == 1 else 'those fields'}.", icon=":material/warning:")


# what a choice field picks, by part of its name (for "no such accelerator")
KINDS = {"hw": "accelerator", "region": "region", "model": "model", "reward": "model", "devices": "device count"}


def closest(value: str, options: list[str], aliases: dict[str, str] | None = None) -> str:
    """The option nearest to `value` (difflib's ratio, case-insensitive), compared with the option and, for
    a label "FR — France", with each of its parts; `aliases` maps other names (a region's place name) to options."""
    names = {part.lower(): o for o in options for part in (*o.split(" — "), o)}
    names |= {a.lower(): o for a, o in (aliases or {}).items()}
    best = difflib.get_close_matches(value.lower(), list(names), n=1, cutoff=0.0)
    return names[best[0]] if best else options[0]


def link_problem(name: str, values: list[str], options: dict[str, list[str]],
                 aliases: dict[str, dict[str, str]] | None = None) -> tuple[list[str], str | None]:
    """(values to keep, note) for link parameter `name` with `values`. The note says what was ignored
    and what the field takes (for a choice, the closest valid value); None when every value fits or the
    name is not an input's. A value that is another name of an option (`aliases[name]`: "France" or
    "FR" for the Compare page's "FR (France)") is kept as that option."""
    if name in NUMBERS:
        spec = NUMBERS[name]
        bad = []
        for value in values:
            try:
                parse_number(value, spec)
            except ValueError:
                bad.append(value)
        if not bad:
            return values, None
        return [], (f"{name}={bad[0][:40]}: {spec.label} takes {spec.expected()}; the default "
                    f"{text_of(ALL_DEFAULTS[name])} is used")
    if name not in options:
        return values, None
    valid, named = options[name], {a.lower(): o for a, o in ((aliases or {}).get(name) or {}).items()}
    kept = [v if v in valid else named[v.lower()] for v in values if v in valid or v.lower() in named]
    bad = [v for v in values if v not in valid and v.lower() not in named]
    if not bad:
        return kept, None
    kind = next((k for part, k in KINDS.items() if part in name), "choice")
    near = ", ".join(closest(v, valid, (aliases or {}).get(name)) for v in bad)
    rest = "the other values are kept" if kept else f"the default {ALL_DEFAULTS.get(name, 'selection')} is used"
    return kept, f"{name}={', '.join(v[:40] for v in bad)}: no such {kind}; closest valid value {near}; {rest}"


def check_link(cat) -> tuple[list[str], bool]:
    """Correct the page's link: remove the parameters the inputs cannot take (`?hw=nvidia-h100-sxm-8gb`,
    `?region=Mars`, `?n_dev=abc`, `?seq=1e999`), put an option's own name for another of its names.
    Returns a note for each removal (see link_problem) and whether the link changed."""
    options = choices(cat)
    aliases = link_aliases(cat)  # ?region=FR, ?region=France find "FR — France"
    notes, changed = [], False
    for name in list(st.query_params):
        values = st.query_params.get_all(name)
        kept, note = link_problem(name, values, options, aliases)
        notes += [note] if note else []
        if kept != values:
            changed = True
            if kept:
                st.query_params[name] = kept
            else:
                del st.query_params[name]
    return notes, changed


STORE = "input_values"  # session_state: key -> (link form, widget value) of each input's last non-default value


def remember(key: str, url_value, default_url) -> None:
    """Keep input `key`'s value for the other pages that show it; `url_value` as its link parameter holds it."""
    store = st.session_state.setdefault(STORE, {})
    if url_value == default_url:
        store.pop(key, None)
    else:
        store[key] = (url_value, st.session_state[key])


def restore_inputs(keys) -> bool:
    """On a page switch (Streamlit opens the new page with an empty link and its widgets at their
    defaults): put the last values of the inputs this page shares with others (`keys`) in its link, so
    its widgets start from them and its address restores them. Returns whether the link changed (the
    widgets seed from the link as it was when the run started: rerun)."""
    from streamlit.errors import StreamlitAPIException

    store, changed = st.session_state.get(STORE, {}), False
    for key in keys:
        if key in store and key not in st.query_params:
            url_value, value = store[key]
            try:
                st.query_params[key] = url_value
                changed = True
            except StreamlitAPIException:  # still bound to the last page's widget (AppTest): set the value
                st.session_state[key] = value
    return changed


def bound(kind: str, label: str, key: str, defaults: dict, **kw):
    """A keyed `st.<kind>` widget bound to the URL; its default (left out of the URL) is defaults[key]."""
    if "options" in kw:
        kw["index"] = kw["options"].index(defaults[key]) if defaults[key] in kw["options"] else 0
    else:
        kw["value"] = defaults[key]
    value = getattr(st, kind)(label, key=key, bind="query-params", **kw)
    remember(key, str(value), str(defaults[key]))
    return value


def region(key: str, defaults: dict, cat) -> str:
    """A grid-region picker, searchable by id or place name ("FR — France": type "France" or "Virginia"),
    with the region's carbon intensity beneath it. The link holds the label (a bound widget's URL value is
    what it shows); links with the bare id are mapped to it (check_link)."""
    options = sorted(cat.regions)
    label = lambda rid: region_label(rid, cat)
    index = options.index(defaults[key]) if defaults[key] in options else 0
    rid = st.selectbox("Region", options, index=index, format_func=label, key=key, bind="query-params",
                       help="type a country, state or city to find it")
    remember(key, label(rid), label(options[index]))
    r = cat.regions[rid]
    st.caption(f"{r.carbon_intensity_kg_per_kwh.value:g} kgCO2e/kWh, default PUE {r.pue.value:g}")
    return rid


def route_error(msg: str, slots: dict, top) -> None:
    """Show the error beside the controls of the field it names first ("cluster.devices: ..."), else at
    `top`; `slots` maps field prefixes to places, the more specific first ("serving.tp" before "serving.")."""
    from dashboard.data import plain

    hits = [(msg.find(prefix), slot) for prefix, slot in slots.items() if prefix in msg]
    slot = min(hits, key=lambda h: h[0])[1] if hits else top
    slot.error(plain(msg), icon=":material/warning:")


BREAKDOWN = {"component": "component", "hours": "hours", "energy_kwh": "energy (kWh)",
             "cost_usd": "cost (USD)", "co2e_kg": "CO2e (kg)"}


def breakdown_table(breakdown: list[dict], key: str, decimals: int = 1) -> None:
    """An estimate's breakdown (component, hours, kWh, USD, kg CO2e) as a table, components in human names."""
    import pandas as pd

    from dashboard.formats import NA, label, money_column

    rows = pd.DataFrame(breakdown)
    rows["hours"] = rows["seconds"] / 3600
    rows["component"] = rows["component"].map(label)
    scale, money_fmt = money_column(rows["cost_usd"])
    rows["cost_usd"] = rows["cost_usd"] / scale
    number, fmt = st.column_config.NumberColumn, f"%.{decimals}f"
    st.dataframe(rows[list(BREAKDOWN)].rename(columns=BREAKDOWN), hide_index=True, key=key, placeholder=NA,
                 column_config={"hours": number(format=fmt), "energy (kWh)": number(format="%.1f"),
                                "cost (USD)": number(format=money_fmt), "CO2e (kg)": number(format=fmt)})


def downloads(scenario, est, stem: str, key: str) -> None:
    """Scenario TOML and estimate JSON downloads, and the share-link hint."""
    d = st.columns(2)
    d[0].download_button("Scenario TOML", scenario.to_toml(), file_name=f"{stem}.toml", mime="application/toml",
                         on_click="ignore", key=f"{key}_dl_toml")
    d[1].download_button("Estimate JSON", est.to_json(), file_name=f"{stem}-estimate.json", mime="application/json",
                         on_click="ignore", key=f"{key}_dl_json")
    st.caption("Share this scenario: copy the page address; every input above is in it.")


def page_catalog(top):
    """This session's catalog (shipped + uploads); a broken upload is said at `top` and the shipped one used."""
    from dashboard.data import packaged_catalog, plain, session_catalog
    from hardware_catalog.errors import TrainsimError

    try:
        return session_catalog()
    except TrainsimError as exc:
        top.error(plain(f"your uploaded catalog entries are invalid: {exc}"))
        return packaged_catalog()


def duration(days: float) -> str:
    """Wall clock as shown: hours under two days (RL and fine-tuning runs are often short), else days."""
    return f"{days * 24:,.2f} hours" if days < 2 else f"{days:,.2f} days"
