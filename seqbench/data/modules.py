"""Lightning data modules: text classification (IMDB, TREC, your files) and generated
sequence tasks (sin -> cos, adding, copy); each says what task it poses (``DataSpec``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from .. import SeqbenchError
from ..names import TASKS
from ..record import content_digest, short_hash
from . import imdb, text_file, trec
from .batching import BucketBatchSampler, TextSubset, pad_batch, stratified_split
from .sincos import (ADDING_BASELINE_MSE, copy_baseline_ce, copy_vocabulary, make_adding, make_copy,
                     make_sincos)
from .sources import resolve_data_root, user_cache_dir
from .text import EncodedCorpus, TextSettings, cache_key, encode_corpus, load_corpus, save_corpus

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class DataSpec:
    """What a model (and a results table) needs to know about its data."""

    task: str                       # one of TASKS
    num_outputs: int
    vocab_size: int | None = None   # token inputs
    input_dim: int | None = None    # real-valued inputs
    label_names: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()   # id -> token, for text
    max_len: int | None = None
    # Test metrics of a model that learns nothing (the adding problem's constant answer, the copy
    # task's memoryless strategy): a curve is read against it.
    baselines: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; valid: {', '.join(TASKS)}")

    @property
    def per_step(self) -> bool:
        return self.task.startswith("per_step")

    @property
    def metric(self) -> str:
        return TASKS[self.task][0]

    @property
    def metric_mode(self) -> str:
        return TASKS[self.task][1]


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
    """The files behind a located source, in a fixed order (a folder stands for the files in it)."""
    paths = [Path(p) for p in (located.values() if isinstance(located, dict) else [located])]
    files = []
    for path in paths:
        files.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return files


def data_fingerprint(source: TextSource, located) -> str:
    """The input files' contents (not their names, sizes or times) and the reading options."""
    return short_hash({"source": source.name + source.options, "content": content_digest(_input_files(located))})


def load_text_corpus(source: TextSource, root: Path, settings: TextSettings, cache_dir: Path,
                     located=None, fingerprint: str | None = None, rebuild: bool = False) -> EncodedCorpus:
    """Tokenised corpus from the on-disk cache, else read, tokenise and cache it. The cache is
    keyed by the files' contents, so a file replaced by another of the same size and time is
    never read from a stale cache; ``rebuild`` (``force=true``) tokenises again regardless."""
    located = source.locate(root) if located is None else located
    fingerprint = fingerprint or data_fingerprint(source, located)
    cache_file = cache_dir / f"{source.name}-{cache_key(fingerprint, settings)}.pt"
    if cache_file.is_file() and not rebuild:
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


def as_batch(item):
    """A batch as the datasets build it; a single example (what Lightning's overfit_batches
    asks for, when it replaces the batch sampler by a sequential one) becomes a batch of one."""
    return item if isinstance(item, dict) else pad_batch([item])


def _loader(dataset: Dataset, sampler: BucketBatchSampler, num_workers: int = 0) -> DataLoader:
    # The sampler yields a batch's positions; the dataset builds the whole batch from them.
    return DataLoader(dataset, sampler=sampler, batch_size=None, collate_fn=as_batch, num_workers=num_workers,
                      pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0)


