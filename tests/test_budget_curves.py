"""Budget curves (Dodge et al. 2019): the expected best of n trials, against cases computed by
hand, never decreasing in n, and written from a search's studies.json."""
import csv
import itertools

import pytest

from seqbench.budget_curves import budget_curves, expected_best, write_budget_curves


def test_expected_best_matches_a_case_computed_by_hand():
    # Scores 0.80, 0.85, 0.90 (N = 3). n = 1: the mean, 0.85. n = 2: P(best = v_(i)) = (i/3)^2 - ((i-1)/3)^2
    # = 1/9, 3/9, 5/9, so E = (0.80 + 3 * 0.85 + 5 * 0.90) / 9 = 7.85 / 9.
    assert expected_best([0.90, 0.80, 0.85], 1) == pytest.approx(0.85)
    assert expected_best([0.90, 0.80, 0.85], 2) == pytest.approx(7.85 / 9)
    # The same by enumerating all 3^2 ordered draws with replacement.
    draws = list(itertools.product([0.80, 0.85, 0.90], repeat=2))
    assert expected_best([0.90, 0.80, 0.85], 2) == pytest.approx(sum(max(d) for d in draws) / len(draws))
    # An error: the best is the lowest.
    errors = [0.3, 0.1, 0.2]
    draws = list(itertools.product(errors, repeat=3))
    assert expected_best(errors, 3, higher=False) == pytest.approx(sum(min(d) for d in draws) / len(draws))


def test_curves_never_decrease_and_reach_the_best_trial(tmp_path):
    studies = {"trec-gru-1": {"variant": "gru", "trial_values": [0.70, 0.86, 0.84, None, 0.81]},
               "trec-rnn-2": {"variant": "rnn", "trial_values": [0.80, 0.79, 0.83]}}
    rows = budget_curves(studies)
    for variant in ("gru", "rnn"):
        curve = [r["expected_best"] for r in rows if r["variant"] == variant]
        assert curve == sorted(curve) and len(curve) == (4 if variant == "gru" else 3)
        assert max(curve) <= max(v for v in studies[f"trec-{variant}-{1 if variant == 'gru' else 2}"]["trial_values"]
                                 if v is not None)
    table, figure = write_budget_curves(studies, tmp_path, metric="acc")
    with open(table) as stream:
        written = list(csv.DictReader(stream))
    assert list(written[0]) == ["variant", "trials", "expected_best"] and len(written) == 7
    assert figure.is_file() and figure.stat().st_size > 0


def test_no_trial_scores_means_no_curves(tmp_path):
    assert write_budget_curves({"s": {"variant": "gru"}}, tmp_path) is None
    with pytest.raises(ValueError, match="no finite trial score"):
        expected_best([float("nan")], 1)


def test_the_report_rebuilds_the_curves_from_a_search_s_studies(tmp_path):
    """``seqbench report ... --studies studies.md`` reads studies.json beside it: the curves are
    rebuilt from committed files alone."""
    import json

    from seqbench.document import Document
    from seqbench.report import budget_curve_block
    studies = tmp_path / "studies.json"
    studies.write_text(json.dumps({"trec-gru-1": {"variant": "gru", "metric": "acc", "trial_values": [0.8, 0.9]}}))
    doc = Document("t")
    budget_curve_block(doc, studies, tmp_path / "out", plots=False)
    assert (tmp_path / "out" / "budget_curves.csv").read_text().splitlines() == [
        "variant,trials,expected_best", "gru,1,0.85", "gru,2,0.875"]
    assert "Budget curves (Dodge et al. 2019)" in doc.to_markdown()
    studies.write_text(json.dumps({"trec-gru-1": {"variant": "gru", "metric": "acc"}}))   # a search before curves
    doc = Document("t")
    budget_curve_block(doc, studies, tmp_path / "older", plots=False)
    assert "No budget curves" in doc.to_markdown() and not (tmp_path / "older").exists()
