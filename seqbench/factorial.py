"""A factorial reading of a lead: where a data set's variants hold a complete 2 x 2 of direction
(one way / both ways) x pooling (last state / attention), how much of the both-ways-with-attention
variant's lead over the one-way last-state one comes from reading both ways, how much from
attention pooling, and how the two interact.

The design is found from the records' configs, never from names: four configurations that agree
in every key of the computation config (cell, sizes, layers, dropout, optimizer, data, budget...)
apart from ``model.bidirectional`` and the pooling (``model.pooling`` last or attention, with its
``model.attention`` kind and ``model.attention_dim``), and the model's name, which only labels.
Each attention kind that completes a 2 x 2 gets its own reading (sharing the last-state cells).
Every cell needs at least ``MIN_SEEDS`` finished seeds with a numeric test metric.

Statistics: one score per training run (its test metric; the log of it for a positive error, as
the rest of the report). statsmodels OLS of ``score ~ C(direction, Sum) * C(pooling, Sum)``, a
two-way model with sum (effect) coding, so the main effects are averaged over the other factor;
the effects are contrasts of its cell means (``t_test``: estimate, 95% interval, p on the
residual degrees of freedom, seeds' spread pooled over the four cells):

- direction: mean of the two both-ways cells minus mean of the two one-way cells;
- pooling: mean of the two attention cells minus mean of the two last-state cells;
- interaction: (attention - last within both ways) - (attention - last within one way);
- simple effects: each factor within each level of the other; and the lead itself.

Direction + pooling equals the lead exactly (both-attention minus one-last), whatever the
interaction: each main effect is the average of that factor's two simple effects. Beside each
OLS interval, a Welch-style one (each cell its own spread, Satterthwaite's degrees of freedom;
scipy's t) is in the CSV, and the text says where the two disagree about zero. Nothing is
adjusted for multiplicity: each interval is a plain 95% one.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .config import computation_config
from .tasks import PERCENT_METRICS, POSITIVE_METRICS, TaskKind

MIN_SEEDS = 2
FACTOR_KEYS = ("model.bidirectional", "model.pooling", "model.attention", "model.attention_dim")
NAMING_KEYS = ("model.name",)     # labels a variant; computes nothing
CELLS = ((False, False), (False, True), (True, False), (True, True))   # (both ways, attention)

# Contrast weights on the cell means, in CELLS' order: one-last, one-attention, both-last, both-attention.
EFFECTS = (
    ("direction", "reading both ways (main effect: both − one way, averaged over pooling)", (-.5, -.5, .5, .5)),
    ("pooling", "attention pooling (main effect: attention − last state, averaged over direction)", (-.5, .5, -.5, .5)),
    ("interaction", "interaction: (attention − last) both ways minus (attention − last) one way", (1, -1, -1, 1)),
    ("attention within one way", "attention − last state, one way", (-1, 1, 0, 0)),
    ("attention within both ways", "attention − last state, both ways", (0, 0, -1, 1)),
    ("direction within last state", "both − one way, last state", (-1, 0, 1, 0)),
    ("direction within attention", "both − one way, attention pooling", (0, -1, 0, 1)),
    ("lead", "both ways + attention − one way + last state (the headline)", (-1, 0, 0, 1)),
)


@dataclass
class Cell:
    bidirectional: bool
    attention: bool
    variant: str                 # the label the report's tables use
    config_hash: str
    scores: dict                 # seed -> test metric (metric units)
    params: float
    also: list[str] = field(default_factory=list)   # other variants configured the same (not used)

    @property
    def where(self) -> str:
        return f"{'both ways' if self.bidirectional else 'one way'}, {'attention' if self.attention else 'last state'}"


@dataclass
class Effect:
    name: str
    words: str
    estimate: float              # on the test's scale: a fraction of accuracy, or a log ratio
    low: float
    high: float
    p: float
    df: float
    welch_low: float = math.nan
    welch_high: float = math.nan
    welch_p: float = math.nan
    welch_df: float = math.nan


@dataclass
class Factorial:
    task: TaskKind
    scale: str                   # "log" or "raw"
    attention: str               # the attention kind (with its attention_dim where set)
    cells: dict                  # (both ways, attention) -> Cell
    effects: dict                # name -> Effect
    residual_df: float
    notes: list[str] = field(default_factory=list)
    test_set: str = ""

    def value(self, cell: Cell) -> np.ndarray:
        values = np.array(list(cell.scores.values()), dtype=float)
        return np.log(values) if self.scale == "log" else values


def _flat(config: dict) -> dict:
    from .results import _flat as flatten
    return flatten(computation_config(config or {}))


def cell_of(config: dict) -> tuple[str, bool, bool, str] | None:
    """(everything else, both ways, attention, attention kind) of a run's config, or None where it
    is no cell of a direction x pooling design (no such keys, or pooling other than last/attention)."""
    flat = _flat(config)
    if "model.pooling" not in flat or "model.bidirectional" not in flat:
        return None
    pooling = flat.get("model.pooling")
    if pooling == "last":
        attention, kind = False, ""
    elif pooling == "attention" and flat.get("model.attention"):
        attention = True
        dim = flat.get("model.attention_dim")
        kind = str(flat["model.attention"]) + (f" (attention_dim {dim})" if dim is not None else "")
    else:
        return None
    rest = {k: v for k, v in flat.items() if k not in FACTOR_KEYS and k not in NAMING_KEYS}
    return json.dumps(rest, sort_keys=True, default=str), bool(flat.get("model.bidirectional")), attention, kind


def find_designs(records: list[dict], scores: dict[str, dict], labels) -> list[dict]:
    """Complete 2 x 2 designs among one test set's runs: a list of {attention kind: ..., cells:
    {(both ways, attention): [config hashes, most usable seeds first]}}. ``scores``: label ->
    {seed: value} (the seed-level test's own rule for what counts)."""
    by_hash = {}
    for r in records:
        by_hash.setdefault(r.get("config_hash"), r)
    groups: dict[str, dict] = {}
    for config_hash, record in by_hash.items():
        found = cell_of(record.get("config") or {})
        if found is None:
            continue
        rest, both, attention, kind = found
        seeds = len(scores.get(labels.get(config_hash, record.get("model")), {}))
        if seeds < MIN_SEEDS:
            continue
        groups.setdefault(rest, {}).setdefault((both, attention, kind), []).append((seeds, config_hash))
    designs = []
    for rest in sorted(groups):
        cells = groups[rest]
        last = {both: sorted(cells.get((both, False, ""), []), key=lambda x: (-x[0], str(labels.get(x[1]))))
                for both in (False, True)}
        if not (last[False] and last[True]):
            continue
        for kind in sorted({k for (_, a, k) in cells if a}):
            attention = {both: sorted(cells.get((both, True, kind), []), key=lambda x: (-x[0], str(labels.get(x[1]))))
                         for both in (False, True)}
            if attention[False] and attention[True]:
                designs.append({"attention": kind, "cells": {
                    (False, False): [h for _, h in last[False]], (True, False): [h for _, h in last[True]],
                    (False, True): [h for _, h in attention[False]], (True, True): [h for _, h in attention[True]]}})
    return designs


def analyse(cells: dict, task: TaskKind, attention: str = "") -> Factorial:
    """The two-way OLS (sum coding) on the seeds' scores of the four cells, its contrasts and the
    Welch-style intervals beside them."""
    import statsmodels.formula.api as smf
    values = [x for cell in cells.values() for x in cell.scores.values()]
    positive = task.metric in POSITIVE_METRICS and all(x > 0 for x in values)
    result = Factorial(task, "log" if positive else "raw", attention, cells, {}, math.nan)
    rows = [{"score": v, "direction": "both" if both else "one", "pooling": "attention" if att else "last",
             "cell": k} for k, (both, att) in enumerate(CELLS) for v in result.value(cells[(both, att)])]
    frame = pd.DataFrame(rows)
    fit = smf.ols("score ~ C(direction, Sum) * C(pooling, Sum)", frame).fit()
    result.residual_df = float(fit.df_resid)
    exog = np.asarray(fit.model.exog)
    design = np.stack([exog[frame.index[frame["cell"] == k][0]] for k in range(4)])   # one row per cell
    means = np.array([result.value(cells[c]).mean() for c in CELLS])
    variances = np.array([result.value(cells[c]).var(ddof=1) for c in CELLS])
    counts = np.array([len(cells[c].scores) for c in CELLS])
    for name, words, weights in EFFECTS:
        weights = np.asarray(weights, dtype=float)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            test = fit.t_test(weights @ design)
            low, high = np.asarray(test.conf_int(alpha=0.05)).ravel()
            p = float(np.asarray(test.pvalue).ravel()[0])
        estimate = float(weights @ means)   # equals the OLS contrast: the model is saturated
        effect = Effect(name, words, estimate, float(low), float(high), p, float(fit.df_resid))
        # Welch-style: each cell its own spread, Satterthwaite's degrees of freedom.
        parts = weights ** 2 * variances / counts
        variance = parts.sum()
        if variance > 0:
            df = variance ** 2 / (parts[parts > 0] ** 2 / (counts[parts > 0] - 1)).sum()
            half = stats.t.ppf(0.975, df) * math.sqrt(variance)
            effect.welch_low, effect.welch_high, effect.welch_df = estimate - half, estimate + half, float(df)
            effect.welch_p = float(2 * stats.t.sf(abs(estimate) / math.sqrt(variance), df))
        if not (math.isfinite(effect.low) and math.isfinite(effect.high)):   # no spread in any cell
            effect.low, effect.high, effect.p = -math.inf, math.inf, math.nan
        result.effects[name] = effect
    return result


def factorials(records: list[dict], labels, task: TaskKind, scores: dict[str, dict], test_set: str = "") -> list[Factorial]:
    """Every complete direction x pooling 2 x 2 among one test set's runs, analysed."""
    out = []
    by_hash = {}
    for r in records:
        by_hash.setdefault(r.get("config_hash"), r)
    for design in find_designs(records, scores, labels):
        cells = {}
        for key, hashes in design["cells"].items():
            chosen = hashes[0]
            label = labels.get(chosen, by_hash[chosen].get("model"))
            params = [r.get("params") for r in records if r.get("config_hash") == chosen
                      and r.get("status") == "done" and isinstance(r.get("params"), (int, float))]
            cells[key] = Cell(key[0], key[1], label, chosen, dict(scores[label]),
                              float(np.mean(params)) if params else math.nan,
                              [labels.get(h, by_hash[h].get("model")) for h in hashes[1:]])
        result = analyse(cells, task, design["attention"])
        result.test_set = test_set
        seeds = {frozenset(c.scores) for c in cells.values()}
        if len(seeds) > 1:
            result.notes.append("the four cells do not hold the same seeds (" + "; ".join(
                f"{c.variant}: {', '.join(map(str, sorted(c.scores, key=str)))}" for c in cells.values()) + ")")
        for c in cells.values():
            if c.also:
                result.notes.append(f"{', '.join(c.also)} {'is' if len(c.also) == 1 else 'are'} configured as "
                                    f"{c.variant} ({c.where}) too; {c.variant} (most seeds) is the cell used")
        out.append(result)
    return out


# ------------------------------------------------------------------------------- in words
def amount(result: Factorial, value: float, signed: bool = True) -> str:
    """An effect in the metric's words: points of accuracy, or a ratio of geometric means."""
    if not math.isfinite(value):
        return "–∞" if value < 0 else "+∞"
    if result.scale == "log":
        return f"×{math.exp(value):.3g}"
    if result.task.metric in PERCENT_METRICS:
        return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"
    return f"{value:+.3g}" if signed else f"{value:.3g}"


def interval_words(result: Factorial, effect: Effect) -> str:
    return f"[{amount(result, effect.low)}, {amount(result, effect.high)}]"


def sentence(result: Factorial) -> str:
    """The plain sentence: how much of the lead comes from each factor, computed."""
    from .stats import p_words
    e = result.effects
    best, base = result.cells[(True, True)].variant, result.cells[(False, False)].variant
    if result.scale == "log":
        head = f"{best}'s {result.task.metric} is {amount(result, e['lead'].estimate)} {base}'s"
        joined = "the two multiply to it"
    else:
        unit = " points" if result.task.metric in PERCENT_METRICS else ""
        head = f"Of {best}'s {amount(result, e['lead'].estimate)}{unit} over {base}"
        joined = "the two sum to it"
    return (f"{head}: reading both ways accounts for {amount(result, e['direction'].estimate)} "
            f"{interval_words(result, e['direction'])} (last state: {amount(result, e['direction within last state'].estimate)}"
            f", with attention: {amount(result, e['direction within attention'].estimate)}), attention pooling for "
            f"{amount(result, e['pooling'].estimate)} {interval_words(result, e['pooling'])} (one way: "
            f"{amount(result, e['attention within one way'].estimate)}, both ways: "
            f"{amount(result, e['attention within both ways'].estimate)}); {joined}. Interaction "
            f"{amount(result, e['interaction'].estimate)} {interval_words(result, e['interaction'])} "
            f"({p_words(e['interaction'].p, 0)}).")


def cell_rows(result: Factorial) -> tuple[list[str], list[list[str]]]:
    from .tasks import format_metric
    metric = result.task.metric
    unit = " (%)" if metric in PERCENT_METRICS else ""
    rows = []
    for key in CELLS:
        cell = result.cells[key]
        values = np.array(list(cell.scores.values()), dtype=float)
        spread = (f"{format_metric(values.mean(), metric)} ± {format_metric(values.std(ddof=1), metric)}"
                  if len(values) > 1 else format_metric(values.mean(), metric))
        geometric = (f" (geometric {format_metric(float(np.exp(np.log(values).mean())), metric)})"
                     if result.scale == "log" else "")
        rows.append([cell.variant, "both ways" if cell.bidirectional else "one way",
                     f"attention ({result.attention})" if cell.attention else "last state", str(len(values)),
                     spread + geometric, f"{cell.params:,.0f}" if math.isfinite(cell.params) else "–"])
    return ["variant", "direction", "pooling", "n", f"test {metric}{unit} mean ± sd (seeds)", "params"], rows


def effect_rows(result: Factorial) -> tuple[list[str], list[list[str]]]:
    from .stats import format_p
    unit = ("ratio of geometric means" if result.scale == "log" else
            "points" if result.task.metric in PERCENT_METRICS else result.task.metric)
    rows = [[e.words, amount(result, e.estimate), interval_words(result, e), format_p(e.p, 0),
             f"[{amount(result, e.welch_low)}, {amount(result, e.welch_high)}]" if math.isfinite(e.welch_low) else "–"]
            for e in result.effects.values()]
    return ["effect", unit, "95% interval (OLS)", "p (OLS)", "95% interval (Welch-style)"], rows


def method_words(result: Factorial) -> str:
    scale = ("on the log scale (an error spreads in proportion to its size; an effect is a ratio of geometric "
             "means, and effects multiply)" if result.scale == "log" else "on the metric's own scale (points)")
    last, attention = result.cells[(False, False)], result.cells[(False, True)]
    both_last, both_attention = result.cells[(True, False)], result.cells[(True, True)]
    params = (f" Parameters: {last.params:,.0f} one way against {both_last.params:,.0f} both ways at the last state, "
              f"{attention.params:,.0f} against {both_attention.params:,.0f} with attention: the direction effect is "
              f"that of the model as configured, its extra parameters included, not of reading both ways at equal "
              f"size." if all(math.isfinite(c.params) for c in result.cells.values()) else "")
    disagree = [e.name for e in result.effects.values()
                if math.isfinite(e.welch_low) and math.isfinite(e.low)
                and ((e.low > 0 or e.high < 0) != (e.welch_low > 0 or e.welch_high < 0))]
    return (f"The four variants that differ only in direction and pooling (found from their configs: same cell, "
            f"sizes, layers and training; attention: {result.attention}). One score per training run, its test "
            f"{result.task.metric_words()}, {scale}. statsmodels OLS of score ~ C(direction, Sum) * C(pooling, Sum) "
            f"(two-way, sum coding: each main effect is averaged over the other factor); each effect is a contrast "
            f"of its cell means with a 95% interval and p on {result.residual_df:.0f} residual degrees of freedom "
            f"(the seeds' spread pooled over the four cells); unadjusted. The interaction is the difference of the two "
            f"simple effects of attention. The two main effects add up to the headline lead exactly; the simple "
            f"effects say how each depends on the other factor. Welch-style intervals (each cell its own spread) "
            f"beside them"
            + (f"; they disagree with OLS about zero for: {', '.join(disagree)}." if disagree else
               ", agreeing with OLS about zero for every effect.") + params)


def factorial_frame(results: list[Factorial]) -> pd.DataFrame:
    """factorial_<data>.csv: the cells, then the effects, per design; percent metrics in points."""
    rows = []
    for result in results:
        factor = 100.0 if result.scale == "raw" and result.task.metric in PERCENT_METRICS else 1.0
        unit = ("log ratio of geometric means" if result.scale == "log" else
                "percentage points" if factor == 100 else result.task.metric)
        base = {"test_set": result.test_set, "attention": result.attention, "metric": result.task.metric,
                "scale": result.scale, "unit": unit}
        for key in CELLS:
            cell = result.cells[key]
            values = result.value(cell)
            raw = np.array(list(cell.scores.values()), dtype=float)
            rows.append({**base, "row": "cell", "name": cell.where, "variant": cell.variant,
                         "bidirectional": cell.bidirectional, "pooling": "attention" if cell.attention else "last",
                         "n": len(raw), "mean": factor * raw.mean(), "sd": factor * raw.std(ddof=1),
                         "geometric_mean": float(np.exp(values.mean())) if result.scale == "log" else math.nan,
                         "params": cell.params, "seeds": " ".join(map(str, sorted(cell.scores, key=str)))})
        for effect in result.effects.values():
            rows.append({**base, "row": "effect", "name": effect.name, "words": effect.words,
                         "estimate": factor * effect.estimate, "low": factor * effect.low, "high": factor * effect.high,
                         "p": effect.p, "df": effect.df, "welch_low": factor * effect.welch_low,
                         "welch_high": factor * effect.welch_high, "welch_p": effect.welch_p,
                         "welch_df": effect.welch_df})
    return pd.DataFrame(rows)
