"""How a data set file declares itself (one file per data set in ``seqbench/datasets/``): the
task it poses (a ``DataSpec``), how to find and fingerprint its files, and how to build its
Lightning data module. Cheap to import: no torch, no Lightning (those load only in ``build``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..registry import DatasetEntry, register_dataset
from .spec import DataSpec, LocatedData, TextSource, data_fingerprint, input_files

__all__ = ["DataSpec", "LocatedData", "TextSource", "data_fingerprint", "input_files", "text_dataset", "text_entry",
           "generated_dataset", "locate_text", "dataset_kind", "build_datamodule"]


def locate_text(source: TextSource, config: dict) -> LocatedData:
    from .sources import resolve_data_root
    located = source.locate(resolve_data_root(config.get("root")))
    files = ({k: str(Path(v).resolve()) for k, v in located.items()} if isinstance(located, dict)
             else {"data": str(Path(located).resolve())})
    fingerprint = data_fingerprint(source, located)
    if config.get("vectors"):  # pretrained vectors are input data: their contents join the fingerprint
        from ..record import content_digest, short_hash
        from .vectors import vectors_path
        vectors = vectors_path(config["vectors"])
        files["vectors"] = str(vectors)
        fingerprint = short_hash({"texts": fingerprint, "vectors": content_digest([vectors])})
    return LocatedData(located, fingerprint, files)


def text_dataset(name: str, schema: type, source_of: Callable[[dict], TextSource]) -> DatasetEntry:
    """Register a text-classification data set whose files ``source_of(config)`` finds and reads;
    the module that defines ``source_of`` is the data set's own file."""
    return register_dataset(text_entry(name, schema, source_of))


def text_entry(name: str, schema: type, source_of: Callable[[dict], TextSource],
               module: str | None = None) -> DatasetEntry:
    """The registry entry of a text data set (tests build one around a tiny source); ``module``:
    the data set's own module, by default the one that defines ``source_of``."""

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

    return DatasetEntry(name, schema, "classification", fingerprint, build, module or source_of.__module__,
                        extra={"source_of": source_of})


def generated_dataset(name: str, schema: type, task: str, make_of: Callable[[dict], Callable[[int, int], dict]],
                      spec_of: Callable[[dict], DataSpec], test_set_keys: tuple[str, ...],
                      fresh_train: Callable[[dict], bool] = lambda config: False) -> DatasetEntry:
    """Register a generated task: ``make_of(config)(count, seed)`` draws a split's tensors;
    ``spec_of(config)`` says what task it poses. Training and validation come from the run's
    seed, the test set from ``test_seed`` alone (see ``GeneratedData``). The module that defines
    ``make_of`` is the data set's own file."""

    def fingerprint(config: dict) -> LocatedData:
        # The generator's settings are in the config hash and its code in the code fingerprint.
        return LocatedData(None, "generated", {})

    def build(config: dict, seed: int, rebuild_cache: bool = False, located: LocatedData | None = None):
        from .modules import GeneratedData
        return GeneratedData(name, make_of(config), spec_of(config), config["n_train"], config["n_val"],
                             config["n_test"], config["batch_size"], seed, config["test_seed"],
                             fresh_train=fresh_train(config), eval_batch_size=config.get("eval_batch_size"))

    return register_dataset(DatasetEntry(name, schema, task, fingerprint, build, make_of.__module__, generated=True,
                                         test_set_keys=test_set_keys))


def dataset_kind(config: dict) -> str:
    """The registry name of a dataset config: ``kind``, or (configs before it existed) ``name``."""
    return config.get("kind") or config.get("name")


def build_datamodule(dataset: dict, seed: int, rebuild_cache: bool = False, located: LocatedData | None = None):
    """The Lightning data module of a resolved dataset config."""
    from ..registry import dataset_entry
    return dataset_entry(dataset_kind(dataset)).build(dataset, seed, rebuild_cache, located)

