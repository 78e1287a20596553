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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import SeqbenchError
from .document import Document
from .record import MEMORY_KINDS, describe_hardware, short_hash
from .results import (VariantLabels, _natural, budget_words, data_key, data_labels, learning_curves,
                      load_records, long_table, slug, summary_table, test_set_key, variant_labels)
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
    """The paired comparisons on one test set of a data set."""
    test_set: str
    name: str
    pairs: list
    verdict: str
    examples: int


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
    power: dict = field(default_factory=dict)
    per_class: pd.DataFrame | None = None
    confusion: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def done(self) -> list[dict]:
        return [r for r in self.records if r.get("status") == "done"]

    @property
    def complete(self) -> bool:
        return not self.problems


def completeness(records: list[dict], labels: VariantLabels) -> list[str]:
    """What is missing from a data set: runs that did not finish, and variants that lack seeds the
    others have. A data set with missing runs is never ranked or given a verdict."""
    problems = []
    unfinished = [r for r in records if r.get("status") not in ("done", "diverged")]
    for r in unfinished:
        problems.append(f"{labels.get(r.get('config_hash'), r.get('model'))} seed {r.get('seed')}: "
                        f"{r.get('status')}")
    finished: dict[str, set] = {}
    for r in records:
        if r.get("status") in ("done", "diverged"):
            finished.setdefault(labels.get(r.get("config_hash"), r.get("model")), set()).add(r.get("seed"))
    everyone = set().union(*finished.values()) if finished else set()
    for label, seeds in sorted(finished.items()):
        missing = everyone - seeds
        if missing:
            problems.append(f"{label} lacks seed{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(map(str, sorted(missing)))} that other variants have")
    return problems


def class_baselines(records: list[dict]) -> dict[str, float]:
    """The majority-class and chance accuracies of a classification test set, from its labels."""
    for record in records:
        path = Path(record["record_path"]).parent / (record.get("predictions") or "predictions.csv")
        if record.get("predictions") and path.is_file():
            targets = pd.read_csv(path, usecols=["target"])["target"]
            classes = len(record.get("label_names") or []) or targets.nunique()
            return {"majority class": float(targets.value_counts(normalize=True).max()),
                    "chance (uniform guess)": 1.0 / classes}
    return {}


def confusion_matrices(records: list[dict], labels: VariantLabels) -> dict[str, pd.DataFrame]:
    """Per variant, counts of (true, predicted) classes pooled over its seeds."""
    out: dict[str, pd.DataFrame] = {}
    for record in records:
        path = Path(record["record_path"]).parent / (record.get("predictions") or "")
        if not record.get("predictions") or not path.is_file():
            continue
        frame = pd.read_csv(path)
        if "target" not in frame or "predicted" not in frame:
            continue
        names = record.get("label_names") or sorted(set(frame["target"]) | set(frame["predicted"]))
        index = pd.Index(names, name="true")
        counts = pd.crosstab(frame["target"].map(lambda i: names[int(i)]),
                             frame["predicted"].map(lambda i: names[int(i)])).reindex(index=index, columns=names,
                                                                                       fill_value=0)
        label = labels[record["config_hash"]]
        out[label] = counts if label not in out else out[label] + counts
    return out


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
                    statistics: bool, resamples: int) -> DataSection:
    from .figures import plot_confusion, plot_learning_curves, plot_scores
    runs = frame[frame["data"] == label]
    task = task_of(records[0])
    labels = variant_labels(records)
    table = summary_table(frame, label)
    section = DataSection(label, stem, task, records, runs, table, labels, completeness(records, labels))
    done = section.done
    if task.name == "classification":
        section.baselines = class_baselines(done)
        section.confusion = confusion_matrices(done, labels)
        section.per_class = per_class_table(section.confusion)
    else:
        value = next(((r.get("baselines") or {}).get(task.metric) for r in done
                      if (r.get("baselines") or {}).get(task.metric) is not None), None)
        if value is not None and len({test_set_key(r) for r in done}) == 1:
            section.baselines = {"baseline (learns nothing)": value}
    if statistics and done:
        section.comparisons = comparisons(section, resamples)
        section.power = seed_power(section)
    if plots and done:
        figures = [plot_scores(runs, table, label, stem, task.metric, section.baselines, out),
                   plot_learning_curves(learning_curves(records, labels), label, stem, task.metric, out)]
        if section.confusion:
            figures.append(plot_confusion(section.confusion, label, stem, out))
        section.figures = [(path, path.stem) for path in figures if path is not None]
    return section


