"""End-to-end fixtures: `trainsim dashboard` on a free local port, Debian's Chromium via Playwright."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_group(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """SIGTERM the server's whole process group, give it `grace_s`, then SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the leader is at worst a zombie here: the group id is valid
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


@pytest.fixture(scope="session")
def app_url():
    """`trainsim dashboard` on a free port, in its own process group (the command execs Streamlit, so
    the group is the server); the teardown stops the whole group, also after failures or a start-up error."""
    port = _free_port()
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "dashboard", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.time() + 90
            while time.time() < deadline and proc.poll() is None:
                try:
                    if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.5)
            else:
                raise RuntimeError(f"dashboard did not start (exit code {proc.poll()}):\n"
                                   + Path(log.name).read_text()[-2000:])
            yield url
        finally:
            _stop_group(proc)


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
