"""The report's tables as (header, rows): the main table of a data set, the pairs, the per-example
pairs, accuracy by length, the tuned-beside-default table and the terminal's compact table."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..results import VariantLabels
from ..stats import ALPHA, difference_words, format_p, seed_level
from ..tasks import PERCENT_METRICS, POSITIVE_METRICS, TaskKind, format_metric
from .section import Comparison, DataSection, holm_adjusted, seed_scores, test_set_names
from .words import MEASURED, MEMORY_WORDS, noise_words, parameter_words, plain


@dataclass(frozen=True)
class Column:
    """One column of a table: its header, its cell in a variant's row (a row of the data set's summary
    table, as a dict), its cell in a baseline's row (majority class, chance, "learns nothing"), and
    whether it is a key column (those lead: the LaTeX table and the terminal keep only them)."""
    header: str
    cell: Callable[[dict], str]
    baseline: Callable[[str, float], str] = lambda name, value: "–"
    key: bool = False


def table_rows(columns: list[Column], records: list[dict], baselines: dict[str, float] | None = None
               ) -> tuple[list[str], list[list[str]], int]:
    """(header, rows, key) of a table given by its columns: one row per record, then one per baseline;
    ``key``: how many leading columns are key columns."""
    key = sum(column.key for column in columns)
    assert all(column.key for column in columns[:key]), "key columns come first"
    rows = [[column.cell(r) for column in columns] for r in records]
    rows += [[column.baseline(name, value) for column in columns] for name, value in (baselines or {}).items()]
    return [column.header for column in columns], rows, key


def spread_cell(r: dict, metric: str) -> str:
    """A variant's test mean ± its standard deviation over seeds (the mean alone for one seed)."""
    mean, std = r[f"test_{metric}_mean"], r[f"test_{metric}_std"]
    return (f"{format_metric(mean, metric)} ± {format_metric(std, metric)}"
            if isinstance(std, float) and not math.isnan(std) else format_metric(mean, metric))


def interval_cell(r: dict, metric: str) -> str:
    low, high = r[f"test_{metric}_ci_low"], r[f"test_{metric}_ci_high"]
    return "–" if math.isnan(low) else f"[{format_metric(low, metric)}, {format_metric(high, metric)}]"


def solved_count(r: dict) -> int | None:
    k = r.get("solved")
    return None if k is None or (isinstance(k, float) and math.isnan(k)) else int(k)


def versus_cell(r: dict, metric: str) -> str:
    """The gap to the best of its test set: a ratio for positive error measures, points otherwise."""
    gap = r["vs_best"]
    if metric in POSITIVE_METRICS:
        return "best" if gap == 1 else ("–" if math.isnan(gap) else f"×{gap:.2f}")
    return "best" if gap == 0 else ("–" if math.isnan(gap) else f"{100 * gap:+.1f}")


def summary_columns(section: DataSection) -> list[Column]:
    """The main table's columns: the key ones first (variant, n, mean ± std, interval, vs best, and
    "not done" where a run did not finish), then the median, the best validation score, every other
    metric of the task, size, training and the measured columns."""
    table, task = section.table, section.task
    metric = task.metric
    unit = " (%)" if metric in PERCENT_METRICS else ""
    memory_columns = [k for k in table.columns if k.startswith("memory_")]
    if task.solved_rule is not None:
        interval = Column("solved (95% Wilson)", lambda r: "–" if solved_count(r) is None else (
            f"{solved_count(r)} of {r['n']} [{100 * r['solved_ci_low']:.0f}%, {100 * r['solved_ci_high']:.0f}%]"),
            key=True)
    else:
        interval = Column("95% CI", lambda r: interval_cell(r, metric), key=True)
    columns = [Column("variant", lambda r: r["model"], lambda name, value: f"*{name}*", key=True),
               Column("n", lambda r: str(r["n"]), key=True),
               Column(f"test {metric}{unit} mean ± std", lambda r: spread_cell(r, metric),
                      lambda name, value: format_metric(value, metric), key=True),
               interval,
               Column("vs best" + (" (points)" if unit else ""), lambda r: versus_cell(r, metric), key=True)]
    if "not_done" in table and table["not_done"].astype(bool).any():
        columns.append(Column("not done", lambda r: r["not_done"] or "", lambda name, value: "", key=True))
    columns += [Column("median", lambda r: format_metric(r["median"], metric)),
                Column(f"val {metric}{unit} (best epoch)", lambda r: format_metric(r[f"val_best_{metric}"], metric))]
    columns += [Column(f"test {m.name}{' (%)' if m.name in PERCENT_METRICS else ''}",
                       lambda r, m=m.name: format_metric(r.get(f"test_{m}_mean"), m)) for m in task.shown_beside]
    columns += [Column("params", lambda r: plain(r["params"])),
                Column("epochs to best", lambda r: plain(r["epochs_to_best"])),
                Column(f"train s/epoch{MEASURED}", lambda r: plain(r["seconds_per_epoch"])),
                Column(f"train tokens/s{MEASURED}", lambda r: plain(r["train_tokens_per_s"]))]
    columns += [Column(MEMORY_WORDS.get(k.removeprefix("memory_").removesuffix("_mb"), "peak memory (MB)") + MEASURED,
                       lambda r, k=k: plain(r[k], 4)) for k in memory_columns]
    return columns


