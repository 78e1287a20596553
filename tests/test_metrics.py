"""A task's metrics as entries of the task registry: the AUROC the report computes from a finished
run's predictions (its rank formula against hand counts and an independent pair count), and that it
reaches the classification tables of a report without training again."""
import math
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqbench.record import write_json_atomic
from seqbench.tasks import TASKS, macro_auroc, prediction_metrics, rank_auroc


def pair_auroc(scores, positives) -> float:
    """AUROC by counting: over every (positive, negative) pair, 1 where the positive scores higher,
    one half on a tie (an independent computation: no ranks)."""
    pos = [s for s, p in zip(scores, positives) if p]
    neg = [s for s, p in zip(scores, positives) if not p]
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in product(pos, neg)) / (len(pos) * len(neg))


def test_auroc_of_a_small_case_with_ties_counted_by_hand():
    # positives score 0.4 and 0.8; negatives 0.1, 0.35, 0.4. Pairs: 0.4 beats 0.1 and 0.35 and ties
    # 0.4 (one half); 0.8 beats all three: (1 + 1 + 0.5 + 3) / 6.
    assert rank_auroc([0.1, 0.4, 0.35, 0.8, 0.4], [False, True, False, True, False]) == pytest.approx(5.5 / 6)
    assert rank_auroc([0.3, 0.3, 0.3], [True, False, True]) == pytest.approx(0.5)   # all tied: chance
    assert math.isnan(rank_auroc([0.2, 0.9], [True, True]))   # no negative: undefined


def test_binary_auroc_is_the_positive_class_s():
    frame = pd.DataFrame({"target": [0, 0, 1, 1, 0, 1], "p_neg": [0.9, 0.4, 0.35, 0.2, 0.5, 0.5],
                          "p_pos": [0.1, 0.6, 0.65, 0.8, 0.5, 0.5]})
    expected = pair_auroc(frame["p_pos"], frame["target"] == 1)
    assert macro_auroc(frame) == pytest.approx(expected) and expected == pytest.approx(7.5 / 9)


def test_macro_one_vs_rest_auroc_of_three_classes_skips_a_class_absent_from_the_labels():
    rng = np.random.default_rng(3)
    target = rng.integers(0, 3, 60)
    logits = rng.normal(size=(60, 4)).round(1)            # rounded: ties within a column
    logits[np.arange(60), target] += 1.0
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    frame = pd.DataFrame({"index": range(60), "target": target, "predicted": p.argmax(1),
                          **{f"p_{name}": p[:, k] for k, name in enumerate(["ABBR", "DESC", "ENTY", "HUM"])}})
    # class 3 (HUM) never occurs in the labels: the macro average is over the three that do
    expected = np.mean([pair_auroc(p[:, k], target == k) for k in range(3)])
    assert macro_auroc(frame) == pytest.approx(expected, abs=1e-12)
    assert prediction_metrics(TASKS["classification"], frame) == {"auroc": pytest.approx(expected, abs=1e-12)}
    assert prediction_metrics(TASKS["classification"], frame.drop(columns="target")) == {}   # cannot: left out


def test_auroc_is_one_metric_entry_computed_from_predictions():
    task = TASKS["classification"]
    auroc = next(m for m in task.metrics if m.name == "auroc")
    assert auroc.computed == "predictions" and auroc.direction == "max" and task.metric == "acc"   # ranking unchanged
    assert [m.name for m in task.training_metrics] == ["acc", "f1"]   # what a run records is unchanged


def _finished_runs(root: Path, classes: list[str]) -> dict[tuple[str, int], float]:
    """Finished classification runs whose records hold acc and f1 only (as runs trained before AUROC
    was listed), with their predictions beside them; the AUROC each should get."""
    rng = np.random.default_rng(0)
    target = rng.integers(0, len(classes), 80)
    expected = {}
    for model, signal in (("gru", 2.0), ("lstm", 0.5)):
        for seed in range(3):
            folder = root / f"{model}_s{seed}"
            folder.mkdir(parents=True)
            logits = rng.normal(size=(80, len(classes)))
            logits[np.arange(80), target] += signal
            p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            pd.DataFrame({"index": range(80), "target": target, "predicted": p.argmax(1),
                          **{f"p_{name}": p[:, k] for k, name in enumerate(classes)}}).to_csv(
                folder / "predictions.csv", index=False)
            correct = float((p.argmax(1) == target).mean())
            write_json_atomic(folder / "record.json", {
                "status": "done", "model": model, "dataset": "trec", "seed": seed, "task": "classification",
                "config_hash": model, "data_fingerprint": "d1", "predictions": "predictions.csv",
                "label_names": classes, "test": {"acc": correct, "f1": 0.5}, "val_best": {"acc": 0.8},
                "best_epoch": 1, "epochs": 2, "epoch_seconds": [1.0, 1.0], "params": 100,
                "config": {"model": {"name": model}, "dataset": {"name": "trec"}, "trainer": {"max_epochs": 2}}})
            if len(classes) == 2:
                expected[model, seed] = pair_auroc(p[:, 1], target == 1)
            else:
                expected[model, seed] = float(np.mean([pair_auroc(p[:, k], target == k) for k in range(len(classes))]))
    return expected


@pytest.mark.parametrize("classes", [["neg", "pos"], ["ABBR", "DESC", "ENTY"]])
def test_a_classification_report_shows_the_auroc_of_finished_runs_from_their_predictions(tmp_path, classes):
    from seqbench.report import build_report, summary_rows
    expected = _finished_runs(tmp_path / "runs", classes)
    built = build_report([tmp_path / "runs"], tmp_path / "out", plots=False, statistics=False, resamples=99)
    section = built.sections[0]
    header, rows, _ = summary_rows(section)
    column = header.index("test auroc")
    assert header.index("test f1 (%)") < column < header.index("params")
    for row in rows:
        model = row[0]
        if model.startswith("*"):   # a baseline row (majority class, chance): no AUROC, padded to the header
            assert len(row) == len(header) and row[column] == "–"
            continue
        assert row[column] == f"{np.mean([expected[model, s] for s in range(3)]):.3f}"
    assert "| test auroc |" in (tmp_path / "out" / "summary.md").read_text()
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")          # every run's test metrics, AUROC among them
    for r in runs.to_dict("records"):
        assert r["test_auroc"] == pytest.approx(expected[r["model"], r["seed"]])
    summary = pd.read_csv(tmp_path / "out" / "summary_trec.csv").set_index("model")
    assert summary.loc["gru", "test_auroc_mean"] == pytest.approx(np.mean([expected["gru", s] for s in range(3)]))
    assert summary.loc["gru", "test_auroc_mean"] > summary.loc["lstm", "test_auroc_mean"]
