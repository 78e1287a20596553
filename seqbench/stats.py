"""Is a difference real, and does it matter? Comparisons of variants with training runs as the
unit, groups of variants that cannot be told apart, and, apart from them, the comparison
conditional on the trained networks; ranks across data sets.

Seed level (the verdict's test). Each training run (seed) gives one score, its test metric, on the
log scale for positive error measures (MSE, cross-entropy: they spread in proportion to their size,
and a difference is then a ratio). The rule (``separations``): the variants' seed variances are
shrunk toward a common one by empirical Bayes (the moderated t of limma, Smyth 2004, with its
moment estimator of the prior), but only where the spreads support a prior of at least
``MIN_PRIOR_DF`` degrees of freedom; every pair is then decided by the Ryan-Einot-Gabriel-Welsch
step-down over ranges of means (Tukey-Kramer on the moderated standard errors), so the best group
is a run of the order. Where the spreads are too unequal to share, each variant keeps its own
variance: Welch's t-test on every pair and Holm's step-down (statsmodels). All pairs, not only
pairs with the best: the "best" is itself chosen from the same noisy means, so tests against it
alone would not hold their level. ``seqbench calibrate`` measures the family-wise error with equal
and unequal spreads at 3, 5 and 8 seeds, and the power. With ``compare`` (the user's pairs) the
family is those pairs alone, Holm over them, and nothing about another variant enters.

Each pair's interval is at the critical value of the step that decided it, so it excludes zero
exactly when the pair is separated; a pair not separated has it widened to reach zero.

Groups: a compact letter display (Piepho 2004, insert-absorb): variants that share a letter are
not separated. A region of practical equivalence (ROPE; 0.5 points of accuracy, 10% of an error
by default) says when a difference does not matter: a pair whose whole interval lies inside it is
"practically equivalent". A data set on which every run's error is below 1% of the
learn-nothing baseline's is "saturated": every variant solves it.

Beside the verdict, the exact permutation test over seeds (scipy; its smallest p,
2 / C(n_a + n_b, n_a), is printed, and below 5 + 5 seeds it cannot reach 0.05 at all) and Almost
Stochastic Order (Dror et al. 2019, ``deepsig``): eps_min < 0.5 says A tends to be better.

Conditional level (its own section, never the verdict). Scores averaged over each variant's
seeds, per example; a paired bootstrap over test examples (BCa) and a paired permutation test, or,
above 5,000 test examples, the paired t-test; Holm-adjusted. These describe the test set's
sampling only, for these very trained networks.

Across data sets: average ranks of each variant's mean per data set (1 = best whatever the
metric's direction), with a bootstrap over seeds for their uncertainty; Friedman's test and the
Nemenyi critical difference (Demšar 2006) only with at least five data sets.
"""
from __future__ import annotations

import functools
import gc
import math
from dataclasses import dataclass, field
from itertools import combinations
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .tasks import PERCENT_METRICS, POSITIVE_METRICS, TASKS, TaskKind

ALPHA = 0.05
MIN_SEEDS = 2                 # per variant, for a seed-level test (Welch needs a spread)
MIN_DATASETS_FOR_FRIEDMAN = 5
SATURATION_SHARE = 0.01       # every run's error below 1% of the learn-nothing baseline's: saturated
OUTLIER_ROBUST_SDS = 3.0
MIN_SEEDS_FOR_OUTLIERS = 3
MAX_SEEDS_NEEDED = 10_000     # beyond this a power analysis says "more than"


def default_rope(metric: str) -> float:
    """Half-width of the region of practical equivalence on the test's scale: 0.5 points of a
    percent metric, a 10% ratio (log 1.1) of a positive error, else 0 (none)."""
    if metric in PERCENT_METRICS:
        return 0.005
    if metric in POSITIVE_METRICS:
        return math.log(1.1)
    return 0.0


def rope_words(metric: str, rope: float, scale: str) -> str:
    if scale == "log":
        return f"±{100 * (math.exp(rope) - 1):.3g}% of the error"
    if metric in PERCENT_METRICS:
        return f"±{100 * rope:.3g} points"
    return f"±{rope:.3g}"


