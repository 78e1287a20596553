"""Finding data files: data root, official downloads, checksums.

A file is looked for under the data root (``dataset.root``, else ``$SEQBENCH_DATA``, else a
per-user cache folder). When it is missing it is downloaded from its official home into
the root; every archive read is checked against its published checksum first.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .. import SeqbenchError
from ..files import open_regular

DATA_ENV = "SEQBENCH_DATA"


class DataUnavailableError(SeqbenchError):
    pass


class ChecksumError(SeqbenchError):
    pass


def user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqbench"


def resolve_data_root(root: str | os.PathLike | None) -> Path:
    if root:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return user_cache_dir() / "data"


@dataclass(frozen=True)
class RemoteFile:
    """A file with an official home and a published checksum."""

    name: str          # file name on disk
    url: str
    algorithm: str     # hashlib name
    digest: str


def file_digest(path: Path, algorithm: str) -> str:
    hasher = hashlib.new(algorithm)
    with open_regular(path, "rb") as stream:  # a FIFO or a device under the data root: refused, never waited on
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def verify(path: Path, remote: RemoteFile) -> Path:
    actual = file_digest(path, remote.algorithm)
    if actual != remote.digest:
        raise ChecksumError(
            f"{path} is corrupt or incomplete: its {remote.algorithm} is {actual}, expected {remote.digest}. "
            f"It was not used. Delete it so that it is downloaded again from {remote.url}, "
            f"or replace it with a good copy.")
    return path


def download(remote: RemoteFile, destination: Path, timeout: float = 60.0) -> Path:
    """Download to a temporary file, verify, then move into place: a failed or bad
    download never leaves a file that looks complete."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{remote.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(remote.url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        verify(Path(temporary), remote)
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return destination


def fetch(remote: RemoteFile, root: Path, search_dirs: tuple[str, ...] = ("",), description: str = "") -> Path:
    """Return a verified local copy of ``remote``: found under ``root`` (or one of its
    ``search_dirs``), else downloaded into ``root/search_dirs[0]``."""
    for sub in search_dirs:
        candidate = root / sub / remote.name
        if candidate.is_file():
            return verify(candidate, remote)
    destination = root / search_dirs[0] / remote.name
    try:
        return download(remote, destination)
    except ChecksumError:
        raise
    except OSError as error:  # URLError, timeouts, read-only root: all OSError
        places = ", ".join(str(root / sub / remote.name) for sub in search_dirs)
        raise DataUnavailableError(
            f"{description or remote.name} is not on this machine and could not be downloaded "
            f"from {remote.url} ({error}).\n"
            f"Looked for: {places}.\n"
            f"Put the official file there, or point dataset.root=PATH (or the {DATA_ENV} "
            f"environment variable) at a folder that holds it.") from error
