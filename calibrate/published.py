"""Fit an accelerator's performance priors to published throughput tables.

A published row (`simulator.validation.public_rows.PublicRow`: a model shape, a plan, an accelerator and the
tokens/s per device its authors measured) is a measured step with another provenance, so it goes
through the same fitting code as our own runs (`calibrate.fit.fit_step_time`): the simulator's
step-time model (`simulator.execution.steptime.step_parts`) for the row's own plan, parameters fitted by
bounded robust least squares of log step time.

What is fitted, per accelerator (or sibling SKUs with the same die, fitted together):
- hardware parameters, shared by every software stack: `gemm_eff_max`, the GEMM ceiling, bounded
  above by the accelerator's maximum achievable matmul (stas00/ml-engineering MAMF table,
  `KernelRow`s) where one is published; `gemm_half_gflop`, the small-GEMM curve; `fp8_gemm_eff`
  when fp8 rows exist, `grouped_gemm_eff` when MoE rows do;
- software parameters, one set per stack in the rows (`PublicRow.framework`: Megatron-Core/NeMo,
  PyTorch FSDP as in llm-foundry, MaxText): `flash_attn_eff` (the attention kernel),
  `elementwise_bytes` (kernel fusion), `layer_overhead_s` (launch and framework overhead) and
  `scaleout_latency_s` (the per-step latency of collectives across domains: NCCL version and
  protocol, and how many calls the framework makes).
A weak prior (`PRIOR_WEIGHT`) pulls each parameter towards its vendor-neutral sourced value, so a
parameter the rows cannot identify stays where its source puts it. The catalog's `[perf]` holds the
hardware parameters with the reference stack's (`REFERENCE_STACKS`), `[perf.stacks.*]` the others.

Held-out errors: every row is predicted by a fit that did not see its group. Two groupings are
reported: by publisher (`source`: llm-foundry, NeMo, MaxText, ...) and by table (one table of one
publisher: one model or one benchmark series). A stack the held-out fit never saw is predicted with
the best-covered stack's parameters; a part with nothing left is predicted from another part's
catalog table with its GEMM ceiling scaled by the two parts' MAMF (`transfer_params`). Errors are in
tokens/s per device, 100 x (predicted / published - 1).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np
import pandas as pd

from calibrate.fit import ALL_BOUNDS, Case, fit_step_time_by_software, predict_step_times
from hardware_catalog import Catalog, load_catalog
from simulator.errors import DataFileError
from simulator.execution.memory import STACKS
from simulator.system.perf_params import (LOW_PRECISION_EFFS, PRIOR_SOURCES, PerfParams, catalog_priors,
                                          low_precision_prior, neutral_priors)
from simulator.validation.public_rows import KernelRow, PublicRow, load_kernel_rows, load_public_rows, row_plans

HARDWARE_NAMES = ("gemm_eff_max", "gemm_half_gflop")
SOFTWARE_NAMES = ("flash_attn_eff", "layer_overhead_s", "elementwise_bytes", "scaleout_latency_s")
PRIOR_WEIGHT = 0.5  # residual per unit of log-parameter distance; one row's 5% error is 0.05
HOLDOUTS = ("source", "table")


def case_for(row: PublicRow, catalog: Catalog) -> Case:
    """The row as a measured step: step time = global batch tokens / (tokens/s per device x devices)."""
    if not row.usable:
        raise DataFileError(f"public row {row.row}: not usable ({row.reason})")
    batch = int(row.global_batch_seqs)
    tokens = batch * row.spec.seq_len
    step_s = tokens / (row.tokens_per_s_per_device * row.devices)
    return Case(row.spec, row_plans(row), catalog.accelerator(row.accelerator_id), row.precision,
                batch, step_s, flash=row.flash_attention, overlap=row.overlap_comm,
                cp_comm=row.cp_comm, group=f"{row.source} | {row.table}", software=row.framework, moe=row.moe)


def rows_for(accelerators: tuple[str, ...], rows: list[PublicRow] | None = None) -> list[PublicRow]:
    """The usable rows measured on any of `accelerators` (catalog ids)."""
    rows = load_public_rows() if rows is None else rows
    return [r for r in rows if r.usable and r.accelerator_id in accelerators]


def gemm_ceiling(acc_id: str, precision: str, catalog: Catalog,
                 kernels: list[KernelRow] | None = None) -> float | None:
    """Maximum achievable matmul as a fraction of the catalog's dense peak (MAMF table), or None."""
    kernels = load_kernel_rows() if kernels is None else kernels
    acc = catalog.accelerator(acc_id)
    best = [k.tflops for k in kernels if k.usable and k.op == "gemm" and k.accelerator_id == acc_id
            and k.precision == precision]
    return min(1.0, max(best) * 1e12 / acc.peak_flops(precision)) if best else None


