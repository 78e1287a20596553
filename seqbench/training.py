"""LightningModules around ``RecurrentNet``: loss, metrics, optimiser, one per kind of task;
and the callbacks that measure a run (``RunStatistics``) and own its record (``RecordWriter``)."""
from __future__ import annotations

import math
import time
from typing import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Checkpoint
from torchmetrics import MetricCollection

from .models import RecurrentNet
from .record import current_rss_mb
from .runtime import stop_if_requested
from .tasks import TASKS, TaskKind


class TrainingDiverged(RuntimeError):
    """The training loss stopped being a finite number."""


def torchmetrics_of(task: TaskKind, num_classes: int | None = None) -> MetricCollection:
    """The metrics a run of ``task`` computes while it trains, as its entries in the task registry
    name them (torchmetrics classes fed each evaluation step's predictions and targets)."""
    import importlib
    metrics = {}
    for metric in task.training_metrics:
        if metric.torchmetric is None:   # logged by the module itself
            continue
        module, _, name = metric.torchmetric.rpartition(".")
        options = {**dict(metric.options), **({"num_classes": num_classes} if metric.counts_classes else {})}
        metrics[metric.name] = getattr(importlib.import_module(module), name)(**options)
    return MetricCollection(metrics)


class SequenceTask(pl.LightningModule):
    """Shared loop; subclasses define the loss, the metrics and which metric picks the best epoch.

    No host-device synchronisation per step: the loss is checked for finiteness every
    ``check_every`` steps and at the end of each epoch (a NaN stays NaN, so it is still caught),
    and the gradient norm comes from the clipping pass, logged as a tensor.
    """

    monitor: str
    monitor_mode: str

    def __init__(self, net: RecurrentNet, optimizer: Callable[..., torch.optim.Optimizer],
                 metadata: dict | None = None, check_every: int = 50):
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        # What it takes to use a checkpoint on its own: network settings, vocabulary, label names.
        self.metadata = metadata or {}
        self.check_every = check_every
        metrics = self.make_metrics()
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.collect_predictions = False   # run() sets it for the final test: per-example predictions
        self.predictions: list[dict[str, torch.Tensor]] = []

    def make_metrics(self) -> MetricCollection:
        raise NotImplementedError

    def loss_and_predictions(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, predictions, targets) with predictions and targets ready for the metrics."""
        raise NotImplementedError

    def example_predictions(self, batch) -> dict[str, torch.Tensor]:
        """Per-example outputs for the saved test predictions (one row per example)."""
        raise NotImplementedError

    def forward(self, inputs, lengths):
        return self.net(inputs, lengths)

    def _check_finite(self, loss: torch.Tensor, where: str) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"training loss became {float(loss)} {where}; lower optimizer.lr or set "
                                   f"trainer.gradient_clip_val")

    def training_step(self, batch, batch_index):
        loss, _, _ = self.loss_and_predictions(batch)
        if batch_index % self.check_every == 0:
            self._check_finite(loss, f"at epoch {self.current_epoch}, step {self.global_step}")
        # Per-step scalars go to the logger through StepScalars, every log_every_n_steps steps;
        # RunStatistics logs the epoch mean over all processes as train/loss_epoch.
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
        if self.collect_predictions:
            self.predictions.append({k: v.detach().cpu() for k, v in self.example_predictions(batch).items()})

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        # One pass over the gradients gives both the clipping and the logged norm (before clipping:
        # the norm the optimiser was handed, the one that explodes or vanishes).
        parameters = [p for p in self.parameters() if p.grad is not None]
        if any(p.grad.is_sparse for p in parameters):  # optimizer.sparse_embedding=true
            from .optim import clip_gradients
            self.last_grad_norm = clip_gradients(parameters, gradient_clip_val, gradient_clip_algorithm).detach()
            return
        if gradient_clip_val and (gradient_clip_algorithm in (None, "norm")):
            norm = torch.nn.utils.clip_grad_norm_(parameters, gradient_clip_val)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in parameters])
            if gradient_clip_val:
                torch.nn.utils.clip_grad_value_(parameters, gradient_clip_val)
        self.last_grad_norm = norm.detach()  # read (and synchronised) only on logging steps

    def configure_optimizers(self):
        embedding = getattr(self.net.input_layer, "weight", None)
        sparse = getattr(self.net.input_layer, "sparse", False)  # optimizer.sparse_embedding=true
        # What the model asks of the optimiser (seqbench/optim.py): learning-rate factors on some
        # parameters (lru_deep), a scaled peak learning rate and a warmup (bitransformer).
        lr_scale, warmup_steps = getattr(self.net.config, "lr_scale", 1.0), getattr(self.net.config, "warmup_steps", 0)
        from .optim import configure, lr_factors
        if lr_factors(self) or lr_scale != 1.0 or warmup_steps:
            return configure(self.optimizer_factory, self, embedding if sparse else None, lr_scale, warmup_steps)
        if sparse:
            from .optim import with_sparse_embedding
            return with_sparse_embedding(self.optimizer_factory, list(self.parameters()), embedding)
        return self.optimizer_factory(self.parameters())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # What the checkpoint was built from (network settings, data spec) and for which run (its
        # run key: a resume checks it), as nanoGPT's checkpoints carry their model_args.
        checkpoint["seqbench"] = self.metadata


def _masked(values: torch.Tensor, lengths: torch.Tensor, start: int = 0) -> torch.Tensor:
    """(B, T) mask of the real steps from ``start`` on."""
    positions = torch.arange(values.size(1), device=values.device).unsqueeze(0)
    return (positions >= start) & (positions < lengths.to(values.device).unsqueeze(1))


class ClassificationTask(SequenceTask):
    """One label per sequence (IMDB, TREC, your own files)."""
    monitor, monitor_mode = TASKS["classification"].monitor, TASKS["classification"].direction

    def __init__(self, net: RecurrentNet, optimizer, num_classes: int, metadata: dict | None = None, **kwargs):
        self.num_classes = num_classes
        super().__init__(net, optimizer, metadata, **kwargs)

    def make_metrics(self) -> MetricCollection:
        return torchmetrics_of(TASKS["classification"], self.num_classes)

    def loss_and_predictions(self, batch):
        logits, _ = self.net(batch["inputs"], batch["lengths"])  # (B, C)
        return F.cross_entropy(logits, batch["targets"]), logits, batch["targets"]

    def example_predictions(self, batch):
        logits, _ = self.net(batch["inputs"], batch["lengths"])
        probabilities = torch.softmax(logits.float(), dim=-1)
        out = {"index": batch["index"]}
        if "targets" in batch:  # texts without labels (eval --file) have no target to write
            out["target"] = batch["targets"]
        return {**out, "predicted": probabilities.argmax(-1), "probabilities": probabilities}


class RegressionTask(SequenceTask):
    """Per-step regression (sin -> cos): the first ``warmup_steps`` steps are left out of loss and
    metrics (from sin alone the sign of cos is unknowable until the signal has moved). With
    ``per_step=False`` one value per sequence, read after its last step (the adding problem)."""

    # Both regression tasks (per step, last step) pick the best epoch by the same metric.
    monitor, monitor_mode = TASKS["per_step_regression"].monitor, TASKS["per_step_regression"].direction

    def __init__(self, net: RecurrentNet, optimizer, warmup_steps: int = 10, per_step: bool = True,
                 metadata: dict | None = None, **kwargs):
        super().__init__(net, optimizer, metadata, **kwargs)
        self.warmup_steps, self.per_step = warmup_steps, per_step

    def make_metrics(self) -> MetricCollection:
        return torchmetrics_of(TASKS["per_step_regression"])   # the last-step task's are the same

    def loss_and_predictions(self, batch):
        values, _ = self.net(batch["inputs"], batch["lengths"])  # (B, T, 1) or (B, 1)
        if not self.per_step:
            predictions, targets = values.squeeze(-1), batch["targets"]
            return F.mse_loss(predictions, targets), predictions, targets
        steps = values.size(1)
        if self.warmup_steps >= steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} leaves nothing of sequences of {steps} steps")
        scored = _masked(values.squeeze(-1), batch["lengths"], self.warmup_steps)  # (B, T)
        predictions, targets = values.squeeze(-1)[scored], batch["targets"][scored]
        return F.mse_loss(predictions, targets), predictions, targets

    def example_predictions(self, batch):
        values, _ = self.net(batch["inputs"], batch["lengths"])
        if not self.per_step:
            return {"index": batch["index"], "target": batch["targets"], "prediction": values.squeeze(-1)}
        # One row per sequence: its mean squared error over the scored steps.
        scored = _masked(values.squeeze(-1), batch["lengths"], self.warmup_steps).float()
        errors = (values.squeeze(-1) - batch["targets"]) ** 2 * scored
        return {"index": batch["index"], "squared_error": errors.sum(1) / scored.sum(1).clamp_min(1)}


class PerStepClassificationTask(SequenceTask):
    """A class at every step (the copy task): cross-entropy over every real step (which also
    picks the best epoch); accuracy over the steps where ``batch["recall"]`` is True (the
    symbols the model must reproduce)."""

    monitor, monitor_mode = TASKS["per_step_classification"].monitor, TASKS["per_step_classification"].direction

    def __init__(self, net: RecurrentNet, optimizer, num_classes: int, metadata: dict | None = None, **kwargs):
        self.num_classes = num_classes
        super().__init__(net, optimizer, metadata, **kwargs)

    def make_metrics(self) -> MetricCollection:
        return torchmetrics_of(TASKS["per_step_classification"], self.num_classes)

    def _loss(self, logits, batch) -> torch.Tensor:
        real = _masked(batch["targets"], batch["lengths"])
        return F.cross_entropy(logits[real], batch["targets"][real])

    def loss_and_predictions(self, batch):
        logits, _ = self.net(batch["inputs"], batch["lengths"])  # (B, T, C)
        recall = batch["recall"] & _masked(batch["targets"], batch["lengths"])
        return self._loss(logits, batch), logits[recall], batch["targets"][recall]

    def _evaluate(self, batch, metrics, stage):
        super()._evaluate(batch, metrics, stage)
        logits, _ = self.net(batch["inputs"], batch["lengths"])
        # Cross-entropy per step, averaged over all steps: the quantity the memoryless baseline
        # 10 log(8) / (T + 20) is stated in.
        self.log(f"{stage}/ce", self._loss(logits, batch), on_epoch=True, batch_size=len(batch["lengths"]),
                 sync_dist=True)

    def example_predictions(self, batch):
        logits, _ = self.net(batch["inputs"], batch["lengths"])  # (B, T, C)
        recall = batch["recall"]
        hits = ((logits.argmax(-1) == batch["targets"]) & recall).sum(1).float() / recall.sum(1).clamp_min(1)
        # Cross-entropy per step of each sequence: the task's primary metric, per example.
        real = _masked(batch["targets"], batch["lengths"]).float()
        per_step = F.cross_entropy(logits.float().transpose(1, 2), batch["targets"], reduction="none")  # (B, T)
        ce = (per_step * real).sum(1) / real.sum(1).clamp_min(1)
        return {"index": batch["index"], "ce": ce, "recall_accuracy": hits}


class StopWhenAsked(pl.Callback):
    """A SIGTERM or Ctrl-C whose exception Python dropped (see ``runtime.stop_if_requested``) stops
    the run at the next batch, as one that raised at once would have: recorded "interrupted",
    resumable. Lightning's own SIGTERM flag is reset when fit or test starts, so a signal dropped
    before them (data set-up, planning) would otherwise go unheard."""

    def on_train_batch_start(self, *args):
        stop_if_requested()

    def on_validation_batch_start(self, *args):
        stop_if_requested()

    def on_test_batch_start(self, *args):
        stop_if_requested()


class StopWhenSolved(pl.Callback):
    """Remembers the update of the first validation (every epoch) whose ``val/<solved metric>``
    meets the data set's "solved" threshold (the updates to solve), and ends training at the first
    validation that meets it with a margin: the error the threshold allows, halved (adding: MSE
    below half of ``solved_below``; copy: 1 - accuracy at most half of 1 - ``solved_above``). A
    memory run stops when it has answered, so the cap bounds the unsolved runs only; "solved" in
    tables is still judged on the test set.

    Why the margin: a run stopped at its first crossing sits on the line, picked by validation's
    luckiest draw, and the test set, an unbiased estimate, lands just above it about half the time
    (stage 1 of the memory grid, stopped that way: 9 of the 20 adding runs at T = 100 that crossed
    on validation ended at test MSE 0.0101-0.0108). Its state is checkpointed, so a resumed run
    keeps the update it was solved at."""

    STOP_MARGIN = 0.5  # the share of the threshold's error allowance a run must reach to stop

    def __init__(self, task: TaskKind, threshold: float):
        self.task, self.threshold = task, threshold
        below = task.solved_rule.endswith("below")
        self.stop_threshold = threshold * self.STOP_MARGIN if below else 1 - (1 - threshold) * self.STOP_MARGIN
        self.solved_at_update: int | None = None

    def state_dict(self) -> dict:
        return {"solved_at_update": self.solved_at_update}

    def load_state_dict(self, state: dict) -> None:
        self.solved_at_update = state.get("solved_at_update", self.solved_at_update)

    def on_validation_end(self, trainer, module):
        if trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(f"val/{self.task.solved_metric}")
        if value is None:
            return
        if self.solved_at_update is None and self.task.meets_threshold(float(value), self.threshold):
            self.solved_at_update = int(trainer.global_step)
        if self.solved_at_update is not None and self.task.meets_threshold(float(value), self.stop_threshold):
            trainer.should_stop = True


class StepScalars(pl.Callback):
    """train/loss_step and train/grad_norm, written straight to the logger every
    ``log_every_n_steps`` steps. Lightning's ``self.log`` costs about 1.5 ms a call on CPU (it
    moves its result collection each time) for values the logger writes only every n steps;
    here a step that is not logged costs nothing and forces no device synchronisation."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        step = trainer.global_step
        if trainer.logger is None or step % max(trainer.log_every_n_steps, 1) != 0:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        values = {"train/loss_step": float(loss)}
        norm = getattr(module, "last_grad_norm", None)
        if norm is not None:
            values["train/grad_norm"] = float(norm)
        if trainer.is_global_zero:
            trainer.logger.log_metrics(values, step=step)


