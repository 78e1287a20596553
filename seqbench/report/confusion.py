"""A classifier's confusion matrices (per seed, pooled per variant), the classes figures show,
per-class precision and recall, and the majority-class and chance baselines, from each finished
run's predictions."""
from __future__ import annotations

import math

import pandas as pd

from ..files import ignore_field
from ..results import VariantLabels, _natural, read_predictions


def class_baselines(records: list[dict]) -> dict[str, float]:
    """The majority-class and chance accuracies of a classification test set, from its labels."""
    for record in records:
        frame = read_predictions(record)
        if frame is not None and "target" in frame:
            targets = frame["target"]
            classes = len(record.get("label_names") or []) or targets.nunique()
            return {"majority class": float(targets.value_counts(normalize=True).max()),
                    "chance (uniform guess)": 1.0 / classes}
    return {}


def run_confusion(record: dict) -> pd.DataFrame | None:
    """Counts of (true, predicted) classes of one run, from its predictions beside its record."""
    frame = read_predictions(record)
    if frame is None or "target" not in frame or "predicted" not in frame:
        return None
    names = record.get("label_names") or sorted(set(frame["target"]) | set(frame["predicted"]))
    index = pd.Index(names, name="true")
    try:
        return pd.crosstab(frame["target"].map(lambda i: names[int(i)]),
                           frame["predicted"].map(lambda i: names[int(i)])).reindex(index=index, columns=names,
                                                                                     fill_value=0)
    except (ValueError, TypeError, IndexError):   # class ids that are not the record's classes
        ignore_field(record["record_path"], "predictions", "its class ids do not match the record's classes")
        return None


def seed_confusions(records: list[dict], labels: VariantLabels) -> dict[str, dict]:
    """Per variant, each seed's counts of (true, predicted) classes: {variant: {seed: matrix}}."""
    out: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: _natural((r.get("seed"),))):
        counts = run_confusion(record)
        if counts is not None:
            out.setdefault(labels[record["config_hash"]], {})[record.get("seed")] = counts
    return out


def confusion_matrices(records: list[dict], labels: VariantLabels,
                       by_seed: dict[str, dict] | None = None) -> dict[str, pd.DataFrame]:
    """Per variant, counts of (true, predicted) classes pooled over its seeds."""
    by_seed = seed_confusions(records, labels) if by_seed is None else by_seed
    return {label: sum(list(seeds.values())[1:], list(seeds.values())[0]) for label, seeds in by_seed.items() if seeds}


# Per-class figures and tables show at most this many classes (those with the most test examples):
# a 1,000-class data set's matrices stay in the CSVs, where a reader can use them.
SHOWN_CLASSES = 20


def shown_classes(matrices: dict[str, pd.DataFrame], cap: int = SHOWN_CLASSES) -> list | None:
    """The ``cap`` classes with the most test examples (pooled over variants), in the classes' own
    order; None when there are no more than ``cap`` (all are shown)."""
    if not matrices:
        return None
    first = next(iter(matrices.values()))
    if len(first.index) <= cap:
        return None
    support = sum(matrix.sum(axis=1) for matrix in matrices.values())
    top = set(support.sort_values(ascending=False, kind="stable").index[:cap])
    return [name for name in first.index if name in top]


def shown(matrix: pd.DataFrame, classes: list | None) -> pd.DataFrame:
    """A confusion matrix cut to the classes shown (rows and columns); the whole one when all are."""
    return matrix if classes is None else matrix.loc[classes, classes]


def per_class_table(matrices: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """Variants x classes: precision and recall (in percent), from the pooled confusion matrices."""
    if not matrices:
        return None
    rows = []
    for label, matrix in matrices.items():
        for name in matrix.index:
            predicted, true = matrix[name].sum(), matrix.loc[name].sum()
            rows.append({"variant": label, "class": name, "support": int(true),
                         "precision": 100 * matrix.loc[name, name] / predicted if predicted else math.nan,
                         "recall": 100 * matrix.loc[name, name] / true if true else math.nan})
    return pd.DataFrame(rows)
