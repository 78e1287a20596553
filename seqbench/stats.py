"""Is a difference real? Comparisons of variants with training runs as the unit, and, beside
them, the same comparison conditional on the trained networks; ranks across data sets.

Seed level (the primary comparison, the one verdicts use). Each training run (seed) of a
variant gave a per-example score on the same test examples. The difference of two variants is
the difference of their mean scores; its interval comes from a two-level (hierarchical)
bootstrap that resamples each variant's seeds and then the test examples (shared, so paired),
so it holds both the spread between training runs and the test set's sampling (Bouthillier et
al. 2021). The p-value is read off the same bootstrap distribution (twice its smaller tail
beyond zero), and several pairs are adjusted with Bonferroni's method: the simultaneous interval
at level 1 - alpha/m excludes zero exactly when the adjusted p is below alpha, so the page never
shows an interval and a p-value that disagree. Beside it, two tests suited to few runs: an exact
permutation test over seeds (scipy; its smallest possible p, 2 / C(n_a + n_b, n_a), is printed
with "≤"), and Almost Stochastic Order (Dror et al. 2019, the ``deepsig`` package): eps_min < 0.5
says A tends to be better than B, eps_min < 0.2 that it almost always is.

Conditional level (a second column, labelled as such). Scores averaged over each variant's
seeds, per example; a paired bootstrap over test examples (BCa) and a paired permutation test
(which with one seed of a classifier is McNemar's test by randomisation), or, above 5,000 test
examples, the paired t-test (the same answer by the central limit theorem, minutes faster on
IMDB); Holm-adjusted. These
describe the test set's sampling only, for these very trained networks.

Across data sets: ranks of each variant's mean per data set, oriented so that 1 is best whatever
the metric's direction; Friedman's test and the Nemenyi critical difference (Demšar 2006) only
with at least five data sets, ranks alone otherwise.
"""
from __future__ import annotations

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

from .tasks import TASKS, TaskKind

MIN_DATASETS_FOR_FRIEDMAN = 5
MIN_SEEDS = 2   # per variant, for a seed-level interval
# Per variant, for calling a difference detectable. Simulated identical variants (1,000 pairs, 300
# test examples, seed sd 2 points): the two-level bootstrap's 5% test rejected 9.2% of them with 3
# seeds, 9.0% with 4, 7.3% with 5 and 4.7% with 8 (tests/test_stats.py checks 5 stays under 10%):
# still liberal at 5, nominal from about 8; the README says so.
MIN_SEEDS_FOR_VERDICT = 5


@dataclass
class PairResult:
    """A minus B, in the metric's units (higher is better for accuracy; for error measures the
    difference is of errors, so negative means A errs less)."""
    a: str
    b: str
    difference: float
    low: float                    # raw 95% interval (seed level: two-level bootstrap)
    high: float
    p: float                      # raw p from the same bootstrap
    p_adjusted: float = math.nan  # Bonferroni over the pairs of this comparison
    simultaneous_low: float = math.nan
    simultaneous_high: float = math.nan
    p_floor: float = 0.0          # the smallest p the resampling can give
    permutation_p: float = math.nan   # exact permutation test over seeds
    permutation_floor: float = math.nan
    aso_eps: float = math.nan     # Almost Stochastic Order eps_min (A better than B)
    n_a: int = 0
    n_b: int = 0
    examples: int = 0
    # The conditional comparison (test-set sampling only), same pair.
    conditional: dict = field(default_factory=dict)

    @property
    def decidable(self) -> bool:
        return min(self.n_a, self.n_b) >= MIN_SEEDS_FOR_VERDICT

    @property
    def detectable(self) -> bool:
        return self.decidable and self.p_adjusted < 0.05


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
def hierarchical_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 9999, seed: int = 0,
                           batch: int = 256) -> np.ndarray:
    """Bootstrap distribution of mean(a) - mean(b) for ``a`` (examples x seeds of variant A) and
    ``b`` (examples x seeds of B) on the same examples: each resample draws A's seeds and B's seeds
    with replacement, then the test examples with replacement (the same draw for both: paired)."""
    rng = np.random.default_rng(seed)
    a, b = _inflated(np.asarray(a, dtype=float)), _inflated(np.asarray(b, dtype=float))
    examples, n_a = a.shape
    n_b = b.shape[1]
    out = np.empty(resamples)
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        weights_a = rng.multinomial(n_a, np.full(n_a, 1 / n_a), size=size) / n_a   # (R, n_a)
        weights_b = rng.multinomial(n_b, np.full(n_b, 1 / n_b), size=size) / n_b   # (R, n_b)
        per_example = a @ weights_a.T - b @ weights_b.T                           # (N, R)
        # the test examples drawn with replacement, as indices (the same distribution as
        # multinomial counts, and about twice as fast on 25,000 IMDB reviews)
        drawn = rng.integers(0, examples, size=(size, examples))                 # (R, N)
        out[start:start + size] = np.take_along_axis(per_example.T, drawn, axis=1).mean(axis=1)
    return out