class RunStatistics(pl.Callback):
    """What a record reports of training: training seconds per epoch (validation excluded and
    timed on its own), real tokens seen (summed over DDP processes), per-epoch history.

    Its state is saved in every checkpoint, so a resumed run continues from exactly the epoch
    its ``last.ckpt`` describes: no epoch is counted twice, even when a kill fell between the
    checkpoint and the record.
    """

    def __init__(self):
        self.epoch_seconds: list[float] = []
        self.validation_seconds: list[float] = []
        self.history: list[dict] = []
        self.train_tokens = 0
        self.training_finished = False   # early-stopped or out of epochs: a resume must not train on
        self._fit_ended = False          # trainer.test(ckpt_path=best) loads callback states too: ignore them
        self.peak_rss_mb = current_rss_mb()
        self._train_start: float | None = None
        self._train_seconds: float | None = None
        self._validation_start: float | None = None
        self._validation_seconds = 0.0
        self._epoch_tokens: torch.Tensor | None = None
        self._epoch_loss: torch.Tensor | None = None   # sum of loss x examples, on the device
        self._epoch_examples = 0

    def state_dict(self) -> dict:
        return {"epoch_seconds": self.epoch_seconds, "validation_seconds": self.validation_seconds,
                "history": self.history, "train_tokens": self.train_tokens,
                "training_finished": self.training_finished}

    def load_state_dict(self, state: dict) -> None:
        if self._fit_ended:  # the test loads the best checkpoint; the statistics stay the whole run's
            return
        self.epoch_seconds = list(state.get("epoch_seconds", []))
        self.validation_seconds = list(state.get("validation_seconds", []))
        self.history = list(state.get("history", []))
        self.train_tokens = int(state.get("train_tokens", 0))
        self.training_finished = bool(state.get("training_finished", False))

    @staticmethod
    def _now(trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    @staticmethod
    def _fitting(trainer) -> bool:
        return trainer.state.fn == "fit" and not trainer.sanity_checking

    def on_fit_end(self, trainer, module):
        self._fit_ended = True

    def on_train_start(self, trainer, module):
        if self.training_finished:  # resumed after training had ended (killed during the test)
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer, module):
        self._epoch_tokens = torch.zeros((), dtype=torch.int64, device=module.device)
        self._epoch_loss = torch.zeros((), dtype=torch.float64, device=module.device)
        self._epoch_examples = 0
        self._train_seconds, self._validation_seconds = None, 0.0
        self._train_start = self._now(trainer)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        self._epoch_tokens += batch["lengths"].sum()
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._epoch_loss += loss.detach().double() * len(batch["lengths"])
            self._epoch_examples += len(batch["lengths"])
        if batch_index % 20 == 0:
            self.peak_rss_mb = max(self.peak_rss_mb, current_rss_mb())

    def _stop_training_clock(self, trainer) -> None:
        if self._train_start is not None and self._train_seconds is None:
            self._train_seconds = self._now(trainer) - self._train_start

    def on_validation_start(self, trainer, module):
        if self._fitting(trainer):
            self._stop_training_clock(trainer)  # validation inside a training epoch is not training time
            self._validation_start = self._now(trainer)

    def on_validation_end(self, trainer, module):
        self.peak_rss_mb = max(self.peak_rss_mb, current_rss_mb())
        if self._fitting(trainer) and self._validation_start is not None:
            self._validation_seconds += self._now(trainer) - self._validation_start
            self._validation_start = None

    def on_train_epoch_end(self, trainer, module):
        self._stop_training_clock(trainer)  # when no validation ran this epoch
        tokens = int(trainer.strategy.reduce(self._epoch_tokens, reduce_op="sum"))  # every process's tokens
        totals = torch.stack([self._epoch_loss, torch.tensor(float(self._epoch_examples), dtype=torch.float64,
                                                             device=self._epoch_loss.device)])
        loss_sum, examples = trainer.strategy.reduce(totals, reduce_op="sum").tolist()
        train_loss = loss_sum / examples if examples else float("nan")
        if examples and not math.isfinite(train_loss):
            raise TrainingDiverged(f"training loss became {train_loss} during epoch {trainer.current_epoch}; "
                                   f"lower optimizer.lr or set trainer.gradient_clip_val")
        module.log("train/loss_epoch", train_loss, on_epoch=True, on_step=False)
        self.epoch_seconds.append(self._train_seconds)
        self.validation_seconds.append(self._validation_seconds)
        self.train_tokens += tokens
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        metrics["train/loss_epoch"] = train_loss
        self.history.append({"epoch": trainer.current_epoch, "seconds": self._train_seconds,
                             "validation_seconds": self._validation_seconds, "train_tokens": tokens, **metrics})
        self.training_finished = bool(trainer.should_stop) or trainer.current_epoch + 1 >= (trainer.max_epochs or 0) > 0
        self._train_start = None

    def as_record_fields(self) -> dict:
        """What the run record reports of these statistics (also while the run is in progress)."""
        return {"epochs": len(self.epoch_seconds), "epoch_seconds": self.epoch_seconds,
                "validation_seconds": self.validation_seconds, "history": self.history,
                "train_tokens": self.train_tokens, "train_tokens_per_s": self.tokens_per_second}

    @property
    def tokens_per_second(self) -> float | None:
        total = sum(self.epoch_seconds)
        return self.train_tokens / total if total > 0 else None


