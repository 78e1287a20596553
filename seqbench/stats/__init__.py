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

Modules: ``rule`` (the verdict's rule: separations, Holm, letters), ``seed_level`` (one test set's
comparison over seeds, and the tests beside it), ``power`` (seeds needed, what is left open,
saturation), ``conditional`` (per-example tests for the trained networks), ``ranks`` (across data
sets), ``words`` (p-values, differences and the verdict line as printed).
"""
from __future__ import annotations

from .conditional import (RESAMPLING_MAX_EXAMPLES, ConditionalPair, conditional_pairs, paired_permutation_p,
                          paired_test, wilson)
from .power import (MAX_SEEDS_NEEDED, POWER_DRAWS, SATURATION_SHARE, SIMULATED_POWER_MAX_SEEDS, pair_power,
                    saturation, seeds_needed, test_set_se, undecided_pairs, welch_power)
from .ranks import MIN_DATASETS_FOR_FRIEDMAN, cd_diagram, friedman, rank_bootstrap
from .rule import (ALPHA, MIN_PRIOR_DF, RANGE_DF_GRID, compact_letters, holm, holm_rows, range_critical, separations,
                   trigamma_inverse, variance_prior, welsch_level)
from .seed_level import (MIN_SEEDS, MIN_SEEDS_FOR_OUTLIERS, OUTLIER_ROBUST_SDS, SeedLevel, SeedPair, aso_epsilon,
                         default_rope, exact_permutation_p, example_scores, far_seeds, permutation_floor_words,
                         rope_words, seed_level, test_scale, test_set_sd)
from .words import (VERDICT_LIMIT, answer_words, difference_words, format_p, gap_words, group_words, p_words,
                    resolution, verdict_line)

__all__ = ["ALPHA", "ConditionalPair", "MAX_SEEDS_NEEDED", "MIN_DATASETS_FOR_FRIEDMAN", "MIN_PRIOR_DF", "MIN_SEEDS",
           "MIN_SEEDS_FOR_OUTLIERS", "OUTLIER_ROBUST_SDS", "POWER_DRAWS", "RANGE_DF_GRID", "RESAMPLING_MAX_EXAMPLES",
           "SATURATION_SHARE", "SIMULATED_POWER_MAX_SEEDS", "SeedLevel", "SeedPair", "VERDICT_LIMIT", "answer_words",
           "aso_epsilon", "cd_diagram", "compact_letters", "conditional_pairs", "default_rope", "difference_words",
           "exact_permutation_p", "example_scores", "far_seeds", "format_p", "friedman", "gap_words", "group_words",
           "holm", "holm_rows", "p_words", "pair_power", "paired_permutation_p", "paired_test",
           "permutation_floor_words", "range_critical", "rank_bootstrap", "resolution", "rope_words", "saturation",
           "seed_level", "seeds_needed", "separations", "test_scale", "test_set_sd", "test_set_se",
           "trigamma_inverse", "undecided_pairs", "variance_prior", "verdict_line", "welch_power", "welsch_level",
           "wilson"]
