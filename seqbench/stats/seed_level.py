"""One test set's comparison with training runs (seeds) as the unit: each variant's scores on the
test's scale, every pair decided by the rule (``stats.rule``), and beside it the exact permutation
test, Almost Stochastic Order, seeds far from their variant's others, and the test set's own
sampling sd."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from math import comb

import numpy as np
import pandas as pd
from scipy import stats

from ..aso import aso
from ..tasks import PERCENT_METRICS, POSITIVE_METRICS, TASKS, TaskKind
from .rule import ALPHA, compact_letters, separations


MIN_SEEDS = 2                 # per variant, for a seed-level test (Welch needs a spread)


OUTLIER_ROBUST_SDS = 3.0
MIN_SEEDS_FOR_OUTLIERS = 3


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
