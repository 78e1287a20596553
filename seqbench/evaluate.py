"""``seqbench eval RUN_OR_CHECKPOINT [overrides...] [--file PATH] [--out DIR]``: evaluate a
trained model and write its metrics (``metrics.json``) and per-example predictions
(``predictions.csv``).

- No overrides: the run's own test split, built from its recorded config.
- ``dataset=NAME`` and ``dataset.KEY=VALUE``: another data set or other settings, for example
  a generated task at another length (``dataset.length=400``) or IMDB reviews cut elsewhere;
  checked with a run's schemas before any data is read.
- ``model.cell=MODULE.CLASS``: your own encoder class, when the run's model is one.
- ``--file PATH``: your own CSV / TSV / JSON Lines file (a text column, and a label column
  when you want metrics) for a text classifier.

Text is always encoded with the checkpoint's own vocabulary, whatever data it comes from.
A run folder is data: its record and checkpoint are read (``weights_only=True``), nothing named
in them is imported or instantiated (eval builds no optimiser), and a copied folder uses its own
checkpoint and gets the output.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from . import SeqbenchError
from .config import check_dataset
from .explain import find_checkpoint, load_checkpoint
from .record import RECORD_NAME, read_record
from .registry import code_named_by_user
from .runtime import argument_parser, entry_point


def _record_of(run: Path, checkpoint: Path) -> dict:
    for candidate in ([run / RECORD_NAME] if run.is_dir() else []) + [checkpoint.parent.parent / RECORD_NAME]:
        if candidate.exists():
            record = read_record(candidate)  # bounded, a regular file, one line if not a record
            if isinstance(record.get("config"), dict):
                return record
            raise SeqbenchError(f"{candidate} holds no config: eval needs it to build the run's data")
    raise SeqbenchError(f"no record.json beside {checkpoint}: eval needs the run's folder (its config says how the "
                        f"data was built)")


EVAL_OVERRIDES = "dataset=NAME, dataset.KEY=VALUE or model.cell=MODULE.CLASS"


def _parse(overrides: list[str]) -> tuple[str | None, list[tuple[str, object, bool]], str | None]:
    """(dataset=NAME, [(dataset key, value, delete)], model.cell=...) from eval's overrides, parsed
    as a run parses its own (Hydra's syntax: ``dataset.max_len=abc`` is the text 'abc')."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    parser = OverridesParser.create()
    dataset, keys, cell = None, [], None
    for text in overrides:
        if "=" not in text and not text.startswith("~"):
            raise SeqbenchError(f"{text!r}: overrides are KEY=VALUE, e.g. dataset.length=400 or dataset=trec")
        try:
            override = parser.parse_override(text)
        except HydraException as error:
            raise SeqbenchError(f"{text!r}: {(str(error).strip().splitlines() or [''])[0]}") from None
        if override.is_sweep_override():
            raise SeqbenchError(f"{text!r}: eval takes one value per key")
        key, value = override.key_or_group, override.value()
        if key == "dataset" and not override.is_delete():
            dataset = value
        elif key.startswith("dataset."):
            keys.append((key.removeprefix("dataset."), value, override.is_delete()))
        elif key == "model.cell" and isinstance(value, str):
            cell = value
        else:
            raise SeqbenchError(f"{text!r}: eval takes {EVAL_OVERRIDES}; {key} is the trained run's, read from its "
                                f"checkpoint and record")
    return dataset, keys, cell


def _dataset_config(record: dict, overrides: list[str]) -> tuple[dict, str | None]:
    """(the data set to evaluate on, checked with a run's schemas; the user's model.cell, if any).
    ``dataset=NAME`` takes that data set's config from conf/ (the model stays the run's)."""
    name, keys, cell = _parse(overrides)
    dataset = dict(record["config"].get("dataset") or {})
    if name is not None:
        from hydra import compose, initialize_config_dir
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        from .runtime import CONFIG_DIR
        try:
            with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
                composed = compose(config_name="config", overrides=[f"dataset={name}"])
            dataset = OmegaConf.to_container(composed.dataset, resolve=True)
        except (HydraException, OmegaConfBaseException) as error:
            from .__main__ import _composition_error
            raise SeqbenchError(_composition_error(error)) from None
    else:
        # Where the run kept its token cache is the record's word, and eval writes only beside the
        # run (or where you say): the cache goes to the default place unless you set dataset.cache_dir.
        dataset.pop("cache_dir", None)
    for key, value, delete in keys:
        if delete:
            dataset.pop(key, None)
        else:
            dataset[key] = value
    check_dataset(dataset)  # dataset.length on sin->cos, dataset.max_len=abc: one line, before any data
    return dataset, cell


def _text_batches(texts: list, labels: list[int] | None, vocabulary, max_len: int, batch_size: int = 256):
    """Batches of texts (strings, or lists of tokens already split) in ``vocabulary``."""
    from .data.batching import TextSubset
    from .data.text import EncodedTexts, tokenize
    sequences = [vocabulary.encode((tokenize(text) if isinstance(text, str) else text)[:max_len]) for text in texts]
    encoded = EncodedTexts.from_lists(sequences, labels if labels is not None else [0] * len(texts))
    subset = TextSubset(encoded)
    for start in range(0, len(texts), batch_size):
        batch = subset.batch(list(range(start, min(start + batch_size, len(texts)))))
        if labels is None:  # no ground truth: no target column, never a made-up one
            del batch["targets"]
        yield batch


def evaluate(run: str | Path, overrides: list[str] | None = None, file: str | None = None,
             text_column: str = "text", label_column: str = "label", out: str | Path | None = None,
             multiline_text: bool = False) -> dict:
    from .data.text import Vocabulary
    from .data.declare import DataSpec, build_datamodule
    from .models import network_config
    from .train import save_predictions
    from .training import build_task
    run = Path(run)
    checkpoint_path = find_checkpoint(run)
    record = _record_of(run, checkpoint_path)
    dataset, cell = _dataset_config(record, overrides or [])  # checked before the checkpoint or any data is read
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise SeqbenchError(f"--out {out} is a file; give a folder (it will hold metrics.json and predictions.csv)")
    if file:
        from .datasets.text_file import check_readable
        check_readable(Path(file), "--file")  # a FIFO, a folder, a compressed file: one line, up front
    checkpoint = load_checkpoint(checkpoint_path)
    meta = checkpoint.get("seqbench") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("spec"), dict):
        raise SeqbenchError(f"{checkpoint_path} is not a seqbench checkpoint (no network settings in it)")
    try:
        spec = DataSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["spec"].items()})
    except TypeError as error:
        raise SeqbenchError(f"{checkpoint_path} is not a checkpoint this seqbench reads ({error})") from None
    model = dict(record["config"].get("model") or {})
    if cell:
        model["cell"] = cell
    seed = record["config"].get("seed", 0)
    config = {"model": model, "dataset": dataset, "seed": seed, "trainer": record["config"].get("trainer") or {}}
    # The record names the model; only a class you name here is imported (model.cell=...).
    trust = "if you trust that encoder, name it yourself: add model.cell=MODULE.CLASS to the eval command"
    with code_named_by_user([cell] if cell else [], trust):
        task = build_task(config, network_config(model), spec, train=False)
    try:
        task.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError) as error:
        raise SeqbenchError(f"{checkpoint_path} does not fit the model its run folder's record describes (a checkpoint "
                            f"of another run copied here?): {str(error).splitlines()[0][:200]}") from None
    task.eval()
    where = f"file {file}" if file else f"{dataset['name']} test split"
    if file:
        if not spec.vocabulary:
            raise SeqbenchError("--file reads text; this checkpoint's model does not take text")
        from .datasets.text_file import read_examples
        texts, names, _ = (read_examples(Path(file), text_column, label_column, "utf-8", multiline_text)
                           if _has_labels(Path(file), label_column) else (*_texts_only(Path(file), text_column), None))
        labels = None
        if names is not None:
            unknown = sorted(set(names) - set(spec.label_names))
            if unknown:
                raise SeqbenchError(f"{file}: labels {', '.join(unknown)} are not this model's "
                                    f"({', '.join(spec.label_names)})")
            labels = [spec.label_names.index(name) for name in names]
        batches = list(_text_batches(texts, labels, Vocabulary(list(spec.vocabulary)), spec.max_len or 400))
    else:
        datamodule = build_datamodule(dataset, int(seed))
        datamodule.setup()
        if datamodule.spec.task != spec.task or bool(spec.vocabulary) != bool(datamodule.spec.vocabulary):
            raise SeqbenchError(f"this model was trained on {meta.get('dataset')} ({spec.task.replace('_', ' ')}, "
                                f"{'text' if spec.vocabulary else 'signals'}); dataset={dataset['name']} poses "
                                f"{datamodule.spec.task.replace('_', ' ')} on "
                                f"{'text' if datamodule.spec.vocabulary else 'signals'}: evaluate it on a data set of "
                                f"its own kind")
        if spec.vocabulary and tuple(datamodule.spec.vocabulary) != tuple(spec.vocabulary):
            batches = _reencoded_test(datamodule, spec)
        else:
            batches = list(datamodule.test_dataloader())
    task.collect_predictions = True
    metrics = task.test_metrics
    metrics.reset()
    has_targets = not (file and labels is None)
    with torch.no_grad():
        for batch in batches:
            if has_targets:
                _, predictions, targets = task.loss_and_predictions(batch)
                metrics.update(predictions, targets)
            task.predictions.append({k: v.detach().cpu() for k, v in task.example_predictions(batch).items()})
    result = {k.removeprefix("test/"): float(v) for k, v in metrics.compute().items()} if has_targets else {}
    if has_targets and spec.task == "per_step_classification":  # its primary metric is logged, not a metric object
        with torch.no_grad():
            losses = [(float(task._loss(task.net(b["inputs"], b["lengths"])[0], b)), int(b["lengths"].sum()))
                      for b in batches]
        result = {"ce": sum(loss * steps for loss, steps in losses) / sum(steps for _, steps in losses), **result}
    out = Path(out) if out else (checkpoint_path.parent.parent / "eval" /
                                 f"{Path(file).stem if file else dataset['name']}-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    save_predictions(out / "predictions.csv", task.predictions, spec)
    summary = {"checkpoint": str(checkpoint_path), "evaluated_on": where, "metrics": result,
               "examples": sum(len(b["lengths"]) for b in batches), "overrides": overrides or [],
               "dataset": dataset}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    summary["out"] = str(out)
    return summary


def _reencoded_test(datamodule, spec) -> list[dict]:
    """Another text data set (or other settings): its test texts, token by token, in the
    checkpoint's vocabulary (a word outside the data set's own vocabulary stays <unk>)."""
    from .data.text import Vocabulary
    names = list(datamodule.spec.label_names)
    if set(names) - set(spec.label_names):
        raise SeqbenchError(f"the {datamodule.source.name} labels ({', '.join(names)}) are not this model's "
                            f"({', '.join(spec.label_names)})")
    test, itos = datamodule.corpus.splits["test"], datamodule.corpus.vocabulary.itos
    texts = [[itos[int(i)] for i in test.sequence(row)] for row in range(len(test))]
    labels = [spec.label_names.index(names[int(label)]) for label in test.labels]
    return list(_text_batches(texts, labels, Vocabulary(list(spec.vocabulary)), spec.max_len or 400))


def _has_labels(path: Path, label_column: str) -> bool:
    from .datasets.text_file import _rows, check_readable
    check_readable(path)
    for _, _, row, _ in _rows(path, "utf-8"):
        return label_column in row
    return False


def _texts_only(path: Path, text_column: str) -> tuple[list[str], None]:
    from .datasets.text_file import BadInputError, _rows
    texts = []
    for line, _, row, _ in _rows(path, "utf-8"):
        if text_column not in row:
            raise BadInputError(f"{path}, line {line}: no column {text_column!r}; set --text-column")
        texts.append(row[text_column])
    if not texts:
        raise BadInputError(f"{path}: the file holds no examples")
    return texts, None


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(prog="seqbench eval", description=__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a run folder (with record.json) or a checkpoint inside one")
    parser.add_argument("overrides", nargs="*", help=EVAL_OVERRIDES)
    parser.add_argument("--file", help="your own CSV/TSV/JSONL file of texts (and labels) to classify")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--out", help="folder for metrics.json and predictions.csv (default: <run>/eval/...)")
    parser.add_argument("--multiline-text", action="store_true", help="--file: quoted fields with line breaks are "
                        "texts (no check for a stray quote merging rows)")
    args = parser.parse_args(argv)
    from .runtime import quiet_third_party
    quiet_third_party()
    try:
        summary = evaluate(args.run, args.overrides, args.file, args.text_column, args.label_column, args.out,
                           args.multiline_text)
    except SeqbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in summary["metrics"].items()) or "no labels: predictions only"
    print(f"{summary['evaluated_on']}, {summary['examples']} examples: {metrics}")
    print(f"written: {Path(summary['out']) / 'metrics.json'} and predictions.csv")


if __name__ == "__main__":
    main()
