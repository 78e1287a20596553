"""The comparison conditional on the trained networks (its own section, never the verdict): per-example
scores averaged over each variant's seeds, a paired bootstrap (BCa) and permutation test, or the
paired t-test above 5,000 examples, Holm-adjusted; and the Wilson interval of a proportion."""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .rule import holm


# Above this many test examples the conditional column uses the paired t-test and its interval
# (scipy.stats.ttest_rel): the resampling tests' jackknife (BCa) and sign flips cost minutes per
# pair on IMDB's 25,000 reviews, and with that many examples the mean difference is normal to
# within far less than the printed digits (the central limit theorem), so they would agree.
RESAMPLING_MAX_EXAMPLES = 5000


def paired_test(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 9999) -> tuple[float, float, float, float]:
    """(mean of a - b, 95% low, high, two-sided p) for paired per-example scores: the conditional
    comparison. Up to RESAMPLING_MAX_EXAMPLES examples: a BCa bootstrap interval and a paired
    permutation test; above: the paired t-test and its interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    difference = a - b
    mean = float(difference.mean())
    if np.allclose(difference, difference[0]):  # no variation: every resample gives the same mean
        return mean, mean, mean, 1.0 if mean == 0 else 0.0
    if len(difference) > RESAMPLING_MAX_EXAMPLES:
        test = stats.ttest_rel(a, b)
        interval = test.confidence_interval(0.95)
        return mean, float(interval.low), float(interval.high), float(test.pvalue)
    rng = np.random.default_rng(seed)
    interval = stats.bootstrap((difference,), np.mean, confidence_level=0.95, n_resamples=resamples, method="BCa",
                               random_state=rng, batch=max(1, 2_000_000 // len(difference)))
    batch = max(1, 2_000_000 // len(difference))
    if 2 ** len(difference) <= resamples:  # few examples: scipy enumerates every sign flip, exactly
        p = float(stats.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis),
                                         permutation_type="samples", n_resamples=resamples, alternative="two-sided",
                                         vectorized=True, random_state=rng, batch=batch).pvalue)
    else:
        p = paired_permutation_p(difference, rng, resamples, batch)
    return mean, float(interval.confidence_interval.low), float(interval.confidence_interval.high), p


def paired_permutation_p(difference: np.ndarray, rng: np.random.Generator, resamples: int, batch: int) -> float:
    """Two-sided p of the paired permutation test of the mean difference, the same number as
    ``scipy.stats.permutation_test((a, b), mean(x - y), permutation_type="samples",
    n_resamples=resamples, batch=batch, random_state=rng, vectorized=True)`` from the same
    ``rng`` state (tests/test_stats.py compares them), without scipy's cost: scipy permutes a
    (batch, examples, 2) index array with ``rng.permuted`` (one Fisher-Yates swap per pair, drawn
    from one 32-bit integer each: swapped when its lowest bit is 0) and gathers every example
    separately; here the same integers are drawn at once and flip the differences' signs. For
    more examples than resamples' base-2 logarithm (scipy enumerates fewer exactly)."""
    n = len(difference)
    observed = difference.mean()
    batch = min(batch, resamples)
    null = []
    for start in range(0, resamples, batch):
        # scipy draws a whole batch even for the last, shorter one: the same draws, then the cut
        swapped = (rng.integers(0, 2**32, size=(batch, n), dtype=np.uint32) & 1 == 0)[:min(batch, resamples - start)]
        # scipy's statistic sees (x - y) laid out examples-major, and np.mean then adds the
        # examples in order; the same layout gives the same rounding, so the same null values
        signed = np.where(swapped.T, -difference[:, None], difference[:, None])
        null.append(np.mean(signed.T, axis=-1))
    null = np.concatenate(null)
    gamma = abs(np.finfo(float).eps * 100 * observed)  # scipy's tolerance for ties in the null
    less = (np.count_nonzero(null <= observed + gamma) + 1) / (resamples + 1)
    greater = (np.count_nonzero(null >= observed - gamma) + 1) / (resamples + 1)
    return float(np.clip(min(less, greater) * 2, 0.0, 1.0))


@dataclass
class ConditionalPair:
    """A minus B of per-example scores averaged over each variant's seeds: test-set sampling only,
    for these trained networks."""
    a: str
    b: str
    difference: float
    low: float
    high: float
    p: float
    p_floor: float
    test: str
    examples: int
    p_holm: float = math.nan


def conditional_pairs(scores: dict[str, pd.DataFrame], order: list[str], seed: int = 0,
                      resamples: int = 9999) -> list[ConditionalPair]:
    """scores: variant -> DataFrame (examples x seeds). Every pair in ``order``, on the examples all
    share, Holm-adjusted."""
    order = [v for v in order if v in scores]
    common = sorted(set.intersection(*(set(scores[v].index) for v in order))) if order else []
    out = []
    for number, (name_a, name_b) in enumerate(combinations(order, 2)):
        a = scores[name_a].loc[common].to_numpy().mean(axis=1)
        b = scores[name_b].loc[common].to_numpy().mean(axis=1)
        difference, low, high, p = paired_test(a, b, seed=seed + number, resamples=resamples)
        # the permutation test's smallest p (scipy counts the observed arrangement); the t-test has none
        floor = 2 / (resamples + 1) if len(common) <= RESAMPLING_MAX_EXAMPLES else 0.0
        out.append(ConditionalPair(name_a, name_b, difference, low, high, p, floor,
                                   "permutation" if floor else "paired t-test", len(common)))
    if out:
        for pair, p in zip(out, holm([c.p for c in out])[1]):
            pair.p_holm = float(p)
    return out


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion (statsmodels)."""
    if trials == 0:
        return math.nan, math.nan
    from statsmodels.stats.proportion import proportion_confint
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return float(low), float(high)
