"""Project exceptions shared by every package (the catalog is the lowest layer, so they live here).

Each names the field, the file and what was expected; the CLI prints `str(err)` as one line.
"""

from __future__ import annotations


class TrainsimError(Exception):
    """Base of every user-facing trainsim error."""


class CatalogError(TrainsimError):
    """A catalog file is malformed, or an id is unknown."""
