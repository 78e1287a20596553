"""The verdict's rule over seed-level scores: every pair of variants decided by the moderated t
(variances shrunk toward a common one by empirical Bayes where the spreads support it) and the
Ryan-Einot-Gabriel-Welsch step-down over ranges of means, else Welch's t and Holm's step-down; the
compact letter display of the groups it leaves."""
from __future__ import annotations

import functools
import gc
import math
from itertools import combinations

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests


ALPHA = 0.05


def holm(p, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """(reject, adjusted p) by Holm's step-down (statsmodels). Its Holm branch calls gc.collect()
    on every call (20-100 ms in a process that holds torch); with the heap frozen around it that
    walk is skipped."""
    gc.freeze()
    try:
        reject, adjusted, _, _ = multipletests(np.asarray(p, dtype=float), alpha=alpha, method="holm")
    finally:
        gc.unfreeze()
    return np.asarray(reject, dtype=bool), np.asarray(adjusted, dtype=float)


def holm_rows(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down on every row of ``p`` (families x hypotheses) at once: (reject, the level
    alpha/k of the step that decided each hypothesis: k were still open where it was rejected, or
    where Holm stopped). An interval at 1 - that level excludes zero exactly when Holm rejects."""
    rows, m = p.shape
    order = np.argsort(p, axis=1, kind="stable")
    thresholds = alpha / (m - np.arange(m))
    passed = np.cumprod(np.take_along_axis(p, order, 1) <= thresholds, axis=1).astype(bool)
    stop = passed.sum(axis=1)                                  # rejections before Holm stops
    step_level = np.where(passed, thresholds, alpha / np.maximum(m - stop, 1)[:, None])
    reject, level = np.zeros_like(passed), np.empty_like(step_level)
    np.put_along_axis(reject, order, passed, 1)
    np.put_along_axis(level, order, step_level, 1)
    return reject, level


def trigamma_inverse(y: np.ndarray) -> np.ndarray:
    """x with trigamma(x) = y (Smyth's Newton iteration, as limma's ``trigammaInverse``)."""
    from scipy.special import polygamma
    y = np.asarray(y, dtype=float)
    x = 0.5 + 1 / y
    for _ in range(50):
        step = polygamma(1, x) * (1 - polygamma(1, x) / y) / polygamma(2, x)
        x = x + step
        if np.all(-step / x < 1e-8):
            break
    return x


def variance_prior(variances: np.ndarray, df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (a family of variants): the empirical-Bayes prior of the variants' seed variances,
    (prior df d0, prior variance s0²), by limma's moment estimator on the log variances (Smyth
    2004, ``fitFDist``). d0 is 0 where the variances spread no less than sampling alone would make
    them (no common variance to borrow), inf where they spread less. Zero variances (seeds tied by a
    coarse metric) are floored at 1e-5 of the row's median, as limma does."""
    from scipy.special import digamma, polygamma
    variances = np.asarray(variances, dtype=float)
    df = np.broadcast_to(np.asarray(df, dtype=float), variances.shape)
    median = np.median(variances, axis=1, keepdims=True)
    usable = median[:, 0] > 0
    z = np.log(np.maximum(variances, 1e-5 * np.where(median > 0, median, 1.0)))
    e = z - digamma(df / 2) + np.log(df / 2)
    mean = e.mean(axis=1)
    excess = e.var(axis=1, ddof=1) - polygamma(1, df / 2).mean(axis=1)
    d0 = np.full(len(variances), np.inf)
    d0[excess > 0] = 2 * trigamma_inverse(excess[excess > 0])
    d0 = np.where(usable, d0, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s0 = np.where(np.isfinite(d0) & (d0 > 0), np.exp(mean + digamma(d0 / 2) - np.log(d0 / 2)), np.exp(mean))
    return d0, s0


# Shrink the variants' variances toward a common one only where the spreads support at least this
# many prior degrees of freedom; below it, each variant keeps its own (Welch). Chosen by simulation
# (seqbench.calibration): at 2 the family-wise error with equal spreads reached 5.7% at 3 seeds, at
# 3 it stays under 5% in every cell; the committed IMDB runs give inf, TREC's 2.8.
MIN_PRIOR_DF = 3.0
RANGE_DF_GRID = (2, 3, 4, 6, 8, 12, 20, 40, 120, np.inf)


@functools.lru_cache(maxsize=None)
def _range_quantiles(means: int, level: float) -> np.ndarray:
    """Studentized range quantiles (scipy) at RANGE_DF_GRID, divided by √2 (the scale of a t)."""
    return np.array([stats.studentized_range.ppf(level, means, df) for df in RANGE_DF_GRID]) / math.sqrt(2)


def range_critical(means: int, level: float, df: np.ndarray) -> np.ndarray:
    """The t a pair needs for the range of ``means`` means to exceed its ``level`` quantile:
    q(level, means, df) / √2, interpolated in 1/df between exact quantiles (the df of a moderated
    Welch pair is not a whole number)."""
    grid = 1 / np.array(RANGE_DF_GRID, dtype=float)
    return np.interp(1 / np.maximum(np.asarray(df, dtype=float), 2), grid[::-1],
                     _range_quantiles(means, round(level, 12))[::-1])


def welsch_level(size: int, means: int, alpha: float) -> float:
    """Ryan-Einot-Gabriel-Welsch level of a range over ``size`` of ``means`` means."""
    return alpha if size >= means - 1 else 1 - (1 - alpha) ** (size / means)


def separations(means: np.ndarray, variances: np.ndarray, counts: np.ndarray, alpha: float = ALPHA,
                intervals: bool = True, family: list[tuple[int, int]] | None = None) -> dict:
    """The verdict's rule, on rows of families at once (families x variants; each variant's mean,
    seed variance and seed count on the test's scale). Every pair (i, j), i < j:

    - The variances are shrunk toward a common one by empirical Bayes (limma's moderated t, Smyth
      2004; a pair's df capped at what the family's seeds hold) where the spreads support at least
      ``MIN_PRIOR_DF`` prior df, and the pairs are then decided by the Ryan-Einot-Gabriel-Welsch
      step-down on ranges (Tukey-Kramer on the moderated standard errors, Welsch's levels): a pair is
      separated when it and every range of means around it (in order of the mean) are.
    - Otherwise each variant keeps its own variance: Welch's t-test and Holm over every pair.

    ``family``: only these pairs (the user's question); they are then decided by Holm alone, and
    only their variants enter the shrinkage. Returns arrays (families x pairs): difference, t, df,
    p (two-sided, unadjusted), separated, low/high (the interval at the level of the step that
    decided the pair; a pair not separated has its interval widened to reach zero, as in Hsu's
    constrained intervals), and per family ``moderated`` and ``prior_df``."""
    means, variances, counts = (np.atleast_2d(np.asarray(a, dtype=float)) for a in (means, variances, counts))
    rows, k = means.shape
    pairs = family if family is not None else list(combinations(range(k), 2))
    first, second = (np.array([p[n] for p in pairs], dtype=int) for n in (0, 1))
    involved = sorted({v for p in pairs for v in p})
    df = counts - 1
    d0, s0 = (variance_prior(variances[:, involved], df[:, involved]) if len(involved) >= 3
              else (np.zeros(rows), np.ones(rows)))
    room = df[:, involved].sum(axis=1) - 2 * df[:, involved].max(axis=1)   # a pair's own df come off the family's
    d0 = np.minimum(d0, np.maximum(room, 0))
    moderated = d0 >= MIN_PRIOR_DF
    prior = np.where(moderated, d0, 0.0)[:, None]
    posterior = np.where(moderated[:, None], (prior * s0[:, None] + df * variances) / (prior + df), variances)
    own_df = df + prior
    share = posterior / counts
    a, b = share[:, first], share[:, second]
    difference = means[:, first] - means[:, second]
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(a + b)
        pair_df = (a + b) ** 2 / (a ** 2 / own_df[:, first] + b ** 2 / own_df[:, second])
        pair_df = np.where(moderated[:, None], np.minimum(pair_df, prior + df[:, first] + df[:, second]), pair_df)
        t = difference / se
        p = 2 * stats.t.sf(np.abs(t), pair_df)
    # No spread in either variant: no variance to test against. Seeds tied by a coarse metric do this
    # by chance; never separated.
    flat = (variances[:, first] == 0) & (variances[:, second] == 0) & ~moderated[:, None]
    p = np.where(flat | ~np.isfinite(p), 1.0, p)
    reject, level = holm_rows(p, alpha)
    with np.errstate(invalid="ignore"):
        critical = stats.t.isf(level / 2, pair_df)
    stepdown = moderated & (family is None)
    if stepdown.any():
        order = np.argsort(-means, axis=1, kind="stable")
        position = np.argsort(order, axis=1)
        low_pos = np.minimum(position[:, first], position[:, second])
        high_pos = np.maximum(position[:, first], position[:, second])
        size = high_pos - low_pos + 1
        range_crit = np.empty_like(t)
        for s in range(2, k + 1):
            where = size == s
            if where.any():
                range_crit[where] = range_critical(s, 1 - welsch_level(s, k, alpha), pair_df[where])
        raw = np.abs(t) > range_crit
        table = np.zeros((rows, k, k), dtype=bool)
        table[np.arange(rows)[:, None], low_pos, high_pos] = raw
        closed = table.copy()   # a range is rejected only when every range around it is
        for lo in range(k):
            for hi in range(k - 1, lo, -1):
                if lo > 0:
                    closed[:, lo, hi] &= closed[:, lo - 1, hi]
                if hi < k - 1:
                    closed[:, lo, hi] &= closed[:, lo, hi + 1]
        decided = closed[np.arange(rows)[:, None], low_pos, high_pos]
        reject = np.where(stepdown[:, None], decided, reject)
        critical = np.where(stepdown[:, None], range_crit, critical)
    out = {"pairs": pairs, "difference": difference, "t": t, "df": pair_df, "se": se, "p": p,
           "separated": reject, "critical": critical, "moderated": moderated, "prior_df": d0,
           "stepdown": stepdown}
    if intervals:
        half = np.where(flat, np.inf, critical * se)
        low, high = difference - half, difference + half
        low = np.where(reject, low, np.minimum(low, 0.0))    # not separated: the interval reaches zero
        high = np.where(reject, high, np.maximum(high, 0.0))
        out.update(low=low, high=high)
        # the adjusted p: Holm's, or, for the step-down, single-step Tukey-Kramer's (never smaller)
        adjusted = np.array([holm(row, alpha)[1] for row in p]) if len(pairs) else p
        if stepdown.any():
            with np.errstate(invalid="ignore"):
                tukey = stats.studentized_range.sf(np.abs(t) * math.sqrt(2), k, np.maximum(pair_df, 1))
            adjusted = np.where(stepdown[:, None], np.where(flat, 1.0, tukey), adjusted)
        out["p_adjusted"] = adjusted
    return out


def compact_letters(order: list[str], separated: set[frozenset]) -> dict[str, str]:
    """A compact letter display (Piepho 2004, insert-absorb): variants that share a letter are not
    separated, variants that are share none. ``order`` (best first) decides which group gets "a"."""
    columns = [set(order)]
    for pair in sorted(separated, key=lambda p: sorted(order.index(v) for v in p)):
        x, y = sorted(pair, key=order.index)
        split = []
        for column in columns:   # insert: a column holding both splits in two
            split += [column - {x}, column - {y}] if x in column and y in column else [column]
        # absorb: a column inside another (or equal to an earlier one) says nothing more
        columns = [c for k, c in enumerate(split)
                   if c and not any(c < o or (c == o and n < k) for n, o in enumerate(split) if n != k)]
    columns.sort(key=lambda c: sorted(order.index(v) for v in c))
    names = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    letter = [names[k] if k < len(names) else f"<{k}>" for k in range(len(columns))]
    return {v: "".join(letter[k] for k, c in enumerate(columns) if v in c) for v in order}
