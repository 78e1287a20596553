"""TREC question classification (Li and Roth, 2002): 6 coarse classes, 5,452 train / 500 test."""
from __future__ import annotations

from pathlib import Path

from .. import SeqbenchError
from ..config import TextDatasetSchema
from ..data.declare import TextSource, text_dataset
from ..data.sources import RemoteFile, fetch
from ..files import open_regular

LABEL_NAMES = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
_BASE = "https://cogcomp.seas.upenn.edu/Data/QA/QC/"
FILES = {
    "train": RemoteFile("train_5500.label", _BASE + "train_5500.label", "md5", "073462e3fcefaae31e00edb1f18d2d02"),
    "test": RemoteFile("TREC_10.label", _BASE + "TREC_10.label", "md5", "323a3554401d86e650717e2d2f942589"),
}


def locate(root: Path) -> dict[str, Path]:
    return {split: fetch(remote, root, search_dirs=("trec", ""), description=f"The TREC {split} file {remote.name}")
            for split, remote in FILES.items()}


def parse(path: Path, encoding: str = "latin-1") -> tuple[list[str], list[int]]:
    """Lines are ``COARSE:fine question text``; the official files are Latin-1."""
    texts, labels = [], []
    with open_regular(path, "r", encoding=encoding) as stream:
        for number, line in enumerate(stream, start=1):
            line = line.strip()
            if not line:
                continue
            label, _, question = line.partition(" ")
            coarse = label.split(":", 1)[0]
            if ":" not in label or coarse not in LABEL_NAMES or not question.strip():
                raise SeqbenchError(f"{path}, line {number}: expected 'COARSE:fine question' with COARSE one of "
                                    f"{', '.join(LABEL_NAMES)}; got {line[:80]!r}")
            texts.append(question)
            labels.append(LABEL_NAMES.index(coarse))
    if not texts:
        raise SeqbenchError(f"{path} holds no questions; replace it with the official file from {_BASE}")
    return texts, labels


def read(paths: dict[str, Path]) -> dict[str, tuple[list[str], list[int]]]:
    return {split: parse(path) for split, path in paths.items()}


SOURCE = TextSource("trec", locate, read, tuple(LABEL_NAMES))
text_dataset("trec", TextDatasetSchema, lambda config: SOURCE)
