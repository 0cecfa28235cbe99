"""Dashboard timing in a real browser (issue 15): first load and change-to-settled per page, at 1440x900.

Starts `trainsim dashboard` on a free port (as tests/e2e/conftest.py does), opens every page in Debian's
Chromium through Playwright and prints a table:

- first load, cold: the first visit after the server started (its caches empty), from navigation to the
  page's headline figures visible, then to the page settled (no script running, no skeleton);
- first load, warm: a second visit in a new browser session (the server's caches filled);
- change: type a new value into one input (the Planner's device count, ...) and press Enter, until the
  headline shows it, then until the page settled. Run three times with different values; the median;
- Streamlit's floor: an app of one metric, the fastest any page can load on this machine;
- then the Planner's script alone, without a browser (Streamlit's AppTest): the server's share.

Not a test: timings depend on the machine. Goal (issue 15): <= 2 s first load, <= 0.5 s change on the
Planner.

    .venv/bin/python benchmarks/dashboard_timing.py [--repeat 3] [PAGE ...]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from browser import VIEWPORT, chromium, dashboard
from playwright.sync_api import Page

# url path -> (what shows the page's headline, the change: (input label, values to type, text that shows it))
PAGES = {
    "": ("[data-testid='stMetric']", ("Devices", ["8192", "2048", "4096"], r"on {n:,} x ")),
    "serving": ("[data-testid='stMetric']", ("Devices", ["32", "64", "16"], r"on {n:,} x ")),
    "posttraining": ("[data-testid='stMetric']", ("Devices", ["128", "32", "64"], r"{n:,} x ")),
    "compare": ("[data-testid='stDataFrame']", None),
    "explorer": ("[data-testid='stMetric']", ("Top plans", ["20", "5", "10"], r"^Top {n} plans by")),
    "project": ("[data-testid='stMetric'], .js-plotly-plot", None),
    "scaling": (".js-plotly-plot", None),
    "calibration": ("h1", None),
    "validation": ("[data-testid='stDataFrame']", None),
    "catalog": ("[data-testid='stDataFrame']", None),
    "claims": ("[data-testid='stDataFrame']", None),
}


# Polled on every animation frame (Playwright's locator waits poll at up to 0.5 s: too coarse to time with)
VISIBLE = "sel => [...document.querySelectorAll(sel)].some(e => e.offsetParent !== null)"
SHOWS = """re => [...document.querySelectorAll("[data-testid=stMain] p, [data-testid=stMain] h3")]
                  .some(e => new RegExp(re).test(e.innerText))"""
SETTLED = """() => document.querySelector("[data-testid=stApp]")?.getAttribute("data-test-script-state") === "notRunning"
                 && !document.querySelector("[data-testid=stSkeleton]")"""


def _wait(page: Page, predicate: str, arg=None) -> None:
    page.wait_for_function(predicate, arg=arg, polling="raf", timeout=120_000)


def first_load(page: Page, url: str, headline: str) -> tuple[float, float]:
    """Seconds from navigation to the headline visible, and to the page settled."""
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    _wait(page, VISIBLE, headline)
    t_head = time.perf_counter() - t0
    _wait(page, SETTLED)
    return t_head, time.perf_counter() - t0


def change(page: Page, label: str, value: str, shows: str) -> tuple[float, float]:
    """Seconds from Enter in the input to the headline showing `shows` (a regex), and to the page settled."""
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    t0 = time.perf_counter()
    box.press("Enter")
    _wait(page, SHOWS, shows)
    t_head = time.perf_counter() - t0
    page.locator("[data-testid='stApp'][data-test-script-state='running']").wait_for(state="detached",
                                                                                    timeout=120_000)
    _wait(page, SETTLED)
    return t_head, time.perf_counter() - t0


def measure(browser, url: str, repeat: int, pages: list[str]) -> list[dict]:
    rows = []
    for path in pages:
        headline, edit = PAGES[path]
        row = {"page": path or "planner (/)"}
        for visit in ("cold", "warm"):
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            row[visit] = first_load(page, f"{url}/{path}", headline)
            if visit == "warm" and edit:
                label, values, shows = edit
                times = [change(page, label, v, shows.format(n=int(v))) for v in values[:repeat]]
                row["change"] = tuple(statistics.median(t[i] for t in times) for i in (0, 1))
            context.close()
        rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    f = lambda pair: f"{pair[0]:5.2f} / {pair[1]:5.2f}" if pair else "    n/a    "
    lines = ["| page | first load, cold (s) | first load, warm (s) | change (s) |", "|---|---|---|---|"]
    lines += [f"| {r['page']} | {f(r['cold'])} | {f(r['warm'])} | {f(r.get('change'))} |" for r in rows]
    return "\n".join(lines) + "\n(headline visible / page settled; change: median of the runs)"


def server_seconds(runs: int = 5) -> str:
    """The Planner's script alone (Streamlit's AppTest, no browser): a session's first run and a device-count
    change, medians over `runs` sessions. What the dashboard's caches (dashboard/data.py) save shows here;
    the browser's share (loading and drawing the page) is the rest of the table above."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    logging.disable(logging.WARNING)  # AppTest runs without a server: Streamlit warns about that on every run
    app = str(Path(__file__).parents[1] / "dashboard" / "streamlit_app.py")
    firsts, changes = [], []
    for _ in range(runs + 1):
        at = AppTest.from_file(app, default_timeout=120)
        t0 = time.perf_counter()
        at.run()
        firsts.append(time.perf_counter() - t0)
        for value in ("8192", "2048", "4096", "16384"):
            at.text_input(key="n_dev").input(value)
            t0 = time.perf_counter()
            at.run()
            changes.append(time.perf_counter() - t0)
    return (f"Planner script alone (AppTest): first run {statistics.median(firsts[1:]):.2f} s (the process's "
            f"very first {firsts[0]:.2f} s), device-count change {statistics.median(changes):.2f} s")


FLOOR_APP = 'import streamlit as st\nst.metric("Wall clock", "45.3 days")\n'


def streamlit_floor(browser, runs: int = 3) -> str:
    """Streamlit's own first load on this machine: an app of one st.metric, from navigation to the metric
    visible (median of `runs` new browser sessions). No page of the dashboard can load faster."""
    import sys
    import tempfile
    from pathlib import Path

    from dashboard.local_server import running_server

    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "one_metric.py"
        app.write_text(FLOOR_APP)
        argv = lambda port: [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),  # noqa: E731
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        with running_server(argv) as url:
            times = []
            for _ in range(runs):
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                t0 = time.perf_counter()
                page.goto(url)
                page.get_by_test_id("stMetric").wait_for()
                times.append(time.perf_counter() - t0)
                context.close()
    return f"Streamlit's floor (an app of one st.metric, new browser session): {statistics.median(times):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="changes per page (median)")
    parser.add_argument("pages", nargs="*", metavar="PAGE",
                        help=f"pages to measure (default: all): planner, {', '.join(p for p in PAGES if p)}")
    args = parser.parse_args()
    with dashboard() as url, chromium() as browser:
        rows = measure(browser, url, args.repeat, [p.replace("planner", "") for p in args.pages] or list(PAGES))
        floor = streamlit_floor(browser)
    print(table(rows))
    print(floor)
    print(server_seconds())


if __name__ == "__main__":
    main()