def fit_names(rows: list[PublicRow]) -> tuple[str, ...]:
    """The hardware parameters fitted: HARDWARE_NAMES, plus fp8 and MoE ones when the rows exercise them."""
    names = list(HARDWARE_NAMES)
    if any(r.precision == "fp8" for r in rows):
        names.append("fp8_gemm_eff")
    if any(r.kind == "moe" for r in rows):
        names.append("grouped_gemm_eff")
    return tuple(names)


@dataclass(frozen=True)
class PublishedFit:
    """Fitted parameters of one accelerator (one set per software stack in its rows) and every
    row's in-sample and held-out error (%)."""

    accelerators: tuple[str, ...]
    params: dict[str, PerfParams]  # software stack -> parameters (hardware ones shared)
    names: tuple[str, ...]  # hardware parameters fitted
    software_names: tuple[str, ...]  # parameters fitted per software stack
    rows: tuple[PublicRow, ...]
    in_sample_pct: tuple[float, ...]
    held_out_pct: dict[str, tuple[float, ...]]  # holdout kind -> per-row error, same order as rows
    bounds: dict[str, tuple[float, float]]

    def summary(self, holdout: str = "table") -> dict[str, float]:
        err = np.abs(self.held_out_pct[holdout])
        return {"rows": len(err), "median_abs_pct": float(np.median(err)), "max_abs_pct": float(np.max(err))}


DONORS = {"gpu": "nvidia-h100-sxm-80gb", "tpu": "google-tpu-v5p"}  # the best-covered measured part of each kind


def transfer_params(acc_id: str, excluded_source: str | None, rows: list[PublicRow] | None, catalog: Catalog,
                    kernels: list[KernelRow] | None = None) -> dict[str, PerfParams] | None:
    """The parameters a part with no rows of its own would get from another part's fit (its kind's
    DONORS entry, or another part of its kind when it is the donor): the donor's catalog `[perf]` per
    stack with its GEMM ceiling scaled by the two parts' maximum achievable matmul (MAMF table). None
    (vendor-neutral priors then) when either part has no MAMF measurement, or when the donor's fit
    saw `excluded_source` (a publisher held out everywhere)."""
    acc = catalog.accelerator(acc_id)
    donor_id = DONORS["tpu" if acc.kind == "tpu" else "gpu"]
    if donor_id == acc_id:
        donor_id = "google-tpu-v5e" if acc.kind == "tpu" else "nvidia-a100-sxm-80gb"
    donor = catalog.accelerator(donor_id)
    own, theirs = gemm_ceiling(acc_id, "bf16", catalog, kernels), gemm_ceiling(donor_id, "bf16", catalog, kernels)
    if donor.perf is None or own is None or theirs is None:
        return None
    if any(r.source == excluded_source for r in rows_for((donor_id,), rows)):
        return None
    scale = own / theirs

    def scaled(stack: str) -> PerfParams:  # a stack the donor lacks gets its reference stack
        p = catalog_priors(donor, stack)
        return dataclasses.replace(p, gemm_eff_max=min(1.0, p.gemm_eff_max * scale))

    return {stack: scaled(stack) for stack in STACKS}


