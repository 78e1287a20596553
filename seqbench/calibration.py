"""``seqbench calibrate`` (or ``python -m seqbench.calibration``): the verdict's error rates,
measured. Families of 10 simulated variants are put through the seed-level decision rule the
report uses (``stats.welch_holm`` on the test's scale): with identical variants the share of
families in which any pair is separated is the family-wise error rate (FWER, meant to be at most
5%); with one variant better by about three seed sds, the share of its 9 true differences
separated is the power.

Two generators, like the runs the report sees:
- accuracy-like: 300 test examples of fixed difficulty shared by every run; a run gets an example
  right when its skill (0.85 + a seed effect, sd 1 point) exceeds the difficulty (as
  ``tests/test_stats.py`` simulates seeds); the better variant is 3 points more skilled.
- MSE-like: a run's error level is log-normal between seeds (sd 0.3 on the log scale, about 30%),
  and its MSE the mean of 300 squared errors around that level; the better variant's level is
  exp(-0.9) = 0.41 times the others'.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from .stats import ALPHA, test_scale, welch_holm, wilson
from .tasks import TASKS

VARIANTS = 10
EXAMPLES = 300
SEED_COUNTS = (3, 5, 8)
KINDS = {"accuracy": "classification", "mse": "per_step_regression"}
ACCURACY, ACCURACY_SEED_SD, ACCURACY_GAIN = 0.85, 0.01, 0.03
MSE_LEVEL, MSE_LOG_SD, MSE_LOG_GAIN = 1e-3, 0.3, 0.9


def simulate(rng: np.random.Generator, kind: str, seeds: int, variants: int = VARIANTS,
             better: bool = False) -> list[np.ndarray]:
    """One family: each variant's seed scores (test accuracy or test MSE); with ``better`` the
    first variant is better by the known difference."""
    gain = np.zeros(variants)
    if kind == "accuracy":
        difficulty = np.sort(rng.random(EXAMPLES))   # the test set, shared by every run
        if better:
            gain[0] = ACCURACY_GAIN
        skill = ACCURACY + gain[:, None] + ACCURACY_SEED_SD * rng.standard_normal((variants, seeds))
        return list(np.searchsorted(difficulty, skill) / EXAMPLES)   # share of examples below the skill
    if kind == "mse":
        if better:
            gain[0] = MSE_LOG_GAIN
        level = MSE_LEVEL * np.exp(-gain[:, None] + MSE_LOG_SD * rng.standard_normal((variants, seeds)))
        return list(level * rng.chisquare(1, (variants, seeds, EXAMPLES)).mean(axis=2))
    raise ValueError(f"unknown generator {kind!r}; valid: {', '.join(KINDS)}")


def calibrate(kind: str, seeds: int, families: int = 2000, seed: int = 0, alpha: float = ALPHA) -> dict:
    """FWER over ``families`` families of identical variants, and power over as many with one
    better variant, under the report's own rule (its scale choice, Welch, Holm)."""
    task = TASKS[KINDS[kind]]
    rng = np.random.default_rng([seed, seeds, list(KINDS).index(kind)])
    false_families = found = real = 0
    for better in (False, True):
        for _ in range(families):
            samples = simulate(rng, kind, seeds, better=better)
            if test_scale(task, np.concatenate(samples)) == "log":
                samples = [np.log(s) for s in samples]
            result = welch_holm(samples, alpha, intervals=False)
            if not better:
                false_families += bool(result["separated"].any())
                continue
            true = [k for k, (i, _) in enumerate(result["pairs"]) if i == 0]   # the 9 real differences
            found += int(result["separated"][true].sum())
            real += len(true)
    low, high = wilson(false_families, families)
    return {"kind": kind, "seeds": seeds, "families": families, "false_families": false_families,
            "fwer": false_families / families, "fwer_low": low, "fwer_high": high, "power": found / real}


def table(results: list[dict]) -> str:
    """The README's table."""
    lines = ["| scores | seeds per variant | family-wise error (95% CI) | power on the known difference |",
             "| --- | --- | --- | --- |"]
    names = {"accuracy": "accuracy-like (+3 points)", "mse": "MSE-like (×0.41)"}
    for r in results:
        lines.append(f"| {names[r['kind']]} | {r['seeds']} | {100 * r['fwer']:.1f}% "
                     f"[{100 * r['fwer_low']:.1f}, {100 * r['fwer_high']:.1f}] | {100 * r['power']:.0f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from .runtime import entry_point

    @entry_point
    def run(argv: list[str]) -> None:
        parser = argparse.ArgumentParser(prog="seqbench calibrate", description=__doc__,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--families", type=int, default=4000, help="simulated families per cell (default 4000)")
        parser.add_argument("--seeds", type=int, nargs="+", default=list(SEED_COUNTS), help="seeds per variant")
        parser.add_argument("--seed", type=int, default=0, help="the simulation's random seed")
        args = parser.parse_args(argv)
        if args.families < 1 or min(args.seeds) < 2:
            from . import SeqbenchError
            raise SeqbenchError("--families must be at least 1 and --seeds at least 2 (Welch needs a spread)")
        start = time.perf_counter()
        results = [calibrate(kind, n, args.families, args.seed) for kind in KINDS for n in args.seeds]
        print(table(results))
        print(f"\n{VARIANTS} variants ({math.comb(VARIANTS, 2)} pairs), {args.families} families per cell and "
              f"setting, seed {args.seed}; {time.perf_counter() - start:.0f} s")
    run(argv)


if __name__ == "__main__":
    main()
