"""Adaptive seeds (``seqbench adaptive``): the looks, the decision at each, the error rate of the
whole sequential procedure, a data set whose variants have different seed counts by design, and a
real run on tiny generated data (trained once, then reused)."""
import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from seqbench.adaptive import adaptive_run, looks, main, undecided
from tests.conftest import TINY


def test_looks_are_few_batches_up_to_the_cap():
    assert looks(3, 10) == [3, 5, 8, 10]
    assert looks(2, 3) == [2, 3]
    assert looks(3, 3) == [3]


def test_a_cap_below_the_start_or_a_seed_override_is_refused_in_one_line(capsys):
    for argv in (["model=gru,lstm", "dataset=sincos", "--cap", "2"],
                 ["model=gru,lstm", "dataset=sincos", "seed=0,1"],
                 ["model=gru", "dataset=sincos"],
                 ["model=gru,lstm", "dataset=sincos,adding"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code != 0
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
    with pytest.raises(SystemExit):
        main(["model=gru,lstm", "dataset=sincos", "--cap", "2"])
    assert "--cap 2 is below the 3 seeds" in capsys.readouterr().err


def test_only_the_variants_not_separated_from_the_best_go_on():
    rng = np.random.default_rng(0)
    scores = {"top": 0.90 + 0.002 * rng.standard_normal(3), "close": 0.899 + 0.002 * rng.standard_normal(3),
              "far": 0.60 + 0.002 * rng.standard_normal(3)}
    scores = {v: dict(enumerate(x)) for v, x in scores.items()}
    assert sorted(undecided(scores, "classification", 0.0125)) == ["close", "top"]
    del scores["close"]
    assert undecided(scores, "classification", 0.0125) == []   # the best stands alone: decided


@pytest.mark.slow   # the fast lane stays under 5 minutes on 2 cores; CI runs both lanes
def test_the_sequential_procedure_keeps_its_error_rate():
    """The same simulation as ``seqbench calibrate``'s sequential cell, fewer families: identical
    variants, looks at 3, 5, 8, 10 seeds, alpha / 4 each. Fails beyond what a binomial at 5% gives
    with probability 0.001; the same bound catches re-testing at a liberal level (alpha 1.2, 0.3 a
    look)."""
    from seqbench.calibration import sequential_fwer
    families = 300
    bound = scipy_stats.binom.ppf(0.999, families, 0.05)
    for spreads in ("equal", "unequal"):
        result = sequential_fwer(spreads, families)
        assert result["fwer"] * families <= bound, result
        assert result["worst_runs"] == 100 and result["looks"] == [3, 5, 8, 10]
    assert sequential_fwer("equal", families, alpha=1.2)["fwer"] * families > bound


def test_different_seed_counts_by_design_are_complete():
    from seqbench.report import completeness
    from seqbench.results import VariantLabels
    records = ([{"status": "done", "config_hash": "A", "model": "a", "seed": s} for s in range(3)]
               + [{"status": "done", "config_hash": "B", "model": "b", "seed": s} for s in range(5)])
    labels = VariantLabels({"A": "a", "B": "b"}, {"A": "a", "B": "b"})
    assert completeness(records, labels) == ["a lacks seeds 3, 4 that other variants have"]
    design = {"A": {"seeds": 3, "stopped": "decided"}, "B": {"seeds": 5, "stopped": "cap"}}
    assert completeness(records, labels, design) == []
    design["A"]["stopped"] = "running"      # stopped by an interruption, not by the rule: still incomplete
    assert completeness(records, labels, design) != []


@pytest.mark.slow   # the fast lane stays under 5 minutes on 2 cores; CI runs both lanes
def test_an_adaptive_run_on_tiny_data_stops_records_why_and_is_reused(tmp_path, capsys):
    rest = ["dataset=sincos", *TINY, f"paths.output_root={tmp_path}"]
    out = tmp_path / "adaptive"
    design = adaptive_run(["gru", "lstm"], rest, looks(2, 3), out=out)
    said = capsys.readouterr().out
    assert "at most 6 runs (worst case: every variant to the cap 3)" in said
    stored = json.loads((out / "adaptive.json").read_text())
    assert stored == json.loads(json.dumps(design)) and stored["alpha_per_look"] == pytest.approx(0.025)
    for entry in stored["variants"].values():
        assert entry["stopped"] in ("decided", "cap")
        assert entry["seeds"] == (3 if entry["stopped"] == "cap" else 2)
    records = [json.loads(p.read_text()) for p in out.glob("runs/*/record.json")]
    assert len(records) == sum(e["seeds"] for e in stored["variants"].values())
    assert all(r["adaptive"]["alpha_per_look"] == pytest.approx(0.025) for r in records)
    summary = (out / "report" / "summary.md").read_text()
    assert "Adaptive seeds (2 looks at α = 0.025 each, cap 3" in summary and "Incomplete" not in summary
    again = adaptive_run(["gru", "lstm"], rest, looks(2, 3), out=out, report=False)
    assert again == design
    said = capsys.readouterr().out
    assert said.count("(reused)") == len(records)   # nothing trained again
