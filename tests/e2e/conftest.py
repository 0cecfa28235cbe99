"""End-to-end fixtures: `trainsim dashboard` on a free local port, Debian's Chromium via Playwright."""

import shutil
from pathlib import Path

import pytest

from dashboard.local_server import running_dashboard

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def app_url():
    """`trainsim dashboard` on a free port (dashboard/local_server.py: its own process group, stopped as a
    whole after the session, also after failures or a start-up error)."""
    with running_dashboard() as url:
        yield url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium not found: install it with `apt-get install -y chromium` (CI does)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1500, "height": 1100}}
