"""The one way seqbench opens a file it reads: records, metrics, plans, owner files, data files,
``eval --file``, checkpoints, study databases.

Only a regular file is read. A FIFO blocks its reader until some writer comes (for ever, if none
does), a device such as /dev/zero never ends, a folder or a socket is no file at all: each is
refused in one line naming the path, whatever name it has (a FIFO called ``record.json`` under
the output root included). Files read whole into memory (records, small JSON) are bounded in size.
"""
from __future__ import annotations

import fcntl
import json
import os
import stat
from pathlib import Path
from typing import IO

from . import SeqbenchError

# A run record holds a config, a per-epoch history and a few tables: tens of kB. 16 MiB leaves room
# for any real one and stops a file that only claims to be a record from filling memory.
RECORD_LIMIT = 16 * 2**20


class UnreadableFile(SeqbenchError, OSError):
    """Not a regular file, or larger than what is read of its kind. An OSError too, so that the
    places that skip an unreadable file (a bad record in a report) skip this one the same way."""

    def __init__(self, message: str, path):
        SeqbenchError.__init__(self, message)
        self.message, self.filename = message, str(path)

    def __str__(self) -> str:
        return self.message


def _kind(mode: int) -> str:
    for test, words in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return "not a regular file"


def not_regular(path, mode: int, what: str = "") -> UnreadableFile:
    where = f"{what}: " if what else ""
    return UnreadableFile(f"{where}{path} is {_kind(mode)}, not a regular file; seqbench reads only regular files "
                          f"(give the file itself, or move this one away)", path)


def open_regular(path: str | Path, mode: str = "rb", *, limit: int | None = None, what: str = "",
                 encoding: str | None = None, newline: str | None = None) -> IO:
    """``open(path, mode)`` for reading, refused with one line unless ``path`` is a regular file
    (of at most ``limit`` bytes). Opened non-blocking first, so that a FIFO is seen, not waited on;
    a symlink is followed to what it points at (a link to /dev/zero is a device)."""
    if any(flag in mode for flag in "wax+"):
        raise ValueError(f"open_regular reads; mode {mode!r} writes")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise not_regular(path, info.st_mode, what)
        if limit is not None and info.st_size > limit:
            raise too_large(path, info.st_size, limit, what)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, mode, encoding=encoding, newline=newline) if "b" not in mode else os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def too_large(path, size: int, limit: int, what: str = "") -> UnreadableFile:
    where = f"{what}: " if what else ""
    return UnreadableFile(f"{where}{path} holds {_size(size)}, more than the {_size(limit)} a file of its kind may "
                          f"hold; it is not one seqbench wrote", path)


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


def check_regular(path: str | Path, what: str = "") -> None:
    """For a path handed to a library that opens it itself (SQLite): refuse what is not a regular
    file. A path that does not exist passes (the library creates or reports it)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise not_regular(path, info.st_mode, what)


def is_regular(path: str | Path) -> bool:
    """A regular file (after symlinks), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def read_bytes(path: str | Path, limit: int | None = RECORD_LIMIT, what: str = "") -> bytes:
    with open_regular(path, "rb", limit=limit, what=what) as stream:
        data = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(data) > limit:  # it grew while being read
        raise too_large(path, len(data), limit, what)
    return data


def read_text(path: str | Path, limit: int | None = RECORD_LIMIT, what: str = "", encoding: str = "utf-8") -> str:
    return read_bytes(path, limit, what).decode(encoding)


def read_json(path: str | Path, limit: int | None = RECORD_LIMIT, what: str = ""):
    """The JSON value in a file; UnicodeDecodeError and json.JSONDecodeError (a ValueError) pass
    through for the caller to name, as json.loads(path.read_text()) raised them."""
    return json.loads(read_text(path, limit, what))
