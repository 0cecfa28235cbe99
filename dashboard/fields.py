"""Number fields: what each accepts (`Num`) and the parser of what is typed or linked (`parse_number`).

Plain Python, no Streamlit: dashboard/state.py lists the fields (NUMBERS), dashboard/widgets.py renders them.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple


class Num(NamedTuple):
    """A number field: its label (the widget's, named in messages), whether it takes whole numbers only,
    and its range: at least `low` (above it when `open_low`), at most `high`; `help` for the widget."""

    label: str
    integer: bool = False
    low: float = 0.0
    open_low: bool = False
    high: float | None = None
    help: str | None = None

    def expected(self) -> str:
        """What the field takes, for messages: "a whole number of at least 1", "a number above 0"."""
        kind = "a whole number" if self.integer else "a number"
        low = f"{self.low:g}"
        if self.high is not None:
            return f"{kind} from {low} to {self.high:g}"
        return f"{kind} {'above' if self.open_low else 'of at least'} {low}"


NUMBER = re.compile(r"[+-]?(\d+(_\d+)*|\d{1,3}(,\d{3})+)?(\.\d*)?([eE][+-]?\d+)?")  # 1e4, 2.5E3, 10,000, 10_000


def parse_number(text, spec: Num) -> float | int:
    """The number typed into field `spec` ("1e4" -> 10000, "10,000" -> 10000); ValueError with a message
    naming the field and what it takes when the text is not a number, not finite, not whole where the
    field counts things (3.7 devices) or out of its range."""
    raw = str(text).strip()
    expected = f"expected {spec.expected()}"
    try:
        if not NUMBER.fullmatch(raw):
            raise ValueError(raw)
        number = float(raw.replace(",", ""))
    except ValueError:
        shown = f"'{raw[:40]}' is not a number" if raw else "empty"
        raise ValueError(f"{spec.label}: {shown}; {expected} (digits, or scientific notation such as 1e4)") from None
    if not math.isfinite(number):
        raise ValueError(f"{spec.label}: {raw[:40]} is too large; {expected}")
    if spec.integer and number != int(number):
        raise ValueError(f"{spec.label}: {raw[:40]} is not a whole number; {expected}")
    low_ok = number > spec.low if spec.open_low else number >= spec.low
    if not low_ok or (spec.high is not None and number > spec.high):
        raise ValueError(f"{spec.label}: {raw[:40]} is out of range; {expected}")
    return int(number) if spec.integer else number


def text_of(value) -> str:
    """A default as the text field shows it: 4096 -> "4096", 15.0 -> "15", 1e24 -> "1e+24"."""
    return str(value) if isinstance(value, int) else format(float(value), ".12g")


