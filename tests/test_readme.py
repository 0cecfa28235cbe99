"""The README stays true (issue 15 item 10): every file a `trainsim` command in it names exists, and
the model's figures it quotes (validation tables, error ranges, RLHF shares) are recomputed here and
compared at the README's own rounding, so a change of the model that moves them fails until the
README is updated."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from statistics import median

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TEXT = " ".join(README.split())  # prose with its line breaks folded, for phrase checks
PATH_SUFFIXES = (".toml", ".csv", ".jsonl", ".json")
OUTPUT_OPTIONS = ("-o", "--output")
TOP_FOLDERS = ("examples", "simulator", "tests", "hardware_catalog", "calibrate", "dashboard", "benchmarks", "docs")


# --- paths --------------------------------------------------------------------------------------

def code_blocks(text: str, lang: str) -> list[str]:
    return [body for tag, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.DOTALL) if tag == lang]


def trainsim_commands(text: str) -> list[list[str]]:
    """Argument lists of the `trainsim ...` commands in the text's ```bash blocks (comments dropped,
    `\\` continuations joined, `&&`/`;`/`|` chains split)."""
    out = []
    for block in code_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            segment: list[str] = []
            for token in [*lexer, ";"]:
                if set(token) <= set("();<>|&"):
                    if segment and segment[0].endswith("trainsim"):
                        out.append(segment[1:])
                    segment = []
                elif segment or "=" not in token:  # skip leading VAR=value assignments
                    segment.append(token)
    return out


def looks_like_path(token: str) -> bool:
    return (not token.startswith("-") and "://" not in token
            and ("/" in token or token.endswith(PATH_SUFFIXES)))


def missing_paths(text: str) -> tuple[list[str], list[str]]:
    """(paths checked, paths that do not exist) among the arguments of the text's trainsim commands.
    A file written by an earlier command (`-o runs/`) counts as existing; `my_*` files are the
    reader's own (a placeholder), `<...>` likewise."""
    produced: set[str] = set()
    checked, missing = [], []
    for args in trainsim_commands(text):
        for prev, token in zip([""] + args, args):
            if prev in OUTPUT_OPTIONS:
                produced.add(token.rstrip("/"))
                continue
            value = token.split("=", 1)[1] if "=" in token and not token.startswith("-") else token
            if not looks_like_path(value) or value.startswith("<") or Path(value).name.startswith("my_"):
                continue
            checked.append(value)
            if value.rstrip("/") not in produced and not (ROOT / value).exists():
                missing.append(value)
    return checked, missing


def test_every_file_a_readme_command_names_exists():
    checked, missing = missing_paths(README)
    assert not missing, f"README commands name files that do not exist: {missing}"
    assert {"examples/llama3-70b-h100.toml", "simulator/data/carbon_profile_us-virginia_example.csv"} <= set(checked)


def test_the_path_check_can_fail():
    text = ("```bash\ntrainsim carbon examples/llama3-70b-h100.toml --profile hourly.csv  # x\n"
            "trainsim calibrate fit nowhere/ -o fitted.toml && trainsim estimate examples/nope.toml \\\n"
            "    --set efficiency.profile=fitted.toml --set efficiency.profile=other/fit.toml\n```\n")
    assert missing_paths(text)[1] == ["hourly.csv", "nowhere/", "examples/nope.toml", "other/fit.toml"]


def test_repository_paths_in_inline_code_exist():
    """`simulator/data/...`-style paths quoted in the prose (not only in commands) exist too."""
    prose = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", prose)
    tokens = [t.split("=", 1)[-1] for span in spans for t in span.split()]
    paths = [t for t in tokens if t.split("/")[0] in TOP_FOLDERS and "/" in t]
    assert len(paths) > 10
    assert [p for p in paths if not (ROOT / p).exists()] == []


# --- validation figures ---------------------------------------------------------------------------

# README validation row (quantity cell, method cell prefixes) -> the summary() groups it reports
VALIDATION_ROWS = [
    ("per-GPU TFLOP/s", "parallelism model", [("tflops_per_device", "parallelism model")]),
    ("MFU", "parallelism model", [("mfu_pct", "parallelism model")]),
    ("tokens/s per device", "parallelism model", [("tokens_per_s_per_device", "parallelism model")]),
    ("tokens/s per device", "plan search", [("tokens_per_s_per_device", "plan search, MLPerf GPT-3 (never fitted)")]),
    ("device-hours", "default model", [("device_hours", "default model")]),
    ("energy", "default power model", [("energy_mwh", "default power model")]),
    ("tCO2e", "default power model", [("co2e_t", "default power model")]),
    ("output tokens/s", "serving roofline", [("output_tokens_per_s", "serving roofline")]),
    ("inter-token latency", "serving roofline", [("inter_token_latency_ms", "serving roofline")]),
    ("device-hours (round-trip", "reported throughput", [("device_hours", "reported throughput (arithmetic)")]),
    ("energy, tCO2e (round-trip", "`tdp` convention", [("energy_mwh", "tdp convention"), ("co2e_t", "tdp convention")]),
]


def table_after(heading: str, columns: str) -> list[list[str]]:
    """Body rows of the first markdown table after `heading` whose header row starts with `columns`."""
    section = README[README.index(heading):]
    start = section.index(f"| {columns}")
    lines = section[start:].split("\n\n")[0].splitlines()[2:]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]


def figure(cell: str) -> str:
    """'6.2% (7.5B, 128 GPUs)' -> '6.2'."""
    return re.match(r"[\d.]+", cell).group(0)


def rounded_like(value: float, cell: str) -> str:
    text = figure(cell)
    return f"{value:.{len(text.split('.')[1]) if '.' in text else 0}f}"