def comparisons(section: DataSection, resamples: int) -> list[Comparison]:
    """Paired comparisons and the verdict, one per test set of the data set."""
    from .stats import compare, load_scores, verdict
    out = []
    names = test_set_names(section.done)
    for key, test_set in names.items():
        runs = [r for r in section.done if test_set_key(r) == key]
        if len({r.get("config_hash") for r in runs}) < 2:
            continue
        labels = section.labels  # one labelling per data set: the tables, legend and pairs agree
        scores = {k: v for k, v in load_scores(runs, labels, section.task).items() if not v.empty}
        unscored = sorted({labels[r["config_hash"]] for r in runs} - set(scores))
        if len(scores) < 2:
            continue
        pairs = compare(scores, section.task, resamples=resamples)
        means = {label: float(frame.to_numpy().mean()) for label, frame in scores.items()}
        solved = None
        if any(section.task.is_solved(r) is not None for r in runs):  # the task and data set have a rule
            solved = {}
            for r in runs:
                count, total = solved.get(labels[r["config_hash"]], (0, 0))
                solved[labels[r["config_hash"]]] = (count + bool(section.task.is_solved(r)), total + 1)
        name = f"{section.label} ({test_set})" if test_set else section.label
        words = (verdict(name, section.task, pairs, means, solved) if section.complete else
                 f"**{name}**: incomplete ({'; '.join(section.problems[:3])}"
                 f"{'; ...' if len(section.problems) > 3 else ''}): no verdict, no ranking until every variant "
                 f"has the same finished seeds.")
        if unscored and section.complete:  # e.g. predictions written by an older seqbench: said, never hidden
            words = (f"**{name}**: {', '.join(unscored)} cannot be compared per example (no predictions it can "
                     f"score); among the others: " + words.split("**: ", 1)[-1].replace(" is best: its lead over every "
                                                                                       "other variant", " leads: its lead over every other compared variant"))
        words += disagreement_words(pairs, section.task) if section.complete else ""
        out.append(Comparison(test_set, name, pairs, words, pairs[0].examples if pairs else 0))
    return out


def disagreement_words(pairs: list, task: TaskKind) -> str:
    """Pairs where the test-set-only comparison finds a difference that training runs as the unit
    do not: said, so that nobody reads the conditional column as the verdict."""
    found = [f"{p.a} vs {p.b}" for p in pairs if p.conditional.get("p_holm", 1) < 0.05 and not p.detectable]
    if not found:
        return ""
    return (f" Conditional on these trained networks (test-set sampling only) {', '.join(found)} also differ; with "
            f"training runs as the unit {'this is' if len(found) == 1 else 'these are'} not detectable, and the "
            f"verdict follows the training runs.")


def seed_power(section: DataSection) -> dict:
    """How many seeds: the smallest difference the current seeds detect, and the seeds a given
    difference needs (1 point of accuracy; for positive errors 10%, on the log scale; else 10% of the
    best mean), from the seed spread."""
    from .stats import pooled_seed_sd, seeds_needed
    metric = section.task.metric
    per_seed = {}
    for key in {test_set_key(r) for r in section.done}:
        for config in {r["config_hash"] for r in section.done}:
            values = [r["test"][metric] for r in section.done if r["config_hash"] == config and test_set_key(r) == key
                      and metric in (r.get("test") or {})]
            if values:
                per_seed[(key, config)] = np.array(values)
    if not per_seed:
        return {}
    n = min(len(v) for v in per_seed.values())
    if metric in PERCENT_METRICS:
        return seeds_needed(pooled_seed_sd(per_seed), n, 0.01)
    if all((v > 0).all() for v in per_seed.values()):
        # Errors (MSE, cross-entropy) spread in proportion to their size: a variant at 2e-4 varies
        # ten times as much between seeds as one at 2e-5, so an absolute pooled spread would be the
        # poor variants' spread. On the log scale the spread is comparable, and a difference is a ratio.
        logs = {key: np.log(values) for key, values in per_seed.items()}
        return {**seeds_needed(pooled_seed_sd(logs), n, math.log(1.1)), "relative": True}
    best = section.table[f"test_{metric}_mean"].dropna()
    return seeds_needed(pooled_seed_sd(per_seed), n, 0.1 * float(best.abs().min() if len(best) else math.nan))


