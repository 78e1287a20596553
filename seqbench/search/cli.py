"""``seqbench search``: a thin command over the library: compose and check the search, say its size
and cost, search every variant, retrain the tuned ones, report."""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from .. import SeqbenchError
from ..composition import composition_error
from ..config import check_config
from ..names import variant_of
from ..runtime import (CONFIG_DIR, Interrupted, argument_parser, at_least_one, default_threads, entry_point,
                       stop_on_signals, take_config_dirs, user_config_dirs)
from . import __doc__ as PROTOCOL
from .plots import write_plots
from .progress import _value, search_plan_line
from .retraining import retrain
from .space import budget_warnings, check_settings, choice_reserve, compose
from .storage import prepare_storage
from .summary import _stored_summaries, write_study_summaries
from .workers import _pool, _search_or_error, _stop_workers

log = logging.getLogger(__name__)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argument_parser(prog="seqbench search", description=PROTOCOL,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="hparams_search=NAME (required), dataset=..., any key=value")
    parser.add_argument("--out", default=None, help="search folder (default: <paths.output_root>/search)")
    parser.add_argument("--jobs", type=at_least_one, default=1,
                        help="variants searched at once (torch threads are divided)")
    parser.add_argument("--default-runs", nargs="*", default=[], help="folders with default-config runs of the same "
                        "variants, for the tuned-versus-default table")
    parser.add_argument("--report", default=None, help="where the report goes (default: <search folder>/report)")
    parser.add_argument("--config-dir", action="append", default=[],
                        help="a folder with config groups of your own (hparams_search/<name>.yaml, model/...)")
    parser.add_argument("--dry-run", action="store_true", help="print the search's size and cost, check its "
                        "space and variants, and stop: nothing is trained or written")
    parser.add_argument("--compare", metavar="A:B[,C:D...]", default=None,
                        help="the report's family: these pairs of variants (as the report labels them), as with "
                             "seqbench report --compare")
    return parser.parse_intermixed_args(argv)  # overrides before and after the flags


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base, settings, variants, configs = compose_search(args)
    root = Path(args.out or Path(base.paths.output_root) / "search")
    if not args.dry_run:
        root.mkdir(parents=True, exist_ok=True)
        prepare_storage(settings, root, base.dataset.name)
    threads = default_threads(args.jobs)  # one core left to the machine, or the cores divided among the jobs
    announce(args, root, base, settings, variants, configs)
    if args.dry_run:
        return
    stop_on_signals()
    run_search(args, root, base, settings, variants, threads)


