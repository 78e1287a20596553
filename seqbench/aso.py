"""Almost Stochastic Order (Dror et al. 2019), deepsig's ``aso`` computed with whole-array numpy.

deepsig 1.2.6 evaluates its empirical quantile function through ``np.vectorize`` (a Python call
that sorts the scores again for every one of the 199 points of each of its bootstrap iterations):
about 1 s a pair at 200 iterations, 80% of ``seqbench report`` on 16 variants. The same arithmetic
on arrays, with the same random draws (``np.random.seed(seed + k)`` for iteration k = 1, 2, ...,
as deepsig does, here through a ``RandomState`` so the global generator is left alone), gives the
same eps_min (tests/test_aso.py compares the two).
"""
from __future__ import annotations

import functools

import numpy as np
from scipy.stats import norm


def quantiles(sorted_scores: np.ndarray, p: np.ndarray) -> np.ndarray:
    """deepsig's empirical quantile F^-1(p) = sorted[ceil(n p) - 1] (clipped to [0, n-1]): of one
    sorted (n,) at probabilities of any shape, or of each row of (rows, n) at probabilities (m,)."""
    n = sorted_scores.shape[-1]
    index = np.clip(np.ceil(n * p).astype(int) - 1, 0, n - 1)
    return sorted_scores[index] if sorted_scores.ndim == 1 else sorted_scores[..., index]


def row_sums(values: np.ndarray) -> np.ndarray:
    """Sums along the last axis, one row at a time: numpy sums a 1-D array pairwise but a 2-D one
    along an axis in another order, and deepsig sums 1-D arrays (this keeps its last bits)."""
    return np.sum(values) if values.ndim == 1 else np.array([np.sum(row) for row in values])


def violation_ratio(sorted_a: np.ndarray, sorted_b: np.ndarray, dt: float) -> np.ndarray:
    """e_W2 (Dror et al. eq. 4-5) per row of sorted scores (..., n_a), (..., n_b): the share of the
    squared Wasserstein distance where A's quantile falls below B's; 0.5 where the distance is 0."""
    t = np.arange(dt, 1, dt)
    f, g = quantiles(sorted_a, t), quantiles(sorted_b, t)
    diff = g - f
    distance = row_sums(diff ** 2 * dt)
    diff[f >= g] = 0
    violation = row_sums(diff[..., 1:] ** 2 * dt)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(distance == 0, 0.5, violation / np.where(distance == 0, 1.0, distance))


@functools.lru_cache(maxsize=8192)
def _uniforms(seed: int, n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """deepsig's bootstrap draws of one iteration; a report's pairs use the seeds k + 1, k + 2, ...
    for pair k, so they share nearly all of them (seeding a RandomState was half an ASO's cost)."""
    state = np.random.RandomState(seed)
    first, second = state.uniform(0, 1, n_a), state.uniform(0, 1, n_b)
    first.flags.writeable = second.flags.writeable = False  # shared through the cache
    return first, second


def aso(scores_a, scores_b, confidence_level: float = 0.95, num_comparisons: int = 1,
        num_bootstrap_iterations: int = 1000, dt: float = 0.005, seed: int = 0) -> float:
    """eps_min of "A is better than B" (higher is better), as ``deepsig.aso`` with these arguments."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if num_comparisons > 1:  # Bonferroni, as deepsig
        confidence_level += (1 - confidence_level) / num_comparisons
    sorted_a, sorted_b = np.sort(a), np.sort(b)
    observed = float(violation_ratio(sorted_a, sorted_b, dt))
    uniform = [_uniforms(seed + k, len(a), len(b)) for k in range(1, num_bootstrap_iterations + 1)]
    resampled_a = np.sort(quantiles(sorted_a, np.stack([u for u, _ in uniform])), axis=-1)
    resampled_b = np.sort(quantiles(sorted_b, np.stack([v for _, v in uniform])), axis=-1)
    samples = violation_ratio(resampled_a, resampled_b, dt)
    const = np.sqrt(len(a) * len(b) / (len(a) + len(b)))
    sigma_hat = np.std(const * (samples - observed))
    return float(np.clip(observed - (1 / const) * sigma_hat * norm.ppf(1 - confidence_level), 0, 1))
