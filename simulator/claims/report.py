"""The claims as tables: one row per claim, the details behind each, and the README's markdown table.

Everything here reads the JSON form of the results (`ClaimResult.to_dict()`, what `trainsim claims -f
json` prints), so that the README's table is made from the command's own output (`markdown_table`;
tests/test_readme.py keeps the README equal to it).
"""

from __future__ import annotations

from typing import Any

from simulator.claims.units import fmt, fmt_range, sig

_LABELS = {"estimate": ("P10-P90", "P50"), "trend": ("90% CI", "fit"), "arithmetic": ("exact", "median"),
           "published_ratio": ("published", "median"), "compute_optimal_tokens": ("compute-optimal", "median")}
NOT_SEPARATE = "not yet separate"


def range_text(d: dict[str, Any]) -> str:
    """trainsim's range in words: "P10-P90 $70.3 M-$136 M (P50 $94.9 M)", "exact 138-141 GB (median 140 GB)"."""
    if d["kind"] == "energy_split":
        parts = [f"{p['part']} {fmt(p['p50'], '%')}" if p["p50"] is not None else f"{p['part']} {NOT_SEPARATE}"
                 for p in d["details"]]
        return "P50 " + ", ".join(parts)
    if d["kind"] == "consistency":
        c = d["details"][-1]
        return (f"{c['statement']}: {fmt(c['value_mwh'], 'MWh')} ({sig(c['per_unit_kwh_per_day'], 4)} kWh per home-day, "
                f"EIA); {sig(d['claim_low'] / d['details'][1]['value_mwh'])}x apart")
    label, mid = _LABELS[d["kind"]]
    text = f"{label} {fmt_range(d['p10'], d['p90'], d['unit'])}"
    return text if d["p10"] == d["p90"] else f"{text} ({mid} {fmt(d['p50'], d['unit'])})"


def table_rows(results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per claim: the claim, what it says, trainsim's range, the verdict, the main driver."""
    return [{"id": d["id"], "claim": d["text"], "claimed": d["claimed"], "trainsim": range_text(d),
             "verdict": d["verdict"], "main driver": d["driver"] or "-"} for d in results]


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The README's Claims table (markdown), from `trainsim claims -f json`'s output."""
    cols = ["claim", "claimed", "trainsim", "verdict", "main driver"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table_rows(results):
        cells = [row[c].replace("|", "/") for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def input_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """Every scenario input of an estimate claim, with its value and source ('unverified' marked)."""
    out = []
    for s in d["details"]:
        for i in s.get("inputs", []):
            out.append({"scenario": s["scenario"], "input": i["input"], "value": str(i["value"]),
                        "source": i["source"] + ("" if i["verified"] else " [unverified]"), "note": i["note"]})
    return out


def scenario_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per scenario of an estimate claim: its P10 / P50 / P90 and top driver, and its point figures."""
    unit = d["unit"]
    return [{"scenario": s["scenario"], "p10": fmt(s["p10"], unit), "p50": fmt(s["p50"], unit),
             "p90": fmt(s["p90"], unit), "driver": s["driver"],
             "train_flops": f"{s['figures']['train_flops']:.3g}", "mfu": f"{s['figures']['mfu']:.1%}",
             "days": sig(s["figures"]["wall_clock_days"])} for s in d["details"] if "p10" in s and "figures" in s]


def split_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """trainsim's energy per group of breakdown rows (network and storage: 'not yet separate' until they
    are rows), then the claim's parts side by side with trainsim's P10 / P50 / P90 share."""
    rows = [{"energy": g["group"], "trainsim MWh": NOT_SEPARATE if g["energy_mwh"] is None else sig(g["energy_mwh"]),
             "trainsim share": NOT_SEPARATE if g["share_pct"] is None else fmt(g["share_pct"], "%"),
             "claimed": ""} for g in d["split"] or []]
    for p in d["details"]:
        band = NOT_SEPARATE if p["p10"] is None else \
            f"P50 {fmt(p['p50'], '%')} (P10-P90 {fmt_range(p['p10'], p['p90'], '%')})"
        rows.append({"energy": f"claim: {p['part']} = {' + '.join(p['rows'])}", "trainsim MWh": "",
                     "trainsim share": band, "claimed": f"{sig(p['claimed'], trim=True)}% ({p['verdict']})"})
    return rows


def trend_rows(d: dict[str, Any]) -> list[dict[str, Any]]:
    """The trend's data points: model, date, FLOP, whether Epoch estimated it, the source."""
    return [{"model": p["model"], "date": p["date"], "training FLOP": f"{p['training_flop']:.3g}",
             "estimated": "estimate" if p["estimated"] else "published",
             "source": p["source"] + ("" if p["verified"] else " [unverified]")} for p in d["details"]]
