"""One run: build data, model and trainer from a composed config, train, test once, record."""
from __future__ import annotations

import dataclasses
import json
import logging
import time
import traceback
import warnings
from datetime import datetime, timezone
from pathlib import Path

import hydra
import pytorch_lightning as pl
from lightning_fabric.utilities.rank_zero import _get_rank
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from . import SeqbenchError
from .data import TEXT_SOURCES, DataSpec, text_file_source, SinCosData, TextClassificationData, TextSettings
from .dashboards import (AttentionSnapshots, GradientFlowSnapshot, SignalSnapshot, final_metrics, hparams_for,
                         pick_examples)
from .models import NetworkConfig, RecurrentNet
from .results import read_records
from .record import RECORD_NAME, config_hash, current_rss_mb, git_commit, hardware, peak_memory_mb, versions, write_json_atomic
from .training import ClassificationTask, RegressionTask, RunStatistics, SequenceTask, TrainingDiverged

log = logging.getLogger(__name__)
DATASETS = (*TEXT_SOURCES, "text_file", "sincos")

# One cheap data loader is faster than worker processes on small CPUs; this advice is noise here.
warnings.filterwarnings("ignore", ".*does not have many workers.*")


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    data = cfg.dataset
    if data.name not in DATASETS:
        raise SeqbenchError(f"unknown dataset {data.name!r}; valid data sets: {', '.join(DATASETS)}")
    if data.name == "sincos":
        return SinCosData(n_train=data.n_train, n_val=data.n_val, n_test=data.n_test, seq_len=data.seq_len,
                          omega=data.omega, dt=data.dt, batch_size=data.batch_size, seed=cfg.seed)
    settings = TextSettings(max_len=data.max_len, vocab_size=data.vocab_size, min_freq=data.min_freq)
    if data.name == "text_file":
        source = text_file_source(data.train, data.test, data.get("val"), data.text_column, data.label_column,
                                  data.encoding)
    else:
        source = TEXT_SOURCES[data.name]
    return TextClassificationData(source, settings, root=data.root, cache_dir=data.cache_dir,
                                  batch_size=data.batch_size, eval_batch_size=data.get("eval_batch_size"),
                                  val_fraction=data.val_fraction, seed=cfg.seed, num_workers=data.num_workers)


def network_config(model: DictConfig) -> NetworkConfig:
    fields = set(NetworkConfig.__dataclass_fields__)
    try:
        return NetworkConfig(**{k: v for k, v in OmegaConf.to_container(model, resolve=True).items() if k in fields})
    except ValueError as error:
        raise SeqbenchError(f"model {model.get('name')!r}: {error}") from error


def build_task(cfg: DictConfig, net_config: NetworkConfig, spec: DataSpec) -> SequenceTask:
    net = RecurrentNet(net_config, spec.num_outputs, vocab_size=spec.vocab_size,
                       input_dim=spec.input_dim, per_step=spec.per_step)
    optimizer = hydra.utils.instantiate(cfg.optimizer)
    metadata = {"network": dataclasses.asdict(net_config), "spec": dataclasses.asdict(spec),
                "model": variant_name(cfg), "dataset": cfg.dataset.name}
    if spec.task == "classification":
        return ClassificationTask(net, optimizer, num_classes=spec.num_outputs, metadata=metadata)
    return RegressionTask(net, optimizer, warmup_steps=cfg.dataset.warmup_steps, metadata=metadata)


def variant_name(cfg: DictConfig) -> str:
    """Readable name of the model variant: ``bilstm_attn-additive``, ``gru``, ``lstm-bi``..."""
    name = cfg.model.name
    if cfg.model.get("pooling") == "attention" and cfg.model.attention not in str(name):
        name = f"{name}-{cfg.model.attention}"
    elif cfg.model.get("bidirectional") and not str(name).startswith("bi"):
        name = f"{name}-bi"
    return name


def run_name(cfg: DictConfig) -> str:
    """Readable name of a run in TensorBoard: variant, data set, seed (and impl when not native)."""
    impl = cfg.model.get("impl", "native")
    return f"{variant_name(cfg)}{'' if impl == 'native' else '-' + impl}_{cfg.dataset.name}_s{cfg.seed}"