def test_scale(task: TaskKind, values) -> str:
    """"log" for a positive error measure whose every value is above 0, else "raw"."""
    values = np.asarray(list(values), dtype=float)
    return "log" if task.metric in POSITIVE_METRICS and len(values) and (values > 0).all() else "raw"


def example_scores(predictions: pd.DataFrame, task: TaskKind | str) -> pd.Series:
    """index -> the per-example score of one run, in the task's primary metric's units."""
    task = TASKS[task] if isinstance(task, str) else task
    frame = predictions.set_index("index")
    column = task.example_score
    if column == "correct":
        return (frame["predicted"] == frame["target"]).astype(float)
    if column == "squared_error" and "squared_error" not in frame:
        return (frame["prediction"] - frame["target"]) ** 2
    if column not in frame:
        raise KeyError(f"predictions have no {column!r} column (written by an older seqbench)")
    return frame[column].astype(float)




# ----------------------------------------------------------------------------- seed level
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


@dataclass
class SeedPair:
    """A minus B on the test's scale: accuracy as a fraction (A better: positive), an error on the
    log scale as the log of the ratio of geometric means (A errs less: negative). A is the one
    with the better mean."""
    a: str
    b: str
    n_a: int
    n_b: int
    difference: float
    low: float               # interval at ``confidence``: the level of the step that decided the pair
    high: float
    confidence: float
    p: float                 # the pair's t-test (moderated or Welch), unadjusted
    p_adjusted: float        # Holm's, or single-step Tukey-Kramer's beside the step-down (never smaller)
    separated: bool          # the rule separates them (the interval excludes zero)
    equivalent: bool         # the whole interval inside the region of practical equivalence
    sd_a: float
    sd_b: float
    permutation_p: float = math.nan
    permutation_floor: float = math.nan
    aso_eps: float = math.nan


@dataclass
class SeedLevel:
    """One test set's seed-level comparison: every variant with its scores, the tested ones in
    order (best mean first), every pair of them, and the groups."""
    task: TaskKind
    scale: str                        # "log" or "raw"
    alpha: float
    rope: float                       # half-width on the test's scale; 0: none
    scores: dict[str, dict]           # variant -> {seed: test metric}
    order: list[str]
    means: dict[str, float]           # in the metric's units (geometric mean on the log scale)
    pairs: list[SeedPair]
    letters: dict[str, str]
    untested: dict[str, int] = field(default_factory=dict)   # variant -> its seeds (< MIN_SEEDS)
    moderated: bool = False           # variances shrunk toward a common one (the spreads support it)
    prior_df: float = 0.0             # the empirical-Bayes prior's df, as estimated (0: none)
    family: list[tuple[str, str]] | None = None   # the user's pairs (--compare); None: every pair

    @property
    def rule_words(self) -> str:
        """Which rule decided, in words."""
        if self.family is not None:
            return (f"the {len(self.family)} named pair{'s' if len(self.family) != 1 else ''} (--compare) as the "
                    f"family, " + ("moderated t" if self.moderated else "Welch's t") + ", Holm")
        if self.moderated:
            return "moderated t (variances shrunk toward a common one), REGW step-down over ranges"
        return "Welch's t (spreads too unequal to share), Holm over every pair"

    @property
    def best_group(self) -> list[str]:
        """The top by mean and every variant not separated from it, in order of the mean. Under the
        step-down this is a run of the order (a range is separated only with every range around it);
        under Welch a variant whose seeds spread widely can stay in it below one that is out."""
        if not self.order or self.family is not None:
            return []
        return [v for k, v in enumerate(self.order) if not k or not self.pair(self.order[0], v).separated]

    def pair(self, x: str, y: str) -> SeedPair | None:
        return next((p for p in self.pairs if {p.a, p.b} == {x, y}), None)

    def transformed(self, variant: str) -> np.ndarray:
        values = np.array(list(self.scores[variant].values()), dtype=float)
        return np.log(values) if self.scale == "log" else values

    @property
    def seeds_words(self) -> str:
        counts = sorted({len(v) for v in self.scores.values()})
        if len(counts) == 1:
            return f"{counts[0]} seed{'s' if counts[0] != 1 else ''} each"
        return f"{counts[0]}-{counts[-1]} seeds"


