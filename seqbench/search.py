"""``seqbench search hparams_search=trec [overrides...]``: the same tuning budget for every
model variant, then retraining over seeds and a report with tuned beside default figures.

The protocol (Melis et al. 2018; Lucic et al. 2018: rankings change once every model gets the
same tuning budget):

1. The search space (``conf/hparams_search/<name>.yaml``, in Hydra's override syntax:
   ``optimizer.lr: tag(log, interval(1e-4, 1e-2))``, ``model.hidden_size: choice(64, 128, 256)``)
   is checked before anything runs: unknown keys (with the nearest valid one), an empty space,
   reversed or non-positive log intervals, ``trials < 1`` are one line and exit 2.
2. For each variant, an Optuna study runs the same number of *distinct, finished* trials over the
   same space (the keys that apply to the variant). A study's identity is the data (name and file
   fingerprint), the variant's base config, the space itself and the budget settings: a changed
   space or other data is a new study, never a continuation of an old one. The objective is always
   the best *validation* metric of a seqbench run (seed ``search_seed``); the test split is never
   read. A seeded TPE sampler, each variant's from its own stream (``sampler_seed`` and the
   variant's name), so no two variants start from the same random points; at most a third of the
   trials are random startup trials; hopeless trials are pruned on the per-epoch validation metric
   (median rule). Equal compute: ``budget_epochs`` bounds the training epochs of each study, pruned
   trials and the choice's re-runs included (a trial that would overrun it is cut to what is left),
   beside ``trials`` as a cap; the report says which bound each study and its seconds.
   The choice is robust to seed noise: the ``choice_top`` best trials are re-run on ``choice_seeds``
   more seeds within ``choice_epochs`` of the budget, and the best mean wins (a re-run cut by the
   budget counts its epochs, not its score).
3. A study lives in a database (SQLite in the search folder by default, or any SQL URL Optuna
   accepts), and one process at a time works on it (a lock beside it; a second search waits). A
   killed search resumes: a trial left running by a dead process is failed and asked again with
   its own parameters (its seqbench run resumes from its checkpoint), never counted twice;
   proposals equal to a finished trial are not run again; failures count against
   ``max_failed_trials`` and a variant that reaches it is reported as failed, never "tuned".
4. Each variant's best configuration is retrained over ``retrain_seeds`` (by default the seeds of
   the default grid, so tuned and default runs pair up) into folders keyed by the study, and tested
   once; the report sets the tuned figures beside the default ones. Optuna's own plots
   (optimisation history, parameter importances, slices) are in report.html, importances with a
   caveat when there are too few trials for them to mean anything.
5. SIGINT/SIGTERM stop the search cleanly: what finished is reported, the command says how to
   resume, and it exits 130/143.
6. It can be watched: trial k of N per variant with its value (pruned, failed), the best so far
   and the time left (from the trials trained here, reused ones left out); one rounded line per
   variant at the end, then the verdict and table in the terminal.

Why Optuna directly (through Hydra's compose API) and not Hydra's optuna sweeper plugin: the
plugin (1.3.0) pins optuna<3, and its sweeper runs one study per command line; here each
variant needs its own study with an equal budget, a pruner fed from inside the Lightning loop,
and resumption of killed trials, which a current Optuna's ask/tell interface gives directly.
"""
from __future__ import annotations

import argparse
import difflib
import json
import logging
import math
import os
import signal
import socket
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from . import SeqbenchError
from .files import check_regular
from .names import variant_of
from .runtime import Interrupted, argument_parser, at_least_one, default_threads, entry_point, stop_on_signals

log = logging.getLogger(__name__)
COUNTED = ("COMPLETE", "PRUNED")  # trial states that use up the budget
DUPLICATES_BEFORE_GIVING_UP = 25   # a safety net: repeats are replaced by untried points (see _untried)


class SearchSpaceError(SeqbenchError):
    pass


# ------------------------------------------------------------------------------ search spaces
def distributions(space: dict) -> dict:
    """Hydra override syntax -> Optuna distributions: ``choice(...)`` -> categorical,
    ``interval(a, b)`` -> float (int when both ends are ints), ``range(a, b[, step])`` -> int,
    ``tag(log, ...)`` -> log scale. A malformed, reversed, empty or non-positive log range is a
    ``SearchSpaceError`` naming the key."""
    import optuna
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import HydraException
    parser = OverridesParser.create()
    out = {}
    for key, text in flatten_space(space).items():
        where = f"hparams_search.space.{key}={text!r}"
        try:
            value = parser.parse_override(f"{key}={text}").value()
        except HydraException as error:
            raise SearchSpaceError(f"{where}: not Hydra's override syntax ({str(error).splitlines()[0]}); use "
                                   f"choice(...), interval(a, b), range(a, b) or tag(log, interval(a, b))") from None
        log_scale = "log" in getattr(value, "tags", set())
        if isinstance(value, ChoiceSweep):
            if not value.list:
                raise SearchSpaceError(f"{where}: an empty choice")
            out[key] = optuna.distributions.CategoricalDistribution(list(value.list))
        elif isinstance(value, RangeSweep):
            if value.stop <= value.start:
                raise SearchSpaceError(f"{where}: the range is empty (its end must be above its start)")
            out[key] = optuna.distributions.IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
        elif isinstance(value, IntervalSweep):
            if value.end < value.start:
                raise SearchSpaceError(f"{where}: the interval is reversed (interval({value.end}, {value.start}) "
                                       f"perhaps)")
            if log_scale and value.start <= 0:
                raise SearchSpaceError(f"{where}: a log-scale interval needs a start above 0")
            if isinstance(value.start, int) and isinstance(value.end, int):
                out[key] = optuna.distributions.IntDistribution(value.start, value.end, log=log_scale)
            else:
                out[key] = optuna.distributions.FloatDistribution(float(value.start), float(value.end), log=log_scale)
        else:
            raise SearchSpaceError(f"{where}: use choice(...), interval(a, b), range(a, b) or tag(log, interval(a, b))")
    return out


