"""Is a difference real, and does it matter? Comparisons of variants with training runs as the
unit, groups of variants that cannot be told apart, and, apart from them, the comparison
conditional on the trained networks; ranks across data sets.

Seed level (the verdict's test). Each training run (seed) gives one score, its test metric. Two
variants are compared with Welch's t-test on their seed scores (scipy; unequal spreads allowed),
on the log scale for positive error measures (MSE, cross-entropy: they spread in proportion to
their size, and a difference is then a ratio). Every pair is tested and Holm's step-down
correction (statsmodels) holds the family-wise error at 5%. All pairs, not only pairs with the
best: the verdict is a grouping of every variant (which ones cannot be told apart), and the
"best" is itself chosen from the same noisy means, so tests against it alone would not hold their
level. Holm gives back much of the power that the larger family costs. Welch keeps its level at
2 or 3 seeds per variant (its price there is power); the simulation in ``seqbench.calibration``
measures the family-wise error at 3, 5 and 8 seeds.

Each pair's interval is its Welch interval at the level of the Holm step that decided it:
1 - alpha/k, with k the hypotheses still open at the step where the pair was rejected, or, for
a pair not rejected, at the step where Holm stopped. So an interval excludes zero exactly when
the pair is separated (the printed interval never disagrees with the adjusted p). These are not
simultaneous intervals; each is at least as wide as a plain 95% one for pairs not separated.

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

import gc
import math
import warnings
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
    walk is skipped, which makes the calibration's thousands of families 20 times faster."""
    gc.freeze()
    try:
        reject, adjusted, _, _ = multipletests(np.asarray(p, dtype=float), alpha=alpha, method="holm")
    finally:
        gc.unfreeze()
    return np.asarray(reject, dtype=bool), np.asarray(adjusted, dtype=float)


def holm_levels(p: np.ndarray, reject: np.ndarray, alpha: float) -> np.ndarray:
    """Per hypothesis, alpha/k for the Holm step that decided it: k hypotheses were still open
    where it was rejected, or where Holm stopped (for every one not rejected). An interval at
    1 - that level excludes zero exactly when Holm rejects (the step-down's own thresholds)."""
    m = len(p)
    levels = np.empty(m)
    stop = None
    for step, index in enumerate(np.argsort(p, kind="stable")):
        if stop is None and not reject[index]:
            stop = m - step
        levels[index] = alpha / (stop if stop is not None else m - step)
    return levels