def _tokens_error_pct(cases: list[Case], params: dict[str, PerfParams]) -> np.ndarray:
    """100 x (predicted / measured tokens/s - 1) = 100 x (measured / predicted step time - 1)."""
    t = predict_step_times(cases, params)
    return 100.0 * (np.array([c.measured_s for c in cases]) / t - 1.0)


def _with_unseen(params: dict[str, PerfParams], fitted: list[Case], held: list[Case]) -> dict[str, PerfParams]:
    """A held-out stack the fit never saw is predicted with the parameters of the stack with the
    most rows in the fit."""
    fallback = params[max(params, key=lambda sw: sum(c.software == sw for c in fitted))]
    return {**{c.software: fallback for c in held}, **params}


def _holdout_groups(rows: list[PublicRow], holdouts: tuple[str, ...]) -> list[tuple[str, str, list[int]]]:
    """(holdout kind, group key, the rows' indices) for every group each holdout leaves out."""
    groups = []
    for kind in holdouts:
        keys = [r.source if kind == "source" else f"{r.source} | {r.table}" for r in rows]
        groups += [(kind, key, [i for i, k in enumerate(keys) if k == key]) for key in sorted(set(keys))]
    return groups


def _map(fn, jobs: list, workers: int | None) -> list:
    """`[fn(job) for job in jobs]`, in up to `workers` processes (default: one per CPU) when there are
    several jobs: each is a bounded least-squares fit, seconds to minutes of CPU."""
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [fn(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, jobs))


def fit_published(accelerators: tuple[str, ...], rows: list[PublicRow] | None = None,
                  catalog: Catalog | None = None, kernels: list[KernelRow] | None = None,
                  holdouts: tuple[str, ...] = HOLDOUTS, prior_weight: float = PRIOR_WEIGHT,
                  workers: int | None = None) -> PublishedFit:
    """Fit the step-time parameters of `accelerators` (sibling SKUs of one die) to their rows. The fit
    and its held-out refits are independent: they run in `workers` processes (default: one per CPU)."""
    catalog = catalog or load_catalog()
    mine = rows_for(accelerators, rows)
    if len(mine) < 3:
        raise DataFileError(f"--accelerator {', '.join(accelerators)}: {len(mine)} usable published rows; "
                         "at least 3 are needed")
    cases = [case_for(r, catalog) for r in mine]
    # vendor-neutral sourced priors: the fit never feeds on its own earlier output
    prior = neutral_priors(catalog.accelerator(accelerators[0]))
    names = fit_names(mine)
    bounds: dict[str, tuple[float, float]] = {}
    ceiling = gemm_ceiling(accelerators[0], "bf16", catalog, kernels)
    if ceiling is not None:
        bounds["gemm_eff_max"] = (0.02, ceiling)
        prior = dataclasses.replace(prior, gemm_eff_max=min(prior.gemm_eff_max, ceiling))

    fit = functools.partial(fit_step_time_by_software, shared=names, per_software=SOFTWARE_NAMES, prior=prior,
                            prior_weight=prior_weight, bounds=bounds)
    groups = _holdout_groups(mine, holdouts)
    rests = [[c for i, c in enumerate(cases) if i not in held] for held in (set(idx) for _, _, idx in groups)]
    params, *held_fits = _map(fit, [cases] + [r for r in rests if r], workers)
    in_sample = _tokens_error_pct(cases, params)
    errors = {kind: np.empty(len(cases)) for kind in holdouts}
    for (kind, key, idx), rest in zip(groups, rests, strict=True):
        out = [cases[i] for i in idx]
        if rest:
            p_k = _with_unseen(held_fits.pop(0), rest, out)
        else:  # nothing of this part left: transfer a measured part's fit that never saw this group
            donor = transfer_params(accelerators[0], key if kind == "source" else None, rows, catalog, kernels)
            p_k = {c.software: (donor or {}).get(c.software, prior) for c in out}
        errors[kind][idx] = _tokens_error_pct(out, p_k)
    held = {kind: tuple(float(e) for e in err) for kind, err in errors.items()}
    return PublishedFit(tuple(accelerators), params, names, SOFTWARE_NAMES, tuple(mine),
                        tuple(float(e) for e in in_sample), held, bounds)


