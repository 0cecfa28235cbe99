"""Project exceptions shared by every package (the catalog is the lowest layer, so they live here).

Each names the field, the file and what was expected; the CLI prints `str(err)` as one line.
"""

from __future__ import annotations


def one_line(message: str) -> str:
    """`message` with every non-printable character (a newline, a NUL, an escape code a user put in a
    name or a value) written as its escape, so that an error is always one literal line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class TrainsimError(Exception):
    """Base of every user-facing trainsim error; its message is always one line (`one_line`)."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(one_line(str(message)), *args)


class CatalogError(TrainsimError):
    """A catalog file is malformed, or an id is unknown."""
