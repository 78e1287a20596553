"""One run, from a composed config to its record, in steps that each have one owner:

1. ``seqbench.identity.prepare``: the config checked and filled in, the run identified (config
   hash, seed, code and data fingerprints), before any data is read;
2. ``decide``: under the run's claim, Fresh | Reuse | Resume (or Claimed by a live process),
   in a folder that belongs to this run key alone (``seqbench.plan``);
3. ``seqbench.train.execute``: build, fit, test once, record. Only a run that trains imports
   Lightning: a finished run is answered from its record at once.

``run`` is what the command line, sweeps and the search call. It hands the execution step what a
person sees while a run trains (``ConsoleAndDashboards``): the execution imports no display code.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig

from .identity import CODE_ROOTS, PATH_KEYS, Prepared, interpolation_sources, prepare, variant_name
from .plan import (Claim, Claimed, Decision, Fresh, Resume, Reuse, copy_beside, describe_owner, owned_folder, plan,
                   plan_from_json, plan_to_json, publish_plan, read_published_plan)
from .record import PREDICTIONS_NAME, RECORD_NAME, read_records, save_record
from .runtime import launch_id, process_rank

# Also importable from here, where callers have always found them.
__all__ = ["run", "decide", "prepare", "Prepared", "variant_name", "interpolation_sources", "CODE_ROOTS",
           "PATH_KEYS", "PREDICTIONS_NAME", "copy_beside", "save_record", "ConsoleAndDashboards"]

log = logging.getLogger(__name__)
PLAN_ENV = "SEQBENCH_PLAN"


# ------------------------------------------------------------------------------------- steps
def decide(prepared: Prepared, output_dir: Path, rank_zero: bool,
           needs_test: bool = True) -> tuple[Decision, Claim | None]:
    """Claim the run and plan it (rank 0); other DDP processes take rank 0's decision: from the
    environment on its node, from the plan it published beside the claim on other nodes."""
    cfg, identity = prepared.cfg, prepared.identity
    root = Path(cfg.paths.output_root)
    if not rank_zero:
        if os.environ.get(PLAN_ENV):
            return plan_from_json(os.environ[PLAN_ENV]), None
        return read_published_plan(root, identity.key, launch_id()), None
    while True:
        claim = Claim.try_acquire(root, identity.key, output_dir)
        if isinstance(claim, Claim):
            break
        if cfg.get("claimed", "skip") != "wait":
            return Claimed(claim, f"claimed by {describe_owner(claim)}"), None
        log.warning("waiting: %s (claimed=wait)", describe_owner(claim))
        time.sleep(5)
    records = read_records([root]) if root.is_dir() else []
    decision = plan(identity, output_dir, records, force=bool(cfg.get("force", False)), needs_test=needs_test)
    if isinstance(decision, (Fresh, Resume)):
        os.environ[PLAN_ENV] = plan_to_json(decision)
        if _distributed(cfg):
            publish_plan(root, identity.key, decision, launch_id())
    return decision, claim


def _distributed(cfg: DictConfig) -> bool:
    return str(cfg.trainer.get("strategy", "auto")).startswith("ddp") or int(cfg.trainer.get("num_nodes") or 1) > 1


def run(cfg: DictConfig, output_dir: str | Path, tensorboard_root: str | Path | None = None,
        in_sweep: bool = False, evaluate_test: bool = True, extra_callbacks: list | None = None,
        tags: dict | None = None, prepared: Prepared | None = None) -> dict:
    """Train and test one configuration; returns its record (its folder is ``record["output_dir"]``).

    - Reuse: a ``done`` record with the same config hash, seed, code and data fingerprints under
      ``paths.output_root`` is not run again (``force=true`` reruns it).
    - Resume: an interrupted run of the same identity continues in its own folder from its last
      checkpoint (if that checkpoint was written for this run key), if no live process holds it.
    - Claimed: a live process is on this run: skipped (``claimed=skip``) or waited for
      (``claimed=wait``), and said so.
    - A fresh run takes ``output_dir`` if it is free, else a sibling folder named with its run key.
    - In a sweep, the job's own folder always gets a copy of the record and predictions
      (``copy_of``), so the sweep's report finds every run, wherever it trained.
    - A diverged run returns normally with status "diverged"; SIGTERM records "interrupted"
      (resumable) and raises ``Interrupted``; any other error records "failed" and is raised.
    - ``evaluate_test=False`` (hyper-parameter search) never touches the test split.
    - ``tags`` go into the record as they are (``search``: a search trial; ``tuned``: a retrained
      best configuration).
    Under DDP only global rank 0 claims, plans and writes records.
    """
    output_dir = Path(output_dir)
    prepared = prepared or prepare(cfg)
    rank_zero = process_rank() == 0
    decision, claim = decide(prepared, output_dir, rank_zero, needs_test=evaluate_test)
    log.info("plan: %s: %s", type(decision).__name__.lower(), decision.reason)
    try:
        if isinstance(decision, Claimed):
            return _skipped(prepared, decision, output_dir, in_sweep, rank_zero)
        if isinstance(decision, Reuse):
            return _reused(decision, output_dir, in_sweep, rank_zero)
        from .train import RunContext, execute
        return execute(RunContext(prepared, decision, output_dir, rank_zero=rank_zero, claim=claim,
                                  in_sweep=in_sweep, evaluate_test=evaluate_test,
                                  tensorboard_root=Path(tensorboard_root) if tensorboard_root else None,
                                  callbacks=list(extra_callbacks or []), tags=dict(tags or {}),
                                  presentation=ConsoleAndDashboards()))
    finally:
        if claim is not None:
            claim.release()
        if rank_zero:
            os.environ.pop(PLAN_ENV, None)


def _skipped(prepared: Prepared, decision: Claimed, output_dir: Path, in_sweep: bool, rank_zero: bool) -> dict:
    cfg, identity = prepared.cfg, prepared.identity
    record = {"status": "skipped", "model": variant_name(cfg), "dataset": cfg.dataset.name, "seed": cfg.seed,
              "config_hash": identity.config_hash, "run_key": identity.key, "owner": decision.owner,
              "data_fingerprint": identity.data,
              "reason": f"{decision.reason}; not started again (claimed=wait waits for it)",
              "started": datetime.now(timezone.utc).isoformat(), "config": prepared.config}
    if in_sweep and rank_zero:  # the sweep's report shows it as not done, with where it runs
        folder = owned_folder(output_dir, identity.key)
        save_record(folder / RECORD_NAME, record)
        record["output_dir"] = str(folder)
    return record


def _only_hydra_files(folder: Path) -> bool:
    return folder.is_dir() and all(p.name in (".hydra", "__main__.log") for p in folder.iterdir())


def _reused(decision: Reuse, output_dir: Path, in_sweep: bool, rank_zero: bool) -> dict:
    original = decision.record_path
    reused = {**decision.record, "reused_from": str(original)}
    if in_sweep and rank_zero and original.resolve() != (output_dir / RECORD_NAME).resolve():
        folder = copy_beside(reused, original, output_dir)
        return {**reused, "output_dir": str(folder)}
    if rank_zero and _only_hydra_files(output_dir):
        shutil.rmtree(output_dir, ignore_errors=True)  # a reused single run leaves no empty folder behind
    return {**reused, "output_dir": str(original.parent)}


# --------------------------------------------------------------------------- what a person sees
class ConsoleAndDashboards:
    """What a person sees of a run that trains (``seqbench.train.Presentation``): the progress bar
    or one line per epoch, the logger the config names (TensorBoard by default), and the
    dashboards' pictures (learning rate, gradient flow, attention, predicted signals). Nothing
    here changes what a run computes: it is kept out of the execution step and its fingerprint."""

    def logger(self, cfg: DictConfig, name: str, tensorboard_dir: Path, output_dir: Path):
        from .console import make_logger
        return make_logger(cfg, name, tensorboard_dir, output_dir)

    def watchers(self, cfg: DictConfig, task, datamodule) -> list:
        """Callbacks that draw what the run does, run before its statistics are taken."""
        from pytorch_lightning.callbacks import LearningRateMonitor

        from .dashboards import AttentionSnapshots, GradientFlowSnapshot, SignalSnapshot, pick_examples
        callbacks = [LearningRateMonitor(logging_interval="epoch"), GradientFlowSnapshot()]
        spec = datamodule.spec
        if spec.vocabulary and task.net.attention is not None and hasattr(datamodule, "val_set"):
            callbacks.append(AttentionSnapshots(pick_examples(datamodule.val_set), list(spec.vocabulary),
                                                list(spec.label_names)))
        if getattr(datamodule, "name", None) == "sincos":
            callbacks.append(SignalSnapshot(datamodule.sets["test"][list(range(3))], cfg.dataset.warmup_steps))
        return callbacks

    def console(self, options: dict, statistics) -> tuple[list, dict]:
        """The progress bar or the epoch lines, run after the statistics they print; the trainer's
        options as the console needs them (no bar where none can draw)."""
        from .console import console_callbacks
        return console_callbacks(options, statistics)

    def started(self, trainer, record: dict) -> None:
        from .dashboards import start_logging
        start_logging(trainer, record)

    def finished(self, trainer, record: dict, record_path: Path) -> None:
        from .dashboards import finish_logging
        finish_logging(trainer, record, record_path)
