"""One run, in four steps that each have one owner:

1. ``check_config``: the config is valid (before any data is read);
2. ``identify``: config hash, seed, code and data fingerprints;
3. ``plan``: under the run's claim, decide Fresh | Reuse | Resume (or Claimed by a live process);
4. ``execute``: build data, model and trainer; train; test once; ``RecordWriter`` and
   ``finish`` own the record.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import socket
import time
import traceback
import warnings
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.rank_zero import _get_rank
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

from . import SeqbenchError
from .config import ConfigError, check_config, choose, config_hash, is_debug_run
from .data import GENERATED, TEXT_SOURCES, DataSpec, GeneratedData, TextClassificationData, TextSettings, \
    text_file_source
from .models import NetworkConfig, RecurrentNet
from .names import variant_of
from .plan import (Claim, Claimed, Decision, Fresh, Identity, Resume, Reuse, describe_owner, plan, plan_from_json,
                   plan_to_json)
from .record import (RECORD_NAME, atomic_write, code_fingerprint, current_rss_mb, git_commit, hardware,
                     peak_memory_mb, run_key, versions, write_json_atomic)
from .results import read_records
from .training import (ClassificationTask, PerStepClassificationTask, RecordWriter, RegressionTask, RunStatistics,
                       SequenceTask, StepScalars, TrainingDiverged, best_epoch)

log = logging.getLogger(__name__)
PLAN_ENV = "SEQBENCH_PLAN"
PREDICTIONS_NAME = "predictions.csv"

# One cheap data loader is faster than worker processes on small CPUs; this advice is noise here.
warnings.filterwarnings("ignore", ".*does not have many workers.*")


class Interrupted(SystemExit):
    """SIGTERM (preemption, scancel, kill): the run is recorded as interrupted and can resume;
    the process exits with 128 + 15, as a shell reports a process ended by SIGTERM."""

    def __init__(self):
        super().__init__(128 + signal.SIGTERM)


def raise_interrupted(signum, frame):
    raise Interrupted()


# ---------------------------------------------------------------------------------- building
def build_datamodule(cfg: DictConfig, rebuild_cache: bool = False) -> pl.LightningDataModule:
    data = OmegaConf.to_container(cfg.dataset, resolve=True)
    name = data["name"]
    if name in GENERATED:
        return GENERATED[name](data, cfg.seed)
    choose("dataset", name, {**TEXT_SOURCES, "text_file": None, **GENERATED})
    settings = TextSettings(max_len=data["max_len"], vocab_size=data["vocab_size"], min_freq=data["min_freq"])
    if name == "text_file":
        source = text_file_source(data["train"], data["test"], data.get("val"), data["text_column"],
                                  data["label_column"], data["encoding"])
    else:
        source = TEXT_SOURCES[name]
    return TextClassificationData(source, settings, root=data.get("root"), cache_dir=data.get("cache_dir"),
                                  batch_size=data["batch_size"], eval_batch_size=data.get("eval_batch_size"),
                                  val_fraction=data["val_fraction"], seed=cfg.seed,
                                  num_workers=data.get("num_workers", 0), rebuild_cache=rebuild_cache)


def network_config(model: DictConfig | dict) -> NetworkConfig:
    values = model if isinstance(model, dict) else OmegaConf.to_container(model, resolve=True)
    fields = set(NetworkConfig.__dataclass_fields__)
    try:
        return NetworkConfig(**{k: v for k, v in values.items() if k in fields})
    except ValueError as error:
        raise ConfigError(f"model {values.get('name')!r}: {error}") from error


def build_task(cfg: DictConfig, net_config: NetworkConfig, spec: DataSpec) -> SequenceTask:
    net = RecurrentNet(net_config, spec.num_outputs, vocab_size=spec.vocab_size,
                       input_dim=spec.input_dim, per_step=spec.per_step)
    optimizer = hydra.utils.instantiate(cfg.optimizer)
    metadata = {"network": dataclasses.asdict(net_config), "spec": dataclasses.asdict(spec),
                "model": variant_name(cfg), "dataset": cfg.dataset.name}
    check_every = int(cfg.trainer.get("divergence_check_every_n_steps") or 50)
    if spec.task == "classification":
        return ClassificationTask(net, optimizer, num_classes=spec.num_outputs, metadata=metadata,
                                  check_every=check_every)
    if spec.task == "per_step_classification":
        return PerStepClassificationTask(net, optimizer, num_classes=spec.num_outputs, metadata=metadata,
                                         check_every=check_every)
    return RegressionTask(net, optimizer, warmup_steps=cfg.dataset.get("warmup_steps", 0),
                          per_step=spec.per_step, metadata=metadata, check_every=check_every)


def variant_name(cfg: DictConfig) -> str:
    """The one spelling of a model variant, as on the command line: ``bilstm_attn_additive``,
    ``gru``, ``lstm_bi``, ``irnn``; also the folder and TensorBoard name."""
    return variant_of(OmegaConf.to_container(cfg.model, resolve=True))


def run_name(cfg: DictConfig) -> str:
    """Readable name of a run in TensorBoard: variant, data set, seed (and impl when not native)."""
    impl = cfg.model.get("impl", "native")
    return f"{variant_name(cfg)}{'' if impl == 'native' else '_' + impl}_{cfg.dataset.name}_s{cfg.seed}"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file and renamed into place: a full disk or a kill
    during the write leaves the previous good checkpoint, never a truncated one."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        atomic_write(path, lambda stream: torch.save(checkpoint, stream))


def dashboard_callbacks(cfg: DictConfig, task: SequenceTask, datamodule) -> list[pl.Callback]:
    from .dashboards import AttentionSnapshots, GradientFlowSnapshot, SignalSnapshot, pick_examples
    callbacks: list[pl.Callback] = [LearningRateMonitor(logging_interval="epoch"), GradientFlowSnapshot()]
    if isinstance(datamodule, TextClassificationData) and task.net.attention is not None:
        spec = datamodule.spec
        callbacks.append(AttentionSnapshots(pick_examples(datamodule.val_set), list(spec.vocabulary),
                                            list(spec.label_names)))
    if isinstance(datamodule, GeneratedData) and datamodule.name == "sincos":
        datamodule.setup()
        callbacks.append(SignalSnapshot(datamodule.sets["test"][list(range(3))], cfg.dataset.warmup_steps))
    return callbacks


def build_trainer(cfg: DictConfig, task: SequenceTask, datamodule, output_dir: Path, stats: RunStatistics,
                  record_writer: RecordWriter | None = None, extra_callbacks: list | None = None,
                  tensorboard_root: Path | None = None) -> tuple[pl.Trainer, ModelCheckpoint]:
    from .console import console_callbacks, make_logger
    # last.ckpt after every epoch: an interrupted run resumes from it (see plan()).
    checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best", monitor=task.monitor,
                                 mode=task.monitor_mode, save_top_k=1, save_last=True)
    stopping = EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=cfg.trainer.patience)
    options = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items()
               if k not in ("patience", "divergence_check_every_n_steps") and v is not None}
    if getattr(datamodule, "fresh_train", False):
        options["reload_dataloaders_every_n_epochs"] = 1  # a new training set every epoch
    logger = make_logger(cfg, run_name(cfg), tensorboard_root or output_dir / "tensorboard", output_dir)
    console, options = console_callbacks(options, stats)
    # Lightning runs plain callbacks in this order (the console line after the statistics it
    # prints), then the Checkpoint ones in theirs: ModelCheckpoint writes last.ckpt, then the
    # RecordWriter writes the record.
    all_callbacks = [stopping, StepScalars(), *dashboard_callbacks(cfg, task, datamodule), stats, *console,
                     *(extra_callbacks or []),
                     checkpoint, *([record_writer] if record_writer else [])]
    return pl.Trainer(callbacks=all_callbacks, logger=logger, default_root_dir=str(output_dir),
                      enable_model_summary=False, plugins=[AtomicCheckpointIO()], **options), checkpoint


# --------------------------------------------------------------------------------- the record
def base_record(cfg: DictConfig, identity: Identity, spec_task: str | None = None) -> dict:
    config = OmegaConf.to_container(cfg, resolve=True)
    return {"status": "running", "model": variant_name(cfg), "dataset": cfg.dataset.name, "seed": cfg.seed,
            "config_hash": identity.config_hash, "code_fingerprint": identity.code,
            "data_fingerprint": identity.data, "run_key": identity.key, "debug": identity.debug,
            "config": config, "started": datetime.now(timezone.utc).isoformat(),
            "hardware": hardware(), "versions": versions(), "git_commit": git_commit(),
            "process": {"host": socket.gethostname(), "pid": os.getpid()}}


def save_record(path: Path, record: dict) -> None:
    """Atomic write; a full disk or an unwritable folder becomes an error that says what to do
    (earlier records are never touched: each run writes only its own file)."""
    try:
        write_json_atomic(path, record)
    except OSError as error:
        raise SeqbenchError(f"cannot write the run record {path}: {error.strerror or error}. "
                            f"Free some disk space or choose a writable folder with paths.output_root=PATH."
                            ) from error


def identify(cfg: DictConfig, datamodule) -> Identity:
    config = OmegaConf.to_container(cfg, resolve=True)
    hashed, code, data = config_hash(config), code_fingerprint(), datamodule.fingerprint()
    return Identity(hashed, cfg.seed, code, data, run_key(hashed, cfg.seed, code, data),
                    debug=is_debug_run(config.get("trainer") or {}))


def _only_hydra_files(folder: Path) -> bool:
    return folder.is_dir() and all(p.name in (".hydra", "__main__.log") for p in folder.iterdir())


def decide(cfg: DictConfig, identity: Identity, output_dir: Path, rank_zero: bool,
           needs_test: bool = True) -> tuple[Decision, Claim | None]:
    """Claim the run and plan it (rank 0); other DDP processes take rank 0's decision."""
    if not rank_zero:
        if os.environ.get(PLAN_ENV):
            return plan_from_json(os.environ[PLAN_ENV]), None
        return plan(identity, output_dir, [], force=True), None
    root = Path(cfg.paths.output_root)
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
    return decision, claim


