"""`trainsim dashboard`: serves the Streamlit app (dashboard/streamlit_app.py) in this process."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from hardware_catalog.errors import TrainsimError
from simulator.cli.common import _user_errors, err_console


@_user_errors
def dashboard_cmd(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8501,
    headless: Annotated[bool, typer.Option("--headless/--browser", help="do not open a browser")] = True,
) -> None:
    """Start the Streamlit dashboard (planner, compare, explorer, scaling, calibration, validation, catalog)."""
    import os
    import signal
    import subprocess
    from importlib import resources
    from importlib.util import find_spec

    if find_spec("streamlit") is None:
        raise TrainsimError('the dashboard needs streamlit: pip install -e ".[dashboard]"')
    if not 0 < port < 65536:
        raise typer.BadParameter("--port must be 1..65535")
    app_file = str(resources.files("dashboard").joinpath("streamlit_app.py"))
    cmd = [sys.executable, "-m", "streamlit", "run", app_file, "--server.port", str(port),
           "--server.headless", "true" if headless else "false", "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "minimal"]  # no "Deploy" button: a planner's tool, not a Streamlit demo
    err_console.print(f"trainsim dashboard on http://localhost:{port}", highlight=False)
    # Become Streamlit (same pid): SIGTERM/SIGINT sent to `trainsim dashboard` then reach the
    # server itself and no orphaned server is left behind. Flush first: exec drops unwritten buffers.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if os.name == "posix" and hasattr(os, "execvp"):  # Windows' exec* spawns a new process: no use here
        try:
            os.execvp(cmd[0], cmd)  # does not return
        except OSError as exc:
            err_console.print(f"note: cannot exec Streamlit ({exc}); running it as a child process",
                              highlight=False, markup=False)
    # Fallback: a child process; forward termination signals to it and wait until it is gone.
    child = subprocess.Popen(cmd)

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except (OSError, ValueError):  # already gone; a signal the platform cannot send
            pass

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, forward)
        except ValueError:  # not the main thread: nothing to forward from
            pass
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # left early (an exception): do not orphan the server
            child.terminate()
            child.wait()
    raise typer.Exit(code if code >= 0 else 128 - code)  # killed by signal N: 128 + N, as a shell says
