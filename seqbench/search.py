"""``seqbench search hparams_search=trec [overrides...]``: the same tuning budget for every
model variant, then retraining over seeds and a report with tuned beside default figures.

The protocol (Melis et al. 2018; Lucic et al. 2018: rankings change once every model gets the
same tuning budget):

1. For each variant, an Optuna study (one per data set and variant, in one database) runs the
   same number of trials over the same search space (the keys that apply to the variant),
   written in Hydra's override syntax in ``conf/hparams_search/<name>.yaml``:
   ``optimizer.lr: tag(log, interval(1e-4, 1e-2))``, ``model.hidden_size: choice(64, 128, 256)``.
   The objective is always the best *validation* metric of a seqbench run (seed
   ``search_seed``); the test split is never read. A seeded TPE sampler, the same seed for every
   variant; hopeless trials are pruned on the per-epoch validation metric (median rule).
2. The study lives in a database: SQLite in the output folder by default, or any SQL URL Optuna
   accepts (``hparams_search.storage=postgresql://...``), so several workers can share it. A
   killed search resumes where it stopped: trials the killed process left running are marked
   failed and asked again with the same parameters (whose seqbench run resumes from its last
   checkpoint); finished trials are never lost, and only finished or pruned trials count against
   the budget.
3. Each variant's best configuration is retrained over ``retrain_seeds`` (seeds the search did
   not use) and tested once; the report sets the tuned figures beside the default ones.

Why Optuna directly (through Hydra's compose API) and not Hydra's optuna sweeper plugin: the
plugin (1.3.0) pins optuna<3, and its sweeper runs one study per command line; here each
variant needs its own study with an equal budget, a pruner fed from inside the Lightning loop,
and resumption of killed trials, which a current Optuna's ask/tell interface gives directly.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from . import SeqbenchError

log = logging.getLogger(__name__)
COUNTED = ("COMPLETE", "PRUNED")  # trial states that use up the budget


# ------------------------------------------------------------------------------ search spaces
def distributions(space: dict) -> dict:
    """Hydra override syntax -> Optuna distributions: ``choice(...)`` -> categorical,
    ``interval(a, b)`` -> float (int when both ends are ints), ``range(a, b[, step])`` -> int,
    ``tag(log, ...)`` -> log scale."""
    import optuna
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    parser = OverridesParser.create()
    out = {}
    for key, text in space.items():
        value = parser.parse_override(f"{key}={text}").value()
        log_scale = "log" in getattr(value, "tags", set())
        if isinstance(value, ChoiceSweep):
            out[key] = optuna.distributions.CategoricalDistribution(list(value.list))
        elif isinstance(value, RangeSweep):
            out[key] = optuna.distributions.IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
        elif isinstance(value, IntervalSweep):
            if isinstance(value.start, int) and isinstance(value.end, int):
                out[key] = optuna.distributions.IntDistribution(value.start, value.end, log=log_scale)
            else:
                out[key] = optuna.distributions.FloatDistribution(float(value.start), float(value.end), log=log_scale)
        else:
            raise SeqbenchError(f"hparams_search.space.{key}={text!r}: use choice(...), interval(a, b), range(a, b) "
                                f"or tag(log, interval(a, b))")
    return out


def applies(key: str, model: dict) -> bool:
    """A key applies to a variant when its model has the setting (attention keys only for
    attention models), or when it is not a model key at all."""
    if not key.startswith("model."):
        return True
    name = key.split(".", 1)[1]
    if name.startswith("attention"):
        return model.get("pooling") == "attention"
    return name in model


def override_value(value) -> str:
    return str(value) if not isinstance(value, float) else repr(value)


# -------------------------------------------------------------------------------------- trials
class PruneOnValidation:
    """A Lightning callback that reports each epoch's validation metric to the trial and stops
    training when the pruner says the trial is hopeless."""

    def __new__(cls, trial, monitor: str):
        import pytorch_lightning as pl

        class _Pruning(pl.Callback):
            pruned = False

            def on_validation_end(self, trainer, module):
                if trainer.sanity_checking or monitor not in trainer.callback_metrics:
                    return
                trial.report(float(trainer.callback_metrics[monitor]), step=trainer.current_epoch)
                if trial.should_prune():
                    self.pruned = True
                    trainer.should_stop = True
        return _Pruning()


def compose(config_dir: str, overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from .names import register_resolvers
    register_resolvers()
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides)


def storage_url(settings: dict, root: Path, dataset: str) -> str:
    return settings.get("storage") or f"sqlite:///{(root / f'{dataset}.db').resolve()}"


def open_study(settings: dict, root: Path, dataset: str, variant: str, direction: str):
    import warnings

    import optuna
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    storage = optuna.storages.RDBStorage(storage_url(settings, root, dataset),
                                         heartbeat_interval=int(settings.get("heartbeat_seconds", 30)),
                                         grace_period=int(settings.get("grace_seconds", 120)))
    sampler = optuna.samplers.TPESampler(seed=int(settings["sampler_seed"]), n_startup_trials=
                                         int(settings.get("startup_trials", 5)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=int(settings.get("pruner_startup_trials", 3)),
                                         n_warmup_steps=int(settings.get("pruner_warmup_epochs", 2)))
    for attempt in range(5):  # several workers may create their studies at the same moment
        try:
            return optuna.create_study(study_name=f"{dataset}-{variant}", storage=storage, sampler=sampler,
                                       pruner=pruner, direction="maximize" if direction == "max" else "minimize",
                                       load_if_exists=True)
        except Exception as error:  # sqlalchemy's OperationalError / IntegrityError: the database was busy
            if attempt == 4 or "sqlalchemy" not in type(error).__module__:
                raise
            time.sleep(0.5 * (attempt + 1))


def prepare_storage(settings: dict, root: Path, dataset: str) -> None:
    """Create the database's tables once, before parallel workers open it: two processes creating
    the schema of one fresh SQLite file at once collide (one of them fails)."""
    import optuna
    optuna.storages.RDBStorage(storage_url(settings, root, dataset))


def search_variant(config_dir: str, overrides: list[str], variant: str, root: str, threads: int | None = None) -> dict:
    """Run one variant's study up to its budget; returns a summary of the study."""
    import optuna
    import torch
    from omegaconf import OmegaConf

    from .run import run
    from .runtime import quiet_third_party
    from .tasks import TASKS
    quiet_third_party()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if threads:
        torch.set_num_threads(threads)
    root = Path(root)
    base = compose(config_dir, [*overrides, f"model={variant}"])
    settings = OmegaConf.to_container(base.hparams_search, resolve=True)
    dataset = base.dataset.name
    model = OmegaConf.to_container(base.model, resolve=True)
    space = {k: v for k, v in distributions(settings["space"]).items() if applies(k, model)}
    budget = int(settings["trials"])
    from .config import dataset_schema  # noqa: F401  (the registry is loaded)
    from .data.declare import dataset_kind
    from .registry import dataset_entry
    kind = TASKS[dataset_entry(dataset_kind(OmegaConf.to_container(base.dataset, resolve=True))).task]
    metric, direction = kind.metric, kind.direction
    study = open_study(settings, root, dataset, variant, direction)
    study.set_user_attr("budget_trials", budget)
    study.set_user_attr("space", {k: str(v) for k, v in settings["space"].items() if k in space})
    study.set_user_attr("objective", f"best validation {metric} ({direction}), seed {settings['search_seed']}")
    _retry_stale(study)
    started = time.perf_counter()
    while True:
        counted = [t for t in study.get_trials(deepcopy=False) if t.state.name in COUNTED]
        waiting = [t for t in study.get_trials(deepcopy=False) if t.state.name in ("RUNNING", "WAITING")]
        if len(counted) >= budget or len(counted) + len([t for t in waiting if t.state.name == "RUNNING"]) >= budget:
            break
        trial = study.ask(space)
        params = {k: trial.params[k] for k in space}
        cfg = compose(config_dir, [*overrides, f"model={variant}", f"seed={settings['search_seed']}",
                                   *[f"{k}={override_value(v)}" for k, v in params.items()],
                                   f"paths.output_root={root / 'trials'}"])
        pruning = PruneOnValidation(trial, f"val/{metric}")
        folder = root / "trials" / dataset / variant / f"trial{trial.number:03d}"
        try:
            with heartbeat(study, trial, int(settings.get("heartbeat_seconds", 30))):
                record = run(cfg, folder, evaluate_test=False, extra_callbacks=[pruning],
                             tags={"search": {"study": study.study_name, "trial": trial.number}})
        except SeqbenchError as error:  # a configuration the space allows but the model refuses
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            log.warning("trial %d failed: %s", trial.number, error)
            continue
        trial.set_user_attr("record", str(Path(record.get("output_dir", folder)) / "record.json"))
        trial.set_user_attr("epochs", record.get("epochs"))
        trial.set_user_attr("seconds", sum(s for s in record.get("epoch_seconds") or [] if s))
        value = (record.get("val_best") or {}).get(metric)
        if record.get("status") != "done" or value is None or not math.isfinite(value):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif pruning.pruned or record.get("pruned"):
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    return summarise(study, time.perf_counter() - started)


