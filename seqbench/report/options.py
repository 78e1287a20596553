"""The report's options checked, each bad value one line naming the flag: resamples, regions of
practical equivalence (``--rope``), the pairs to compare (``--compare``)."""
from __future__ import annotations

import math

from .. import SeqbenchError
from ..tasks import PERCENT_METRICS, POSITIVE_METRICS, TASKS


MIN_RESAMPLES = 99
LEAD_TITLE = "tuned against tuned"   # --lead's headline unless --lead-title says another


def check_resamples(value) -> int:
    """--resamples: a whole number of at least ``MIN_RESAMPLES`` (a resampled p needs that many
    draws to get below 0.02), else one line naming the flag."""
    try:
        number = int(str(value))
    except ValueError:
        number = None
    if number is None or number < MIN_RESAMPLES:
        raise SeqbenchError(f"--resamples {value}: give a whole number of at least {MIN_RESAMPLES} (the bootstrap "
                            f"and permutation tests draw that many resamples; the default is 9999)")
    return number


def parse_ropes(items: list[str] | None) -> dict[str, float]:
    """``--rope acc=1 --rope mse=5``: the region of practical equivalence per metric, in points for
    a percent metric and in percent of the error for an error measure; as half-widths on the
    test's scale (fractions, logs of ratios)."""
    metrics = sorted({task.metric for task in TASKS.values()})
    out = {}
    for item in items or []:
        metric, _, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if metric not in metrics or not (math.isfinite(value) and value > 0):
            raise SeqbenchError(f"--rope {item}: give METRIC=VALUE with METRIC one of {', '.join(metrics)} and VALUE "
                                f"above 0 (points for accuracy: acc=0.5; percent of the error for errors: mse=10)")
        out[metric] = (value / 100 if metric in PERCENT_METRICS else
                       math.log1p(value / 100) if metric in POSITIVE_METRICS else value)
    return out


def parse_compare(text: str | None, variants: list[str]) -> list[tuple[str, str]] | None:
    """``--compare gru:lstm,rnn:lstm`` -> [("gru", "lstm"), ("rnn", "lstm")]; a malformed pair or a
    variant the folders do not hold is one line naming the valid variants."""
    if text is None:
        return None
    pairs = []
    for item in str(text).split(","):
        a, colon, b = (part.strip() for part in item.partition(":"))
        problem = ("is not A:B" if not colon or not a or not b or ":" in b else
                   "compares a variant with itself" if a == b else
                   f"names {a if a not in variants else b}, which these folders do not hold"
                   if a not in variants or b not in variants else None)
        if problem:
            raise SeqbenchError(f"--compare {item.strip() or text!r} {problem}; give A:B[,C:D...] with variants from: "
                                f"{', '.join(variants)}")
        pairs.append((a, b))
    return list(dict.fromkeys(pairs))
