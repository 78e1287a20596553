"""Training one planned run (Fresh or Resume), step by step: open its record, build the data,
the model and the trainer, fit, test once with the best checkpoint, save the predictions, close
the record. Imported only when a run trains (it loads Lightning).

Everything one run needs comes in one ``RunContext``. What a person sees while it trains (progress,
the logger, dashboards) comes in it too, as a ``Presentation``: this module imports no display
code, so what it imports is what computes a run (its code fingerprint starts here).
"""
from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from . import SeqbenchError
from .data.declare import DataSpec, build_datamodule
from .data.vectors import load_pretrained
from .identity import Prepared, interpolation_sources, variant_name
from .plan import CHECKPOINT_DIR, Claim, Fresh, Resume, copy_beside, release_folder, set_aside
from .record import (PREDICTIONS_NAME, RECORD_NAME, atomic_write, current_rss_mb, git_commit, hardware,
                     peak_memory_mb, save_record, versions)
from .models.sequence import resolve_mode
from .runtime import Interrupted, flush_denormals, keep_freed_memory, quiet_lightning
from .tasks import TASKS
from .training import (RecordWriter, RunStatistics, SequenceTask, StepScalars, StopWhenAsked, StopWhenSolved,
                       TrainingDiverged, best_epoch, build_task)

log = logging.getLogger(__name__)

# One cheap data loader is faster than worker processes on small CPUs; this advice is noise here.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
quiet_lightning()  # after Lightning's import, which sets its loggers to INFO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file and renamed into place: a full disk or a kill
    during the write leaves the previous good checkpoint, never a truncated one. A write that
    fails (full disk, read-only folder) is one line naming the folder and the fix."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        try:
            atomic_write(path, lambda stream: torch.save(checkpoint, stream))
        except OSError as error:
            raise SeqbenchError(f"cannot write the checkpoint {path}: {error.strerror or error}. Free some disk "
                                f"space or choose another folder with paths.output_root=PATH; the previous "
                                f"checkpoint is kept") from None


def run_name(cfg: DictConfig, tags: dict | None = None) -> str:
    """Readable name of a run in TensorBoard and trackers: variant, data set, seed (impl when not
    native, the trial number for a search trial)."""
    impl = cfg.model.get("impl", "native") or "native"
    name = f"{variant_name(cfg)}{'' if impl == 'native' else '_' + impl}_{cfg.dataset.name}_s{cfg.seed}"
    trial = (tags or {}).get("search", {}).get("trial")
    return f"{name}_trial{trial:03d}" if trial is not None else name


# ------------------------------------------------------------------------------ what one run needs
class Presentation:
    """What a person sees of a run while it trains: given by the caller (``seqbench.run`` hands
    the console's and the dashboards'), never imported here. Nothing in it may change what a run
    computes: it is outside the run's code fingerprint. This one shows nothing (no logger)."""

    def logger(self, cfg: DictConfig, name: str, tensorboard_dir: Path, output_dir: Path):
        return False

    def watchers(self, cfg: DictConfig, task: SequenceTask, datamodule) -> list[pl.Callback]:
        return []

    def console(self, options: dict, statistics: RunStatistics) -> tuple[list[pl.Callback], dict]:
        return [], options

    def started(self, trainer: pl.Trainer, record: dict) -> None:
        pass

    def finished(self, trainer: pl.Trainer, record: dict, record_path: Path) -> None:
        pass


@dataclass
class RunContext:
    """One planned run, as ``execute`` trains it."""
    prepared: Prepared                   # its checked, filled config and its identity
    decision: Fresh | Resume             # where it trains, and from which checkpoint
    job_dir: Path                        # the folder its caller gave it (a sweep job's folder)
    rank_zero: bool = True               # only global rank 0 writes records (DDP)
    claim: Claim | None = None           # held while it trains; says where the run lives
    in_sweep: bool = False               # the job's folder gets a copy of the record
    evaluate_test: bool = True           # False: a search trial, never tested
    tensorboard_root: Path | None = None  # a sweep's runs share one TensorBoard folder
    callbacks: list = field(default_factory=list)   # more Lightning callbacks (a search's pruning)
    tags: dict = field(default_factory=dict)        # into the record as they are (search trial, tuned)
    presentation: Presentation = field(default_factory=Presentation)

    @property
    def cfg(self) -> DictConfig:
        return self.prepared.cfg