# --------------------------------------------------------------------------------- writing
def summary_rows(section: DataSection) -> tuple[list[str], list[list[str]]]:
    table, task = section.table, section.task
    metric, secondary = task.metric, task.secondary
    unit = " (%)" if metric in PERCENT_METRICS else ""
    solved_task = task.solved_rule is not None
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
        memory = {k: v for k, v in r.items() if k.startswith("memory_")}
        rows.append([r["model"], str(r["n"]), spread, format_metric(r["median"], metric), interval, versus,
                     format_metric(r[f"val_best_{metric}"], metric),
                     format_metric(r[f"test_{secondary}_mean"], secondary), _plain(r["params"]),
                     _plain(r["epochs_to_best"]), _plain(r["seconds_per_epoch"]), _plain(r["train_tokens_per_s"]),
                     *[_plain(v, 4) for v in memory.values()], r["not_done"] or ""])
    for name, value in section.baselines.items():
        rows.append([f"*{name}*", "–", format_metric(value, metric), "–", "–", "–", "–", "–", "–", "–",
                     "–", "–", *["–" for k in table.columns if k.startswith("memory_")], ""])
    memory_names = [f"peak memory MB ({k.removeprefix('memory_').removesuffix('_mb')})"
                    for k in table.columns if k.startswith("memory_")]
    header = ["variant", "n", f"test {metric}{unit} mean ± std", "median",
              "solved (95% Wilson)" if solved_task else "95% CI", "vs best" + (" (points)" if unit else ""),
              f"val {metric}{unit} (best epoch)", f"test {secondary}{' (%)' if secondary in PERCENT_METRICS else ''}",
              "params", "epochs to best", "train s/epoch", "train tokens/s", *memory_names, "not done"]
    return header, rows


def pair_rows(comparison: Comparison, task: TaskKind) -> tuple[list[str], list[list[str]]]:
    from .stats import format_p
    scale = task.scale()

    def value(v):
        return f"{v * scale:+.2f}" if scale == 100 else f"{v:+.2e}"
    m = len(comparison.pairs)
    rows = []
    for p in comparison.pairs:
        c = p.conditional
        rows.append([p.a, p.b, f"{p.n_a} / {p.n_b}", value(p.difference),
                     "–" if math.isnan(p.low) else f"[{value(p.low)}, {value(p.high)}]",
                     format_p(p.p, p.p_floor), "–" if math.isnan(p.simultaneous_low) else
                     f"[{value(p.simultaneous_low)}, {value(p.simultaneous_high)}]",
                     format_p(p.p_adjusted, min(1.0, p.p_floor * m)), format_p(p.permutation_p, p.permutation_floor),
                     _plain(p.aso_eps, 2), value(c["difference"]), f"[{value(c['low'])}, {value(c['high'])}]",
                     format_p(c["p"], c.get("p_floor", 0)),
                     format_p(c.get("p_holm", math.nan), min(1.0, c.get("p_floor", 0) * m))])
    header = ["A", "B", "seeds A / B", "A − B", "95% CI", "p", f"simultaneous 95% CI ({m} pairs)",
              "p (Bonferroni)", "exact permutation p (seeds)", "ASO ε (A better)",
              "A − B (networks)", "95% CI (networks)", "p (networks)", "p Holm (networks)"]
    return header, rows