class RecordWriter(Checkpoint):
    """Owns ``record.json`` while a run trains. A ``Checkpoint`` so that Lightning runs it after
    ``ModelCheckpoint`` at the end of each epoch: the record is written after ``last.ckpt``, and
    both describe the same epoch (a kill between the two leaves the record one epoch behind the
    checkpoint, never ahead of it; the statistics themselves come back from the checkpoint)."""

    def __init__(self, save: Callable[[dict], None], record: dict, statistics: RunStatistics):
        self.save, self.record, self.statistics = save, record, statistics

    def on_train_epoch_end(self, trainer, module):
        if trainer.is_global_zero:
            self.record.update(self.statistics.as_record_fields())
            self.save(self.record)


# The LightningModule that trains each kind of task (seqbench.tasks.TASKS).
TASK_MODULES: dict[str, type[SequenceTask]] = {
    "classification": ClassificationTask,
    "per_step_regression": RegressionTask,        # one value per step (sin -> cos)
    "last_step_regression": RegressionTask,       # one value after the last step (the adding problem)
    "per_step_classification": PerStepClassificationTask,
}


def best_epoch(history: list[dict], monitor: str, mode: str) -> int | None:
    scored = [h for h in history if isinstance(h.get(monitor), float) and math.isfinite(h[monitor])]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda h: h[monitor])["epoch"]


