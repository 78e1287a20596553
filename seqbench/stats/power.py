"""What the seeds can and cannot tell: the Welch test's power, the seeds a difference needs, the
pairs the verdict leaves open, what the test set's sampling alone puts on a difference, and data
sets every variant solves (saturated)."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..tasks import PERCENT_METRICS, POSITIVE_METRICS, TaskKind
from .rule import ALPHA
from .seed_level import SeedLevel, SeedPair


SATURATION_SHARE = 0.01       # every run's error below 1% of the learn-nothing baseline's: saturated


MAX_SEEDS_NEEDED = 10_000     # beyond this a power analysis says "more than"


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
