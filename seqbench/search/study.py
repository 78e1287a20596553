"""One variant's study: what identifies it (data, base config, space, budget), its trials asked,
run and told within the budget (repeats replaced by untried configurations, hopeless trials
pruned on the validation metric), and the choice among the best trials re-run on more seeds."""
from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .. import run as runner   # called as runner.run: tests replace seqbench.run.run
from ..config import config_hash
from ..record import short_hash
from ..runtime import quiet_third_party
from ..tasks import TASKS
from .progress import TrialWatch, _value
from .retraining import _quiet_runs, _settle
from .space import (SearchSpaceError, check_settings, checked_params, choice_reserve, compose, override_value,
                    variant_seed)
from .storage import StudyLock, _retry_abandoned, heartbeat, open_study
from .summary import _distinct_finished, _failures, summarise

log = logging.getLogger(__name__)

DUPLICATES_BEFORE_GIVING_UP = 25   # a safety net: repeats are replaced by untried points (see _untried)


def study_identity(settings: dict, base_config: dict, data_fingerprint: str, space: dict) -> dict:
    """What a study is: the data, the variant's base config, the space and the budget settings."""
    budget = {k: settings.get(k) for k in ("trials", "budget_epochs", "max_failed_trials", "search_seed",
                                            "sampler_seed", "startup_trials", "pruner_startup_trials",
                                            "pruner_warmup_epochs", "choice_top", "choice_seeds", "choice_epochs")}
    budget["sampler_streams"] = "per variant"   # before: one stream shared by every variant
    return {"data": {"name": base_config["dataset"]["name"], "fingerprint": data_fingerprint},
            "base_config": config_hash({k: v for k, v in base_config.items() if k != "hparams_search"}),
            "space": {k: str(v) for k, v in sorted(space.items())}, "budget": budget}


def study_name(dataset: str, variant: str, identity: dict) -> str:
    return f"{dataset}-{variant}-{short_hash(identity)[:8]}"


class PruneOnValidation:
    """A Lightning callback that reports each epoch's validation metric to the trial and stops
    training when the pruner says the trial is hopeless; the run's record says it was pruned."""

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

            def record_fields(self) -> dict:
                return {"pruned": True} if self.pruned else {}
        return _Pruning()


def _untried(space: dict, finished, seed: int, attempts: int = 200) -> dict | None:
    """A random configuration of ``space`` no finished trial has tried (None when a finite space
    is exhausted): what a repeat proposal is replaced by, so that TPE, which tends to propose its
    best point again on a small space, cannot stall the budget."""
    import optuna
    rng = random.Random(seed)
    tried = {json.dumps(t.params, sort_keys=True, default=str) for t in finished}
    finite = all(isinstance(d, optuna.distributions.CategoricalDistribution) or
                 (isinstance(d, optuna.distributions.IntDistribution) and not d.log) for d in space.values())
    if finite:
        values = [list(d.choices) if isinstance(d, optuna.distributions.CategoricalDistribution)
                  else list(range(d.low, d.high + 1, d.step)) for d in space.values()]
        options = [dict(zip(space, combination)) for combination in itertools.product(*values)]
        options = [o for o in options if json.dumps(o, sort_keys=True, default=str) not in tried]
        return rng.choice(options) if options else None
    for _ in range(attempts):
        draw = {}
        for key, d in space.items():
            if isinstance(d, optuna.distributions.CategoricalDistribution):
                draw[key] = rng.choice(list(d.choices))
            elif isinstance(d, optuna.distributions.IntDistribution):
                draw[key] = rng.randrange(d.low, d.high + 1, d.step)
            elif d.log:
                draw[key] = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
            else:
                draw[key] = rng.uniform(d.low, d.high)
        if json.dumps(draw, sort_keys=True, default=str) not in tried:
            return draw
    return None


