"""Where studies live and who works on them: the study database (SQLite beside the search, or any
SQL URL Optuna accepts) opened with one-line errors, a study opened with its seeded sampler and
pruner, the lock that keeps one process at a time on a study, the heartbeat of a running trial,
and trials a stopped process left running, asked again."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import warnings
from pathlib import Path

from ..files import check_regular, open_lock
from .space import SearchSpaceError, startup_trials, variant_seed

log = logging.getLogger(__name__)


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


class StudyLock:
    """One process at a time on a study: an exclusive lock beside the database (a second search of
    the same study waits, then finds the budget spent and reuses the retrained runs)."""

    def __init__(self, root: Path, name: str):
        import fcntl
        self.path = root / ".locks" / f"{name}.lock"
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
