"""The report's tables as (header, rows): the main table of a data set, the pairs, the per-example
pairs, accuracy by length, the tuned-beside-default table and the terminal's compact table."""
from __future__ import annotations

import math

from ..results import VariantLabels
from ..stats import ALPHA, difference_words, format_p, seed_level
from ..tasks import PERCENT_METRICS, POSITIVE_METRICS, TaskKind, format_metric
from .section import Comparison, DataSection, holm_adjusted, seed_scores, test_set_names
from .words import MEASURED, MEMORY_WORDS, noise_words, parameter_words, plain


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
                     *[format_metric(r.get(f"test_{m}_mean"), m) for m in beside], plain(r["params"]),
                     plain(r["epochs_to_best"]), plain(r["seconds_per_epoch"]), plain(r["train_tokens_per_s"]),
                     *[plain(r[k], 4) for k in memory_columns]])
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
        rows.append([model, cell(default), cell(tuned), delta, same, str(info.get("trials")), params])
    adjusted = holm_adjusted(p_values)
    for row, p in zip(rows, adjusted):
        row.insert(4, "–" if math.isnan(p) else f"{p:.3g}")
    relative = metric in POSITIVE_METRICS
    level = f"{100 * (1 - ALPHA / family):.4g}%"
    return (["model", f"default: test {metric} (n)", f"tuned: test {metric} (n)",
             f"tuned / default [{level} CI]" if relative else f"tuned − default [{level} CI]",
             f"p (Holm over {family})", "same seeds", "trials", "best parameters"], rows)


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


def aligned(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return [(indent + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths))).rstrip()
            for row in [header, *rows]]