def compose_search(args) -> tuple:
    """(base config, search settings, variants, each variant's resolved config), every key checked as a
    run checks it and the search's settings checked: one line, before anything runs."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    if not any(o.startswith("hparams_search=") for o in args.overrides):
        raise SeqbenchError("name a search space: hparams_search=<name> (conf/hparams_search/, or your own with "
                            "--config-dir DIR holding hparams_search/<name>.yaml)")
    # Into the environment too: the variant workers, and composition_error's list of valid options.
    take_config_dirs([word for folder in args.config_dir for word in ("--config-dir", folder)])
    args.config_dir = user_config_dirs()
    extra = list(args.config_dir)
    try:
        base = compose(CONFIG_DIR, args.overrides, extra)
    except (HydraException, OmegaConfBaseException) as error:  # a wrong group or key: a run's message
        raise SeqbenchError(composition_error(error)) from None
    settings = OmegaConf.to_container(base.hparams_search, resolve=True)
    variants = list(settings.get("variants") or [])
    try:
        configs = {v: OmegaConf.to_container(compose(CONFIG_DIR, [*args.overrides, f"model={v}"], extra), resolve=True)
                   for v in variants}
    except (HydraException, OmegaConfBaseException) as error:  # an unknown variant, a bad override
        raise SeqbenchError(f"hparams_search.variants: {composition_error(error)}") from None
    for config in configs.values():  # every override and key with a run's schemas and messages
        check_config(config)
    check_settings(settings, configs)   # one line, before anything runs
    return base, settings, variants, configs


def announce(args, root: Path, base, settings: dict, variants: list[str], configs: dict[str, dict]) -> None:
    """The search's size, what is already finished, what the rest costs, and what a small budget
    leaves undone."""
    retrain_count = len(settings.get("retrain_seeds") or [])
    budget_words = (f"{settings['budget_epochs']} training epochs (at most {settings['trials']} trials"
                    + (f", the {settings['choice_top']} best re-run on {settings['choice_seeds']} more "
                       f"seed{'s' if settings['choice_seeds'] != 1 else ''}"
                       if choice_reserve(settings) else "") + ")" if settings.get("budget_epochs")
                    else f"{settings['trials']} trials")
    print(f"search: {len(variants)} variant{'s' if len(variants) != 1 else ''} ({', '.join(variants)}) x "
          f"{budget_words}, then {retrain_count} retraining seed{'s' if retrain_count != 1 else ''} each: "
          f"up to {len(variants) * (int(settings['trials']) + retrain_count)} runs ({args.jobs} variant"
          f"{'s' if args.jobs != 1 else ''} at a time); finished trials and runs are reused; each variant says its "
          f"time left after its first trial", flush=True)
    recorded = {v: variant_of(config["model"]) for v, config in configs.items()}  # bilstm_attn -> bilstm_attn_additive
    print(search_plan_line(root, base, variants, settings, args.jobs, args.default_runs, recorded), flush=True)
    trial_epochs = {v: int(config["trainer"]["max_epochs"]) for v, config in configs.items()}
    for warning in budget_warnings(settings, trial_epochs):
        print(f"warning: {warning}", flush=True)


def run_search(args, root: Path, base, settings: dict, variants: list[str], threads: int) -> None:
    """Every variant's study (``--jobs`` at once), the tuned ones retrained, then the report. Ctrl-C or
    SIGTERM stops the workers and reports what finished (exit 130 / 143); a failed variant neither hides
    nor stops the others, and the command exits 1 after reporting them."""
    extra = list(args.config_dir)
    summaries: dict[str, dict] = {}
    failed: dict[str, str] = {}
    timings = {"search": 0.0, "retrain": 0.0}
    pool = None
    try:
        started = time.perf_counter()
        with _pool(args.jobs) as pool:
            outcomes = list(pool.map(_search_or_error, [CONFIG_DIR] * len(variants), [args.overrides] * len(variants),
                                     variants, [str(root)] * len(variants), [threads] * len(variants),
                                     [extra] * len(variants)))
        timings["search"] = (time.perf_counter() - started) / 60
        tuned = _sort_outcomes(variants, outcomes, summaries, failed)
        seeds = [int(s) for s in settings["retrain_seeds"]]
        if tuned:
            print(f"retraining {', '.join(tuned)} with {'its' if len(tuned) == 1 else 'their'} best parameters on "
                  f"seed{'s' if len(seeds) != 1 else ''} {', '.join(map(str, seeds))}, each tested once", flush=True)
        started = time.perf_counter()
        with _pool(args.jobs) as pool:
            list(pool.map(retrain, [CONFIG_DIR] * len(tuned), [args.overrides] * len(tuned), tuned,
                          [summaries[v]["best_params"] or {} for v in tuned], [seeds] * len(tuned),
                          [str(root)] * len(tuned), [summaries[v] for v in tuned], [threads] * len(tuned),
                          [extra] * len(tuned)))
        timings["retrain"] = (time.perf_counter() - started) / 60
    except (KeyboardInterrupt, Interrupted) as error:
        code = 130 if isinstance(error, KeyboardInterrupt) else error.code
        _stop_workers(pool)
        _finish(args, root, base, settings, summaries, timings, interrupted=True)
        print("interrupted: finished trials and runs are kept; run the same command again to resume", file=sys.stderr)
        sys.exit(code)
    _finish(args, root, base, settings, summaries, timings)
    if failed:
        print(f"error: {len(failed)} variant(s) not tuned: {', '.join(failed)} (a search stopped by an error resumes "
              f"when the same command runs again)", file=sys.stderr)
        sys.exit(1)


def _sort_outcomes(variants: list[str], outcomes: list[dict], summaries: dict, failed: dict) -> list[str]:
    """Each variant's study outcome into ``summaries`` or ``failed`` (a variant whose trials failed is
    in both), the failures and each tuned variant's best said; returns the tuned variants."""
    from ..report import parameter_words   # the report's modules (pandas, scipy): loaded when used
    # One variant's failure neither hides nor stops the others: they are retrained and reported, and
    # the command says which failed and exits non-zero (rerunning it resumes the failed studies).
    for variant, outcome in zip(variants, outcomes):
        if "error" in outcome:
            failed[variant] = outcome["error"]
        elif outcome.get("failed"):
            failed[variant] = (f"{outcome['FAIL']} trials failed, {outcome['COMPLETE']} completed "
                               f"({outcome['bound']}): not tuned; change the space, or raise "
                               f"hparams_search.max_failed_trials (a new study)")
            summaries[variant] = outcome
        else:
            summaries[variant] = outcome
    for variant, error in failed.items():
        print(f"error: the search of {variant} failed: {error}", file=sys.stderr)
    tuned = [v for v in variants if v in summaries and not summaries[v].get("failed")]
    for variant in tuned:
        summary = summaries[variant]
        print(f"{variant}: best validation {summary.get('metric') or 'metric'} {_value(summary['best_value'])} "
              f"with {parameter_words(summary['best_params'] or {})} ({summary['COMPLETE']} complete, "
              f"{summary['PRUNED']} pruned, {summary['FAIL']} failed; {summary['bound']}; study "
              f"{summary['study']})", flush=True)
    return tuned