REFERENCE_STACKS = ("megatron", "maxtext")  # today's reference software: Megatron-Core/NeMo (GPUs), MaxText (TPUs)


def reference_stack(fit: PublishedFit) -> str:
    """The stack the catalog's `[perf]` describes: a reference stack present in the rows, else the
    best covered one."""
    present = [s for s in REFERENCE_STACKS if s in fit.params]
    return present[0] if present else max(fit.params, key=lambda sw: sum(r.framework == sw for r in fit.rows))


def row_information(fit: PublishedFit, name: str, stack: str, catalog: Catalog | None = None) -> float:
    """What the rows say about parameter `name` (of `stack`, for a software parameter): the sum over
    the rows it acts on of (d log step time / d log parameter)^2 at the fitted value, the Gauss-Newton
    information of the fit's log-time residuals. The prior adds PRIOR_WEIGHT^2 (its residual is
    PRIOR_WEIGHT x log(value / prior)): below that the prior, not the rows, sets the value."""
    catalog = catalog or load_catalog()
    hardware = name in fit.names
    cases = [case_for(r, catalog) for r in fit.rows if hardware or r.framework == stack]

    def times(factor: float) -> np.ndarray:
        params = {sw: dataclasses.replace(p, **{name: getattr(p, name) * factor}) if hardware or sw == stack else p
                  for sw, p in fit.params.items()}
        return predict_step_times(cases, params)

    step = 0.01
    sensitivity = (np.log(times(1 + step)) - np.log(times(1 - step))) / (np.log(1 + step) - np.log(1 - step))
    return float(np.sum(sensitivity**2))


def sourced_toml(value: float, source: str, note: str = "", verified: bool = True) -> str:
    extra = (f', note = "{note}"' if note else "") + ("" if verified else ", verified = false")
    return f'{{ value = {value:.5g}, source = "{source}"{extra} }}'


def perf_toml(fit: PublishedFit, command: str, prior: PerfParams | None = None) -> str:
    """The catalog's `[perf]` table for `fit`: hardware and reference-stack parameters, then one
    `[perf.stacks.<name>]` table per other stack. A parameter the rows left at its prior says so."""
    ref = reference_stack(fit)
    held = fit.summary("table")
    src = (f"fitted to {len(fit.rows)} published rows of public_throughput/rows.csv "
           f"({'; '.join(sorted({r.source for r in fit.rows}))}); leave-one-table-out median "
           f"{held['median_abs_pct']:.1f}%")
    catalog = load_catalog()  # once: row_information rebuilds the rows' cases from it

    fp8_only = all(r.precision == "fp8" for r in fit.rows)
    product = fit.params[ref].gemm_eff_max * fit.params[ref].fp8_gemm_eff

    def note(name: str, value: float) -> str:
        split = (f"the rows are all FP8: they fix gemm_eff_max x fp8_gemm_eff = {product:.3f}, the priors split it"
                 if fp8_only and name in ("gemm_eff_max", "fp8_gemm_eff") else "")
        if name == "gemm_eff_max" and "gemm_eff_max" in fit.bounds:
            bound = f"bounded by the maximum achievable matmul, {fit.bounds['gemm_eff_max'][1]:.3f} of peak (MAMF table)"
            return f"{bound}; {split}" if split else bound
        if split:
            return split
        if name in ALL_BOUNDS and value <= ALL_BOUNDS[name][0] * 1.01:
            return "at the fit's lower bound: the rows show no such cost"
        if prior is None:
            return ""
        info = row_information(fit, name, ref, catalog)
        if info >= PRIOR_WEIGHT**2:
            return ""
        if abs(value / max(getattr(prior, name), 1e-30) - 1) < 0.01:
            return "not identified by the rows: within 1% of its prior"
        return (f"weakly identified: the rows' information {info:.3f} is below the prior's {PRIOR_WEIGHT**2:.2f} "
                f"(row_information; prior {getattr(prior, name):.3g})")

    lines = ["[perf]", f'method = "{command}"']
    params = fit.params[ref]
    for name in fit.names + fit.software_names:
        value = getattr(params, name)
        stack = "" if name in fit.names else f" (software parameter of the {ref} stack)"
        lines.append(f"{name} = {sourced_toml(value, src + stack, note(name, value))}")
    kernel = fit.bounds.get("gemm_eff_max", (0, None))[1]  # the part's maximum achievable matmul
    if kernel is not None:
        lines.append(f"gemm_kernel_max = {sourced_toml(kernel, 'maximum achievable matmul, bf16 (stas00/ml-engineering MAMF table)')}")
    acc = catalog.accelerator(fit.accelerators[0])
    for name, source in PRIOR_SOURCES.items():  # what the rows do not fit, with where it comes from
        if name not in fit.names + fit.software_names and not (name == "gemm_kernel_max" and kernel is not None):
            if name in LOW_PRECISION_EFFS:  # the prior the fit used follows the part's peaks (neutral_priors)
                source = low_precision_prior(acc, name)[1]
            lines.append(f"{name} = {sourced_toml(getattr(params, name), source, verified=False)}")
    for sw in sorted(fit.params):
        if sw == ref:
            continue
        lines += ["", f"[perf.stacks.{sw}]"]
        n = sum(r.framework == sw for r in fit.rows)
        for name in fit.software_names:
            lines.append(f"{name} = {sourced_toml(getattr(fit.params[sw], name), f'fitted to the {n} {sw} rows of the same fit')}")
    return "\n".join(lines) + "\n"