def seed_level(scores: dict[str, dict], task: TaskKind | str, alpha: float = ALPHA, rope: float | None = None,
               aso: bool = True, seed: int = 0, compare: list[tuple[str, str]] | None = None) -> SeedLevel:
    """scores: variant -> {seed: test metric} (finite values; what is left out is the caller's to
    name). The verdict's rule (``separations``) over every pair of the variants with at least
    ``MIN_SEEDS`` seeds, or, with ``compare``, over those pairs alone (nothing about another
    variant enters); the exact permutation test and ASO beside it, and the groups."""
    task = TASKS[task] if isinstance(task, str) else task
    scores = {v: {s: float(x) for s, x in by_seed.items() if x is not None and math.isfinite(x)}
              for v, by_seed in scores.items()}
    if compare is not None:
        named = {v for pair in compare for v in pair}
        scores = {v: by_seed for v, by_seed in scores.items() if v in named}
    scale = test_scale(task, [x for by_seed in scores.values() for x in by_seed.values()])
    rope = default_rope(task.metric) if rope is None else rope
    level = SeedLevel(task, scale, alpha, rope, scores, [], {}, [], {}, family=compare)
    sign = 1.0 if task.higher_is_better else -1.0
    tested = {v: level.transformed(v) for v in scores if len(scores[v]) >= MIN_SEEDS}
    level.untested = {v: len(scores[v]) for v in scores if v not in tested}
    level.order = sorted(tested, key=lambda v: (-sign * tested[v].mean(), v))
    for v in scores:
        values = level.transformed(v)
        level.means[v] = (float(np.exp(values.mean())) if scale == "log" else float(values.mean())) if len(values) \
            else math.nan
    if len(level.order) < 2:
        return level
    family = None
    if compare is not None:
        family = [tuple(sorted((level.order.index(x), level.order.index(y)))) for x, y in compare
                  if x in tested and y in tested]
    values = [tested[v] for v in level.order]
    result = separations([[x.mean() for x in values]], [[x.var(ddof=1) for x in values]], [[len(x) for x in values]],
                         alpha, family=family)
    level.moderated, level.prior_df = bool(result["moderated"][0]), float(result["prior_df"][0])
    for k, (i, j) in enumerate(result["pairs"]):
        a, b = level.order[i], level.order[j]
        low, high = float(result["low"][0, k]), float(result["high"][0, k])
        confidence = float(1 - 2 * stats.t.sf(result["critical"][0, k], result["df"][0, k]))
        pair = SeedPair(a, b, len(tested[a]), len(tested[b]), float(result["difference"][0, k]), low, high,
                        confidence, float(result["p"][0, k]), float(result["p_adjusted"][0, k]),
                        bool(result["separated"][0, k]), bool(rope > 0 and -rope <= low and high <= rope),
                        float(np.std(tested[a], ddof=1)), float(np.std(tested[b], ddof=1)))
        pair.permutation_p, pair.permutation_floor = exact_permutation_p(tested[a], tested[b], seed=seed + k)
        if aso:
            pair.aso_eps = aso_epsilon(tested[a], tested[b], task.higher_is_better, len(result["pairs"]),
                                         seed=seed + k)
        level.pairs.append(pair)
    level.letters = compact_letters(level.order, {frozenset((p.a, p.b)) for p in level.pairs if p.separated})
    return level