def dashboard_callbacks(cfg: DictConfig, task: SequenceTask, datamodule) -> list[pl.Callback]:
    callbacks: list[pl.Callback] = [LearningRateMonitor(logging_interval="epoch"), GradientFlowSnapshot()]
    if isinstance(datamodule, TextClassificationData) and task.net.attention is not None:
        spec = datamodule.spec
        callbacks.append(AttentionSnapshots(pick_examples(datamodule.val_set), list(spec.vocabulary),
                                            list(spec.label_names)))
    if isinstance(datamodule, SinCosData):
        datamodule.setup()
        callbacks.append(SignalSnapshot(next(iter(datamodule.test_dataloader())), cfg.dataset.warmup_steps))
    return callbacks


def build_trainer(cfg: DictConfig, task: SequenceTask, datamodule, output_dir: Path, stats: RunStatistics,
                  tensorboard_root: Path | None = None) -> tuple[pl.Trainer, ModelCheckpoint]:
    # last.ckpt after every epoch: an interrupted run resumes from it (see run()).
    checkpoint = ModelCheckpoint(dirpath=output_dir / "checkpoints", filename="best", monitor=task.monitor,
                                 mode=task.monitor_mode, save_top_k=1, save_last=True)
    stopping = EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=cfg.trainer.patience)
    # One TensorBoard root per sweep (or per run), one readable sub-folder per run.
    logger = TensorBoardLogger(save_dir=str(tensorboard_root or output_dir / "tensorboard"), name=run_name(cfg),
                               version="", default_hp_metric=False)
    options = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items()
               if k != "patience" and v is not None}
    return pl.Trainer(callbacks=[checkpoint, stopping, stats, *dashboard_callbacks(cfg, task, datamodule)],
                      logger=logger, default_root_dir=str(output_dir), enable_model_summary=False,
                      **options), checkpoint


def base_record(cfg: DictConfig) -> dict:
    config = OmegaConf.to_container(cfg, resolve=True)
    return {"status": "running", "model": variant_name(cfg), "dataset": cfg.dataset.name, "seed": cfg.seed,
            "config_hash": config_hash(config), "config": config, "started": datetime.now(timezone.utc).isoformat(),
            "hardware": hardware(), "versions": versions(), "git_commit": git_commit()}


def save_record(path: Path, record: dict) -> None:
    """Atomic write; a full disk or an unwritable folder becomes an error that says what to do
    (earlier records are never touched: each run writes only its own file)."""
    try:
        write_json_atomic(path, record)
    except OSError as error:
        raise SeqbenchError(f"cannot write the run record {path}: {error.strerror or error}. "
                            f"Free some disk space or choose a writable folder with paths.output_root=PATH."
                            ) from error


def earlier_runs(root: Path, config_hash_: str, seed: int) -> list[tuple[str, str, Path]]:
    """(started, status, record path) of every run of this variant and seed under ``root``,
    newest first: one pass over the records serves both the skip and the resume decision."""
    found = [(record.get("started") or "", record.get("status"), path)
             for path, record in (read_records([root]) if root.is_dir() else [])
             if record.get("config_hash") == config_hash_ and record.get("seed") == seed]
    return sorted(found, reverse=True)


def newest(runs: list[tuple[str, str, Path]], statuses: set[str]) -> Path | None:
    return next((path for _, status, path in runs if status in statuses), None)


def resumable(runs: list[tuple[str, str, Path]]) -> Path | None:
    """The folder of the newest interrupted run (killed, preempted, crashed) that saved a
    checkpoint at the end of an epoch."""
    record = newest(runs, {"running", "failed"})
    if record is not None and (record.parent / "checkpoints" / "last.ckpt").is_file():
        return record.parent
    return None


