"""What a run shows in TensorBoard beyond Lightning's scalars: gradient norm, attention over
fixed validation examples (heat map and highlighted text), predicted versus true cos,
gradient flow through time, and the HParams tab with the run's real final metrics."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from .config import computation_config
from .registry import model_entry


def _figure(width: float, height: float):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(width, height))


def _experiment(trainer: pl.Trainer):
    """The SummaryWriter of the TensorBoard logger; None with another logger (CSV, MLflow, W&B
    take the scalars; figures and text are TensorBoard's) or when logging is off."""
    from pytorch_lightning.loggers import TensorBoardLogger
    logger = trainer.logger
    return logger.experiment if isinstance(logger, TensorBoardLogger) else None


def _figure_sink(trainer: pl.Trainer):
    """Where a figure goes: TensorBoard's images, or (MLflow) kept and logged as an artifact when
    the run ends; None for loggers without figures."""
    from pytorch_lightning.loggers import MLFlowLogger
    writer = _experiment(trainer)
    if writer is not None:
        return lambda tag, figure, step: writer.add_figure(tag, figure, global_step=step)
    if isinstance(trainer.logger, MLFlowLogger):
        kept = trainer.__dict__.setdefault("seqbench_figures", {})

        def keep(tag, figure, step):
            import matplotlib.pyplot as plt
            previous = kept.pop(tag.replace("/", "_"), None)
            if previous is not None:
                plt.close(previous)
            kept[tag.replace("/", "_")] = figure
        return keep
    return None


def attention_figure(tokens: list[list[str]], weights: list[list[float]]):
    """One row per example: its tokens coloured by attention weight (tokens x weight heat map)."""
    import numpy as np
    longest = max(len(t) for t in tokens)
    grid = np.full((len(tokens), longest), np.nan)
    for row, w in enumerate(weights):
        grid[row, : len(w)] = w
    fig, ax = _figure(min(2 + 0.55 * longest, 30), 0.9 + 0.6 * len(tokens))
    image = ax.imshow(grid, cmap="Reds", aspect="auto", vmin=0)
    darkest = np.nanmax(grid) if np.isfinite(grid).any() else 1.0
    for row, words in enumerate(tokens):
        for column, word in enumerate(words):
            light = grid[row, column] > 0.6 * darkest  # white on dark cells, black on light ones
            ax.text(column, row, word, ha="center", va="center", fontsize=7, rotation=90 if len(word) > 4 else 0,
                    color="white" if light else "black")
    ax.set_yticks(range(len(tokens)), [f"example {i}" for i in range(len(tokens))])
    ax.set_xticks([])
    ax.set_xlabel("token position")
    fig.colorbar(image, ax=ax, label="attention weight")
    fig.tight_layout()
    return fig


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|<>"})


def highlighted_markdown(tokens: list[str], weights: list[float]) -> str:
    """Tokens with their weights in brackets, the top three in bold: plain Markdown, which
    TensorBoard's text tab renders (it escapes HTML such as <sub>)."""
    top = set(sorted(range(len(weights)), key=lambda i: -weights[i])[:3])
    words = []
    for i, (token, weight) in enumerate(zip(tokens, weights)):
        word = token.translate(_MARKDOWN_SPECIAL)
        words.append(f"**{word}** ({weight:.2f})" if i in top else f"{word} ({weight:.2f})")
    return " ".join(words)


class AttentionSnapshots(pl.Callback):
    """At the end of each validation epoch, attention over the same few validation examples."""

    def __init__(self, examples: dict[str, torch.Tensor], vocabulary: list[str], label_names: list[str]):
        self.examples, self.vocabulary, self.label_names = examples, vocabulary, label_names

    def on_validation_epoch_end(self, trainer, module):
        writer, sink = _experiment(trainer), _figure_sink(trainer)
        if sink is None or trainer.sanity_checking:
            return
        was_training = module.training
        module.eval()
        with torch.no_grad():
            inputs = self.examples["inputs"].to(module.device)
            logits, weights = module.net(inputs, self.examples["lengths"].to(module.device))
        module.train(was_training)
        tokens, rows, lines = [], [], []
        for i, length in enumerate(self.examples["lengths"].tolist()):
            words = [self.vocabulary[int(t)] for t in self.examples["inputs"][i, :length]]
            w = weights[i, :length].tolist()
            tokens.append(words)
            rows.append(w)
            truth = self.label_names[int(self.examples["targets"][i])]
            guess = self.label_names[int(logits[i].argmax())]
            lines.append(f"example {i} (true: {truth}, predicted: {guess}): {highlighted_markdown(words, w)}")
        # The step Lightning logs epoch-end (validation) metrics at, so the sliders line up.
        step = max(trainer.global_step - 1, 0)
        sink("attention/heatmap", attention_figure(tokens, rows), step)
        if writer is not None:
            writer.add_text("attention/words", "\n\n".join(lines), global_step=step)


def pick_examples(dataset, count: int = 4, max_tokens: int = 30) -> dict[str, torch.Tensor]:
    """The first ``count`` short validation examples (fixed, so epochs compare)."""
    from .data.batching import pad_batch
    chosen = [i for i in range(len(dataset)) if int(dataset.lengths[i]) <= max_tokens][:count] or [0]
    return pad_batch([dataset[i] for i in chosen])


class SignalSnapshot(pl.Callback):
    """After testing, predicted versus true cos over the first few test sequences."""

    def __init__(self, batch: dict[str, torch.Tensor], warmup_steps: int, count: int = 3):
        self.batch = {k: v[:count] for k, v in batch.items()}
        self.warmup_steps = warmup_steps

    def on_test_end(self, trainer, module):
        sink = _figure_sink(trainer)
        if sink is None:
            return
        # The network's own dtype: under trainer.precision=bf16-true its weights are bfloat16, and
        # this call bypasses Lightning's input conversion.
        dtype = next(module.net.parameters()).dtype
        with torch.no_grad():
            values, _ = module.net(self.batch["inputs"].to(module.device, dtype=dtype),
                                   self.batch["lengths"].to(module.device))
        values = values.float()  # matplotlib reads no bfloat16
        fig, ax = _figure(7, 3.5)
        for i in range(len(values)):
            line, = ax.plot(self.batch["targets"][i].cpu(), linewidth=2, alpha=0.35)
            ax.plot(values[i, :, 0].cpu(), linestyle="--", color=line.get_color())
        ax.axvspan(0, self.warmup_steps, color="grey", alpha=0.15, label="warm-up (not scored)")
        ax.set_xlabel("step")
        ax.set_ylabel("cos (solid: true, dashed: predicted)")
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        sink("sincos/predicted_vs_true", fig, trainer.global_step)


class GradientFlowSnapshot(pl.Callback):
    """After training: ‖∂L/∂h_t‖ per step through the trained first recurrent layer."""

    def __init__(self, steps: int = 100):
        self.steps = steps

    def on_train_end(self, trainer, module):
        from .diagnostics import gradient_flow, gradient_flow_figure
        writer, sink = _experiment(trainer), _figure_sink(trainer)
        if sink is None or not trainer.is_global_zero:
            return
        if not model_entry(module.net.config.cell).gradient_flow:
            if writer is not None:
                writer.add_text("gradient_flow/note", f"not measured: the gradient-flow diagnostic rebuilds rnn, lstm and "
                                                  f"gru layers as hand-written cells; it does not apply to "
                                                  f"{module.net.config.cell}", trainer.global_step)
            return
        layer = module.net.encoder.layers[0][0]
        with torch.random.fork_rng():  # the diagnostic's seeding must not move the run's random streams
            norms = gradient_flow(module.net.config.cell, layer.weight_ih_l0.size(1), module.net.config.hidden_size,
                                  steps=self.steps, weights=layer,
                                  nonlinearity=getattr(module.net.config, "nonlinearity", "tanh"))
        figure = gradient_flow_figure({module.net.config.cell: norms}, "trained layer, random inputs")
        sink("gradient_flow/norm_per_step", figure, trainer.global_step)
        if writer is not None:
            writer.add_scalar("gradient_flow/first_to_last_ratio", float(norms[0] / norms[-1]), trainer.global_step)


def hparams_for(record: dict) -> dict:
    """Flat, TensorBoard-friendly hyper-parameters of a run: the model, the optimiser, and the
    data-set and trainer settings that change what a run computes (the ones sweeps vary). Keys
    that only provide a default to another key by interpolation (``dataset.lr`` for
    ``optimizer.lr``) are left out: the value shown is the one the run trained with."""
    from .results import default_interpolations
    config = record.get("config") or {}
    computed = computation_config(config) if config else {}
    # Keys that exist to give another key its default (dataset.lr for optimizer.lr): the run
    # trained with the other key's value, whether it kept the default or was set on its own.
    sources = set((record.get("interpolations") or {}).values()) | set(default_interpolations().values())
    flat = {"model": record.get("model"), "dataset": record.get("dataset"), "seed": record.get("seed")}
    for group in ("model", "optimizer", "dataset", "trainer"):
        for key, value in (computed.get(group) or {}).items():
            if (not key.startswith("_") and key != "name" and f"{group}.{key}" not in sources
                    and isinstance(value, (int, float, str, bool))):
                flat[f"{group}.{key}"] = value
    return flat


def final_metrics(record: dict) -> dict[str, float]:
    out = {f"hparams/test_{k}": float(v) for k, v in (record.get("test") or {}).items()}
    out.update({f"hparams/val_best_{k}": float(v) for k, v in (record.get("val_best") or {}).items()})
    return out


# MLflow knows these run statuses; Lightning maps "success" and "failed" to two of them.
MLFLOW_STATUS = {"done": "FINISHED", "diverged": "FAILED", "failed": "FAILED", "interrupted": "KILLED"}


def run_tags(record: dict) -> dict[str, str]:
    """What a tracker needs to tell runs apart and trace them back: variant, data, seed, code."""
    return {"variant": str(record.get("model")), "dataset": str(record.get("dataset")), "seed": str(record.get("seed")),
            "git_commit": str(record.get("git_commit")), "data_fingerprint": str(record.get("data_fingerprint")),
            "code_fingerprint": str(record.get("code_fingerprint")), "run_key": str(record.get("run_key")),
            "record": str(record.get("output_dir"))}


def start_logging(trainer: pl.Trainer, record: dict) -> None:
    """Hyper-parameters before training: TensorBoard's hparams.yaml, MLflow's params and tags, ..."""
    from pytorch_lightning.loggers import MLFlowLogger
    if trainer.logger is None or not trainer.is_global_zero:
        return
    trainer.logger.log_hyperparams(hparams_for(record))
    if isinstance(trainer.logger, MLFlowLogger):
        for key, value in run_tags(record).items():
            trainer.logger.experiment.set_tag(trainer.logger.run_id, key, value)
        record["mlflow"] = {"tracking_uri": trainer.logger._tracking_uri, "run_id": trainer.logger.run_id}


def finish_logging(trainer: pl.Trainer, record: dict, record_path) -> None:
    """Final metrics and hyper-parameters to whatever logger the run used.

    TensorBoard: each run writes its HParams *session* (hyper-parameters, then the end status),
    never an experiment summary of its own. With no experiment summary in a folder, TensorBoard
    builds the HParams view from all sessions under whatever folder a user opens: the union of
    their hyper-parameters and metrics, so runs of different data sets show side by side.
    """
    from pytorch_lightning.loggers import MLFlowLogger, TensorBoardLogger
    logger = trainer.logger
    if logger is None or not trainer.is_global_zero:
        return
    params, metrics = hparams_for(record), final_metrics(record)
    step = trainer.global_step
    if isinstance(logger, TensorBoardLogger):
        from torch.utils.tensorboard.summary import hparams as hparams_summary
        writer = logger.experiment
        if writer.file_writer is None:  # Lightning already closed it (a run that stopped on an error)
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(log_dir=logger.log_dir)
        for name, value in metrics.items():
            writer.add_scalar(name, value, step)
        _, session_start, session_end = hparams_summary(_tensorboard_values(params), metrics)
        writer.file_writer.add_summary(session_start)
        writer.file_writer.add_summary(session_end)
        writer.flush()
    elif metrics:
        logger.log_metrics(metrics, step)
    if isinstance(logger, MLFlowLogger):
        client = logger.experiment
        for path in (record_path, record.get("best_checkpoint"),
                     Path(record_path).with_name("predictions.csv") if record_path else None):
            if path and Path(path).is_file():
                log_artifact(client, logger.run_id, Path(path))
        for name, figure in list(getattr(trainer, "seqbench_figures", {}).items()):
            client.log_figure(logger.run_id, figure, f"{name}.png")
        client.set_terminated(logger.run_id, MLFLOW_STATUS.get(record.get("status"), "FAILED"))
        return
    logger.finalize("success" if record.get("status") == "done" else "failed")


def _tensorboard_values(params: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in params.items()}


ARTIFACT_RECORD_NAME = "run_record.json"


def log_artifact(client, run_id: str, path: Path) -> None:
    """One file as an MLflow artifact; a record goes in as ``run_record.json``: artifacts are stored
    under the output root, where a file named record.json would be read as a run of its own (and
    reused, or counted by reports of that folder)."""
    path = Path(path)
    if path.name != "record.json":
        client.log_artifact(run_id, str(path))
        return
    import shutil
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / ARTIFACT_RECORD_NAME
        shutil.copyfile(path, copy)
        client.log_artifact(run_id, str(copy))