def flatten_space(space: dict, prefix: str = "") -> dict:
    """``{"optimizer.lr": ...}`` as written in a YAML file, or ``{"optimizer": {"lr": ...}}`` as a
    dotted command-line override builds it: the same flat keys."""
    out = {}
    for key, value in space.items():
        if isinstance(value, dict):
            out.update(flatten_space(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
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


def _flat_keys(config: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in config.items():
        keys.add(f"{prefix}{key}")
        if isinstance(value, dict):
            keys |= _flat_keys(value, f"{prefix}{key}.")
    return keys


def check_settings(settings: dict, variants: dict[str, dict]) -> dict[str, dict]:
    """Check a search before anything runs; return each variant's space (the keys that apply).
    ``variants``: variant -> its composed, resolved config."""
    trials = settings.get("trials")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise SearchSpaceError(f"hparams_search.trials={trials!r}: must be a whole number >= 1 (the budget of every "
                               f"variant)")
    if not settings.get("variants"):
        raise SearchSpaceError("hparams_search.variants is empty: name the model variants to tune")
    space_text = settings.get("space") or {}
    if not space_text:
        raise SearchSpaceError("hparams_search.space is empty: a search with nothing to vary would retrain one "
                               "configuration and call it tuned")
    for key in ("max_failed_trials", "budget_epochs"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SearchSpaceError(f"hparams_search.{key}={value!r}: must be a whole number >= 1 (or null)")
    for key in ("choice_top", "choice_seeds", "choice_epochs"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise SearchSpaceError(f"hparams_search.{key}={value!r}: must be a whole number >= 0 (or null)")
    if choice_reserve(settings) and not (settings.get("budget_epochs") or 0) > choice_reserve(settings):
        raise SearchSpaceError(f"hparams_search.choice_epochs={settings['choice_epochs']} leaves no epoch of "
                               f"budget_epochs={settings.get('budget_epochs')} for the trials: make budget_epochs "
                               f"larger than choice_epochs")
    space = distributions(space_text)
    known = set().union(*(_flat_keys(config) for config in variants.values()))
    for key in space:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            raise SearchSpaceError(f"hparams_search.space.{key}: unknown key" +
                                   (f"; did you mean {close[0]!r}?" if close else "") +
                                   " (a key of the composed config: model.*, optimizer.*, dataset.*, trainer.*)")
    out = {}
    for variant, config in variants.items():
        chosen = {k: v for k, v in space.items() if applies(k, config["model"])}
        if not chosen:
            raise SearchSpaceError(f"no key of hparams_search.space applies to {variant} ({', '.join(space)}): its "
                                   f"search would vary nothing")
        out[variant] = chosen
    return out


def choice_reserve(settings: dict) -> int:
    """The epochs of ``budget_epochs`` kept for the choice's re-runs: none where nothing is re-run."""
    active = settings.get("choice_top") and settings.get("choice_seeds")
    return int(settings.get("choice_epochs") or 0) if active and settings.get("budget_epochs") else 0


def override_value(value) -> str:
    return str(value) if not isinstance(value, float) else repr(value)


# --------------------------------------------------------------------------------- identity
def study_identity(settings: dict, base_config: dict, data_fingerprint: str, space: dict) -> dict:
    """What a study is: the data, the variant's base config, the space and the budget settings."""
    from .config import config_hash
    budget = {k: settings.get(k) for k in ("trials", "budget_epochs", "max_failed_trials", "search_seed",
                                            "sampler_seed", "startup_trials", "pruner_startup_trials",
                                            "pruner_warmup_epochs", "choice_top", "choice_seeds", "choice_epochs")}
    budget["sampler_streams"] = "per variant"   # before: one stream shared by every variant
    return {"data": {"name": base_config["dataset"]["name"], "fingerprint": data_fingerprint},
            "base_config": config_hash({k: v for k, v in base_config.items() if k != "hparams_search"}),
            "space": {k: str(v) for k, v in sorted(space.items())}, "budget": budget}


def study_name(dataset: str, variant: str, identity: dict) -> str:
    from .record import short_hash
    return f"{dataset}-{variant}-{short_hash(identity)[:8]}"


# -------------------------------------------------------------------------------------- trials
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


SPACE_PREFIX = "hparams_search.space."


def space_overrides(overrides: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """(the other overrides, {space key: its text, None to remove it}) from a search's command line.
    A space value (``choice(32, 64)``, ``tag(log, interval(1e-4, 1e-2))``) is text the search parses
    itself, as it is in conf/hparams_search/*.yaml: Hydra would read it as a sweep of this command."""
    rest, space = [], {}
    for text in overrides:
        bare = text.lstrip("+~")
        if not bare.startswith(SPACE_PREFIX):
            rest.append(text)
            continue
        key, equals, value = bare[len(SPACE_PREFIX):].partition("=")
        if text.startswith("~"):
            space[key] = None
            continue
        if not key or not equals:
            raise SearchSpaceError(f"{text!r}: a space key is {SPACE_PREFIX}KEY=VALUE, e.g. \"{SPACE_PREFIX}"
                                   f"optimizer.lr=tag(log, interval(1e-4, 1e-2))\" (quoted for the shell)")
        value = value.strip()
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":  # quoted for Hydra: the same text
            value = value[1:-1]
        space[key] = value
    return rest, space


def _set_space(space, key: str, value: str | None) -> None:
    """One spelling per key: ``optimizer.lr`` flat, as the YAML files write it (a nested copy of the
    same key, ``optimizer: {lr: ...}``, is dropped so that the two never disagree)."""
    node, parts = space, key.split(".")
    for part in parts[:-1]:
        node = node.get(part) if hasattr(node, "get") else None
        if node is None:
            break
    else:
        if hasattr(node, "pop"):
            node.pop(parts[-1], None)
    space.pop(key, None)
    if value is not None:
        space[key] = value


def compose(config_dir: str, overrides: list[str], extra_dirs: list[str] | None = None):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import open_dict

    from .names import register_resolvers
    register_resolvers()
    from .runtime import search_path
    overrides, space = space_overrides(overrides)
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[*search_path(extra_dirs), *overrides])
    if space:
        if not cfg.get("hparams_search"):
            raise SearchSpaceError(f"{SPACE_PREFIX}...: name the search first, hparams_search=<name>")
        with open_dict(cfg):
            if cfg.hparams_search.get("space") is None:
                cfg.hparams_search.space = {}
            for key, value in space.items():
                _set_space(cfg.hparams_search.space, key, value)
    return cfg


def checked_params(params: dict, space: dict, where: str) -> dict:
    """A trial's parameters as overrides, only as this search's space allows them: a study database
    is data, and a key or a value it holds beyond the space (an edited database) is refused."""
    out = {}
    for key, value in (params or {}).items():
        distribution = space.get(key)
        if distribution is None:
            raise SearchSpaceError(f"{where} sets {key!r}, which is not in hparams_search.space: a study database "
                                   f"never adds settings; move the database aside to start the study afresh")
        try:
            fits = isinstance(value, (bool, int, float, str)) and distribution._contains(
                distribution.to_internal_repr(value))
        except (TypeError, ValueError):
            fits = False
        if not fits:
            raise SearchSpaceError(f"{where} sets {key}={value!r}, outside hparams_search.space.{key}: move the "
                                   f"database aside to start the study afresh")
        out[key] = value
    return out


def storage_url(settings: dict, root: Path, dataset: str) -> str:
    return settings.get("storage") or f"sqlite:///{(root / f'{dataset}.db').resolve()}"


# Database drivers by the module SQLAlchemy failed to import, as pip installs them.
DRIVERS = {"psycopg2": "pip install psycopg2-binary",
           "psycopg": "pip install 'psycopg[binary]' (or pip install psycopg2-binary and write "
                      "postgresql+psycopg2://...)",
           "pymysql": "pip install pymysql", "MySQLdb": "pip install mysqlclient", "pyodbc": "pip install pyodbc",
           "oracledb": "pip install oracledb", "asyncpg": "pip install asyncpg"}


def _storage_error(url: str, error: Exception) -> SearchSpaceError:
    """A database that cannot be opened, in one line: a corrupt file, a missing driver, a server
    that does not answer."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    causes, cause = [], error
    while cause is not None and len(causes) < 10:  # Optuna wraps the driver's ImportError in its own error
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    missing = next((c for c in reversed(causes) if isinstance(c, ImportError)), None)  # the deepest: the driver
    if missing is not None or "NoSuchModule" in type(error).__name__ or "No module" in text \
            or "DB access module" in text:
        module = (getattr(missing, "name", None) or "").split(".")[0]
        install = DRIVERS.get(module) or (f"pip install {module}" if module else
                                          "install the database driver SQLAlchemy needs for this URL")
        found = f" ({type(missing).__name__}: {missing})" if missing is not None else ""
        return SearchSpaceError(f"cannot open the study storage {url}: its database driver is not installed{found}; "
                                f"{install}")
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return SearchSpaceError(f"{path} is not a readable study database ({text}); move it aside "
                                f"(mv {path} {path}.bad) to start the studies afresh, or restore it from a copy")
    return SearchSpaceError(f"cannot open the study storage {url}: {text}; check that the server runs and the URL")


def open_storage(settings: dict, root: Path, dataset: str, heartbeat: bool = True):
    import warnings

    import optuna
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    url = storage_url(settings, root, dataset)
    if url.startswith("sqlite:///"):  # SQLite would wait for ever on a FIFO named like the database
        check_regular(url.removeprefix("sqlite:///"), "study database")
    options = ({"heartbeat_interval": int(settings.get("heartbeat_seconds", 30)),
                "grace_period": int(settings.get("grace_seconds", 120))} if heartbeat else {})
    try:
        return optuna.storages.RDBStorage(url, **options)
    except Exception as error:  # sqlalchemy's DatabaseError/OperationalError, a missing driver, ...
        raise _storage_error(url, error) from None


def variant_seed(settings: dict, variant: str) -> int:
    """The seed of a variant's own random stream (its start-up trials, its replacements of repeats):
    from ``sampler_seed`` and the variant's name, so variants do not share their random points."""
    import zlib
    return zlib.crc32(f"{int(settings['sampler_seed'])}:{variant}".encode()) % 1_000_000_007


def startup_trials(settings: dict) -> int:
    """The sampler's random start-up: ``startup_trials``, at most a third of the budget (so that
    the model-based part has trials at all)."""
    return min(int(settings.get("startup_trials", 5)), max(1, int(settings["trials"]) // 3))


def budget_warnings(settings: dict) -> list[str]:
    """What a budget too small for its sampler or its pruner leaves undone, said before it starts."""
    trials = int(settings["trials"])
    asked, startup = int(settings.get("startup_trials", 5)), startup_trials(settings)
    pruner = int(settings.get("pruner_startup_trials", 3))
    out = []
    if startup < asked or trials - startup < 2:
        out.append(f"hparams_search.trials={trials} leaves {startup} random start-up trial(s) of the {asked} asked "
                   f"(startup_trials) and {trials - startup} guided by the TPE sampler, which then models the space "
                   f"from {startup} point(s): close to a random search; at least {3 * asked} trials let it leave "
                   f"its start-up as configured")
    if trials <= pruner:
        out.append(f"hparams_search.trials={trials}: the pruner never prunes (it starts after "
                   f"{pruner} complete trials, pruner_startup_trials); every trial trains to its end")
    return out


def open_study(settings: dict, root: Path, dataset: str, name: str, direction: str, finished: int = 0,
               variant: str = ""):
    """The study called ``name`` (created if new). The sampler's seed moves on with the trials
    already in the study, so a resumed search does not propose its first trials again."""
    import optuna
    storage = open_storage(settings, root, dataset)
    startup = startup_trials(settings)
    sampler = optuna.samplers.TPESampler(seed=variant_seed(settings, variant) + finished, n_startup_trials=startup)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=int(settings.get("pruner_startup_trials", 3)),
                                         n_warmup_steps=int(settings.get("pruner_warmup_epochs", 2)))
    for attempt in range(5):  # several workers may create their studies at the same moment
        try:
            return optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                       direction="maximize" if direction == "max" else "minimize",
                                       load_if_exists=True)
        except Exception as error:  # sqlalchemy's OperationalError / IntegrityError: the database was busy
            if attempt == 4 or "sqlalchemy" not in type(error).__module__:
                raise
            time.sleep(0.5 * (attempt + 1))


def prepare_storage(settings: dict, root: Path, dataset: str) -> None:
    """Create the database's tables once, before parallel workers open it (two processes creating
    the schema of one fresh SQLite file at once collide), and check it can be read at all."""
    open_storage(settings, root, dataset, heartbeat=False).get_all_studies()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _retry_abandoned(study) -> None:
    """Trials a dead process left RUNNING: failed, and asked again with the same parameters (the
    seqbench run of the same config resumes from its checkpoint). A process on this machine is
    known dead at once; one elsewhere once its heartbeat is stale."""
    import warnings

    import optuna
    from optuna.trial import TrialState
    host = socket.gethostname()
    running = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    abandoned = [t for t in running if t.user_attrs.get("host") == host and not _alive(int(t.user_attrs.get("pid", 0)))]
    for trial in abandoned:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental feature"
        optuna.storages.fail_stale_trials(study)
    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    for trial in study.get_trials(deepcopy=False):
        if trial.number in {t.number for t in running} and trial.state == TrialState.FAIL \
                and trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            log.warning("%s: trial %d was left running by a stopped search: asked again with its parameters",
                        study.study_name, trial.number)


def _failures(trials) -> list:
    """Trials that failed on their own: not repeats of a finished trial (never run), not trials a
    stopped process left behind (asked again)."""
    retried = {t.user_attrs.get("retry_of") for t in trials}
    return [t for t in trials if t.state.name == "FAIL" and t.user_attrs.get("duplicate_of") is None
            and t.number not in retried]


def _untried(space: dict, finished, seed: int, attempts: int = 200) -> dict | None:
    """A random configuration of ``space`` no finished trial has tried (None when a finite space
    is exhausted): what a repeat proposal is replaced by, so that TPE, which tends to propose its
    best point again on a small space, cannot stall the budget."""
    import itertools
    import random

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


def _distinct_finished(trials) -> list:
    """Finished trials, one per distinct set of parameters (the first)."""
    seen, out = set(), []
    for trial in trials:
        if trial.state.name in COUNTED:
            key = json.dumps(trial.params, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(trial)
    return out


class StudyLock:
    """One process at a time on a study: an exclusive lock beside the database (a second search of
    the same study waits, then finds the budget spent and reuses the retrained runs)."""

    def __init__(self, root: Path, name: str):
        import fcntl
        self.path = root / ".locks" / f"{name}.lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        from .files import open_lock
        self.handle = open_lock(self.path, "study lock")   # never through a link, never a FIFO
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            log.warning("waiting: another search process (%s) is on study %s", self.handle.read().strip() or "?",
                        name)
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        self.handle.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import fcntl
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        return False


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


def _minutes(seconds: float) -> str:
    return "under a minute" if seconds < 60 else f"about {seconds / 60:.0f} min"


def _value(value) -> str:
    """A metric as a person reads it: three significant digits."""
    return "–" if value is None else f"{value:.3g}"


class TrialWatch:
    """What a person watching a search sees of one variant, a line as each trial ends: trial k of
    N with its value (or pruned, failed), the best so far, and the time left, estimated from the
    trials this search trained (a run reused from an earlier search took seconds and is left out),
    with the retraining after the search. Printed (flushed) from whichever process runs the study."""

    def __init__(self, variant: str, budget: int, metric: str, higher: bool, retrain_seeds: int):
        self.variant, self.budget, self.metric, self.higher = variant, budget, metric, higher
        self.retrain_seeds = retrain_seeds
        self.trained: list[float] = []      # wall seconds of trials trained here
        self.complete: list[float] = []     # of those that ran to the end (what a retraining costs)

    def say(self, text: str) -> None:
        print(f"{self.variant}: {text}", flush=True)

    def start(self, name: str, finished: int) -> None:
        done = f"{finished} finished before, " if finished else ""
        self.say(f"study {name}: {done}{max(self.budget - finished, 0)} of {self.budget} trials to run, then "
                 f"{self.retrain_seeds} retraining seed{'s' if self.retrain_seeds != 1 else ''}")

    def time_left(self, finished: int) -> str:
        if not self.trained:
            return ""
        per_trial = sum(self.trained) / len(self.trained)
        per_run = sum(self.complete) / len(self.complete) if self.complete else per_trial
        left = max(self.budget - finished, 0) * per_trial + self.retrain_seeds * per_run
        return f"; {_minutes(left)} left for {self.variant} (retraining included)"

    def ended(self, number: int, outcome: str, best, finished: int, seconds: float | None, params: dict,
              complete: bool = False) -> None:
        from .report import parameter_words
        if seconds is not None:
            self.trained.append(seconds)
            if complete:
                self.complete.append(seconds)
        best_words = f"; best so far {_value(best.value)} (trial {best.user_attrs.get('k', best.number + 1)})" \
            if best is not None else ""
        self.say(f"trial {number} of {self.budget}: {outcome} ({parameter_words(params)}){best_words}"
                 f"{self.time_left(finished)}")


def _best_so_far(study):
    from optuna.trial import TrialState
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not complete:
        return None
    return (max if study.direction.name == "MAXIMIZE" else min)(complete, key=lambda t: t.value)


def search_variant(config_dir: str, overrides: list[str], variant: str, root: str, threads: int | None = None,
                   extra_dirs: list[str] | None = None) -> dict:
    """Run one variant's study up to its budget; returns a summary of the study."""
    import optuna
    import torch
    from omegaconf import OmegaConf

    from .run import prepare, run
    from .runtime import quiet_third_party
    from .tasks import TASKS
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
    prepared = prepare(base)
    kind = TASKS[prepared.dataset.task]
    metric, direction = kind.metric, kind.direction
    dataset = base.dataset.name
    identity = study_identity(settings, config, prepared.identity.data, space)
    name = study_name(dataset, variant, identity)
    budget, budget_epochs = int(settings["trials"]), settings.get("budget_epochs")
    # The trials' share of the epoch budget; the rest is the choice's (re-runs of the best trials).
    search_epochs = budget_epochs - choice_reserve(settings) if budget_epochs else None
    epoch_cap = int(base.trainer.max_epochs)
    max_failed = int(settings.get("max_failed_trials") or max(3, budget // 2))
    started = time.perf_counter()
    with StudyLock(root, name):
        probe = open_study(settings, root, dataset, name, direction)
        _note_other_studies(probe, dataset, variant, name, identity)
        study = open_study(settings, root, dataset, name, direction,
                           finished=len(probe.get_trials(deepcopy=False)), variant=variant)
        study.set_user_attr("identity", identity)
        study.set_user_attr("budget_trials", budget)
        study.set_user_attr("variant", variant)
        study.set_user_attr("objective", f"best validation {metric} ({direction}), seed {settings['search_seed']}")
        study.set_user_attr("metric", metric)
        _retry_abandoned(study)
        watch = TrialWatch(variant, budget, metric, direction == "max", len(settings.get("retrain_seeds") or []))
        watch.start(name, len(_distinct_finished(study.get_trials(deepcopy=False))))
        duplicates = 0
        while True:
            trials = study.get_trials(deepcopy=False)
            finished = _distinct_finished(trials)
            failed = _failures(trials)
            epochs = sum(int(t.user_attrs.get("epochs") or 0) for t in trials)
            if len(finished) >= budget or (search_epochs and epochs >= search_epochs):
                break
            if len(failed) >= max_failed:
                study.set_user_attr("stopped", f"{len(failed)} failed trials (max_failed_trials={max_failed})")
                break
            if duplicates >= DUPLICATES_BEFORE_GIVING_UP:
                study.set_user_attr("stopped", f"the space holds no configuration beyond the {len(finished)} tried")
                break
            trial = study.ask(space)
            try:  # an enqueued trial's parameters come from the database: data, checked against the space
                params = checked_params({k: trial.params[k] for k in space}, space,
                                        f"trial {trial.number} of study {name}")
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
                untried = _untried(space, tried, seed=variant_seed(settings, variant) + trial.number)
                if untried is None:  # every configuration of a finite space has been tried
                    study.set_user_attr("stopped", f"the space holds no configuration beyond the {len(finished)} tried")
                    break
                study.enqueue_trial(untried, user_attrs={"instead_of_repeat": trial.number})
                continue
            duplicates = 0
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            left = search_epochs - epochs if search_epochs else epoch_cap
            if left < epoch_cap:   # the last trial is cut to the budget: every variant trains the same epochs
                trial.set_user_attr("cut_to_epochs", left)
            cfg = compose(config_dir, [*overrides, f"model={variant}", f"seed={settings['search_seed']}",
                                       *[f"{k}={override_value(v)}" for k, v in params.items()],
                                       *([f"trainer.max_epochs={left}"] if left < epoch_cap else []),
                                       f"paths.output_root={root / 'trials'}", "claimed=wait"], extra_dirs)
            pruning = PruneOnValidation(trial, f"val/{metric}")
            folder = root / "trials" / name / f"trial{trial.number:03d}"
            k = len(finished) + 1   # what a person counts: the k-th distinct finished trial of the budget
            trial.set_user_attr("k", k)
            began = time.perf_counter()
            try:
                with heartbeat(study, trial, int(settings.get("heartbeat_seconds", 30))):
                    record = run(cfg, folder, evaluate_test=False, extra_callbacks=[pruning],
                                 tags={"search": {"study": name, "trial": trial.number}})
            except Exception as error:  # a configuration the model refuses, a crash: a failure, counted
                # (Ctrl-C and SIGTERM are not Exceptions: they leave the trial to be asked again.)
                trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                first = str(error).splitlines()[0][:200] if str(error) else ""
                watch.ended(k, f"failed ({len(failed) + 1} of at most {max_failed}): {type(error).__name__}: {first}",
                            _best_so_far(study), len(finished), time.perf_counter() - began, params)
                continue
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
                watch.ended(k, f"failed ({len(failed) + 1} of at most {max_failed}): run {record.get('status')}",
                            _best_so_far(study), len(finished), trained, params)
            elif pruning.pruned or record.get("pruned"):
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                watch.ended(k, f"pruned after epoch {record.get('epochs')}, val {metric} {_value(value)}",
                            _best_so_far(study), k, trained, params)
            else:
                study.tell(trial, value)
                watch.ended(k, f"val {metric} {_value(value)}" + (" (reused)" if trained is None else ""),
                            _best_so_far(study), k, trained, params, complete=True)
        if not study.user_attrs.get("stopped"):
            choose_robustly(study, settings, config_dir, overrides, variant, root, extra_dirs, metric, epoch_cap)
        return summarise(study, time.perf_counter() - started, max_failed, budget_epochs)


def choose_robustly(study, settings: dict, config_dir: str, overrides: list[str], variant: str, root: Path,
                    extra_dirs: list[str] | None, metric: str, epoch_cap: int) -> None:
    """Re-run the ``choice_top`` best complete trials on ``choice_seeds`` more seeds (seed by seed,
    so a budget that runs out leaves the candidates with equal seeds as far as it can), within
    ``choice_epochs`` epochs; record the re-runs in the study (``summarise`` picks the best mean).
    One run's validation score is as noisy as the gaps between trials; the mean of three is less
    so. A resumed search finds these runs done and reuses them (their epochs still count)."""
    from .run import run
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
            record = run(cfg, root / "choice" / study.study_name / f"trial{trial.number:03d}_s{seed}",
                         evaluate_test=False, tags={"search": {"study": study.study_name, "choice_of": trial.number}})
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


def _chosen(complete: list, choice: dict | None, higher: bool):
    """The best complete trial by the mean of its own score and its re-runs' (``choose_robustly``),
    with that mean; without re-runs, the best single score."""
    if not complete:
        return None, None
    if not choice or not choice.get("runs"):
        best = (max if higher else min)(complete, key=lambda t: t.value)
        return best, best.value
    by_number = {t.number: t for t in complete}
    means = {}
    for number in choice["candidates"]:
        if number in by_number:
            scores = [by_number[number].value, *[r["value"] for r in choice["runs"]
                                                  if r["trial"] == number and r["value"] is not None]]
            means[number] = sum(scores) / len(scores)
    if not means:
        best = (max if higher else min)(complete, key=lambda t: t.value)
        return best, best.value
    number = (max if higher else min)(means, key=means.get)
    return by_number[number], means[number]


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


def summarise(study, seconds: float | None = None, max_failed: int | None = None,
              budget_epochs: int | None = None) -> dict:
    trials = study.get_trials(deepcopy=False)
    finished = _distinct_finished(trials)
    states = {state: sum(t.state.name == state for t in finished) for state in ("COMPLETE", "PRUNED")}
    states["FAIL"] = len(_failures(trials))
    states["RUNNING"] = sum(t.state.name == "RUNNING" for t in trials)
    duplicates = sum(t.user_attrs.get("duplicate_of") is not None for t in trials)
    complete = [t for t in finished if t.state.name == "COMPLETE"]
    higher = study.direction.name == "MAXIMIZE"
    choice = study.user_attrs.get("choice")
    best, best_value = _chosen(complete, choice, higher)
    epochs = [t.user_attrs.get("epochs") or 0 for t in trials]
    choice_runs = (choice or {}).get("runs") or []
    spent = sum(t.user_attrs.get("seconds") or 0 for t in trials) + sum(r.get("seconds") or 0 for r in choice_runs)
    pruned_epochs = sum(t.user_attrs.get("epochs") or 0 for t in finished if t.state.name == "PRUNED")
    full = [t.user_attrs.get("epochs") or 0 for t in complete]
    per_epoch = spent / sum(epochs) if sum(epochs) else 0.0
    saved = max(0.0, (states["PRUNED"] * (sum(full) / len(full)) - pruned_epochs) * per_epoch) if full else 0.0
    budget = study.user_attrs.get("budget_trials")
    stopped = study.user_attrs.get("stopped")
    if stopped:
        bound = f"stopped: {stopped}"
    elif budget_epochs and len(finished) < (budget or 0):
        bound = f"epochs ({sum(epochs) + sum(r['epochs'] for r in choice_runs)} of {budget_epochs})"
    else:
        bound = f"trials ({len(finished)} of {budget})"
    failed = bool(max_failed and states["FAIL"] >= max_failed) or not complete
    return {"study": study.study_name, "variant": study.user_attrs.get("variant"), "budget_trials": budget,
            "metric": study.user_attrs.get("metric"), **states,
            "duplicates": duplicates, "finished_distinct": len(finished),
            "epochs": sum(epochs) + sum(r["epochs"] for r in choice_runs), "search_epochs": sum(epochs),
            "choice_epochs": sum(r["epochs"] for r in choice_runs), "bound": bound,
            "failed": failed, "best_value": best_value,
            # numbered as the log counts trials (the k-th distinct finished one), not Optuna's 0-based ids
            "best_trial": best.user_attrs.get("k", best.number + 1) if best else None,
            "best_params": best.params if best else None, "choice": choice,
            # every distinct finished trial's best validation score, in trial order (budget curves)
            "trial_values": [t.value if t.state.name == "COMPLETE" else t.user_attrs.get("val_best")
                             for t in sorted(finished, key=lambda t: t.number)],
            "training_minutes": spent / 60,
            "wall_minutes_this_session": (seconds or 0) / 60, "pruning_saved_minutes_estimate": saved / 60}


# ----------------------------------------------------------------------------------- protocol
def retrain(config_dir: str, overrides: list[str], variant: str, params: dict, seeds: list[int], root: str,
            summary: dict, threads: int | None = None, extra_dirs: list[str] | None = None) -> list[dict]:
    """The variant's best configuration, trained and tested once per seed, in folders keyed by
    its study (claimed like any run: a second search waits for the first, then reuses)."""
    import torch

    from .run import run
    from .runtime import quiet_third_party
    quiet_third_party()
    _quiet_runs()
    if threads:
        torch.set_num_threads(threads)
    from omegaconf import OmegaConf
    base = compose(config_dir, [*overrides, f"model={variant}"], extra_dirs)
    settings = OmegaConf.to_container(base.hparams_search, resolve=True)
    space = check_settings(settings, {variant: OmegaConf.to_container(base, resolve=True)})[variant]
    params = checked_params(params, space, f"the best trial of study {summary['study']}")
    records, spent = [], []
    for seed in seeds:
        cfg = compose(config_dir, [*overrides, f"model={variant}", f"seed={seed}",
                                   *[f"{k}={override_value(v)}" for k, v in params.items()],
                                   f"paths.output_root={Path(root) / 'retrain'}", "claimed=wait"], extra_dirs)
        tags = {"tuned": {"study": summary["study"], "trials": summary["budget_trials"],
                          "best_trial": summary["best_trial"], "params": params}}
        folder = Path(root) / "retrain" / summary["study"] / f"s{seed}"
        began = time.perf_counter()
        record = run(cfg, folder, in_sweep=True, tags=tags)
        _settle(record, cfg)
        records.append(record)
        if not record.get("reused_from"):
            spent.append(time.perf_counter() - began)
        test = (record.get("test") or {}).get(summary.get("metric") or "")
        left = len(seeds) - len(records)
        outcome = (f"test {summary.get('metric')} {_value(test)}" if test is not None else f"{record.get('status')}")
        print(f"{variant} (tuned): retrained seed {seed} ({len(records)} of {len(seeds)}): {outcome}"
              + (" (reused)" if record.get("reused_from") else "")
              + (f"; {_minutes(left * sum(spent) / len(spent))} left" if left and spent else ""), flush=True)
    return records


def _settle(record: dict, cfg) -> None:
    """A finished trial or retrained run keeps its best weights only (``checkpoints=all``: all)."""
    from .checkpoints import settle
    try:
        settle(record, cfg.get("checkpoints", "best"))
    except Exception as error:   # the run is recorded; its files as written are no failure
        log.warning("checkpoints of %s kept as written: %s", record.get("output_dir"), error)


def _quiet_runs() -> None:
    """A search's runs say nothing of their own on the console (their epochs and plans are in their
    records and logs): the search's lines, trial by trial, are what a person watches."""
    for name in ("seqbench.progress", "seqbench.run"):
        logging.getLogger(name).setLevel(logging.WARNING)


TRIALS_PER_PARAMETER_FOR_IMPORTANCES = 10


def importance_caveat(complete: int, parameters: int) -> str | None:
    """Why a study's parameter importances may mean nothing: Optuna fits a random forest (fANOVA)
    to the completed trials; with fewer than about ten trials per searched parameter (a common
    rule of thumb for such fits) it describes noise."""
    wanted = TRIALS_PER_PARAMETER_FOR_IMPORTANCES * max(parameters, 1)
    if complete >= wanted:
        return None
    return (f"{complete} completed trial{'s' if complete != 1 else ''} for {parameters} parameter"
            f"{'s' if parameters != 1 else ''}: importances from so few trials mean little (about "
            f"{wanted}, {TRIALS_PER_PARAMETER_FOR_IMPORTANCES} per parameter, before they are worth reading)")


def write_plots(study_names: list[str], settings: dict, root: Path, dataset: str,
                out: Path | None = None) -> list[tuple[Path, str, str | None]]:
    """Optuna's own figures per study (optimisation history, parameter importances, slices) in
    ``out`` (the report's folder, whose report.html shows them): (path, caption, caveat or None).
    Drawing warnings (matplotlib's layout and category notices) stay out of the terminal."""
    import warnings

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as plots
    out = Path(out or root)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("matplotlib", "matplotlib.category"):   # "Using categorical units..." is logged at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    written = []
    storage = open_storage(settings, root, dataset, heartbeat=False)
    for name in study_names:
        study = optuna.load_study(study_name=name, storage=storage)
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not complete:
            continue
        parameters = len({key for t in complete for key in t.params})
        variant = study.user_attrs.get("variant") or name
        for kind, draw, caption in (
                ("history", plots.plot_optimization_history, f"{variant}: validation value of each trial"),
                ("importances", plots.plot_param_importances, f"{variant}: parameter importances (fANOVA)"),
                ("slices", plots.plot_slice, f"{variant}: each parameter against the validation value")):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    axes = draw(study)
                    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
                    if kind == "slices":  # a panel per parameter, wide enough that the colour bar covers none
                        figure.set_size_inches(max(6.0, 3.2 * parameters + 1.6), 3.8)
                        from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator
                        for panel in figure.axes:   # a narrow log axis: its minor labels overprint each other
                            if panel.get_xscale() == "log":
                                panel.xaxis.set_major_locator(MaxNLocator(3))
                                panel.xaxis.set_minor_locator(NullLocator())
                                panel.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2g}"))
                    else:
                        figure.set_size_inches(max(6.0, figure.get_size_inches()[0]), 4.5)
                        figure.tight_layout()
                    path = out / f"{name}_{kind}.png"
                    figure.savefig(path, dpi=100, bbox_inches="tight")
                plt.close(figure)
                caveat = importance_caveat(len(complete), parameters) if kind == "importances" else None
                written.append((path, caption, caveat))
            except (RuntimeError, ValueError) as error:  # e.g. importances need two completed trials
                log.info("%s: no %s plot (%s)", name, kind, error)
    return written


class _InProcess:
    """One job: no worker processes, the same interface."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(function, *iterables):
        return list(map(function, *iterables))


def _end_with_parent() -> None:
    """In a worker: end when the search that started it ends (Linux: the kernel sends SIGTERM;
    elsewhere a thread watches the parent), so no orphan keeps training after a crash."""
    parent = os.getppid()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    stop_on_signals()

    import threading

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(143)
            time.sleep(2)
    threading.Thread(target=watch, daemon=True).start()


def _pool(jobs: int):
    if jobs <= 1:
        return _InProcess()
    import multiprocessing
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_end_with_parent)


def _stop_workers(pool) -> None:
    """On Ctrl-C or SIGTERM: no new variant starts, and the workers stop now (their trials are
    asked again, and their runs resume, when the search runs again)."""
    if not isinstance(pool, ProcessPoolExecutor):
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _search_or_error(*args) -> dict:
    try:
        return search_variant(*args)
    except Exception as error:  # reported by the parent, after the other variants finished
        return {"error": f"{type(error).__name__}: {error}".splitlines()[0]}


def search_plan_line(root: Path, base, variants: list[str], settings: dict, jobs: int,
                     default_runs: list[str] | tuple = (), recorded: dict[str, str] | None = None) -> str:
    """Before the search starts: the trials and retrainings already finished (under the search
    folder and the output root), and the time the rest takes at the median wall time of finished
    runs of the same model on this data set (search trials included, and the ``--default-runs``
    folders, whose runs only time the others)."""
    import statistics

    from .results import load_records
    dataset = str(base.dataset.name)
    folders = [f for f in {root, Path(base.paths.output_root), *map(Path, default_runs)} if f.is_dir()]
    records = [r for r in load_records(folders, include_debug=True) if r.get("status") == "done"
               and r.get("dataset") == dataset] if folders else []
    trials, retrains = int(settings["trials"]), len(settings.get("retrain_seeds") or [])
    budget_epochs = settings.get("budget_epochs")
    left, seconds, done = 0, 0.0, 0
    unknown, outside = [], []
    for variant in variants:
        own = [r for r in records if r.get("model") == (recorded or {}).get(variant, variant)]
        # Timed by the runs inside the given space where there are any (a smaller hidden size trains faster).
        inside = [r for r in own if in_space(r, settings.get("space") or {})]
        if inside:
            own = inside
        elif own:
            outside.append(variant)
        # Only this search's trials and retrainings count as finished (the default runs are not part of it).
        finished = min(trials, sum(1 for r in own if r.get("search"))) + min(
            retrains, sum(1 for r in own if r.get("tuned")))
        done += finished
        remaining = trials + retrains - finished
        left += remaining
        times = [r["wall_seconds"] for r in own if isinstance(r.get("wall_seconds"), (int, float))]
        per_epoch = [r["wall_seconds"] / r["epochs"] for r in own
                     if isinstance(r.get("wall_seconds"), (int, float)) and r.get("epochs")]
        if remaining and times and budget_epochs and per_epoch:
            # an epoch budget: what is left of it at this model's seconds per epoch, then the retrainings
            spent = sum(int(r.get("epochs") or 0) for r in own if r.get("search"))
            seconds += (max(0, budget_epochs - spent) * statistics.median(per_epoch)
                        + (retrains - min(retrains, sum(1 for r in own if r.get("tuned")))) * statistics.median(times))
        elif remaining and times:
            seconds += remaining * statistics.median(times)
        elif remaining:
            unknown.append(variant)
    words = f"plan: {done} of {len(variants) * (trials + retrains)} trainings already finished, {left} to run"
    if seconds:
        words += (f"; about {seconds / 60:.0f} min of training at the median time of finished {dataset} runs of the "
                  f"same models" + (f", about {seconds / 60 / jobs:.0f} min with {jobs} at a time" if jobs > 1 else ""))
    if outside:
        words += (f"; {', '.join(outside)} timed by runs outside the given space (no run inside it yet): a rough "
                  f"guide")
    if unknown:
        words += f"; no finished {dataset} run of {', '.join(unknown)} yet to estimate from"
    return words


def in_space(record: dict, space: dict) -> bool:
    """Whether a run's settings lie in the search space, for every key of the space its config has."""
    config = record.get("config") or {}
    try:
        bounds = distributions(space)
    except SearchSpaceError:
        return False
    for key, distribution in bounds.items():
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        if hasattr(distribution, "choices"):
            if node not in distribution.choices:
                return False
        elif not (isinstance(node, (int, float)) and distribution.low <= node <= distribution.high):
            return False
    return True


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(prog="seqbench search", description=__doc__,
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from omegaconf import OmegaConf

    from .runtime import CONFIG_DIR
    if not any(o.startswith("hparams_search=") for o in args.overrides):
        raise SeqbenchError("name a search space: hparams_search=<name> (conf/hparams_search/, or your own with "
                            "--config-dir DIR holding hparams_search/<name>.yaml)")
    from .runtime import take_config_dirs, user_config_dirs
    # Into the environment too: the variant workers, and composition_error's list of valid options.
    take_config_dirs([word for folder in args.config_dir for word in ("--config-dir", folder)])
    args.config_dir = user_config_dirs()
    extra = list(args.config_dir)
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .composition import composition_error
    from .config import check_config
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
    root = Path(args.out or Path(base.paths.output_root) / "search")
    if not args.dry_run:
        root.mkdir(parents=True, exist_ok=True)
        prepare_storage(settings, root, base.dataset.name)
    threads = default_threads(args.jobs)  # one core left to the machine, or the cores divided among the jobs
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
    for warning in budget_warnings(settings):
        print(f"warning: {warning}", flush=True)
    if args.dry_run:
        return
    stop_on_signals()
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
        # One variant's failure neither hides nor stops the others: they are retrained and reported, and
        # the command says which failed and exits non-zero (rerunning it resumes the failed studies).
        for variant, outcome in zip(variants, outcomes):
            if "error" in outcome:
                failed[variant] = outcome["error"]
            elif outcome.get("failed"):
                failed[variant] = (f"{outcome['FAIL']} trials failed, {outcome['COMPLETE']} completed ({outcome['bound']}): "
                                   f"not tuned; change the space, or raise hparams_search.max_failed_trials (a new study)")
                summaries[variant] = outcome
            else:
                summaries[variant] = outcome
        for variant, error in failed.items():
            print(f"error: the search of {variant} failed: {error}", file=sys.stderr)
        tuned = [v for v in variants if v in summaries and not summaries[v].get("failed")]
        from .report import parameter_words
        for variant in tuned:
            summary = summaries[variant]
            print(f"{variant}: best validation {summary.get('metric') or 'metric'} {_value(summary['best_value'])} "
                  f"with {parameter_words(summary['best_params'] or {})} ({summary['COMPLETE']} complete, "
                  f"{summary['PRUNED']} pruned, {summary['FAIL']} failed; {summary['bound']}; study "
                  f"{summary['study']})", flush=True)
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


def _finish(args, root: Path, base, settings: dict, summaries: dict, timings: dict, interrupted: bool = False) -> None:
    """studies.md (+ .json), Optuna's plots, and the report of whatever finished."""
    from .report import build_report
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
    import shlex
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


def _stored_summaries(settings: dict, root: Path, dataset: str, variants: list[str]) -> dict:
    import optuna
    storage = open_storage(settings, root, dataset, heartbeat=False)
    out = {}
    for frozen in storage.get_all_studies():
        variant = frozen.user_attrs.get("variant")
        if variant in variants:
            study = optuna.load_study(study_name=frozen.study_name, storage=storage)
            out[frozen.study_name] = summarise(study)
    return out


def write_study_summaries(summaries: dict, path: Path, dataset: str, search_minutes: float,
                          retrain_minutes: float) -> None:
    lines = [f"# Hyper-parameter search: {dataset}", "",
             f"Every variant: the same budget (training epochs where budget_epochs is set, else distinct finished "
             f"trials) over the same space (where a key applies); "
             f"objective: the best validation metric; test split never read. Wall time: search {search_minutes:.1f} "
             f"min, retraining {retrain_minutes:.1f} min. \"Bound\": what ended each study. \"Best validation\": "
             f"the chosen trial's mean over its seed and its choice re-runs' seeds, where the best trials were "
             f"re-run (hparams_search.choice_top); budget curves in budget_curves.csv.", "",
             "| study | trials finished (budget) | complete | pruned | failed | repeats not run | bound | best validation "
             "| best trial | best parameters | training epochs (trials + choice) | training minutes "
             "| pruning saved (estimate, minutes) |",
             "|" + " --- |" * 13]
    for summary in summaries.values():
        from .report import parameter_words
        params = parameter_words(summary["best_params"] or {})
        best = f"{summary['best_value']:.4g}" if summary["best_value"] is not None else "–"
        lines.append(f"| {summary['study']} | {summary['finished_distinct']} ({summary['budget_trials']}) | "
                     f"{summary['COMPLETE']} | {summary['PRUNED']} | {summary['FAIL']} | {summary['duplicates']} | "
                     f"{summary['bound']}{' (failed: not tuned)' if summary.get('failed') else ''} | {best} | "
                     f"{summary['best_trial'] if summary['best_trial'] is not None else '–'} | {params} | "
                     f"{summary.get('search_epochs', summary['epochs'])} + {summary.get('choice_epochs', 0)} | "
                     f"{summary['training_minutes']:.1f} | {summary['pruning_saved_minutes_estimate']:.1f} |")
    path.write_text("\n".join(lines) + "\n")
    (path.with_suffix(".json")).write_text(json.dumps(summaries, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
