"""The statistics behind the verdict, each figure checked against an independent computation or
the field's libraries (scipy, statsmodels, scikit-posthocs, deepsig), and the verdict's wording
against what the numbers allow."""
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.contingency_tables import mcnemar

from seqbench.stats import (MIN_SEEDS_FOR_VERDICT, aso_epsilon, bootstrap_p, compare, exact_permutation_p, friedman,
                            hierarchical_bootstrap, paired_test, seeds_needed, verdict, wilson)

# The committed reference means (results/summary_*.csv at d427c19) behind the wrong Friedman figure.
COMMITTED = pd.DataFrame({
    "trec": {"bilstm_attn_concat": 0.909333, "bilstm_attn_additive": 0.902000, "gru": 0.896000, "lstm": 0.879333,
             "rnn": 0.815333},
    "sincos": {"bilstm_attn_concat": 3.666e-05, "bilstm_attn_additive": 4.113e-05, "gru": 1.511e-05,
               "lstm": 1.482e-05, "rnn": 2.829e-05},
    "sentiment": {"bilstm_attn_concat": 0.866560, "bilstm_attn_additive": 0.868080, "gru": 0.855040,
                  "lstm": 0.793320, "rnn": 0.664240}}).T


def test_friedman_is_fed_oriented_scores():
    """The committed report fed raw means to Friedman's test, so sin->cos's MSE counted backwards:
    chi2 = 9.87, p = 0.043. Oriented (an error measure's lower is better), scipy gives 2.93, 0.57."""
    higher = {"trec": True, "sincos": False, "sentiment": True}
    result = friedman(COMMITTED, higher)
    statistic, p = scipy_stats.friedmanchisquare(*[result["oriented"][c] for c in result["oriented"].columns])
    assert statistic == pytest.approx(2.93, abs=0.01) and p == pytest.approx(0.57, abs=0.01)
    raw, raw_p = scipy_stats.friedmanchisquare(*[COMMITTED[c] for c in COMMITTED.columns])
    assert raw == pytest.approx(9.87, abs=0.01) and raw_p == pytest.approx(0.0427, abs=0.001)  # the old figure
    assert result["ranks"].loc["sincos", "lstm"] == 1 and result["ranks"].loc["sincos", "bilstm_attn_additive"] == 5
    assert "statistic" not in result  # three data sets: ranks only, no test


def test_friedman_and_nemenyi_agree_with_scipy_and_scikit_posthocs_with_enough_data_sets():
    import scikit_posthocs as sp
    rng = np.random.default_rng(5)
    means = pd.DataFrame(rng.normal(0.8, 0.05, (8, 4)) + np.array([0.0, 0.02, 0.06, 0.1]),
                         index=[f"d{i}" for i in range(8)], columns=list("abcd"))
    means.loc[["d1", "d4"]] = -means.loc[["d1", "d4"]]  # two error measures (lower is better)
    higher = {d: d not in ("d1", "d4") for d in means.index}
    result = friedman(means, higher)
    oriented = means.apply(lambda row: row if higher[row.name] else -row, axis=1)
    statistic, p = scipy_stats.friedmanchisquare(*[oriented[c] for c in oriented.columns])
    assert result["statistic"] == pytest.approx(statistic) and result["p"] == pytest.approx(p)
    nemenyi = sp.posthoc_nemenyi_friedman(oriented.to_numpy())  # pairwise p-values over the same ranks
    ranks = result["average_ranks"]
    for i, j in itertools.combinations(range(4), 2):
        beyond = abs(ranks[means.columns[i]] - ranks[means.columns[j]]) > result["critical_difference"]
        assert beyond == (nemenyi.iloc[i, j] < 0.05)


def test_conditional_paired_test_matches_an_exact_sign_flip_enumeration_and_mcnemar():
    rng = np.random.default_rng(1)
    a = (rng.random(300) < 0.9).astype(float)
    b = a.copy()
    flips = rng.choice(300, 14, replace=False)
    b[flips[:11]] = 1 - b[flips[:11]]  # b differs from a on 14 examples, mostly for the worse
    b[flips[11:]] = 1 - b[flips[11:]]
    difference, low, high, p = paired_test(a, b, seed=0)
    d = (a - b)[a != b]
    observed = abs(d.sum())
    exact = np.mean([abs((d * signs).sum()) >= observed - 1e-12
                     for signs in itertools.product([-1, 1], repeat=len(d))])  # all 2^14 sign flips
    assert difference == pytest.approx((a - b).mean()) and low < difference < high
    assert p == pytest.approx(exact, abs=0.01)
    table = [[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))],
             [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]]
    assert p == pytest.approx(mcnemar(table, exact=True).pvalue, abs=0.02)


