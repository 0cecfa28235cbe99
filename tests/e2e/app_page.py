"""What every browser test does with a dashboard page: wait until it has run and drawn, open one and check
that it shows no exception, read a headline figure. Imported as `app_page` (pytest puts this folder on
sys.path)."""

from playwright.sync_api import Page, expect


def settle(page: Page) -> None:
    """Wait until the app has run and drawn (no script running, no skeleton)."""
    page.wait_for_selector("[data-testid='stAppViewContainer']", state="attached", timeout=60_000)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached",
                                                                                       timeout=60_000)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=60_000)


def open_page(page: Page, url: str) -> None:
    """Go to `url`, wait for the app, and check that no exception is shown."""
    page.goto(url)
    settle(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def metric(page: Page, label: str) -> str:
    """The value of the first metric whose box contains `label`."""
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text()
