"""Lightning data modules: one for text classification (IMDB, TREC), one for sin -> cos."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from . import imdb, text_file, trec
from .batching import BucketBatchSampler, TextSubset, pad_batch, stratified_split
from .sincos import make_sincos
from .sources import resolve_data_root, user_cache_dir
from .text import EncodedCorpus, TextSettings, cache_key, encode_corpus, load_corpus, save_corpus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data."""

    task: str                       # classification | regression
    num_outputs: int
    vocab_size: int | None = None   # text
    input_dim: int | None = None    # signals
    per_step: bool = False
    label_names: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()   # id -> token, for text
    max_len: int | None = None


@dataclass(frozen=True)
class TextSource:
    """A text-classification data set: how to find its files and how to read them."""

    name: str
    locate: Callable[[Path], object]          # root -> path(s) of the verified input files
    read: Callable[[object], dict]            # path(s) -> {"train": (texts, labels), "test": ..., "val"?: ...}
    label_names: tuple[str, ...] = ()         # empty: read() returns them under "label_names"
    options: str = ""                         # reading options that change the result: part of the cache key


TEXT_SOURCES = {
    "sentiment": TextSource("sentiment", imdb.locate, imdb.read, tuple(imdb.LABEL_NAMES)),
    "trec": TextSource("trec", trec.locate, trec.read, tuple(trec.LABEL_NAMES)),
}


def _input_files(located) -> list[Path]:
    return [Path(p) for p in located.values()] if isinstance(located, dict) else [Path(located)]


def load_text_corpus(source: TextSource, root: Path, settings: TextSettings, cache_dir: Path) -> EncodedCorpus:
    """Tokenised corpus from the on-disk cache, else read, tokenise and cache it."""
    located = source.locate(root)
    key = cache_key(source.name + source.options, _input_files(located), settings)
    cache_file = cache_dir / f"{source.name}-{key}.pt"
    if cache_file.is_file():
        try:
            return load_corpus(cache_file)
        except Exception as error:  # a truncated or foreign file: rebuild it
            log.warning("ignoring unreadable token cache %s (%s)", cache_file, error)
    raw = source.read(located)
    corpus = encode_corpus(raw, raw.pop("label_names", None) or list(source.label_names), settings)
    try:
        save_corpus(corpus, cache_file)
    except OSError as error:  # a read-only cache only costs time
        log.warning("could not write token cache %s (%s)", cache_file, error)
    return corpus


class TextClassificationData(pl.LightningDataModule):
    def __init__(self, source: TextSource, settings: TextSettings, root: str | None = None,
                 cache_dir: str | None = None, batch_size: int = 64, eval_batch_size: int | None = None,
                 val_fraction: float = 0.1, seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.source, self.settings = source, settings
        self.root = resolve_data_root(root)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else user_cache_dir() / "tokenised"
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction, self.seed, self.num_workers = val_fraction, seed, num_workers
        self.corpus: EncodedCorpus | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is not None:
            return
        self.corpus = load_text_corpus(self.source, self.root, self.settings, self.cache_dir)
        train = self.corpus.splits["train"]
        if "val" in self.corpus.splits:  # a validation file of its own
            self.train_set, self.val_set = TextSubset(train), TextSubset(self.corpus.splits["val"])
        else:
            train_rows, val_rows = stratified_split(train.labels, self.val_fraction, self.seed)
            self.train_set, self.val_set = TextSubset(train, train_rows), TextSubset(train, val_rows)
        self.test_set = TextSubset(self.corpus.splits["test"])
        for split, empty in self.corpus.empty_texts.items():
            if empty:
                log.warning("%d %s texts are empty or whitespace; each is kept as one <unk> token", empty, split)

    @property
    def spec(self) -> DataSpec:
        self.setup()
        return DataSpec("classification", len(self.corpus.label_names), vocab_size=len(self.corpus.vocabulary),
                        label_names=tuple(self.corpus.label_names), vocabulary=tuple(self.corpus.vocabulary.itos),
                        max_len=self.settings.max_len)

    def _loader(self, dataset: TextSubset, shuffle: bool) -> DataLoader:
        sampler = BucketBatchSampler(dataset.lengths, self.batch_size if shuffle else self.eval_batch_size,
                                     shuffle=shuffle, seed=self.seed, **process_share(self))
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=pad_batch, num_workers=self.num_workers,
                          pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self):
        return self._loader(self.test_set, shuffle=False)


def text_file_source(train: str, test: str, val: str | None = None, text_column: str = "text",
                     label_column: str = "label", encoding: str = "utf-8") -> TextSource:
    """A source for ``dataset=text_file``: the user's own CSV / TSV / JSONL files."""
    if not train or not test:
        raise text_file.BadInputError("dataset=text_file needs dataset.train=PATH and dataset.test=PATH "
                                      "(dataset.val=PATH is optional: else 10% of train, stratified)")
    paths = {"train": Path(train).expanduser(), "test": Path(test).expanduser()}
    if val:
        paths["val"] = Path(val).expanduser()
    for split, path in paths.items():
        if not path.is_file():
            raise text_file.BadInputError(f"dataset.{split}: {path} does not exist")
        text_file.file_format(path)
    return TextSource("text_file", lambda root: paths,
                      lambda located: text_file.read_splits(located, text_column, label_column, encoding),
                      options=f"|{text_column}|{label_column}|{encoding}")


def process_share(datamodule: pl.LightningDataModule) -> dict[str, int]:
    """This process's rank and the number of processes (1 outside DDP)."""
    trainer = datamodule.trainer
    return {"rank": trainer.global_rank, "world_size": trainer.world_size} if trainer else {}


def _signal_batch(items) -> dict[str, torch.Tensor]:
    inputs, targets = map(torch.stack, zip(*items))
    return {"inputs": inputs, "lengths": torch.full((len(inputs),), inputs.size(1), dtype=torch.int64),
            "targets": targets}


class SinCosData(pl.LightningDataModule):
    """Train, validation and test sets are drawn with different seeds derived from ``seed``."""

    def __init__(self, n_train: int = 2000, n_val: int = 200, n_test: int = 500, seq_len: int = 60,
                 omega: float = 1.0, dt: float = 0.2, batch_size: int = 64, seed: int = 0):
        super().__init__()
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.seq_len, self.omega, self.dt = seq_len, omega, dt
        self.batch_size, self.seed = batch_size, seed
        self.sets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        for offset, (split, count) in enumerate(self.sizes.items()):
            if split not in self.sets:
                self.sets[split] = TensorDataset(*make_sincos(count, self.seq_len, self.omega, self.dt,
                                                              seed=self.seed * 1000 + offset))

    @property
    def spec(self) -> DataSpec:
        return DataSpec("regression", num_outputs=1, input_dim=1, per_step=True)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        # All sequences have one length: the bucket sampler is plain seeded shuffling here,
        # and it shares batches between DDP processes like the text loaders do.
        dataset = self.sets[split]
        sampler = BucketBatchSampler(torch.full((len(dataset),), self.seq_len), self.batch_size, shuffle=shuffle,
                                     seed=self.seed, **process_share(self))
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=_signal_batch)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)