def run(cfg: DictConfig, output_dir: str | Path, tensorboard_root: str | Path | None = None,
        in_sweep: bool = False, evaluate_test: bool = True, extra_callbacks: list | None = None,
        tags: dict | None = None) -> dict:
    """Train and test one configuration; returns its record (its folder is ``record["output_dir"]``).

    - Reuse: a ``done`` record with the same config hash, seed, code and data fingerprints under
      ``paths.output_root`` is not run again (``force=true`` reruns it).
    - Resume: an interrupted run of the same identity continues in its own folder from its last
      checkpoint, if no live process holds its claim.
    - Claimed: a live process is on this run: skipped (``claimed=skip``) or waited for
      (``claimed=wait``), and said so.
    - In a sweep, the job's own folder always gets a copy of the record (``copy_of``), so the
      sweep's report finds every run, wherever it trained.
    - A diverged run returns normally with status "diverged"; SIGTERM records "interrupted"
      (resumable) and raises ``Interrupted``; any other error records "failed" and is raised.
    - ``evaluate_test=False`` (hyper-parameter search) never touches the test split.
    - ``tags`` go into the record as they are (``search``: a search trial; ``tuned``: a retrained
      best configuration).
    Under DDP only global rank 0 claims, plans and writes records.
    """
    output_dir = Path(output_dir)
    rank_zero = (_get_rank() or 0) == 0
    check_config(OmegaConf.to_container(cfg, resolve=True))  # one line, before any data is read
    net_config = network_config(cfg.model)
    datamodule = build_datamodule(cfg, rebuild_cache=bool(cfg.get("force", False)))
    identity = identify(cfg, datamodule)
    decision, claim = decide(cfg, identity, output_dir, rank_zero, needs_test=evaluate_test)
    log.info("plan: %s: %s", type(decision).__name__.lower(), decision.reason)
    try:
        if isinstance(decision, Claimed):
            return _skipped(cfg, identity, decision, output_dir, in_sweep, rank_zero)
        if isinstance(decision, Reuse):
            return _reused(decision, output_dir, in_sweep, rank_zero)
        return execute(cfg, identity, decision, datamodule, net_config, output_dir, tensorboard_root, rank_zero,
                       in_sweep, evaluate_test, extra_callbacks or [], tags or {})
    finally:
        if claim is not None:
            claim.release()
        if rank_zero:
            os.environ.pop(PLAN_ENV, None)