def _best_so_far(study):
    from optuna.trial import TrialState
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        return None
    return (max if study.direction.name == "MAXIMIZE" else min)(complete, key=lambda t: t.value)


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of one variant's study shares: how its runs are composed, where they go, and
    the budget they spend."""
    config_dir: str
    overrides: list[str]
    variant: str
    root: Path
    extra_dirs: list[str] | None
    settings: dict
    space: dict
    name: str
    metric: str
    budget: int
    search_epochs: int | None   # the trials' share of budget_epochs (the rest is the choice's re-runs)
    epoch_cap: int
    max_failed: int


def search_variant(config_dir: str, overrides: list[str], variant: str, root: str, threads: int | None = None,
                   extra_dirs: list[str] | None = None) -> dict:
    """Run one variant's study up to its budget; returns a summary of the study."""
    import optuna
    import torch
    from omegaconf import OmegaConf
    quiet_third_party()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _quiet_runs()
    if threads:
        torch.set_num_threads(threads)
    root = Path(root)
    base = compose(config_dir, [*overrides, f"model={variant}"], extra_dirs)
    settings = OmegaConf.to_container(base.hparams_search, resolve=True)
    config = OmegaConf.to_container(base, resolve=True)
    space = check_settings(settings, {variant: config})[variant]
    prepared = runner.prepare(base)
    kind = TASKS[prepared.dataset.task]
    metric, direction = kind.metric, kind.direction
    dataset = base.dataset.name
    identity = study_identity(settings, config, prepared.identity.data, space)
    name = study_name(dataset, variant, identity)
    budget, budget_epochs = int(settings["trials"]), settings.get("budget_epochs")
    plan = TrialPlan(config_dir, overrides, variant, root, extra_dirs, settings, space, name, metric, budget,
                     budget_epochs - choice_reserve(settings) if budget_epochs else None,
                     int(base.trainer.max_epochs), int(settings.get("max_failed_trials") or max(3, budget // 2)))
    started = time.perf_counter()
    with StudyLock(root, name):
        study = _open_variant_study(plan, dataset, direction, identity)
        watch = TrialWatch(variant, budget, metric, direction == "max", len(settings.get("retrain_seeds") or []))
        watch.start(name, len(_distinct_finished(study.get_trials(deepcopy=False))))
        _run_trials(study, plan, watch)
        if not study.user_attrs.get("stopped"):
            choose_robustly(study, settings, config_dir, overrides, variant, root, extra_dirs, metric, plan.epoch_cap)
        return summarise(study, time.perf_counter() - started, plan.max_failed, budget_epochs)


def _open_variant_study(plan: TrialPlan, dataset: str, direction: str, identity: dict):
    """The variant's study, its identity and budget noted in it, trials a stopped process left
    running asked again."""
    settings, root, name = plan.settings, plan.root, plan.name
    probe = open_study(settings, root, dataset, name, direction)
    _note_other_studies(probe, dataset, plan.variant, name, identity)
    study = open_study(settings, root, dataset, name, direction,
                       finished=len(probe.get_trials(deepcopy=False)), variant=plan.variant)
    study.set_user_attr("identity", identity)
    study.set_user_attr("budget_trials", plan.budget)
    study.set_user_attr("variant", plan.variant)
    study.set_user_attr("objective", f"best validation {plan.metric} ({direction}), seed {settings['search_seed']}")
    study.set_user_attr("metric", plan.metric)
    _retry_abandoned(study)
    return study


def _run_trials(study, plan: TrialPlan, watch: TrialWatch) -> None:
    """Ask, run and tell trials until the budget is spent, too many failed, or the space holds no
    configuration beyond those tried (a repeat proposal is not run: an untried one replaces it)."""
    import optuna
    duplicates = 0
    while True:
        trials = study.get_trials(deepcopy=False)
        finished = _distinct_finished(trials)
        failed = _failures(trials)
        epochs = sum(int(t.user_attrs.get("epochs") or 0) for t in trials)
        if len(finished) >= plan.budget or (plan.search_epochs and epochs >= plan.search_epochs):
            return
        if len(failed) >= plan.max_failed:
            study.set_user_attr("stopped", f"{len(failed)} failed trials (max_failed_trials={plan.max_failed})")
            return
        if duplicates >= DUPLICATES_BEFORE_GIVING_UP:
            study.set_user_attr("stopped", f"the space holds no configuration beyond the {len(finished)} tried")
            return
        trial = study.ask(plan.space)
        try:  # an enqueued trial's parameters come from the database: data, checked against the space
            params = checked_params({k: trial.params[k] for k in plan.space}, plan.space,
                                    f"trial {trial.number} of study {plan.name}")
        except SearchSpaceError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        key = json.dumps(params, sort_keys=True, default=str)
        tried = finished + failed  # a configuration that failed on its own is not run again either
        same = next((t for t in tried if json.dumps(t.params, sort_keys=True, default=str) == key), None)
        if same is not None:  # a repeat of a tried trial: not run again, not counted
            trial.set_user_attr("duplicate_of", same.number)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            duplicates += 1
            untried = _untried(plan.space, tried, seed=variant_seed(plan.settings, plan.variant) + trial.number)
            if untried is None:  # every configuration of a finite space has been tried
                study.set_user_attr("stopped", f"the space holds no configuration beyond the {len(finished)} tried")
                return
            study.enqueue_trial(untried, user_attrs={"instead_of_repeat": trial.number})
            continue
        duplicates = 0
        _run_trial(study, trial, params, plan, watch, len(finished), len(failed), epochs)


def _run_trial(study, trial, params: dict, plan: TrialPlan, watch: TrialWatch, finished: int, failed: int,
               epochs: int) -> None:
    """One trial: its seqbench run (validation only, pruned on the median rule, cut to what is left of
    the epoch budget), told to the study as complete, pruned or failed."""
    import optuna
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    left = plan.search_epochs - epochs if plan.search_epochs else plan.epoch_cap
    if left < plan.epoch_cap:   # the last trial is cut to the budget: every variant trains the same epochs
        trial.set_user_attr("cut_to_epochs", left)
    cfg = compose(plan.config_dir, [*plan.overrides, f"model={plan.variant}", f"seed={plan.settings['search_seed']}",
                                    *[f"{k}={override_value(v)}" for k, v in params.items()],
                                    *([f"trainer.max_epochs={left}"] if left < plan.epoch_cap else []),
                                    f"paths.output_root={plan.root / 'trials'}", "claimed=wait"], plan.extra_dirs)
    metric = plan.metric
    pruning = PruneOnValidation(trial, f"val/{metric}")
    folder = plan.root / "trials" / plan.name / f"trial{trial.number:03d}"
    k = finished + 1   # what a person counts: the k-th distinct finished trial of the budget
    trial.set_user_attr("k", k)
    began = time.perf_counter()
    try:
        with heartbeat(study, trial, int(plan.settings.get("heartbeat_seconds", 30))):
            record = runner.run(cfg, folder, evaluate_test=False, extra_callbacks=[pruning],
                                tags={"search": {"study": plan.name, "trial": trial.number}})
    except Exception as error:  # a configuration the model refuses, a crash: a failure, counted
        # (Ctrl-C and SIGTERM are not Exceptions: they leave the trial to be asked again.)
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        first = str(error).splitlines()[0][:200] if str(error) else ""
        watch.ended(k, f"failed ({failed + 1} of at most {plan.max_failed}): {type(error).__name__}: {first}",
                    _best_so_far(study), finished, time.perf_counter() - began, params)
        return
    _settle(record, cfg)
    trial.set_user_attr("record", str(Path(record.get("output_dir", folder)) / "record.json"))
    trial.set_user_attr("epochs", record.get("epochs"))
    trial.set_user_attr("seconds", sum(s for s in record.get("epoch_seconds") or [] if s))
    value = (record.get("val_best") or {}).get(metric)
    trial.set_user_attr("val_best", value)   # a pruned trial's too: the budget curves draw on every trial
    trained = None if record.get("reused_from") else time.perf_counter() - began   # reused: no work
    if record.get("status") != "done" or value is None or not math.isfinite(value):
        trial.set_user_attr("error", f"run {record.get('status')}: {record.get('error', '')}"[:500])
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        watch.ended(k, f"failed ({failed + 1} of at most {plan.max_failed}): run {record.get('status')}",
                    _best_so_far(study), finished, trained, params)
    elif pruning.pruned or record.get("pruned"):
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        watch.ended(k, f"pruned after epoch {record.get('epochs')}, val {metric} {_value(value)}",
                    _best_so_far(study), k, trained, params)
    else:
        study.tell(trial, value)
        watch.ended(k, f"val {metric} {_value(value)}" + (" (reused)" if trained is None else ""),
                    _best_so_far(study), k, trained, params, complete=True)


def choose_robustly(study, settings: dict, config_dir: str, overrides: list[str], variant: str, root: Path,
                    extra_dirs: list[str] | None, metric: str, epoch_cap: int) -> None:
    """Re-run the ``choice_top`` best complete trials on ``choice_seeds`` more seeds (seed by seed,
    so a budget that runs out leaves the candidates with equal seeds as far as it can), within
    ``choice_epochs`` epochs; record the re-runs in the study (``summarise`` picks the best mean).
    One run's validation score is as noisy as the gaps between trials; the mean of three is less
    so. A resumed search finds these runs done and reuses them (their epochs still count)."""
    top, seeds, allowed = (int(settings.get(k) or 0) for k in ("choice_top", "choice_seeds", "choice_epochs"))
    complete = [t for t in _distinct_finished(study.get_trials(deepcopy=False)) if t.state.name == "COMPLETE"]
    if not (top and seeds and allowed) or len(complete) < 2:
        return
    higher = study.direction.name == "MAXIMIZE"
    candidates = sorted(complete, key=lambda t: t.value, reverse=higher)[:top]
    runs, spent = [], 0
    for offset in range(1, seeds + 1):
        seed = int(settings["search_seed"]) + offset
        for trial in candidates:
            left = allowed - spent
            if left <= 0:
                break
            cfg = compose(config_dir, [*overrides, f"model={variant}", f"seed={seed}",
                                       *[f"{k}={override_value(v)}" for k, v in trial.params.items()],
                                       *([f"trainer.max_epochs={left}"] if left < epoch_cap else []),
                                       f"paths.output_root={root / 'choice'}", "claimed=wait"], extra_dirs)
            record = runner.run(cfg, root / "choice" / study.study_name / f"trial{trial.number:03d}_s{seed}",
                                evaluate_test=False,
                                tags={"search": {"study": study.study_name, "choice_of": trial.number}})
            _settle(record, cfg)
            epochs = int(record.get("epochs") or 0)
            spent += epochs
            value = (record.get("val_best") or {}).get(metric) if record.get("status") == "done" else None
            cut = left < epoch_cap and epochs >= left   # stopped by the budget, not by early stopping
            runs.append({"trial": trial.number, "seed": seed, "epochs": epochs, "cut": cut,
                         "seconds": sum(s for s in record.get("epoch_seconds") or [] if s),
                         "value": None if cut or value is None or not math.isfinite(value) else value})
            print(f"{variant}: choice re-run of trial {trial.user_attrs.get('k', trial.number + 1)} on seed {seed}: "
                  + (f"val {metric} {_value(value)}" if value is not None else record.get("status", "?"))
                  + (" (cut by the budget: its score not counted)" if cut else ""), flush=True)
    study.set_user_attr("choice", {"candidates": [t.number for t in candidates], "runs": runs, "epochs": spent})


def _note_other_studies(study, dataset: str, variant: str, name: str, identity: dict) -> None:
    """Say when this variant was searched before with another space or budget: that study stays
    as it was, and this is a new one."""
    for other in study._storage.get_all_studies():
        if other.study_name.startswith(f"{dataset}-{variant}-") and other.study_name != name:
            previous = other.user_attrs.get("identity") or {}
            changed = [part for part in ("data", "base_config", "space", "budget")
                       if previous.get(part) != identity.get(part)]
            log.warning("%s: a study of %s with another %s exists (%s); this search starts a new study", name, variant,
                        " and ".join(changed) or "identity", other.study_name)
