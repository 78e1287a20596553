"""Is a difference real? Paired comparisons on the same test examples, and ranks across data sets.

Per data set, for every pair of variants: each run saved its per-example test predictions;
per example, a variant's score is averaged over its seeds (correct or not, or the squared
error); the difference of two variants is the mean of the per-example differences. Its 95%
interval is a paired bootstrap over test examples (scipy.stats.bootstrap, BCa), its p-value a
paired permutation (sign-flip) test (scipy.stats.permutation_test), which with one seed of a
classifier is McNemar's test done by randomisation. p-values are adjusted for the number of
pairs with Holm's method (statsmodels). These intervals describe the test set's sampling; the
spread over seeds is in the tables beside them.

Across data sets: variants ranked per data set by their mean test metric, Friedman's test
(scipy), and the Nemenyi critical difference (q from scipy's studentized range) drawn as a
critical-difference diagram (Demšar 2006).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .names import TASKS

# Per-example score each task's predictions give, and whether higher is better.
EXAMPLE_SCORE = {"classification": ("correct", True), "per_step_regression": ("squared_error", False),
                 "last_step_regression": ("squared_error", False),
                 "per_step_classification": ("recall_accuracy", True)}


@dataclass
class PairResult:
    a: str
    b: str
    difference: float       # mean per-example score of a minus b (in the metric's units)
    low: float
    high: float
    p: float
    p_holm: float = math.nan
    examples: int = 0


def example_scores(predictions: pd.DataFrame, task: str) -> pd.Series:
    """index -> the per-example score of one run."""
    column, _ = EXAMPLE_SCORE[task]
    frame = predictions.set_index("index")
    if column == "correct":
        return (frame["predicted"] == frame["target"]).astype(float)
    if column == "squared_error" and "squared_error" not in frame:
        return (frame["prediction"] - frame["target"]) ** 2
    return frame[column].astype(float)


def paired_test(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 9999) -> tuple[float, float, float, float]:
    """(mean of a - b, 95% bootstrap low, high, two-sided permutation p) for paired per-example scores."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    difference = a - b
    mean = float(difference.mean())
    if np.allclose(difference, difference[0]):  # no variation: every resample gives the same mean
        return mean, mean, mean, 1.0 if mean == 0 else 0.0
    rng = np.random.default_rng(seed)
    interval = stats.bootstrap((difference,), np.mean, confidence_level=0.95, n_resamples=resamples, method="BCa",
                               random_state=rng, batch=max(1, 2_000_000 // len(difference)))
    test = stats.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
                                  n_resamples=resamples, alternative="two-sided", vectorized=True, random_state=rng,
                                  batch=max(1, 2_000_000 // len(difference)))
    return mean, float(interval.confidence_interval.low), float(interval.confidence_interval.high), float(test.pvalue)


def pairwise(scores: dict[str, pd.DataFrame], seed: int = 0, resamples: int = 9999) -> list[PairResult]:
    """scores: variant -> DataFrame (examples x seeds). Every pair, on the examples all share,
    Holm-adjusted within the family of pairs."""
    means = {name: frame.mean(axis=1) for name, frame in scores.items()}
    common = sorted(set.intersection(*(set(m.index) for m in means.values()))) if means else []
    results = []
    for a, b in combinations(sorted(means), 2):
        difference, low, high, p = paired_test(means[a].loc[common].to_numpy(), means[b].loc[common].to_numpy(),
                                               seed=seed, resamples=resamples)
        results.append(PairResult(a, b, difference, low, high, p, examples=len(common)))
    if results:
        adjusted = multipletests([r.p for r in results], alpha=0.05, method="holm")[1]
        for result, p in zip(results, adjusted):
            result.p_holm = float(p)
    return results


def load_scores(records: list[dict], labels: dict[str, str], task: str) -> dict[str, pd.DataFrame]:
    """variant label -> examples x seeds of per-example scores, from each run's predictions.csv."""
    columns: dict[str, dict] = {}
    for record in records:
        name = record.get("predictions")
        folder = Path(record.get("output_dir") or Path(record["record_path"]).parent)
        if not name or not (folder / name).is_file():
            continue
        frame = pd.read_csv(folder / name)
        columns.setdefault(labels[record["config_hash"]], {})[record["seed"]] = example_scores(frame, task)
    return {label: pd.DataFrame(by_seed) for label, by_seed in columns.items()}


def friedman(means: pd.DataFrame, higher_is_better: dict[str, bool] | None = None) -> dict:
    """means: data sets x variants (mean test metric). Ranks per data set (1 = best), Friedman's
    chi-square and p (scipy), and the Nemenyi critical difference at 0.05."""
    means = means.dropna(axis=1, how="any")
    higher_is_better = higher_is_better or {}
    ranks = means.apply(lambda row: row.rank(ascending=not higher_is_better.get(row.name, True)), axis=1)
    k, n = means.shape[1], means.shape[0]
    out = {"variants": list(means.columns), "datasets": list(means.index), "ranks": ranks,
           "average_ranks": ranks.mean().sort_values(), "k": k, "n": n}
    if k >= 3 and n >= 2:
        statistic, p = stats.friedmanchisquare(*[means[c].to_numpy() for c in means.columns]) if n >= 3 else (
            math.nan, math.nan)
        q = stats.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2)
        out.update(statistic=statistic, p=p, critical_difference=q * math.sqrt(k * (k + 1) / (6 * n)))
    return out


def cd_diagram(result: dict, path: Path, title: str) -> Path:
    """Average ranks on one axis; variants joined by a bar do not differ by the critical difference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ranks = result["average_ranks"]
    k = result["k"]
    cd = result.get("critical_difference")
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.32 * k))
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-(len(ranks) + 2), 2)
    ax.hlines(0, 1, k, color="black")
    for r in range(1, k + 1):
        ax.vlines(r, -0.1, 0.1, color="black")
        ax.text(r, 0.35, str(r), ha="center", fontsize=8)
    for i, (name, rank) in enumerate(ranks.items()):
        y = -(i + 1)
        ax.plot([rank, rank], [0, y], color="#555555", linewidth=0.8)
        ax.text(rank + 0.05, y, f"{name} ({rank:.2f})", va="center", fontsize=8)
    if cd is not None and not math.isnan(cd):
        ax.hlines(1.2, 1, 1 + cd, color="#b22222", linewidth=2)
        ax.text(1 + cd / 2, 1.45, f"CD = {cd:.2f}", ha="center", fontsize=8, color="#b22222")
        values = list(ranks.values)
        groups = []
        for i in range(len(values)):
            j = max(j for j in range(i, len(values)) if values[j] - values[i] < cd)
            if j > i and not any(g[0] <= i and g[1] >= j for g in groups):
                groups.append((i, j))
        for depth, (i, j) in enumerate(groups):
            y = -0.5 - 0.25 * depth
            ax.hlines(y, values[i] - 0.05, values[j] + 0.05, color="#1f4e8c", linewidth=3)
    ax.axis("off")
    p = result.get("p")
    subtitle = (f"Friedman p = {p:.3g} over {result['n']} data sets" if p is not None and not math.isnan(p)
                else f"{result['n']} data sets: too few for Friedman's test")
    ax.set_title(f"{title}\naverage rank (1 = best); {subtitle}; bars: no difference beyond the CD", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def smallest_step(task: str, examples: int) -> str:
    """What one test example is worth in the metric, the finest difference the test set resolves."""
    if TASKS[task][0] == "acc" and examples:
        return f"one test example is {100 / examples:.2g} points of accuracy ({examples} examples)"
    return f"{examples} test examples"


def _points(value: float, metric: str) -> str:
    return f"{100 * value:+.1f}" if metric == "acc" else f"{value:+.2e}"


def verdict(dataset: str, task: str, pairs: list[PairResult], means: dict[str, float], alpha: float = 0.05) -> str:
    """One paragraph: the best variant, its lead over each other one with interval and adjusted
    p, and where no difference is detectable."""
    metric, direction = TASKS[task]
    column, higher = EXAMPLE_SCORE[task]
    if not pairs or not means:
        return f"{dataset}: no per-example predictions to compare."
    best = (max if direction == "max" else min)(means, key=means.get)
    units = {"correct": "points of accuracy", "recall_accuracy": "points of recall accuracy"}.get(
        column, f"{metric}, how much lower")
    clear, unclear = [], []
    for pair in pairs:
        if best not in (pair.a, pair.b):
            continue
        # The lead is positive when the best is better: more correct, or less error.
        sign = (1 if pair.a == best else -1) * (1 if higher else -1)
        other = pair.b if pair.a == best else pair.a
        difference, low, high = sign * pair.difference, *sorted((sign * pair.low, sign * pair.high))
        scale = 100 if column in ("correct", "recall_accuracy") else 1
        text = (f"{difference * scale:+.1f} [{low * scale:+.1f}, {high * scale:+.1f}]" if scale == 100
                else f"{difference:.2e} [{low:.2e}, {high:.2e}]")
        (clear if pair.p_holm < alpha else unclear).append(f"{other} {text}, p = {pair.p_holm:.2g}")
    what = "higher per-example score" if higher else "lower per-example error"
    parts = [f"**{dataset}**: {best} is best ({what}, pooled over seeds)."]
    if clear:
        parts.append(f"Its lead is detectable over {'; '.join(clear)} (Holm-adjusted).")
    if unclear:
        parts.append(f"Against {'; '.join(unclear)} no difference is detectable at {alpha}.")
    parts.append(f"Leads in {units}, with 95% paired-bootstrap intervals over test examples (not adjusted).")
    return " ".join(parts)