def _skipped(cfg, identity, decision: Claimed, output_dir: Path, in_sweep: bool, rank_zero: bool) -> dict:
    record = {"status": "skipped", "model": variant_name(cfg), "dataset": cfg.dataset.name, "seed": cfg.seed,
              "config_hash": identity.config_hash, "run_key": identity.key, "owner": decision.owner,
              "reason": f"{decision.reason}; not started again (claimed=wait waits for it)",
              "started": datetime.now(timezone.utc).isoformat(), "config": OmegaConf.to_container(cfg, resolve=True)}
    if in_sweep and rank_zero:  # the sweep's report shows it as not done, with where it runs
        save_record(output_dir / RECORD_NAME, record)
        record["output_dir"] = str(output_dir)
    return record


def _reused(decision: Reuse, output_dir: Path, in_sweep: bool, rank_zero: bool) -> dict:
    original = decision.record_path
    reused = {**decision.record, "reused_from": str(original)}
    if in_sweep and rank_zero and original.resolve() != (output_dir / RECORD_NAME).resolve():
        save_record(output_dir / RECORD_NAME, {**reused, "copy_of": str(original)})
        return {**reused, "output_dir": str(output_dir)}
    if rank_zero and _only_hydra_files(output_dir):
        shutil.rmtree(output_dir, ignore_errors=True)  # a reused single run leaves no empty folder behind
    return {**reused, "output_dir": str(original.parent)}


