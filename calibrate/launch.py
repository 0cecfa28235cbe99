"""Launch a distributed calibration run: `torchrun ... -m calibrate.distributed ARGS` as a subprocess.

`launch` starts `python -m torch.distributed.run` (standalone on one node, a c10d rendezvous on
several) with `calibrate.distributed` as the worker module, streams its stdout and stderr, keeps
the workers' one-line errors (prefixed `trainsim-calibrate:`) and the tail of stderr for the
exception it raises on failure, and kills torchrun's whole session on a timeout or an interrupt.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence

from calibrate.errors import MeasurementError

_ERROR_LINE = "trainsim-calibrate:"  # prefix of the one-line error a worker prints to stderr


def launch(nproc_per_node: int, args: Sequence[str], nnodes: int = 1, timeout_s: float = 600, *,
           rdzv_endpoint: str | None = None, rdzv_id: str = "trainsim-calibrate", env: dict[str, str] | None = None,
           check: bool = True, echo: bool = True) -> int:
    """Run `torchrun ... -m calibrate.distributed ARGS` (sys.executable), streaming its output.

    Single node: `--standalone` (a local rendezvous on a free port). Several nodes: run this on every
    node with the same `rdzv_endpoint` (host:port of a c10d rendezvous) and `rdzv_id`. Returns the
    exit code; with `check` a non-zero code or a timeout raises MeasurementError carrying the
    workers' error lines and the tail of stderr (a failed config is still recorded by rank 0).
    `env` adds variables to the environment of torchrun and its workers.
    """
    cmd = _torchrun_command(nproc_per_node, args, nnodes, rdzv_endpoint, rdzv_id)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                env=full_env, start_new_session=True)
    except OSError as exc:
        raise MeasurementError(f"cannot start torchrun ({cmd[0]}): {exc}") from exc
    pumps, err_tail, worker_errors = _stream(proc, echo)
    timed_out = False
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        rc = proc.wait()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    for t in pumps:
        t.join(timeout=5.0)
    if timed_out:
        raise MeasurementError(f"torchrun ({nproc_per_node} processes) timed out after {timeout_s} s and was killed"
                               + _tail_text(worker_errors, err_tail))
    if rc != 0 and check:
        err = MeasurementError(f"torchrun ({nproc_per_node} processes) exited with code {rc}"
                               + _tail_text(worker_errors, err_tail))
        err.returncode = rc
        raise err
    return rc


def _torchrun_command(nproc_per_node: int, args: Sequence[str], nnodes: int, rdzv_endpoint: str | None,
                      rdzv_id: str) -> list[str]:
    """torchrun's argument list: `--standalone` on one node, a c10d rendezvous on several."""
    if isinstance(nproc_per_node, bool) or not isinstance(nproc_per_node, int) or nproc_per_node < 1:
        raise MeasurementError(f"nproc_per_node must be a positive integer, got {nproc_per_node!r}")
    if isinstance(nnodes, bool) or not isinstance(nnodes, int) or nnodes < 1:
        raise MeasurementError(f"nnodes must be a positive integer, got {nnodes!r}")
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd += ["--standalone", "--nnodes", "1"]
    else:
        if not rdzv_endpoint:
            raise MeasurementError(f"nnodes={nnodes}: a rendezvous endpoint (host:port) is required for several nodes")
        cmd += ["--nnodes", str(nnodes), "--rdzv_backend", "c10d", "--rdzv_endpoint", rdzv_endpoint,
                "--rdzv_id", rdzv_id]
    cmd += ["--nproc_per_node", str(nproc_per_node), "--max_restarts", "0", "-m", "calibrate.distributed",
            *[str(a) for a in args]]
    return cmd


def _stream(proc: subprocess.Popen, echo: bool):
    """Threads copying torchrun's stdout and stderr through (when `echo`), keeping stderr's tail and
    the workers' one-line errors; returns (threads, tail, errors)."""
    err_tail: collections.deque[str] = collections.deque(maxlen=40)
    worker_errors: list[str] = []

    def pump(stream, sink, keep: bool):
        for line in stream:
            if echo:
                try:
                    sink.write(line)
                    sink.flush()
                except Exception:
                    pass
            if keep:
                err_tail.append(line.rstrip("\n"))
                if _ERROR_LINE in line and len(worker_errors) < 20:
                    worker_errors.append(line.strip())
        stream.close()

    pumps = [threading.Thread(target=pump, args=(proc.stdout, sys.stdout, False), daemon=True),
             threading.Thread(target=pump, args=(proc.stderr, sys.stderr, True), daemon=True)]
    for t in pumps:
        t.start()
    return pumps, err_tail, worker_errors


def _tail_text(worker_errors: list[str], tail: Iterable[str], n: int = 12) -> str:
    """The workers' own error lines (once each) first, then the last `n` lines of stderr."""
    lines = list(tail)[-n:]
    head = list(dict.fromkeys(e for e in worker_errors if e not in lines))
    return ":\n" + "\n".join(head + lines) if head or lines else ""


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, the session torchrun leads (it and its workers only)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
