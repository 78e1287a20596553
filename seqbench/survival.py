"""Updates to solve, with the unsolved runs counted as censored at the cap they reached: the
Kaplan-Meier estimate of the median (statsmodels' ``SurvfuncRight``). A run that never solved
says "not by update N", not "never"; dropping such runs, or counting them as solved at the cap,
would bias the median down.

Cheap to import: statsmodels only when called.
"""
from __future__ import annotations

import math


def median_updates_to_solve(runs: list[tuple[int, bool]]) -> tuple[float | None, int]:
    """``(median, cap)`` from ``[(updates, solved)]``: the Kaplan-Meier median of the updates a run
    needs to solve, where an unsolved run's updates are censored; None where fewer than half the
    runs solved by the largest number of updates seen (the median is then above ``cap``)."""
    if not runs:
        return None, 0
    from statsmodels.duration.survfunc import SurvfuncRight
    times = [float(updates) for updates, _ in runs]
    cap = int(max(times))
    if not any(solved for _, solved in runs):
        return None, cap
    median = SurvfuncRight(times, [int(bool(solved)) for _, solved in runs]).quantile(0.5)
    return (None if median is None or math.isnan(median) else float(median)), cap


def updates_to_solve_words(runs: list[tuple[int, bool]]) -> str:
    """``4,800 (3 of 3 solved)`` or ``> 20,000 (1 of 3 solved)``: the table cell."""
    if not runs:
        return "–"
    median, cap = median_updates_to_solve(runs)
    solved = sum(bool(s) for _, s in runs)
    return f"{f'{median:,.0f}' if median is not None else f'> {cap:,}'} ({solved} of {len(runs)} solved)"
