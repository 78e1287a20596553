"""The report's sentences: what a number means, what a test decided and what would decide the
rest, the budget and its caps, the measured columns and the load they were measured under."""
from __future__ import annotations

import math

import numpy as np

from ..record import MEMORY_KINDS, describe_hardware
from ..results import _natural, cap_flags, improving_window
from ..stats import (MAX_SEEDS_NEEDED, MIN_PRIOR_DF, difference_words, pair_power, permutation_floor_words,
                     rope_words, test_set_se, undecided_pairs)
from ..tasks import PERCENT_METRICS
from .lengths import TextLengths
from .section import Comparison, DataSection


def plain(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


MEMORY_WORDS = {"cuda_max_allocated": "peak GPU memory (MB)", "process_rss_peak": "peak memory (MB)",
                "process_lifetime_peak": "peak memory, whole process life (MB)"}


PLAIN_MEMORY = {
    "process_rss_peak": "the most memory (RAM) the training process held while the run trained; in a sweep one "
                        "process runs job after job, so it includes what earlier runs left behind",
    "cuda_max_allocated": "the most GPU memory torch allocated during the run",
    "process_lifetime_peak": "the most memory the process held over its whole life (records before 2026-11-28)"}


MEASURED = "†"   # marks a column measured on a machine under its load, not a property of the model


def concurrency(records: list[dict]) -> list[int]:
    """For each run with start and end times: how many runs of ``records`` (itself included) were
    training on the same machine at the most loaded moment of its run."""
    from datetime import datetime
    spans = []
    for r in records:
        try:
            start, end = datetime.fromisoformat(str(r.get("started"))), datetime.fromisoformat(str(r.get("finished")))
        except ValueError:
            continue
        if start.tzinfo is None or end.tzinfo is None or end < start:
            continue
        spans.append(((r.get("process") or {}).get("host"), start, end))
    out = []
    for host, start, end in spans:
        others = [(s, e) for h, s, e in spans if h == host and s < end and e > start]
        # The most runs at once inside this run's span: at some other run's start (or this one's).
        moments = [max(s, start) for s, _ in others]
        out.append(max(sum(1 for s, e in others if s <= moment < e) for moment in moments))
    return out


def measured_words(section: DataSection) -> str:
    """What the columns marked † are: measurements on a machine under its load when each run
    trained, as the records give it; never a property of a model alone."""
    records = section.done or section.records
    hardware = sorted({describe_hardware(r["hardware"]) for r in records if r.get("hardware")})
    together = concurrency(records)
    at_once = (f"{max(together)}" if min(together) == max(together) else f"{min(together)} to {max(together)}") \
        if together else ""
    load = (f"{'each ran alone' if together and max(together) == 1 else f'{at_once} of them ran at a time'}"
            f" (from the records' start and end times; work outside this report is not counted)"
            if together else "when they ran is not recorded")
    memory = " ".join(f"{MEMORY_WORDS.get(kind, 'peak memory (MB)').removesuffix(' (MB)').capitalize()}: "
                      f"{PLAIN_MEMORY.get(kind, MEMORY_KINDS.get(kind, kind))}."
                      for kind in sorted(set(section.runs["peak_memory_kind"].dropna())))
    return (f"{MEASURED} Measured, not a property of the model: on {', '.join(hardware) or 'unrecorded hardware'}, "
            f"where {load}. Other work on the machine at the same time makes runs slower and their memory larger: "
            f"compare these columns only between runs made under the same load. "
            + memory)


def noise_words(level, pair, examples: int) -> str:
    """The seeds' standard error of A − B beside what one run's test-set sampling alone gives."""
    seeds = math.sqrt(pair.sd_a ** 2 / pair.n_a + pair.sd_b ** 2 / pair.n_b)
    test = test_set_se(level, pair, examples)
    if level.scale != "raw" or level.task.metric not in PERCENT_METRICS:
        return f"{seeds:.2g} / –"
    return f"{100 * seeds:.2g} / " + (f"{100 * test:.2g}" if math.isfinite(test) else "–")


def seed_level_words(comparison: Comparison) -> str:
    level = comparison.seed
    task = level.task
    scale = ("on the log scale (an error spreads in proportion to its size; A / B is the ratio of geometric "
             "means)" if level.scale == "log" else "on the metric's own scale")
    m = len(level.pairs)
    rope = (f" Practically equivalent: the whole interval inside the region of practical equivalence, "
            f"{rope_words(task.metric, level.rope, level.scale)} (`seqbench report --rope`)." if level.rope else "")
    if level.family is not None:
        rule = (f"the family is the {m} pair{'s' if m != 1 else ''} named with --compare and nothing else (no other "
                f"variant's seeds enter: no shared variance, no shrinkage toward it); "
                + ("each variance shrunk toward the named variants' common one (moderated t, Smyth 2004)"
                   if level.moderated else "Welch's t-test on each pair")
                + f", Holm over the {m} (family-wise error 5%)")
    elif level.moderated:
        rule = (f"the variants' seed variances are shrunk toward a common one by empirical Bayes (moderated t, limma's "
                f"estimator, Smyth 2004; prior df {level.prior_df:.3g}, at least {MIN_PRIOR_DF:g} needed), and every "
                f"pair is decided by the Ryan-Einot-Gabriel-Welsch step-down over ranges of means (Tukey-Kramer "
                f"critical values on the moderated standard errors, Welsch's levels), family-wise error 5% over "
                f"{m} pairs; p (Tukey-Kramer) is the single-step simultaneous p, never smaller than the step-down's")
    else:
        rule = (f"the seed spreads are too unequal to share a variance (empirical-Bayes prior df {level.prior_df:.2g}, "
                f"below {MIN_PRIOR_DF:g}), so Welch's t-test on every pair, Holm-adjusted over {m} pairs "
                f"(family-wise error 5%)")
    return (f"Training runs as the unit, on the seeds' test {task.metric_words()} {scale}: {rule}. Each interval "
            f"is at the critical value of the step that decided its pair (level in brackets), so it excludes zero "
            f"exactly when the pair is separated; a pair not separated has it widened to reach zero. The family-wise "
            f"error and power of this rule are measured by `seqbench calibrate`.{rope} \"SE of A − B\": the seeds' "
            f"standard error of the difference beside the binomial one of a single run's test set (test-set "
            f"sampling alone); where the second is the larger, more seeds cannot help and a larger test set would. "
            f"Beside them: the exact permutation test over seeds (its smallest possible p shown with ≤) and ASO "
            f"ε_min (deepsig; < 0.5: A tends to be better). " + permutation_floor_words(level))


def power_words(comparison: Comparison) -> str:
    """What is not decided and what would decide it: per undecided pair (the top against each other
    member of the best group, or an unseparated named pair), the seeds per variant its observed
    difference needs, from its own two variants' seed spreads, and the test-set noise beside them."""
    level = comparison.seed
    parts = []
    for pair in undecided_pairs(level):
        who = f"{pair.a} vs {pair.b} ({difference_words(level, pair.difference)}"
        if pair.equivalent:
            parts.append(f"{who}): practically equivalent; more seeds would not change what to pick.")
            continue
        power = pair_power(level, pair)
        needed = power["seeds_for_difference"]
        if isinstance(needed, float) and math.isnan(needed):
            parts.append(f"{who}): no spread to plan from.")
            continue
        count = f"more than {MAX_SEEDS_NEEDED:,}" if needed > MAX_SEEDS_NEEDED else f"about {needed}"
        noise = test_set_se(level, pair, comparison.examples)
        seeds_se = math.sqrt(pair.sd_a ** 2 / pair.n_a + pair.sd_b ** 2 / pair.n_b)
        test = (f"; one run's test set alone gives this difference an SE of {100 * noise:.2g} points against the "
                f"seeds' {100 * seeds_se:.2g}" + (", so a larger test set, not more seeds, would decide it"
                                                   if noise > seeds_se else "") if math.isfinite(noise) else "")
        parts.append(f"{who}): {count} seeds per variant would separate a difference this large with 80% power "
                     f"(Welch at α = {power['alpha']:.2g}, 5% over {len(level.pairs)} pairs; from these two variants' "
                     f"seed spreads){test}.")
    return ("Not decided, and what would decide it: " + " ".join(parts)) if parts else ""


def disagreement_words(comparison: Comparison) -> str:
    """Pairs the per-example comparison finds different that the training runs do not separate:
    said beside the per-example table, so nobody reads it as the verdict."""
    found = []
    for c in comparison.conditional:
        pair = comparison.seed.pair(c.a, c.b)
        if c.p_holm < 0.05 and (pair is None or not pair.separated):
            found.append(f"{c.a} vs {c.b}" + (" (not tested at the seed level: too few seeds)" if pair is None else ""))
    if not found:
        return ""
    return (f"Conditional on these trained networks {', '.join(found)} differ; with training runs as the unit "
            f"{'this pair is' if len(found) == 1 else 'these pairs are'} not separated, and the verdict follows the "
            f"training runs.")


def conditional_test_words(comparison: Comparison) -> str:
    """Which per-example test was used: recorded per pair."""
    tests = {c.test for c in comparison.conditional}
    return ("paired t-test (over 5,000 examples)" if tests == {"paired t-test"}
            else "paired bootstrap (BCa) and permutation test")


def parameter_words(params: dict) -> str:
    """``optimizer.lr=0.00378, model.hidden_size=128``: a search's parameters, three digits."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _settings(records: list[dict], group: str, key: str) -> str:
    found = sorted({str(((r.get("config") or {}).get(group) or {}).get(key)) for r in records} - {"None"},
                   key=lambda v: _natural((v,)))
    return "/".join(found)


def _counts_by_variant(flags: list[tuple[str, bool]], everyone: dict[str, int]) -> str:
    """``rnn 3 of 5, lru 1 of 5``, or ``in every variant`` where all have some; '' where none."""
    counts: dict[str, int] = {}
    for label, flag in flags:
        if flag:
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return ""
    if len(counts) == len(everyone) and len(counts) > 4:
        return f"in all {len(counts)} variants"
    shown = sorted(counts, key=lambda v: (-counts[v], v))
    words = ", ".join(f"{v} {counts[v]} of {everyone[v]}" for v in shown[:4])
    return words + (f", {len(shown) - 4} more variants" if len(shown) > 4 else "")


def truncation_words(section: DataSection) -> str:
    """How many test texts are longer than ``dataset.max_len`` (cut to it), or why that is unknown."""
    max_lens = sorted({int(v) for v in _settings(section.done, "dataset", "max_len").split("/") if v.isdigit()})
    if not max_lens:
        return ""
    if section.lengths is None:
        return (f"test texts longer than max_len: not known here ({section.lengths_note or 'no text lengths'})"
                if section.task.name == "classification" else "")
    test = section.lengths.test
    parts = []
    for length in max_lens:
        longer = int((test > length).sum())
        parts.append(f"{longer} of {len(test):,} test texts ({100 * longer / len(test):.1f}%) are longer than "
                     f"max_len {length} and were cut to it")
    return "; ".join(parts)


def cap_words(section: DataSection, short: bool = False) -> str:
    """The budget's honesty line: at which cap and patience (and max_len), how many runs the epoch
    cap stopped, and how many of those were still improving (results.cap_flags has the rule)."""
    done = section.done
    flags = [(section.labels.get(r.get("config_hash"), r.get("model")), *cap_flags(r)) for r in done]
    known = [f for f in flags if f[1] is not None]
    if not known:
        return ""
    everyone: dict[str, int] = {}
    for label, *_ in known:
        everyone[label] = everyone.get(label, 0) + 1
    capped = sum(1 for f in known if f[1])
    improving = sum(1 for f in known if f[2])
    epochs, patience = _settings(done, "trainer", "max_epochs"), _settings(done, "trainer", "patience")
    max_len = _settings(done, "dataset", "max_len")
    setting = ", ".join(part for part in (f"max_epochs {epochs}", f"patience {patience}" if patience else "",
                                          f"max_len {max_len}" if max_len else "") if part)
    windows = sorted({improving_window(((r.get("config") or {}).get("trainer") or {}).get("patience"),
                                       ((r.get("config") or {}).get("trainer") or {}).get("max_epochs")) for r in done})
    window = ("its last epoch" if windows == [1] else
              f"its last {'/'.join(map(str, windows))} epochs")
    n = len(known)
    if short:
        longer = ""
        if section.lengths is not None and max_len.isdigit():
            longer = (f"; {int((section.lengths.test > int(max_len)).sum())} of {len(section.lengths.test):,} test "
                      f"texts longer than max_len")
        return f"{setting}: the epoch cap stopped {capped} of {n} runs, {improving} of them still improving{longer}"
    who = _counts_by_variant([(f[0], f[1]) for f in known], everyone)
    who_improving = _counts_by_variant([(f[0], f[2]) for f in known], everyone)
    truncation = truncation_words(section)
    return (f"At this budget ({setting}) the epoch cap stopped {capped} of {n} runs"
            + (f" ({who})" if who else "") + (", the others stopped early" if 0 < capped < n else
                                               ", every one stopped early" if capped == 0 else "")
            + f"; still improving at the cap (a new best validation score in {window}) in {improving} of {n}"
            + (f" ({who_improving})" if who_improving else "") + "."
            + (" The table compares them at this budget, not at convergence: more epochs might change their "
               "scores." if improving else "")
            + (f" {truncation[0].upper()}{truncation[1:]}." if truncation else ""))


def length_words(lengths: TextLengths) -> str:
    """Test (and training) text lengths in one sentence: mean and median tokens."""
    def described(values):
        return f"mean {np.mean(values):.1f} tokens (median {np.median(values):g}, {len(values):,} texts)"
    return (f"Test texts: {described(lengths.test)}"
            + (f"; training texts: {described(lengths.train)}" if lengths.train is not None and len(lengths.train)
               else "") + ".")


def shown_words(section: "DataSection") -> str:
    if section.shown_classes is None:
        return ""
    total = len(next(iter(section.confusion.values())).index)
    return (f" Shown: the {len(section.shown_classes)} classes with the most test examples, of {total}; every "
            f"class is in `confusion_{section.stem}.csv`.")