class TextClassificationData(pl.LightningDataModule):
    def __init__(self, source: TextSource, settings: TextSettings, root: str | None = None,
                 cache_dir: str | None = None, batch_size: int = 64, eval_batch_size: int | None = None,
                 val_fraction: float = 0.1, seed: int = 0, num_workers: int = 0, rebuild_cache: bool = False):
        super().__init__()
        self.source, self.settings = source, settings
        self.root = resolve_data_root(root)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else user_cache_dir() / "tokenised"
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction, self.seed, self.num_workers = val_fraction, seed, num_workers
        self.rebuild_cache = rebuild_cache
        self.corpus: EncodedCorpus | None = None
        self._located = None
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """Identity of the input data (finds, downloads and verifies the files if need be)."""
        if self._fingerprint is None:
            self._located = self.source.locate(self.root)
            self._fingerprint = data_fingerprint(self.source, self._located)
        return self._fingerprint

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is not None:
            return
        self.corpus = load_text_corpus(self.source, self.root, self.settings, self.cache_dir, self._located,
                                       self.fingerprint(), rebuild=self.rebuild_cache)
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
        self._check_sizes()

    def _check_sizes(self) -> None:
        name = self.source.name
        classes = sorted(set(self.corpus.splits["train"].labels.tolist()))
        if len(classes) < 2:
            only = self.corpus.label_names[classes[0]] if classes else "none"
            raise SeqbenchError(f"{name}: the training data has a single class ({only!r}); a classifier needs "
                                f"at least two")
        if len(self.train_set) == 0 or len(self.val_set) == 0:
            raise SeqbenchError(f"{name}: {len(self.corpus.splits['train'])} training examples leave "
                                f"{len(self.train_set)} for training and {len(self.val_set)} for validation at "
                                f"dataset.val_fraction={self.val_fraction}; add examples, change the fraction, "
                                f"or give dataset.val=PATH")

    def example_counts(self) -> dict[str, int]:
        """Examples per split as read: a loss of rows shows up here, in every record."""
        self.setup()
        return {"train": len(self.train_set), "val": len(self.val_set), "test": len(self.test_set)}

    @property
    def spec(self) -> DataSpec:
        self.setup()
        return DataSpec("classification", len(self.corpus.label_names), vocab_size=len(self.corpus.vocabulary),
                        label_names=tuple(self.corpus.label_names), vocabulary=tuple(self.corpus.vocabulary.itos),
                        max_len=self.settings.max_len)

    def _loader(self, dataset: TextSubset, shuffle: bool) -> DataLoader:
        sampler = BucketBatchSampler(dataset.lengths, self.batch_size if shuffle else self.eval_batch_size,
                                     shuffle=shuffle, seed=self.seed, **process_share(self))
        return _loader(dataset, sampler, self.num_workers)

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
        text_file.check_readable(path, f"dataset.{split}")
        text_file.file_format(path)
    return TextSource("text_file", lambda root: paths,
                      lambda located: text_file.read_splits(located, text_column, label_column, encoding),
                      options=f"|{text_column}|{label_column}|{encoding}")


def process_share(datamodule: pl.LightningDataModule) -> dict[str, int]:
    """This process's rank and the number of processes (1 outside DDP)."""
    trainer = datamodule.trainer
    return {"rank": trainer.global_rank, "world_size": trainer.world_size} if trainer else {}


