"""seqbench.aso against deepsig's aso: the same eps_min, to the last bit, on the committed TREC runs'
scores and on small made-up cases (ties, unequal seed counts, one side dominating, Bonferroni)."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from deepsig import aso as deepsig_aso

from seqbench.aso import aso

TREC = Path(__file__).resolve().parent.parent / "results" / "runs" / "trec"


def trec_scores(model: str) -> list[float]:
    return [json.loads(path.read_text())["test"]["acc"] for path in sorted(TREC.glob(f"{model}_s*/record.json"))]


def deepsig(a, b, comparisons, iterations, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deepsig warns on a zero Wasserstein distance
        return float(deepsig_aso(list(a), list(b), confidence_level=0.95, num_comparisons=comparisons,
                                 num_bootstrap_iterations=iterations, seed=seed, show_progress=False))


RNG = np.random.default_rng(0)
CASES = {
    "trec gru vs lstm": (trec_scores("gru"), trec_scores("lstm")),
    "trec bilstm_attn_additive vs rnn": (trec_scores("bilstm_attn_additive"), trec_scores("rnn")),
    "3 vs 7 seeds": (RNG.normal(size=3), RNG.normal(size=7)),
    "ties": ([0.9, 0.9, 0.91, 0.9, 0.92], [0.9, 0.89, 0.91, 0.9, 0.88]),
    "identical": ([1.0] * 4, [1.0] * 4),
    "dominating": ([2.0, 2.1, 2.2], [0.0, 0.1, 0.2]),
}


@pytest.mark.parametrize("comparisons", [1, 120])
@pytest.mark.parametrize("case", list(CASES))
def test_aso_gives_deepsigs_eps_min(case, comparisons):
    a, b = CASES[case]
    assert len(a) >= 2 and len(b) >= 2
    for seed in (0, 5):
        assert aso(a, b, 0.95, comparisons, 60, seed=seed) == deepsig(a, b, comparisons, 60, seed)
