"""Hydra callbacks of a multirun, light to import (Hydra builds them before any run): how far a
sweep has got, printed as each job ends, and the report at the end."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback

from . import SeqbenchError
from .export import reused_into_sweep
from .files import read_json
from .record import FINISHED_STATUSES

PROGRESS_NAME = ".progress.json"


def sweep_size(overrides: list[str]) -> int:
    """How many jobs a basic sweep of these command-line overrides runs (the product of the
    number of values of each swept key)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    parser = OverridesParser.create()
    total = 1
    for override in parser.parse_overrides(overrides):
        if override.is_sweep_override():
            total *= len(list(override.sweep_string_iterator()))
    return total


def _counts(sweep_dir: Path, since: float | None = None) -> dict[str, int]:
    """Finished jobs of a sweep, from the records in its job folders. ``since`` (this invocation's
    start): only the jobs it has reached count (Hydra writes a job's .hydra/ files when it starts
    it), and a run an earlier invocation finished in this folder counts as reused, as the plan said."""
    counts = {"done": 0, "reused": 0, "failed": 0, "other": 0}
    for path in sweep_dir.glob("*/record.json"):
        try:
            record = read_json(path)
        except (OSError, ValueError):  # ValueError: not JSON, not UTF-8
            continue
        if not isinstance(record, dict):
            continue
        status = record.get("status")
        if since is not None and not _reached(path.parent, since):
            continue
        if status in FINISHED_STATUSES and (record.get("reused_from") or _finished_before(record, since)):
            counts["reused"] += 1
        elif status == "done":
            counts["done"] += 1
        elif status in ("failed", "diverged"):
            counts["failed"] += 1
        elif status != "running":
            counts["other"] += 1
    return counts


def _reached(job_dir: Path, since: float) -> bool:
    """Whether this invocation has started the job (a folder without Hydra's files: counted)."""
    try:
        return (job_dir / ".hydra" / "overrides.yaml").stat().st_mtime >= since - 1
    except OSError:
        return True


def _finished_before(record: dict, since: float | None) -> bool:
    from datetime import datetime
    if since is None or not isinstance(record.get("finished"), str):
        return False
    try:
        return datetime.fromisoformat(record["finished"]).timestamp() < since
    except ValueError:
        return False


def _trained(counts: dict[str, int]) -> int:
    """Runs that trained here (finished in any way), not copies of runs reused from elsewhere."""
    return counts["done"] + counts["failed"] + counts["other"]


def start_state(sweep_dir: Path, total: int) -> dict:
    """What ``progress_line`` needs from a sweep's start: its size, the time, and how many runs its
    folder already held trained (a resumed sweep), which took none of this invocation's time."""
    return {"total": total, "started": time.time(), "trained_before": _trained(_counts(sweep_dir))}


def progress_line(sweep_dir: Path) -> str | None:
    """``k of N runs done (reused r, failed f), about M min left``."""
    try:
        state = read_json(sweep_dir / PROGRESS_NAME)
    except (OSError, ValueError):
        return None
    counts = _counts(sweep_dir, float(state["started"]))   # the jobs this invocation has reached
    finished = sum(counts.values())
    total = max(int(state["total"]), finished)
    # Runs trained since this sweep started: a resumed sweep's folder already holds the runs an
    # earlier invocation trained, which took none of this invocation's time.
    trained = _trained(_counts(sweep_dir)) - int(state.get("trained_before", 0))
    elapsed = time.time() - float(state["started"])
    left = ""
    if trained > 0 and finished < total:
        # Time per trained run, times the runs still to train (the plan's count when there is one):
        # reused runs take seconds and are neither work done nor work left.
        to_train = state.get("to_train")
        remaining = max(int(to_train) - trained, 1) if isinstance(to_train, int) else total - finished
        minutes = elapsed / trained * remaining / 60
        left = f", about {minutes:.0f} min left" if minutes >= 1 else ", under a minute left"
    return (f"sweep: {finished} of {total} runs done (reused {counts['reused']}, failed {counts['failed']})"
            f"{left}")


def print_plan(overrides: list[str], sweep_dir: Path, timeout: float = 300.0) -> dict | None:
    """Before the first job: ``seqbench plan`` of this sweep (runs, already done, the estimate from
    finished runs), in a process of its own (Hydra's state here is the running sweep's). A plan that
    cannot be made (a config folder of your own, a slow file system) is one line, never a stop."""
    import subprocess
    out = sweep_dir / ".plan.json"
    try:
        answer = subprocess.run([sys.executable, "-m", "seqbench", "plan", "--no-probe", "--json", str(out),
                                 *overrides], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"plan: not made ({type(error).__name__}); the sweep goes on", flush=True)
        return None
    if answer.returncode != 0:
        reason = (answer.stderr.strip().splitlines() or ["?"])[-1]
        print(f"plan: not made ({reason}); the sweep goes on", flush=True)
        return None
    print(answer.stdout.rstrip(), flush=True)
    try:
        return read_json(out)
    except (OSError, ValueError):
        return None


LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher", "hydra_plugins.hydra_joblib_launcher._core",
                    "hydra_plugins.hydra_submitit_launcher.submitit_launcher")


def swept_keys(task_overrides: list[str], sweeper_params: dict | None = None) -> set[str]:
    """The keys whose value changes from job to job: swept on the command line (``model=gru,lstm``)
    or in an experiment's ``hydra.sweeper.params``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    keys = {str(key).lstrip("+~") for key in (sweeper_params or {})}
    try:
        for override in OverridesParser.create().parse_overrides(task_overrides):
            if override.is_sweep_override():
                keys.add(override.get_key_element().lstrip("+~"))
    except Exception:  # Hydra itself will say what is wrong with the command line
        pass
    return keys


class WhatDiffers:
    """A logging filter for the launchers' per-job line (``#3 : model=gru seed=1 dataset=... ``,
    every override of the command, often hundreds of characters): only the overrides that differ
    between jobs are kept; the rest are the command line's, the same for every job."""

    def __init__(self, keys: set[str]):
        self.keys = set(keys)

    def filter(self, record) -> bool:
        import re
        try:
            message = record.getMessage()
        except Exception:
            return True
        job = re.match(r"^\t#(\d+) : (.*)$", message, re.S)
        if job and self.keys:
            kept = [item for item in job[2].split(" ") if item.split("=", 1)[0].lstrip("+~") in self.keys]
            record.msg, record.args = f"\t#{job[1]} : {' '.join(kept)}", ()
        elif message.startswith("Launching ") and self.keys:
            record.msg, record.args = (f"{message}; per job, what differs ({', '.join(sorted(self.keys))}), the "
                                       f"rest as on the command line"), ()
        return True


def shorten_job_lines(keys: set[str]) -> None:
    """Install ``WhatDiffers`` on the launchers' loggers (once per process: a new sweep replaces it)."""
    import logging
    for name in LAUNCHER_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, WhatDiffers)]:
            logger.removeFilter(old)
        logger.addFilter(WhatDiffers(keys))


class SweepProgress(Callback):
    """After each job of a multirun: one line saying how far the sweep has got."""

    def on_multirun_start(self, config, **kwargs) -> None:
        from omegaconf import OmegaConf
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        params = config.hydra.get("sweeper", {}).get("params") if config.hydra.get("sweeper") else None
        shorten_job_lines(swept_keys(list(config.hydra.overrides.task),
                                     OmegaConf.to_container(params) if params is not None else None))
        try:
            total = sweep_size(list(config.hydra.overrides.task))
        except Exception:  # a sweeper with its own way of choosing jobs: count what there is
            total = 0
        state = start_state(sweep_dir, total)
        plan = print_plan(list(config.hydra.overrides.task), sweep_dir)
        if plan:
            state.update(total=plan["runs"], to_train=plan["to_train"])
        (sweep_dir / PROGRESS_NAME).write_text(json.dumps(state))

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            return
        line = progress_line(Path(HydraConfig.get().sweep.dir))
        if line:
            print(line, flush=True)


class ReportAfterSweep(Callback):
    """At the end of a multirun, write the report for its sweep folder."""

    def __init__(self, out: str | None = None, compare: str | None = None):
        self.out, self.compare = out, compare

    def on_multirun_end(self, config, **kwargs) -> None:
        from .report import build_report
        sweep_dir = Path(config.hydra.sweep.dir)
        out = Path(self.out) if self.out else sweep_dir / "report"
        try:   # the sweep's TensorBoard folder shows every run of the sweep, the reused ones too
            added = reused_into_sweep(sweep_dir)
            if added:
                print(f"tensorboard: {added} reused run{'s' if added != 1 else ''} added to {sweep_dir / 'tensorboard'}",
                      flush=True)
        except Exception as error:  # a courtesy: never in the way of the report
            print(f"tensorboard: reused runs not added ({type(error).__name__}: {error})", file=sys.stderr)
        try:
            built = build_report([sweep_dir], out, command="seqbench -m " + " ".join(config.hydra.overrides.task),
                                 compare=self.compare)
            print("\n".join(built.terminal()), flush=True)
        except SeqbenchError as error:
            print(f"no report: {error}", file=sys.stderr)
        except Exception as error:  # the runs are done and kept; a report that fails is one line, not a traceback
            print(f"no report: unexpected {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
                  f"(the records are kept; `seqbench report {sweep_dir} --debug` shows the traceback)", file=sys.stderr)
