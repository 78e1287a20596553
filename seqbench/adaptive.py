"""``seqbench adaptive model=a,b,c dataset=trec [--start 3] [--cap 10]``: adaptive seeds. Every
variant trains its first ``--start`` seeds; then, at a few planned looks (3, 5, 8 and 10 seeds by
default: batches, so few looks), only the variants whose comparison with the best is undecided
(the best group: the top by mean and every variant not separated from it) get seeds up to the next
look, until the best stands alone (decided) or the cap is reached.

Error control: the verdict's rule (``stats.seed_level``, the report's) is applied at every look at
alpha / (number of planned looks) (Bonferroni over the looks), never at the full alpha again, so
the whole sequential procedure's family-wise error stays at most alpha; ``seqbench calibrate``
measures it (``"sequential"`` in its JSON). The report of the folder decides at the same level
(it reads ``adaptive.json``), and ranks the data set although its variants have different seed
counts: they are by design.

Each variant's seeds, why it stopped (``decided`` at a look, or ``cap``) and the level go into
``adaptive.json`` in the folder; every run is tagged ``adaptive`` in its record. Finished runs are
reused by their identity, so running the same command again trains nothing already done.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import SeqbenchError
from .estimate import describe, make_plan
from .results import ADAPTIVE_NAME
from .runtime import CONFIG_DIR, argument_parser, at_least_one, entry_point, stop_on_signals, user_config_dirs
from .stats import ALPHA

DEFAULT_START, DEFAULT_CAP = 3, 10
DECIDED, CAP, RUNNING = "decided", "cap", "running"


def looks(start: int, cap: int) -> list[int]:
    """The planned seed counts at which the rule looks: the start, then about 2/7 and 5/7 of the
    way to the cap, then the cap (3, 5, 8, 10 by default); fewer where they coincide."""
    if cap < start:
        raise SeqbenchError(f"--cap {cap} is below the {start} seeds every variant trains first (--start); give "
                            f"--cap {start} or more")
    steps = {start, cap, *(start + round((cap - start) * share) for share in (2 / 7, 5 / 7))}
    return sorted(steps)


def look_alpha(planned: list[int], alpha: float = ALPHA) -> float:
    """The level of each look: alpha spent equally over the planned looks (Bonferroni)."""
    return alpha / len(planned)


def undecided(scores: dict[str, dict], task, alpha: float) -> list[str]:
    """The variants whose comparison with the best is not decided at this look: the best group
    (the top by mean and every variant not separated from it) when it holds more than the top,
    else none. scores: variant -> {seed: test metric}; the report's rule at level ``alpha``."""
    from .stats import seed_level
    level = seed_level(scores, task, alpha=alpha, aso=False)
    group = level.best_group
    return list(group) if len(group) > 1 else []


def stop_words(design: dict) -> str:
    """``gru 3 seeds (decided), lstm 10 (cap)``."""
    parts = []
    for variant, entry in (design.get("variants") or {}).items():
        why = {DECIDED: f"decided at {entry.get('seeds')}", CAP: "cap"}.get(entry.get("stopped"), entry.get("stopped"))
        parts.append(f"{variant} {entry.get('seeds')} seeds ({why})")
    return ", ".join(parts)


