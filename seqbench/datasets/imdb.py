"""IMDB Large Movie Review Dataset v1.0 (Maas et al., 2011): 25,000 train / 25,000 test, binary."""
from __future__ import annotations

import re
import tarfile
from pathlib import Path

from .. import SeqbenchError
from ..config import TextDatasetSchema
from ..data.declare import TextSource, text_dataset
from ..data.sources import RemoteFile, fetch, verify
from ..files import read_bytes

LABEL_NAMES = ["neg", "pos"]
OFFICIAL = RemoteFile("aclImdb_v1.tar.gz", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                      "md5", "7c2ac02c03563afcf9b574c7e56c153a")
# A repack with the official layout (without unsup/ and the .feat files), as kept in ../shared/data.
REPACK = RemoteFile("aclImdb.tar.gz", OFFICIAL.url, "sha256",
                    "8071fe7cc17d21b19a3c9718ed68ffc8bb6c7490959bbe8c8994e5217ea99046")
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/\d+_\d+\.txt$")
EXPECTED_PER_SPLIT = 25000


def locate(root: Path) -> Path:
    """An extracted ``aclImdb/`` folder, else a verified archive (downloaded when missing)."""
    folder = root / "aclImdb"
    if (folder / "train" / "pos").is_dir() and (folder / "test" / "neg").is_dir():
        return folder
    repack = root / REPACK.name
    if repack.is_file():
        return verify(repack, REPACK)
    return fetch(OFFICIAL, root, description="The IMDB archive (aclImdb_v1.tar.gz, or an extracted aclImdb/ folder)")


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SeqbenchError(f"{where}: byte {error.start} (line {line}) is not valid UTF-8 ({error.reason}); the "
                            f"official reviews are UTF-8: replace this copy with the official archive from "
                            f"{OFFICIAL.url}") from None


def _read_members(source: Path):
    """Yield (split, label name, text) from the archive or the extracted folder."""
    if source.is_dir():
        for split in ("train", "test"):
            for label in LABEL_NAMES:
                for file in sorted((source / split / label).glob("*_*.txt")):
                    try:
                        data = read_bytes(file, limit=None)  # a FIFO among the reviews: refused, not waited on
                    except OSError as error:
                        raise SeqbenchError(f"{file} cannot be read: {error.strerror or error}") from None
                    yield split, label, _decode(data, str(file))
        return
    with tarfile.open(source, "r:gz") as archive:
        for member in archive:
            match = _MEMBER.search(member.name)
            if match and member.isfile():
                yield match[1], match[2], _decode(archive.extractfile(member).read(), f"{source}:{member.name}")


def read(source: Path) -> dict[str, tuple[list[str], list[int]]]:
    splits = {"train": ([], []), "test": ([], [])}
    for split, label, text in _read_members(source):
        splits[split][0].append(text)
        splits[split][1].append(LABEL_NAMES.index(label))
    for split, (texts, _) in splits.items():
        if len(texts) != EXPECTED_PER_SPLIT:
            raise SeqbenchError(f"{source}: found {len(texts)} {split} reviews, expected {EXPECTED_PER_SPLIT}. "
                                f"The copy is incomplete; replace it with the official archive from {OFFICIAL.url}.")
    return splits


SOURCE = TextSource("sentiment", locate, read, tuple(LABEL_NAMES))
text_dataset("sentiment", TextDatasetSchema, lambda config: SOURCE)
