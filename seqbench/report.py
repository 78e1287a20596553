"""``seqbench report [FOLDERS...] [--out DIR]``: comparison tables, figures and the statistical
verdict, built only from run records (also run at the end of every multirun, into
``<sweep>/report``). Written twice from one document: ``summary.md`` and a self-contained
``report.html``.

Runs are grouped by data identity (the data set's name and the fingerprint of its files), then by
variant (the config, labelled by everything that differs); each data set's tables, figures and
statistics are computed once (``DataSection``) and then written.
"""
from __future__ import annotations

import argparse
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import SeqbenchError
from .data.vectors import vectors_words
from .document import Document
from .latex import write_summary
from .record import FINISHED_STATUSES, MEMORY_KINDS, describe_hardware, short_hash
from .results import (VariantLabels, _natural, budget_words, data_key, data_labels,
                      learning_curves, load_records, long_table, read_predictions, slug, summary_table,
                      test_set_key, variant_labels)
from .tasks import PERCENT_METRICS, POSITIVE_METRICS, TaskKind, format_metric, task_of
from .runtime import entry_point

log = logging.getLogger(__name__)


def _plain(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


# ----------------------------------------------------------------------------- computation
@dataclass
class Comparison:
    """One test set of a data set: the seed-level comparison behind the verdict, and apart from it
    the per-example comparison conditional on the trained networks; what each left out, and why."""
    test_set: str
    name: str
    seed: object                      # stats.SeedLevel
    verdict: str                      # the groups line, or why there is no verdict (incomplete)
    groups: str = ""                  # the groups line, also for an incomplete data set (runs so far)
    conditional: list = field(default_factory=list)       # stats.ConditionalPair
    examples: int = 0
    left_out: list[str] = field(default_factory=list)      # runs not in the seed-level test, with the reason
    left_out_examples: list[str] = field(default_factory=list)   # runs not in the per-example comparison
    saturated: str | None = None
    far: list = field(default_factory=list)               # (variant, seed, score, robust z)
    far_confusion: dict = field(default_factory=dict)     # (variant, seed) -> confusion matrix


@dataclass
class DataSection:
    label: str
    stem: str
    task: TaskKind
    records: list[dict]
    runs: pd.DataFrame
    table: pd.DataFrame
    labels: VariantLabels
    problems: list[str]
    baselines: dict[str, float] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    per_class: pd.DataFrame | None = None
    confusion: dict[str, pd.DataFrame] = field(default_factory=dict)
    seed_confusion: dict[str, dict] = field(default_factory=dict)   # variant -> {seed: confusion matrix}
    shown_classes: list | None = None   # the classes figures and tables show (None: all); the CSVs hold all
    lengths: "TextLengths | None" = None
    lengths_note: str = ""          # why there are no lengths, where there are none
    by_length: pd.DataFrame | None = None
    factorials: list = field(default_factory=list)   # factorial.Factorial: direction x pooling 2 x 2 readings
    figures: list[tuple[Path, str]] = field(default_factory=list)
    adaptive: dict[str, dict] = field(default_factory=dict)   # config hash -> adaptive seeds' entry (adaptive.json)

    @property
    def adaptive_alpha(self) -> float | None:
        """The level adaptive seeds spent at each look, where they made every variant: the verdict
        decides at it, never again at the full alpha."""
        levels = {entry.get("alpha") for entry in self.adaptive.values()}
        return float(min(levels)) if self.adaptive and None not in levels else None

    @property
    def adaptive_words(self) -> str:
        """``adaptive seeds (4 looks at α = 0.0125 each, cap 10): gru 3 seeds (decided), ...``."""
        if self.adaptive_alpha is None:
            return ""
        entries = sorted(self.adaptive.items(), key=lambda item: str(self.labels.get(item[0])))
        first = entries[0][1]
        stops = ", ".join(f"{self.labels.get(h)} {e.get('seeds')} seeds ("
                          + ("decided" if e.get("stopped") == "decided" else str(e.get("stopped"))) + ")"
                          for h, e in entries)
        return (f"Adaptive seeds ({len(first.get('looks') or [])} looks at α = {self.adaptive_alpha:.4g} each, cap "
                f"{first.get('cap')}; seqbench adaptive): {stops}. Different seed counts are by design; the verdict "
                f"decides at α = {self.adaptive_alpha:.4g}.")

    @property
    def done(self) -> list[dict]:
        return [r for r in self.records if r.get("status") == "done"]

    @property
    def complete(self) -> bool:
        return not self.problems


def completeness(records: list[dict], labels: VariantLabels, adaptive: dict[str, dict] | None = None) -> list[str]:
    """What is missing from a data set: runs that did not finish, and variants that lack seeds the
    others have. A data set with missing runs is never ranked or given a verdict. ``adaptive``
    (config hash -> its variant's entry in ``adaptive.json``): a variant that adaptive seeds
    stopped (decided, or at the cap) lacks no seed it has all of: fewer seeds are by design."""
    adaptive = adaptive or {}
    stopped = {labels.get(h, h): entry["seeds"] for h, entry in adaptive.items()
               if entry.get("stopped") in ("decided", "cap") and isinstance(entry.get("seeds"), int)}
    problems = []
    unfinished = [r for r in records if r.get("status") not in FINISHED_STATUSES]
    for r in unfinished:
        problems.append(f"{labels.get(r.get('config_hash'), r.get('model'))} seed {r.get('seed')}: "
                        f"{r.get('status')}")
    finished: dict[str, set] = {}
    for r in records:
        if r.get("status") in FINISHED_STATUSES:
            finished.setdefault(labels.get(r.get("config_hash"), r.get("model")), set()).add(r.get("seed"))
    everyone = set().union(*finished.values()) if finished else set()
    for label, seeds in sorted(finished.items()):
        missing = everyone - seeds
        if label in stopped and set(range(stopped[label])) <= seeds:
            continue
        if missing:
            problems.append(f"{label} lacks seed{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(map(str, sorted(missing)))} that other variants have")
    return problems


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
        from .files import ignore_field
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


def shown_words(section: "DataSection") -> str:
    if section.shown_classes is None:
        return ""
    total = len(next(iter(section.confusion.values())).index)
    return (f" Shown: the {len(section.shown_classes)} classes with the most test examples, of {total}; every "
            f"class is in `confusion_{section.stem}.csv`.")


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


# ------------------------------------------------------------------ text lengths of a test set
@dataclass
class TextLengths:
    """Tokens per text of a classification data set, before truncation to ``dataset.max_len``:
    ``test`` in the order of the test split (the predictions' ``index``), ``train`` where known."""
    test: np.ndarray
    train: np.ndarray | None
    source: str                    # in words: where the texts came from and how tokens were counted


def _data_files(record: dict, kind: str) -> object | None:
    """The record's input files on this machine, without downloading anything: each at its
    recorded path, else by its name under the data roots (``dataset.root``, $SEQBENCH_DATA, the
    user cache), in the data set's own folder or at the top. None where one is missing."""
    from .data.sources import DATA_ENV, user_cache_dir
    import os
    files = {k: v for k, v in ((record.get("data") or {}).get("files") or {}).items() if k != "vectors"}
    if not files:
        return None
    dataset = (record.get("config") or {}).get("dataset") or {}
    roots = [Path(str(r)).expanduser() for r in (dataset.get("root"), os.environ.get(DATA_ENV)) if r]
    roots.append(user_cache_dir() / "data")
    found = {}
    for split, value in files.items():
        path = Path(str(value))
        candidates = [path] if path.is_absolute() else []
        candidates += [root / sub / path.name for root in roots for sub in (kind, str(record.get("dataset")), "")]
        hit = next((c for c in candidates if c.exists()), None)
        if hit is None:
            return None
        found[split] = hit
    return found["data"] if set(found) == {"data"} else found


def text_lengths(records: list[dict]) -> tuple[TextLengths | None, str]:
    """Tokens per test text of a classification data set, and (where none) why not. From a
    ``text`` column of the predictions where there is one (``seqbench eval`` writes it); else from
    the data set's own files found on this machine, read by the data set's own reader and counted
    with seqbench's tokenizer (the one training used), accepted only where the files' fingerprint
    is the runs' and the test labels read are the predictions' targets, in order. Nothing is
    downloaded."""
    frames = [(r, read_predictions(r)) for r in records]
    frames = [(r, f) for r, f in frames if f is not None and "index" in f]
    if not frames:
        return None, "no readable predictions"
    record, frame = frames[0]
    frame = frame.sort_values("index")
    try:
        from .data.text import tokenize
    except ImportError as error:   # pragma: no cover - the package's own module
        return None, f"seqbench's tokenizer cannot be imported ({error})"
    if "text" in frame:
        lengths = frame["text"].fillna("").astype(str).map(lambda t: len(tokenize(t))).to_numpy()
        return TextLengths(lengths, None, "the predictions' text column, counted with seqbench's tokenizer"), ""
    dataset = (record.get("config") or {}).get("dataset") or {}
    kind = record.get("dataset_kind") or dataset.get("kind") or dataset.get("name") or record.get("dataset")
    try:
        from .data.spec import data_fingerprint
        from .registry import dataset_entry
        entry = dataset_entry(str(kind))
        source_of = entry.extra.get("source_of")
        located = _data_files(record, str(kind)) if source_of else None
        if located is None:
            return None, ("the predictions hold no text and the data set's files were not found on this machine; "
                          "set $SEQBENCH_DATA or dataset.root to the folder that holds them")
        source = source_of(dataset)
        if data_fingerprint(source, located) != record.get("data_fingerprint"):
            return None, "the data set's files found on this machine are not the ones these runs used: their fingerprint differs"
        splits = source.read(located)
    except Exception as error:   # a diagnostic: never the reason a report fails
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, f"the data set's files could not be read here ({reason})"
    texts, labels = splits["test"][0], list(splits["test"][1])
    if len(texts) != len(frame) or ("target" in frame and list(frame["target"].astype(int)) != [int(x) for x in labels]):
        return None, "the test texts read here do not match the predictions (count or labels differ)"
    names = sorted({Path(str(v)).name for v in ((record.get("data") or {}).get("files") or {}).values()})
    train = splits.get("train")
    return (TextLengths(np.array([len(tokenize(t)) for t in texts]),
                        np.array([len(tokenize(t)) for t in train[0]]) if train else None,
                        f"the data set's own files ({', '.join(names)}, fingerprint {record.get('data_fingerprint')}), "
                        f"counted with seqbench's tokenizer, the one training used (words and punctuation marks)"),
            "")


def length_buckets(lengths: np.ndarray) -> list[tuple[int | None, int | None, str]]:
    """Buckets of text length from the test set's quartiles (observed lengths; equal edges merged):
    (low, high, label) with low exclusive and high inclusive, None open."""
    # Observed lengths as edges (the lower quantile), so that no bucket is empty.
    edges = sorted({int(q) for q in np.quantile(lengths, [0.25, 0.5, 0.75], method="inverted_cdf")})
    edges = [e for e in edges if lengths.min() <= e < lengths.max()]
    bounds = [None, *edges, None]
    out = []
    for low, high in zip(bounds[:-1], bounds[1:]):
        if low is None and high is None:
            label = "all"
        elif low is None:
            label = f"≤ {high}"
        elif high is None:
            label = f"> {low}"
        else:
            label = f"{low + 1}" if high == low + 1 else f"{low + 1}-{high}"
        out.append((low, high, label))
    return out


def _in_bucket(lengths: np.ndarray, low, high) -> np.ndarray:
    return (lengths > (low if low is not None else -1)) & (lengths <= (high if high is not None else np.inf))


def length_table(records: list[dict], labels: VariantLabels, lengths: TextLengths, order: list[str]) -> pd.DataFrame:
    """Per variant and length bucket: the test accuracy of each seed on the texts of that length,
    then its mean over seeds, sd and 95% t interval; with the bucket's test examples and its
    share of the training texts."""
    from .results import mean_std_ci
    buckets = length_buckets(lengths.test)
    per: dict[str, dict[str, list[float]]] = {}
    for r in records:
        frame = read_predictions(r)
        if frame is None or not {"index", "target", "predicted"} <= set(frame) or len(frame) != len(lengths.test):
            continue
        frame = frame.sort_values("index")
        correct = (frame["target"].to_numpy() == frame["predicted"].to_numpy())
        for low, high, name in buckets:
            inside = _in_bucket(lengths.test, low, high)
            per.setdefault(labels[r["config_hash"]], {}).setdefault(name, []).append(float(correct[inside].mean()))
    rows = []
    for variant in [*[v for v in order if v in per], *sorted(set(per) - set(order))]:
        for low, high, name in buckets:
            values = pd.Series(per[variant].get(name, []), dtype=float)
            mean, std, half, n = mean_std_ci(values)
            inside = _in_bucket(lengths.test, low, high)
            rows.append({"variant": variant, "tokens": name, "min_tokens": int(lengths.test[inside].min()),
                         "max_tokens": int(lengths.test[inside].max()), "test_examples": int(inside.sum()),
                         "train_share_pct": (100 * float(_in_bucket(lengths.train, low, high).mean())
                                             if lengths.train is not None and len(lengths.train) else math.nan),
                         "seeds": n, "acc_mean_pct": 100 * mean, "acc_sd_pct": 100 * std,
                         "acc_ci_low_pct": 100 * (mean - half), "acc_ci_high_pct": 100 * (mean + half)})
    return pd.DataFrame(rows)


def length_words(lengths: TextLengths) -> str:
    """Test (and training) text lengths in one sentence: mean and median tokens."""
    def described(values):
        return f"mean {np.mean(values):.1f} tokens (median {np.median(values):g}, {len(values):,} texts)"
    return (f"Test texts: {described(lengths.test)}"
            + (f"; training texts: {described(lengths.train)}" if lengths.train is not None and len(lengths.train)
               else "") + ".")


def test_set_names(records: list[dict]) -> dict[tuple, str]:
    """Each test set of a data set: '' when there is only one, else what differs (``length=50``)."""
    keys = sorted({test_set_key(r) for r in records}, key=_natural)
    if len(keys) == 1:
        return {keys[0]: ""}
    settings = {k: dict(k) for k in keys}
    differing = sorted({name for k in keys for name in settings[k]
                        if len({settings[other].get(name) for other in keys}) > 1})
    return {k: ", ".join(f"{name}={settings[k].get(name)}" for name in differing) for k in keys}


def compute_section(frame: pd.DataFrame, records: list[dict], label: str, stem: str, out: Path, plots: bool,
                    statistics: bool, resamples: int, ropes: dict[str, float] | None = None,
                    compare: list[tuple[str, str]] | None = None, adaptive: dict[str, dict] | None = None) -> DataSection:
    from .figures import plot_confusion, plot_learning_curves, plot_scores
    runs = frame[frame["data"] == label]
    task = task_of(records[0])
    labels = variant_labels(records)
    table = summary_table(frame, label)
    # adaptive seeds (adaptive.json) that made every variant of this data set: its stops and level
    adaptive = {h: entry for h, entry in (adaptive or {}).items() if h in labels}
    section = DataSection(label, stem, task, records, runs, table, labels, completeness(records, labels, adaptive))
    if adaptive and set(labels) <= set(adaptive):
        section.adaptive = adaptive
    done = section.done
    if task.name == "classification":
        section.baselines = class_baselines(done)
        by_seed = seed_confusions(done, labels)
        pooled = confusion_matrices(done, labels, by_seed)
        order = list(table["model"]) if not table.empty else []
        # In the main table's order (best first), so the panels read as the table does.
        ordered = [label for label in [*order, *sorted(set(pooled) - set(order))] if label in pooled]
        section.confusion = {label: pooled[label] for label in ordered}
        section.seed_confusion = {label: by_seed[label] for label in ordered}
        section.per_class = per_class_table(section.confusion)
        section.shown_classes = shown_classes(section.confusion)
        if any(r.get("predictions") for r in done):
            section.lengths, section.lengths_note = text_lengths(done)
            if section.lengths is not None:
                section.by_length = length_table(done, labels, section.lengths, order)
    else:
        value = learn_nothing(done, task)
        if value is not None and len({test_set_key(r) for r in done}) == 1:
            section.baselines = {"baseline (learns nothing)": value}
    if statistics and done:
        section.comparisons = comparisons(section, resamples, (ropes or {}).get(task.metric), compare)
        section.factorials = factorial_readings(section)
    if plots and done:
        letters = {v: c.seed.letters.get(v, "") for c in section.comparisons for v in c.seed.letters}
        figures = [plot_scores(runs, table, label, stem, task.metric, section.baselines, out, letters),
                   plot_learning_curves(learning_curves(records, labels), label, stem, task.metric, out)]
        if section.confusion:
            figures.append(plot_confusion(section.confusion, label, stem, out, section.shown_classes))
        section.figures = [(path, path.stem) for path in figures if path is not None]
    return section


def learn_nothing(runs: list[dict], task: TaskKind) -> float | None:
    """The error of a model that learns nothing, as the runs' records give it (regression, copy)."""
    return next(((r.get("baselines") or {}).get(task.metric) for r in runs
                 if (r.get("baselines") or {}).get(task.metric) is not None), None)


def seed_scores(runs: list[dict], labels: VariantLabels, task: TaskKind) -> tuple[dict[str, dict], list[str]]:
    """The one rule for what enters the seed-level test: a finished ("done") run whose test metric
    is a number. Every other run is named with the reason. variant -> {seed: test metric}."""
    scores: dict[str, dict] = {}
    left = []
    metric = task.metric
    for r in sorted(runs, key=lambda r: (str(labels.get(r.get("config_hash"), r.get("model"))), str(r.get("seed")))):
        label = labels.get(r.get("config_hash"), r.get("model"))
        who = f"{label} seed {r.get('seed')}"
        value = (r.get("test") or {}).get(metric)
        if r.get("status") != "done":
            left.append(f"{who}: {r.get('status')}; left out of the seed-level test")
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            left.append(f"{who}: no test.{metric}; left out of the seed-level test")
        elif not math.isfinite(value):
            left.append(f"{who}: test.{metric} is {value}; left out of the seed-level test")
        else:
            scores.setdefault(label, {})[r.get("seed")] = float(value)
            continue
        scores.setdefault(label, {})   # named in the verdict even with no usable seed
    return scores, left


def example_scores_of(runs: list[dict], labels: VariantLabels, task: TaskKind) -> tuple[dict[str, pd.DataFrame],
                                                                                         list[str]]:
    """Per variant, examples x seeds of per-example scores from each finished run's predictions
    (found beside its record, so a moved or merged folder keeps them); every run without usable
    predictions is named with the reason."""
    from .stats import example_scores
    columns: dict[str, dict] = {}
    left = []
    for r in runs:
        if r.get("status") != "done":
            continue
        who = f"{labels.get(r.get('config_hash'), r.get('model'))} seed {r.get('seed')}"
        name = r.get("predictions") or "predictions.csv"
        frame = read_predictions(r)
        if frame is None:
            left.append(f"{who}: no {name}; left out of the per-example comparison")
            continue
        try:
            scores = example_scores(frame, task)
        except (KeyError, ValueError, pd.errors.ParserError) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            left.append(f"{who}: {name} unusable ({reason}); left out of the per-example comparison")
            continue
        columns.setdefault(labels[r["config_hash"]], {})[r["seed"]] = scores
    return {label: pd.DataFrame(by_seed) for label, by_seed in columns.items()}, left


def comparisons(section: DataSection, resamples: int, rope: float | None = None,
                compare: list[tuple[str, str]] | None = None) -> list[Comparison]:
    """Per test set of the data set: the seed-level comparison and its verdict line, then the
    per-example comparison; what each leaves out is named, in the report and the log."""
    from .stats import conditional_pairs, far_seeds, saturation, seed_level, test_set_sd, verdict_line
    out = []
    names = test_set_names(section.records)
    labels = section.labels  # one labelling per data set: the tables, legend and pairs agree
    task = section.task
    for key, test_set in names.items():
        runs = [r for r in section.records if test_set_key(r) == key]
        if len({r.get("config_hash") for r in runs}) < 2:
            continue
        name = f"{section.label} ({test_set})" if test_set else section.label
        scores, left_out = seed_scores(runs, labels, task)
        level = seed_level(scores, task, rope=rope, compare=compare,
                           **({"alpha": section.adaptive_alpha} if section.adaptive_alpha else {}))
        done = [r for r in runs if r.get("status") == "done"]
        baseline = (class_baselines(done).get("majority class") if task.name == "classification"
                    else learn_nothing(done, task))
        saturated = saturation(task, [x for by_seed in scores.values() for x in by_seed.values()], baseline)
        solved = None
        if any(task.is_solved(r) is not None for r in done):  # the task and data set have a rule
            solved = {}
            for r in done:
                count, total = solved.get(labels[r["config_hash"]], (0, 0))
                solved[labels[r["config_hash"]]] = (count + bool(task.is_solved(r)), total + 1)
        groups = verdict_line(name, level, saturated, left_out=len(left_out), solved=solved)
        words = (groups if section.complete else
                 f"**{name}**: incomplete ({'; '.join(section.problems[:3])}"
                 f"{'; ...' if len(section.problems) > 3 else ''}): no verdict, no ranking until every variant "
                 f"has the same finished seeds.")
        examples, left_examples = example_scores_of(runs, labels, task)
        examples = {k: v for k, v in examples.items() if not v.empty}
        if not examples and len(left_examples) > 1:   # e.g. records older than predictions: one line, not one per run
            left_examples = [f"none of the {len(left_examples)} finished runs has usable predictions beside its "
                             f"record; no per-example comparison"]
        order = level.order + sorted(v for v in examples if v not in level.order)
        conditional = conditional_pairs(examples, order, resamples=resamples) if len(examples) >= 2 else []
        for item in left_out + left_examples:
            log.warning("%s: %s", name, item)
        comparison = Comparison(test_set, name, level, words, groups, conditional,
                                conditional[0].examples if conditional else 0, left_out, left_examples, saturated,
                                far_seeds(level, {v: test_set_sd(frame, level.scale == "log")
                                                  for v, frame in examples.items()}))
        for variant, seed, _, _ in comparison.far:
            record = next((r for r in done if labels[r["config_hash"]] == variant and r.get("seed") == seed), None)
            matrix = run_confusion(record) if record and task.name == "classification" else None
            if matrix is not None:
                comparison.far_confusion[(variant, seed)] = matrix
        out.append(comparison)
    return out


def factorial_readings(section: DataSection) -> list:
    """Per test set, every complete direction x pooling 2 x 2 of the data set's variants, found
    from their configs (seqbench.factorial), on the seed-level test's own scores."""
    from .factorial import factorials
    out = []
    for key, test_set in test_set_names(section.records).items():
        runs = [r for r in section.records if test_set_key(r) == key]
        scores, _ = seed_scores(runs, section.labels, section.task)
        out += factorials(runs, section.labels, section.task, scores, test_set)
    return out


def factorial_blocks(doc: Document, section: DataSection) -> None:
    """What the lead is made of: the four cells, the main effects, the interaction and the simple
    effects, and one sentence; the numbers in factorial_<data>.csv."""
    from .factorial import cell_rows, effect_rows, method_words, sentence
    for result in section.factorials:
        where = f"{section.label} ({result.test_set})" if result.test_set else section.label
        doc.heading(f"{where}: direction × pooling ({result.attention} attention)", 3)
        doc.text(sentence(result))
        missing = [p for p in section.problems
                   if any(p.startswith(f"{cell.variant} ") for cell in result.cells.values())]
        if missing:
            doc.text(f"Runs so far: {'; '.join(missing)}.", css="warning")
        for note in result.notes:
            doc.text(f"Note: {note}.", css="warning")
        doc.table(*cell_rows(result))
        doc.table(*effect_rows(result), key=4)
        doc.text(method_words(result) + f" All of it in `factorial_{section.stem}.csv`.")


def disagreement_words(comparison: Comparison) -> str:
    """Pairs the per-example comparison finds different that the training runs do not separate:
    said beside the per-example table, so nobody reads it as the verdict."""
    found = []
    for c in comparison.conditional:
        pair = comparison.seed.pair(c.a, c.b)
        if c.p_holm < 0.05 and (pair is None or not pair.separated):
            found.append(f"{c.a} vs {c.b}" + (" (not tested at the seed level: too few seeds)" if pair is None else ""))
    if not found:
        return ""
    return (f"Conditional on these trained networks {', '.join(found)} differ; with training runs as the unit "
            f"{'this pair is' if len(found) == 1 else 'these pairs are'} not separated, and the verdict follows the "
            f"training runs.")


# --------------------------------------------------------------------------------- writing
MEMORY_WORDS = {"cuda_max_allocated": "peak GPU memory (MB)", "process_rss_peak": "peak memory (MB)",
                "process_lifetime_peak": "peak memory, whole process life (MB)"}
PLAIN_MEMORY = {
    "process_rss_peak": "the most memory (RAM) the training process held while the run trained; in a sweep one "
                        "process runs job after job, so it includes what earlier runs left behind",
    "cuda_max_allocated": "the most GPU memory torch allocated during the run",
    "process_lifetime_peak": "the most memory the process held over its whole life (records before 2026-11-28)"}
MEASURED = "†"   # marks a column measured on a machine under its load, not a property of the model


def summary_rows(section: DataSection) -> tuple[list[str], list[list[str]], int]:
    """The main table of a data set: (header, rows, key), the key columns first (variant, n, mean ±
    std, interval, vs best, and "not done" where a run did not finish); the rest after them."""
    table, task = section.table, section.task
    metric, beside = task.metric, [m.name for m in task.shown_beside]
    unit = " (%)" if metric in PERCENT_METRICS else ""
    solved_task = task.solved_rule is not None
    unfinished = bool(table["not_done"].astype(bool).any()) if "not_done" in table else False
    memory_columns = [k for k in table.columns if k.startswith("memory_")]
    rows = []
    for r in table.to_dict("records"):
        mean, std = r[f"test_{metric}_mean"], r[f"test_{metric}_std"]
        spread = (f"{format_metric(mean, metric)} ± {format_metric(std, metric)}" if not math.isnan(std)
                  else format_metric(mean, metric))
        if solved_task:
            k, n = r.get("solved"), r["n"]
            interval = ("–" if k is None or (isinstance(k, float) and math.isnan(k)) else
                        f"{int(k)} of {n} [{100 * r['solved_ci_low']:.0f}%, {100 * r['solved_ci_high']:.0f}%]")
        else:
            low, high = r[f"test_{metric}_ci_low"], r[f"test_{metric}_ci_high"]
            interval = "–" if math.isnan(low) else f"[{format_metric(low, metric)}, {format_metric(high, metric)}]"
        if metric in POSITIVE_METRICS:
            versus = "best" if r["vs_best"] == 1 else ("–" if math.isnan(r["vs_best"]) else f"×{r['vs_best']:.2f}")
        else:
            versus = "best" if r["vs_best"] == 0 else ("–" if math.isnan(r["vs_best"]) else
                                                       f"{100 * r['vs_best']:+.1f}")
        rows.append([r["model"], str(r["n"]), spread, interval, versus, *([r["not_done"] or ""] if unfinished else []),
                     format_metric(r["median"], metric), format_metric(r[f"val_best_{metric}"], metric),
                     *[format_metric(r.get(f"test_{m}_mean"), m) for m in beside], _plain(r["params"]),
                     _plain(r["epochs_to_best"]), _plain(r["seconds_per_epoch"]), _plain(r["train_tokens_per_s"]),
                     *[_plain(r[k], 4) for k in memory_columns]])
    key = 6 if unfinished else 5
    for name, value in section.baselines.items():
        rows.append([f"*{name}*", "–", format_metric(value, metric), "–", "–", *([""] if unfinished else []),
                     *["–"] * (6 + len(beside) + len(memory_columns))])
    memory_names = [MEMORY_WORDS.get(k.removeprefix("memory_").removesuffix("_mb"), "peak memory (MB)")
                    for k in memory_columns]
    header = ["variant", "n", f"test {metric}{unit} mean ± std", "solved (95% Wilson)" if solved_task else "95% CI",
              "vs best" + (" (points)" if unit else ""), *(["not done"] if unfinished else []), "median",
              f"val {metric}{unit} (best epoch)", *[f"test {m}{' (%)' if m in PERCENT_METRICS else ''}" for m in beside],
              "params", "epochs to best", f"train s/epoch{MEASURED}", f"train tokens/s{MEASURED}",
              *[f"{name}{MEASURED}" for name in memory_names]]
    return header, rows, key


def concurrency(records: list[dict]) -> list[int]:
    """For each run with start and end times: how many runs of ``records`` (itself included) were
    training on the same machine at the most loaded moment of its run."""
    from datetime import datetime
    spans = []
    for r in records:
        try:
            start, end = datetime.fromisoformat(str(r.get("started"))), datetime.fromisoformat(str(r.get("finished")))
        except ValueError:
            continue
        if start.tzinfo is None or end.tzinfo is None or end < start:
            continue
        spans.append(((r.get("process") or {}).get("host"), start, end))
    out = []
    for host, start, end in spans:
        others = [(s, e) for h, s, e in spans if h == host and s < end and e > start]
        # The most runs at once inside this run's span: at some other run's start (or this one's).
        moments = [max(s, start) for s, _ in others]
        out.append(max(sum(1 for s, e in others if s <= moment < e) for moment in moments))
    return out


def measured_words(section: DataSection) -> str:
    """What the columns marked † are: measurements on a machine under its load when each run
    trained, as the records give it; never a property of a model alone."""
    records = section.done or section.records
    hardware = sorted({describe_hardware(r["hardware"]) for r in records if r.get("hardware")})
    together = concurrency(records)
    at_once = (f"{max(together)}" if min(together) == max(together) else f"{min(together)} to {max(together)}") \
        if together else ""
    load = (f"{'each ran alone' if together and max(together) == 1 else f'{at_once} of them ran at a time'}"
            f" (from the records' start and end times; work outside this report is not counted)"
            if together else "when they ran is not recorded")
    memory = " ".join(f"{MEMORY_WORDS.get(kind, 'peak memory (MB)').removesuffix(' (MB)').capitalize()}: "
                      f"{PLAIN_MEMORY.get(kind, MEMORY_KINDS.get(kind, kind))}."
                      for kind in sorted(set(section.runs["peak_memory_kind"].dropna())))
    return (f"{MEASURED} Measured, not a property of the model: on {', '.join(hardware) or 'unrecorded hardware'}, "
            f"where {load}. Other work on the machine at the same time makes runs slower and their memory larger: "
            f"compare these columns only between runs made under the same load. "
            + memory)


def pair_rows(comparison: Comparison) -> tuple[list[str], list[list[str]], int]:
    """The seed-level pairs: (header, rows, key). Key columns first: the pair, the difference, its
    interval at the deciding Holm step's level, Holm's p and the calls; then seeds, Welch's raw p,
    the exact permutation test and ASO."""
    from .stats import difference_words, format_p
    level = comparison.seed
    rows = []
    for p in level.pairs:
        rows.append([p.a, p.b, difference_words(level, p.difference),
                     f"[{difference_words(level, p.low)}, {difference_words(level, p.high)}] "
                     f"({100 * p.confidence:.3g}%)", format_p(p.p_adjusted, 0),
                     "yes" if p.separated else "no", "yes" if p.equivalent else "no", f"{p.n_a} / {p.n_b}",
                     format_p(p.p, 0), noise_words(level, p, comparison.examples),
                     format_p(p.permutation_p, p.permutation_floor), _plain(p.aso_eps, 2)])
    unit = "A / B (geometric means)" if level.scale == "log" else (
        "A − B (points)" if comparison.seed.task.metric in PERCENT_METRICS else "A − B")
    adjusted = "p (Holm)" if not level.moderated or level.family is not None else "p (Tukey-Kramer, simultaneous)"
    header = ["A", "B", unit, "interval (level of its step)", adjusted, "separated", "practically equivalent",
              "seeds A / B", "p (moderated t)" if level.moderated else "p (Welch)",
              "SE of A − B: seeds / one run's test set", "exact permutation p (seeds)", "ASO ε (A better)"]
    return header, rows, 7


def conditional_rows(comparison: Comparison, task: TaskKind) -> tuple[list[str], list[list[str]]]:
    from .stats import format_p
    scale = task.scale()

    def value(v):
        return f"{v * scale:+.2f}" if scale == 100 else f"{v:+.2e}"
    m = len(comparison.conditional)
    rows = [[c.a, c.b, value(c.difference), f"[{value(c.low)}, {value(c.high)}]", format_p(c.p, c.p_floor),
             format_p(c.p_holm, min(1.0, c.p_floor * m))] for c in comparison.conditional]
    return ["A", "B", "A − B", "95% CI", "p", "p (Holm)"], rows


def noise_words(level, pair, examples: int) -> str:
    """The seeds' standard error of A − B beside what one run's test-set sampling alone gives."""
    from .stats import test_set_se
    seeds = math.sqrt(pair.sd_a ** 2 / pair.n_a + pair.sd_b ** 2 / pair.n_b)
    test = test_set_se(level, pair, examples)
    if level.scale != "raw" or level.task.metric not in PERCENT_METRICS:
        return f"{seeds:.2g} / –"
    return f"{100 * seeds:.2g} / " + (f"{100 * test:.2g}" if math.isfinite(test) else "–")


def seed_level_words(comparison: Comparison) -> str:
    from .stats import MIN_PRIOR_DF, permutation_floor_words, rope_words
    level = comparison.seed
    task = level.task
    scale = ("on the log scale (an error spreads in proportion to its size; A / B is the ratio of geometric "
             "means)" if level.scale == "log" else "on the metric's own scale")
    m = len(level.pairs)
    rope = (f" Practically equivalent: the whole interval inside the region of practical equivalence, "
            f"{rope_words(task.metric, level.rope, level.scale)} (`seqbench report --rope`)." if level.rope else "")
    if level.family is not None:
        rule = (f"the family is the {m} pair{'s' if m != 1 else ''} named with --compare and nothing else (no other "
                f"variant's seeds enter: no shared variance, no shrinkage toward it); "
                + ("each variance shrunk toward the named variants' common one (moderated t, Smyth 2004)"
                   if level.moderated else "Welch's t-test on each pair")
                + f", Holm over the {m} (family-wise error 5%)")
    elif level.moderated:
        rule = (f"the variants' seed variances are shrunk toward a common one by empirical Bayes (moderated t, limma's "
                f"estimator, Smyth 2004; prior df {level.prior_df:.3g}, at least {MIN_PRIOR_DF:g} needed), and every "
                f"pair is decided by the Ryan-Einot-Gabriel-Welsch step-down over ranges of means (Tukey-Kramer "
                f"critical values on the moderated standard errors, Welsch's levels), family-wise error 5% over "
                f"{m} pairs; p (Tukey-Kramer) is the single-step simultaneous p, never smaller than the step-down's")
    else:
        rule = (f"the seed spreads are too unequal to share a variance (empirical-Bayes prior df {level.prior_df:.2g}, "
                f"below {MIN_PRIOR_DF:g}), so Welch's t-test on every pair, Holm-adjusted over {m} pairs "
                f"(family-wise error 5%)")
    return (f"Training runs as the unit, on the seeds' test {task.metric_words()} {scale}: {rule}. Each interval "
            f"is at the critical value of the step that decided its pair (level in brackets), so it excludes zero "
            f"exactly when the pair is separated; a pair not separated has it widened to reach zero. The family-wise "
            f"error and power of this rule are measured by `seqbench calibrate`.{rope} \"SE of A − B\": the seeds' "
            f"standard error of the difference beside the binomial one of a single run's test set (test-set "
            f"sampling alone); where the second is the larger, more seeds cannot help and a larger test set would. "
            f"Beside them: the exact permutation test over seeds (its smallest possible p shown with ≤) and ASO "
            f"ε_min (deepsig; < 0.5: A tends to be better). " + permutation_floor_words(level))


def power_words(comparison: Comparison) -> str:
    """What is not decided and what would decide it: per undecided pair (the top against each other
    member of the best group, or an unseparated named pair), the seeds per variant its observed
    difference needs, from its own two variants' seed spreads, and the test-set noise beside them."""
    from .stats import MAX_SEEDS_NEEDED, difference_words, pair_power, test_set_se, undecided_pairs
    level = comparison.seed
    parts = []
    for pair in undecided_pairs(level):
        who = f"{pair.a} vs {pair.b} ({difference_words(level, pair.difference)}"
        if pair.equivalent:
            parts.append(f"{who}): practically equivalent; more seeds would not change what to pick.")
            continue
        power = pair_power(level, pair)
        needed = power["seeds_for_difference"]
        if isinstance(needed, float) and math.isnan(needed):
            parts.append(f"{who}): no spread to plan from.")
            continue
        count = f"more than {MAX_SEEDS_NEEDED:,}" if needed > MAX_SEEDS_NEEDED else f"about {needed}"
        noise = test_set_se(level, pair, comparison.examples)
        seeds_se = math.sqrt(pair.sd_a ** 2 / pair.n_a + pair.sd_b ** 2 / pair.n_b)
        test = (f"; one run's test set alone gives this difference an SE of {100 * noise:.2g} points against the "
                f"seeds' {100 * seeds_se:.2g}" + (", so a larger test set, not more seeds, would decide it"
                                                   if noise > seeds_se else "") if math.isfinite(noise) else "")
        parts.append(f"{who}): {count} seeds per variant would separate a difference this large with 80% power "
                     f"(Welch at α = {power['alpha']:.2g}, 5% over {len(level.pairs)} pairs; from these two variants' "
                     f"seed spreads){test}.")
    return ("Not decided, and what would decide it: " + " ".join(parts)) if parts else ""


def _settings(records: list[dict], group: str, key: str) -> str:
    found = sorted({str(((r.get("config") or {}).get(group) or {}).get(key)) for r in records} - {"None"},
                   key=lambda v: _natural((v,)))
    return "/".join(found)


def _counts_by_variant(flags: list[tuple[str, bool]], everyone: dict[str, int]) -> str:
    """``rnn 3 of 5, lru 1 of 5``, or ``in every variant`` where all have some; '' where none."""
    counts: dict[str, int] = {}
    for label, flag in flags:
        if flag:
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return ""
    if len(counts) == len(everyone) and len(counts) > 4:
        return f"in all {len(counts)} variants"
    shown = sorted(counts, key=lambda v: (-counts[v], v))
    words = ", ".join(f"{v} {counts[v]} of {everyone[v]}" for v in shown[:4])
    return words + (f", {len(shown) - 4} more variants" if len(shown) > 4 else "")


def truncation_words(section: DataSection) -> str:
    """How many test texts are longer than ``dataset.max_len`` (cut to it), or why that is unknown."""
    max_lens = sorted({int(v) for v in _settings(section.done, "dataset", "max_len").split("/") if v.isdigit()})
    if not max_lens:
        return ""
    if section.lengths is None:
        return (f"test texts longer than max_len: not known here ({section.lengths_note or 'no text lengths'})"
                if section.task.name == "classification" else "")
    test = section.lengths.test
    parts = []
    for length in max_lens:
        longer = int((test > length).sum())
        parts.append(f"{longer} of {len(test):,} test texts ({100 * longer / len(test):.1f}%) are longer than "
                     f"max_len {length} and were cut to it")
    return "; ".join(parts)


def cap_words(section: DataSection, short: bool = False) -> str:
    """The budget's honesty line: at which cap and patience (and max_len), how many runs the epoch
    cap stopped, and how many of those were still improving (results.cap_flags has the rule)."""
    from .results import cap_flags, improving_window
    done = section.done
    flags = [(section.labels.get(r.get("config_hash"), r.get("model")), *cap_flags(r)) for r in done]
    known = [f for f in flags if f[1] is not None]
    if not known:
        return ""
    everyone: dict[str, int] = {}
    for label, *_ in known:
        everyone[label] = everyone.get(label, 0) + 1
    capped = sum(1 for f in known if f[1])
    improving = sum(1 for f in known if f[2])
    epochs, patience = _settings(done, "trainer", "max_epochs"), _settings(done, "trainer", "patience")
    max_len = _settings(done, "dataset", "max_len")
    setting = ", ".join(part for part in (f"max_epochs {epochs}", f"patience {patience}" if patience else "",
                                          f"max_len {max_len}" if max_len else "") if part)
    windows = sorted({improving_window(((r.get("config") or {}).get("trainer") or {}).get("patience"),
                                       ((r.get("config") or {}).get("trainer") or {}).get("max_epochs")) for r in done})
    window = ("its last epoch" if windows == [1] else
              f"its last {'/'.join(map(str, windows))} epochs")
    n = len(known)
    if short:
        longer = ""
        if section.lengths is not None and max_len.isdigit():
            longer = (f"; {int((section.lengths.test > int(max_len)).sum())} of {len(section.lengths.test):,} test "
                      f"texts longer than max_len")
        return f"{setting}: the epoch cap stopped {capped} of {n} runs, {improving} of them still improving{longer}"
    who = _counts_by_variant([(f[0], f[1]) for f in known], everyone)
    who_improving = _counts_by_variant([(f[0], f[2]) for f in known], everyone)
    truncation = truncation_words(section)
    return (f"At this budget ({setting}) the epoch cap stopped {capped} of {n} runs"
            + (f" ({who})" if who else "") + (", the others stopped early" if 0 < capped < n else
                                               ", every one stopped early" if capped == 0 else "")
            + f"; still improving at the cap (a new best validation score in {window}) in {improving} of {n}"
            + (f" ({who_improving})" if who_improving else "") + "."
            + (" The table compares them at this budget, not at convergence: more epochs might change their "
               "scores." if improving else "")
            + (f" {truncation[0].upper()}{truncation[1:]}." if truncation else ""))


def length_rows(section: DataSection) -> tuple[list[str], list[list[str]]]:
    """Variants x length buckets: accuracy mean ± sd over seeds (percent)."""
    frame = section.by_length
    buckets = list(dict.fromkeys(frame["tokens"]))
    info = frame.drop_duplicates("tokens").set_index("tokens")
    header = ["variant", *[f"{b} tokens (n = {int(info.loc[b, 'test_examples'])}"
                           + (f"; train {info.loc[b, 'train_share_pct']:.0f}%" if not math.isnan(
                               info.loc[b, "train_share_pct"]) else "") + ")" for b in buckets]]
    rows = []
    for variant, group in frame.groupby("variant", sort=False):
        cells = group.set_index("tokens")
        rows.append([variant, *[(f"{cells.loc[b, 'acc_mean_pct']:.1f} ± {cells.loc[b, 'acc_sd_pct']:.1f}"
                                 if not math.isnan(cells.loc[b, "acc_sd_pct"]) else
                                 f"{cells.loc[b, 'acc_mean_pct']:.1f}") for b in buckets]])
    return header, rows


def length_blocks(doc: Document, section: DataSection) -> None:
    """Accuracy by input length (classification), or one line saying why there is none."""
    if section.task.name != "classification" or not section.seed_confusion:
        return
    doc.heading(f"{section.label}: accuracy by input length", 3)
    if section.by_length is None or section.by_length.empty:
        doc.text(f"Not shown: no text lengths ({section.lengths_note or 'none found'}).")
        return
    frame = section.by_length
    typical = frame["acc_mean_pct"].mean() / 100
    smallest = int(frame["test_examples"].min())
    doc.text(f"Test accuracy (%) on the texts of each length, per seed, then mean ± sd over seeds. Length: tokens "
             f"before truncation, from {section.lengths.source}. Buckets: the test set's length quartiles (edges at "
             f"observed lengths, equal ones merged); n = test texts in the bucket; train = share of the training file's texts "
             f"(validation split included) in the bucket. {length_words(section.lengths)} The sd is over seeds only: "
             f"with {smallest} texts a bucket's accuracy also carries test-sampling error of about "
             f"±{100 * math.sqrt(typical * (1 - typical) / smallest):.1f} points (binomial standard error at "
             f"{100 * typical:.0f}%). The 95% intervals over seeds are in `by_length_{section.stem}.csv`.")
    doc.table(*length_rows(section))


def seed_confusion_blocks(doc: Document, section: DataSection) -> None:
    """Every seed's confusion matrix beside the pooled ones: folded in report.html, one line in
    summary.md (the matrices are in confusion_by_seed_<data>.csv)."""
    if not section.seed_confusion:
        return
    panels = []
    for variant, seeds in section.seed_confusion.items():
        for seed, whole in seeds.items():
            correct = int(np.trace(whole.to_numpy()))
            total = int(whole.to_numpy().sum())
            matrix = shown(whole, section.shown_classes)
            panels.append((f"{variant} seed {seed} ({100 * correct / total:.1f}%)" if total else f"{variant} seed {seed}",
                           ["true \\ predicted", *map(str, matrix.columns)],
                           [[str(true), *[str(int(v)) for v in row]] for true, row in matrix.iterrows()]))
    count = len(panels)
    doc.folded(f"{section.label}: confusion matrix of every seed ({count} runs; the pooled ones are in the figure)",
               panels,
               f"Confusion matrices of every seed ({count} runs) beside the pooled ones: "
               f"`confusion_by_seed_{section.stem}.csv`, and in report.html." + shown_words(section))


def write_section(doc: Document, section: DataSection) -> None:
    from .stats import resolution
    task = section.task
    metric = task.metric
    better = "higher" if task.higher_is_better else "lower"
    doc.heading(section.label)
    if section.problems:
        doc.text(f"Incomplete: {'; '.join(section.problems)}. Shown as it is; not ranked and given no verdict.",
                 css="warning")
    if section.adaptive_words:
        doc.text(section.adaptive_words)
    interval_words = ("solved in k of n seeds with a 95% Wilson interval (outcomes are solved or not, so no interval "
                      "around a mean)" if task.solved_rule else
                      "log-scale interval around the geometric mean (it stays positive)" if metric in POSITIVE_METRICS
                      else "Student t interval over seeds")
    doc.text(f"Task: {task.name.replace('_', ' ')}. Test {task.metric_words()} ({better} is better), over seeds; "
             f"n = finished runs; {interval_words}; \"vs best\": "
             + ("the ratio to the best variant's mean" if metric in POSITIVE_METRICS
                else "the difference from the best variant's mean, in points")
             + (" on the same test set (runs at another length were scored on other examples)."
                if section.table["test_set"].nunique() > 1 else "."))
    doc.text(f"Budget: {budget_words(section.records)}")
    doc.text(cap_words(section))
    header, rows, key = summary_rows(section)
    doc.table(header, rows, key=key)
    doc.text(measured_words(section))
    legend = section.labels.legend()
    if legend:
        doc.text("Labels:")
        doc.table(["label", "configuration (what differs)"], [[short, full] for short, full in legend])
    for path, alt in section.figures:
        doc.figure(path, alt)
    if section.per_class is not None:
        doc.heading(f"{section.label}: per class (pooled over seeds)", 3)
        cells = {(row.variant, row["class"]): f"{_plain(row.precision, 3)} / {_plain(row.recall, 3)}"
                 for _, row in section.per_class.iterrows()}
        classes = section.shown_classes or list(dict.fromkeys(section.per_class["class"]))
        rows = [[variant, *[cells[(variant, c)] for c in classes]]
                for variant in dict.fromkeys(section.per_class["variant"])]
        doc.text("Precision / recall (%) per class; confusion matrices in "
                 f"`confusion_{section.stem}.csv` and the figure." + shown_words(section))
        doc.table(["variant", *classes], rows)
    seed_confusion_blocks(doc, section)
    length_blocks(doc, section)
    for comparison in section.comparisons:
        doc.heading(f"{comparison.name}: seed-level comparison", 3)
        doc.text(comparison.groups if section.complete else
                 f"Runs so far (incomplete, so not a verdict): {comparison.groups}")
        doc.text(power_words(comparison))
        if comparison.seed.pairs:
            if comparison.seed.family is None:
                from .stats import group_words
                doc.text(f"Every pair (variants that share a letter are not separated): {group_words(comparison.seed)}.")
            doc.text(seed_level_words(comparison))
            header, rows, key = pair_rows(comparison)
            doc.table(header, rows, key=key)
        if comparison.left_out:
            doc.text("Runs not counted, with the reason: " + "; ".join(comparison.left_out) + ".", css="warning")
        for variant, seed, value, z in comparison.far:
            doc.text(f"Far from its variant's other seeds: {variant} seed {seed}, test {task.metric_words()} "
                     f"{format_metric(value, metric)}{' %' if metric in PERCENT_METRICS else ''}, {abs(z):.1f} robust "
                     f"sds {'below' if z < 0 else 'above'} its median (robust sd: MAD, never below the sampling sd of "
                     f"its score on this test set, from its predictions; without them, the variants' median MAD). "
                     f"Still counted; worth a look.")
            matrix = comparison.far_confusion.get((variant, seed))
            if matrix is not None:
                matrix = shown(matrix, section.shown_classes)
                doc.table(["true \\ predicted", *map(str, matrix.columns)],
                          [[str(true), *[str(int(v)) for v in row]] for true, row in matrix.iterrows()])
    for comparison in section.comparisons:
        if not comparison.conditional and not comparison.left_out_examples:
            continue
        doc.heading(f"{comparison.name}: per example, conditional on these trained networks", 3)
        if comparison.conditional:
            doc.text(f"Not the verdict: it holds the test set's sampling only, for these very networks. Per-example "
                 f"{task.example_words}, averaged over each variant's seeds, on the same {comparison.examples} test "
                 f"examples; A − B in {'points' if task.scale() == 100 else task.metric} "
                 f"({'positive: A better' if task.higher_is_better else 'negative: A errs less'}); "
                     f"{conditional_test_words(comparison)} over examples, Holm-adjusted. Resolution: "
                     f"{resolution(task, comparison.examples)}.")
            doc.table(*conditional_rows(comparison, task))
        doc.text(disagreement_words(comparison))
        if comparison.left_out_examples:
            doc.text("Runs not counted here, with the reason: " + "; ".join(comparison.left_out_examples) + ".",
                     css="warning")
    factorial_blocks(doc, section)


def conditional_test_words(comparison: Comparison) -> str:
    """Which per-example test was used: recorded per pair."""
    tests = {c.test for c in comparison.conditional}
    return ("paired t-test (over 5,000 examples)" if tests == {"paired t-test"}
            else "paired bootstrap (BCa) and permutation test")


def parameter_words(params: dict) -> str:
    """``optimizer.lr=0.00378, model.hidden_size=128``: a search's parameters, three digits."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def memory_blocks(doc: Document, records: list[dict], name: str, out: Path, plots: bool) -> None:
    """Test metric against the length T for each variant, with the baseline; and the longest T
    each variant solved, in k of its n seeds with a Wilson interval."""
    from .config import computation_config
    from .figures import plot_memory
    from .stats import wilson
    done = [r for r in records if r.get("status") == "done"
            and ((r.get("config") or {}).get("dataset") or {}).get("length") is not None]
    if not done:
        return
    task = task_of(done[0])
    metric = task.metric

    def without_length(record: dict) -> dict:
        config = dict(record["config"])
        config["dataset"] = {k: v for k, v in config["dataset"].items() if k != "length"}
        return config
    keys = {id(r): short_hash(computation_config(without_length(r))) for r in done}
    points: dict[str, dict[int, list[dict]]] = {}
    for r in done:
        points.setdefault(keys[id(r)], {}).setdefault(int(r["config"]["dataset"]["length"]), []).append(r)
    labels = variant_labels([{**r, "config_hash": keys[id(r)], "config": without_length(r)} for r in done])
    names = {k: labels[k] for k in points}
    lengths = sorted({t for by_length in points.values() for t in by_length})
    criterion = next((task.solved_words(r) for r in done if task.solved_words(r)), "–")
    baselines = {t: next(((r.get("baselines") or {}).get(metric) for r in done
                          if int(r["config"]["dataset"]["length"]) == t), None) for t in lengths}
    doc.heading(f"{name}: memory length", 3)
    doc.text(f"Test {task.metric_words()} against the length T: the median over seeds (outcomes are often "
             f"solved-or-not, so no mean), then how many seeds solved it; solved: {criterion}. Baseline (a model that "
             f"learns nothing): " + ", ".join(f"T = {t}: {format_metric(baselines[t], metric)}" for t in lengths)
             + ". The longest T solved is given with its k of n seeds and a 95% Wilson interval of the solve rate.")
    rows = []
    for key in sorted(points, key=lambda k: names[k]):
        cells, longest = [], "none"
        for t in lengths:
            runs = points[key].get(t, [])
            values = [r["test"][metric] for r in runs if metric in (r.get("test") or {})]
            verdicts = [task.is_solved(r) for r in runs]
            solved = sum(bool(v) for v in verdicts)
            cells.append(f"{format_metric(float(np.median(values)), metric)} ({solved}/{len(verdicts)} solved)"
                         if values else "–")
            if solved:
                low, high = wilson(solved, len(verdicts))
                longest = f"{t} ({solved} of {len(verdicts)}; [{100 * low:.0f}%, {100 * high:.0f}%])"
        rows.append([names[key], *cells, longest])
    doc.table(["variant", *[f"T = {t}" for t in lengths], "longest T solved (seeds; Wilson 95%)"], rows)
    updates_table(doc, points, names, lengths, task)
    legend = labels.legend()
    if legend:
        doc.table(["label", "configuration (what differs)"], [[s, f] for s, f in legend])
    if plots and len(lengths) > 1:
        # The file's name from the data set's label as a slug: a record is data, and its name no path.
        path = plot_memory(points, names, lengths, baselines, name, metric, out, slug(name))
        doc.figure(path, path.stem)


def budget_curve_block(doc: Document, studies_json: Path, out: Path, plots: bool) -> None:
    """Budget curves from a search's studies.json (``seqbench.budget_curves``): budget_curves.csv,
    and the figure, in the report folder."""
    from .budget_curves import write_budget_curves
    from .files import read_json
    from .tasks import TASKS
    try:
        studies = read_json(studies_json)
    except (OSError, ValueError):   # no studies.json beside studies.md, or not one seqbench wrote
        return
    if not isinstance(studies, dict) or not all(isinstance(s, dict) for s in studies.values()):
        return
    metric = next((s.get("metric") for s in studies.values() if s.get("metric")), "acc")
    higher = next((task.higher_is_better for task in TASKS.values() if task.metric == metric), True)
    written = write_budget_curves(studies, out, higher, plots, metric)
    if written is None:
        doc.text("No budget curves: these studies did not record each trial's score (searches before budget curves).")
        return
    doc.text("Budget curves (Dodge et al. 2019): each variant's expected best validation score over n trials, "
             "drawn from its study's trials (budget_curves.csv). Where the curves cross, the ranking depends on the "
             "tuning budget.")
    if written[1] is not None:
        doc.figure(written[1], "budget curves")


def updates_table(doc: Document, points: dict, names: dict, lengths: list[int], task: TaskKind) -> None:
    """Median updates to solve per variant and T (Kaplan-Meier, the unsolved censored at the
    updates they trained), for the runs that record their updates (trainer.stop_when_solved)."""
    from .survival import updates_to_solve_words

    def counted(runs: list[dict]) -> list[tuple[int, bool]]:
        return [(int(r.get("solved_on_validation_at_update") or r["updates"]) if task.is_solved(r) else
                 int(r["updates"]), bool(task.is_solved(r))) for r in runs
                if r.get("updates") is not None and task.is_solved(r) is not None]
    rows = [[names[key], *[updates_to_solve_words(counted(points[key].get(t, []))) for t in lengths]]
            for key in sorted(points, key=lambda k: names[k])]
    if not any(cell != "–" for row in rows for cell in row[1:]):
        return
    doc.text("Updates to solve: the median over seeds of the Adam updates a run trained until its first solved "
             "validation (Kaplan-Meier, a run not solved on the test set counted as censored at the updates it "
             "trained); \"> N\": fewer than half the seeds solved by N updates.")
    doc.table(["variant", *[f"T = {t}" for t in lengths]], rows)


def tuned_blocks(doc: Document, sections: list[DataSection]) -> None:
    """Per data set and model: the default configuration beside the tuned one, on the same
    seeds, with the difference and its seed-level (Welch) interval."""
    for section in sections:
        table = tuned_table(section)
        if table is None:
            continue
        doc.heading(f"{section.label}: tuned beside default", 3)
        metric = section.task.metric
        relative = metric in POSITIVE_METRICS
        header, rows = table
        family = sum(row[3] != "–" for row in rows)
        doc.text(f"Tuned − default: difference of mean test {metric} "
                 + ("as the ratio tuned / default of geometric means" if relative else
                    f"({'points' if section.task.scale() == 100 else metric})")
                 + f" with its seed-level interval. The family is these {family} comparisons (did tuning change "
                   f"each variant?): each interval at 1 - 0.05/{family} (Bonferroni, so the {family} hold "
                   f"together at 95%), each p Holm-adjusted over the {family}; no other variant enters them.")
        doc.table(header, rows)


def tuned_table(section: DataSection) -> tuple[list[str], list[list[str]]] | None:
    """(header, rows) of the tuned-beside-default table of a data set; None without tuned runs."""
    from .stats import ALPHA, difference_words, seed_level
    tuned_records = [r for r in section.done if r.get("tuned")]
    if not tuned_records:
        return None
    metric = section.task.metric
    by_label = {r["model"]: r for r in section.table.to_dict("records")}
    models = sorted({r["model"] for r in tuned_records})
    # The family: every variant that has both a tuned and a default configuration here.
    family = sum(any(r["model"] == model and not r.get("tuned") for r in section.done) for model in models) or 1
    rows, p_values = [], []
    for model in models:
        tuned_hash = next(r["config_hash"] for r in tuned_records if r["model"] == model)
        default_hash = next((r["config_hash"] for r in section.done if r["model"] == model and not r.get("tuned")),
                            None)
        tuned, default = by_label.get(section.labels[tuned_hash]), (
            by_label.get(section.labels[default_hash]) if default_hash else None)
        info = next(r["tuned"] for r in tuned_records if r["model"] == model)
        cell = (lambda r: f"{format_metric(r[f'test_{metric}_mean'], metric)} ± "
                          f"{format_metric(r[f'test_{metric}_std'], metric)} ({r['n']})" if r else "–")
        same = "–"
        delta = "–"
        p_values.append(math.nan)
        if tuned and default:
            same = "yes" if tuned["seeds"] == default["seeds"] else (f"no: {tuned['seeds']} vs {default['seeds']}")
            runs = [r for r in section.done if r["config_hash"] in (tuned_hash, default_hash)]
            scores, _ = seed_scores(runs, VariantLabels({tuned_hash: "tuned", default_hash: "default"}, {}),
                                    section.task)
            level = seed_level(scores, section.task, alpha=ALPHA / family, aso=False)
            if level.pairs:
                # The pair runs better - worse: turn it round to tuned - default (a ratio inverts).
                (pair,) = level.pairs
                p_values[-1] = pair.p
                sign = 1 if pair.a == "tuned" else -1
                low, high = sorted((sign * pair.low, sign * pair.high))
                delta = (f"{difference_words(level, sign * pair.difference)} [{difference_words(level, low)}, "
                         f"{difference_words(level, high)}]")
        params = parameter_words(info.get("params") or {})
        rows.append([model, cell(default), cell(tuned), delta, same, str(info.get("trials")), params])
    adjusted = holm_adjusted(p_values)
    for row, p in zip(rows, adjusted):
        row.insert(4, "–" if math.isnan(p) else f"{p:.3g}")
    relative = metric in POSITIVE_METRICS
    level = f"{100 * (1 - ALPHA / family):.4g}%"
    return (["model", f"default: test {metric} (n)", f"tuned: test {metric} (n)",
             f"tuned / default [{level} CI]" if relative else f"tuned − default [{level} CI]",
             f"p (Holm over {family})", "same seeds", "trials", "best parameters"], rows)


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (``stats.holm``), NaN where a comparison has none."""
    from .stats import holm
    present = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    out = [math.nan] * len(p_values)
    if present:
        for i, p in zip(present, holm([p_values[i] for i in present])[1]):
            out[i] = float(p)
    return out


def across_blocks(doc: Document, sections: list[DataSection], out: Path, plots: bool, resamples: int) -> None:
    """Average ranks of the variants present on every complete, unsaturated, single-test-set data
    set, with a bootstrap over seeds; Friedman's test and the critical difference only with enough
    data sets (Demšar 2006)."""
    from .stats import MIN_DATASETS_FOR_FRIEDMAN, cd_diagram, friedman, rank_bootstrap
    per_seed, better, left_out = {}, {}, []
    for section in sections:
        if section.table.empty or not section.done or not section.comparisons:
            continue
        if not section.complete:
            left_out.append(f"{section.label} (incomplete)")
            continue
        if len(section.comparisons) > 1:
            left_out.append(f"{section.label} (several test sets)")
            continue
        (comparison,) = section.comparisons
        if comparison.saturated:
            left_out.append(f"{section.label} (saturated: every variant solves it)")
            continue
        level = comparison.seed
        per_seed[section.label] = {v: level.transformed(v) for v in level.order}
        better[section.label] = section.task.higher_is_better
    if not per_seed and not left_out:
        return
    doc.heading("Across data sets")
    if left_out:
        doc.text(f"Not ranked: {', '.join(left_out)}.")
    if not per_seed:
        return
    common = sorted(set.intersection(*(set(v) for v in per_seed.values()))) if per_seed else []
    if len(per_seed) < 2 or len(common) < 2:
        doc.text(f"{len(per_seed)} data set(s) with {len(common)} variant(s) in common: too few to rank.")
        return
    per_seed = {data: {v: values[v] for v in common} for data, values in per_seed.items()}
    means = pd.DataFrame({data: {v: float(np.mean(x)) for v, x in values.items()}
                          for data, values in per_seed.items()}).T
    result = friedman(means, better)
    ranks = rank_bootstrap(per_seed, better, resamples=min(resamples, 2000))
    if "statistic" in result:
        words = (f"Friedman's test (on scores oriented so that higher is better): χ² = {result['statistic']:.2f}, "
                 f"p = {result['p']:.3g}; Nemenyi critical difference at 0.05: {result['critical_difference']:.2f} "
                 f"ranks.")
    elif result["n"] < MIN_DATASETS_FOR_FRIEDMAN:
        words = (f"With {result['n']} data sets (fewer than {MIN_DATASETS_FOR_FRIEDMAN}) the ranks are a description, "
                 f"not a test: no Friedman test and no critical difference (Demšar 2006 takes the data set as the "
                 f"unit).")
    else:
        words = f"With {result['k']} variants in common the ranks are a description: Friedman's test needs three."
    doc.text(f"Variants present on all of {', '.join(result['datasets'])}, ranked per data set by mean test metric "
             f"(geometric mean for errors; 1 = best); the interval is the 2.5-97.5% range of the average rank over "
             f"resamples of each variant's seeds (how much the ranks move with the seeds; the data sets are fixed). "
             f"{words}")
    doc.table(["variant", "average rank", "95% interval (seeds resampled)", *result["datasets"]],
              [[row.variant, f"{row.average_rank:.2f}", f"[{row.low:.2f}, {row.high:.2f}]",
                *[f"{result['ranks'].loc[d, row.variant]:.0f}" for d in result["datasets"]]]
               for row in ranks.itertuples()])
    if plots and result.get("critical_difference") is not None:
        path = cd_diagram(result, out / "critical_difference.png", "Variants across data sets")
        doc.figure(path, "critical difference")


# ------------------------------------------------------------------------------ portability
def private_paths(records: list[dict]) -> dict[str, str]:
    """The user's data paths the records hold (files, data roots, token caches) -> what a report
    shows instead: the file's (or folder's) name. A report is mailed; its reader needs to know which
    file (name and fingerprint), not where it lies on the author's disk."""
    found: dict[str, str] = {}

    def add(value):
        if isinstance(value, str) and value.startswith(("/", "~")) and len(value) > 1:
            found[value.rstrip("/")] = Path(value.rstrip("/")).name or value
    for r in records:
        for value in ((r.get("data") or {}).get("files") or {}).values():
            add(value)
        dataset = (r.get("config") or {}).get("dataset") or {}
        for key in ("train", "val", "test", "root", "cache_dir", "path", "file"):
            add(dataset.get(key))
    return found


def scrub(text: str, private: dict[str, str]) -> str:
    """``text`` without the user's absolute data paths (longest first, so a file under a data root
    keeps its own name)."""
    for path in sorted(private, key=len, reverse=True):
        text = text.replace(path, private[path])
    return text


def portable_command(command: str, out: Path, private: dict[str, str] | None = None) -> str:
    """A command line as a report shows it: the user's data files by name (their fingerprints are
    under Provenance), any other absolute path relative to the report's folder."""
    import os
    import shlex
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    out = Path(out).resolve()

    def portable(value: str, data: bool) -> str:
        if not value.startswith("/"):
            return value
        if data or value.rstrip("/") in (private or {}):
            return Path(value).name
        return os.path.relpath(value, out)
    shown = []
    for word in words:
        key, equals, value = word.partition("=")
        if equals and not word.startswith("-"):
            shown.append(f"{key}={portable(value, key.lstrip('+~').startswith('dataset.'))}")
        else:
            shown.append(portable(word, False))
    return shlex.join(shown)


def report_command(folders: list, out: Path, command: str | None, plots: bool, resamples: int,
                   ropes: dict[str, float] | None, compare: list[tuple[str, str]] | None = None,
                   studies: str | Path | None = None) -> str:
    """``seqbench report`` with every flag that makes this very report again, run from the report's
    folder (paths relative to it)."""
    import os
    import shlex
    from .tasks import TASKS
    words = ["seqbench", "report", *[os.path.relpath(Path(f).resolve(), Path(out).resolve()) for f in folders],
             "--out", ".", "--resamples", str(resamples)]
    metrics = {task.metric for task in TASKS.values()}
    for metric, half in sorted((ropes or {}).items()):
        if metric in metrics:
            value = (100 * half if metric in PERCENT_METRICS else 100 * math.expm1(half) if metric in POSITIVE_METRICS
                     else half)
            words += ["--rope", f"{metric}={value:.6g}"]
    if compare:
        words += ["--compare", ",".join(f"{a}:{b}" for a, b in compare)]
    if not plots:
        words.append("--no-plots")
    if studies:
        words += ["--studies", os.path.relpath(Path(studies).resolve(), Path(out).resolve())]
    if command:
        words += ["--command", command]
    return shlex.join(words)


def provenance(records: list[dict], command: str | None, report: str | None = None,
               private: dict[str, str] | None = None, disk: str | None = None) -> list[str]:
    def distinct(getter):
        return ", ".join(sorted({str(getter(r)) for r in records if getter(r) is not None})) or "–"
    versions = distinct(lambda r: " ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items() if v))

    def data_words(r):
        files = ", ".join(sorted({Path(str(v)).name for v in ((r.get("data") or {}).get("files") or {}).values() if v}))
        return (f"{r.get('dataset')} {r.get('data_fingerprint')}" + (f" ({files})" if files else "")
                + vectors_words(r))
    lines = [f"command: `{command}`" if command else None,
             f"this report again (from its folder; data files by name, fingerprints below): `{report}`"
             if report else None,
             f"generated: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"runs started: {distinct(lambda r: (r.get('started') or '')[:10])}",
             f"hardware: {distinct(lambda r: describe_hardware(r['hardware']) if r.get('hardware') else None)}",
             f"versions: {versions}",
             f"git commits: {distinct(lambda r: r.get('git_commit'))}",
             f"code fingerprints: {distinct(lambda r: r.get('code_fingerprint'))}",
             f"data (name, fingerprint of its files, file names): {distinct(data_words)}",
             f"disk: {disk} (checkpoints=best, the default, keeps a finished run's best weights only; "
             f"checkpoints=all keeps last.ckpt and the optimizer state too)" if disk else None]
    return [scrub(line, private or {}) for line in lines if line]


MIN_RESAMPLES = 99


def check_resamples(value) -> int:
    """--resamples: a whole number of at least ``MIN_RESAMPLES`` (a resampled p needs that many
    draws to get below 0.02), else one line naming the flag."""
    try:
        number = int(str(value))
    except ValueError:
        number = None
    if number is None or number < MIN_RESAMPLES:
        raise SeqbenchError(f"--resamples {value}: give a whole number of at least {MIN_RESAMPLES} (the bootstrap "
                            f"and permutation tests draw that many resamples; the default is 9999)")
    return number


def parse_ropes(items: list[str] | None) -> dict[str, float]:
    """``--rope acc=1 --rope mse=5``: the region of practical equivalence per metric, in points for
    a percent metric and in percent of the error for an error measure; as half-widths on the
    test's scale (fractions, logs of ratios)."""
    from .tasks import TASKS
    metrics = sorted({task.metric for task in TASKS.values()})
    out = {}
    for item in items or []:
        metric, _, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if metric not in metrics or not (math.isfinite(value) and value > 0):
            raise SeqbenchError(f"--rope {item}: give METRIC=VALUE with METRIC one of {', '.join(metrics)} and VALUE "
                                f"above 0 (points for accuracy: acc=0.5; percent of the error for errors: mse=10)")
        out[metric] = (value / 100 if metric in PERCENT_METRICS else
                       math.log1p(value / 100) if metric in POSITIVE_METRICS else value)
    return out


def parse_compare(text: str | None, variants: list[str]) -> list[tuple[str, str]] | None:
    """``--compare gru:lstm,rnn:lstm`` -> [("gru", "lstm"), ("rnn", "lstm")]; a malformed pair or a
    variant the folders do not hold is one line naming the valid variants."""
    if text is None:
        return None
    pairs = []
    for item in str(text).split(","):
        a, colon, b = (part.strip() for part in item.partition(":"))
        problem = ("is not A:B" if not colon or not a or not b or ":" in b else
                   "compares a variant with itself" if a == b else
                   f"names {a if a not in variants else b}, which these folders do not hold"
                   if a not in variants or b not in variants else None)
        if problem:
            raise SeqbenchError(f"--compare {item.strip() or text!r} {problem}; give A:B[,C:D...] with variants from: "
                                f"{', '.join(variants)}")
        pairs.append((a, b))
    return list(dict.fromkeys(pairs))


def build_report(folders: list[str | Path], out: str | Path, command: str | None = None, plots: bool = True,
                 studies: str | Path | None = None, statistics: bool = True, resamples: int = 9999,
                 ropes: dict[str, float] | None = None, compare: str | None = None,
                 study_figures: list[tuple[Path, str, str | None]] | None = None) -> BuiltReport:
    """Write runs.csv, summary_<data>.csv, pairs_<data>.csv, summary.md, report.html and the figures
    under ``out``; both documents open with the verdict, one line per data set. ``ropes``: metric
    -> half-width of the region of practical equivalence on the test's scale (parse_ropes)."""
    resamples = check_resamples(resamples)
    try:
        records = load_records(folders)
    except FileNotFoundError as error:
        raise SeqbenchError(str(error)) from None
    if not records:
        raise SeqbenchError(f"no run record found under {', '.join(map(str, folders))}")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SeqbenchError(f"cannot write the report to {out}: {error.strerror or error}; choose another folder "
                            f"with --out") from None
    frame = long_table(records)
    private = private_paths(records)
    _portable_frame(frame, out, private).to_csv(out / "runs.csv", index=False)
    labels = data_labels(records)
    from .results import designs_under
    adaptive = designs_under(folders)
    pairs = parse_compare(compare, sorted({v for key in labels for v in
                                           variant_labels([r for r in records if data_key(r) == key]).values()}))
    sections = []
    for key, label in sorted(labels.items(), key=lambda item: item[1]):
        group = [r for r in records if data_key(r) == key]
        section = compute_section(frame, group, label, slug(label), out, plots, statistics, resamples, ropes, pairs,
                                  adaptive)
        write_tables(section, out)
        write_summary(out, section.stem, section.label, section.task.metric, summary_rows(section),
                      tuned_table(section))  # summary_<data>.tex: the tables for a paper
        sections.append(section)
    doc = Document("seqbench comparison")
    verdicts = [c.verdict for s in sections for c in s.comparisons]
    if verdicts:
        doc.heading("Verdict")
        doc.text(("One line per data set, the pairs named with --compare as the family (nothing about another "
                  "variant enters them): each pair's difference, its interval and the call. " if pairs else
                  "One line per data set: the best group (the top by mean and every variant not separated from it), "
                  "then each other variant's gap to the top with its interval (points for accuracy, a ratio for "
                  "errors). ")
                 + "Seeds as the unit (log scale for errors); 5% family-wise over the family named in each data set's "
                   "section, where the rule, what is undecided and what would decide it, and every pair are.")
        doc.bullets(verdicts)
    incomplete = [s.label for s in sections if not s.complete]
    if incomplete:
        doc.text(f"Incomplete data sets (runs missing or unfinished; never ranked, no verdict): "
                 f"{', '.join(incomplete)}.", css="warning")
    doc.heading("Provenance")
    shown = portable_command(command, out, private) if command else None
    again = report_command(folders, out, shown, plots, resamples, ropes, pairs, studies)
    from .checkpoints import disk_words
    doc.bullets(provenance(records, shown, again, private, disk_words(folders, skip=out)))
    if frame["code_fingerprint"].nunique() > 1:
        doc.text(f"These runs come from {frame['code_fingerprint'].nunique()} code fingerprints: each run's encoder, "
                 f"data set and the core training code (see runs.csv).")
    if studies and Path(studies).is_file():
        doc.markdown(Path(studies).read_text().replace("# Hyper-parameter search", "## Hyper-parameter search"))
        budget_curve_block(doc, Path(studies).with_suffix(".json"), out, plots)
        for path, caption, caveat in study_figures or []:   # Optuna's plots (search.write_plots)
            if caveat:
                doc.text(f"{caption}: {caveat}.", css="warning")
            doc.figure(path, caption)
    for section in sections:
        write_section(doc, section)
        memory_blocks(doc, section.records, section.label, out, plots)
    tuned_blocks(doc, sections)
    across_blocks(doc, sections, out, plots, resamples)
    (out / "summary.md").write_text(scrub(doc.to_markdown(), private))
    (out / "report.html").write_text(scrub(doc.to_html(), private))
    for table in out.glob("*.csv"):   # what this report wrote: no data path of the user's in any of them
        if table.name == "runs.csv" or table.name.startswith(("summary_", "pairs_", "confusion_", "by_length_",
                                                               "factorial_")):
            text = table.read_text()
            if any(path in text for path in private):
                table.write_text(scrub(text, private))
    return BuiltReport(out, sections)


def _portable_frame(frame: pd.DataFrame, out: Path, private: dict[str, str]) -> pd.DataFrame:
    """runs.csv as it can be mailed: the user's data paths by name, other absolute paths (records,
    output roots) relative to the report's folder."""
    import os
    frame = frame.copy()
    here = Path(out).resolve()
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            continue

        def portable(value):
            if not isinstance(value, str) or not value.startswith("/"):
                return value
            if value.rstrip("/") in private:
                return private[value.rstrip("/")]
            if column.startswith("config.dataset."):
                return Path(value).name
            return os.path.relpath(value, here)
        frame[column] = frame[column].map(portable)
    return frame


# ----------------------------------------------------------------------------- terminal
@dataclass
class BuiltReport:
    """What ``build_report`` wrote, and what a terminal shows of it."""
    out: Path
    sections: list[DataSection]

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {s.label: s.table for s in self.sections}

    def terminal(self) -> list[str]:
        return terminal_lines(self.sections, self.out)


def _plain_text(text: str) -> str:
    """A document line for a terminal: without Markdown's bold and code marks."""
    return re.sub(r"`([^`]+)`", r"\1", re.sub(r"\*\*(.+?)\*\*", r"\1", str(text)))


def _aligned(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return [(indent + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths))).rstrip()
            for row in [header, *rows]]


def compact_rows(section: DataSection) -> tuple[list[str], list[list[str]]]:
    """The terminal's table of a data set: variant, n, the primary test metric's mean ± sd, and its
    interval (solved k of n for memory tasks), best first; the test set where there are several."""
    table, task = section.table, section.task
    metric = task.metric
    unit = " (%)" if metric in PERCENT_METRICS else ""
    several = table["test_set"].nunique() > 1 if "test_set" in table else False
    names = test_set_names(section.records) if several else {}
    rows = []
    for r in table.to_dict("records"):
        mean, std = r[f"test_{metric}_mean"], r[f"test_{metric}_std"]
        spread = (f"{format_metric(mean, metric)} ± {format_metric(std, metric)}"
                  if isinstance(std, float) and not math.isnan(std) else format_metric(mean, metric))
        if task.solved_rule is not None:
            k = r.get("solved")
            interval = ("–" if k is None or (isinstance(k, float) and math.isnan(k)) else f"solved {int(k)} of {r['n']}")
        else:
            low, high = r[f"test_{metric}_ci_low"], r[f"test_{metric}_ci_high"]
            interval = "–" if math.isnan(low) else f"[{format_metric(low, metric)}, {format_metric(high, metric)}]"
        row = [r["model"], str(r["n"]), spread, interval]
        if several:
            row.insert(0, next((v for k, v in names.items() if str(k) == str(r["test_set"])), str(r["test_set"])))
        rows.append(row + ([f"not done: {r['not_done']}"] if r.get("not_done") else []))
    width = max((len(row) for row in rows), default=4)
    header = ["variant", "n", f"test {metric}{unit} mean ± sd",
              "solved (seeds)" if task.solved_rule is not None else "95% CI"]
    if several:
        header.insert(0, "test set")
    header += [""] * (width - len(header))
    rows = [row + [""] * (width - len(row)) for row in rows]
    return header, rows


def terminal_lines(sections: list[DataSection], out: Path) -> list[str]:
    """The end of a sweep, a search or ``seqbench report`` in a terminal: the verdict, one line per
    data set as summary.md has it, then each data set's compact table, then where the report is."""
    lines = []
    verdicts = [_plain_text(c.verdict) for s in sections for c in s.comparisons]
    if verdicts:
        lines.append("verdict (the best group, then each other variant's gap to the top; every pair in summary.md):")
        lines += [f"  {v}" for v in verdicts]
    for section in sections:
        if section.table.empty:
            continue
        if not section.comparisons:
            lines.append(f"{section.label}: {len(section.table)} variant{'s' if len(section.table) != 1 else ''}, "
                         f"nothing to compare")
        header, rows = compact_rows(section)
        for name, value in section.baselines.items():  # as the report's table has them
            rows.append([name, "–", format_metric(value, section.task.metric), "", *[""] * (len(header) - 4)])
        lines.append(f"{section.label}:")
        lines += _aligned(header, rows)
        cap = cap_words(section, short=True)
        if cap:
            lines.append(f"  budget: {cap}")
        from .factorial import sentence
        for result in section.factorials:
            lines.append(f"  direction × pooling ({result.attention}): {sentence(result)}")
    lines.append(f"report: {out / 'summary.md'}")
    lines.append(f"        {out / 'report.html'}")
    return lines


def write_tables(section: DataSection, out: Path) -> None:
    """summary_<data>.csv (fractions in percent where tables show them so), pairs_<data>.csv (the
    seed-level pairs on the test's scale, the per-example columns as networks_*),
    confusion_<data>.csv."""
    table = section.table.copy()
    percent = [c for c in table.columns if c.startswith(tuple(f"{prefix}{m}_" for prefix in ("test_", "val_best_")
                                                              for m in PERCENT_METRICS)) or
               c in tuple(f"val_best_{m}" for m in PERCENT_METRICS) or
               (c in ("vs_best", "median") and section.task.metric in PERCENT_METRICS)]
    table[percent] = table[percent] * 100
    table = table.rename(columns={c: f"{c}_pct" for c in percent})
    table = table.drop(columns=["seeds"], errors="ignore")
    # The key columns first, as in the report's main table; the rest after them.
    metric = section.task.metric
    first = [c for c in table.columns if c in ("model", "n") or
             c.startswith(tuple(f"test_{metric}_{part}" for part in ("mean", "std", "ci_low", "ci_high"))) or
             c.startswith(("solved", "vs_best", "not_done"))]
    order = sorted(first, key=lambda c: [i for i, prefix in enumerate(
        ("model", "n", f"test_{metric}_mean", f"test_{metric}_std", f"test_{metric}_ci_low", f"test_{metric}_ci_high",
         "solved", "vs_best", "not_done")) if c.startswith(prefix)][-1])
    table = table[[*order, *[c for c in table.columns if c not in order]]]
    table.to_csv(out / f"summary_{section.stem}.csv", index=False)
    rows = []
    for comparison in section.comparisons:
        conditional = {(c.a, c.b): c for c in comparison.conditional}
        for pair in comparison.seed.pairs:
            row = {"test_set": comparison.test_set, "scale": comparison.seed.scale,
                   "family": "compare" if comparison.seed.family is not None else "every pair", **pair.__dict__}
            c = conditional.get((pair.a, pair.b))
            if c is not None:
                row.update({f"networks_{k}": v for k, v in c.__dict__.items() if k not in ("a", "b")})
            rows.append(row)
    if rows:
        pairs = pd.DataFrame(rows)
        first = [c for c in ("test_set", "a", "b", "difference", "low", "high", "confidence", "p_adjusted", "separated",
                             "equivalent") if c in pairs]
        pairs[[*first, *[c for c in pairs.columns if c not in first]]].to_csv(out / f"pairs_{section.stem}.csv",
                                                                              index=False)
    if section.confusion:
        long = [{"variant": label, "true": true, "predicted": predicted, "count": int(count)}
                for label, matrix in section.confusion.items() for true, row in matrix.iterrows()
                for predicted, count in row.items()]
        pd.DataFrame(long).to_csv(out / f"confusion_{section.stem}.csv", index=False)
    if section.seed_confusion:
        long = [{"variant": label, "seed": seed, "true": true, "predicted": predicted, "count": int(count)}
                for label, seeds in section.seed_confusion.items() for seed, matrix in seeds.items()
                for true, row in matrix.iterrows() for predicted, count in row.items()]
        pd.DataFrame(long).to_csv(out / f"confusion_by_seed_{section.stem}.csv", index=False)
    if section.by_length is not None and not section.by_length.empty:
        section.by_length.to_csv(out / f"by_length_{section.stem}.csv", index=False, float_format="%.4g")
    if section.factorials:
        from .factorial import factorial_frame
        factorial_frame(section.factorials).to_csv(out / f"factorial_{section.stem}.csv", index=False,
                                                   float_format="%.6g")


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqbench report", description=__doc__)
    parser.add_argument("folders", nargs="*", default=["outputs"], help="folders searched for record.json")
    parser.add_argument("--out", default="report", help="where the tables and plots go (default: ./report)")
    parser.add_argument("--command", help="the command that produced the runs, written into the header")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--resamples", default="9999",
                        help=f"bootstrap and permutation resamples (at least {MIN_RESAMPLES}; default 9999)")
    parser.add_argument("--rope", action="append", metavar="METRIC=VALUE",
                        help="region of practical equivalence: acc=0.5 (points, the default), mse=10 or ce=10 "
                             "(percent of the error, the default); repeat for several metrics")
    parser.add_argument("--studies", help="a search's studies.md (studies.json beside it): its table, and the budget "
                                          "curves (budget_curves.csv and figure) in the report")
    parser.add_argument("--compare", metavar="A:B[,C:D...]",
                        help="make these pairs of variants the family: their intervals and p do not depend on the "
                             "other variants in the folders")
    args = parser.parse_args(argv)
    if args.studies:
        from .files import check_regular
        check_regular(args.studies, "--studies")
        if not Path(args.studies).is_file():
            raise SeqbenchError(f"--studies {args.studies}: no such file; give the studies.md a search wrote")
    resamples = check_resamples(args.resamples)
    ropes = parse_ropes(args.rope)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    built = build_report(args.folders, args.out, args.command, plots=not args.no_plots, resamples=resamples,
                         ropes=ropes, compare=args.compare, studies=args.studies)
    print("\n".join(built.terminal()))


if __name__ == "__main__":
    main()