def exact_permutation_p(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 9999) -> tuple[float, float]:
    """(p, smallest possible p) of a two-sided permutation test of the difference of means of
    per-seed scores, exact (every relabelling) when there are at most 10,000 of them; (nan, nan)
    below two seeds a side."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    arrangements = comb(len(a) + len(b), len(a))
    result = stats.permutation_test((a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                    permutation_type="independent", alternative="two-sided", vectorized=True,
                                    n_resamples=resamples if arrangements > 10_000 else np.inf,
                                    random_state=np.random.default_rng(seed))
    return float(result.pvalue), float(2 / arrangements if arrangements <= 10_000 else 2 / (resamples + 1))


def permutation_floor_words(level: SeedLevel) -> str:
    """Where the exact permutation test cannot reach significance at these seed counts: its floor
    above alpha, or above Holm's first threshold (alpha / pairs)."""
    first = level.alpha / max(1, len(level.pairs))
    sizes = sorted({tuple(sorted((p.n_a, p.n_b))) for p in level.pairs if p.permutation_floor > first})
    never = [f"{a} vs {b} seeds (floor {2 / comb(a + b, a):.2g})" for a, b in sizes
             if 2 / comb(a + b, a) > level.alpha]
    holm_only = [f"{a} vs {b} seeds (floor {2 / comb(a + b, a):.2g})" for a, b in sizes
                 if 2 / comb(a + b, a) <= level.alpha]
    floors = sorted({(tuple(sorted((p.n_a, p.n_b))), p.permutation_floor) for p in level.pairs
                     if math.isfinite(p.permutation_floor)})
    words = ["The exact permutation test's floor (its smallest possible p): "
             + ", ".join(f"{floor:.2g} at {a} vs {b} seeds" for (a, b), floor in floors) + "."] if floors else []
    if never:
        words.append(f"At {', '.join(never)} the exact permutation test cannot reach {level.alpha:g} whatever the "
                     f"scores.")
    if holm_only:
        words.append(f"At {', '.join(holm_only)} it cannot pass Holm's first threshold over {len(level.pairs)} "
                     f"pairs ({first:.2g}).")
    return " ".join(words)