def build_trainer(context: RunContext, task: SequenceTask, datamodule, output_dir: Path, stats: RunStatistics,
                  record_writer: RecordWriter | None = None) -> tuple[pl.Trainer, ModelCheckpoint]:
    cfg, presentation = context.cfg, context.presentation
    # last.ckpt after every epoch: an interrupted run resumes from it (see plan()). The folder
    # belongs to this run alone, so names are fixed (no "-v1" copies beside an older run's files).
    checkpoint = ModelCheckpoint(dirpath=output_dir / CHECKPOINT_DIR, filename="best", monitor=task.monitor,
                                 mode=task.monitor_mode, save_top_k=1, save_last=True, enable_version_counter=False)
    stopping = EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=cfg.trainer.patience)
    options = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items()
               if k not in ("patience", "divergence_check_every_n_steps", "stop_when_solved") and v is not None}
    solved = stop_when_solved(context.prepared.config, datamodule.spec.task)
    if getattr(datamodule, "fresh_train", False):
        options["reload_dataloaders_every_n_epochs"] = 1  # a new training set every epoch
    logger = presentation.logger(cfg, run_name(cfg, context.tags),
                                 context.tensorboard_root or output_dir / "tensorboard", output_dir)
    console, options = presentation.console(options, stats)
    # Lightning runs plain callbacks in this order (the console line after the statistics it
    # prints), then the Checkpoint ones in theirs: ModelCheckpoint writes last.ckpt, then the
    # RecordWriter writes the record.
    all_callbacks = [StopWhenAsked(), stopping, *([solved] if solved else []), StepScalars(),
                     *presentation.watchers(cfg, task, datamodule), stats,
                     *console, *context.callbacks, checkpoint, *([record_writer] if record_writer else [])]
    return pl.Trainer(callbacks=all_callbacks, logger=logger, default_root_dir=str(output_dir),
                      enable_model_summary=False, plugins=[AtomicCheckpointIO()], **options), checkpoint


def stop_when_solved(config: dict, task_name: str) -> StopWhenSolved | None:
    """The callback that ends a run at its first validation solved with a margin, where
    ``trainer.stop_when_solved`` asks for it (the config check has made sure the data set has a threshold)."""
    if not (config.get("trainer") or {}).get("stop_when_solved"):
        return None
    kind = TASKS[task_name]
    return StopWhenSolved(kind, config["dataset"][kind.solved_rule])


def save_predictions(path: Path, batches: list[dict], spec: DataSpec) -> None:
    """Per-example test predictions beside the record: one row per test example, in the order
    of the test split (``index``), for paired comparisons between variants."""
    import pandas as pd
    columns: dict[str, list] = {}
    for batch in batches:
        for name, values in batch.items():
            if name == "probabilities":
                for k, label in enumerate(spec.label_names or range(values.size(1))):
                    columns.setdefault(f"p_{label}", []).extend(values[:, k].tolist())
            else:
                columns.setdefault(name, []).extend(values.tolist())
    frame = pd.DataFrame(columns).sort_values("index", kind="stable")
    if spec.label_names and spec.task == "classification":
        if "target" in frame:
            frame["target_label"] = [spec.label_names[int(i)] for i in frame["target"]]
        frame["predicted_label"] = [spec.label_names[int(i)] for i in frame["predicted"]]
    atomic_write(path, lambda stream: stream.write(frame.to_csv(index=False).encode()))


