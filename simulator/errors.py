"""Exceptions raised on bad user input (docs/design.md section 2, "Errors").

All derive from `TrainsimError`; the CLI prints `str(err)` as one line and exits non-zero.
"""

from __future__ import annotations

from hardware_catalog.errors import CatalogError, TrainsimError


class ScenarioError(TrainsimError):
    """A scenario file or override is malformed: names the field, the file and what was expected."""


class InfeasiblePlanError(TrainsimError):
    """A parallelism plan is invalid or does not fit in device memory (says by how much)."""


class DataFileError(TrainsimError, ValueError):
    """A data file (published throughput rows, a fit's inputs) cannot be used: names the file or the
    accelerator and what was expected."""


__all__ = ["CatalogError", "DataFileError", "InfeasiblePlanError", "ScenarioError", "TrainsimError"]
