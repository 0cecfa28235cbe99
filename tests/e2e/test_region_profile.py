"""Issue 15 item 1 in a real browser: `/?region=FR` showed 226 t annual-average CO2e next to 1,252-1,356 t
for the best and worst start (the Northern Virginia example profile applied to France). A profile
belongs to its region: for FR the start-time section says there is none, and shows no figures."""

import re

from app_page import metric, settle
from playwright.sync_api import Page, expect


def tonnes(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


def open_start_time(page: Page):
    section = page.get_by_test_id("stExpander").filter(has_text="When the run starts")
    section.get_by_text("When the run starts").click()
    return section


def test_fr_start_time_figures_do_not_contradict_the_annual_figure(page: Page, app_url: str):
    page.goto(f"{app_url}/?region=FR")
    settle(page)
    expect(page.get_by_text(re.compile(r" in FR$"))).to_be_visible()
    annual = tonnes(metric(page, "Emissions"))
    section = open_start_time(page)
    expect(section.get_by_text("No hourly grid profile for FR")).to_be_visible()
    expect(section.get_by_text(f"FR's annual figure ({annual:,.0f} t)")).to_be_visible()
    expect(section.get_by_test_id("stMetric")).to_have_count(0)  # no best/worst start figures at all
    expect(page.get_by_test_id("stMetric").filter(has_text="Best start")).to_have_count(0)


def test_virginia_start_time_figures_bracket_the_annual_figure(page: Page, app_url: str):
    """Where the profile matches the region (same mean), best <= annual <= worst: consistent figures."""
    page.goto(f"{app_url}/?region=us-virginia")
    settle(page)
    annual = tonnes(metric(page, "Emissions"))
    section = open_start_time(page)
    box = section.get_by_test_id("stMetric")
    expect(box.filter(has_text="Best start")).to_have_count(1)
    best = tonnes(box.filter(has_text="Best start").get_by_test_id("stMetricValue").inner_text())
    worst = tonnes(box.filter(has_text="Worst start").get_by_test_id("stMetricValue").inner_text())
    assert best <= annual <= worst, (best, annual, worst)
    assert worst < 1.2 * annual and best > 0.8 * annual  # same grid: a start-time effect, not another region