def run(cfg: DictConfig, output_dir: str | Path, tensorboard_root: str | Path | None = None) -> dict:
    """Train and test one configuration; always leaves a ``record.json``, normally in ``output_dir``.

    Returns the record (its folder is ``record["output_dir"]``).
    - A run whose variant and seed already has a ``done`` record under ``paths.output_root``
      is not run again (``force=true`` reruns it): its record is copied here, marked ``reused_from``.
    - A run of the same variant and seed that was interrupted after saving a checkpoint is
      resumed, in its own folder, from the end of its last finished epoch (``resumed`` counts how often).
    - A diverged run returns normally with status "diverged"; any other error is recorded
      as "failed" and raised again.
    Under DDP only global rank 0 reads and writes records.
    """
    output_dir = Path(output_dir)
    rank_zero = (_get_rank() or 0) == 0
    record = base_record(cfg)
    root = Path(cfg.paths.output_root)
    resume_from = None
    if not cfg.get("force", False):
        runs = earlier_runs(root, record["config_hash"], cfg.seed)
        done = newest(runs, {"done"})
        if done is not None:
            reused = {**json.loads(done.read_text()), "reused_from": str(done)}
            if rank_zero and done.resolve() != (output_dir / RECORD_NAME).resolve():
                save_record(output_dir / RECORD_NAME, reused)  # a sweep folder of the same name keeps its record
            return {**reused, "output_dir": str(output_dir if rank_zero else done.parent)}
        previous_run = resumable(runs)
        if previous_run is not None:
            previous = json.loads((previous_run / RECORD_NAME).read_text())
            log.warning("resuming the interrupted run in %s from its last checkpoint", previous_run)
            output_dir, resume_from = previous_run, previous_run / "checkpoints" / "last.ckpt"
            record["resumed"] = previous.get("resumed", 0) + 1
            record["started"] = previous.get("started", record["started"])
    record_path = output_dir / RECORD_NAME
    record["output_dir"] = str(output_dir)
    if rank_zero:
        save_record(record_path, record)  # a run killed from here on leaves "running", never "done"
    started = time.perf_counter()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()

    def save_progress():
        record.update(stats.as_record_fields())
        save_record(record_path, record)
    stats = RunStatistics(after_epoch=save_progress)
    if resume_from is not None:
        stats.restore(previous)
    try:
        net_config = network_config(cfg.model)  # before any data is read: a typo fails fast
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule = build_datamodule(cfg)
        task = build_task(cfg, net_config, datamodule.spec)
        record["params"] = sum(p.numel() for p in task.net.parameters())
        record["label_names"] = list(datamodule.spec.label_names)
        trainer, checkpoint = build_trainer(cfg, task, datamodule, output_dir, stats,
                                            Path(tensorboard_root) if tensorboard_root else None)
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from)
        test_metrics = trainer.test(task, datamodule=datamodule, ckpt_path="best", verbose=False)[0]
        record["status"] = "done"
        record["test"] = {k.removeprefix("test/"): v for k, v in test_metrics.items() if k != "test/loss"}
        record["test_loss"] = test_metrics.get("test/loss")
        record["val_best"] = {task.monitor.removeprefix("val/"): float(checkpoint.best_model_score)}
        record["best_checkpoint"] = checkpoint.best_model_path
        record["best_epoch"] = _best_epoch(stats.history, task)
        record["tensorboard"] = trainer.logger.log_dir
        record["world_size"] = trainer.world_size
        trainer.logger.log_hyperparams(hparams_for(record), final_metrics(record))
        trainer.logger.finalize("success")
    except TrainingDiverged as error:
        record.update(status="diverged", error=str(error))
        log.error("run diverged: %s", error)
    except BaseException as error:  # KeyboardInterrupt too: the record says how the run ended
        record.update(status="failed", error=f"{type(error).__name__}: {error}",
                      traceback=traceback.format_exc(limit=20))
        raise
    finally:
        device = task.device if "task" in locals() else torch.device("cpu")
        memory, memory_kind = peak_memory_mb(device, max(stats.peak_rss_mb, current_rss_mb()))
        record.update(stats.as_record_fields(), peak_memory_mb=memory, peak_memory_kind=memory_kind,
                      wall_seconds=time.perf_counter() - started,
                      finished=datetime.now(timezone.utc).isoformat())
        if rank_zero:
            save_record(record_path, record)
    return record


def _best_epoch(history: list[dict], task: SequenceTask) -> int | None:
    scored = [h for h in history if task.monitor in h]
    if not scored:
        return None
    pick = max if task.monitor_mode == "max" else min
    return pick(scored, key=lambda h: h[task.monitor])["epoch"]
