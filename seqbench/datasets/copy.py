"""The copy-memory task (Arjovsky, Shah & Bengio 2016), generated, no download: remember
``symbols`` symbols across ``length`` blank steps and reproduce them after the delimiter."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import ConfigError, GeneratedDatasetSchema, check_positive
from ..data.declare import DataSpec, generated_dataset

# Copy task token ids (0 is padding, as for text): BLANK, then the alphabet, then the delimiter.
COPY_BLANK = 1


@dataclass
class CopySchema(GeneratedDatasetSchema):
    """The copy task's own keys (values: conf/dataset/copy.yaml)."""
    length: int
    symbols: int                      # how many symbols to remember
    alphabet: int                     # drawn from this many
    fresh_train: bool                 # a new training set every epoch (drawn from seed and epoch)
    solved_above: float | None        # the accuracy on the recalled symbols that counts as solved

    def __post_init__(self):
        super().__post_init__()
        check_positive("dataset", length=self.length, symbols=self.symbols, alphabet=self.alphabet)
        if self.solved_above is not None and not 0 < self.solved_above <= 1:
            raise ConfigError(f"dataset.solved_above={self.solved_above!r}: an accuracy, must be in (0, 1]")


def copy_vocabulary(alphabet: int) -> dict[str, int]:
    return {"blank": COPY_BLANK, "first_symbol": 2, "delimiter": 2 + alphabet, "size": 3 + alphabet}


def copy_baseline_ce(length: int, symbols: int = 10, alphabet: int = 8) -> float:
    """Cross-entropy per step of the memoryless strategy: blanks everywhere, then a uniform guess
    over the alphabet for each recalled symbol: symbols * log(alphabet) / (length + 2 * symbols)."""
    return symbols * math.log(alphabet) / (length + 2 * symbols)


def make_copy(count: int, length: int, seed: int, symbols: int = 10,
              alphabet: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """inputs (N, T + 2S) token ids: S symbols, T - 1 blanks, the delimiter, S blanks.
    targets (N, T + 2S) classes: 0 (blank) for T + S steps, then the S symbols as 1..alphabet.
    recall (N, T + 2S) bool: the last S steps, where the symbols must come back."""
    ids = copy_vocabulary(alphabet)
    generator = torch.Generator().manual_seed(seed)
    total = length + 2 * symbols
    remembered = torch.randint(0, alphabet, (count, symbols), generator=generator)  # 0..alphabet-1
    inputs = torch.full((count, total), ids["blank"], dtype=torch.int64)
    inputs[:, :symbols] = remembered + ids["first_symbol"]
    inputs[:, symbols + length - 1] = ids["delimiter"]
    targets = torch.zeros(count, total, dtype=torch.int64)
    targets[:, -symbols:] = remembered + 1
    recall = torch.zeros(count, total, dtype=torch.bool)
    recall[:, -symbols:] = True
    return inputs, targets, recall


def _make(config: dict):
    def make(count: int, seed: int) -> dict:
        inputs, targets, recall = make_copy(count, config["length"], seed, config["symbols"], config["alphabet"])
        return {"inputs": inputs, "targets": targets, "recall": recall}
    return make


def _spec(config: dict) -> DataSpec:
    alphabet = config["alphabet"]
    return DataSpec("per_step_classification", num_outputs=alphabet + 1, vocab_size=copy_vocabulary(alphabet)["size"],
                    label_names=("blank", *[f"s{i}" for i in range(1, alphabet + 1)]),
                    baselines={"ce": copy_baseline_ce(config["length"], config["symbols"], alphabet),
                               "acc": 1.0 / alphabet})


generated_dataset("copy", CopySchema, "per_step_classification", _make, _spec,
                  test_set_keys=("length", "symbols", "alphabet", "n_test", "test_seed"),
                  fresh_train=lambda config: config["fresh_train"])
