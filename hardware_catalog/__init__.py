"""The hardware catalog: accelerators and grid regions as validated, sourced TOML data."""

from hardware_catalog.errors import CatalogError, TrainsimError
from hardware_catalog.loader import Catalog, load_catalog, parse_file, parse_toml_text
from hardware_catalog.schema import Accelerator, Region, Sourced

__all__ = [
    "Accelerator",
    "Catalog",
    "CatalogError",
    "Region",
    "Sourced",
    "TrainsimError",
    "load_catalog",
    "parse_file",
    "parse_toml_text",
]