def aso_epsilon(a: np.ndarray, b: np.ndarray, higher_is_better: bool, comparisons: int = 1,
                seed: int = 0, iterations: int = 200) -> float:
    """Almost Stochastic Order (deepsig's, on whole arrays: ``seqbench.aso``): eps_min of "A is better
    than B" over per-seed scores."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    from .aso import aso
    sign = 1.0 if higher_is_better else -1.0
    return aso(sign * np.asarray(a, dtype=float), sign * np.asarray(b, dtype=float), confidence_level=0.95,
               num_comparisons=max(1, comparisons), num_bootstrap_iterations=iterations, seed=seed)


def far_seeds(level: SeedLevel, floors: dict[str, float] | None = None) -> list[tuple[str, object, float, float]]:
    """(variant, seed, score, robust z) for a seed more than ``OUTLIER_ROBUST_SDS`` robust sds from
    its variant's median, on the test's scale. The robust sd is the variant's MAD x 1.4826, never
    below a floor (two seeds that happen to agree would make any third look far): ``floors[v]``, the
    sampling sd of the variant's own score on this test set (``test_set_sd``), so that a run's flag
    does not move with the other models in the report; else the median of the variants' MADs.
    A pointer to look at, not a test: with normal seeds it names one in ~15% of variants at 3 seeds,
    ~9% at 5, ~6% at 8 (with the median floor)."""
    spreads = {v: float(stats.median_abs_deviation(level.transformed(v), scale="normal"))
               for v in level.scores if len(level.scores[v]) >= MIN_SEEDS_FOR_OUTLIERS}
    if not spreads:
        return []
    median_floor = float(np.median(list(spreads.values())))
    out = []
    for v, spread in spreads.items():
        floor = (floors or {}).get(v)
        robust = max(spread, median_floor if floor is None or not math.isfinite(floor) else floor)
        values = level.transformed(v)
        centre = float(np.median(values))
        for (s, raw), x in zip(level.scores[v].items(), values):
            if robust > 0 and abs(x - centre) > OUTLIER_ROBUST_SDS * robust:
                out.append((v, s, raw, (x - centre) / robust))
    return out


def test_set_sd(examples: "pd.DataFrame", log_scale: bool) -> float:
    """The sampling sd of a score that is the mean of per-example scores (examples x seeds), from
    the test set alone: per seed sd(example scores) / sqrt(n), the median over seeds; on the log
    scale (errors) relative to the mean (delta method). NaN where it cannot be had."""
    values = []
    for seed in examples.columns:
        column = examples[seed].dropna().to_numpy(dtype=float)
        if len(column) < 2:
            continue
        sd = float(np.std(column, ddof=1)) / math.sqrt(len(column))
        mean = float(np.mean(column))
        values.append(sd / mean if log_scale and mean > 0 else (math.nan if log_scale else sd))
    return float(np.median(values)) if values else math.nan


SIMULATED_POWER_MAX_SEEDS = 30     # up to here power is simulated; above, the noncentral t is exact enough
POWER_DRAWS = 20_000


def welch_power(sd_a: float, sd_b: float, n, difference: float, alpha: float = ALPHA, seed: int = 0) -> np.ndarray:
    """Power of the two-sided Welch t-test at ``alpha`` with ``n`` seeds per variant (a number or an
    array) to separate a true ``difference`` between normal variants whose seed sds are sd_a and
    sd_b. Up to ``SIMULATED_POWER_MAX_SEEDS`` seeds by simulation (each variant's mean and variance
    drawn from their exact distributions; the noncentral t at the Welch df overstates the power at 2
    seeds by a third), above by the noncentral t (scipy). Never a large-sample bound."""
    n = np.atleast_1d(np.asarray(n, dtype=float))
    a, b = sd_a ** 2 / n, sd_b ** 2 / n
    df = (a + b) ** 2 / ((a ** 2 + b ** 2) / (n - 1))
    noncentrality = abs(difference) / np.sqrt(a + b)
    critical = stats.t.isf(alpha / 2, df)
    with np.errstate(invalid="ignore"):
        power = stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    # scipy's noncentral t gives nan far out in its tail, where the power is 1 to every digit shown
    power = np.where(np.isnan(power) & (noncentrality > critical), 1.0, power)
    for k in np.flatnonzero(n <= SIMULATED_POWER_MAX_SEEDS):
        m = int(n[k])
        rng = np.random.default_rng([seed, m])   # the same draws for n whichever array it comes in
        shift = abs(difference) + rng.standard_normal(POWER_DRAWS) * math.sqrt(a[k] + b[k])
        var_a = sd_a ** 2 * rng.chisquare(m - 1, POWER_DRAWS) / (m - 1) / m
        var_b = sd_b ** 2 * rng.chisquare(m - 1, POWER_DRAWS) / (m - 1) / m
        welch_df = (var_a + var_b) ** 2 / ((var_a ** 2 + var_b ** 2) / (m - 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            power[k] = np.mean(2 * stats.t.sf(np.abs(shift / np.sqrt(var_a + var_b)), welch_df) <= alpha)
    return power


def seeds_needed(sd_a: float, sd_b: float, n: int, difference: float, alpha: float = ALPHA,
                 power: float = 0.8) -> dict:
    """From two variants' seed sds: the smallest difference ``n`` seeds per variant detect with the
    given power, and the seeds per variant ``difference`` needs (the smallest n whose Welch power
    reaches it, searched over every n up to ``MAX_SEEDS_NEEDED``; beyond it, MAX_SEEDS_NEEDED + 1)."""
    seed_sd = math.sqrt((sd_a ** 2 + sd_b ** 2) / 2)
    out = {"seed_sd": seed_sd, "n": n, "difference": difference, "alpha": alpha, "detectable_now": math.nan,
           "seeds_for_difference": math.nan}
    if not (seed_sd > 0) or not math.isfinite(seed_sd):
        return out
    if n >= 2:
        from scipy.optimize import brentq
        out["detectable_now"] = float(brentq(lambda d: float(welch_power(sd_a, sd_b, n, d, alpha)[0]) - power,
                                             1e-6 * seed_sd, 1e3 * seed_sd, xtol=1e-4 * seed_sd))
    if difference > 0:
        counts = np.arange(2, MAX_SEEDS_NEEDED + 1)
        enough = np.flatnonzero(welch_power(sd_a, sd_b, counts, difference, alpha) >= power)
        out["seeds_for_difference"] = int(counts[enough[0]]) if len(enough) else MAX_SEEDS_NEEDED + 1
    return out


def undecided_pairs(level: SeedLevel) -> list[SeedPair]:
    """What the verdict leaves open: the top against every other member of the best group, or,
    for the user's own pairs, each one not separated; the closest (smallest p) first."""
    if level.family is not None:
        found = [p for p in level.pairs if not p.separated]
    else:
        found = [level.pair(level.order[0], v) for v in level.best_group[1:]]
    return sorted(found, key=lambda p: (p.p, p.a, p.b))


