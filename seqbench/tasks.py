"""What each kind of task means, declared once: its primary metric and which way is better,
the secondary metric, the per-example score paired tests compare, the baseline a curve is read
against, when a run counts as "solved", and the words tables use. Records, reports, statistics,
TensorBoard and ``eval`` all read this registry; the LightningModule that trains each kind is
``seqbench.training.TASK_MODULES`` (the execution layer reads this one, never the other way).

Cheap to import (no torch): reports and the planner read it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

METRIC_WORDS = {"acc": "accuracy", "f1": "macro F1", "mse": "mean squared error", "mae": "mean absolute error",
                "ce": "cross-entropy per step", "loss": "loss"}
# Metrics shown in percent (their values are fractions in records).
PERCENT_METRICS = {"acc", "f1"}
# Positive error measures: log-scale axes and intervals around the geometric mean.
POSITIVE_METRICS = {"mse", "mae", "ce", "loss"}


@dataclass(frozen=True)
class TaskKind:
    name: str
    metric: str                 # the primary metric: picks the best epoch, ranks variants
    direction: str              # "max" or "min"
    secondary: str              # shown beside it
    example_score: str          # the predictions.csv column paired tests compare, per test example
    example_words: str          # what one example's score is, in words
    solved_rule: str | None = None   # dataset.<key> that holds the "solved" threshold, if any
    solved_metric: str | None = None  # the test metric the threshold applies to

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
    TaskKind("classification", "acc", "max", "f1", "correct", "correct (1) or not (0)"),
    # A value at every step (sin -> cos); the first warmup steps are not scored.
    TaskKind("per_step_regression", "mse", "min", "mae", "squared_error",
             "squared error, averaged over the sequence's scored steps"),
    # One value read after the last step (the adding problem).
    TaskKind("last_step_regression", "mse", "min", "mae", "squared_error", "squared error",
             solved_rule="solved_below", solved_metric="mse"),
    # A class at every step (the copy task): cross-entropy per step picks the best epoch (smooth
    # while the accuracy on the recalled symbols is still flat) and is what paired tests compare;
    # "solved" is read on the recall accuracy.
    TaskKind("per_step_classification", "ce", "min", "acc", "ce", "cross-entropy per step of the sequence",
             solved_rule="solved_above", solved_metric="acc"),
)}


def task_kind(name: str) -> TaskKind:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    return TASKS[name]


def task_of(record: dict) -> TaskKind:
    """The record's task; records written before tasks were recorded: sin->cos or classification."""
    name = record.get("task") or ("per_step_regression" if record.get("dataset") == "sincos" else "classification")
    return task_kind(name)


def format_metric(value, metric: str) -> str:
    """One precision per metric: fractions in percent with one decimal, positive error measures
    with three significant digits in scientific notation."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if metric in PERCENT_METRICS:
        return f"{100 * value:.1f}"
    return f"{value:.2e}"
