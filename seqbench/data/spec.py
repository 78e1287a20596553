"""What a data set is, as the rest of seqbench reads it: the task it poses (``DataSpec``), where a
text data set's files come from (``TextSource``), the files found on this machine and the
fingerprint of their contents (``LocatedData``). Cheap to import: no torch, no Lightning; both the
declarations (``declare``) and the Lightning modules (``modules``) build on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..record import content_digest, short_hash
from ..tasks import TASKS


@dataclass(frozen=True)
class DataSpec:
    """What a model (and a results table) needs to know about its data."""

    task: str                       # one of seqbench.tasks.TASKS
    num_outputs: int
    vocab_size: int | None = None   # token inputs
    input_dim: int | None = None    # real-valued inputs
    label_names: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()   # id -> token, for text
    max_len: int | None = None
    # Test metrics of a model that learns nothing (the adding problem's constant answer, the copy
    # task's memoryless strategy, the majority class): a curve is read against it.
    baselines: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; valid: {', '.join(TASKS)}")

    @property
    def per_step(self) -> bool:
        return TASKS[self.task].per_step

    @property
    def metric(self) -> str:
        return TASKS[self.task].metric

    @property
    def metric_mode(self) -> str:
        return TASKS[self.task].direction


@dataclass(frozen=True)
class TextSource:
    """A text-classification data set: how to find its files and how to read them."""

    name: str
    locate: Callable[[Path], object]          # root -> path(s) of the verified input files
    read: Callable[[object], dict]            # path(s) -> {"train": (texts, labels), "test": ..., "val"?: ...}
    label_names: tuple[str, ...] = ()         # empty: read() returns them under "label_names"
    options: str = ""                         # reading options that change the result: part of the cache key


@dataclass(frozen=True)
class LocatedData:
    """The input files of one data set on this machine, and the fingerprint of their contents."""
    located: object
    fingerprint: str
    files: dict = field(default_factory=dict)   # split (or "archive") -> resolved path, for records and eval


def input_files(located) -> list[Path]:
    """The files behind a located source, in a fixed order (a folder stands for the files in it)."""
    paths = [Path(p) for p in (located.values() if isinstance(located, dict) else [located])]
    files = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return files


def data_fingerprint(source: TextSource, located) -> str:
    """The input files' contents (not their names, sizes or times) and the reading options."""
    return short_hash({"source": source.name + source.options, "content": content_digest(input_files(located))})