def test_set_se(level: SeedLevel, pair: SeedPair, examples: int) -> float:
    """What one run's test-set sampling alone puts on A − B: the binomial standard errors of the two
    variants' accuracies on ``examples`` test examples, combined (nan for other metrics or no
    count). Beside the seeds' own standard error it says whether more seeds can help at all."""
    if level.task.metric not in PERCENT_METRICS or level.scale != "raw" or not examples:
        return math.nan
    a, b = level.means[pair.a], level.means[pair.b]
    return math.sqrt((a * (1 - a) + b * (1 - b)) / examples)


def pair_power(level: SeedLevel, pair: SeedPair, power: float = 0.8) -> dict:
    """Seeds per variant that this pair's observed difference needs, from its own two variants'
    seed sds, at the alpha of the verdict's strictest step: alpha / (number of pairs) (Holm's
    first; the step-down's steps are never stricter), so the count is on the safe side."""
    return seeds_needed(pair.sd_a, pair.sd_b, min(pair.n_a, pair.n_b), abs(pair.difference),
                        level.alpha / max(1, len(level.pairs)), power)


def saturation(task: TaskKind, values, baseline: float | None) -> str | None:
    """Words when every run's error is below ``SATURATION_SHARE`` of the learn-nothing baseline's
    (for accuracy: error rate against the majority class's), else None."""
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if baseline is None or not len(values) or not math.isfinite(baseline):
        return None
    if task.metric in PERCENT_METRICS and task.higher_is_better:
        errors, reference, what = 1 - values, 1 - baseline, "error rate"
    elif task.metric in POSITIVE_METRICS and not task.higher_is_better:
        errors, reference, what = values, baseline, task.metric.upper() if task.metric == "mse" else task.metric
    else:
        return None
    if reference <= 0 or errors.max() >= SATURATION_SHARE * reference:
        return None
    return (f"saturated, every variant solves it (every run's {what} ≤ {errors.max():.2g}, under "
            f"{100 * SATURATION_SHARE:g}% of the learn-nothing baseline's {reference:.2g})")


# ------------------------------------------------------------------- conditional on the networks
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


# ------------------------------------------------------------------------- across data sets
def rank_bootstrap(per_seed: dict[str, dict[str, np.ndarray]], higher_is_better: dict[str, bool],
                   resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """per_seed: data set -> variant -> seed scores on the test's scale (the variants every data
    set has). Average rank (1 = best) of the means, and its 95% percentile interval from
    resampling each variant's seeds with replacement on every data set."""
    rng = np.random.default_rng(seed)
    variants = sorted(set.intersection(*(set(v) for v in per_seed.values())))
    observed = np.zeros(len(variants))
    draws = np.zeros((resamples, len(variants)))
    for data, by_variant in per_seed.items():
        sign = 1.0 if higher_is_better.get(data, True) else -1.0
        observed += stats.rankdata([-sign * np.mean(by_variant[v]) for v in variants])
        means = np.column_stack([rng.choice(np.asarray(by_variant[v], dtype=float),
                                            size=(resamples, len(by_variant[v]))).mean(axis=1) for v in variants])
        draws += stats.rankdata(-sign * means, axis=1)
    n = len(per_seed)
    low, high = np.quantile(draws / n, [0.025, 0.975], axis=0)
    frame = pd.DataFrame({"variant": variants, "average_rank": observed / n, "low": low, "high": high})
    return frame.sort_values(["average_rank", "variant"]).reset_index(drop=True)


def friedman(means: pd.DataFrame, higher_is_better: dict[str, bool] | None = None) -> dict:
    """means: data sets x variants (mean test metric). Ranks per data set (1 = best), and with at
    least ``MIN_DATASETS_FOR_FRIEDMAN`` data sets Friedman's chi-square and p (scipy) on the
    *oriented* scores (an error measure counts lower as better) and the Nemenyi critical difference
    at 0.05. With fewer data sets, ranks alone (description, not a test)."""
    means = means.dropna(axis=1, how="any")
    higher_is_better = higher_is_better or {}
    oriented = means.apply(lambda row: row if higher_is_better.get(row.name, True) else -row, axis=1)
    ranks = oriented.rank(axis=1, ascending=False)
    k, n = means.shape[1], means.shape[0]
    out = {"variants": list(means.columns), "datasets": list(means.index), "ranks": ranks, "oriented": oriented,
           "average_ranks": ranks.mean().sort_values(), "k": k, "n": n}
    if k >= 3 and n >= MIN_DATASETS_FOR_FRIEDMAN:
        statistic, p = stats.friedmanchisquare(*[oriented[c].to_numpy() for c in oriented.columns])
        q = stats.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2)
        out.update(statistic=float(statistic), p=float(p), critical_difference=q * math.sqrt(k * (k + 1) / (6 * n)))
    return out


