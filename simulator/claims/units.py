"""Numbers of the claims ledger in words, at three significant figures: "$78.4 M", "11.7 T tokens"."""

from __future__ import annotations

import math

_SCALES = {"USD": ((1e9, "B"), (1e6, "M"), (1e3, "k")), "tokens": ((1e12, "T"), (1e9, "B"), (1e6, "M"))}


def sig(x: float, digits: int = 3, trim: bool = False) -> str:
    """`x` at `digits` significant figures, thousands separated: 22,073.6 -> "22,100", 0.0178 -> "0.0178";
    `trim` drops trailing zeros of the decimals (78.0 -> "78")."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else "inf" if x > 0 else "-inf"
    exponent = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - exponent)
    text = f"{round(x, digits - 1 - exponent):,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if trim and "." in text else text


def _split(value: float, unit: str) -> tuple[float, str]:
    for scale, name in _SCALES.get(unit, ()):
        if abs(value) >= scale:
            return value / scale, name
    return value, ""


def _join(number: str, suffix: str, unit: str) -> str:
    if unit == "USD":
        return f"${number} {suffix}".rstrip()
    if unit == "%":
        return f"{number}%"
    return " ".join(x for x in (number, suffix, unit) if x)


def fmt(value: float, unit: str, trim: bool = False) -> str:
    """`value` in `unit` for people: USD as "$78.4 M", tokens as "11.7 T tokens", else "74.2 days";
    `trim`: as a claim is written ("$78 M", not "$78.0 M")."""
    scaled, suffix = _split(value, unit)
    return _join(sig(scaled, trim=trim), suffix, unit)


def fmt_range(low: float, high: float, unit: str, trim: bool = False) -> str:
    """An interval in words: "60-100 days", "10-15 T tokens", "$70.1 M-$135 M"."""
    if low == high:
        return fmt(low, unit, trim)
    (a, sa), (b, sb) = _split(low, unit), _split(high, unit)
    if sa != sb or unit == "USD":
        return f"{fmt(low, unit, trim)}-{fmt(high, unit, trim)}"
    return _join(f"{sig(a, trim=trim)}-{sig(b, trim=trim)}", sb, unit)
