"""``seqbench report [FOLDERS...] [--out DIR]``: comparison tables, plots and (where per-example
predictions exist) the statistical verdict, built only from run records (also run at the end
of every multirun, into ``<sweep>/report``)."""
from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback

from . import SeqbenchError
from .record import MEMORY_KINDS, describe_hardware, short_hash
from .results import (POSITIVE_METRICS, _natural, budget_words, learning_curves, load_records, long_table, metric_of,
                      summary_table, task_of)

log = logging.getLogger(__name__)
METRIC_WORDS = {"acc": "accuracy", "mse": "mean squared error", "ce": "cross-entropy per step"}


def format_metric(value, metric: str) -> str:
    """One precision per metric: accuracy in percent with one decimal, positive error measures
    with three significant digits in scientific notation."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if metric in ("acc", "f1"):
        return f"{100 * value:.1f}"
    return f"{value:.2e}"


def _plain(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def markdown_summary(table: pd.DataFrame, metric: str, secondary: str) -> str:
    unit = " (%)" if metric in ("acc", "f1") else ""
    rows = []
    for r in table.to_dict("records"):
        mean, std = r[f"test_{metric}_mean"], r[f"test_{metric}_std"]
        spread = f"{format_metric(mean, metric)} ± {format_metric(std, metric)}" if not math.isnan(std) \
            else format_metric(mean, metric)
        low, high = r[f"test_{metric}_ci_low"], r[f"test_{metric}_ci_high"]
        interval = "–" if math.isnan(low) else f"[{format_metric(low, metric)}, {format_metric(high, metric)}]"
        if metric in POSITIVE_METRICS:
            versus = "best" if r["vs_best"] == 1 else f"×{r['vs_best']:.2f}"
        else:
            versus = "best" if r["vs_best"] == 0 else f"{100 * r['vs_best']:+.1f}"
        memory = {k: v for k, v in r.items() if k.startswith("memory_")}
        rows.append([r["model"], str(r["n"]), spread, interval, versus,
                     format_metric(r[f"val_best_{metric}"], metric), format_metric(r[f"test_{secondary}_mean"], secondary),
                     _plain(r["params"]), _plain(r["epochs_to_best"]), _plain(r["seconds_per_epoch"]),
                     _plain(r["train_tokens_per_s"]), *[_plain(v, 4) for v in memory.values()], r["not_done"] or ""])
    memory_names = [f"peak memory MB ({k.removeprefix('memory_').removesuffix('_mb')})"
                    for k in table.columns if k.startswith("memory_")]
    header = ["variant", "n", f"test {metric}{unit} mean ± std", "95% CI", "vs best" + (" (points)" if unit else ""),
              f"val {metric}{unit} (best epoch)", f"test {secondary}{' (%)' if secondary in ('acc', 'f1') else ''}",
              "params", "epochs to best", "train s/epoch", "train tokens/s", *memory_names, "not done"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(records: list[dict], command: str | None) -> str:
    def distinct(getter):
        return ", ".join(sorted({str(getter(r)) for r in records if getter(r) is not None})) or "–"
    versions = distinct(lambda r: " ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items() if v))
    lines = [f"- command: `{command}`" if command else None,
             f"- generated: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- runs started: {distinct(lambda r: (r.get('started') or '')[:10])}",
             f"- hardware: {distinct(lambda r: describe_hardware(r['hardware']) if r.get('hardware') else None)}",
             f"- versions: {versions}",
             f"- git commits: {distinct(lambda r: r.get('git_commit'))}",
             f"- code fingerprints: {distinct(lambda r: r.get('code_fingerprint'))}"]
    return "\n".join(line for line in lines if line)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _figure(width, height, rows=1, **kwargs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt, *plt.subplots(rows, 1, figsize=(width, height), **kwargs)


def plot_scores(frame: pd.DataFrame, table: pd.DataFrame, dataset: str, metric: str, baseline: float | None,
                out: Path) -> Path | None:
    """Every seed as a dot, the mean (geometric for positive error measures) as a marker with
    its 95% interval; n under each variant's name. No bars: a bar's length claims a zero the
    axis may not show."""
    done = table[table["n"] > 0]
    if done.empty:
        return None
    positive = metric in POSITIVE_METRICS
    plt, fig, ax = _figure(max(5.5, 1.2 * len(done) + 2), 4.2)
    runs = frame[(frame["dataset"] == dataset) & (frame["status"] == "done")]
    for x, row in enumerate(done.to_dict("records")):
        values = runs.loc[runs["config_hash"] == row["config_hash"], f"test_{metric}"].dropna()
        ax.scatter([x] * len(values), values, s=14, color="#999999", zorder=2,
                   label="one seed" if x == 0 else None)
        centre = math.exp(values.map(math.log).mean()) if positive and (values > 0).all() else values.mean()
        low, high = row[f"test_{metric}_ci_low"], row[f"test_{metric}_ci_high"]
        if not math.isnan(low):
            ax.errorbar([x + 0.12], [centre], yerr=[[centre - low], [high - centre]], fmt="o", color="#1f4e8c",
                        capsize=4, zorder=3, label="mean, 95% interval" if x == 0 else None)
        else:
            ax.scatter([x + 0.12], [centre], marker="o", color="#1f4e8c", zorder=3,
                       label="mean (n = 1: no interval)" if x == 0 else None)
    if baseline is not None:
        ax.axhline(baseline, color="#b22222", linestyle="--", linewidth=1, label="baseline (learns nothing)")
    ax.set_xticks(range(len(done)), [f"{m}\nn = {n}" for m, n in zip(done["model"], done["n"])], fontsize=8)
    if positive:
        ax.set_yscale("log")
        ax.set_ylabel(f"test {metric} (log scale; marker: geometric mean)")
    else:
        ax.set_ylabel(f"test {metric}")
    ax.set_title(f"{dataset}: test {METRIC_WORDS.get(metric, metric)}, each seed and the mean")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(plt, fig, out / f"{dataset}_test_{metric}.png")


def plot_learning_curves(records: list[dict], dataset: str, metric: str, out: Path) -> Path | None:
    """Validation metric per epoch (mean over the seeds still training, band min-max), and under
    it how many seeds each mean covers: after early stopping a mean is over fewer seeds."""
    curves = learning_curves(records, dataset)
    if not curves:
        return None
    plt, fig, (ax, counts) = _figure(7, 5.2, rows=2, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for label, frame in sorted(curves.items()):
        epochs = frame.index + 1
        line, = ax.plot(epochs, frame.mean(axis=1), marker="o", markersize=3, label=label)
        ax.fill_between(epochs, frame.min(axis=1), frame.max(axis=1), alpha=0.15, color=line.get_color())
        counts.step(epochs, frame.notna().sum(axis=1), where="mid", color=line.get_color())
    ax.set_ylabel(f"validation {metric}\n(mean; band: min-max over seeds)")
    if metric in POSITIVE_METRICS:
        ax.set_yscale("log")
    ax.set_title(f"{dataset}: learning curves")
    ax.legend(fontsize=7)
    counts.set_ylabel("seeds still\ntraining")
    counts.set_xlabel("epoch")
    counts.set_ylim(bottom=0)
    return _save(plt, fig, out / f"{dataset}_learning_curves.png")


def dataset_section(frame: pd.DataFrame, records: list[dict], dataset: str, out: Path, plots: bool) -> tuple[list[str], pd.DataFrame]:
    runs = frame[frame["dataset"] == dataset]
    task = runs["task"].dropna().iloc[0]
    metric, direction = metric_of(task)
    from .results import SECONDARY_METRIC
    table = summary_table(frame, dataset)
    table.to_csv(out / f"summary_{dataset}.csv", index=False)
    better = "higher" if direction == "max" else "lower"
    interval_words = ("log-scale interval around the geometric mean (it stays positive)" if metric in POSITIVE_METRICS
                      else "Student t interval over seeds")
    kinds = sorted({k for k in runs["peak_memory_kind"].dropna()})
    lines = [f"## {dataset}", "",
             f"Task: {task.replace('_', ' ')}. Test {METRIC_WORDS.get(metric, metric)} ({better} is better), "
             f"over seeds; n = finished runs; 95% CI: {interval_words}; \"vs best\": "
             + ("the ratio to the best variant's mean" if metric in POSITIVE_METRICS
                else "the difference from the best variant's mean, in points")
             + (" on the same test set (runs at another length were scored on other examples)."
                if table["test_set"].nunique() > 1 else "."), "",
             f"Budget: {budget_words(records, dataset)}", "",
             markdown_summary(table, metric, SECONDARY_METRIC[task]), ""]
    for kind in kinds:
        lines.append(f"- peak memory ({kind}): {MEMORY_KINDS.get(kind, kind)}.")
    lines.append("")
    if plots:
        baselines = [r.get("baselines", {}).get(metric) for r in records if r.get("dataset") == dataset]
        baseline = next((b for b in baselines if b is not None), None)
        for path in (plot_scores(frame, table, dataset, metric, baseline, out),
                     plot_learning_curves(records, dataset, metric, out)):
            if path is not None:
                lines += [f"![{path.stem}]({path.name})", ""]
    return lines, table


def _memory_variant(record: dict) -> str:
    """A variant of a memory task apart from its length T: the model and its settings."""
    from .config import computation_config
    config = computation_config(record.get("config") or {})
    config["dataset"] = {k: v for k, v in config["dataset"].items() if k != "length"}
    return short_hash(config)


def solved(record: dict, metric_value: float) -> bool | None:
    """Whether a memory-task run counts as solved: adding test MSE below dataset.solved_below,
    copy test accuracy on the recalled symbols at or above dataset.solved_above."""
    data = (record.get("config") or {}).get("dataset") or {}
    test = record.get("test") or {}
    if data.get("solved_below") is not None and "mse" in test:
        return test["mse"] < data["solved_below"]
    if data.get("solved_above") is not None and "acc" in test:
        return test["acc"] >= data["solved_above"]
    return None


def memory_section(records: list[dict], dataset: str, out: Path, plots: bool) -> list[str]:
    """Test metric against the length T for each variant, with the baseline; and the longest T
    each variant solved, in how many of its seeds."""
    done = [r for r in records if r.get("dataset") == dataset and r.get("status") == "done"
            and ((r.get("config") or {}).get("dataset") or {}).get("length") is not None]
    if not done:
        return []
    metric = metric_of(task_of(done[0]))[0]
    names: dict[str, str] = {}
    points: dict[str, dict[int, list[dict]]] = {}
    for r in done:
        key = _memory_variant(r)
        names.setdefault(key, r.get("model"))
        points.setdefault(key, {}).setdefault(int(r["config"]["dataset"]["length"]), []).append(r)
    if len(set(names.values())) < len(names):  # one name, several settings: say what differs
        from .results import variant_labels
        labels = variant_labels([{**r, "config_hash": _memory_variant(r),
                                  "config": {**r["config"], "dataset": {k: v for k, v in r["config"]["dataset"].items()
                                                                         if k != "length"}}} for r in done])
        names = {k: labels.get(k, v) for k, v in names.items()}
    lengths = sorted({t for by_length in points.values() for t in by_length})
    criterion = next((f"test MSE below {r['config']['dataset']['solved_below']}" for r in done
                      if r["config"]["dataset"].get("solved_below") is not None), None) or next(
        (f"recall accuracy at least {r['config']['dataset']['solved_above']}" for r in done
         if r["config"]["dataset"].get("solved_above") is not None), "–")
    header = ["variant", *[f"T = {t}" for t in lengths], "longest T solved (seeds)"]
    lines = [f"### {dataset}: memory length", "",
             f"Test {METRIC_WORDS.get(metric, metric)} against the length T (mean over seeds; in brackets how many seeds "
             f"solved it); solved: "
             f"{criterion}. Baseline (a model that learns nothing): "
             + ", ".join(f"T = {t}: {format_metric(_baseline(done, t, metric), metric)}" for t in lengths) + ".", "",
             "| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for key in sorted(points, key=lambda k: names[k]):
        cells, best = [], "none"
        for t in lengths:
            runs = points[key].get(t, [])
            values = [r["test"][metric] for r in runs if metric in (r.get("test") or {})]
            verdicts = [solved(r, r["test"].get(metric)) for r in runs]
            count = f"{sum(bool(v) for v in verdicts)}/{len(verdicts)} solved" if any(v is not None for v in verdicts) \
                else f"n = {len(values)}"
            cells.append(f"{format_metric(sum(values) / len(values), metric)} ({count})" if values else "–")
            if verdicts and any(verdicts):
                best = f"{t} ({sum(bool(v) for v in verdicts)} of {len(verdicts)})"
        lines.append("| " + " | ".join([names[key], *cells, best]) + " |")
    lines.append("")
    if plots and len(lengths) > 1:
        path = plot_memory(points, names, lengths, done, dataset, metric, out)
        lines += [f"![{path.stem}]({path.name})", ""]
    return lines


def _baseline(records: list[dict], length: int, metric: str) -> float | None:
    for r in records:
        if int(r["config"]["dataset"]["length"]) == length and (r.get("baselines") or {}).get(metric) is not None:
            return r["baselines"][metric]
    return None


def plot_memory(points, names, lengths, records, dataset, metric, out: Path) -> Path:
    plt, fig, ax = _figure(6.5, 4.2)
    for key in sorted(points, key=lambda k: names[k]):
        xs, means, seeds = [], [], []
        for t in lengths:
            values = [r["test"][metric] for r in points[key].get(t, []) if metric in (r.get("test") or {})]
            if values:
                xs.append(t)
                means.append(sum(values) / len(values))
                seeds.append(values)
        line, = ax.plot(xs, means, marker="o", label=names[key])
        for t, values in zip(xs, seeds):
            ax.scatter([t] * len(values), values, s=12, alpha=0.6, color=line.get_color())
    baseline = [(t, _baseline(records, t, metric)) for t in lengths]
    baseline = [(t, b) for t, b in baseline if b is not None]
    if baseline:
        ax.plot(*zip(*baseline), color="black", linestyle="--", linewidth=1, label="baseline (learns nothing)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(t) for t in lengths])
    if metric in POSITIVE_METRICS:
        ax.set_yscale("log")
    ax.set_xlabel("length T (steps to remember across)")
    ax.set_ylabel(f"test {metric} (dots: seeds; line: mean)")
    ax.set_title(f"{dataset}: how long a span each cell bridges")
    ax.legend(fontsize=7)
    return _save(plt, fig, out / f"{dataset}_memory_length.png")


def test_sets(done: list[dict]) -> dict[str, list[dict]]:
    """Records grouped by the test set they were scored on: '' when there is only one, else a
    label of what differs (``length=50``)."""
    from .results import TEST_SET_KEYS, test_set_key
    groups: dict[tuple, list[dict]] = {}
    for record in done:
        groups.setdefault(test_set_key(record), []).append(record)
    if len(groups) == 1:
        return {"": done}
    differing = [i for i in range(len(TEST_SET_KEYS) + 1) if len({k[i] for k in groups}) > 1]
    names = ("data",) + TEST_SET_KEYS
    def label(k):
        return ", ".join(f"{names[i]}={k[i]}" for i in differing)
    return {label(k): groups[k] for k in sorted(groups, key=lambda k: _natural([k[i] for i in differing]))}


def statistics_section(records: list[dict], frame: pd.DataFrame, dataset: str, out: Path,
                       resamples: int = 9999) -> tuple[list[str], list[str]]:
    """Pairwise paired tests on the test examples (Holm-adjusted), and the verdict in words; one of
    each per test set (a memory task at several lengths has one test set per length)."""
    done = [r for r in records if r.get("dataset") == dataset and r.get("status") == "done"]
    lines, verdicts, frames = [], [], []
    table = summary_table(frame, dataset)
    for test_set, runs in test_sets(done).items():
        table_labels = dict(zip(frame["config_hash"], frame["variant"]))
        section, words, pairs = _paired_comparisons(runs, table, table_labels, dataset, test_set, resamples)
        lines += section
        if words:
            verdicts.append(words)
        if pairs:
            frames.append(pd.DataFrame([{"test_set": test_set, **pair.__dict__} for pair in pairs]))
    if frames:
        pd.concat(frames).to_csv(out / f"pairs_{dataset}.csv", index=False)
    return lines, verdicts


def _paired_comparisons(done: list[dict], table: pd.DataFrame, table_labels: dict[str, str], dataset: str,
                        test_set: str, resamples: int):
    from .results import variant_labels
    from .stats import EXAMPLE_SCORE, load_scores, pairwise, smallest_step, verdict
    if len({r.get("config_hash") for r in done}) < 2:
        return [], None, []
    task = task_of(done[0])
    # Labels within this test set (what differs here), means looked up by the table's labels.
    labels = variant_labels(done)
    scores = load_scores(done, labels, task)
    scores = {k: v for k, v in scores.items() if not v.empty}
    if len(scores) < 2:
        return [], None, []
    pairs = pairwise(scores, resamples=resamples)
    metric, _ = metric_of(task)
    by_table_label = {r["model"]: r[f"test_{metric}_mean"] for r in table.to_dict("records")}
    means = {labels[h]: by_table_label.get(table_labels[h]) for h in labels if labels[h] in scores}
    means = {k: v for k, v in means.items() if v is not None}
    examples = pairs[0].examples if pairs else 0
    column, _ = EXAMPLE_SCORE[task]
    scale, unit = (100, " (points)") if column in ("correct", "recall_accuracy") else (1, "")
    name = f"{dataset} ({test_set})" if test_set else dataset
    lines = [f"#### {name}: paired comparisons", "",
             f"Per-example {column.replace('_', ' ')} on the same {examples} test examples, averaged over each "
             f"variant's seeds; difference = row variant minus column variant{unit}; 95% paired bootstrap interval; "
             f"p from a paired permutation test, Holm-adjusted over the {len(pairs)} pairs. Resolution: "
             f"{smallest_step(task, examples)}.", "",
             "| variant A | variant B | A − B | 95% interval | p | p (Holm) |", "| --- | --- | --- | --- | --- | --- |"]
    for pair in pairs:
        value = (lambda v: f"{v * scale:+.2f}") if scale == 100 else (lambda v: f"{v:+.2e}")
        lines.append(f"| {pair.a} | {pair.b} | {value(pair.difference)} | [{value(pair.low)}, {value(pair.high)}] | "
                     f"{pair.p:.3g} | {pair.p_holm:.3g} |")
    lines.append("")
    return lines, verdict(name, task, pairs, means), pairs


def across_datasets(tables: dict[str, pd.DataFrame], records: list[dict], out: Path, plots: bool) -> list[str]:
    """Ranks of the variants present on every data set, Friedman's test, critical difference."""
    from .stats import cd_diagram, friedman
    means, better, several = {}, {}, []
    for dataset, table in tables.items():
        done = [r for r in records if r.get("dataset") == dataset and r.get("status") == "done"]
        if not done or table.empty:
            continue
        if len(test_sets(done)) > 1:  # e.g. a memory task at several lengths: not one data set's ranking
            several.append(dataset)
            continue
        metric, direction = metric_of(task_of(done[0]))
        means[dataset] = dict(zip(table["model"], table[f"test_{metric}_mean"]))
        better[dataset] = direction == "max"
    frame = pd.DataFrame(means).T
    if frame.empty:
        return ([] if not several else
                ["## Across data sets", "", f"Not ranked: {', '.join(several)} {'holds' if len(several) == 1 else 'hold'} several test sets (see the "
                 "paired comparisons per test set).", ""])
    frame = frame.dropna(axis=1, how="any")
    if frame.shape[0] < 2 or frame.shape[1] < 3:
        return ["## Across data sets", "",
                f"{frame.shape[0]} data set(s) with {frame.shape[1]} variants in common: too few to rank.", ""]
    result = friedman(frame, better)
    ranks = result["average_ranks"]
    lines = ["## Across data sets", "",
             f"Variants present on all of {', '.join(result['datasets'])}, ranked per data set by mean test metric "
             f"(1 = best). " + (f"Friedman's test: chi² = {result['statistic']:.2f}, p = {result['p']:.3g}; Nemenyi "
                                f"critical difference at 0.05: {result['critical_difference']:.2f} ranks."
                                if "statistic" in result and not math.isnan(result["statistic"])
                                else "Fewer than three data sets: no Friedman test."), "",
             "| variant | average rank | " + " | ".join(result["datasets"]) + " |",
             "|" + " --- |" * (2 + len(result["datasets"]))]
    for name, rank in ranks.items():
        lines.append(f"| {name} | {rank:.2f} | " + " | ".join(f"{result['ranks'].loc[d, name]:.0f}"
                                                            for d in result["datasets"]) + " |")
    lines.append("")
    if plots and result.get("critical_difference") is not None:
        path = cd_diagram(result, out / "critical_difference.png", "Variants across data sets")
        lines += [f"![critical difference]({path.name})", ""]
    return lines