def write_section(doc: Document, section: DataSection) -> None:
    from .stats import resolution
    task = section.task
    metric = task.metric
    better = "higher" if task.higher_is_better else "lower"
    doc.heading(section.label)
    if section.problems:
        doc.text(f"Incomplete: {'; '.join(section.problems)}. Shown as it is; not ranked and given no verdict.",
                 css="warning")
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
    doc.table(*summary_rows(section))
    legend = section.labels.legend()
    if legend:
        doc.text("Labels:")
        doc.table(["label", "configuration (what differs)"], [[short, full] for short, full in legend])
    for kind in sorted(set(section.runs["peak_memory_kind"].dropna())):
        doc.text(f"Peak memory ({kind}): {MEMORY_KINDS.get(kind, kind)}.")
    if section.power:
        doc.text(power_words(section))
    for path, alt in section.figures:
        doc.figure(path, alt)
    if section.per_class is not None:
        doc.heading(f"{section.label}: per class (pooled over seeds)", 3)
        cells = {(row.variant, row["class"]): f"{_plain(row.precision, 3)} / {_plain(row.recall, 3)}"
                 for _, row in section.per_class.iterrows()}
        classes = list(dict.fromkeys(section.per_class["class"]))
        rows = [[variant, *[cells[(variant, c)] for c in classes]]
                for variant in dict.fromkeys(section.per_class["variant"])]
        doc.text("Precision / recall (%) per class; confusion matrices in "
                 f"`confusion_{section.stem}.csv` and the figure.")
        doc.table(["variant", *classes], rows)
    for comparison in section.comparisons:
        doc.heading(f"{comparison.name}: paired comparisons", 3)
        doc.text(f"Per-example {task.example_words} on the same {comparison.examples} test examples; A − B in "
                 f"{'points' if task.scale() == 100 else task.metric} ({'positive: A better' if task.higher_is_better else 'negative: A errs less'}). "
                 f"Seed level (training runs as the unit): two-level bootstrap over seeds, then test examples; p from "
                 f"the same bootstrap, Bonferroni-adjusted; exact permutation test over seeds (smallest p it can "
                 f"give shown with ≤); ASO ε_min (deepsig; < 0.5: A tends to be better, < 0.2: almost always). "
                 f"Columns marked \"(networks)\": conditional on these trained networks (test-set sampling only; "
                 f"{conditional_test_words(comparison)} over examples, Holm). Resolution: "
                 f"{resolution(task, comparison.examples)}.")
        doc.table(*pair_rows(comparison, task))


def conditional_test_words(comparison: Comparison) -> str:
    """Which per-example test the "(networks)" columns used: stats.compare records it per pair."""
    tests = {p.conditional.get("test", "permutation") for p in comparison.pairs}
    return ("paired t-test (over 5,000 examples)" if tests == {"paired t-test"}
            else "paired bootstrap and permutation test")


def power_words(section: DataSection) -> str:
    power, task = section.power, section.task
    scale = task.scale()

    if not power or math.isnan(power.get("seed_sd", math.nan)):
        return ""
    relative = power.get("relative", False)

    def value(v):
        if relative:  # a difference of logs, as the ratio it stands for
            percent = 100 * (math.exp(v) - 1)
            return f"{percent:.2g}%" if percent < 100 else f"{percent:.0f}%"
        return (f"{v * scale:.2g} point{'' if round(v * scale, 2) == 1 else 's'}" if scale == 100 else f"{v:.2g}")
    now = power.get("detectable_now")
    needed = power.get("seeds_for_difference")
    scale_words = ("log ", "; differences as ratios, since errors spread in proportion to their size") if relative else ("", "")
    parts = [f"Seeds needed: the spread between seeds here is {value(power['seed_sd'])} (sd of a variant's "
             f"{scale_words[0]}test {task.metric_words()}, pooled{scale_words[1]})."]
    if now is not None and not math.isnan(now):
        parts.append(f"With {power['n']} seeds per variant, differences below about {value(now)} are not reliably "
                     f"detected (80% power, two-sided 5% two-sample t-test).")
    if needed is not None and not (isinstance(needed, float) and math.isnan(needed)):
        parts.append(f"Detecting {value(power['difference'])} would need about {needed} seeds per variant.")
    return " ".join(parts)


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
    legend = labels.legend()
    if legend:
        doc.table(["label", "configuration (what differs)"], [[s, f] for s, f in legend])
    if plots and len(lengths) > 1:
        path = plot_memory(points, names, lengths, baselines, name, metric, out)
        doc.figure(path, path.stem)


