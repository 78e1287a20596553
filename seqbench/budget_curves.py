"""Budget curves (Dodge et al. 2019, "Show Your Work: Improved Reporting of Experimental
Results", EMNLP, Section 3): each variant's expected best validation score as a function of the
number of trials n, from the scores of its study's trials. A reader sees whether a ranking holds
at every budget or only at the one that was spent.

The estimator: the n trials are drawn with replacement from the N observed ones, so with the
scores sorted ascending, v_(1) <= ... <= v_(N), the best of n is v_(i) with probability
(i/N)^n - ((i-1)/N)^n, and E[best of n] = sum_i v_(i) [(i/N)^n - ((i-1)/N)^n] (for an error,
"best" is the lowest: the same with the order reversed). It never decreases in n.

Cheap to import: the standard library only (matplotlib when a figure is drawn).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path


def expected_best(values: list[float], trials: int, higher: bool = True) -> float:
    """E[best of ``trials`` draws with replacement from ``values``] (Dodge et al. 2019, eq. 1)."""
    scores = sorted(v for v in values if isinstance(v, (int, float)) and math.isfinite(v))
    if not scores:
        raise ValueError("no finite trial score to draw from")
    if trials < 1:
        raise ValueError(f"trials={trials}: must be at least 1")
    if not higher:   # the best error is the lowest: rank from the worst (highest) down
        scores = scores[::-1]
    count = len(scores)
    return sum(v * ((i / count) ** trials - ((i - 1) / count) ** trials) for i, v in enumerate(scores, start=1))


def budget_curves(studies: dict[str, dict], higher: bool = True) -> list[dict]:
    """Rows ``{variant, trials, expected_best}`` for n = 1 .. the trials each study finished, from
    a search's studies.json (``{study: summary}`` whose summaries hold ``trial_values``)."""
    rows = []
    for summary in studies.values():
        values = [v for v in summary.get("trial_values") or [] if v is not None]
        if not values:
            continue
        for n in range(1, len(values) + 1):
            rows.append({"variant": summary.get("variant") or summary.get("study"), "trials": n,
                         "expected_best": expected_best(values, n, higher)})
    return rows


def write_budget_curves(studies: dict[str, dict], out: Path, higher: bool = True, plot: bool = True,
                        metric: str = "score") -> tuple[Path, Path | None] | None:
    """``budget_curves.csv`` (columns variant, trials, expected_best) and, with ``plot``,
    ``budget_curves.png`` under ``out``; None where no study recorded its trials' scores."""
    rows = budget_curves(studies, higher)
    if not rows:
        return None
    out.mkdir(parents=True, exist_ok=True)
    table = out / "budget_curves.csv"
    with open(table, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=["variant", "trials", "expected_best"])
        writer.writeheader()
        writer.writerows({**row, "expected_best": f"{row['expected_best']:.6g}"} for row in rows)
    if not plot:
        return table, None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for variant in dict.fromkeys(row["variant"] for row in rows):
        points = [(row["trials"], row["expected_best"]) for row in rows if row["variant"] == variant]
        axis.plot(*zip(*points), marker="o", markersize=3, label=variant)
    axis.set_xlabel("trials (hyper-parameter assignments)")
    axis.set_ylabel(f"expected best validation {metric}")
    axis.set_title("Budget curves (Dodge et al. 2019): expected best of n trials")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    path = out / "budget_curves.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return table, path