def tuned_versus_default(frame: pd.DataFrame, records: list[dict]) -> list[str]:
    """Per data set and model: the default configuration beside the tuned one."""
    lines = []
    for dataset in sorted(frame["dataset"].dropna().unique()):
        done = [r for r in records if r.get("dataset") == dataset and r.get("status") == "done"]
        if not any(r.get("tuned") for r in done):
            continue
        metric, _ = metric_of(task_of(done[0]))
        table = summary_table(frame, dataset)
        by_label = {r["model"]: r for r in table.to_dict("records")}
        tuned_info = {r["model"]: r["tuned"] for r in done if r.get("tuned")}
        lines += [f"### {dataset}: tuned beside default", "",
                  f"| model | default: test {metric} (n) | tuned: test {metric} (n) | tuned − default | "
                  f"trials | best parameters |", "| --- | --- | --- | --- | --- | --- |"]
        for model, info in sorted(tuned_info.items()):
            tuned, default = by_label.get(f"{model} (tuned)"), by_label.get(model)
            cell = (lambda r: f"{format_metric(r[f'test_{metric}_mean'], metric)} ± "
                              f"{format_metric(r[f'test_{metric}_std'], metric)} ({r['n']})" if r else "–")
            delta = ("–" if not (tuned and default) else
                     (f"{100 * (tuned[f'test_{metric}_mean'] - default[f'test_{metric}_mean']):+.1f} points"
                      if metric == "acc" else f"×{tuned[f'test_{metric}_mean'] / default[f'test_{metric}_mean']:.2f}"))
            params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in (info.get("params") or {}).items())
            lines.append(f"| {model} | {cell(default)} | {cell(tuned)} | {delta} | {info.get('trials')} | {params} |")
        lines.append("")
    return lines


