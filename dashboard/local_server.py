"""`trainsim dashboard` in a child process on a free local port, for the browser tests (tests/e2e) and the
dashboard scripts (benchmarks/dashboard_timing.py, screenshots.py). The server runs in its own process
group (the command execs Streamlit, so the group is the server) and is stopped as a whole, also after a
failure or a start-up error: nothing is left listening."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT_S = 90


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """SIGTERM the server's whole process group, give it `grace_s`, then SIGKILL what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the leader is at worst a zombie here: the group id is valid
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    """Poll Streamlit's health check until it answers "ok"; raise with the log's tail if the server exits
    or START_TIMEOUT_S passes first."""
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"dashboard did not start (exit code {proc.poll()}):\n" + log.read_text()[-2000:])


@contextlib.contextmanager
def running_server(argv_for_port) -> Iterator[str]:
    """The URL of the Streamlit server that `argv_for_port(port)` starts on a free port, once it answers its
    health check; its process group stopped on exit."""
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        proc = subprocess.Popen(argv_for_port(port), stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, proc, Path(log.name))
            yield url
        finally:
            stop_group(proc)


def running_dashboard():
    """`trainsim dashboard` on a free port (running_server): a context manager giving its URL."""
    return running_server(lambda port: [sys.executable, "-m", "simulator.cli", "dashboard", "--port", str(port)])