def execute(cfg, identity: Identity, decision: Fresh | Resume, datamodule, net_config: NetworkConfig,
            job_dir: Path, tensorboard_root, rank_zero: bool, in_sweep: bool, evaluate_test: bool,
            extra_callbacks: list, tags: dict) -> dict:
    record = {**base_record(cfg, identity), **tags}
    resume_from = None
    if isinstance(decision, Resume):
        previous = decision.previous
        output_dir, resume_from = decision.output_dir, decision.checkpoint
        record["resumed"] = int(previous.get("resumed", 0)) + 1
        record["started"] = previous.get("started", record["started"])
    else:
        output_dir = decision.output_dir
    record["plan"] = {"decision": type(decision).__name__.lower(), "reason": decision.reason}
    record["output_dir"] = str(output_dir)
    record_path = output_dir / RECORD_NAME
    # In a sweep whose job folder is not where the run lives (a resume), the job folder keeps a copy.
    copy_path = job_dir / RECORD_NAME if in_sweep and job_dir.resolve() != output_dir.resolve() else None

    def save(current: dict) -> None:
        if not rank_zero:
            return
        save_record(record_path, current)
        if copy_path is not None:
            save_record(copy_path, {**current, "copy_of": str(record_path)})

    save(record)  # a run killed from here on leaves "running", never "done"
    started = time.perf_counter()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    stats = RunStatistics()
    rss_at_start = current_rss_mb()
    task = trainer = None
    try:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule.setup()
        spec = datamodule.spec
        record.update(task=spec.task, metric=spec.metric, metric_mode=spec.metric_mode,
                      examples=datamodule.example_counts())
        if spec.baselines:
            record["baselines"] = spec.baselines
        task = build_task(cfg, net_config, spec)
        record["params"] = sum(p.numel() for p in task.net.parameters())
        record["label_names"] = list(spec.label_names)
        writer = RecordWriter(save, record, stats)
        trainer, checkpoint = build_trainer(cfg, task, datamodule, output_dir, stats, writer, extra_callbacks,
                                            Path(tensorboard_root) if tensorboard_root else None)
        from .dashboards import start_logging
        start_logging(trainer, record)
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        record.update(stats.as_record_fields())
        best_path = checkpoint.best_model_path or None
        record["val_best"] = ({task.monitor.removeprefix("val/"): float(checkpoint.best_model_score)}
                              if checkpoint.best_model_score is not None else {})
        record["best_checkpoint"] = best_path
        record["best_epoch"] = best_epoch(stats.history, task.monitor, task.monitor_mode)
        record["world_size"] = trainer.world_size
        if evaluate_test:
            task.collect_predictions = rank_zero and trainer.world_size == 1
            # The test split is read once, here, with the best checkpoint (a debug run without
            # checkpoints tests the weights it ends with, and says so).
            test_metrics = trainer.test(task, datamodule=datamodule, ckpt_path=best_path,
                                        verbose=False, weights_only=True)[0]
            record["tested_weights"] = "best" if best_path else "last"
            record["test"] = {k.removeprefix("test/"): v for k, v in test_metrics.items() if k != "test/loss"}
            record["test_loss"] = test_metrics.get("test/loss")
            if task.predictions and rank_zero:
                record["predictions"] = PREDICTIONS_NAME
                save_predictions(output_dir / PREDICTIONS_NAME, task.predictions, spec)
        record["status"] = "done"
        record["tensorboard"] = getattr(trainer.logger, "log_dir", None)
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
                      rss_at_start_mb=rss_at_start, wall_seconds=time.perf_counter() - started,
                      finished=datetime.now(timezone.utc).isoformat())
        save(record)
    if trainer is not None:
        from .dashboards import finish_logging
        finish_logging(trainer, record, record_path)
    return record


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
    if spec.label_names and "target" in frame and spec.task == "classification":
        frame["target_label"] = [spec.label_names[int(i)] for i in frame["target"]]
        frame["predicted_label"] = [spec.label_names[int(i)] for i in frame["predicted"]]
    atomic_write(path, lambda stream: stream.write(frame.to_csv(index=False).encode()))