def _variants(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(the variants of ``model=a,b,c``, the other overrides); one line where the command cannot be
    an adaptive run of seeds."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as error:
        raise SeqbenchError(f"cannot read the overrides: {str(error).splitlines()[0]}") from None
    variants, rest = [], []
    for text, override in zip(overrides, parsed):
        key = override.get_key_element().lstrip("+~")
        if key == "seed":
            raise SeqbenchError(f"{text}: adaptive seeds choose the seeds (0 to --cap - 1); leave seed= out")
        if key == "model":
            variants = list(override.sweep_string_iterator()) if override.is_sweep_override() else [
                str(override.value())]
        elif override.is_sweep_override():
            raise SeqbenchError(f"{text}: adaptive seeds sweep the model only (model=a,b,c); run one command per "
                                f"setting of {key}")
        else:
            rest.append(text)
    if len(variants) < 2:
        raise SeqbenchError("give at least two variants to compare: model=a,b[,c...]")
    return variants, rest


def worst_case_lines(variants: list[str], rest: list[str], cap: int) -> list[str]:
    """``seqbench plan`` of every variant trained to the cap: the most this command can train."""
    try:
        plan = make_plan([f"model={','.join(variants)}", f"seed={','.join(map(str, range(cap)))}", *rest],
                         probe=False)
    except Exception as error:   # an estimate is a courtesy; the runs themselves say what is wrong
        return [f"plan: not made ({type(error).__name__}); the runs go on"]
    return describe(plan)


def main(argv: list[str] | None = None) -> None:
    @entry_point
    def command(argv: list[str]) -> None:
        parser = argument_parser(prog="seqbench adaptive", description=__doc__)
        parser.add_argument("overrides", nargs="*", help="model=a,b[,c...] (the variants), dataset=..., any key=value")
        parser.add_argument("--start", type=at_least_one, default=DEFAULT_START,
                            help=f"seeds every variant trains first (default {DEFAULT_START})")
        parser.add_argument("--cap", type=at_least_one, default=DEFAULT_CAP,
                            help=f"the most seeds a variant gets (default {DEFAULT_CAP})")
        parser.add_argument("--out", default=None, help="folder of the runs, adaptive.json and the report "
                                                        "(default: <paths.output_root>/adaptive/<dataset>)")
        parser.add_argument("--dry-run", action="store_true", help="print the looks and the worst case, train nothing")
        args = parser.parse_intermixed_args(argv)  # overrides before and after the flags
        if args.start < 2:
            raise SeqbenchError(f"--start {args.start}: the rule needs at least 2 seeds a variant to see a spread")
        planned = looks(args.start, args.cap)
        variants, rest = _variants(args.overrides)
        adaptive_run(variants, rest, planned, out=args.out, dry_run=args.dry_run)
    command(argv)


def adaptive_run(variants: list[str], rest: list[str], planned: list[int], out: str | Path | None = None,
                 dry_run: bool = False, alpha: float = ALPHA, report: bool = True) -> dict:
    """Train the looks' seeds of the variants that are still undecided; returns adaptive.json's content."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .composition import composition_error
    from .results import load_records, variant_labels
    from .report import seed_scores
    from .search.space import compose
    from .tasks import task_of
    extra = user_config_dirs()
    try:
        configs = {v: compose(CONFIG_DIR, [*rest, f"model={v}", "seed=0"], extra) for v in variants}
    except (HydraException, OmegaConfBaseException) as error:
        raise SeqbenchError(composition_error(error)) from None
    base = next(iter(configs.values()))
    folder = Path(out or Path(base.paths.output_root) / "adaptive" / str(base.dataset.name))
    per_look = look_alpha(planned, alpha)
    cap = planned[-1]
    print(f"adaptive seeds: {len(variants)} variants ({', '.join(variants)}), {planned[0]} seeds each first, then "
          f"only the undecided ones at looks of {', '.join(map(str, planned))} seeds, each look at α = "
          f"{alpha:g}/{len(planned)} = {per_look:.4g}; at least {len(variants) * planned[0]}, at most "
          f"{len(variants) * cap} runs (worst case: every variant to the cap {cap})", flush=True)
    for line in worst_case_lines(variants, rest, cap):
        print(f"worst case {line}", flush=True)
    if dry_run:
        return {}
    from .run import run
    from .search.retraining import _quiet_runs, _settle
    stop_on_signals()
    _quiet_runs()
    folder.mkdir(parents=True, exist_ok=True)
    design = {"dataset": str(base.dataset.name), "overrides": rest, "start": planned[0], "cap": cap, "looks": planned,
              "alpha": alpha, "alpha_per_look": per_look,
              "variants": {v: {"seeds": 0, "stopped": RUNNING, "config_hash": None} for v in variants}}
    open_ = list(variants)
    for number, n in enumerate(planned, 1):
        for variant in open_:
            for seed in range(design["variants"][variant]["seeds"], n):
                cfg = compose(CONFIG_DIR, [*rest, f"model={variant}", f"seed={seed}"], extra)
                tags = {"adaptive": {"look": number, "looks": planned, "alpha_per_look": per_look}}
                record = run(cfg, folder / "runs" / f"{variant}_s{seed}", in_sweep=True, tags=tags)
                _settle(record, cfg)
                entry = design["variants"][variant]
                entry["seeds"], entry["config_hash"] = seed + 1, record.get("config_hash")
                test = (record.get("test") or {})
                print(f"{variant} seed {seed}: {record.get('status')}"
                      + (" (reused)" if record.get("reused_from") else "")
                      + (f", test {', '.join(f'{k} {v:.4g}' for k, v in test.items())}" if test else ""), flush=True)
        (folder / ADAPTIVE_NAME).write_text(json.dumps(design, indent=1))
        records = [r for r in load_records([folder]) if r.get("config_hash") in
                   {e["config_hash"] for e in design["variants"].values()}]
        labels = variant_labels(records)
        by_hash = {e["config_hash"]: v for v, e in design["variants"].items()}
        scores, _ = seed_scores(records, labels, task_of(records[0]))
        scores = {by_hash[h]: scores.get(label, {}) for h, label in labels.items() if h in by_hash}
        still = [v for v in undecided(scores, task_of(records[0]), per_look) if v in open_]
        for variant in open_:
            if variant not in still:
                design["variants"][variant]["stopped"] = DECIDED
        open_ = still if n < cap else []
        for variant in still:
            if n >= cap:
                design["variants"][variant]["stopped"] = CAP
        (folder / ADAPTIVE_NAME).write_text(json.dumps(design, indent=1))
        print(f"look {number} of {len(planned)} ({n} seeds, α = {per_look:.4g}): "
              + (f"undecided against the best: {', '.join(open_)}; they go on to {planned[number]} seeds"
                 if open_ else "decided" if not still else f"undecided at the cap: {', '.join(still)}"), flush=True)
        if not open_:
            break
    print(f"adaptive seeds: {stop_words(design)}; {folder / ADAPTIVE_NAME}", flush=True)
    if report:
        from .report import build_report
        built = build_report([folder], folder / "report",
                             command="seqbench adaptive " + " ".join([f"model={','.join(variants)}", *rest]))
        print("\n".join(built.terminal()), flush=True)
    return design


if __name__ == "__main__":
    main()
