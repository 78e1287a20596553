"""Lightning data modules: text classification (IMDB, TREC, your files) and generated
sequence tasks (sin -> cos, adding, copy); each says what task it poses (``DataSpec``). The data
sets themselves are declared one per file in ``seqbench/datasets/``."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from .. import SeqbenchError
from .batching import BucketBatchSampler, TextSubset, pad_batch, stratified_split
from .spec import DataSpec, LocatedData, TextSource, data_fingerprint
from .sources import user_cache_dir
from .text import EncodedCorpus, TextSettings, cache_key, encode_corpus, load_corpus, save_corpus

log = logging.getLogger(__name__)

def load_text_corpus(source: TextSource, located, settings: TextSettings, cache_dir: Path,
                     fingerprint: str | None = None, rebuild: bool = False) -> EncodedCorpus:
    """Tokenised corpus from the on-disk cache, else read, tokenise and cache it. The cache is
    keyed by the files' contents, so a file replaced by another of the same size and time is
    never read from a stale cache; ``rebuild`` (``force=true``) tokenises again regardless."""
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
    def __init__(self, source: TextSource, settings: TextSettings, located: LocatedData,
                 cache_dir: str | None = None, batch_size: int = 64, eval_batch_size: int | None = None,
                 val_fraction: float = 0.1, seed: int = 0, num_workers: int = 0, rebuild_cache: bool = False):
        super().__init__()
        self.source, self.settings, self.located = source, settings, located
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else user_cache_dir() / "tokenised"
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction, self.seed, self.num_workers = val_fraction, seed, num_workers
        self.rebuild_cache = rebuild_cache
        self.corpus: EncodedCorpus | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.corpus is not None:
            return
        self.corpus = load_text_corpus(self.source, self.located.located, self.settings, self.cache_dir,
                                       self.located.fingerprint, rebuild=self.rebuild_cache)
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
            counts = torch.bincount(self.corpus.splits["train"].labels)
            counts = counts[counts > 0]
            raise SeqbenchError(
                f"{name}: the validation split is stratified: it takes round({self.val_fraction} x n) examples of "
                f"each class, and with {len(counts)} classes of {int(counts.min())} to {int(counts.max())} training "
                f"examples that leaves {len(self.val_set)} for validation (and {len(self.train_set)} for training) of "
                f"{len(self.corpus.splits['train'])}; raise dataset.val_fraction (above "
                f"{0.5 / int(counts.max()):.2g} puts one example of the largest class into validation), add examples, "
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
