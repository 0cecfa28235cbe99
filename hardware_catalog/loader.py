"""Load the packaged catalog and user overlays into one validated `Catalog`.

Precedence: packaged files, then folders in `TRAINSIM_CATALOG` (os.pathsep-separated), then
folders or files passed explicitly (`--catalog`, dashboard uploads). An overlay entry whose id
already exists must say `override = true`; otherwise both files are named in the error.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from hardware_catalog.errors import CatalogError
from hardware_catalog.files import field_path, loads_toml, read_user_text
from hardware_catalog.schema import Accelerator, Infrastructure, Region, RegionFile

ENV_VAR = "TRAINSIM_CATALOG"


def _format_validation(err: ValidationError, origin: str) -> str:
    parts = []
    for e in err.errors():
        loc = field_path(e["loc"])
        msg = e["msg"]
        if e["type"] == "missing" and loc.endswith(".source"):
            msg = "every catalog number needs a source (value = ..., source = \"...\")"
        elif e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see hardware_catalog/README.md for the schema)"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{origin}: " + "; ".join(parts)


Entry = Accelerator | Region | Infrastructure


def parse_toml_text(text: str, origin: str) -> list[Entry]:
    """Parse and validate one catalog TOML document (an accelerator, a `[[region]]` file, or the
    network and storage defaults: a document with `[storage]` and no `id`)."""
    data = loads_toml(text, origin, CatalogError)
    try:
        if "region" in data:
            return list(RegionFile.model_validate(data).region)
        if "storage" in data and "id" not in data:
            return [Infrastructure.model_validate(data)]
        return [Accelerator.model_validate(data)]
    except ValidationError as exc:
        raise CatalogError(_format_validation(exc, origin)) from None


def parse_file(path: Path) -> list[Entry]:
    """Validate one catalog file; raise `CatalogError` naming the file and field on any problem."""
    return parse_toml_text(read_user_text(path, "catalog file", CatalogError), str(path))


def _toml_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(path.rglob("*.toml"))
    raise CatalogError(f"catalog path {path}: no such file or folder")


def _check_unique_names(kind: str, table: Mapping, origins: Mapping[str, str]) -> None:
    """Ids and aliases must name one entry each (case-insensitive); otherwise lookups are ambiguous."""
    owner: dict[str, str] = {}
    for item in table.values():
        for name in {item.id.lower(), *(a.lower() for a in item.aliases)}:
            other = owner.setdefault(name, item.id)
            if other != item.id:
                raise CatalogError(
                    f"{origins.get(f'{kind}:{item.id}', '?')}: {kind} '{item.id}' uses the name '{name}', "
                    f"which already names {kind} '{other}' in {origins.get(f'{kind}:{other}', '?')}; "
                    "ids and aliases must be unique (case-insensitive)"
                )


@dataclass(frozen=True)
class Catalog:
    """Validated accelerators and regions, with the file each came from, and the network and
    storage defaults (`infrastructure.toml`; None in a catalog built without them)."""

    accelerators: Mapping[str, Accelerator]
    regions: Mapping[str, Region]
    origins: Mapping[str, str] = field(default_factory=dict)
    infrastructure: Infrastructure | None = None

    def _lookup(self, kind: str, table: Mapping, key: str):
        if key in table:
            return table[key]
        low = key.lower()
        for item in table.values():
            if low == item.id.lower() or low in (a.lower() for a in item.aliases):
                return item
        names = list(table) + [a for it in table.values() for a in it.aliases]
        near = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise CatalogError(f"unknown {kind} '{key}'{hint} (`trainsim catalog list` shows all)")

    def accelerator(self, key: str) -> Accelerator:
        """The accelerator with this id or alias (case-insensitive)."""
        return self._lookup("accelerator", self.accelerators, key)

    def region(self, key: str) -> Region:
        """The region with this id or alias (case-insensitive)."""
        return self._lookup("region", self.regions, key)

    def with_entries(self, entries: Iterable[tuple[Entry, str]]) -> Catalog:
        """A new catalog with `entries` (item, origin) overlaid; duplicates need `override = true`."""
        accs, regs, origins = dict(self.accelerators), dict(self.regions), dict(self.origins)
        infra = self.infrastructure
        for item, origin in entries:
            if isinstance(item, Infrastructure):
                if infra is not None and not item.override:
                    raise CatalogError(f"{origin}: the network and storage defaults are already defined in "
                                       f"{origins.get('infrastructure', '?')}; set `override = true` to replace them")
                infra, origins["infrastructure"] = item, origin
                continue
            table, kind = (accs, "accelerator") if isinstance(item, Accelerator) else (regs, "region")
            key = f"{kind}:{item.id}"
            if item.id in table and not item.override:
                raise CatalogError(
                    f"{origin}: {kind} id '{item.id}' is already defined in {origins.get(key, '?')}; "
                    "set `override = true` to replace it"
                )
            table[item.id] = item
            origins[key] = origin
        for kind, table in (("accelerator", accs), ("region", regs)):
            _check_unique_names(kind, table, origins)
        return Catalog(accs, regs, origins, infra)

    def with_paths(self, paths: Iterable[str | os.PathLike]) -> Catalog:
        """A new catalog with the TOML files (or folders of them) at `paths` overlaid."""
        entries = []
        for p in paths:
            for f in _toml_files(Path(p)):
                entries += [(item, str(f)) for item in parse_file(f)]
        return self.with_entries(entries)


@functools.cache
def packaged_catalog() -> Catalog:
    """The catalog shipped with the package (loaded once, lazily)."""
    root = resources.files("hardware_catalog")
    entries: list[tuple[Entry, str]] = [(infrastructure_defaults(), "hardware_catalog/infrastructure.toml")]
    for sub in ("accelerators", "regions"):
        for res in sorted(root.joinpath(sub).iterdir(), key=lambda r: r.name):
            if res.name.endswith(".toml"):
                origin = f"hardware_catalog/{sub}/{res.name}"
                entries += [(item, origin) for item in parse_toml_text(res.read_text("utf-8"), origin)]
    return Catalog({}, {}).with_entries(entries)


def parse_infrastructure_text(text: str, origin: str) -> Infrastructure:
    """Parse and validate the network and storage defaults (`infrastructure.toml`'s schema)."""
    data = loads_toml(text, origin, CatalogError)
    try:
        return Infrastructure.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(_format_validation(exc, origin)) from None


@functools.cache
def infrastructure_defaults() -> Infrastructure:
    """The packaged network and storage defaults (`hardware_catalog/infrastructure.toml`; loaded once, lazily)."""
    res = resources.files("hardware_catalog").joinpath("infrastructure.toml")
    return parse_infrastructure_text(res.read_text("utf-8"), "hardware_catalog/infrastructure.toml")


def load_catalog(extra_paths: Iterable[str | os.PathLike] = (), use_env: bool = True) -> Catalog:
    """Packaged catalog + `TRAINSIM_CATALOG` folders + `extra_paths`, all validated."""
    paths: list[str | os.PathLike] = []
    if use_env and os.environ.get(ENV_VAR):
        paths += [p for p in os.environ[ENV_VAR].split(os.pathsep) if p]
    paths += list(extra_paths)
    cat = packaged_catalog()
    return cat.with_paths(paths) if paths else cat