HELDOUT_CSV = Path(__file__).resolve().parents[1] / "simulator" / "data" / "public_fit_heldout.csv"
HELDOUT_COLUMNS = ("row", "accelerator", "family", "kind", "source", "table", "model", "devices", "precision",
                   "stack", "published_tokens_per_s", "in_sample_pct", "held_out_table_pct", "held_out_source_pct")


def heldout_frame(fit: PublishedFit) -> pd.DataFrame:
    """One line per row of `fit`: its errors in sample and held out (by table and by publisher)."""
    return pd.DataFrame([{
        "row": r.row, "accelerator": r.accelerator_id, "family": r.family, "kind": r.kind, "source": r.source,
        "table": r.table, "model": r.model_name, "devices": r.devices, "precision": r.precision,
        "stack": r.framework, "published_tokens_per_s": r.tokens_per_s_per_device, "in_sample_pct": round(e, 2),
        "held_out_table_pct": round(t, 2), "held_out_source_pct": round(s, 2)}
        for r, e, t, s in zip(fit.rows, fit.in_sample_pct, fit.held_out_pct["table"], fit.held_out_pct["source"],
                              strict=True)], columns=list(HELDOUT_COLUMNS))


def write_heldout(fit: PublishedFit, path: Path = HELDOUT_CSV) -> Path:
    """Replace `fit`'s accelerators' lines of the shipped held-out table (simulator/data)."""
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=list(HELDOUT_COLUMNS))
    keep = old[~old["accelerator"].isin(fit.accelerators)]
    frames = [f for f in (keep, heldout_frame(fit)) if len(f)]
    pd.concat(frames).sort_values(["family", "row"]).to_csv(path, index=False)
    return path


def error_table(fits: list[PublishedFit], holdout: str = "source") -> list[dict]:
    """Per (accelerator family, dense/MoE) group: rows, median and worst held-out |error| %."""
    groups: dict[tuple[str, str], list[float]] = {}
    for f in fits:
        for r, e in zip(f.rows, f.held_out_pct[holdout], strict=True):
            groups.setdefault((r.family, r.kind), []).append(abs(e))
    return [{"family": fam, "kind": kind, "rows": len(v), "median_abs_pct": round(median(v), 1),
             "max_abs_pct": round(max(v), 1)} for (fam, kind), v in sorted(groups.items())]
