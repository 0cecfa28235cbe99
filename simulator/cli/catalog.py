"""`trainsim catalog list|show|validate`: browse and validate the hardware catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

import hardware_catalog
from hardware_catalog import Catalog, load_catalog, parse_file
from hardware_catalog.errors import TrainsimError
from simulator.system.perf_params import priors_origin
from simulator.cli.common import (CatalogOpt, Format, FormatOpt, _catalog, _csv, _out, _print_table, _user_errors,
    err_console)

catalog_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Browse and validate the hardware catalog.")


@catalog_app.command("list")
@_user_errors
def catalog_list(
    kind: Annotated[str, typer.Option(help="accelerators | regions")] = "accelerators",
    fmt: FormatOpt = Format.table,
    catalog: CatalogOpt = None,
) -> None:
    """List catalog accelerators or regions."""
    cat = _catalog(catalog)
    if kind == "accelerators":
        rows = [{"id": a.id, "name": a.name, "bf16_tflops": a.peak_tflops_dense["bf16"].value,
                 "hbm_gb": a.memory.hbm_gb.value, "tdp_w": a.power.tdp_w.value,
                 "usd_per_hour": (a.prices.reserved_usd_per_hour or a.prices.on_demand_usd_per_hour).value
                 if (a.prices.reserved_usd_per_hour or a.prices.on_demand_usd_per_hour) else None,
                 "perf_priors": priors_origin(a)}
                for a in cat.accelerators.values()]
    elif kind == "regions":
        rows = [{"id": r.id, "name": r.name, "kind": r.kind,
                 "carbon_intensity_kg_per_kwh": r.carbon_intensity_kg_per_kwh.value, "pue": r.pue.value}
                for r in cat.regions.values()]
    else:
        raise typer.BadParameter("--kind must be accelerators or regions")
    if fmt is Format.json:
        _out(json.dumps(rows, indent=2))
    elif fmt is Format.csv:
        _out(_csv(rows))
    else:
        _print_table(kind, rows)


@catalog_app.command("show")
@_user_errors
def catalog_show(
    entry_id: Annotated[str, typer.Argument(help="accelerator or region id (or alias)")],
    fmt: FormatOpt = Format.table,
    catalog: CatalogOpt = None,
) -> None:
    """Show one accelerator or region with every number's source."""
    cat = _catalog(catalog)
    try:
        item = cat.accelerator(entry_id)
    except TrainsimError:
        item = cat.region(entry_id)
    data = item.model_dump(exclude_none=True)
    if fmt is Format.json:
        _out(json.dumps(data, indent=2))
        return
    rows = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and "value" in node and "source" in node:
            rows.append({"field": prefix, "value": node["value"],
                         "source": node["source"] + ("" if node.get("verified", True) else "  [unverified]")})
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            rows.append({"field": prefix, "value": node, "source": ""})

    walk("", data)
    if fmt is Format.csv:
        _out(_csv(rows))
    else:
        _print_table(item.name, rows, ["field", "value", "source"])


@catalog_app.command("validate")
@_user_errors
def catalog_validate(paths: Annotated[list[Path], typer.Argument(help="TOML files or folders")]) -> None:
    """Validate catalog files (the same checks the loader applies); exit 1 on the first error."""
    n = 0
    for p in paths:
        files = sorted(p.rglob("*.toml")) if p.is_dir() else [p]
        for f in files:
            n += len(parse_file(f))
    # Overlay rules (a duplicate id needs override = true): the shipped files are checked among
    # themselves, a user's files against the shipped catalog.
    pkg = Path(hardware_catalog.__file__).parent.resolve()
    shipped = [p for p in paths if p.resolve() == pkg or pkg in p.resolve().parents]
    Catalog({}, {}).with_paths(shipped)
    load_catalog([p for p in paths if p not in shipped], use_env=False)
    err_console.print(f"ok: {n} entries valid")
