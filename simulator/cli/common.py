"""Shared pieces of the `trainsim` command line: output formats, tables, one-line user errors.

Data goes to stdout, messages to stderr. Every user error (`TrainsimError`) becomes one line on
stderr and exit code 1; usage errors are typer's (exit code 2).
"""

from __future__ import annotations

import functools
import io
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hardware_catalog import Catalog, load_catalog
from hardware_catalog.errors import TrainsimError

# user text (scenario names, file paths, messages) is printed literally: no emoji codes (":x:"),
# no console markup ("[bold red]"), no highlighting
err_console = Console(stderr=True, emoji=False, highlight=False)


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table for people, json/csv for scripts")]
CatalogOpt = Annotated[list[Path] | None, typer.Option(
    "--catalog", help="extra catalog folder or TOML file (repeatable); also $TRAINSIM_CATALOG")]


def _user_errors(fn):
    """Turn project errors into one clear line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TrainsimError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _catalog(paths: list[Path] | None) -> Catalog:
    return load_catalog(paths or [])


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _csv(rows: list[dict[str, Any]]) -> str:
    import pandas as pd

    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if v == 0 or 1e-3 <= abs(v) < 1e6:
            return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return f"{v:.3e}"
    return str(v)


def _print_table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    table = Table(title=Text(title), title_justify="left")
    cols = columns or (list(rows[0]) if rows else [])
    for c in cols:
        table.add_column(Text(c), justify="left" if c in ("component", "name", "run", "id", "quantity", "method")
                         else "right")
    for r in rows:
        table.add_row(*(Text(_fmt(r.get(c, ""))) for c in cols))  # Text: cells are never read as markup
    Console(width=160, emoji=False, highlight=False).print(table)


app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Compute cost and energy simulator for AI training.")

DISTRIBUTION = "trainsim"  # [project] name in pyproject.toml


def version_text() -> str:
    """`trainsim 0.1.0`: the installed distribution's version (importlib.metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{DISTRIBUTION} {version(DISTRIBUTION)}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return f"{DISTRIBUTION} (version unknown: not installed; pip install -e .)"


def _print_version(value: bool) -> None:
    if value:
        _out(version_text())
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Compute cost and energy simulator for AI training."""