# ------------------------------------------------------------------------------------ the run
def base_record(prepared: Prepared) -> dict:
    """The record's opening fields: what the run is (its filled config and identity) and where it runs."""
    cfg, identity = prepared.cfg, prepared.identity
    return {"status": "running", "model": variant_name(prepared.config), "dataset": cfg.dataset.name,
            "dataset_kind": prepared.dataset.name, "seed": cfg.seed,
            "config_hash": identity.config_hash, "code_fingerprint": identity.code,
            "data_fingerprint": identity.data, "run_key": identity.key, "debug": identity.debug,
            "data": {"kind": prepared.dataset.name, "name": cfg.dataset.name, "fingerprint": identity.data,
                     "files": prepared.located.files,
                     # what decides the test examples beyond the files (a generated task's settings)
                     "test_set": {k: prepared.config["dataset"].get(k) for k in prepared.dataset.test_set_keys}},
            "config": prepared.config, "interpolations": interpolation_sources(cfg),
            "started": datetime.now(timezone.utc).isoformat(),
            "hardware": hardware(), "versions": versions(), "git_commit": git_commit(),
            "process": {"host": socket.gethostname(), "pid": os.getpid()}}


def earlier_attempts(previous: dict) -> list[dict]:
    """The attempts an interrupted run's record holds (a record older than attempts: one, from its
    own start, finish, epochs and wall time)."""
    attempts = previous.get("attempts")
    if isinstance(attempts, list) and all(isinstance(a, dict) for a in attempts):
        return [dict(a) for a in attempts]
    wall = previous.get("wall_seconds")
    return [{"started": previous.get("started"), "ended": previous.get("finished"),
             "epochs": previous.get("epochs") if isinstance(previous.get("epochs"), int) else 0,
             "wall_seconds": wall if isinstance(wall, (int, float)) and not isinstance(wall, bool) else None}]


class _RecordKeeper:
    """The record of one run and where it is written: its own folder, and in a sweep whose job
    folder is elsewhere (a resume in an older folder) a copy there too."""

    def __init__(self, context: RunContext):
        decision = context.decision
        self.record = {**base_record(context.prepared), **context.tags}
        self.output_dir = decision.output_dir
        # Each attempt at the run (a resume is the next one): when it started and last wrote, the epochs
        # it trained and its wall time; the run's wall time is their sum.
        self.clock, self.attempt_started, self.earlier_attempts = time.perf_counter(), self.record["started"], []
        if isinstance(decision, Resume):
            previous = decision.previous
            self.record["resumed"] = int(previous.get("resumed", 0)) + 1
            self.record["started"] = previous.get("started", self.record["started"])
            self.earlier_attempts = earlier_attempts(previous)
        self.record["plan"] = {"decision": type(decision).__name__.lower(), "reason": decision.reason}
        self.record["output_dir"] = str(self.output_dir)
        self.path = self.output_dir / RECORD_NAME
        job_dir = Path(context.job_dir)
        self.job_dir = job_dir if context.in_sweep and job_dir.resolve() != self.output_dir.resolve() else None
        self.rank_zero = context.rank_zero

    def save(self, current: dict | None = None) -> None:
        record = current if current is not None else self.record
        self._count_attempt(record)
        if self.rank_zero:
            save_record(self.path, record)

    def _count_attempt(self, record: dict) -> None:
        """This attempt, as of now, after the earlier ones; the wall time their sum (a run killed with
        kill -9 keeps what its last write said)."""
        before = sum(a.get("epochs") or 0 for a in self.earlier_attempts)
        epochs = record.get("epochs") if isinstance(record.get("epochs"), int) else before
        this = {"started": self.attempt_started, "ended": datetime.now(timezone.utc).isoformat(),
                "epochs": max(0, epochs - before), "wall_seconds": round(time.perf_counter() - self.clock, 3)}
        record["attempts"] = [*self.earlier_attempts, this]
        record["wall_seconds"] = sum(a.get("wall_seconds") or 0.0 for a in record["attempts"])

    def close(self) -> None:
        """The last write; a sweep's job folder gets its copy (with the predictions)."""
        self.save()
        if self.rank_zero and self.job_dir is not None:
            copy_beside(self.record, self.path, self.job_dir)


def _fresh_folder(output_dir: Path) -> None:
    """A fresh run of this identity in a folder that already has its checkpoints (force=true, a
    debug run again, a set-aside unreadable checkpoint): the old ones are set aside, never mixed in."""
    checkpoints = output_dir / CHECKPOINT_DIR
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        set_aside(checkpoints, "holds checkpoints of an earlier attempt at this run; this fresh run starts its own")