def build_report(folders: list[str | Path], out: str | Path, command: str | None = None, plots: bool = True,
                 studies: str | Path | None = None, statistics: bool = True) -> dict:
    """Write runs.csv, summary_<dataset>.csv, pairs_<dataset>.csv, summary.md and plots under
    ``out``; summary.md opens with the verdict in words."""
    try:
        records = load_records(folders)
    except FileNotFoundError as error:
        raise SeqbenchError(str(error)) from None
    if not records:
        raise SeqbenchError(f"no run record found under {', '.join(map(str, folders))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = long_table(records)
    frame.to_csv(out / "runs.csv", index=False)
    body, verdicts, tables = [], [], {}
    for dataset in sorted(frame["dataset"].dropna().unique()):
        lines, tables[dataset] = dataset_section(frame, records, dataset, out, plots)
        tested, words = statistics_section(records, frame, dataset, out) if statistics else ([], [])
        body += lines + tested + memory_section(records, dataset, out, plots)
        verdicts += words
    body += tuned_versus_default(frame, records)
    body += across_datasets(tables, records, out, plots)
    head = ["# seqbench comparison", ""]
    if verdicts:
        head += ["## Verdict", "", *[f"- {words}" for words in verdicts], ""]
    head += [provenance(records, command), ""]
    if frame["code_fingerprint"].nunique() > 1:
        head += [f"Note: these runs come from {frame['code_fingerprint'].nunique()} versions of the code "
                 f"(see the code fingerprints above).", ""]
    if studies and Path(studies).is_file():
        head += [Path(studies).read_text().replace("# Hyper-parameter search", "## Hyper-parameter search"), ""]
    (out / "summary.md").write_text("\n".join(head + body))
    return tables


class ReportAfterSweep(Callback):
    """Hydra callback: at the end of a multirun, write the report for its sweep folder."""

    def __init__(self, out: str | None = None):
        self.out = out

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        out = Path(self.out) if self.out else sweep_dir / "report"
        try:
            build_report([sweep_dir], out, command="seqbench " + " ".join(config.hydra.overrides.task))
            print(f"report: {out / 'summary.md'}")
        except SeqbenchError as error:
            print(f"no report: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqbench report", description=__doc__)
    parser.add_argument("folders", nargs="*", default=["outputs"], help="folders searched for record.json")
    parser.add_argument("--out", default="report", help="where the tables and plots go (default: ./report)")
    parser.add_argument("--command", help="the command that produced the runs, written into the header")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        tables = build_report(args.folders, args.out, args.command, plots=not args.no_plots)
    except SeqbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    for dataset, table in tables.items():
        print(f"{dataset}: {len(table)} variants")
    print(f"report: {Path(args.out) / 'summary.md'}")


if __name__ == "__main__":
    main()