class TensorBatches(Dataset):
    """Equal-length generated sequences; indexed by a list of positions it gives a whole batch
    (inputs, lengths, targets, index, and any extra per-step tensors such as ``recall``)."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors = tensors
        self.count, self.steps = tensors["inputs"].shape[:2]
        self.lengths = torch.full((self.count,), self.steps, dtype=torch.int64)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, positions):
        rows = torch.as_tensor([positions] if isinstance(positions, int) else positions, dtype=torch.int64)
        batch = {name: tensor[rows] for name, tensor in self.tensors.items()}
        batch["lengths"], batch["index"] = self.lengths[rows], rows
        return batch


class GeneratedData(pl.LightningDataModule):
    """A generated task. Training and validation sets are drawn from the run's seed, the test
    set from ``test_seed`` alone: every seed of every model is tested on the same sequences, so
    the spread over seeds is the spread of training, not of test sampling. With
    ``fresh_train`` the training set is drawn anew every epoch (from seed and epoch)."""

    def __init__(self, name: str, make: Callable[[int, int], dict[str, torch.Tensor]], spec: DataSpec,
                 n_train: int, n_val: int, n_test: int, batch_size: int, seed: int, test_seed: int,
                 fresh_train: bool = False, eval_batch_size: int | None = None):
        super().__init__()
        self.name, self.make, self._spec = name, make, spec
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.seed, self.test_seed, self.fresh_train = seed, test_seed, fresh_train
        self.sets: dict[str, TensorBatches] = {}
        self._train_epoch: int | None = None

    def fingerprint(self) -> str:
        return "generated"  # the generator's settings are in the config, its code in the code fingerprint

    def _seed_of(self, split: str, epoch: int = 0) -> int:
        if split == "test":
            return self.test_seed
        # Distinct, fixed streams for validation and for each epoch's training data.
        return (self.seed * 1_000_003 + (1 if split == "val" else 2 + epoch)) % (2**63 - 1)

    def setup(self, stage: str | None = None) -> None:
        for split in ("val", "test"):
            if split not in self.sets:
                self.sets[split] = TensorBatches(self.make(self.sizes[split], self._seed_of(split)))
        if "train" not in self.sets:
            self._make_train(0)

    def _make_train(self, epoch: int) -> None:
        if self._train_epoch != epoch:
            self.sets["train"] = TensorBatches(self.make(self.sizes["train"], self._seed_of("train", epoch)))
            self._train_epoch = epoch

    def example_counts(self) -> dict[str, int]:
        return dict(self.sizes)

    @property
    def spec(self) -> DataSpec:
        return self._spec

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        # All sequences have one length: the bucket sampler is plain seeded shuffling here,
        # and it shares batches between DDP processes like the text loaders do.
        dataset = self.sets[split]
        sampler = BucketBatchSampler(dataset.lengths, self.batch_size if shuffle else self.eval_batch_size,
                                     shuffle=shuffle, seed=self.seed, **process_share(self))
        return _loader(dataset, sampler)

    def train_dataloader(self):
        if self.fresh_train:  # reloaded every epoch (run() sets reload_dataloaders_every_n_epochs=1)
            self._make_train(self.trainer.current_epoch if self.trainer else 0)
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)


def sincos_data(config: dict, seed: int) -> GeneratedData:
    def make(count, seed_):
        inputs, targets = make_sincos(count, config["seq_len"], config["omega"], config["dt"], seed_)
        return {"inputs": inputs, "targets": targets}
    spec = DataSpec("per_step_regression", num_outputs=1, input_dim=1)
    return GeneratedData("sincos", make, spec, config["n_train"], config["n_val"], config["n_test"],
                         config["batch_size"], seed, config["test_seed"], fresh_train=False,
                         eval_batch_size=config.get("eval_batch_size"))


def adding_data(config: dict, seed: int) -> GeneratedData:
    length = config["length"]

    def make(count, seed_):
        inputs, targets = make_adding(count, length, seed_)
        return {"inputs": inputs, "targets": targets}
    spec = DataSpec("last_step_regression", num_outputs=1, input_dim=2,
                    baselines={"mse": ADDING_BASELINE_MSE})
    return GeneratedData("adding", make, spec, config["n_train"], config["n_val"], config["n_test"],
                         config["batch_size"], seed, config["test_seed"], fresh_train=config["fresh_train"],
                         eval_batch_size=config.get("eval_batch_size"))


def copy_data(config: dict, seed: int) -> GeneratedData:
    length, symbols, alphabet = config["length"], config["symbols"], config["alphabet"]

    def make(count, seed_):
        inputs, targets, recall = make_copy(count, length, seed_, symbols, alphabet)
        return {"inputs": inputs, "targets": targets, "recall": recall}
    spec = DataSpec("per_step_classification", num_outputs=alphabet + 1,
                    vocab_size=copy_vocabulary(alphabet)["size"],
                    label_names=("blank", *[f"s{i}" for i in range(1, alphabet + 1)]),
                    baselines={"ce": copy_baseline_ce(length, symbols, alphabet), "acc": 1.0 / alphabet})
    return GeneratedData("copy", make, spec, config["n_train"], config["n_val"], config["n_test"],
                         config["batch_size"], seed, config["test_seed"], fresh_train=config["fresh_train"],
                         eval_batch_size=config.get("eval_batch_size"))


GENERATED = {"sincos": sincos_data, "adding": adding_data, "copy": copy_data}