def _data(context: RunContext, output_dir: Path):
    """The run's data module, set up. A bad input file is one line and leaves no record behind
    (a fresh run gives its folder back)."""
    cfg, prepared = context.cfg, context.prepared
    try:
        datamodule = build_datamodule(prepared.config["dataset"], cfg.seed, bool(cfg.get("force", False)),
                                      prepared.located)
        datamodule.setup()
    except BaseException:
        if context.rank_zero and isinstance(context.decision, Fresh):
            release_folder(output_dir, prepared.identity.key)
        raise
    return datamodule


def execute(context: RunContext) -> dict:
    """Train one planned run and return its record: its folder prepared (a fresh run's old
    checkpoints set aside, the claim moved there), the data built, then the model and trainer;
    fit (from the checkpoint a resume names), test once with the best checkpoint, predictions
    saved. The record is written after every epoch and at the end, whatever the end: "done",
    "diverged" (returned), "interrupted" (resumable) or "failed" (both raised again)."""
    cfg, decision = context.cfg, context.decision
    keeper = _RecordKeeper(context)
    record, output_dir = keeper.record, keeper.output_dir
    if context.rank_zero and isinstance(decision, Fresh):
        _fresh_folder(output_dir)
    if context.claim is not None:
        context.claim.move_to(output_dir)
    rss_at_start = current_rss_mb()
    record["flush_denormal"] = flush_denormals(cfg.get("flush_denormal", True))
    record["keep_freed_memory"] = keep_freed_memory(cfg.get("keep_freed_memory", True))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = _data(context, output_dir)
    keeper.save()  # a run killed from here on leaves "running", never "done"
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    stats = RunStatistics()
    task = trainer = None
    try:
        task, trainer = _fit_and_test(context, record, keeper, datamodule, stats, output_dir)
    except TrainingDiverged as error:
        record.update(status="diverged", error=str(error))
        log.error("run diverged: %s", error)
    except (Interrupted, KeyboardInterrupt, SystemExit) as error:
        # SIGTERM (Lightning's own SIGTERMException too), Ctrl-C: resumable, not a failure of the run.
        record.update(status="interrupted", error=f"{type(error).__name__}: interrupted; run the same command "
                                                  f"again to resume from the last finished epoch")
        raise
    except BaseException as error:
        record.update(status="failed", error=f"{type(error).__name__}: {error}",
                      traceback=traceback.format_exc(limit=20))
        raise
    finally:
        device = task.device if task is not None else torch.device("cpu")
        memory, memory_kind = peak_memory_mb(device, max(stats.peak_rss_mb, current_rss_mb()))
        record.update(stats.as_record_fields(), peak_memory_mb=memory, peak_memory_kind=memory_kind,
                      rss_at_start_mb=rss_at_start, finished=datetime.now(timezone.utc).isoformat())
        keeper.close()
    if trainer is not None:
        context.presentation.finished(trainer, record, keeper.path)
    return record


