"""What each kind of task means, declared once: the metrics it reports (the first picks the best
epoch and ranks variants, the second is shown beside it), the per-example score paired tests
compare, the baseline a curve is read against, when a run counts as "solved", and the words
tables use. Records, reports, statistics, TensorBoard and ``eval`` all read this registry; the
LightningModule that trains each kind is ``seqbench.training.TASK_MODULES`` (the execution layer
reads this one, never the other way).

A metric is one ``Metric`` entry: its name, which way is better, its words, how it is printed,
and how it is computed: by a torchmetrics class from each evaluation step's predictions and
targets while the run trains (recorded under ``test`` / ``val_best``), or by the report from a
finished run's ``predictions.csv`` (so finished runs get it without training again).

Cheap to import (no torch): reports and the planner read it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


# How a metric's value (a fraction for percent metrics) is printed in tables.
PRINTED = {"percent": lambda value: f"{100 * value:.1f}",      # fractions in percent, one decimal
           "fraction": lambda value: f"{value:.3f}",           # a fraction as it is (AUROC)
           "scientific": lambda value: f"{value:.2e}"}         # error measures: three significant digits


@dataclass(frozen=True)
class Metric:
    name: str                   # the key in records (test/<name>) and table columns (test_<name>_mean)
    words: str                  # what tables and sentences call it
    direction: str = "max"      # "max" or "min": which way is better
    printed: str = "percent"    # a key of PRINTED
    positive: bool = False      # a positive error measure: log-scale axes, intervals around the geometric mean
    # Computed while training: the torchmetrics class (module.Class) fed each step's predictions and
    # targets, its options, and whether it is given the number of classes. Neither this nor
    # ``from_predictions``: the LightningModule logs it itself (the copy task's cross-entropy).
    torchmetric: str | None = None
    options: tuple[tuple[str, object], ...] = ()
    counts_classes: bool = False
    # Computed by the report from a finished run's predictions (a pandas DataFrame of predictions.csv)
    from_predictions: Callable | None = None

    @property
    def computed(self) -> str:
        return "predictions" if self.from_predictions is not None else "training"


def rank_auroc(scores, positives) -> float:
    """The area under the ROC curve of ``scores`` for telling ``positives`` (booleans) from the
    rest: the Mann-Whitney U of the positives' ranks over n+ n-, ties given their average rank (a
    tie between a positive and a negative counts one half). NaN where one side is empty."""
    from scipy.stats import rankdata
    scores, positives = np.asarray(scores, dtype=float), np.asarray(positives, dtype=bool)
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)   # ties averaged
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(predictions) -> float:
    """Macro one-vs-rest AUROC from a predictions table: ``target`` (class ids) and one ``p_<label>``
    column per class, in class order (as ``train.save_predictions`` writes them). Two classes: the
    usual AUROC of the positive class (the second); more: the mean over the classes present in the
    test labels of each class's AUROC against the rest (absent classes have none). NaN where no
    class has both positives and negatives."""
    columns = [c for c in predictions.columns if str(c).startswith("p_")]
    if "target" not in predictions or len(columns) < 2:
        raise KeyError("the predictions have no target and per-class probability (p_<label>) columns")
    targets = predictions["target"].to_numpy()
    if len(columns) == 2:
        return rank_auroc(predictions[columns[1]], targets == 1)
    values = [rank_auroc(predictions[column], targets == k) for k, column in enumerate(columns)]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


ACC = Metric("acc", "accuracy", torchmetric="torchmetrics.classification.MulticlassAccuracy",
             options=(("average", "micro"),), counts_classes=True)
MSE = Metric("mse", "mean squared error", "min", "scientific", positive=True,
             torchmetric="torchmetrics.MeanSquaredError")
MAE = Metric("mae", "mean absolute error", "min", "scientific", positive=True,
             torchmetric="torchmetrics.MeanAbsoluteError")


@dataclass(frozen=True)
class TaskKind:
    name: str
    metrics: tuple[Metric, ...]  # the first picks the best epoch and ranks variants; the second is shown beside it
    example_score: str          # the predictions.csv column paired tests compare, per test example
    example_words: str          # what one example's score is, in words
    solved_rule: str | None = None   # dataset.<key> that holds the "solved" threshold, if any
    solved_metric: str | None = None  # the test metric the threshold applies to

    @property
    def metric(self) -> str:
        """The primary metric: picks the best epoch, ranks variants."""
        return self.metrics[0].name

    @property
    def direction(self) -> str:
        return self.metrics[0].direction

    @property
    def shown_beside(self) -> tuple[Metric, ...]:
        """The metrics tables show beside the primary one, in their order."""
        return self.metrics[1:]

    @property
    def training_metrics(self) -> tuple[Metric, ...]:
        """Those a run records (under ``test`` and in its history), computed while it trains."""
        return tuple(m for m in self.metrics if m.computed == "training")

    @property
    def prediction_metrics(self) -> tuple[Metric, ...]:
        """Those the report computes from a finished run's predictions."""
        return tuple(m for m in self.metrics if m.computed == "predictions")

    @property
    def per_step(self) -> bool:
        return self.name.startswith("per_step")

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "max"

    @property
    def monitor(self) -> str:
        return f"val/{self.metric}"

    def metric_words(self, metric: str | None = None) -> str:
        return METRIC_WORDS.get(metric or self.metric, metric or self.metric)

    def scale(self, metric: str | None = None) -> float:
        """Display scale: 100 for fractions shown in percent (points), else 1."""
        return 100.0 if (metric or self.metric) in PERCENT_METRICS else 1.0

    def difference_units(self) -> str:
        return "points" if self.metric in PERCENT_METRICS else self.metric

    def is_solved(self, record: dict) -> bool | None:
        """Whether a finished run counts as solved under its data set's threshold; None where the
        task or the data set has no such rule."""
        if self.solved_rule is None:
            return None
        threshold = ((record.get("config") or {}).get("dataset") or {}).get(self.solved_rule)
        return self.meets_threshold((record.get("test") or {}).get(self.solved_metric), threshold)

    def meets_threshold(self, value, threshold) -> bool | None:
        """Whether a value of ``solved_metric`` (test, or validation while training) is "solved"."""
        if self.solved_rule is None or threshold is None or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            return None
        return value < threshold if self.solved_rule.endswith("below") else value >= threshold

    def solved_words(self, record: dict) -> str | None:
        threshold = ((record.get("config") or {}).get("dataset") or {}).get(self.solved_rule or "")
        if threshold is None:
            return None
        relation = "below" if self.solved_rule.endswith("below") else "at least"
        return f"test {self.metric_words(self.solved_metric)} {relation} {threshold}"


