"""sin -> cos: predict cos(ωt + φ) at every step from sin(ωt + φ), seeded random phase φ.

Generated, so it needs no download; it is the default task of ``python -m seqbench``.
"""
from __future__ import annotations

import math

import torch


def make_sincos(count: int, steps: int, omega: float, dt: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """inputs (N, T, 1) = sin(ω t + φ), targets (N, T) = cos(ω t + φ), t = 0, dt, 2dt, ..."""
    generator = torch.Generator().manual_seed(seed)
    phase = torch.rand(count, 1, generator=generator) * 2 * math.pi  # (N, 1)
    angle = omega * dt * torch.arange(steps).unsqueeze(0) + phase  # (N, T)
    return torch.sin(angle).unsqueeze(-1), torch.cos(angle)