def tuned_blocks(doc: Document, sections: list[DataSection], resamples: int) -> None:
    """Per data set and model: the default configuration beside the tuned one, on the same
    seeds, with the difference and its seed-level interval."""
    from .stats import compare, load_scores
    for section in sections:
        tuned_records = [r for r in section.done if r.get("tuned")]
        if not tuned_records:
            continue
        metric = section.task.metric
        by_label = {r["model"]: r for r in section.table.to_dict("records")}
        doc.heading(f"{section.label}: tuned beside default", 3)
        rows = []
        for model in sorted({r["model"] for r in tuned_records}):
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
            if tuned and default:
                same = "yes" if tuned["seeds"] == default["seeds"] else (f"no: {tuned['seeds']} vs {default['seeds']}")
                runs = [r for r in section.done if r["config_hash"] in (tuned_hash, default_hash)]
                scores = load_scores(runs, {tuned_hash: "tuned", default_hash: "default"}, section.task)
                if len(scores) == 2:
                    (pair,) = compare({"tuned": scores["tuned"], "default": scores["default"]}, section.task,
                                      resamples=resamples, aso=False)
                    # compare() pairs names in sorted order (default, tuned): turn it round to tuned - default.
                    sign = 1 if pair.a == "tuned" else -1
                    low, high = sorted((sign * pair.low, sign * pair.high))
                    scale = section.task.scale()
                    form = (lambda v: f"{v * scale:+.1f}") if scale == 100 else (lambda v: f"{v:+.2e}")
                    delta = f"{form(sign * pair.difference)} [{form(low)}, {form(high)}]"
            params = parameter_words(info.get("params") or {})
            rows.append([model, cell(default), cell(tuned), delta, same, str(info.get("trials")), params])
        doc.text(f"Tuned − default: difference of mean test {metric} "
                 f"({'points' if section.task.scale() == 100 else metric}) with its 95% seed-level interval "
                 f"(two-level bootstrap).")
        doc.table(["model", f"default: test {metric} (n)", f"tuned: test {metric} (n)", "tuned − default [95% CI]",
                   "same seeds", "trials", "best parameters"], rows)


def across_blocks(doc: Document, sections: list[DataSection], out: Path, plots: bool) -> None:
    """Ranks of the variants present on every complete single-test-set data set; Friedman's test
    and the critical difference only with enough data sets (Demšar 2006)."""
    from .stats import MIN_DATASETS_FOR_FRIEDMAN, cd_diagram, friedman
    means, better, left_out = {}, {}, []
    for section in sections:
        if section.table.empty or not section.done:
            continue
        if not section.complete:
            left_out.append(f"{section.label} (incomplete)")
            continue
        if section.table["test_set"].nunique() > 1:
            left_out.append(f"{section.label} (several test sets)")
            continue
        means[section.label] = dict(zip(section.table["model"], section.table[f"test_{section.task.metric}_mean"]))
        better[section.label] = section.task.higher_is_better
    frame = pd.DataFrame(means).T
    if frame.empty and not left_out:
        return
    doc.heading("Across data sets")
    if left_out:
        doc.text(f"Not ranked: {', '.join(left_out)}.")
    if frame.empty:
        return
    frame = frame.dropna(axis=1, how="any")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        doc.text(f"{frame.shape[0]} data set(s) with {frame.shape[1]} variant(s) in common: too few to rank.")
        return
    result = friedman(frame, better)
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
             f"(1 = best). {words}")
    doc.table(["variant", "average rank", *result["datasets"]],
              [[name, f"{rank:.2f}", *[f"{result['ranks'].loc[d, name]:.0f}" for d in result["datasets"]]]
               for name, rank in result["average_ranks"].items()])
    if plots and result.get("critical_difference") is not None:
        path = cd_diagram(result, out / "critical_difference.png", "Variants across data sets")
        doc.figure(path, "critical difference")


