"""The statistics in words: p-values as printed, differences in the metric's units, the groups, and
the one-line verdict per data set."""
from __future__ import annotations

import math

import numpy as np

from ..tasks import PERCENT_METRICS, TaskKind
from .seed_level import SeedLevel, SeedPair, rope_words


def format_p(p: float, floor: float) -> str:
    """A p-value as printed: "≤ floor" where resampling cannot resolve a smaller one."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    if floor and p <= floor:
        return f"≤ {floor:.2g}"
    if p < 1e-16:  # beyond double precision's resolution near 1: the digits would mean nothing
        return "< 1e-16"
    return f"{p:.2g}"


def p_words(p: float, floor: float) -> str:
    """``p = 0.03`` or ``p ≤ 0.002``, for sentences."""
    text = format_p(p, floor)
    return f"p {text}" if text[0] in "≤<" else f"p = {text}"


def resolution(task: TaskKind, examples: int) -> str:
    """What one test example is worth in the metric, the finest difference the test set resolves."""
    if task.metric == "acc" and examples:
        return f"one test example is {100 / examples:.2g} points of accuracy ({examples} examples)"
    return f"{examples} test examples"


def difference_words(level: SeedLevel, value: float) -> str:
    """A difference on the test's scale in the metric's words: points, a ratio, or the metric."""
    if not math.isfinite(value):   # the unbounded interval of a pair with no spread
        return "–∞" if value < 0 else "+∞"
    if level.scale == "log":
        return f"×{math.exp(value):.3g}"
    if level.task.metric in PERCENT_METRICS:
        return f"{100 * value:+.1f}"
    return f"{value:+.2e}"


VERDICT_LIMIT = 600


def group_words(level: SeedLevel) -> str:
    """``x a, y a > z b``: tested variants best first with their letters (the all-pairs view of the
    details); ">" only where no letter crosses."""
    parts = []
    for k, v in enumerate(level.order):
        if k:
            before = set("".join(level.letters[u] for u in level.order[:k]))
            after = set("".join(level.letters[u] for u in level.order[k:]))
            parts.append(" > " if not before & after else ", ")
        parts.append(f"{v} {level.letters[v]}")
    return "".join(parts)


def gap_words(level: SeedLevel, pair: SeedPair, interval: bool = True) -> str:
    """B's gap to A with its interval, in the metric's words: ``lstm −3.3 [−4.5, −2.1]``."""
    gap = f"{pair.b} {difference_words(level, -pair.difference)}"
    if not interval:
        return gap
    return f"{gap} [{difference_words(level, -pair.high)}, {difference_words(level, -pair.low)}]"


def answer_words(level: SeedLevel, detail: int = 2) -> str:
    """The answer first: the best group (the top by mean and every variant not separated from it,
    down to the last), then each other variant's gap to the top with its interval; for the user's
    pairs, each pair's call. ``detail`` 2: gaps and intervals, 1: gaps, 0: names only."""
    if level.family is not None:
        return "; ".join(f"{p.a} vs {p.b} {difference_words(level, p.difference)}"
                         + (f" [{difference_words(level, p.low)}, {difference_words(level, p.high)}]" if detail > 1
                            else "") + (" separated" if p.separated else " not separated") for p in level.pairs)
    best = level.best_group
    top = level.order[0]
    behind = [level.pair(top, v) for v in level.order if v not in best]
    # a member below a separated variant is in the group only through its own wide spread: say so
    first_out = min((level.order.index(p.b) for p in behind), default=len(level.order))
    percent = level.task.metric in PERCENT_METRICS and level.scale == "raw"
    members = [f"{v} (wide: sd {100 * float(np.std(level.transformed(v), ddof=1)):.2g}{' points' if percent else ''})"
               if level.order.index(v) > first_out and percent else v for v in best]
    words = ("best: " + members[0] if len(best) == 1 else
             f"best group ({len(best)}, not separated from {top}): " + ", ".join(members))
    if behind:
        words += "; behind: " + (", ".join(gap_words(level, p, detail > 1) for p in behind) if detail else
                                 ", ".join(p.b for p in behind))
    return words


def verdict_line(name: str, level: SeedLevel, saturated: str | None = None, left_out: int = 0,
                 solved: dict[str, tuple[int, int]] | None = None, limit: int = VERDICT_LIMIT) -> str:
    """One line per data set, every variant named, at most ``limit`` characters: the best group
    and each other variant's gap to the top (with intervals as room allows), then practical
    equivalence and what was left out."""
    head = f"**{name}** ({level.seeds_words})"
    untested = [f"{v} not tested ({n} seed{'s' if n != 1 else ''})" for v, n in sorted(level.untested.items())]
    extras = []
    equivalent = [p for p in level.pairs if p.equivalent]
    if equivalent:
        words = rope_words(level.task.metric, level.rope, level.scale)
        extras.append(f"practically equivalent (within {words}): " + ", ".join(f"{p.a} ≈ {p.b}" for p in equivalent))
        extras.append(f"{len(equivalent)} pair{'s' if len(equivalent) != 1 else ''} practically equivalent "
                      f"(within {words})")
    if left_out:
        extras.append(f"{left_out} run{'s' if left_out != 1 else ''} left out (named below)")
    for detail in (2, 1, 0):
        if solved is not None and not any(k for k, _ in solved.values()):
            core = (f"{head}: no variant solved the task in any seed; not ranked: "
                    f"{', '.join(sorted(level.scores))}")
        elif not level.order:
            core = f"{head}: nothing to test: " + "; ".join(untested)
        else:
            core = f"{head}: " + (f"{saturated}; " if saturated else "") + answer_words(level, detail)
            if untested:
                core += "; " + "; ".join(untested)
        if len(core) + 1 <= limit:
            break
    line = core
    for extra in extras:
        if extra.endswith(")") and "≈" not in extra and any("≈" in e for e in line.split("; ")):
            continue   # the count only where the list did not fit
        if len(line) + len(extra) + 3 <= limit:
            line += "; " + extra
    return line + "."
