"""Length-bucketed batches, stratified validation splits, padding collation."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .text import PAD_ID, EncodedTexts


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split keeping each class's share: (train indices, validation indices), both sorted.

    The same labels and seed always give the same split, whatever model is trained on it.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    validation = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        validation.extend(members[: int(round(len(members) * fraction))])
    in_validation = np.zeros(len(labels), dtype=bool)
    in_validation[validation] = True
    return torch.from_numpy(np.flatnonzero(~in_validation)), torch.from_numpy(np.flatnonzero(in_validation))


class TextSubset(Dataset):
    """Rows ``indices`` of an ``EncodedTexts``. Indexed by one position it gives (ids, label,
    row); indexed by a list of positions (what ``BucketBatchSampler`` yields) it gives the whole
    padded batch at once, built with tensor ops instead of one Python step per example."""

    def __init__(self, texts: EncodedTexts, indices: torch.Tensor | None = None):
        self.texts = texts
        self.indices = torch.arange(len(texts)) if indices is None else torch.as_tensor(indices)
        self.lengths = texts.lengths[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position):
        if isinstance(position, (list, tuple, np.ndarray, torch.Tensor)):
            return self.batch(position)
        index = int(self.indices[position])
        return self.texts.sequence(index), self.texts.labels[index], torch.tensor(index)

    def batch(self, positions) -> dict[str, torch.Tensor]:
        """inputs (B, T) int64 right-padded, lengths (B,), targets (B,), index (B,): each example's
        row in its split's file order (what saved predictions are keyed by)."""
        rows = self.indices[torch.as_tensor(positions, dtype=torch.int64)]
        starts = self.texts.offsets[rows]
        lengths = self.texts.lengths[rows]
        steps = torch.arange(int(lengths.max()))
        real = steps.unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
        where = (starts.unsqueeze(1) + steps.unsqueeze(0)).clamp_max(max(len(self.texts.ids) - 1, 0))
        inputs = torch.where(real, self.texts.ids[where].long(), torch.full_like(where, PAD_ID))
        return {"inputs": inputs, "lengths": lengths, "targets": self.texts.labels[rows], "index": rows}


def pad_batch(items) -> dict[str, torch.Tensor]:
    """Right-pad (ids, label[, row]) items: inputs (B, T) int64, lengths (B,), targets (B,)[, index (B,)]."""
    columns = list(zip(*items))
    sequences, labels = columns[0], columns[1]
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    inputs = torch.full((len(sequences), int(lengths.max())), PAD_ID, dtype=torch.int64)
    for row, sequence in enumerate(sequences):
        inputs[row, : len(sequence)] = sequence
    batch = {"inputs": inputs, "lengths": lengths, "targets": torch.stack(labels)}
    if len(columns) > 2:
        batch["index"] = torch.stack(columns[2])
    return batch


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, so little compute is spent on pads.

    Training (shuffle=True): each epoch, indices are shuffled, cut into pools of
    ``batch_size * pool_batches``, each pool sorted by length and cut into batches,
    and the batches shuffled. Evaluation (shuffle=False): sorted by length, fixed order.
    """

    def __init__(self, lengths: torch.Tensor, batch_size: int, shuffle: bool, seed: int = 0,
                 pool_batches: int = 50, drop_last: bool = False, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.pool_size = batch_size * pool_batches
        self.drop_last = drop_last
        # Under DDP each process takes every world_size-th batch. Training keeps the same
        # number of batches on every process (gradients are averaged step by step); evaluation
        # keeps all of them, once each: metrics are summed across processes.
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        batches = self._all_batches()
        if self.world_size > 1:
            if self.shuffle:
                batches = batches[: len(batches) - len(batches) % self.world_size]
            batches = batches[self.rank:: self.world_size]
        return batches

    def _all_batches(self) -> list[np.ndarray]:
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool_size):
            pool = order[start: start + self.pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(pool[i: i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __iter__(self):
        for batch in self._batches():
            yield batch.tolist()

    def __len__(self) -> int:
        return len(self._batches())
