"""The statistics behind the verdict: they agree with scipy/statsmodels, find a real
difference, and declare differences between identical variants at about the nominal rate."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from seqbench.stats import cd_diagram, friedman, paired_test, pairwise, verdict


def test_paired_test_agrees_with_scipy_and_mcnemar_on_one_seed_of_a_classifier():
    rng = np.random.default_rng(1)
    a = (rng.random(500) < 0.90).astype(float)
    b = a.copy()
    flip = rng.choice(500, 40, replace=False)
    b[flip[:30]] = 1 - b[flip[:30]]  # b differs from a on 40 examples, mostly for the worse
    b[flip[30:]] = 1 - b[flip[30:]]
    difference, low, high, p = paired_test(a, b, seed=0)
    assert difference == pytest.approx((a - b).mean())
    assert low < difference < high
    reference = scipy_stats.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis),
                                             permutation_type="samples", n_resamples=9999, random_state=0).pvalue
    assert p == pytest.approx(reference, abs=0.02)
    table = [[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))],
             [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]]
    assert p == pytest.approx(mcnemar(table, exact=True).pvalue, abs=0.03)  # McNemar, by randomisation


def test_holm_adjustment_is_statsmodels(tmp_path):
    rng = np.random.default_rng(2)
    scores = {name: pd.DataFrame({0: (rng.random(300) < accuracy).astype(float)})
              for name, accuracy in [("a", 0.9), ("b", 0.85), ("c", 0.7)]}
    results = pairwise(scores, resamples=1999)
    raw = [r.p for r in results]
    assert [r.p_holm for r in results] == pytest.approx(list(multipletests(raw, method="holm")[1]))


def test_a_truly_better_variant_is_found_and_the_verdict_says_so():
    rng = np.random.default_rng(3)
    truth = rng.random(500)
    scores = {"good": pd.DataFrame({s: (truth < 0.92 + 0.01 * rng.standard_normal(500)).astype(float)
                                    for s in range(3)}),
              "poor": pd.DataFrame({s: (truth < 0.80 + 0.01 * rng.standard_normal(500)).astype(float)
                                    for s in range(3)})}
    (result,) = pairwise(scores, resamples=1999)
    assert result.a == "good" and result.difference > 0.05 and result.p_holm < 0.01
    text = verdict("trec", "classification", [result], {"good": 0.92, "poor": 0.80})
    assert "good is best" in text and "detectable over poor +1" in text


def test_identical_variants_differ_at_about_the_nominal_rate():
    """200 simulated pairs of equally good classifiers: the 5% test rejects about 5% of them."""
    rng = np.random.default_rng(4)
    rejections = 0
    for trial in range(200):
        a = (rng.random(400) < 0.85).astype(float)
        b = (rng.random(400) < 0.85).astype(float)
        rejections += paired_test(a, b, seed=trial, resamples=999)[3] < 0.05
    rate = rejections / 200
    assert 0.01 <= rate <= 0.10, rate  # binomial(200, 0.05): 95% of outcomes fall in [0.02, 0.08]


def test_friedman_and_critical_difference_agree_with_scipy(tmp_path):
    means = pd.DataFrame({"rnn": [0.80, 0.67, 0.50, 0.61], "lstm": [0.88, 0.77, 0.55, 0.70],
                          "gru": [0.87, 0.85, 0.58, 0.69], "attn": [0.90, 0.86, 0.60, 0.72]},
                         index=["trec", "imdb", "x", "y"])
    result = friedman(means)
    statistic, p = scipy_stats.friedmanchisquare(*[means[c] for c in means.columns])
    assert result["statistic"] == pytest.approx(statistic) and result["p"] == pytest.approx(p)
    assert list(result["average_ranks"].index)[0] == "attn"  # rank 1 = best (higher accuracy)
    q = scipy_stats.studentized_range.ppf(0.95, 4, np.inf) / math.sqrt(2)
    assert result["critical_difference"] == pytest.approx(q * math.sqrt(4 * 5 / (6 * 4)))
    assert q == pytest.approx(2.569, abs=1e-3)  # Demšar's table for k = 4
    assert cd_diagram(result, tmp_path / "cd.png", "test").stat().st_size > 1000


def test_lower_is_better_metrics_rank_the_smallest_first():
    means = pd.DataFrame({"a": [0.1, 0.2, 0.3], "b": [0.2, 0.3, 0.4], "c": [0.3, 0.1, 0.5]}, index=["x", "y", "z"])
    result = friedman(means, higher_is_better={"x": False, "y": False, "z": False})
    assert result["average_ranks"].index[0] == "a"