class heartbeat:
    """While a trial runs, tell the study's storage it is alive (ask/tell trials get no heartbeat
    from Optuna itself); a killed worker's trials then go stale and are retried."""

    def __init__(self, study, trial, interval: int):
        import threading
        self.storage, self.trial_id, self.interval = study._storage, trial._trial_id, max(1, interval)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self):
        while True:
            self.storage.record_heartbeat(self.trial_id)
            if self.stop.wait(self.interval):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        return False


def _retry_stale(study) -> None:
    """Trials a killed worker left RUNNING: failed once their heartbeat is stale, and asked again
    with the same parameters (the seqbench run of the same config resumes from its checkpoint)."""
    import warnings

    import optuna
    running = {t.number for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"}
    if not running:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental feature"
        optuna.storages.fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False):
        if trial.number in running and trial.state.name == "FAIL":
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            log.warning("trial %d was left running by a killed search: asked again", trial.number)


def summarise(study, seconds: float | None = None) -> dict:
    trials = study.get_trials(deepcopy=False)
    states = {state: sum(t.state.name == state for t in trials) for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = study.best_trial if complete else None
    epochs = [t.user_attrs.get("epochs") or 0 for t in trials]
    spent = sum(t.user_attrs.get("seconds") or 0 for t in trials)
    pruned_epochs = sum(t.user_attrs.get("epochs") or 0 for t in trials if t.state.name == "PRUNED")
    full = [t.user_attrs.get("epochs") or 0 for t in complete]
    per_epoch = spent / sum(epochs) if sum(epochs) else 0.0
    saved = max(0.0, (states["PRUNED"] * (sum(full) / len(full)) - pruned_epochs) * per_epoch) if full else 0.0
    return {"study": study.study_name, "budget_trials": study.user_attrs.get("budget_trials"), **states,
            "best_value": best.value if best else None, "best_trial": best.number if best else None,
            "best_params": best.params if best else None, "training_minutes": spent / 60,
            "wall_minutes_this_session": (seconds or 0) / 60,
            "pruning_saved_minutes_estimate": saved / 60}


# ----------------------------------------------------------------------------------- protocol
def retrain(config_dir: str, overrides: list[str], variant: str, params: dict, seeds: list[int], root: str,
            summary: dict, threads: int | None = None) -> list[dict]:
    """The variant's best configuration, trained and tested once per seed."""
    import torch

    from .run import run
    from .runtime import quiet_third_party
    quiet_third_party()
    if threads:
        torch.set_num_threads(threads)
    records = []
    for seed in seeds:
        cfg = compose(config_dir, [*overrides, f"model={variant}", f"seed={seed}",
                                   *[f"{k}={override_value(v)}" for k, v in params.items()],
                                   f"paths.output_root={Path(root) / 'retrain'}"])
        tags = {"tuned": {"study": summary["study"], "trials": summary["budget_trials"],
                          "best_trial": summary["best_trial"], "params": params}}
        folder = Path(root) / "retrain" / cfg.dataset.name / f"{variant}_s{seed}"
        records.append(run(cfg, folder, in_sweep=True, tags=tags))
    return records


class _InProcess:
    """One job: no worker processes, the same interface."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(function, *iterables):
        return list(map(function, *iterables))


def _pool(jobs: int):
    if jobs <= 1:
        return _InProcess()
    import multiprocessing
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqbench search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="hparams_search=NAME (required), dataset=..., any key=value")
    parser.add_argument("--out", default=None, help="search folder (default: <paths.output_root>/search)")
    parser.add_argument("--jobs", type=int, default=1, help="variants searched at once (torch threads are divided)")
    parser.add_argument("--default-runs", nargs="*", default=[], help="folders with default-config runs of the same "
                        "variants, for the tuned-versus-default table")
    parser.add_argument("--report", default=None, help="where the report goes (default: <search folder>/report)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from omegaconf import OmegaConf

    from .runtime import CONFIG_DIR
    if not any(o.startswith("hparams_search=") for o in args.overrides):
        print("error: name a search space: hparams_search=<name> (conf/hparams_search/)", file=sys.stderr)
        sys.exit(2)
    try:
        base = compose(CONFIG_DIR, args.overrides)
    except Exception as error:  # Hydra's composition errors: wrong group or key
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    settings = OmegaConf.to_container(base.hparams_search, resolve=True)
    root = Path(args.out or Path(base.paths.output_root) / "search")
    root.mkdir(parents=True, exist_ok=True)
    prepare_storage(settings, root, base.dataset.name)
    variants = list(settings["variants"])
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    started = time.perf_counter()
    with _pool(args.jobs) as pool:
        outcomes = list(pool.map(_search_or_error, [CONFIG_DIR] * len(variants), [args.overrides] * len(variants),
                                 variants, [str(root)] * len(variants), [threads] * len(variants)))
    search_minutes = (time.perf_counter() - started) / 60
    # One variant's failure neither hides nor stops the others: they are retrained and reported, and
    # the command says which failed and exits non-zero (rerunning it resumes the failed studies).
    failed = {v: o["error"] for v, o in zip(variants, outcomes) if "error" in o}
    summaries = {v: o for v, o in zip(variants, outcomes) if "error" not in o}
    for variant, error in failed.items():
        print(f"error: the search of {variant} failed: {error}", file=sys.stderr)
    variants = [v for v in variants if v in summaries]
    for variant, summary in summaries.items():
        print(f"{summary['study']}: {summary['COMPLETE']} complete, {summary['PRUNED']} pruned of "
              f"{summary['budget_trials']}; best validation {summary['best_value']} with {summary['best_params']}")
    seeds = [int(s) for s in settings["retrain_seeds"]]
    started = time.perf_counter()
    with _pool(args.jobs) as pool:
        list(pool.map(retrain, [CONFIG_DIR] * len(variants), [args.overrides] * len(variants), variants,
                      [summaries[v]["best_params"] or {} for v in variants], [seeds] * len(variants),
                      [str(root)] * len(variants), [summaries[v] for v in variants], [threads] * len(variants)))
    retrain_minutes = (time.perf_counter() - started) / 60
    write_study_summaries(summaries, root / "studies.md", base.dataset.name, search_minutes, retrain_minutes)
    from .report import build_report
    out = Path(args.report or root / "report")
    build_report([root / "retrain", *args.default_runs], out,
                 command="seqbench search " + " ".join(args.overrides), studies=root / "studies.md")
    print(f"studies: {root / 'studies.md'}\nreport: {out / 'summary.md'}")
    if failed:
        print(f"error: {len(failed)} variant(s) not searched: {', '.join(failed)}; run the same command again to "
              f"resume them", file=sys.stderr)
        sys.exit(1)


def _search_or_error(*args) -> dict:
    try:
        return search_variant(*args)
    except Exception as error:  # reported by the parent, after the other variants finished
        return {"error": f"{type(error).__name__}: {error}".splitlines()[0]}


def write_study_summaries(summaries: dict, path: Path, dataset: str, search_minutes: float,
                          retrain_minutes: float) -> None:
    lines = [f"# Hyper-parameter search: {dataset}", "",
             f"Every variant: the same number of trials over the same space (where a key applies); objective: the "
             f"best validation metric; test split never read. Wall time: search {search_minutes:.1f} min, "
             f"retraining {retrain_minutes:.1f} min.", "",
             "| study | trials (budget) | complete | pruned | failed | best validation | best trial | best parameters "
             "| training minutes | pruning saved (estimate, minutes) |", "|" + " --- |" * 10]
    for summary in summaries.values():
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in (summary["best_params"] or {}).items())
        best = f"{summary['best_value']:.4g}" if summary["best_value"] is not None else "–"
        lines.append(f"| {summary['study']} | {summary['COMPLETE'] + summary['PRUNED']} ({summary['budget_trials']}) | "
                     f"{summary['COMPLETE']} | {summary['PRUNED']} | {summary['FAIL']} | {best} | "
                     f"{summary['best_trial']} | {params} | {summary['training_minutes']:.1f} | "
                     f"{summary['pruning_saved_minutes_estimate']:.1f} |")
    path.write_text("\n".join(lines) + "\n")
    (path.with_suffix(".json")).write_text(json.dumps(summaries, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
