"""``seqbench calibrate`` (or ``python -m seqbench.calibration``): the verdict's error rates,
measured. Families of 10 simulated accuracy-like variants are put through the seed-level decision
rule the report uses (``stats.separations``):

- family-wise error (FWER, meant to be at most 5%): identical variants, the share of families in
  which any pair is separated, with **equal** seed spreads (sd 1 point each) and **unequal** ones
  (each variant's sd drawn log-uniformly from 0.15 to 7 points, the committed runs' range, and in
  one variant of ten on average one seed collapsed 10-20 points below, as tuned mingru_deep's were);
- power: equal spreads (sd 1 point) and one variant 3 points better, the share of its 9 true
  differences separated;
- the adaptive-seeds procedure (``seqbench adaptive``): identical variants, 3 seeds each first,
  then only the variants not separated from the best get seeds at looks of 5, 8 and 10, each look
  at alpha / 4; its family-wise error is the share of families in which any pair is separated at
  any look, with equal and unequal spreads (``"sequential": {"fwer": ...}`` is the larger).

A run's accuracy is its share of 2,000 test examples of fixed difficulty (shared by every run)
that its skill (0.85 + the variant's gain + a seed effect) exceeds, so scores are whole examples.
With ``--json`` the last line is one JSON object: fwer (equal/unequal at 3, 5, 8 seeds), power (3,
5 seeds), sequential (the adaptive-seeds procedure's family-wise error, the larger of equal and
unequal spreads, and each).
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from . import SeqbenchError
from .adaptive import DEFAULT_CAP, DEFAULT_START, look_alpha, looks
from .runtime import entry_point
from .stats import ALPHA, separations, wilson

VARIANTS = 10
EXAMPLES = 2000
SEED_COUNTS = (3, 5, 8)
POWER_SEED_COUNTS = (3, 5)
ACCURACY, SEED_SD, GAIN = 0.85, 0.01, 0.03
UNEQUAL_SD = (0.0015, 0.07)
COLLAPSE_SHARE, COLLAPSE_DROP = 0.1, (0.10, 0.20)


def simulate(rng: np.random.Generator, families: int, seeds: int, spreads: str = "equal", better: bool = False,
             variants: int = VARIANTS) -> np.ndarray:
    """families x variants x seeds test accuracies; with ``better`` the first variant is GAIN better."""
    difficulty = np.sort(rng.random((families, EXAMPLES)), axis=1)   # each family's test set
    if spreads == "equal":
        sd = np.full((families, variants, 1), SEED_SD)
    elif spreads == "unequal":
        sd = np.exp(rng.uniform(*np.log(UNEQUAL_SD), (families, variants, 1)))
    else:
        raise ValueError(f"unknown spreads {spreads!r}; valid: equal, unequal")
    gain = np.zeros((1, variants, 1))
    gain[0, 0, 0] = GAIN if better else 0.0
    skill = ACCURACY + gain + sd * rng.standard_normal((families, variants, seeds))
    if spreads == "unequal":
        collapsed = rng.random((families, variants)) < COLLAPSE_SHARE
        skill[:, :, 0] -= np.where(collapsed, rng.uniform(*COLLAPSE_DROP, (families, variants)), 0.0)
    return np.stack([np.searchsorted(difficulty[f], skill[f]) for f in range(families)]) / EXAMPLES


def decide(scores: np.ndarray, alpha: float = ALPHA) -> dict:
    """The report's rule on every family at once."""
    return separations(scores.mean(axis=2), scores.var(axis=2, ddof=1),
                       np.full(scores.shape[:2], scores.shape[2]), alpha, intervals=False)


def fwer(spreads: str, seeds: int, families: int = 2000, seed: int = 0, alpha: float = ALPHA) -> dict:
    rng = np.random.default_rng([seed, seeds, 1 if spreads == "equal" else 2])
    result = decide(simulate(rng, families, seeds, spreads), alpha)
    false = int(result["separated"].any(axis=1).sum())
    low, high = wilson(false, families)
    return {"spreads": spreads, "seeds": seeds, "families": families, "false_families": false,
            "fwer": false / families, "fwer_low": low, "fwer_high": high,
            "moderated": float(result["moderated"].mean())}


def power(seeds: int, families: int = 2000, seed: int = 0, alpha: float = ALPHA) -> dict:
    rng = np.random.default_rng([seed, seeds, 3])
    result = decide(simulate(rng, families, seeds, "equal", better=True), alpha)
    true = [k for k, (i, _) in enumerate(result["pairs"]) if i == 0]   # the 9 real differences
    return {"seeds": seeds, "families": families, "power": float(result["separated"][:, true].mean()),
            "moderated": float(result["moderated"].mean())}


