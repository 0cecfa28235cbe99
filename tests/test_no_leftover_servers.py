"""Processes the suite starts must not outlive it (issue 13, item 11).

The session-end check itself is the `pytest_sessionfinish` hook in tests/conftest.py: it runs after
every fixture has been torn down, so it sees what a test ordered last could not (session fixtures
such as the e2e dashboard server are finalised after the last test). This file checks that
machinery -- the detector, and the hook end to end in an inner pytest run, including a server
orphaned by its parent -- and that `trainsim dashboard` replaces itself by Streamlit.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from simulator.cli import app

CONFTEST = Path(__file__).with_name("conftest.py")
_spec = importlib.util.spec_from_file_location("trainsim_tests_leftovers", CONFTEST)
leftovers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = leftovers  # dataclasses look their module up there
_spec.loader.exec_module(leftovers)

POSIX = os.name == "posix"
INNER_ENV = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # inner pytest runs: no playwright etc.

# A process that listens on a free port, prints it, and waits to be killed.
SERVER = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    print(s.getsockname()[1], flush=True)
    time.sleep(600)
""")
# A parent that starts SERVER and exits at once: the server is orphaned (the `subprocess.call` bug).
ORPHANING_PARENT = textwrap.dedent(f"""
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", {SERVER!r}], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    print(child.pid, child.stdout.readline().strip(), flush=True)
""")


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def test_detector_sees_a_listening_child_and_forgets_it_once_stopped():
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        found = leftovers.listening_descendants()
        assert any(lst.pid == proc.pid and lst.port == port for lst in found), found
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert not any(lst.pid == proc.pid for lst in leftovers.listening_descendants())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreaper is Linux only")
def test_detector_sees_a_server_orphaned_by_its_parent():
    """The pytest process is a subreaper (tests/conftest.py), so an orphan stays our descendant."""
    out = subprocess.run([sys.executable, "-c", ORPHANING_PARENT], capture_output=True, text=True,
                         check=True, timeout=30).stdout.split()
    pid, port = int(out[0]), int(out[1])
    try:
        assert psutil.Process(pid).ppid() == os.getpid()  # re-parented to us, not to init
        assert any(lst.pid == pid and lst.port == port for lst in leftovers.listening_descendants())
    finally:
        leftovers.stop_processes({pid})  # also reaps it: we are its parent now
    assert not any(lst.pid == pid for lst in leftovers.listening_descendants())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreaper is Linux only")
def test_session_fails_and_cleans_up_when_a_server_is_left(tmp_path: Path):
    """An inner pytest run with our conftest whose test orphans a server: exit status 1, the
    leftover is named, and it is stopped."""
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent(f"""
        import subprocess, sys
        from pathlib import Path

        def test_leaks_a_server():
            out = subprocess.run([sys.executable, "-c", {ORPHANING_PARENT!r}], capture_output=True,
                                 text=True, check=True).stdout
            Path("leaked.txt").write_text(out)
    """))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env=INNER_ENV, check=False)
    pid, port = map(int, (tmp_path / "leaked.txt").read_text().split())
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "leftover servers" in run.stdout and f"pid {pid} " in run.stdout and f":{port}:" in run.stdout
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_session_passes_when_nothing_is_left(tmp_path: Path):
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_tidy.py").write_text(textwrap.dedent(f"""
        import subprocess, sys

        def test_stops_its_server():
            proc = subprocess.Popen([sys.executable, "-c", {SERVER!r}], stdout=subprocess.PIPE, text=True)
            proc.stdout.readline()
            proc.terminate()
            proc.wait()
    """))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env=INNER_ENV, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "leftover servers" not in run.stdout


# --- `trainsim dashboard` execs Streamlit --------------------------------------------------------

needs_streamlit = pytest.mark.skipif(find_spec("streamlit") is None, reason="needs the dashboard extra")


class _Execed(Exception):
    """Raised by the fake os.execvp: a real exec never returns."""


def _streamlit_argv(port: int, headless: bool) -> list[str]:
    app_file = str(resources.files("dashboard").joinpath("streamlit_app.py"))
    return [sys.executable, "-m", "streamlit", "run", app_file, "--server.port", str(port),
            "--server.headless", "true" if headless else "false", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal"]


@needs_streamlit
@pytest.mark.skipif(not POSIX, reason="exec is used on POSIX only")
@pytest.mark.parametrize(("args", "port", "headless"), [([], 8501, True),
                                                        (["--port", "8765", "--browser"], 8765, False)])
def test_dashboard_execs_streamlit(monkeypatch, args, port, headless):
    calls = []

    def fake_execvp(file, argv):
        calls.append((file, list(argv)))
        raise _Execed

    def no_popen(*a, **k):
        raise AssertionError("dashboard started a child process instead of exec")

    monkeypatch.setattr(os, "execvp", fake_execvp)
    monkeypatch.setattr(subprocess, "Popen", no_popen)
    result = CliRunner().invoke(app, ["dashboard", *args])
    assert isinstance(result.exception, _Execed), result.output
    assert calls == [(sys.executable, _streamlit_argv(port, headless))]
    assert f"http://localhost:{port}" in result.output


@needs_streamlit
def test_dashboard_without_exec_forwards_signals_and_waits(monkeypatch):
    """The fallback (no exec): a child process that gets our SIGTERM, and its exit status is ours."""
    sent = []

    class FakeChild:
        returncode = None

        def __init__(self, cmd):
            self.cmd = cmd

        def send_signal(self, sig):
            sent.append(sig)
            self.returncode = -sig

        def wait(self):
            signal.raise_signal(signal.SIGTERM)  # someone stops `trainsim dashboard` while it waits
            return self.returncode

        def poll(self):
            return self.returncode

    monkeypatch.delattr(os, "execvp")
    monkeypatch.setattr(subprocess, "Popen", FakeChild)
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(app, ["dashboard", "--port", "8766"])
    assert sent == [signal.SIGTERM]
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert signal.getsignal(signal.SIGTERM) is before  # handler restored


@needs_streamlit
@pytest.mark.skipif(not POSIX, reason="exec is used on POSIX only")
def test_dashboard_process_is_the_server_and_sigterm_stops_it(tmp_path):
    """For real: the pid we started is the one listening, and SIGTERM to it leaves nothing behind."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "dashboard", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("dashboard did not start:\n" + (tmp_path / "dashboard.log").read_text()[-2000:])
        owners = {lst.pid for lst in leftovers.listening_descendants() if lst.port == port}
        assert owners == {proc.pid}  # Streamlit runs in the process we started: exec, not a child
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        assert not any(lst.port == port for lst in leftovers.listening_descendants())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