def cd_diagram(result: dict, path: Path, title: str) -> Path:
    """Average ranks on one axis; variants joined by a bar do not differ by the critical difference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ranks = result["average_ranks"]
    k = result["k"]
    cd = result.get("critical_difference")
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.32 * k))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-(len(ranks) + 2), 2)
    ax.hlines(0, 1, k, color="black")
    for r in range(1, k + 1):
        ax.vlines(r, -0.1, 0.1, color="black")
        ax.text(r, 0.35, str(r), ha="center", fontsize=8)
    for i, (name, rank) in enumerate(ranks.items()):
        y = -(i + 1)
        ax.plot([rank, rank], [0, y], color="#555555", linewidth=0.8)
        ax.text(rank + 0.05, y, f"{name} ({rank:.2f})", va="center", fontsize=8)
    if cd is not None and not math.isnan(cd):
        ax.hlines(1.2, 1, 1 + cd, color="#b22222", linewidth=2)
        ax.text(1 + cd / 2, 1.45, f"CD = {cd:.2f}", ha="center", fontsize=8, color="#b22222")
        values = list(ranks.values)
        groups = []
        for i in range(len(values)):
            j = max(j for j in range(i, len(values)) if values[j] - values[i] < cd)
            if j > i and not any(g[0] <= i and g[1] >= j for g in groups):
                groups.append((i, j))
        for depth, (i, j) in enumerate(groups):
            y = -0.5 - 0.25 * depth
            ax.hlines(y, values[i] - 0.05, values[j] + 0.05, color="#1f4e8c", linewidth=3)
    ax.axis("off")
    p = result.get("p")
    subtitle = f"Friedman p = {p:.3g} over {result['n']} data sets" if p is not None and not math.isnan(p) else ""
    ax.set_title(f"{title}\naverage rank (1 = best); {subtitle}; bars: no difference beyond the CD", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------- in words
def format_p(p: float, floor: float) -> str:
    """A p-value as printed: "≤ floor" where resampling cannot resolve a smaller one."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    if floor and p <= floor:
        return f"≤ {floor:.2g}"
    if p < 1e-16:  # beyond double precision's resolution near 1: the digits would mean nothing
        return "< 1e-16"
    return f"{p:.2g}"


def p_words(p: float, floor: float) -> str:
    """``p = 0.03`` or ``p ≤ 0.002``, for sentences."""
    text = format_p(p, floor)
    return f"p {text}" if text[0] in "≤<" else f"p = {text}"


def resolution(task: TaskKind, examples: int) -> str:
    """What one test example is worth in the metric, the finest difference the test set resolves."""
    if task.metric == "acc" and examples:
        return f"one test example is {100 / examples:.2g} points of accuracy ({examples} examples)"
    return f"{examples} test examples"


def difference_words(level: SeedLevel, value: float) -> str:
    """A difference on the test's scale in the metric's words: points, a ratio, or the metric."""
    if not math.isfinite(value):   # the unbounded interval of a pair with no spread
        return "–∞" if value < 0 else "+∞"
    if level.scale == "log":
        return f"×{math.exp(value):.3g}"
    if level.task.metric in PERCENT_METRICS:
        return f"{100 * value:+.1f}"
    return f"{value:+.2e}"


VERDICT_LIMIT = 600


