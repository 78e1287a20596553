"""LightningModules around ``RecurrentNet``: loss, metrics, optimiser; and a callback that
measures what a run record reports (epoch times, token throughput, history)."""
from __future__ import annotations

import time
from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from .models import RecurrentNet
from .record import current_rss_mb


class TrainingDiverged(RuntimeError):
    """The training loss stopped being a finite number."""


class SequenceTask(pl.LightningModule):
    """Shared loop; subclasses define the loss, the metrics and which metric picks the best epoch."""

    monitor: str
    monitor_mode: str

    def __init__(self, net: RecurrentNet, optimizer: Callable[..., torch.optim.Optimizer],
                 metadata: dict | None = None):
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        # What it takes to use a checkpoint on its own: network settings, vocabulary, label names.
        self.metadata = metadata or {}
        metrics = self.make_metrics()
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")

    def make_metrics(self) -> MetricCollection:
        raise NotImplementedError

    def loss_and_predictions(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, predictions, targets) with predictions and targets ready for the metrics."""
        raise NotImplementedError

    def forward(self, inputs, lengths):
        return self.net(inputs, lengths)

    def training_step(self, batch, batch_index):
        loss, _, _ = self.loss_and_predictions(batch)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"training loss became {loss.item()} at epoch {self.current_epoch}, "
                                   f"step {self.global_step}; lower optimizer.lr or set trainer.gradient_clip_val")
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(batch["lengths"]), sync_dist=True)
        return loss

    def _evaluate(self, batch, metrics: MetricCollection, stage: str):
        loss, predictions, targets = self.loss_and_predictions(batch)
        metrics.update(predictions, targets)
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=len(batch["lengths"]), sync_dist=True)
        self.log_dict(metrics, on_epoch=True)

    def validation_step(self, batch, batch_index):
        self._evaluate(batch, self.val_metrics, "val")

    def test_step(self, batch, batch_index):
        self._evaluate(batch, self.test_metrics, "test")

    def on_before_optimizer_step(self, optimizer):
        # Before clipping: the norm the optimiser was handed, the one that explodes or vanishes.
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in self.parameters()
                                                     if p.grad is not None]))
        self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["seqbench"] = self.metadata


class ClassificationTask(SequenceTask):
    monitor, monitor_mode = "val/acc", "max"

    def __init__(self, net: RecurrentNet, optimizer, num_classes: int, metadata: dict | None = None):
        self.num_classes = num_classes
        super().__init__(net, optimizer, metadata)

    def make_metrics(self) -> MetricCollection:
        return MetricCollection({"acc": MulticlassAccuracy(self.num_classes, average="micro"),
                                 "f1": MulticlassF1Score(self.num_classes, average="macro")})

    def loss_and_predictions(self, batch):
        logits, _ = self.net(batch["inputs"], batch["lengths"])  # (B, C)
        return F.cross_entropy(logits, batch["targets"]), logits, batch["targets"]


class RegressionTask(SequenceTask):
    """Per-step regression; the first ``warmup_steps`` steps are left out of loss and metrics
    (from sin alone the sign of cos is unknowable until the signal has moved)."""

    monitor, monitor_mode = "val/mse", "min"

    def __init__(self, net: RecurrentNet, optimizer, warmup_steps: int = 10, metadata: dict | None = None):
        super().__init__(net, optimizer, metadata)
        self.warmup_steps = warmup_steps

    def make_metrics(self) -> MetricCollection:
        return MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})

    def loss_and_predictions(self, batch):
        values, _ = self.net(batch["inputs"], batch["lengths"])  # (B, T, 1)
        steps = values.size(1)
        if self.warmup_steps >= steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} leaves nothing of sequences of {steps} steps")
        positions = torch.arange(steps, device=values.device).unsqueeze(0)
        scored = (positions >= self.warmup_steps) & (positions < batch["lengths"].unsqueeze(1))  # (B, T)
        predictions, targets = values.squeeze(-1)[scored], batch["targets"][scored]
        return F.mse_loss(predictions, targets), predictions, targets


class RunStatistics(pl.Callback):
    """Training seconds per epoch (validation excluded), real tokens seen, per-epoch history."""

    def __init__(self, after_epoch: Callable[[], None] | None = None):
        self.after_epoch = after_epoch  # e.g. save the record, so a killed run keeps its history
        self.epoch_seconds: list[float] = []
        self.history: list[dict] = []
        self.train_tokens = 0
        self.peak_rss_mb = current_rss_mb()
        self._epoch_start: float | None = None
        self._epoch_tokens = None

    def restore(self, previous_record: dict) -> None:
        """Carry on the statistics of an interrupted run that is being resumed."""
        self.epoch_seconds = list(previous_record.get("epoch_seconds") or [])
        self.history = list(previous_record.get("history") or [])
        self.train_tokens = int(previous_record.get("train_tokens") or 0)

    @staticmethod
    def _now(trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, module):
        self._epoch_tokens = torch.zeros((), dtype=torch.int64, device=module.device)
        self._epoch_start = self._now(trainer)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        self._epoch_tokens += batch["lengths"].sum()
        if batch_index % 20 == 0:
            self.peak_rss_mb = max(self.peak_rss_mb, current_rss_mb())

    def on_validation_end(self, trainer, module):
        self.peak_rss_mb = max(self.peak_rss_mb, current_rss_mb())

    def _close_epoch(self, trainer):
        if self._epoch_start is not None:
            self.epoch_seconds.append(self._now(trainer) - self._epoch_start)
            self.train_tokens += int(self._epoch_tokens)
            self._epoch_start = None

    def on_validation_start(self, trainer, module):
        if trainer.training and not trainer.sanity_checking:
            self._close_epoch(trainer)

    def on_train_epoch_end(self, trainer, module):
        self._close_epoch(trainer)  # only when no validation ran this epoch
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith("val/") or k == "train/loss_epoch"}
        self.history.append({"epoch": trainer.current_epoch, "seconds": self.epoch_seconds[-1], **metrics})
        if self.after_epoch is not None and trainer.is_global_zero:
            self.after_epoch()

    def as_record_fields(self) -> dict:
        """What the run record reports of these statistics (also while the run is in progress)."""
        return {"epochs": len(self.epoch_seconds), "epoch_seconds": self.epoch_seconds, "history": self.history,
                "train_tokens": self.train_tokens, "train_tokens_per_s": self.tokens_per_second}

    @property
    def tokens_per_second(self) -> float | None:
        total = sum(self.epoch_seconds)
        return self.train_tokens / total if total > 0 else None