@pytest.fixture(scope="module")
def checks():
    from simulator.validation.runs import run_validation

    return run_validation()


def test_validation_table_matches_trainsim_validate(checks):
    """Each row of the README's validation table: rows, median and max |error| as `trainsim validate`
    computes them (simulator.validation.runs.summary), at the README's rounding; every summary group
    is in the table; 'model high' / 'model fast' is the sign of the median error."""
    from simulator.validation.runs import summary

    groups = {(r["quantity"], r["method"]): r for r in summary(checks)}
    table = table_after("## Validation", "quantity | method |")
    assert sorted(g for *_, gs in VALIDATION_ROWS for g in gs) == sorted(groups)
    for quantity, method, keys in VALIDATION_ROWS:
        rows = [r for r in table if r[0].startswith(quantity) and r[1].startswith(method)]
        assert len(rows) == 1, (quantity, method, len(rows))
        _, _, count, med, worst = rows[0]
        found = [groups[k] for k in keys]
        assert [int(n) for n in count.split("+")] == [g["rows"] for g in found], (quantity, count)
        for g in found:
            assert rounded_like(g["median_abs_error_pct"], med) == figure(med), (quantity, med, g)
        assert rounded_like(max(g["max_abs_error_pct"] for g in found), worst) == figure(worst), (quantity, worst)
        signed = median(c.error_pct for c in checks if (c.quantity, c.method) in keys)
        if "model high" in med:
            assert signed > 0, quantity
        if "model fast" in med:
            assert signed < 0, quantity


def test_public_table_matches_trainsim_validate():
    """The family table: rows and median |error| held out by table, by publisher, and with the
    shipped priors, as `trainsim validate` prints them; every family and kind is in the table."""
    from simulator.validation.public import heldout_summary, prior_summary

    views = [heldout_summary("table"), heldout_summary("source"), prior_summary()]
    table = {r[0]: r[1:] for r in table_after("## Validation", "family | rows |")}
    families = {(g["family"], g["kind"]) for g in views[0]}
    several = {f for f, _ in families if sum(f == other for other, _ in families) > 1}
    for family, kind in families:
        label = f"{family}, {'MoE' if kind == 'moe' else kind}" if family in several else family
        assert label in table, f"README family table lacks {label}"
        count, *cells = table.pop(label)
        found = [next(g for g in view if (g["family"], g["kind"]) == (family, kind)) for view in views]
        assert int(count) == found[0]["rows"] == found[2]["rows"], label
        assert [figure(c) for c in cells] == [f"{g['median_abs_pct']:.1f}" for g in found], label
    assert not table, f"README family rows that validate does not report: {list(table)}"


def says(phrase: str) -> None:
    assert phrase in TEXT, f"README should say {phrase!r} (the figure moved: update the README)"


def _pct(checks, run: str, quantity: str, method: str) -> float:
    (c,) = [c for c in checks if (c.run, c.quantity, c.method) == (run, quantity, method)]
    return c.error_pct


def test_validation_prose_figures(checks):
    """Error figures quoted in the Validation section's text, recomputed."""
    llama = _pct(checks, "Llama 3 405B (8192 GPUs)", "mfu_pct", "parallelism model")
    assert llama < 0
    says(f"that row is {-llama:.0f}% low")
    old = sorted(-_pct(checks, run, "device_hours", "default model") for run in ("GPT-3 175B", "Gopher 280B"))
    assert old[0] > 0
    says(f"come out {old[0]:.0f}-{old[1]:.0f}% fast on device-hours")
    serving = {c.run: c.error_pct for c in checks if c.quantity == "output_tokens_per_s"}
    prefill = [e for run, e in serving.items() if run.endswith("/128")]  # 128 output tokens
    assert len(prefill) == 4
    says(f"prefill-heavy runs {min(prefill):+.0f}% to {max(prefill):+.0f}%")
    decode = [e for run, e in serving.items() if not run.endswith("/128")]
    says(f"decode-heavy runs up to {1 + max(decode) / 100:.1f}x high")
    deepseek = _pct(checks, "DeepSeek-V3 (2048 H800)", "tokens_per_s_per_device", "parallelism model")
    assert deepseek < 0
    says(f"give {-deepseek:.1f}% slow")
    from simulator.validation.public import refused_rows
    from simulator.validation.public_rows import load_public_rows

    usable = sum(r.usable for r in load_public_rows())
    says(f"of the {usable} published plans, {len(refused_rows())} are still refused")
    gpt3 = _pct(checks, "GPT-3 175B", "energy_mwh", "default power model")
    assert gpt3 < 0
    says(f"GPT-3 on V100 is {-gpt3:.0f}% low with the default linear power prior")


def test_rlhf_prose_figures():
    """The RLHF bullet's DeepSpeed-Chat figures, with the scenarios of tests/simulator/test_rlhf.py."""
    from simulator.estimate import estimate

    spec = importlib.util.spec_from_file_location("_readme_rlhf", ROOT / "tests" / "simulator" / "test_rlhf.py")
    rl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rl)
    est = estimate(rl.rlhf())
    says(f"the rollouts are {est.rlhf_generation_flops_share:.0%} of the FLOPs")
    says(f"and {est.rlhf_generation_share:.0%} of the time")
    (mark,) = rl.test_deepspeed_chat_step3_times_bound.pytestmark  # its (actor, devices, reported hours)
    reported = mark.args[1]
    speedups = [hours / (estimate(rl.rlhf(actor, n)).wall_clock_days * 24) for actor, n, hours in reported]
    says(f"The model is {min(speedups):.1f}-{max(speedups):.1f}x faster than DeepSpeed-Chat's")
