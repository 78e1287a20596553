"""The adding problem (Hochreiter & Schmidhuber 1997; as in Le et al. 2015), generated, no
download. At each of ``length`` steps two inputs: a random number in [0, 1] and a marker;
exactly two steps are marked, one in each half; the target, read after the last step, is the
sum of the two marked numbers."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import GeneratedDatasetSchema, check_positive
from ..data.declare import DataSpec, generated_dataset

# The adding problem's baseline: always answer the mean of the target, 1.0. The sum of two
# independent U(0, 1) has variance 2/12, so that baseline's MSE is 1/6 ~ 0.167.
ADDING_BASELINE_MSE = 1.0 / 6.0


@dataclass
class AddingSchema(GeneratedDatasetSchema):
    """The adding problem's own keys (values: conf/dataset/adding.yaml)."""
    length: int
    fresh_train: bool                 # a new training set every epoch (drawn from seed and epoch)
    solved_below: float | None        # the test MSE that counts as solved

    def __post_init__(self):
        super().__post_init__()
        check_positive("dataset", length=self.length)


def make_adding(count: int, length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """inputs (N, T, 2): a random number in [0, 1] and a marker at every step; exactly two steps
    are marked, one in each half. targets (N,): the sum of the two marked numbers."""
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2, got {length}")
    generator = torch.Generator().manual_seed(seed)
    numbers = torch.rand(count, length, generator=generator)
    half = length // 2
    first = torch.randint(0, half, (count,), generator=generator)
    second = torch.randint(half, length, (count,), generator=generator)
    markers = torch.zeros(count, length)
    rows = torch.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = numbers[rows, first] + numbers[rows, second]
    return torch.stack([numbers, markers], dim=-1), targets


def _make(config: dict):
    def make(count: int, seed: int) -> dict:
        inputs, targets = make_adding(count, config["length"], seed)
        return {"inputs": inputs, "targets": targets}
    return make


def _spec(config: dict) -> DataSpec:
    return DataSpec("last_step_regression", num_outputs=1, input_dim=2, baselines={"mse": ADDING_BASELINE_MSE})


generated_dataset("adding", AddingSchema, "last_step_regression", _make, _spec,
                  test_set_keys=("length", "n_test", "test_seed"), fresh_train=lambda config: config["fresh_train"])