def welch_holm(samples: list[np.ndarray], alpha: float = ALPHA, intervals: bool = True) -> dict:
    """Every pair (i, j), i < j, of ``samples`` (each variant's seed scores on the test's scale, at
    least two each): mean_i - mean_j, Welch's p (scipy), Holm's adjusted p and decision
    (statsmodels), and each pair's Welch interval at the level of the Holm step that decided it.
    The one rule the verdict, the groups, the figures and the calibration share."""
    pairs = list(combinations(range(len(samples)), 2))
    empty = np.array([])
    if not pairs:
        return {"pairs": [], "difference": empty, "p": empty, "p_holm": empty, "separated": empty.astype(bool),
                "level": empty, "low": empty, "high": empty}
    samples = [np.asarray(s, dtype=float) for s in samples]
    difference = np.array([samples[i].mean() - samples[j].mean() for i, j in pairs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-identical seeds: scipy warns, the p is right
        if len({len(s) for s in samples}) == 1:   # one call for every pair (the calibration's hot path)
            first, second = np.array(pairs).T
            stacked = np.stack(samples)
            p = np.asarray(stats.ttest_ind(stacked[first], stacked[second], axis=1, equal_var=False).pvalue)
        else:
            p = np.array([stats.ttest_ind(samples[i], samples[j], equal_var=False).pvalue for i, j in pairs])
    # No spread in either variant: Welch has no variance to test against (scipy says 0 or nan).
    # Seeds tied by a coarse metric (3 seeds of accuracy on 300 examples) do this by chance, and
    # calling such a pair separated lifted the family-wise error to 5.6%: never separated.
    flat = np.array([np.ptp(samples[i]) == 0 and np.ptp(samples[j]) == 0 for i, j in pairs])
    p = np.where(flat | np.isnan(p), 1.0, p).astype(float)
    reject, p_holm = holm(p, alpha)
    level = holm_levels(p, reject, alpha)
    low = high = np.full(len(pairs), np.nan)
    if intervals:
        low, high = np.empty(len(pairs)), np.empty(len(pairs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for k, (i, j) in enumerate(pairs):
                ci = stats.ttest_ind(samples[i], samples[j], equal_var=False).confidence_interval(1 - level[k])
                low[k], high[k] = (-np.inf, np.inf) if flat[k] else (ci.low, ci.high)
    return {"pairs": pairs, "difference": difference, "p": p, "p_holm": np.asarray(p_holm, dtype=float),
            "separated": np.asarray(reject, dtype=bool), "level": level, "low": low, "high": high}


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
    low: float               # Welch interval at ``confidence``: the level of the Holm step that decided it
    high: float
    confidence: float
    p: float                 # Welch, unadjusted
    p_holm: float
    separated: bool          # Holm rejects at alpha (the interval excludes zero)
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
               aso: bool = True, seed: int = 0) -> SeedLevel:
    """scores: variant -> {seed: test metric} (finite values; what is left out is the caller's to
    name). Welch + Holm over every pair of the variants with at least ``MIN_SEEDS`` seeds, the
    exact permutation test and ASO beside it, and the groups."""
    task = TASKS[task] if isinstance(task, str) else task
    scores = {v: {s: float(x) for s, x in by_seed.items() if x is not None and math.isfinite(x)}
              for v, by_seed in scores.items()}
    scale = test_scale(task, [x for by_seed in scores.values() for x in by_seed.values()])
    rope = default_rope(task.metric) if rope is None else rope
    level = SeedLevel(task, scale, alpha, rope, scores, [], {}, [], {})
    sign = 1.0 if task.higher_is_better else -1.0
    tested = {v: level.transformed(v) for v in scores if len(scores[v]) >= MIN_SEEDS}
    level.untested = {v: len(scores[v]) for v in scores if v not in tested}
    level.order = sorted(tested, key=lambda v: (-sign * tested[v].mean(), v))
    for v in scores:
        values = level.transformed(v)
        level.means[v] = (float(np.exp(values.mean())) if scale == "log" else float(values.mean())) if len(values) \
            else math.nan
    result = welch_holm([tested[v] for v in level.order], alpha)
    for k, (i, j) in enumerate(result["pairs"]):
        a, b = level.order[i], level.order[j]
        low, high = float(result["low"][k]), float(result["high"][k])
        pair = SeedPair(a, b, len(tested[a]), len(tested[b]), float(result["difference"][k]), low, high,
                        float(1 - result["level"][k]), float(result["p"][k]), float(result["p_holm"][k]),
                        bool(result["separated"][k]), bool(rope > 0 and -rope <= low and high <= rope),
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
    words = [f"The exact permutation test's floor (its smallest possible p): "
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


def seeds_needed(seed_sd: float, n: int, difference: float, alpha: float = ALPHA, power: float = 0.8) -> dict:
    """From the spread between seeds: the smallest difference ``n`` seeds per variant detect with
    the given power (two-sample t-test, statsmodels), and the seeds per variant ``difference``
    needs (capped at ``MAX_SEEDS_NEEDED``)."""
    from statsmodels.stats.power import TTestIndPower
    analysis = TTestIndPower()
    out = {"seed_sd": seed_sd, "n": n, "difference": difference, "alpha": alpha, "detectable_now": math.nan,
           "seeds_for_difference": math.nan}
    if not (seed_sd > 0) or not math.isfinite(seed_sd):
        return out
    if n >= 2:
        effect = analysis.solve_power(nobs1=n, alpha=alpha, power=power, ratio=1.0, alternative="two-sided")
        out["detectable_now"] = float(effect * seed_sd)
    if difference > 0:
        try:
            needed = analysis.solve_power(effect_size=difference / seed_sd, alpha=alpha, power=power, ratio=1.0,
                                          alternative="two-sided")
            out["seeds_for_difference"] = min(MAX_SEEDS_NEEDED + 1, int(math.ceil(needed)))
        except (ValueError, RuntimeError):   # no root below statsmodels' bound: very many
            out["seeds_for_difference"] = MAX_SEEDS_NEEDED + 1
    return out


def pairs_that_matter(level: SeedLevel) -> list[tuple[str, SeedPair]]:
    """The best against the runner-up, and the closest unresolved pair (not separated, smallest
    p) when that is another pair."""
    out = []
    if len(level.order) >= 2:
        top = level.pair(level.order[0], level.order[1])
        out.append(("best vs runner-up", top))
        open_pairs = [p for p in level.pairs if not p.separated and p is not top]
        if open_pairs:
            out.append(("closest unresolved pair", min(open_pairs, key=lambda p: (p.p, p.a, p.b))))
    return out


def pair_power(level: SeedLevel, pair: SeedPair, power: float = 0.8) -> dict:
    """Seeds per variant that this pair's observed difference needs, from its own two variants'
    seed sds, at the alpha the verdict applies to its first Holm step: alpha / (number of pairs)."""
    sd = math.sqrt((pair.sd_a ** 2 + pair.sd_b ** 2) / 2)
    return seeds_needed(sd, min(pair.n_a, pair.n_b), abs(pair.difference), level.alpha / max(1, len(level.pairs)),
                        power)


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
    test = stats.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
                                  n_resamples=resamples, alternative="two-sided", vectorized=True, random_state=rng,
                                  batch=max(1, 2_000_000 // len(difference)))
    return mean, float(interval.confidence_interval.low), float(interval.confidence_interval.high), float(test.pvalue)


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
    """``x a, y a > z b``: tested variants best first with their letters; ">" only where no letter
    crosses, i.e. every variant before it is separated from every variant after it."""
    parts = []
    for k, v in enumerate(level.order):
        if k:
            before = set("".join(level.letters[u] for u in level.order[:k]))
            after = set("".join(level.letters[u] for u in level.order[k:]))
            parts.append(" > " if not before & after else ", ")
        parts.append(f"{v} {level.letters[v]}")
    return "".join(parts)


def verdict_line(name: str, level: SeedLevel, saturated: str | None = None, left_out: int = 0,
                 solved: dict[str, tuple[int, int]] | None = None, limit: int = VERDICT_LIMIT) -> str:
    """One line per data set, every variant named, readable in ten seconds: the groups in order of
    the mean, then (as room allows, up to ``limit`` characters) practical equivalence and what was
    left out."""
    head = f"**{name}** ({level.seeds_words})"
    untested = [f"{v} not tested ({n} seed{'s' if n != 1 else ''})" for v, n in sorted(level.untested.items())]
    if solved is not None and not any(k for k, _ in solved.values()):
        core = (f"{head}: no variant solved the task in any seed; not ranked: "
                f"{', '.join(sorted(level.scores))}")
    elif not level.order:
        core = f"{head}: nothing to test: " + "; ".join(untested)
    else:
        core = f"{head}: " + (f"{saturated}; " if saturated else "") + group_words(level)
        if untested:
            core += "; " + "; ".join(untested)
    extras = []
    equivalent = [p for p in level.pairs if p.equivalent]
    if equivalent:
        words = rope_words(level.task.metric, level.rope, level.scale)
        listed = f"practically equivalent (within {words}): " + ", ".join(f"{p.a} ≈ {p.b}" for p in equivalent)
        extras.append(listed if len(core) + len(listed) + 2 <= limit - 40 else
                      f"{len(equivalent)} pair{'s' if len(equivalent) != 1 else ''} practically equivalent "
                      f"(within {words})")
    if left_out:
        extras.append(f"{left_out} run{'s' if left_out != 1 else ''} left out (named below)")
    line = core
    for extra in extras:
        if len(line) + len(extra) + 2 <= limit:
            line += "; " + extra
    return line + "."
