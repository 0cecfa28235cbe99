"""`trainsim dashboard` on a free port and Debian's Chromium through Playwright, for the dashboard scripts
(dashboard_timing.py, screenshots.py; imported as `browser`: a script's folder is on sys.path). The server
is dashboard/local_server.py's, as in tests/e2e/conftest.py."""

from __future__ import annotations

import contextlib
import shutil

from playwright.sync_api import Page, expect, sync_playwright

from dashboard.local_server import running_dashboard

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VIEWPORT = {"width": 1440, "height": 900}


@contextlib.contextmanager
def dashboard():
    """The URL of `trainsim dashboard` on a free port (dashboard/local_server.py, as the browser tests)."""
    with running_dashboard() as url:
        yield url


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Debian's: Playwright cannot download browsers here)."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def settle(page: Page, timeout_ms: int = 120_000) -> None:
    """Wait until the app has run and drawn: no script running, no skeleton."""
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached",
                                                                                       timeout=timeout_ms)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout_ms)