def build_task(config: dict, network, spec, metadata: dict | None = None, train: bool = True) -> SequenceTask:
    """The LightningModule the task registry names for ``spec.task``, around a fresh network.
    ``train=False`` (eval): no optimiser is built, and ``config["optimizer"]`` is not read."""
    import dataclasses

    import hydra
    from omegaconf import DictConfig, OmegaConf
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    optimizer_config = dict(config["optimizer"]) if train else {}
    # seqbench's own key, not the optimiser's: a sparse embedding gradient and SparseAdam for it.
    sparse_embedding = bool(optimizer_config.pop("sparse_embedding", False))
    net = RecurrentNet(network, spec.num_outputs, vocab_size=spec.vocab_size, input_dim=spec.input_dim,
                       per_step=spec.per_step, sparse_embedding=sparse_embedding)
    optimizer = hydra.utils.instantiate(optimizer_config) if train else None
    module = TASK_MODULES[spec.task]
    metadata = {**(metadata or {}), "network": dataclasses.asdict(network), "spec": dataclasses.asdict(spec)}
    options = {"metadata": metadata, "check_every": int((config.get("trainer") or {}).get(
        "divergence_check_every_n_steps") or 50)}
    if spec.task in ("classification", "per_step_classification"):
        options["num_classes"] = spec.num_outputs
    else:
        options.update(warmup_steps=(config.get("dataset") or {}).get("warmup_steps", 0), per_step=spec.per_step)
    return module(net, optimizer, **options)