def _fit_and_test(context: RunContext, record: dict, keeper: _RecordKeeper, datamodule, stats: RunStatistics,
                  output_dir: Path) -> tuple[SequenceTask, pl.Trainer]:
    """The model and the trainer, built; fit; the test split read once. Fills in the record."""
    cfg, prepared = context.cfg, context.prepared
    spec = datamodule.spec
    record.update(task=spec.task, metric=spec.metric, metric_mode=spec.metric_mode,
                  examples=datamodule.example_counts(), label_names=list(spec.label_names))
    if spec.baselines:
        record["baselines"] = spec.baselines
    task = build_task(prepared.config, prepared.network, spec, metadata={
        "model": variant_name(prepared.config), "dataset": cfg.dataset.name, "run_key": prepared.identity.key,
        "config_hash": prepared.identity.config_hash, "data_fingerprint": prepared.identity.data})
    if getattr(datamodule, "corpus", None) is not None:  # dataset.vectors: the embedding starts from them
        vectors = load_pretrained(task.net.input_layer, prepared.config["dataset"], list(spec.vocabulary),
                                  datamodule.corpus.splits["train"].ids)
        if vectors:
            record["vectors"] = vectors
            log.info("vectors: %d of %d vocabulary words found (%.1f%%) in %s%s", vectors["found"],
                     vectors["vocabulary"], 100 * vectors["coverage"], vectors["file"],
                     ", frozen" if vectors["frozen"] else "")
    record["params"] = sum(p.numel() for p in task.net.parameters())
    trainer, checkpoint = build_trainer(context, task, datamodule, output_dir, stats,
                                        RecordWriter(keeper.save, record, stats))
    record["precision"] = str(trainer.precision)  # what ran (Lightning may change it, e.g. 16 on a CPU)
    if isinstance(getattr(prepared.network, "mode", None), str):  # model.mode is no part of identity: say what ran
        record["scan_mode"] = resolve_mode(prepared.network.mode, trainer.strategy.root_device)
    if trainer.world_size > 1:
        check_batches_per_process(datamodule, trainer.world_size)
    context.presentation.started(trainer, record)
    resume_from = context.decision.checkpoint if isinstance(context.decision, Resume) else None
    trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    _record_fit(record, stats, task, trainer, checkpoint)
    for callback in context.callbacks:  # e.g. a search's pruning says the run was pruned
        record.update(getattr(callback, "record_fields", dict)())
    if context.evaluate_test:
        _test_once(record, task, trainer, datamodule, checkpoint, output_dir, spec, context.rank_zero)
    record["status"] = "done"
    log_dir = getattr(trainer.logger, "log_dir", None)
    # absolute: a sweep's TensorBoard root is relative to the folder the sweep started in
    record["tensorboard"] = str(Path(log_dir).absolute()) if log_dir else None
    return task, trainer


def check_batches_per_process(datamodule, processes: int) -> None:
    """Under DDP every process needs at least one batch of each split, or the processes wait on
    each other for ever (gloo and NCCL then report a collective that never completes)."""
    for split, loader in (("validation", datamodule.val_dataloader()), ("test", datamodule.test_dataloader())):
        batches = len(loader.sampler._all_batches()) if hasattr(loader.sampler, "_all_batches") else len(loader)
        if batches < processes:
            raise SeqbenchError(f"the {split} split makes {batches} batch(es) for {processes} processes: every DDP "
                                f"process needs at least one; lower dataset.eval_batch_size (or dataset.batch_size), "
                                f"add examples, or use fewer devices")


def _record_fit(record: dict, stats: RunStatistics, task: SequenceTask, trainer: pl.Trainer,
                checkpoint: ModelCheckpoint) -> None:
    record.update(stats.as_record_fields())
    record["val_best"] = ({task.monitor.removeprefix("val/"): float(checkpoint.best_model_score)}
                          if checkpoint.best_model_score is not None else {})
    record["best_checkpoint"] = checkpoint.best_model_path or None
    record["best_epoch"] = best_epoch(stats.history, task.monitor, task.monitor_mode)
    record["world_size"] = trainer.world_size
    record["updates"] = int(trainer.global_step)
    solved = next((c for c in trainer.callbacks if isinstance(c, StopWhenSolved)), None)
    if solved is not None:  # None where the cap came first
        record["solved_on_validation_at_update"] = solved.solved_at_update
        record["stops_when_validation_meets"] = solved.stop_threshold  # the threshold with its margin


def _test_once(record: dict, task: SequenceTask, trainer: pl.Trainer, datamodule, checkpoint: ModelCheckpoint,
               output_dir: Path, spec: DataSpec, rank_zero: bool) -> None:
    """The test split is read once, here, with the best checkpoint (a debug run without
    checkpoints tests the weights it ends with, and says so)."""
    best_path = checkpoint.best_model_path or None
    task.collect_predictions = rank_zero and trainer.world_size == 1
    test_metrics = trainer.test(task, datamodule=datamodule, ckpt_path=best_path, verbose=False,
                                weights_only=True)[0]
    record["tested_weights"] = "best" if best_path else "last"
    record["test"] = {k.removeprefix("test/"): v for k, v in test_metrics.items() if k != "test/loss"}
    record["test_loss"] = test_metrics.get("test/loss")
    if task.predictions and rank_zero:
        record["predictions"] = PREDICTIONS_NAME
        save_predictions(output_dir / PREDICTIONS_NAME, task.predictions, spec)