def test_holm_adjustment_of_the_conditional_column_follows_holms_rule():
    rng = np.random.default_rng(2)
    scores = {name: pd.DataFrame({s: (rng.random(300) < acc + 0.01 * s).astype(float) for s in range(2)})
              for name, acc in [("a", 0.9), ("b", 0.86), ("c", 0.7)]}
    pairs = compare(scores, "classification", resamples=999, aso=False)
    raw = np.array([pair.conditional["p"] for pair in pairs])
    order = np.argsort(raw)
    expected = np.empty(len(raw))
    running = 0.0
    for rank, index in enumerate(order):  # Holm (1979), written out
        running = max(running, min(1.0, (len(raw) - rank) * raw[index]))
        expected[index] = running
    assert [pair.conditional["p_holm"] for pair in pairs] == pytest.approx(list(expected))


def _variant(rng, difficulty, seeds, mean, seed_sd=0.02):
    return pd.DataFrame({s: (difficulty < mean + seed_sd * rng.standard_normal()).astype(float)
                         for s in range(seeds)})


def test_simultaneous_intervals_agree_with_the_adjusted_p_on_every_pair():
    rng = np.random.default_rng(3)
    for trial in range(6):
        difficulty = rng.random(400)
        scores = {name: _variant(rng, difficulty, 5, mean) for name, mean in
                  [("a", 0.80), ("b", 0.82 + 0.01 * trial), ("c", 0.86)]}
        for pair in compare(scores, "classification", resamples=1999, seed=trial, aso=False):
            excludes_zero = pair.simultaneous_low > 0 or pair.simultaneous_high < 0
            assert excludes_zero == (pair.p_adjusted < 0.05), pair
            assert pair.simultaneous_low <= pair.low <= pair.difference <= pair.high <= pair.simultaneous_high


def test_the_two_level_bootstrap_holds_seed_spread_that_the_example_bootstrap_misses():
    rng = np.random.default_rng(4)
    difficulty = rng.random(2000)
    same = {s: (difficulty < 0.8).astype(float) for s in range(5)}
    a = pd.DataFrame(same).to_numpy()
    b = pd.DataFrame({s: (difficulty < 0.78).astype(float) for s in range(5)}).to_numpy()
    # No spread between seeds: the two-level bootstrap is the paired bootstrap over examples.
    plain = scipy_stats.bootstrap(((a - b)[:, 0],), np.mean, n_resamples=4999, random_state=0).standard_error
    assert np.std(hierarchical_bootstrap(a, b, resamples=4999)) == pytest.approx(plain, rel=0.1)
    # Spread between seeds widens it, as it widens the variance of a mean of 5 seeds.
    spread = _variant(rng, difficulty, 5, 0.8, seed_sd=0.05).to_numpy()
    seed_sd = spread.mean(axis=0).std(ddof=1)
    width = np.std(hierarchical_bootstrap(spread, b, resamples=4999))
    assert width > 0.8 * seed_sd / math.sqrt(5) and width > 2 * plain


def test_identical_variants_are_called_different_at_about_the_nominal_rate():
    """200 pairs of equally good variants, 5 seeds each: the seed-level 5% test rejects about 5%."""
    rng = np.random.default_rng(6)
    rejections = 0
    for trial in range(200):
        difficulty = rng.random(300)
        a, b = (_variant(rng, difficulty, MIN_SEEDS_FOR_VERDICT, 0.85).to_numpy() for _ in range(2))
        rejections += bootstrap_p(hierarchical_bootstrap(a, b, resamples=499, seed=trial)) < 0.05
    assert 0.005 <= rejections / 200 <= 0.10