def sequential_fwer(spreads: str, families: int = 2000, seed: int = 0, alpha: float = ALPHA,
                    start: int = DEFAULT_START, cap: int = DEFAULT_CAP) -> dict:
    """The adaptive-seeds procedure on identical variants: every variant's seeds drawn to the cap
    at once, each look sees the first ``counts`` of each; a family errs when any pair is
    separated at any look it reaches. Mirrors ``adaptive.undecided``: the variants not separated
    from the top by mean (with it) go on to the next look while there are any."""
    planned = looks(start, cap)
    level = look_alpha(planned, alpha)
    rng = np.random.default_rng([seed, cap, 4 if spreads == "equal" else 5])
    scores = simulate(rng, families, cap, spreads)
    rows, variants = scores.shape[:2]
    counts = np.full((rows, variants), start)
    going = np.ones(rows, dtype=bool)
    false = np.zeros(rows, dtype=bool)
    runs = np.zeros(rows)
    for number, n in enumerate(planned):
        taken = np.arange(cap) < counts[:, :, None]
        means = (scores * taken).sum(axis=2) / counts
        variances = (((scores - means[:, :, None]) * taken) ** 2).sum(axis=2) / (counts - 1)
        result = separations(means, variances, counts, level, intervals=False)
        false |= going & result["separated"].any(axis=1)
        runs = np.where(going, counts.sum(axis=1), runs)
        separated = np.zeros((rows, variants, variants), dtype=bool)
        for k, (i, j) in enumerate(result["pairs"]):
            separated[:, i, j] = separated[:, j, i] = result["separated"][:, k]
        top = means.argmax(axis=1)
        group = ~separated[np.arange(rows), top]          # the top and every variant not separated from it
        going &= group.sum(axis=1) > 1
        if number + 1 == len(planned) or not going.any():
            break
        counts = np.where(going[:, None] & group, planned[number + 1], counts)
    low, high = wilson(int(false.sum()), rows)
    return {"spreads": spreads, "families": rows, "fwer": float(false.mean()), "fwer_low": low, "fwer_high": high,
            "looks": planned, "alpha_per_look": level, "mean_runs": float(runs.mean()), "worst_runs": cap * variants}


def measure(families: int = 2000, seed: int = 0, alpha: float = ALPHA) -> dict:
    """Every cell of the README's table and of ``--json``."""
    return {"fwer": [fwer(spreads, n, families, seed, alpha) for spreads in ("equal", "unequal") for n in SEED_COUNTS],
            "power": [power(n, families, seed, alpha) for n in POWER_SEED_COUNTS],
            "sequential": [sequential_fwer(spreads, families, seed, alpha) for spreads in ("equal", "unequal")]}


def as_json(measured: dict) -> dict:
    sequential = {cell["spreads"]: cell["fwer"] for cell in measured["sequential"]}
    out = {"fwer": {"equal": {}, "unequal": {}}, "power": {}, "sequential": {"fwer": max(sequential.values()), **sequential}}
    for cell in measured["fwer"]:
        out["fwer"][cell["spreads"]][str(cell["seeds"])] = cell["fwer"]
    for cell in measured["power"]:
        out["power"][str(cell["seeds"])] = cell["power"]
    return out


def table(measured: dict) -> str:
    """The README's table."""
    lines = ["| identical variants, seed spreads | seeds per variant | family-wise error (95% CI) | "
             "families whose variances were shrunk |", "| --- | --- | --- | --- |"]
    for r in measured["fwer"]:
        lines.append(f"| {r['spreads']} | {r['seeds']} | {100 * r['fwer']:.1f}% [{100 * r['fwer_low']:.1f}, "
                     f"{100 * r['fwer_high']:.1f}] | {100 * r['moderated']:.0f}% |")
    lines += ["", "| one variant 3 points better (sd 1) | seeds per variant | power (its 9 differences separated) | "
              "families whose variances were shrunk |", "| --- | --- | --- | --- |"]
    for r in measured["power"]:
        lines.append(f"| equal | {r['seeds']} | {100 * r['power']:.1f}% | {100 * r['moderated']:.0f}% |")
    lines += ["", "| adaptive seeds, identical variants, seed spreads | looks (seeds) | α per look | family-wise error "
              "(95% CI) | runs per family (mean; worst case) |", "| --- | --- | --- | --- | --- |"]
    for r in measured["sequential"]:
        lines.append(f"| {r['spreads']} | {', '.join(map(str, r['looks']))} | {r['alpha_per_look']:.4g} | "
                     f"{100 * r['fwer']:.1f}% [{100 * r['fwer_low']:.1f}, {100 * r['fwer_high']:.1f}] | "
                     f"{r['mean_runs']:.0f}; {r['worst_runs']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    @entry_point
    def run(argv: list[str]) -> None:
        parser = argparse.ArgumentParser(prog="seqbench calibrate", description=__doc__,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--families", type=int, default=2000, help="simulated families per cell (default 2000)")
        parser.add_argument("--seed", type=int, default=0, help="the simulation's random seed")
        parser.add_argument("--json", action="store_true", help="end with one JSON object of every cell")
        args = parser.parse_args(argv)
        if args.families < 1:
            raise SeqbenchError(f"--families {args.families}: give at least 1 simulated family per cell")
        start = time.perf_counter()
        measured = measure(args.families, args.seed)
        print(table(measured))
        print(f"\n{VARIANTS} variants ({math.comb(VARIANTS, 2)} pairs), {args.families} families per cell, seed "
              f"{args.seed}; {time.perf_counter() - start:.0f} s")
        if args.json:
            print(json.dumps(as_json(measured)))
    run(argv)


if __name__ == "__main__":
    main()
