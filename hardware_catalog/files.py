"""Bounded reads of the files users name: scenarios, projects, profiles, catalogs, data tables.

A path typed by a user (or a careless script) may name a FIFO that never ends, a device such as
/dev/zero, a folder, a multi-gigabyte file or a binary one. `read_user_text` opens without blocking
(O_NONBLOCK), refuses anything but a regular file, reads at most `max_bytes`, and decodes UTF-8 (a
leading byte-order mark is dropped): every refusal is one line naming the file and what was
expected, raised as the caller's error class.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

MAX_TEXT_BYTES = 64 * 2**20  # 64 MiB: the largest input file we read is a few MB


def shown(path: str | Path) -> str:
    """A path for a one-line message: as typed, or quoted when it holds control characters."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((word for test, word in kinds if test(mode)), "not a regular file")


def open_regular(path: str | Path, what: str, error: type[Exception], flags: int = os.O_RDONLY) -> int:
    """A file descriptor of `path` opened without blocking (a FIFO with no writer would block a
    plain open); `error` naming the file unless it is a regular file."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)
    except OSError as exc:
        raise error(f"{shown(path)}: cannot read {what} ({exc.strerror})") from None
    except ValueError:  # a NUL byte in the path
        raise error(f"{shown(path)}: cannot read {what} (not a valid path)") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{path}: cannot read {what} ({_kind(mode)}, expected a file)")
    return fd


def read_user_bytes(path: str | Path, what: str, error: type[Exception], max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file `path` (at most `max_bytes`); `error(message)` otherwise."""
    too_big = f"{path}: {what} larger than {max_bytes / 2**20:g} MiB, the most this reads"
    with os.fdopen(open_regular(path, what, error), "rb") as f:
        if os.fstat(f.fileno()).st_size > max_bytes:
            raise error(too_big)
        data = f.read(max_bytes + 1)  # a file still growing is cut here too
    if len(data) > max_bytes:
        raise error(too_big)
    return data


def read_user_text(path: str | Path, what: str, error: type[Exception], max_bytes: int = MAX_TEXT_BYTES) -> str:
    """`read_user_bytes` decoded as UTF-8 text (byte-order mark dropped)."""
    data = read_user_bytes(path, what, error, max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def loads_toml(text: str, origin: str, error: type[Exception]) -> dict:
    """TOML text parsed; `error` naming `origin` when it is not valid TOML, nests too deep for the
    parser (RecursionError) or holds an integer too long to convert (ValueError, > 4,300 digits)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{origin}: not valid TOML ({exc})") from None
    except RecursionError:
        raise error(f"{origin}: not valid TOML (arrays or tables nested too deep)") from None
    except ValueError as exc:
        raise error(f"{origin}: not valid TOML ({exc})") from None


def field_path(loc: tuple) -> str:
    """A pydantic error location as a dotted path; a key that is not plain printable text (a newline,
    markup, an empty string) is shown quoted, so the message stays one literal line."""
    return ".".join(str(x) if str(x).isprintable() and str(x).strip() == str(x) and str(x) else repr(x) for x in loc)
