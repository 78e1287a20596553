"""What a person sees while a run trains, and where its metrics are tracked.

- In a terminal: Lightning's live progress bar. Piped to a file or a CI log, or in a terminal
  that reports no width (where a bar draws nothing): no progress bar (its redraws fill logs),
  one readable line per epoch instead.
- ``logger=tensorboard|csv|mlflow|wandb``: Lightning's own loggers, built from the config
  group with ``_target_``; the optional packages give a one-line install hint when missing.
"""
from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from . import SeqbenchError

log = logging.getLogger("seqbench.progress")
OPTIONAL_LOGGER_PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}


def _format(value: float) -> str:
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


class EpochLines(pl.Callback):
    """One line per finished epoch: epoch, train loss, validation metrics, seconds."""

    def __init__(self, statistics):
        self.statistics = statistics

    def on_train_epoch_end(self, trainer, module):
        if not trainer.is_global_zero or not self.statistics.history:
            return
        last = self.statistics.history[-1]
        metrics = "  ".join(f"{k.removeprefix('val/').replace('/', ' ')} {_format(v)}" for k, v in last.items()
                            if k.startswith("val/") and k != "val/loss")
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        log.info("epoch %d%s  train loss %s  val loss %s  %s  (%.1f s train, %.1f s val)",
                 last["epoch"] + 1, total, _format(last.get("train/loss_epoch", float("nan"))),
                 _format(last.get("val/loss", float("nan"))), metrics, last["seconds"] or 0.0,
                 last.get("validation_seconds") or 0.0)


class ProgressBar(pl.callbacks.TQDMProgressBar):
    """Lightning's bar with what a person watches for: the training loss (read every refresh, so
    no device synchronisation per step) and the last validation value of the metric that picks the
    best epoch."""

    def __init__(self, refresh_rate: int = 10):
        super().__init__(refresh_rate=refresh_rate)
        self.last_loss: float | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
        if batch_index % max(self.refresh_rate, 1) == 0:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            if loss is not None:
                self.last_loss = float(loss)
        super().on_train_batch_end(trainer, module, outputs, batch, batch_index)

    def get_metrics(self, trainer, module) -> dict:
        items = {k: v for k, v in super().get_metrics(trainer, module).items() if k != "v_num"}
        if self.last_loss is not None:
            items["loss"] = _format(self.last_loss)
        monitor = getattr(module, "monitor", None)
        value = trainer.callback_metrics.get(monitor) if monitor else None
        if value is not None:
            items[monitor.replace("/", " ")] = _format(float(value))
        return items


def terminal_columns() -> int:
    """The width of the terminal on standard output; 0 when it is not one or reports no width
    (some IDE consoles, a terminal emulator without a size)."""
    import os
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):  # not a terminal, a closed or replaced stream
        return 0


def wants_progress_bar(requested: bool) -> bool:
    """A live bar only where someone watches it and it can draw: a terminal with a width. Anywhere
    else (a pipe, a file, a terminal of 0 columns) the epoch lines say how the run goes."""
    try:
        interactive = sys.stdout.isatty()
    except (ValueError, AttributeError):
        interactive = False
    return bool(requested) and interactive and terminal_columns() > 0


def console_callbacks(options: dict, statistics) -> tuple[list[pl.Callback], dict]:
    options = dict(options)
    options["enable_progress_bar"] = wants_progress_bar(options.get("enable_progress_bar", True))
    extra = [ProgressBar()] if options["enable_progress_bar"] else [EpochLines(statistics)]
    return extra, options


def make_logger(cfg: DictConfig, run_name: str, tensorboard_dir: Path, output_dir: Path):
    """The logger the ``logger`` config group names (TensorBoard when there is none)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    spec = OmegaConf.to_container(cfg.logger, resolve=True) if cfg.get("logger") else {
        "_target_": "pytorch_lightning.loggers.TensorBoardLogger", "version": "", "default_hp_metric": False}
    spec = dict(spec)
    kind = spec.pop("kind", None) or spec["_target_"].rsplit(".", 1)[-1].removesuffix("Logger").lower()
    package = OPTIONAL_LOGGER_PACKAGES.get(kind)
    if package and importlib.util.find_spec(package) is None:
        raise SeqbenchError(f"logger={kind} needs the {package} package: pip install 'seqbench[{kind}]' "
                            f"(or pip install {package})")
    if kind == "tensorboard":
        spec["save_dir"] = spec.get("save_dir") or str(tensorboard_dir)
        spec["name"] = spec.get("name") or run_name
    elif kind == "csv":
        spec["save_dir"] = spec.get("save_dir") or str(output_dir / "csv")
        spec["name"] = spec.get("name") or run_name
    elif kind == "mlflow":
        spec["run_name"] = spec.get("run_name") or run_name
        root = Path(cfg.paths.output_root).resolve()
        # A database, not ./mlruns files: MLflow 3 refuses its file store unless told otherwise.
        spec["tracking_uri"] = spec.get("tracking_uri") or f"sqlite:///{root / 'mlflow.db'}"
        # A database tracking URI keeps metadata only; without this MLflow puts artifacts in
        # ./mlruns of whatever folder the command runs from.
        if not str(spec["tracking_uri"]).startswith(("file:", "/")):
            spec["artifact_location"] = spec.get("artifact_location") or (root / "mlruns-artifacts").as_uri()
    elif kind == "wandb":
        spec["name"] = spec.get("name") or run_name
        spec["save_dir"] = spec.get("save_dir") or str(output_dir)
    try:
        return instantiate(spec)
    except InstantiationException as error:  # Hydra's first line names the class; the cause is what to fix
        import re
        cause = error.__cause__ or error.__context__ or error
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(str(cause).split()))
        reason = f"{type(cause).__name__}: {' '.join(sentences[:2])[:300].rstrip('.')}"  # its words: what, what to do
        raise SeqbenchError(f"logger={kind} could not start: {reason}; fix its settings (logger.KEY=VALUE, "
                            f"see conf/logger/{kind}.yaml) or choose another logger (logger=tensorboard or csv)"
                            ) from None
