"""One calibration run per runs folder: an exclusive, non-blocking `fcntl.flock` on `RUNS/.lock`.

A run takes the lock when it first reads or writes the folder's records (`calibrate.records`:
`done_ids`, `append_record`) and keeps it for the rest of the process; a second run on the folder
fails at once with one line naming the folder, the lock file and (when it wrote it) the holder's
pid. `runs_lock` holds it for a `with` block. Not POSIX (no fcntl): no lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from calibrate.errors import MeasurementError

try:
    import fcntl
except ImportError:  # not POSIX: no folder lock
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
_LOCKS: dict[Path, tuple[int, int]] = {}  # folder -> (pid, fd) of the locks this process holds
_LOCKS_GUARD = threading.Lock()


def _lock_holder(fd: int) -> str:
    """The pid the lock's holder wrote into the lock file ('' when unreadable)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f"pid {text}, " if text.isdigit() else ""


def _flock(folder: Path) -> int:
    """An fd of `folder/.lock` holding an exclusive flock; MeasurementError at once when it is taken."""
    lock = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        raise MeasurementError(f"{folder}: cannot lock the runs folder ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _lock_holder(fd)
        os.close(fd)
        raise MeasurementError(f"{folder}: another calibration run holds this runs folder ({holder}lock {lock}); "
                               "wait for it to finish or use another --output folder") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def hold_runs_lock(runs: str | Path) -> bool:
    """Take the exclusive run lock of a runs folder for the rest of this process (see module
    docstring); True when taken now, False when this process holds it already."""
    folder = Path(runs).resolve()
    with _LOCKS_GUARD:
        held = _LOCKS.get(folder)
        if held is not None and held[0] == os.getpid():
            return False
        if fcntl is not None:
            _LOCKS[folder] = (os.getpid(), _flock(folder))
        return fcntl is not None


def release_runs_lock(runs: str | Path) -> None:
    """Let go of a runs folder's lock held by this process (a no-op when not held)."""
    with _LOCKS_GUARD:
        held = _LOCKS.pop(Path(runs).resolve(), None)
        if held is not None and held[0] == os.getpid():
            os.close(held[1])


@contextmanager
def runs_lock(runs: str | Path) -> Iterator[None]:
    """The run lock of a runs folder for a `with` block (kept when the process held it before)."""
    taken = hold_runs_lock(runs)
    try:
        yield
    finally:
        if taken:
            release_runs_lock(runs)
