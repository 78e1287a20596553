"""How a data set file declares itself (one file per data set in ``seqbench/datasets/``):
what task it poses (``DataSpec``), how to find and fingerprint its files, and how to build its
Lightning data module. Cheap to import: no torch, no Lightning (those load only in ``build``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..record import content_digest, short_hash
from ..registry import DatasetEntry, register_dataset
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


def locate_text(source: TextSource, config: dict) -> LocatedData:
    from .sources import resolve_data_root
    located = source.locate(resolve_data_root(config.get("root")))
    files = ({k: str(Path(v).resolve()) for k, v in located.items()} if isinstance(located, dict)
             else {"data": str(Path(located).resolve())})
    return LocatedData(located, data_fingerprint(source, located), files)


def text_dataset(name: str, schema: type, source_of: Callable[[dict], TextSource]) -> DatasetEntry:
    """Register a text-classification data set whose files ``source_of(config)`` finds and reads."""
    return register_dataset(text_entry(name, schema, source_of, _caller_files()))


def text_entry(name: str, schema: type, source_of: Callable[[dict], TextSource], files: tuple = ()) -> DatasetEntry:
    """The registry entry of a text data set (tests build one around a tiny source)."""

    def fingerprint(config: dict) -> LocatedData:
        return locate_text(source_of(config), config)

    def build(config: dict, seed: int, rebuild_cache: bool = False, located: LocatedData | None = None):
        from .modules import TextClassificationData
        from .text import TextSettings
        source = source_of(config)
        located = located or locate_text(source, config)
        settings = TextSettings(max_len=config["max_len"], vocab_size=config["vocab_size"],
                                min_freq=config["min_freq"])
        return TextClassificationData(source, settings, located, cache_dir=config.get("cache_dir"),
                                      batch_size=config["batch_size"], eval_batch_size=config.get("eval_batch_size"),
                                      val_fraction=config["val_fraction"], seed=seed,
                                      num_workers=config.get("num_workers", 0), rebuild_cache=rebuild_cache)

    return DatasetEntry(name, schema, "classification", fingerprint, build, files, extra={"source_of": source_of})


def generated_dataset(name: str, schema: type, task: str, make_of: Callable[[dict], Callable[[int, int], dict]],
                      spec_of: Callable[[dict], DataSpec], test_set_keys: tuple[str, ...],
                      fresh_train: Callable[[dict], bool] = lambda config: False) -> DatasetEntry:
    """Register a generated task: ``make_of(config)(count, seed)`` draws a split's tensors;
    ``spec_of(config)`` says what task it poses. Training and validation come from the run's
    seed, the test set from ``test_seed`` alone (see ``GeneratedData``)."""

    def fingerprint(config: dict) -> LocatedData:
        # The generator's settings are in the config hash and its code in the code fingerprint.
        return LocatedData(None, "generated", {})

    def build(config: dict, seed: int, rebuild_cache: bool = False, located: LocatedData | None = None):
        from .modules import GeneratedData
        return GeneratedData(name, make_of(config), spec_of(config), config["n_train"], config["n_val"],
                             config["n_test"], config["batch_size"], seed, config["test_seed"],
                             fresh_train=fresh_train(config), eval_batch_size=config.get("eval_batch_size"))

    return register_dataset(DatasetEntry(name, schema, task, fingerprint, build, _caller_files(), generated=True,
                                         test_set_keys=test_set_keys))


def _caller_files() -> tuple[Path, ...]:
    """The data set's own file (the module that called the registering function)."""
    import inspect
    frame = inspect.stack()[2]  # caller of text_dataset / generated_dataset
    return (Path(frame.filename).resolve(),)


def dataset_kind(config: dict) -> str:
    """The registry name of a dataset config: ``kind``, or (configs before it existed) ``name``."""
    return config.get("kind") or config.get("name")


def build_datamodule(dataset: dict, seed: int, rebuild_cache: bool = False, located: LocatedData | None = None):
    """The Lightning data module of a resolved dataset config."""
    from ..registry import dataset_entry
    return dataset_entry(dataset_kind(dataset)).build(dataset, seed, rebuild_cache, located)