def test_exact_permutation_over_seeds_enumerates_every_relabelling_and_states_its_floor():
    a, b = np.array([0.91, 0.92, 0.90]), np.array([0.85, 0.86, 0.84])
    p, floor = exact_permutation_p(a, b)
    assert floor == pytest.approx(2 / math.comb(6, 3)) and p == pytest.approx(0.1)  # the smallest 3 vs 3 can give
    pooled = np.concatenate([a, b])
    observed = abs(a.mean() - b.mean())
    count = sum(abs(pooled[list(s)].mean() - np.delete(pooled, list(s)).mean()) >= observed - 1e-12
                for s in itertools.combinations(range(6), 3))
    assert p == pytest.approx(count / math.comb(6, 3))


def test_aso_reads_the_better_variant_the_right_way_round_for_errors_too():
    better, worse = [0.90, 0.91, 0.92, 0.905, 0.915], [0.85, 0.86, 0.84, 0.855, 0.845]
    assert aso_epsilon(better, worse, higher_is_better=True) < 0.2
    assert aso_epsilon(worse, better, higher_is_better=True) > 0.5
    assert aso_epsilon([0.01, 0.012, 0.011], [0.05, 0.06, 0.055], higher_is_better=False) < 0.2


def test_seeds_needed_match_the_normal_approximation():
    out = seeds_needed(seed_sd=0.015, n=5, difference=0.01)
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    approximate = 2 * (z * 0.015 / 0.01) ** 2
    assert approximate <= out["seeds_for_difference"] <= approximate + 2  # the t-test needs a little more
    assert out["detectable_now"] == pytest.approx(z * 0.015 * math.sqrt(2 / 5), rel=0.25)


def test_wilson_interval_by_its_formula():
    k, n, z = 2, 3, scipy_stats.norm.ppf(0.975)
    centre = (k / n + z ** 2 / (2 * n)) / (1 + z ** 2 / n)
    half = z / (1 + z ** 2 / n) * math.sqrt(k / n * (1 - k / n) / n + z ** 2 / (4 * n ** 2))
    assert wilson(k, n) == pytest.approx((centre - half, centre + half))


def test_verdict_calls_a_variant_best_only_when_every_lead_is_detectable():
    rng = np.random.default_rng(7)
    difficulty = rng.random(1000)
    scores = {"good": _variant(rng, difficulty, 5, 0.92), "poor": _variant(rng, difficulty, 5, 0.78),
              "close": _variant(rng, difficulty, 5, 0.915)}
    pairs = compare(scores, "classification", resamples=1999, aso=False)
    means = {k: float(v.to_numpy().mean()) for k, v in scores.items()}
    text = verdict("trec", "classification", pairs, means)
    assert "has the highest mean" in text and "is best" not in text and "Lead detectable over poor" in text
    two = {k: scores[k] for k in ("good", "poor")}
    text = verdict("trec", "classification", compare(two, "classification", resamples=1999, aso=False),
                   {k: means[k] for k in two})
    assert "good is best" in text and "[+1" in text and "p ≤" in text
    three_seeds = {k: v.iloc[:, :3] for k, v in two.items()}
    text = verdict("trec", "classification", compare(three_seeds, "classification", resamples=999, aso=False),
                   {k: means[k] for k in two})
    assert "no difference is called detectable" in text and "at least 5" in text


def test_a_report_says_where_the_test_set_only_comparison_and_the_seed_level_disagree(tmp_path):
    """Five seeds whose accuracies spread widely, and a second variant a little better on every
    seed's shared hard examples: conditional on these networks the difference is clear, with
    training runs as the unit it is not, and the summary says which is which."""
    from seqbench.record import write_json_atomic
    from seqbench.report import build_report
    rng = np.random.default_rng(8)
    difficulty = rng.random(4000)
    for variant, shift in (("gru", 0.0), ("lstm", 0.025)):
        for seed in range(5):
            level = 0.80 + [-0.08, -0.04, 0.0, 0.04, 0.08][seed] + shift
            correct = difficulty < level
            folder = tmp_path / f"{variant}{seed}"
            folder.mkdir()
            pd.DataFrame({"index": range(4000), "target": 1, "predicted": np.where(correct, 1, 0)}).to_csv(
                folder / "predictions.csv", index=False)
            write_json_atomic(folder / "record.json", {
                "status": "done", "model": variant, "dataset": "trec", "seed": seed, "task": "classification",
                "config_hash": variant, "data_fingerprint": "d1", "predictions": "predictions.csv",
                "label_names": ["no", "yes"], "test": {"acc": float(correct.mean()), "f1": 0.5},
                "val_best": {"acc": 0.8}, "best_epoch": 1, "epochs": 2, "epoch_seconds": [1.0],
                "config": {"model": {"name": variant}, "dataset": {"name": "trec"}}})
    build_report([tmp_path], tmp_path / "out", plots=False, resamples=1999)
    text = (tmp_path / "out" / "summary.md").read_text()
    verdict_line = next(line for line in text.splitlines() if line.startswith("- **trec**"))
    assert "Not detectable against gru" in verdict_line
    assert "Conditional on these trained networks (test-set sampling only) gru vs lstm also differ" in verdict_line
    pairs = pd.read_csv(tmp_path / "out" / "pairs_trec.csv")
    assert pairs.loc[0, "networks_p_holm"] < 0.05 and pairs.loc[0, "p_adjusted"] >= 0.05