def group_words(level: SeedLevel) -> str:
    """``x a, y a > z b``: tested variants best first with their letters (the all-pairs view of the
    details); ">" only where no letter crosses."""
    parts = []
    for k, v in enumerate(level.order):
        if k:
            before = set("".join(level.letters[u] for u in level.order[:k]))
            after = set("".join(level.letters[u] for u in level.order[k:]))
            parts.append(" > " if not before & after else ", ")
        parts.append(f"{v} {level.letters[v]}")
    return "".join(parts)


def gap_words(level: SeedLevel, pair: SeedPair, interval: bool = True) -> str:
    """B's gap to A with its interval, in the metric's words: ``lstm −3.3 [−4.5, −2.1]``."""
    gap = f"{pair.b} {difference_words(level, -pair.difference)}"
    if not interval:
        return gap
    return f"{gap} [{difference_words(level, -pair.high)}, {difference_words(level, -pair.low)}]"


def answer_words(level: SeedLevel, detail: int = 2) -> str:
    """The answer first: the best group (the top by mean and every variant not separated from it,
    down to the last), then each other variant's gap to the top with its interval; for the user's
    pairs, each pair's call. ``detail`` 2: gaps and intervals, 1: gaps, 0: names only."""
    if level.family is not None:
        return "; ".join(f"{p.a} vs {p.b} {difference_words(level, p.difference)}"
                         + (f" [{difference_words(level, p.low)}, {difference_words(level, p.high)}]" if detail > 1
                            else "") + (" separated" if p.separated else " not separated") for p in level.pairs)
    best = level.best_group
    top = level.order[0]
    behind = [level.pair(top, v) for v in level.order if v not in best]
    # a member below a separated variant is in the group only through its own wide spread: say so
    first_out = min((level.order.index(p.b) for p in behind), default=len(level.order))
    percent = level.task.metric in PERCENT_METRICS and level.scale == "raw"
    members = [f"{v} (wide: sd {100 * float(np.std(level.transformed(v), ddof=1)):.2g}{' points' if percent else ''})"
               if level.order.index(v) > first_out and percent else v for v in best]
    words = ("best: " + members[0] if len(best) == 1 else
             f"best group ({len(best)}, not separated from {top}): " + ", ".join(members))
    if behind:
        words += "; behind: " + (", ".join(gap_words(level, p, detail > 1) for p in behind) if detail else
                                 ", ".join(p.b for p in behind))
    return words


VERDICT_LIMIT = 600


def verdict_line(name: str, level: SeedLevel, saturated: str | None = None, left_out: int = 0,
                 solved: dict[str, tuple[int, int]] | None = None, limit: int = VERDICT_LIMIT) -> str:
    """One line per data set, every variant named, at most ``limit`` characters: the best group
    and each other variant's gap to the top (with intervals as room allows), then practical
    equivalence and what was left out."""
    head = f"**{name}** ({level.seeds_words})"
    untested = [f"{v} not tested ({n} seed{'s' if n != 1 else ''})" for v, n in sorted(level.untested.items())]
    extras = []
    equivalent = [p for p in level.pairs if p.equivalent]
    if equivalent:
        words = rope_words(level.task.metric, level.rope, level.scale)
        extras.append(f"practically equivalent (within {words}): " + ", ".join(f"{p.a} ≈ {p.b}" for p in equivalent))
        extras.append(f"{len(equivalent)} pair{'s' if len(equivalent) != 1 else ''} practically equivalent "
                      f"(within {words})")
    if left_out:
        extras.append(f"{left_out} run{'s' if left_out != 1 else ''} left out (named below)")
    for detail in (2, 1, 0):
        if solved is not None and not any(k for k, _ in solved.values()):
            core = (f"{head}: no variant solved the task in any seed; not ranked: "
                    f"{', '.join(sorted(level.scores))}")
        elif not level.order:
            core = f"{head}: nothing to test: " + "; ".join(untested)
        else:
            core = f"{head}: " + (f"{saturated}; " if saturated else "") + answer_words(level, detail)
            if untested:
                core += "; " + "; ".join(untested)
        if len(core) + 1 <= limit:
            break
    line = core
    for extra in extras:
        if extra.endswith(")") and "≈" not in extra and any("≈" in e for e in line.split("; ")):
            continue   # the count only where the list did not fit
        if len(line) + len(extra) + 3 <= limit:
            line += "; " + extra
    return line + "."