def summary_rows(section: DataSection) -> tuple[list[str], list[list[str]], int]:
    """The main table of a data set: (header, rows, key), the key columns first; the baselines last."""
    return table_rows(summary_columns(section), section.table.to_dict("records"), section.baselines)


def pair_rows(comparison: Comparison) -> tuple[list[str], list[list[str]], int]:
    """The seed-level pairs: (header, rows, key). Key columns first: the pair, the difference, its
    interval at the deciding Holm step's level, Holm's p and the calls; then seeds, Welch's raw p,
    the exact permutation test and ASO."""
    level = comparison.seed
    rows = []
    for p in level.pairs:
        rows.append([p.a, p.b, difference_words(level, p.difference),
                     f"[{difference_words(level, p.low)}, {difference_words(level, p.high)}] "
                     f"({100 * p.confidence:.3g}%)", format_p(p.p_adjusted, 0),
                     "yes" if p.separated else "no", "yes" if p.equivalent else "no", f"{p.n_a} / {p.n_b}",
                     format_p(p.p, 0), noise_words(level, p, comparison.examples),
                     format_p(p.permutation_p, p.permutation_floor), plain(p.aso_eps, 2)])
    unit = "A / B (geometric means)" if level.scale == "log" else (
        "A − B (points)" if comparison.seed.task.metric in PERCENT_METRICS else "A − B")
    adjusted = "p (Holm)" if not level.moderated or level.family is not None else "p (Tukey-Kramer, simultaneous)"
    header = ["A", "B", unit, "interval (level of its step)", adjusted, "separated", "practically equivalent",
              "seeds A / B", "p (moderated t)" if level.moderated else "p (Welch)",
              "SE of A − B: seeds / one run's test set", "exact permutation p (seeds)", "ASO ε (A better)"]
    return header, rows, 7


def conditional_rows(comparison: Comparison, task: TaskKind) -> tuple[list[str], list[list[str]]]:
    scale = task.scale()

    def value(v):
        return f"{v * scale:+.2f}" if scale == 100 else f"{v:+.2e}"
    m = len(comparison.conditional)
    rows = [[c.a, c.b, value(c.difference), f"[{value(c.low)}, {value(c.high)}]", format_p(c.p, c.p_floor),
             format_p(c.p_holm, min(1.0, c.p_floor * m))] for c in comparison.conditional]
    return ["A", "B", "A − B", "95% CI", "p", "p (Holm)"], rows


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


def trial_words(tuned: dict) -> str:
    """A tuned run's search in the table's words: the trials its study finished and the cap
    ("10 (40)"), or the cap alone where the record does not say what was spent ("≤ 40")."""
    finished = tuned.get("trials_finished")
    return f"{finished} ({tuned.get('trials')})" if finished is not None else f"≤ {tuned.get('trials')}"


def tuned_table(section: DataSection) -> tuple[list[str], list[list[str]]] | None:
    """(header, rows) of the tuned-beside-default table of a data set; None without tuned runs."""
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
        rows.append([model, cell(default), cell(tuned), delta, same, trial_words(info), params])
    adjusted = holm_adjusted(p_values)
    for row, p in zip(rows, adjusted):
        row.insert(4, "–" if math.isnan(p) else f"{p:.3g}")
    relative = metric in POSITIVE_METRICS
    level = f"{100 * (1 - ALPHA / family):.4g}%"
    return (["model", f"default: test {metric} (n)", f"tuned: test {metric} (n)",
             f"tuned / default [{level} CI]" if relative else f"tuned − default [{level} CI]",
             f"p (Holm over {family})", "same seeds", "trials (cap)", "best parameters"], rows)


def compact_rows(section: DataSection) -> tuple[list[str], list[list[str]]]:
    """The terminal's table of a data set: variant, n, the primary test metric's mean ± sd, and its
    interval (solved k of n for memory tasks), best first, then the baselines as the report's table
    has them; the test set where there are several, and what did not finish where a run did not."""
    table, task = section.table, section.task
    metric = task.metric
    unit = " (%)" if metric in PERCENT_METRICS else ""
    columns = []
    if "test_set" in table and table["test_set"].nunique() > 1:
        names = {str(k): v for k, v in test_set_names(section.records).items()}
        columns.append(Column("test set", lambda r: names.get(str(r["test_set"]), str(r["test_set"])),
                              lambda name, value: ""))
    columns += [Column("variant", lambda r: r["model"], lambda name, value: name),
                Column("n", lambda r: str(r["n"])),
                Column(f"test {metric}{unit} mean ± sd", lambda r: spread_cell(r, metric),
                       lambda name, value: format_metric(value, metric))]
    if task.solved_rule is not None:
        columns.append(Column("solved (seeds)", lambda r: "–" if solved_count(r) is None else
                              f"solved {solved_count(r)} of {r['n']}", lambda name, value: ""))
    else:
        columns.append(Column("95% CI", lambda r: interval_cell(r, metric), lambda name, value: ""))
    if "not_done" in table and table["not_done"].astype(bool).any():
        columns.append(Column("", lambda r: f"not done: {r['not_done']}" if r.get("not_done") else "",
                              lambda name, value: ""))
    header, rows, _ = table_rows(columns, table.to_dict("records"), section.baselines)
    return header, rows


def aligned(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return [(indent + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths))).rstrip()
            for row in [header, *rows]]
