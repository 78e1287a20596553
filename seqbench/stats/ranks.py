"""Across data sets: average ranks of each variant's mean (1 = best whatever the metric's direction)
with a bootstrap over seeds, Friedman's test and the Nemenyi critical difference diagram (only with
at least five data sets)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


MIN_DATASETS_FOR_FRIEDMAN = 5


def rank_bootstrap(per_seed: dict[str, dict[str, np.ndarray]], higher_is_better: dict[str, bool],
                   resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """per_seed: data set -> variant -> seed scores on the test's scale (the variants every data
    set has). Average rank (1 = best) of the means, and its 95% percentile interval from
    resampling each variant's seeds with replacement on every data set."""
    rng = np.random.default_rng(seed)
    variants = sorted(set.intersection(*(set(v) for v in per_seed.values())))
    observed = np.zeros(len(variants))
    draws = np.zeros((resamples, len(variants)))
    for data, by_variant in per_seed.items():
        sign = 1.0 if higher_is_better.get(data, True) else -1.0
        observed += stats.rankdata([-sign * np.mean(by_variant[v]) for v in variants])
        means = np.column_stack([rng.choice(np.asarray(by_variant[v], dtype=float),
                                            size=(resamples, len(by_variant[v]))).mean(axis=1) for v in variants])
        draws += stats.rankdata(-sign * means, axis=1)
    n = len(per_seed)
    low, high = np.quantile(draws / n, [0.025, 0.975], axis=0)
    frame = pd.DataFrame({"variant": variants, "average_rank": observed / n, "low": low, "high": high})
    return frame.sort_values(["average_rank", "variant"]).reset_index(drop=True)


def friedman(means: pd.DataFrame, higher_is_better: dict[str, bool] | None = None) -> dict:
    """means: data sets x variants (mean test metric). Ranks per data set (1 = best), and with at
    least ``MIN_DATASETS_FOR_FRIEDMAN`` data sets Friedman's chi-square and p (scipy) on the
    *oriented* scores (an error measure counts lower as better) and the Nemenyi critical difference
    at 0.05. With fewer data sets, ranks alone (description, not a test)."""
    means = means.dropna(axis=1, how="any")
    higher_is_better = higher_is_better or {}
    oriented = means.apply(lambda row: row if higher_is_better.get(row.name, True) else -row, axis=1)
    ranks = oriented.rank(axis=1, ascending=False)
    k, n = means.shape[1], means.shape[0]
    out = {"variants": list(means.columns), "datasets": list(means.index), "ranks": ranks, "oriented": oriented,
           "average_ranks": ranks.mean().sort_values(), "k": k, "n": n}
    if k >= 3 and n >= MIN_DATASETS_FOR_FRIEDMAN:
        statistic, p = stats.friedmanchisquare(*[oriented[c].to_numpy() for c in oriented.columns])
        q = stats.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2)
        out.update(statistic=float(statistic), p=float(p), critical_difference=q * math.sqrt(k * (k + 1) / (6 * n)))
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
    subtitle = f"Friedman p = {p:.3g} over {result['n']} data sets" if p is not None and not math.isnan(p) else ""
    ax.set_title(f"{title}\naverage rank (1 = best); {subtitle}; bars: no difference beyond the CD", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