def _inflated(scores: np.ndarray) -> np.ndarray:
    """Each seed's deviation from the seeds' mean, scaled by sqrt(n / (n - 1)): resampling n seeds
    with replacement shrinks their variance by (n - 1) / n, which this undoes."""
    n = scores.shape[1]
    if n < 2:
        return scores
    centre = scores.mean(axis=1, keepdims=True)
    return centre + (scores - centre) * math.sqrt(n / (n - 1))


def bootstrap_p(distribution: np.ndarray) -> float:
    """Twice the smaller share of bootstrap differences on either side of zero (the p-value whose
    rejection is the interval's exclusion of zero)."""
    below, above = np.mean(distribution <= 0), np.mean(distribution >= 0)
    return float(min(1.0, 2 * min(below, above)))


def exact_permutation_p(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """(p, smallest possible p) of a two-sided permutation test of the difference of means of
    per-seed scores, exact (every relabelling) when there are at most 10,000 of them."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 1 or len(b) < 1 or len(a) + len(b) < 3:
        return math.nan, math.nan
    arrangements = comb(len(a) + len(b), len(a))
    result = stats.permutation_test((a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                    permutation_type="independent", alternative="two-sided", vectorized=True,
                                    n_resamples=9999 if arrangements > 10_000 else np.inf,
                                    random_state=np.random.default_rng(seed))
    return float(result.pvalue), float(2 / arrangements if arrangements <= 10_000 else 2 / 10_000)


def aso_epsilon(a: np.ndarray, b: np.ndarray, higher_is_better: bool, comparisons: int = 1,
                seed: int = 0, iterations: int = 200) -> float:
    """Almost Stochastic Order (deepsig): eps_min of "A is better than B" over per-seed scores."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    from deepsig import aso
    sign = 1.0 if higher_is_better else -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Division by zero in violation ratio" when one dominates
        return float(aso(list(sign * np.asarray(a, dtype=float)), list(sign * np.asarray(b, dtype=float)),
                         confidence_level=0.95, num_comparisons=max(1, comparisons),
                         num_bootstrap_iterations=iterations, seed=seed, show_progress=False))


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


def compare(scores: dict[str, pd.DataFrame], task: TaskKind | str, seed: int = 0, resamples: int = 9999,
            alpha: float = 0.05, aso: bool = True) -> list[PairResult]:
    """scores: variant -> DataFrame (examples x seeds). Every pair, on the examples all share:
    seed level first (two-level bootstrap with Bonferroni-simultaneous intervals, exact
    permutation over seeds, ASO), then conditional on the trained networks (Holm)."""
    task = TASKS[task] if isinstance(task, str) else task
    common = sorted(set.intersection(*(set(frame.index) for frame in scores.values()))) if scores else []
    pairs = list(combinations(sorted(scores), 2))
    m = max(1, len(pairs))
    results = []
    for number, (name_a, name_b) in enumerate(pairs):
        a = scores[name_a].loc[common].to_numpy()
        b = scores[name_b].loc[common].to_numpy()
        difference = float(a.mean() - b.mean())
        if min(a.shape[1], b.shape[1]) >= MIN_SEEDS:
            distribution = hierarchical_bootstrap(a, b, resamples=resamples, seed=seed + number)
            p = bootstrap_p(distribution)
            low, high = np.quantile(distribution, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
            s_low, s_high = np.quantile(distribution, [alpha / (2 * m), 1 - alpha / (2 * m)], method="inverted_cdf")
        else:  # one training run says nothing about the spread between runs
            p = low = high = s_low = s_high = math.nan
        seeds_a, seeds_b = a.mean(axis=0), b.mean(axis=0)
        permutation_p, permutation_floor = exact_permutation_p(seeds_a, seeds_b, seed=seed + number)
        result = PairResult(name_a, name_b, difference, float(low), float(high), p,
                            min(1.0, p * m) if not math.isnan(p) else math.nan,
                            float(s_low), float(s_high), p_floor=2 / resamples, permutation_p=permutation_p,
                            permutation_floor=permutation_floor, n_a=a.shape[1], n_b=b.shape[1], examples=len(common))
        if aso:
            result.aso_eps = aso_epsilon(seeds_a, seeds_b, task.higher_is_better, m, seed=seed + number)
        mean_a, mean_b = a.mean(axis=1), b.mean(axis=1)
        c_difference, c_low, c_high, c_p = paired_test(mean_a, mean_b, seed=seed + number, resamples=resamples)
        # the permutation test's smallest p (scipy counts the observed arrangement); the t-test has none
        c_floor = 2 / (resamples + 1) if len(common) <= RESAMPLING_MAX_EXAMPLES else 0.0
        result.conditional = {"difference": c_difference, "low": c_low, "high": c_high, "p": c_p,
                              "p_floor": c_floor, "test": "permutation" if c_floor else "paired t-test"}
        results.append(result)
    if results:
        holm = multipletests([r.conditional["p"] for r in results], alpha=alpha, method="holm")[1]
        for result, p in zip(results, holm):
            result.conditional["p_holm"] = float(p)
    return results


def seeds_needed(seed_sd: float, n: int, difference: float, alpha: float = 0.05, power: float = 0.8) -> dict:
    """From the spread between seeds: the smallest difference ``n`` seeds per variant detect with
    the given power (two-sample t-test, statsmodels), and the seeds per variant ``difference``
    needs."""
    from statsmodels.stats.power import TTestIndPower
    analysis = TTestIndPower()
    out = {"seed_sd": seed_sd, "n": n, "difference": difference, "detectable_now": math.nan, "seeds_for_difference":
           math.nan}
    if not (seed_sd > 0) or not math.isfinite(seed_sd):
        return out
    if n >= 2:
        effect = analysis.solve_power(nobs1=n, alpha=alpha, power=power, ratio=1.0, alternative="two-sided")
        out["detectable_now"] = float(effect * seed_sd)
    if difference > 0:
        needed = analysis.solve_power(effect_size=difference / seed_sd, alpha=alpha, power=power, ratio=1.0,
                                      alternative="two-sided")
        out["seeds_for_difference"] = int(math.ceil(needed))
    return out


def pooled_seed_sd(per_seed: dict[str, np.ndarray]) -> float:
    """The spread between seeds of one variant, pooled over the variants (each with >= 2 seeds)."""
    total, dof = 0.0, 0
    for values in per_seed.values():
        values = np.asarray(values, dtype=float)
        if len(values) >= 2:
            total += float(np.var(values, ddof=1)) * (len(values) - 1)
            dof += len(values) - 1
    return math.sqrt(total / dof) if dof else math.nan


def wilson(successes: int, trials: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion (statsmodels)."""
    if trials == 0:
        return math.nan, math.nan
    from statsmodels.stats.proportion import proportion_confint
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    return float(low), float(high)


def load_scores(records: list[dict], labels, task: TaskKind | str) -> dict[str, pd.DataFrame]:
    """variant label -> examples x seeds of per-example scores, from each run's predictions,
    found beside its record (so a moved or merged folder keeps its verdicts)."""
    columns: dict[str, dict] = {}
    for record in records:
        name = record.get("predictions")
        if not name:
            continue
        path = Path(record["record_path"]).parent / name
        if not path.is_file():
            continue
        try:
            scores = example_scores(pd.read_csv(path), task)
        except (KeyError, ValueError, pd.errors.ParserError):
            continue
        columns.setdefault(labels[record["config_hash"]], {})[record["seed"]] = scores
    return {label: pd.DataFrame(by_seed) for label, by_seed in columns.items()}


# ------------------------------------------------------------------------- across data sets
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


def _value(task: TaskKind, value: float) -> str:
    return f"{value * task.scale():+.1f}" if task.scale() == 100 else f"{value:+.2e}"


def verdict(name: str, task: TaskKind | str, pairs: list[PairResult], means: dict[str, float],
            solved: dict[str, tuple[int, int]] | None = None, alpha: float = 0.05) -> str:
    """One paragraph: the variant with the best mean, called best only where its lead over every
    other variant is detectable at the seed level; each lead with its simultaneous interval and
    adjusted p; where a task has a "solved" rule and no run solved it, no variant is named."""
    task = TASKS[task] if isinstance(task, str) else task
    if not pairs or not means:
        return f"**{name}**: no per-example predictions to compare."
    if solved is not None and not any(k for k, _ in solved.values()):
        return (f"**{name}**: no variant solved the task in any seed; differences between unsolved variants are "
                f"not ranked (see the paired comparisons).")
    best = (max if task.higher_is_better else min)(means, key=means.get)
    if not any(pair.decidable for pair in pairs if best in (pair.a, pair.b)):
        seeds = min(min(pair.n_a, pair.n_b) for pair in pairs)
        return (f"**{name}**: {best} has the highest mean" + ("" if task.higher_is_better else " (lowest error)")
                + f"; with {seeds} seed{'s' if seeds != 1 else ''} per variant no difference is called detectable "
                f"(a seed-level verdict needs at least {MIN_SEEDS_FOR_VERDICT}: with fewer, the two-level bootstrap "
                f"finds differences between identical variants too often). Intervals are in the paired comparisons.")
    m = len(pairs)
    clear, unclear = [], []
    for pair in pairs:
        if best not in (pair.a, pair.b):
            continue
        # The lead is positive when the best is better: more correct, or less error.
        sign = (1 if pair.a == best else -1) * (1 if task.higher_is_better else -1)
        other = pair.b if pair.a == best else pair.a
        lead = sign * pair.difference
        low, high = sorted((sign * pair.simultaneous_low, sign * pair.simultaneous_high))
        text = (f"{other} {_value(task, lead)} [{_value(task, low)}, {_value(task, high)}], "
                f"{p_words(pair.p_adjusted, min(1.0, pair.p_floor * m))}")
        if not pair.decidable:
            text = f"{other} {_value(task, lead)} (too few seeds to decide)"
        (clear if pair.detectable else unclear).append(text)
    units = f"{task.difference_units()} of {task.metric_words()}" if task.scale() == 100 else task.metric_words()
    if clear and not unclear:
        parts = [f"**{name}**: {best} is best: its lead over every other variant is detectable with training runs "
                 f"as the unit."]
    else:
        parts = [f"**{name}**: {best} has the highest mean" + ("" if task.higher_is_better else " (lowest error)")
                 + ("; its lead is not detectable over every other variant, so no variant is called best."
                    if unclear else ".")]
    if clear:
        parts.append(f"Lead detectable over {'; '.join(clear)}.")
    if unclear:
        parts.append(f"Not detectable against {'; '.join(unclear)}.")
    parts.append(f"Leads in {units}, seed level (two-level bootstrap over seeds and test examples; "
                 f"{100 * (1 - alpha):.0f}% simultaneous intervals, p Bonferroni-adjusted over {m} pair"
                 f"{'s' if m != 1 else ''}).")
    return " ".join(parts)
