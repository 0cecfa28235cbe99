"""Suite-wide check: nothing the test session started is left listening on a TCP port afterwards.

How it works, and why not "a test ordered last":

* Session-scoped fixtures (the e2e dashboard server) are torn down *after* the last test, so a
  final test would always see that server still up. The check therefore runs in the
  `pytest_sessionfinish` hook below, which pytest calls after every fixture has been torn down.
  When it finds a leftover it reports it, sets the exit status to 1 (if it was 0) and then stops
  the leftover processes, so a failing run leaves no server behind either.
* A server whose parent is killed is re-parented to init and stops being our descendant -- the
  very bug this guards against (`trainsim dashboard` killed, Streamlit orphaned). On Linux, the
  pytest process is therefore made a "child subreaper" (prctl PR_SET_CHILD_SUBREAPER): orphans
  of its descendants are re-parented to pytest instead, and `psutil.Process().children(recursive=True)`
  at session end sees them. Elsewhere only processes still attached to the tree are seen.

`listening_descendants()` is the reusable part (tests/test_no_leftover_servers.py checks it).
Under pytest-xdist each worker checks its own descendants.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass

import psutil
import pytest

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


@dataclass(frozen=True)
class Listener:
    pid: int
    name: str
    cmdline: str
    address: str
    port: int

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.name}) listening on {self.address}:{self.port}: {self.cmdline}"


def become_subreaper() -> bool:
    """Make orphaned descendants children of this process (Linux only); True if that worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def listening_descendants(root: psutil.Process | None = None) -> list[Listener]:
    """Listening TCP sockets (IPv4 and IPv6) owned by the descendants of `root` (default: this process)."""
    root = root or psutil.Process()
    found = []
    for proc in root.children(recursive=True):
        try:
            conns = proc.net_connections(kind="tcp")
            name, cmdline = proc.name(), " ".join(proc.cmdline())[:200]
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        found += [Listener(proc.pid, name, cmdline, c.laddr.ip, c.laddr.port)
                  for c in conns if c.status == psutil.CONN_LISTEN]
    return sorted(found, key=lambda lst: (lst.pid, lst.port))


def stop_processes(pids: set[int], grace_s: float = 5) -> None:
    """SIGTERM the processes, wait up to `grace_s`, SIGKILL the rest."""
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)


def pytest_configure(config: pytest.Config) -> None:
    become_subreaper()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leftovers = listening_descendants()
    if not leftovers:
        return
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["the test session left servers listening (a fixture or test did not stop what it started):",
             *(f"  {lst}" for lst in leftovers), "stopping them now"]
    if tr is not None:
        tr.write_line("")
        tr.write_sep("=", "leftover servers", red=True, bold=True)
        for line in lines:
            tr.write_line(line, red=True)
    else:
        print("\n".join(lines), file=sys.stderr)
    stop_processes({lst.pid for lst in leftovers})
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