def provenance(records: list[dict], command: str | None) -> list[str]:
    def distinct(getter):
        return ", ".join(sorted({str(getter(r)) for r in records if getter(r) is not None})) or "–"
    versions = distinct(lambda r: " ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items() if v))
    lines = [f"command: `{command}`" if command else None,
             f"generated: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"runs started: {distinct(lambda r: (r.get('started') or '')[:10])}",
             f"hardware: {distinct(lambda r: describe_hardware(r['hardware']) if r.get('hardware') else None)}",
             f"versions: {versions}",
             f"git commits: {distinct(lambda r: r.get('git_commit'))}",
             f"code fingerprints: {distinct(lambda r: r.get('code_fingerprint'))}",
             f"data: {distinct(lambda r: str(r.get('dataset')) + ' ' + str(r.get('data_fingerprint')))}"]
    return [line for line in lines if line]


def build_report(folders: list[str | Path], out: str | Path, command: str | None = None, plots: bool = True,
                 studies: str | Path | None = None, statistics: bool = True, resamples: int = 9999) -> dict:
    """Write runs.csv, summary_<data>.csv, pairs_<data>.csv, summary.md, report.html and the figures
    under ``out``; both documents open with the verdict in words."""
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
    frame.to_csv(out / "runs.csv", index=False)
    labels = data_labels(records)
    sections = []
    for key, label in sorted(labels.items(), key=lambda item: item[1]):
        group = [r for r in records if data_key(r) == key]
        section = compute_section(frame, group, label, slug(label), out, plots, statistics, resamples)
        write_tables(section, out)
        sections.append(section)
    doc = Document("seqbench comparison")
    verdicts = [c.verdict for s in sections for c in s.comparisons]
    if verdicts:
        doc.heading("Verdict")
        doc.bullets(verdicts)
    incomplete = [s.label for s in sections if not s.complete]
    if incomplete:
        doc.text(f"Incomplete data sets (runs missing or unfinished; never ranked, no verdict): "
                 f"{', '.join(incomplete)}.", css="warning")
    doc.heading("Provenance")
    doc.bullets(provenance(records, command))
    if frame["code_fingerprint"].nunique() > 1:
        doc.text(f"These runs come from {frame['code_fingerprint'].nunique()} code fingerprints: each run's encoder, "
                 f"data set and the core training code (see runs.csv).")
    if studies and Path(studies).is_file():
        doc.markdown(Path(studies).read_text().replace("# Hyper-parameter search", "## Hyper-parameter search"))
    for section in sections:
        write_section(doc, section)
        memory_blocks(doc, section.records, section.label, out, plots)
    tuned_blocks(doc, sections, resamples)
    across_blocks(doc, sections, out, plots)
    (out / "summary.md").write_text(doc.to_markdown())
    (out / "report.html").write_text(doc.to_html())
    return {s.label: s.table for s in sections}


def write_tables(section: DataSection, out: Path) -> None:
    """summary_<data>.csv (fractions in percent where tables show them so), pairs_<data>.csv,
    confusion_<data>.csv."""
    table = section.table.copy()
    percent = [c for c in table.columns if c.startswith(tuple(f"{prefix}{m}_" for prefix in ("test_", "val_best_")
                                                              for m in PERCENT_METRICS)) or
               c in tuple(f"val_best_{m}" for m in PERCENT_METRICS) or
               (c in ("vs_best", "median") and section.task.metric in PERCENT_METRICS)]
    table[percent] = table[percent] * 100
    table = table.rename(columns={c: f"{c}_pct" for c in percent})
    table.drop(columns=["seeds"], errors="ignore").to_csv(out / f"summary_{section.stem}.csv", index=False)
    rows = []
    for comparison in section.comparisons:
        for pair in comparison.pairs:
            row = {"test_set": comparison.test_set, **{k: v for k, v in pair.__dict__.items() if k != "conditional"}}
            row.update({f"networks_{k}": v for k, v in pair.conditional.items()})
            rows.append(row)
    if rows:
        pd.DataFrame(rows).to_csv(out / f"pairs_{section.stem}.csv", index=False)
    if section.confusion:
        long = [{"variant": label, "true": true, "predicted": predicted, "count": int(count)}
                for label, matrix in section.confusion.items() for true, row in matrix.iterrows()
                for predicted, count in row.items()]
        pd.DataFrame(long).to_csv(out / f"confusion_{section.stem}.csv", index=False)


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqbench report", description=__doc__)
    parser.add_argument("folders", nargs="*", default=["outputs"], help="folders searched for record.json")
    parser.add_argument("--out", default="report", help="where the tables and plots go (default: ./report)")
    parser.add_argument("--command", help="the command that produced the runs, written into the header")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--resamples", type=int, default=9999, help="bootstrap and permutation resamples")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    tables = build_report(args.folders, args.out, args.command, plots=not args.no_plots, resamples=args.resamples)
    for data, table in tables.items():
        print(f"{data}: {len(table)} variants")
    print(f"report: {Path(args.out) / 'summary.md'} and {Path(args.out) / 'report.html'}")


if __name__ == "__main__":
    main()