def _finish(args, root: Path, base, settings: dict, summaries: dict, timings: dict, interrupted: bool = False) -> None:
    """studies.md (+ .json), Optuna's plots, and the report of whatever finished."""
    from ..report import build_report   # the report's modules (pandas, scipy): loaded when it is written
    if interrupted and not summaries:  # stopped inside a study: summarise what the database holds
        summaries = _stored_summaries(settings, root, base.dataset.name, list(settings.get("variants") or []))
    out = Path(args.report or root / "report")
    figures = []
    if summaries:
        write_study_summaries(summaries, root / "studies.md", base.dataset.name, timings["search"], timings["retrain"])
        try:
            figures = write_plots([s["study"] for s in summaries.values()], settings, root, base.dataset.name, out)
        except Exception as error:  # the plots are a courtesy
            log.warning("no Optuna plots: %s", error)
    studies = [root / "retrain" / s["study"] for s in summaries.values()]   # this command's studies only
    folders = [f for f in [*studies, *args.default_runs] if Path(f).exists()]
    if not folders:   # nothing retrained (every study stopped before): say where runs were looked for
        print(f"no report: no retrained run under {root / 'retrain'}", file=sys.stderr)
        return
    try:
        built = build_report(folders, out, command=search_command(args),
                             studies=root / "studies.md", study_figures=figures, compare=args.compare)
        if interrupted:
            print("the report of what finished before the interruption:")
        print("\n".join([*built.terminal()[:-2], f"studies: {root / 'studies.md'}", *built.terminal()[-2:]]))
    except SeqbenchError as error:
        print(f"no report: {error}", file=sys.stderr)


def search_command(args) -> str:
    """The search's command line with every flag that shapes it (config folders, default runs, jobs,
    folders), as the report shows it: running it again finds the studies done and the runs reused."""
    words = ["seqbench", "search", *args.overrides]   # --default-runs takes every word after it: it comes last
    for folder in args.config_dir:   # folders absolute here; the report shows them relative to itself
        words += ["--config-dir", str(Path(folder).resolve())]
    if args.jobs != 1:
        words += ["--jobs", str(args.jobs)]
    if args.compare:
        words += ["--compare", args.compare]
    for flag, value in (("--out", args.out), ("--report", args.report)):
        if value:
            words += [flag, str(Path(value).resolve())]
    if args.default_runs:
        words += ["--default-runs", *[str(Path(folder).resolve()) for folder in args.default_runs]]
    return shlex.join(words)
