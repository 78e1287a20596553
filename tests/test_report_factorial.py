"""Issue 33: a factorial reading of the headline. Where a data set holds a complete 2 x 2 of
direction (one way / both ways) x pooling (last state / attention), found from the records'
configs, the report says how much of the lead comes from each factor. Tiny synthetic records,
no training."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from seqbench.factorial import CELLS, Cell, analyse
from seqbench.record import write_json_atomic
from seqbench.report import build_report
from seqbench.tasks import TASKS

MODEL = {"cell": "lstm", "embedding_dim": 300, "embedding_dropout": 0.3, "hidden_size": 128, "num_layers": 1,
         "dropout": 0.5, "bidirectional": False, "pooling": "last", "attention": None, "attention_dim": None,
         "impl": "native", "nonlinearity": "tanh", "init": "default", "forget_bias": None}
# name (as variant_of spells it), model.name, bidirectional, attention kind (None: last state)
VARIANTS = [("lstm", "lstm", False, None), ("lstm_bi", "lstm", True, None), ("lstm_concat", "lstm", False, "concat"),
            ("bilstm_attn_concat", "bilstm_attn", True, "concat")]


def _write(root: Path, variant: str, name: str, both: bool, attention, seeds, score, hidden=128, metric="acc",
           task="classification", params=None):
    model = {**MODEL, "name": name, "bidirectional": both, "hidden_size": hidden,
             "pooling": "attention" if attention else "last", "attention": attention}
    for seed in seeds:
        folder = root / f"{variant}_h{hidden}_s{seed}"
        folder.mkdir(parents=True)
        write_json_atomic(folder / "record.json", {
            "status": "done", "model": variant, "dataset": "trec", "seed": seed, "task": task,
            "config_hash": f"{variant}-{hidden}", "data_fingerprint": "d1", "label_names": ["A", "B", "C"],
            "test": {metric: float(score(seed)), "f1": 0.5}, "val_best": {metric: 0.5}, "epochs": 4, "best_epoch": 3,
            "params": params or (1000 * (2 if both else 1) + (50 if attention else 0)),
            "history": [{"epoch": e, "val/acc": 0.5} for e in range(4)],
            "config": {"model": model, "dataset": {"name": "trec", "batch_size": 16, "max_len": 32},
                       "trainer": {"max_epochs": 4, "patience": 2},
                       "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.003}}})


BASE, DIRECTION, POOLING, INTERACTION = 0.80, 0.03, 0.02, 0.0


def _grid(root: Path, seeds=range(5), skip=(), rename=None, direction=DIRECTION, pooling=POOLING,
          interaction=INTERACTION, noise=0.004):
    rng = np.random.default_rng(1)
    for variant, name, both, attention in VARIANTS:
        if variant in skip:
            continue
        mean = BASE + direction * both + pooling * bool(attention) + interaction * (both and bool(attention))
        draws = {s: mean + rng.normal(0, noise) for s in seeds}
        shown = (rename or {}).get(variant, (variant, name))
        _write(root, shown[0], shown[1], both, attention, seeds, draws.__getitem__)


def test_effects_come_back_from_a_known_construction(tmp_path):
    _grid(tmp_path / "runs")
    built = build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    (result,) = built.sections[0].factorials
    e = result.effects
    assert e["direction"].estimate == pytest.approx(DIRECTION, abs=0.004)
    assert e["pooling"].estimate == pytest.approx(POOLING, abs=0.004)
    assert e["interaction"].estimate == pytest.approx(0, abs=0.008)
    assert e["interaction"].low < 0 < e["interaction"].high and e["interaction"].p > 0.05
    assert e["direction"].low > 0 and e["direction"].p < 1e-6 and e["pooling"].low > 0
    # The main effects add up to the lead exactly (each is the mean of its factor's simple effects).
    assert e["direction"].estimate + e["pooling"].estimate == pytest.approx(e["lead"].estimate, abs=1e-12)
    assert e["direction"].estimate == pytest.approx(
        (e["direction within last state"].estimate + e["direction within attention"].estimate) / 2, abs=1e-12)
    # Against statsmodels fitted here: the sum-coded coefficient is half the both-minus-one difference.
    frame = pd.DataFrame([{"score": x, "d": "both" if c.bidirectional else "one", "p": "att" if c.attention else "last"}
                          for c in result.cells.values() for x in c.scores.values()])
    fit = smf.ols("score ~ C(d, Sum) * C(p, Sum)", frame).fit()
    assert abs(fit.params["C(d, Sum)[S.both]"]) * 2 == pytest.approx(e["direction"].estimate, abs=1e-10)
    assert fit.pvalues["C(d, Sum)[S.both]"] == pytest.approx(e["direction"].p, rel=1e-8)
    assert fit.pvalues["C(d, Sum)[S.both]:C(p, Sum)[S.att]"] == pytest.approx(e["interaction"].p, rel=1e-8)
    # What a reader sees: the sentence, the cells with n and params, the CSV.
    text = (tmp_path / "out" / "summary.md").read_text()
    d, p, lead = (100 * e[k].estimate for k in ("direction", "pooling", "lead"))
    assert "### trec: direction × pooling (concat attention)" in text
    assert (f"Of bilstm_attn_concat's {lead:+.1f} points over lstm: reading both ways accounts for {d:+.1f} "
            f"[{100 * e['direction'].low:+.1f}, {100 * e['direction'].high:+.1f}] (last state: "
            f"{100 * e['direction within last state'].estimate:+.1f}") in text
    assert f"attention pooling for {p:+.1f} [" in text
    assert "| lstm_bi | both ways | last state | 5 |" in text and "| 2,050 |" in text
    assert "agreeing with OLS about zero for every effect" in text
    csv = pd.read_csv(tmp_path / "out" / "factorial_trec.csv")
    effect = csv[csv["row"] == "effect"].set_index("name")
    assert effect.loc["direction", "estimate"] == pytest.approx(d, abs=1e-4)
    assert effect.loc["direction", "unit"] == "percentage points"
    assert set(csv[csv["row"] == "cell"]["variant"]) == {v for v, *_ in VARIANTS}
    assert any(line.startswith("  direction × pooling (concat): Of bilstm_attn_concat's") for line in built.terminal())
    assert "direction × pooling" in (tmp_path / "out" / "report.html").read_text()


def test_an_interaction_is_found_and_the_simple_effects_show_where(tmp_path):
    # Attention helps one way by 4 points and both ways not at all: main effect +2, interaction -4.
    _grid(tmp_path / "runs", direction=0.03, pooling=0.04, interaction=-0.04, noise=0.003)
    (result,) = build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199).sections[0].factorials
    e = result.effects
    assert e["interaction"].estimate == pytest.approx(-0.04, abs=0.008) and e["interaction"].high < 0
    assert e["pooling"].estimate == pytest.approx(0.02, abs=0.005)
    assert e["attention within one way"].estimate == pytest.approx(0.04, abs=0.006)
    assert e["attention within both ways"].low < 0 < e["attention within both ways"].high


def test_no_section_without_a_complete_two_by_two(tmp_path):
    _grid(tmp_path / "three", skip=("lstm_concat",))
    built = build_report([tmp_path / "three"], tmp_path / "out", plots=False, resamples=199)
    assert built.sections[0].factorials == []
    assert "direction × pooling" not in (tmp_path / "out" / "summary.md").read_text()
    assert not (tmp_path / "out" / "factorial_trec.csv").exists()
    # One seed in a cell is no cell: the 2 x 2 needs at least two seeds in each.
    _grid(tmp_path / "one", skip=("lstm_bi",))
    _write(tmp_path / "one", "lstm_bi", "lstm", True, None, [0], lambda s: 0.83)
    assert build_report([tmp_path / "one"], tmp_path / "out1", plots=False, resamples=199).sections[0].factorials == []
    # A bi + last cell that differs in anything else (the hidden size) completes nothing.
    _grid(tmp_path / "other", skip=("lstm_bi",))
    _write(tmp_path / "other", "lstm_bi", "lstm", True, None, range(5), lambda s: 0.83 + s / 1000, hidden=64)
    assert build_report([tmp_path / "other"], tmp_path / "out2", plots=False,
                        resamples=199).sections[0].factorials == []


def test_the_design_is_read_from_configs_not_names(tmp_path):
    # The both-ways last-state cell called "fancy" (model.name fancy): configured as bi + last, it counts.
    _grid(tmp_path / "runs", rename={"lstm_bi": ("fancy", "fancy")})
    built = build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    (result,) = built.sections[0].factorials
    assert result.cells[(True, False)].variant == "fancy"
    assert "| fancy | both ways | last state | 5 |" in (tmp_path / "out" / "summary.md").read_text()


def test_errors_are_read_on_the_log_scale():
    # MSE: both ways halves the error, attention multiplies it by 0.8, no interaction.
    rng = np.random.default_rng(0)
    cells = {}
    for both, attention in CELLS:
        level = 0.1 * (0.5 if both else 1) * (0.8 if attention else 1)
        cells[(both, attention)] = Cell(both, attention, f"v{both}{attention}", "h", {
            s: level * math.exp(rng.normal(0, 0.02)) for s in range(4)}, 100.0)
    result = analyse(cells, TASKS["last_step_regression"], "concat")
    assert result.scale == "log"
    assert math.exp(result.effects["direction"].estimate) == pytest.approx(0.5, rel=0.04)
    assert math.exp(result.effects["pooling"].estimate) == pytest.approx(0.8, rel=0.04)
    from seqbench.factorial import sentence
    assert sentence(result).startswith(f"vTrueTrue's mse is ×{math.exp(result.effects['lead'].estimate):.3g} "
                                       f"vFalseFalse's: reading both ways accounts for ×")


def test_each_attention_kind_that_completes_a_two_by_two_gets_its_own_reading(tmp_path):
    _grid(tmp_path / "runs")
    # additive attention both ways and one way (+1 point over last, not +2): a second 2 x 2 on the same last cells
    rng = np.random.default_rng(7)
    for variant, name, both in (("lstm_additive", "lstm", False), ("bilstm_attn_additive", "bilstm_attn", True)):
        draws = {s: BASE + DIRECTION * both + 0.01 + rng.normal(0, 0.004) for s in range(5)}
        _write(tmp_path / "runs", variant, name, both, "additive", range(5), draws.__getitem__)
    # scaled_dot both ways only: no one-way partner, so no reading for it
    _write(tmp_path / "runs", "bilstm_attn_scaled_dot", "bilstm_attn", True, "scaled_dot", range(5),
           lambda s: 0.84 + s / 1000)
    built = build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    readings = {r.attention: r for r in built.sections[0].factorials}
    assert set(readings) == {"additive", "concat"}
    assert readings["additive"].cells[(False, False)].variant == readings["concat"].cells[(False, False)].variant == "lstm"
    assert readings["additive"].effects["pooling"].estimate == pytest.approx(0.01, abs=0.004)
    assert readings["concat"].effects["pooling"].estimate == pytest.approx(POOLING, abs=0.004)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "direction × pooling (additive attention)" in text and "direction × pooling (concat attention)" in text
    assert "scaled_dot attention" not in text
    assert set(pd.read_csv(tmp_path / "out" / "factorial_trec.csv")["attention"]) == {"additive", "concat"}
