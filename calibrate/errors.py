"""Errors raised by the calibration trainer (meters, bench, fit).

Each names what failed and what the user can do instead; the CLI prints `str(err)` as one line.
"""

from __future__ import annotations

from hardware_catalog.errors import TrainsimError


class MeasurementError(TrainsimError):
    """A power meter, benchmark or measurement record cannot be used as asked."""
