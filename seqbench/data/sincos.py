"""Generated sequence tasks: no download, every set drawn from a seed.

- sin -> cos (``make_sincos``): predict cos(ωt + φ) at every step from sin(ωt + φ).
- the adding problem (``make_adding``; Hochreiter & Schmidhuber 1997, as in Le et al. 2015).
- the copy-memory task (``make_copy``; Arjovsky et al. 2016).
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


# The adding problem's baseline: always answer the mean of the target, 1.0. The sum of two
# independent U(0, 1) has variance 2/12, so that baseline's MSE is 1/6 ~ 0.167.
ADDING_BASELINE_MSE = 1.0 / 6.0


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


# Copy task token ids (0 is padding, as for text): BLANK, then the alphabet, then the delimiter.
COPY_BLANK = 1


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
