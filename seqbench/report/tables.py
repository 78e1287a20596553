"""The CSV files of a data set: summary_<data>.csv, pairs_<data>.csv, confusion matrices, accuracy
by length and the factorial readings."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..factorial import factorial_frame
from ..tasks import PERCENT_METRICS
from .section import DataSection


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
                for true, row in matrix.iterrows() for predicted, count in row.items()
                if count]  # non-zero cells only: classes x classes x seeds x variants of zeros is most of it
        pd.DataFrame(long, columns=["variant", "seed", "true", "predicted", "count"]).to_csv(
            out / f"confusion_by_seed_{section.stem}.csv", index=False)
    if section.by_length is not None and not section.by_length.empty:
        section.by_length.to_csv(out / f"by_length_{section.stem}.csv", index=False, float_format="%.4g")
    if section.factorials:
        factorial_frame(section.factorials).to_csv(out / f"factorial_{section.stem}.csv", index=False,
                                                   float_format="%.6g")
