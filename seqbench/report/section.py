"""What a report computes for one data set, once, before anything is written (``DataSection``):
completeness, the summary table, baselines, classes and lengths, the seed-level and per-example
comparisons with their verdicts, the 2 x 2 factorial readings and the figures."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..factorial import factorials
from ..figures import plot_confusion, plot_learning_curves, plot_scores
from ..record import FINISHED_STATUSES
from ..results import (VariantLabels, _natural, learning_curves, read_predictions, summary_table, test_set_key,
                       variant_labels)
from ..stats import (conditional_pairs, example_scores, far_seeds, holm, saturation, seed_level, test_set_sd,
                     verdict_line)
from ..tasks import TaskKind, task_of
from .confusion import (class_baselines, confusion_matrices, per_class_table, run_confusion, seed_confusions,
                        shown_classes)
from .lengths import TextLengths, length_table, text_lengths


log = logging.getLogger(__name__)


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
                    compare: list[tuple[str, str]] | None = None, adaptive: dict[str, dict] | None = None,
                    details: bool = True) -> DataSection:
    """One data set's numbers. ``details=False`` (a report's lead tables, which show the summary
    table and the verdict only): no confusion matrices, input lengths or factorial readings, which
    read every run's predictions and the data set's own files."""
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
        if details:
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
        if details:
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
    out = []
    for key, test_set in test_set_names(section.records).items():
        runs = [r for r in section.records if test_set_key(r) == key]
        scores, _ = seed_scores(runs, section.labels, section.task)
        out += factorials(runs, section.labels, section.task, scores, test_set)
    return out


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (``stats.holm``), NaN where a comparison has none."""
    present = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    out = [math.nan] * len(p_values)
    if present:
        for i, p in zip(present, holm([p_values[i] for i in present])[1]):
            out[i] = float(p)
    return out