TASKS: dict[str, TaskKind] = {task.name: task for task in (
    # One label per sequence (IMDB, TREC, your own files).
    TaskKind("classification", (
        ACC,
        Metric("f1", "macro F1", torchmetric="torchmetrics.classification.MulticlassF1Score",
               options=(("average", "macro"),), counts_classes=True),
        Metric("auroc", "macro AUROC (one-vs-rest)", printed="fraction", from_predictions=macro_auroc),
    ), "correct", "correct (1) or not (0)"),
    # A value at every step (sin -> cos); the first warmup steps are not scored.
    TaskKind("per_step_regression", (MSE, MAE), "squared_error",
             "squared error, averaged over the sequence's scored steps"),
    # One value read after the last step (the adding problem).
    TaskKind("last_step_regression", (MSE, MAE), "squared_error", "squared error",
             solved_rule="solved_below", solved_metric="mse"),
    # A class at every step (the copy task): cross-entropy per step picks the best epoch (smooth
    # while the accuracy on the recalled symbols is still flat) and is what paired tests compare;
    # "solved" is read on the recall accuracy. The module logs the cross-entropy itself.
    TaskKind("per_step_classification", (Metric("ce", "cross-entropy per step", "min", "scientific", positive=True),
                                         ACC), "ce", "cross-entropy per step of the sequence",
             solved_rule="solved_above", solved_metric="acc"),
)}

METRICS: dict[str, Metric] = {m.name: m for task in TASKS.values() for m in task.metrics}
METRIC_WORDS = {**{name: m.words for name, m in METRICS.items()}, "loss": "loss"}
# Metrics shown in percent (their values are fractions in records).
PERCENT_METRICS = {name for name, m in METRICS.items() if m.printed == "percent"}
# Positive error measures: log-scale axes and intervals around the geometric mean.
POSITIVE_METRICS = {name for name, m in METRICS.items() if m.positive} | {"loss"}


def task_kind(name: str) -> TaskKind:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def task_of(record: dict) -> TaskKind:
    """The record's task; records written before tasks were recorded: sin->cos or classification."""
    name = record.get("task") or ("per_step_regression" if record.get("dataset") == "sincos" else "classification")
    return task_kind(name)


def format_metric(value, metric: str) -> str:
    """One precision per metric, as its entry says (``PRINTED``): fractions in percent with one
    decimal, positive error measures with three significant digits in scientific notation."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return PRINTED[METRICS[metric].printed if metric in METRICS else "scientific"](value)


def prediction_metrics(task: TaskKind, predictions) -> dict[str, float]:
    """The task's metrics computed from a finished run's predictions table (``test`` values, as a
    record holds them); those the table cannot give are left out."""
    out = {}
    for metric in task.prediction_metrics:
        try:
            out[metric.name] = float(metric.from_predictions(predictions))
        except (KeyError, ValueError, TypeError, IndexError):
            continue
    return out