def test_a_large_test_set_gets_the_paired_t_test_and_its_interval():
    from seqbench.stats import RESAMPLING_MAX_EXAMPLES
    rng = np.random.default_rng(3)
    n = RESAMPLING_MAX_EXAMPLES + 1000
    a = (rng.random(n) < 0.86).astype(float)
    b = (rng.random(n) < 0.85).astype(float)
    difference, low, high, p = paired_test(a, b, seed=0)
    reference = scipy_stats.ttest_rel(a, b)
    interval = reference.confidence_interval(0.95)
    assert (difference, low, high, p) == pytest.approx(((a - b).mean(), interval.low, interval.high, reference.pvalue))
    # and it agrees with the resampling tests it stands in for
    _, low_bca, high_bca, p_permutation = paired_test(a[:RESAMPLING_MAX_EXAMPLES], b[:RESAMPLING_MAX_EXAMPLES], seed=0)
    half = scipy_stats.ttest_rel(a[:RESAMPLING_MAX_EXAMPLES], b[:RESAMPLING_MAX_EXAMPLES])
    assert p_permutation == pytest.approx(half.pvalue, abs=0.02)
    assert (low_bca, high_bca) == pytest.approx(tuple(half.confidence_interval(0.95)), abs=0.002)


def test_a_conditional_p_at_the_permutation_floor_is_printed_as_a_bound():
    from seqbench.stats import format_p
    rng = np.random.default_rng(4)
    a = pd.DataFrame((rng.random((400, 5)) < 0.95).astype(float))
    b = pd.DataFrame((rng.random((400, 5)) < 0.50).astype(float))
    conditional = compare({"a": a, "b": b}, "classification", resamples=999, aso=False)[0].conditional
    assert conditional["p_floor"] == pytest.approx(2 / 1000)
    assert conditional["p"] <= conditional["p_floor"]
    assert format_p(conditional["p"], conditional["p_floor"]) == "≤ 0.002"
    assert format_p(1e-40, 0) == "< 1e-16"  # the paired t-test's p beyond double precision


def test_seeds_needed_for_errors_are_ratios_from_the_log_spread(tmp_path):
    from seqbench.report import DataSection, power_words, seed_power
    from seqbench.tasks import TASKS
    rng = np.random.default_rng(5)
    # a good variant at 2e-5 and a poor one at 2e-4, each with a 20% spread between seeds
    records = [{"config_hash": name, "test": {"mse": centre * math.exp(rng.normal(0, 0.2))}, "data": {}}
               for name, centre in (("good", 2e-5), ("poor", 2e-4)) for _ in range(5)]
    section = DataSection.__new__(DataSection)
    section.records, section.task = [{**r, "status": "done"} for r in records], TASKS["per_step_regression"]
    section.table = pd.DataFrame({"test_mse_mean": [2e-5, 2e-4]})
    power = seed_power(section)
    logs = {name: np.log([r["test"]["mse"] for r in records if r["config_hash"] == name]) for name in ("good", "poor")}
    pooled = math.sqrt(sum(((v - v.mean()) ** 2).sum() for v in logs.values()) / 8)
    assert power["relative"] and power["seed_sd"] == pytest.approx(pooled)
    assert power == {**seeds_needed(pooled, 5, math.log(1.1)), "relative": True}
    section.power = power
    assert "Detecting 10% would need about" in power_words(section)
