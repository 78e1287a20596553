"""The report document, block by block: a data set's section (its tables, figures, verdict and
words), memory tasks against length, budget curves, tuned runs and the comparison across data sets."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..budget_curves import write_budget_curves
from ..config import computation_config
from ..document import Document
from ..factorial import cell_rows, effect_rows, method_words, sentence
from ..figures import plot_memory
from ..files import read_json
from ..record import short_hash
from ..results import budget_words, slug, variant_labels
from ..stats import MIN_DATASETS_FOR_FRIEDMAN, cd_diagram, friedman, group_words, rank_bootstrap, resolution, wilson
from ..survival import updates_to_solve_words
from ..tasks import PERCENT_METRICS, POSITIVE_METRICS, TASKS, TaskKind, format_metric, task_of
from .confusion import shown
from .rows import conditional_rows, length_rows, pair_rows, summary_rows, tuned_table
from .section import DataSection
from .words import (cap_words, conditional_test_words, disagreement_words, length_words, measured_words, plain,
                    power_words, seed_level_words, shown_words)


def incomplete_warning(doc: Document, section: DataSection) -> None:
    if section.problems:
        doc.text(f"Incomplete: {'; '.join(section.problems)}. Shown as it is; not ranked and given no verdict.",
                 css="warning")


def write_section(doc: Document, section: DataSection) -> None:
    task = section.task
    metric = task.metric
    better = "higher" if task.higher_is_better else "lower"
    doc.heading(section.label)
    incomplete_warning(doc, section)
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
        cells = {(row.variant, row["class"]): f"{plain(row.precision, 3)} / {plain(row.recall, 3)}"
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


def factorial_blocks(doc: Document, section: DataSection) -> None:
    """What the lead is made of: the four cells, the main effects, the interaction and the simple
    effects, and one sentence; the numbers in factorial_<data>.csv."""
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


def memory_blocks(doc: Document, records: list[dict], name: str, out: Path, plots: bool) -> None:
    """Test metric against the length T for each variant, with the baseline; and the longest T
    each variant solved, in k of its n seeds with a Wilson interval."""
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
    recall_table(doc, points, names, lengths, metric)
    updates_table(doc, points, names, lengths, task)
    legend = labels.legend()
    if legend:
        doc.table(["label", "configuration (what differs)"], [[s, f] for s, f in legend])
    if plots and len(lengths) > 1:
        # The file's name from the data set's label as a slug: a record is data, and its name no path.
        path = plot_memory(points, names, lengths, baselines, name, metric, out, slug(name))
        doc.figure(path, path.stem)


def recall_table(doc: Document, points: dict, names: dict, lengths: list[int], metric: str) -> None:
    """Where the tested metric is not the accuracy but the runs also record one (copy: cross-entropy
    tested, solved read on the recall accuracy), the accuracy by T: how much of the sequence each
    cell recalls, which the solved line hides (chance is 1 / the alphabet)."""
    if metric == "acc":
        return

    def cell(runs: list[dict]) -> str:
        values = [100 * r["test"]["acc"] for r in runs if isinstance((r.get("test") or {}).get("acc"), (int, float))]
        if not values:
            return "–"
        spread = f" [{min(values):.1f}-{max(values):.1f}]" if len(values) > 1 else ""
        return f"{np.mean(values):.1f}{spread} (n = {len(values)})"
    rows = [[names[key], *[cell(points[key].get(t, [])) for t in lengths]]
            for key in sorted(points, key=lambda k: names[k])]
    if not any(cell != "–" for row in rows for cell in row[1:]):
        return
    doc.text("Recall accuracy (%) on the test set against T: the mean over seeds, [lowest-highest seed], n seeds.")
    doc.table(["variant", *[f"T = {t}" for t in lengths]], rows)


def updates_table(doc: Document, points: dict, names: dict, lengths: list[int], task: TaskKind) -> None:
    """Median updates to solve per variant and T (Kaplan-Meier, the unsolved censored at the
    updates they trained), for the runs that record their updates (trainer.stop_when_solved)."""

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


def budget_curve_block(doc: Document, studies_json: Path, out: Path, plots: bool) -> None:
    """Budget curves from a search's studies.json (``seqbench.budget_curves``): budget_curves.csv,
    and the figure, in the report folder."""
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


def lead_blocks(doc: Document, sections: list[DataSection], named: str, main_labels: set[str]) -> None:
    """The headline the document opens with (``seqbench report --lead``): each data set of the
    lead folders as its table and verdict, before the main folders' verdict. For a search's
    retrained runs that is every variant tuned against every other tuned one; the main folders'
    section of the same data set (the defaults) follows below."""
    doc.heading(f"Headline: {named}")
    for section in sections:
        tuned = [r for r in section.done if r.get("tuned")]
        all_tuned = bool(tuned) and len(tuned) == len(section.done)
        doc.heading(f"{section.label}: {named}", 3)
        incomplete_warning(doc, section)
        seeds = sorted({int(r["seed"]) for r in section.done if isinstance(r.get("seed"), int)})
        how = (f"Each variant with its own best configuration, chosen on validation by its own study "
               f"({len({r['tuned'].get('study') for r in tuned})} studies; each study's trials, budget and choice are "
               f"in the search's studies.md), then trained on seeds {', '.join(map(str, seeds))} and tested once. "
               if all_tuned else "")
        below = ((f"the default configurations follow in the section {section.label} below." if all_tuned else
                  f"the main folders' runs of this data set follow in the section {section.label} below.")
                 if section.label in main_labels else "the main folders have no runs of this data set.")
        doc.text(how + f"Test {section.task.metric_words()} over seeds; {below}")
        doc.text(f"Budget of the runs shown: {budget_words(section.records)}")
        header, rows, key = summary_rows(section)
        doc.table(header, rows, key=key)
        verdicts = [c.verdict for c in section.comparisons]
        if verdicts:
            doc.text("Verdict (5% family-wise over these variants, seeds as the unit; the same rule as the "
                     "main folders' verdict below):")
            doc.bullets(verdicts)


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


def across_blocks(doc: Document, sections: list[DataSection], out: Path, plots: bool, resamples: int) -> None:
    """Average ranks of the variants present on every complete, unsaturated, single-test-set data
    set, with a bootstrap over seeds; Friedman's test and the critical difference only with enough
    data sets (Demšar 2006)."""
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
