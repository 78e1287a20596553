"""sin -> cos, generated (no download): predict cos(ωt + φ) at every step from sin(ωt + φ).
The first ``warmup_steps`` steps are not scored (one value of sin leaves the sign of cos open)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import ConfigError, GeneratedDatasetSchema, check_positive
from ..data.declare import DataSpec, generated_dataset


@dataclass
class SinCosSchema(GeneratedDatasetSchema):
    """sin -> cos's own keys: the signal's length, frequency and step, and the steps not scored
    (values: conf/dataset/sincos.yaml)."""
    seq_len: int
    omega: float
    dt: float
    warmup_steps: int

    def __post_init__(self):
        super().__post_init__()
        check_positive("dataset", seq_len=self.seq_len, omega=self.omega, dt=self.dt)
        if not 0 <= self.warmup_steps < self.seq_len:
            raise ConfigError(f"dataset.warmup_steps={self.warmup_steps}: must be >= 0 and below "
                              f"dataset.seq_len={self.seq_len}")


def make_sincos(count: int, steps: int, omega: float, dt: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """inputs (N, T, 1) = sin(ω t + φ), targets (N, T) = cos(ω t + φ), t = 0, dt, 2dt, ..."""
    generator = torch.Generator().manual_seed(seed)
    phase = torch.rand(count, 1, generator=generator) * 2 * math.pi  # (N, 1)
    angle = omega * dt * torch.arange(steps).unsqueeze(0) + phase  # (N, T)
    return torch.sin(angle).unsqueeze(-1), torch.cos(angle)


def _make(config: dict):
    def make(count: int, seed: int) -> dict:
        inputs, targets = make_sincos(count, config["seq_len"], config["omega"], config["dt"], seed)
        return {"inputs": inputs, "targets": targets}
    return make


def _spec(config: dict) -> DataSpec:
    # Predicting 0 everywhere scores E[cos^2] = 0.5.
    return DataSpec("per_step_regression", num_outputs=1, input_dim=1, baselines={"mse": 0.5})


generated_dataset("sincos", SinCosSchema, "per_step_regression", _make, _spec,
                  test_set_keys=("n_test", "test_seed", "seq_len", "omega", "dt", "warmup_steps"))
