"""The one way seqbench opens a file it reads: records, metrics, plans, owner files, data files,
``eval --file``, checkpoints, study databases.

Only a regular file is read. A FIFO blocks its reader until some writer comes (for ever, if none
does), a device such as /dev/zero never ends, a folder or a socket is no file at all: each is
refused in one line naming the path, whatever name it has (a FIFO called ``record.json`` under
the output root included). Files read whole into memory (records, small JSON) are bounded in size.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
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


# ------------------------------------------------------------------ paths a record names
# What a record may name inside its run folder is read only up to these sizes (bytes). A run's
# predictions hold one row per test example (IMDB's 25,000 with their texts: about 40 MB); a best
# checkpoint holds the weights and settings. SEQBENCH_RECORD_FILE_LIMIT_MB lowers (or raises) them all.
PREDICTIONS_LIMIT = 512 * 2**20
CHECKPOINT_LIMIT = 4 * 2**30
LIMIT_ENV = "SEQBENCH_RECORD_FILE_LIMIT_MB"

log = logging.getLogger(__name__)
_said: set[tuple[str, str]] = set()


def limit_of(default: int) -> int:
    """``default``, unless $SEQBENCH_RECORD_FILE_LIMIT_MB sets the bound for every file a record names."""
    value = os.environ.get(LIMIT_ENV, "")
    try:
        return int(float(value) * 2**20) if value else default
    except ValueError:
        return default


def ignore_field(record_path, field: str, why: str) -> None:
    """One line, once per record and field in a process: the field is left out, the run still counts."""
    key = (str(record_path), field)
    if key not in _said:
        _said.add(key)
        log.warning("%s: '%s' ignored: %s; the rest of the run still counts", record_path, field, why)


def run_path(record: dict, field: str, *, record_path: str | Path | None = None, folder: bool = False,
             limit: int | None = None, within: tuple[Path, ...] = ()) -> Path | None:
    """The one way a path that a record (or checkpoint) names is used: the file (or, with ``folder``,
    the folder) its ``field`` names, where it is now. A relative path is relative to the run's folder
    (the record's); an absolute one under the folder the run was made in (``output_dir``) is taken
    as relative to it, so a copied or moved run uses its own files, never the original's. The path,
    symlinks resolved, must stay inside the run's folder (or one of the folders the user gave,
    ``within``), be a regular file of at most ``limit`` bytes (or a folder), else None and one line
    naming the record and the field. None without a line when the field is empty or the file is
    gone (the callers say what they do without it)."""
    value = record.get(field)
    record_path = Path(record_path or record["record_path"])
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        ignore_field(record_path, field, f"{value!r} is not a path")
        return None
    home, named, recorded = record_path.parent, Path(value), record.get("output_dir")
    candidates = []
    if named.is_absolute() and isinstance(recorded, str) and recorded:
        try:
            candidates.append(home / named.relative_to(recorded))
        except ValueError:
            pass
    if not named.is_absolute():
        candidates.append(home / named)
    elif within:
        candidates.append(named)
    roots = [home.resolve(), *(Path(r).resolve() for r in within)]
    for candidate in candidates:
        try:
            resolved = candidate.resolve(strict=True)
        except FileNotFoundError:
            continue
        except (OSError, RuntimeError) as error:   # a symlink loop, a folder that cannot be entered
            ignore_field(record_path, field, f"{value} cannot be followed ({error})")
            return None
        if not any(resolved == root or root in resolved.parents for root in roots):
            continue
        try:
            info = os.stat(resolved)
        except OSError as error:
            ignore_field(record_path, field, f"{value}: {error.strerror or error}")
            return None
        if folder and not stat.S_ISDIR(info.st_mode):
            ignore_field(record_path, field, f"{value} is {_kind(info.st_mode) if not stat.S_ISREG(info.st_mode) else 'a file'}, not a folder")
            return None
        if not folder and not stat.S_ISREG(info.st_mode):
            ignore_field(record_path, field, f"{value} is {_kind(info.st_mode)}, not a regular file")
            return None
        if not folder and limit is not None and info.st_size > limit:
            ignore_field(record_path, field, f"{value} holds {_size(info.st_size)}, more than the {_size(limit)} "
                                             f"read of it (set {LIMIT_ENV} to read more)")
            return None
        return resolved
    if named.is_absolute() and not candidates or any(c.exists() or c.is_symlink() for c in candidates):
        ignore_field(record_path, field, f"{value} is outside the run's folder {home}; only files inside it are read")
    return None


# ------------------------------------------------------------------ lock and claim files
def open_lock(path: str | Path, what: str = "lock file") -> IO:
    """A lock, claim or heartbeat file opened for reading and writing (made if missing), never
    through a symlink (its target is left as it was) and never a FIFO or a device (opened
    non-blocking, then checked): anything but a regular file is one line naming the path."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnreadableFile(f"{what} {path} is a symbolic link; seqbench makes its own lock files and never "
                                 f"writes through a link: remove the link and run again", path) from None
        raise UnreadableFile(f"{what} {path} cannot be opened ({error.strerror or error}); remove it or "
                             f"choose another output root", path) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"{what} {path} is {_kind(info.st_mode)}, not a regular file; seqbench makes its "
                                 f"own lock files: remove it and run again", path)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "r+")
    except BaseException:
        os.close(fd)
        raise
