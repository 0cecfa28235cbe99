"""How far a training throughput prediction may be off, per accelerator: the Monte Carlo's default
throughput spread (simulator.footprint.uncertainty), read from the public tables' held-out errors.

One responsibility: a log-sigma for an accelerator from `simulator/data/public_fit_heldout.csv`
(`calibrate.published.write_heldout`: every published row predicted by a fit that did not see its
table, and by one that did not see its publisher). For a normal error, median |x| = 0.6745 sigma, so
sigma = median |ln(predicted / published)| / 0.6745 over the rows concerned:
- a part fitted to its own rows: its family's rows with their table held out (a new model or
  benchmark on a measured part), never below the sigma of all rows (no part is known better than the
  tables as a whole): A100 and H100 0.063, B200 0.254, MI325X 0.155, TPU v5e 0.158;
- a part without rows of its own (inherited `[perf]`, or none): the rows predicted with every row of
  their part held out (B200: its one table; MI325X and the TPUs: their one publisher), 0.142 (median
  error 10%), and never below its sibling's;
- except a part with its sibling's compute (same vendor, the same dense bf16 peak within 1%: H200 and
  H800 from H100, MI300X from MI325X), whose differences (memory, interconnect, a lower measured matmul
  ceiling) the model takes from the catalog: its sibling's spread. The one such transfer the tables measure, A100 40GB predicted
  from the 80GB rows with its only table held out, has sigma 0.051 ('same compute').
"""

from __future__ import annotations

import csv
import math
from functools import lru_cache
from importlib import resources
from statistics import median

SIGMA_PER_MEDIAN_ABS = 1 / 0.6744897501960817  # standard normal: median |x| = 0.6745 sigma


def _sigma(errors_pct: list[float]) -> float:
    return median(abs(math.log1p(e / 100)) for e in errors_pct) * SIGMA_PER_MEDIAN_ABS


@lru_cache(maxsize=1)
def _heldout_rows() -> tuple[dict, ...]:
    """The packaged held-out table (`calibrate.published.write_heldout`), read once."""
    with resources.files("simulator").joinpath("data/public_fit_heldout.csv").open(encoding="utf-8") as f:
        return tuple(csv.DictReader(f))


@lru_cache(maxsize=1)
def heldout_sigmas() -> dict[str, float]:
    """{'all': all rows, table held out; 'unseen part': rows with their whole part held out; 'same
    compute': a sibling SKU's rows predicted from the other's; family: its rows, table held out}
    (module docstring)."""
    rows = _heldout_rows()
    families: dict[str, list[dict]] = {}
    for r in rows:
        families.setdefault(r["family"], []).append(r)
    out = {"all": _sigma([float(r["held_out_table_pct"]) for r in rows])}
    unseen = []
    for family, members in families.items():
        out[family] = _sigma([float(r["held_out_table_pct"]) for r in members])
        if len({(r["source"], r["table"]) for r in members}) == 1:
            unseen += [float(r["held_out_table_pct"]) for r in members]
        elif len({r["source"] for r in members}) == 1:
            unseen += [float(r["held_out_source_pct"]) for r in members]
    out["unseen part"] = _sigma(unseen)
    out["same compute"] = _sigma(_same_compute_errors(families))
    return out


def _same_compute_errors(families: dict[str, list[dict]]) -> list[float]:
    """Table-held-out errors of the parts whose family holds another part and whose own rows are one
    table: held out, they are predicted from their sibling SKU's rows (A100 40GB from 80GB)."""
    out = []
    for members in families.values():
        parts = {r["accelerator"] for r in members}
        for part in parts if len(parts) > 1 else ():
            mine = [r for r in members if r["accelerator"] == part]
            if len({(r["source"], r["table"]) for r in mine}) == 1:
                out += [float(r["held_out_table_pct"]) for r in mine]
    return out


def _family_of(acc_id: str) -> str | None:
    return next((r["family"] for r in _heldout_rows() if r["accelerator"] == acc_id), None)


def _same_compute(acc, sibling) -> bool:
    peak, theirs = acc.peak_tflops_dense["bf16"].value, sibling.peak_tflops_dense["bf16"].value
    return acc.vendor == sibling.vendor and abs(peak / theirs - 1) < 0.01


def throughput_spread(acc, catalog=None) -> tuple[float, str]:
    """(log-sigma of the throughput multiplier, where it comes from) for catalog accelerator `acc`
    (`catalog`: where its sibling is found, for the same-compute case; without it that case is not
    recognised)."""
    sigmas = heldout_sigmas()
    perf = getattr(acc, "perf", None)
    family = _family_of(acc.id) if perf is not None and not perf.inherited_from else None
    if family is not None:
        sigma = max(sigmas["all"], sigmas[family])
        return sigma, (f"{family} rows of the public tables, each predicted with its table held out "
                       f"(sigma {sigmas[family]:.3f}; all rows {sigmas['all']:.3f})")
    sibling = _family_of(perf.inherited_from) if perf is not None and perf.inherited_from else None
    donor = catalog.accelerators.get(perf.inherited_from) if sibling and catalog is not None else None
    if donor is not None and _same_compute(acc, donor):
        sigma = max(sigmas["all"], sigmas[sibling])
        return sigma, (f"{acc.id}: inherited from {donor.id}, the same compute (vendor and bf16 peak): the "
                       f"{sibling} rows' sigma {sigmas[sibling]:.3f} (all rows {sigmas['all']:.3f}; A100 40GB "
                       f"from the 80GB rows, the one such transfer measured: {sigmas['same compute']:.3f})")
    sigma = max(sigmas["unseen part"], sigmas.get(sibling, 0.0) if sibling else 0.0)
    whose = f"inherited from {perf.inherited_from}" if sibling else "no published rows of its own"
    return sigma, (f"{acc.id}: {whose}; rows predicted with their whole part held out: sigma "
                   f"{sigmas['unseen part']:.3f}" + (f", {sibling} rows {sigmas[sibling]:.3f}" if sibling else ""))


def spread_table(catalog) -> list[dict]:
    """Every catalog accelerator's default throughput spread and its P10-P90 factor on the step time,
    for `trainsim validate` and the Validation page."""
    from simulator.footprint.uncertainty import Spreads, p10_p90
    from simulator.system.perf_params import priors_origin

    out = []
    for acc in sorted(catalog.accelerators.values(), key=lambda a: a.id):
        sigma, _ = throughput_spread(acc, catalog)
        low, high = p10_p90(Spreads(throughput=sigma), "throughput")
        out.append({"accelerator": acc.id, "priors": priors_origin(acc), "sigma": round(sigma, 3),
                    "p10_x": round(low, 3), "p90_x": round(high, 3)})
    return out
