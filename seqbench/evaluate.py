"""``seqbench eval RUN_OR_CHECKPOINT [overrides...] [--file PATH] [--out DIR]``: evaluate a
trained model and write its metrics (``metrics.json``) and per-example predictions
(``predictions.csv``).

- No overrides: the run's own test split, built from its recorded config.
- ``dataset=NAME`` and ``dataset.KEY=VALUE``: another data set or other settings, for example
  a generated task at another length (``dataset.length=400``) or IMDB reviews cut elsewhere;
  checked with a run's schemas before any data is read.
- ``model.cell=MODULE.CLASS``: your own encoder class, when the run's model is one.
- ``--file PATH``: your own CSV / TSV / JSON Lines file (a text column, and a label column
  when you want metrics) for a text classifier. The columns, encoding and multi-line setting are
  the run's own (``dataset.text_column`` ...), unless ``--text-column`` etc. say otherwise; each
  text is written beside its prediction, and the first few are printed.
- Which weights: the run given (``--seeds one``, the default), the variant's seed with the best
  validation metric (``--seeds best``), or all its seeds with their class probabilities averaged
  (``--seeds all``); the variant's seeds are the finished runs of the same config and data beside
  the run (in its sweep), or in a sweep folder given with ``--variant``. The output says which.

Text is always encoded with the checkpoint's own vocabulary, whatever data it comes from.
A run folder is data: its record and checkpoint are read (``weights_only=True``), nothing named
in them is imported or instantiated (eval builds no optimiser), and a copied folder uses its own
checkpoint and gets the output.
"""
from __future__ import annotations

import argparse
import json
import os
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import SeqbenchError
from .checkpoints import find_checkpoint, load_checkpoint
from .config import check_dataset, recorded_dataset_config
from .record import RECORD_NAME, atomic_write, read_record
from .registry import code_named_by_user
from .runtime import argument_parser, compose_configs, entry_point, quiet_third_party, recorded_variant
from .tasks import TASKS, prediction_metrics


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
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
        try:
            composed = compose_configs([[f"dataset={name}"]])[0]
            dataset = OmegaConf.to_container(composed.dataset, resolve=True)
        except (HydraException, OmegaConfBaseException) as error:
            from .composition import composition_error
            raise SeqbenchError(composition_error(error)) from None
    else:
        # Where the run kept its token cache is the record's word, and eval writes only beside the
        # run (or where you say): the cache goes to the default place unless you set dataset.cache_dir.
        dataset = recorded_dataset_config(dataset)
    for key, value, delete in keys:
        if delete:
            dataset.pop(key, None)
        else:
            dataset[key] = value
    check_dataset(dataset)  # dataset.length on sin->cos, dataset.max_len=abc: one line, before any data
    return dataset, cell


def eval_folder_stem(model, data: str, seeds: list) -> str:
    """The name of an evaluation's folder: the data (or file) evaluated, with the variant and its
    seeds where several are averaged; names read from records are data, so one plain file name."""
    from .results import slug
    stem = str(data) if len(seeds) <= 1 else f"{model}-{data}-seeds-{'-'.join(str(seed) for seed in seeds)}"
    return slug(stem)


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


SEED_CHOICES = ("one", "best", "all")


@dataclass
class Member:
    """One trained run that takes part in an evaluation: its record and its checkpoint."""
    record: dict
    checkpoint: Path
    note: str = ""     # where the checkpoint came from, when not from the run's own folder


def _checkpoint_of(folder: Path, record: dict) -> tuple[Path, str]:
    """A run folder's checkpoint; a sweep's copy of a reused run has none of its own, and uses the
    checkpoint of the run it reused (when that run's record there still has the same run key)."""
    try:
        return find_checkpoint(folder), ""
    except SeqbenchError:
        original = record.get("reused_from")
        if not isinstance(original, str) or not Path(original).is_file():
            raise
        try:
            source = read_record(Path(original))
        except SeqbenchError:
            raise SeqbenchError(f"no checkpoint at {folder}, and the run it reused ({original}) is not readable") \
                from None
        if source.get("run_key") != record.get("run_key"):
            raise SeqbenchError(f"no checkpoint at {folder}; the run it reused ({original}) now holds another run")
        return find_checkpoint(Path(original).parent), f"the checkpoint of the run it reused, {Path(original).parent}"


def _variant_runs(record: dict, folder: Path) -> list[dict]:
    """The finished runs of ``record``'s variant (same config and data, any seed) under ``folder``."""
    from .results import load_records
    same = [r for r in load_records([folder]) if r.get("status") == "done"
            and r.get("config_hash") == record.get("config_hash")
            and r.get("data_fingerprint") == record.get("data_fingerprint")]
    by_seed: dict = {}
    for r in sorted(same, key=lambda r: bool(r.get("reused_from"))):   # a run's own folder before a copy
        by_seed.setdefault(r.get("seed"), r)
    return [by_seed[seed] for seed in sorted(by_seed, key=str)]


def _better(record: dict) -> float:
    """A run's best validation metric, oriented so that larger is better."""
    value = next(iter((record.get("val_best") or {}).values()), None)
    if not isinstance(value, (int, float)) or value != value:
        return -math.inf
    return value if record.get("metric_mode", "max") == "max" else -value


def choose(run: Path, seeds: str = "one", variant: str | None = None) -> tuple[list[Member], str]:
    """The runs an evaluation uses and the sentence that says so. ``run``: a run folder, a checkpoint,
    or a sweep folder (then ``variant`` names the variant as the report labels it)."""
    from .results import load_records, variant_labels
    if seeds not in SEED_CHOICES:
        raise SeqbenchError(f"--seeds {seeds}: valid: {', '.join(SEED_CHOICES)}")
    run = Path(run)
    if run.is_dir() and not (run / RECORD_NAME).exists() and not (run / "checkpoints").is_dir():
        records = [r for r in load_records([run]) if r.get("status") == "done"]
        if not records:
            raise SeqbenchError(f"no finished run under {run}: give a run folder, a checkpoint or a sweep folder")
        labels = variant_labels(records)
        names = sorted(set(labels.get(r.get("config_hash"), r.get("model")) for r in records))
        if variant is None and len(names) > 1:
            raise SeqbenchError(f"{run} holds {len(names)} variants; name one with --variant: {', '.join(names)}")
        if variant is not None and variant not in names:  # the name typed (bilstm_attn), not the recorded one
            variant = recorded_variant(variant)
        wanted = variant or names[0]
        chosen = [r for r in records if labels.get(r.get("config_hash"), r.get("model")) == wanted]
        if not chosen:
            raise SeqbenchError(f"--variant {wanted}: not under {run}; valid: {', '.join(names)}")
        seeds = seeds if seeds != "one" else "all"   # a variant named in a sweep: all its seeds unless said
    else:
        if variant is not None:
            raise SeqbenchError("--variant chooses a variant in a sweep folder; this is one run (its variant is its "
                                "own): leave --variant out, or give the sweep folder")
        if run.is_dir():
            anchor = _record_of(run, run / "checkpoints" / "best.ckpt")
            anchor["record_path"] = str(run / RECORD_NAME)
            given = None
        else:   # a checkpoint inside a run folder
            given = find_checkpoint(run)   # "no checkpoint at ..." for a path that is not one
            anchor = _record_of(run, run)
            anchor["record_path"] = str(run.parent.parent / RECORD_NAME)
        folder = Path(anchor["record_path"]).parent
        scope = folder.parent
        if seeds == "one":
            checkpoint, note = (given, "") if given is not None else _checkpoint_of(folder, anchor)
            label = f"{anchor.get('model')} on {anchor.get('dataset')}, seed {anchor.get('seed')} (this run)"
            others = _variant_runs(anchor, scope) if anchor.get("config_hash") else []
            if len(others) > 1:
                best = max(others, key=_better)
                label += (f"; its variant has {len(others)} seeds here: --seeds all averages them, --seeds best takes "
                          f"seed {best.get('seed')}, the best by validation")
            return [Member(anchor, checkpoint, note)], label
        chosen = _variant_runs(anchor, scope) or [anchor]
    if seeds == "best":
        best = max(chosen, key=_better)
        metric, value = next(iter((best.get("val_best") or {}).items()), ("?", math.nan))
        checkpoint, note = _checkpoint_of(Path(best["record_path"]).parent, best)
        words = (f"{best.get('model')} on {best.get('dataset')}: seed {best.get('seed')}, the best of its "
                 f"{len(chosen)} seed{'s' if len(chosen) != 1 else ''} by validation {metric} ({value:.4g})")
        return [Member(best, checkpoint, note)], words
    members = []
    for r in chosen:
        checkpoint, note = _checkpoint_of(Path(r["record_path"]).parent, r)
        members.append(Member(r, checkpoint, note))
    words = (f"{chosen[0].get('model')} on {chosen[0].get('dataset')}: seeds "
             f"{', '.join(str(r.get('seed')) for r in chosen)}, class probabilities averaged")
    return members, words


def _load(member: Member, cell: str | None, dataset: dict):
    """(the member's network as a task, ready to evaluate; its data spec; its checkpoint's metadata)."""
    from .data.declare import DataSpec
    from .models import network_config
    from .training import build_task
    record, checkpoint_path = member.record, member.checkpoint
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
    return task, spec, meta


def _file_columns(record: dict, text_column: str | None, label_column: str | None, encoding: str | None,
                  multiline_text: bool | None) -> tuple[str, str, str, bool]:
    """--file's columns and reading settings: what you say, else what the run was trained with."""
    trained = (record.get("config") or {}).get("dataset") or {}
    return (text_column or trained.get("text_column") or "text", label_column or trained.get("label_column") or "label",
            encoding or trained.get("encoding") or "utf-8",
            bool(trained.get("multiline_text", False)) if multiline_text is None else bool(multiline_text))


def evaluate(run: str | Path, overrides: list[str] | None = None, file: str | None = None,
             text_column: str | None = None, label_column: str | None = None, out: str | Path | None = None,
             multiline_text: bool | None = None, seeds: str = "one", variant: str | None = None,
             encoding: str | None = None) -> dict:
    from .data.declare import build_datamodule
    from .data.text import Vocabulary
    from .train import save_predictions
    members, chosen = choose(Path(run), seeds, variant)
    record = members[0].record
    dataset, cell = _dataset_config(record, overrides or [])  # checked before the checkpoint or any data is read
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise SeqbenchError(f"--out {out} is a file; give a folder (it will hold metrics.json and predictions.csv)")
    columns = _file_columns(record, text_column, label_column, encoding, multiline_text)
    if file:
        from .datasets.text_file import check_readable
        check_readable(Path(file), "--file")  # a FIFO, a folder, a compressed file: one line, up front
    where = f"file {file}" if file else f"{dataset['name']} test split"
    texts, labels, combined, first = None, None, None, None
    for member in members:
        task, spec, meta = _load(member, cell, dataset)
        if len(members) > 1 and spec.task != "classification":
            raise SeqbenchError(f"--seeds all averages class probabilities; this run's task is "
                                f"{spec.task.replace('_', ' ')}: use --seeds best, or evaluate one run")
        if file:
            if not spec.vocabulary:
                raise SeqbenchError("--file reads text; this checkpoint's model does not take text")
            if texts is None:
                texts, labels = _file_examples(Path(file), spec, *columns)
            batches = list(_text_batches(texts, labels, Vocabulary(list(spec.vocabulary)), spec.max_len or 400))
        else:
            datamodule = build_datamodule(dataset, int(member.record["config"].get("seed", 0)))
            datamodule.setup()
            if datamodule.spec.task != spec.task or bool(spec.vocabulary) != bool(datamodule.spec.vocabulary):
                raise SeqbenchError(f"this model was trained on {meta.get('dataset')} ({spec.task.replace('_', ' ')}, "
                                    f"{'text' if spec.vocabulary else 'signals'}); dataset={dataset['name']} poses "
                                    f"{datamodule.spec.task.replace('_', ' ')} on "
                                    f"{'text' if datamodule.spec.vocabulary else 'signals'}: evaluate it on a data set "
                                    f"of its own kind")
            if spec.vocabulary and tuple(datamodule.spec.vocabulary) != tuple(spec.vocabulary):
                batches = _reencoded_test(datamodule, spec)
            else:
                batches = list(datamodule.test_dataloader())
            if texts is None:
                texts = _test_texts(datamodule)
        predictions = []
        with torch.no_grad():
            for batch in batches:
                predictions.append({k: v.detach().cpu() for k, v in task.example_predictions(batch).items()})
        if first is None:
            first = (task, spec, batches)
        combined = predictions if combined is None else _add_probabilities(combined, predictions)
    task, spec, batches = first
    if len(members) > 1:
        for batch in combined:
            batch["probabilities"] = batch["probabilities"] / len(members)
            batch["predicted"] = batch["probabilities"].argmax(-1)
    has_targets = not (file and labels is None)
    result = _metrics(task, spec, batches, combined, members) if has_targets else {}
    # Beside the run you named (a sweep's copy of a reused run included), never in another run's folder;
    # several seeds' average beside all of them (their common folder), in no one seed's folder.
    if len(members) > 1:
        home = Path(os.path.commonpath([str(Path(m.record["record_path"]).parent.parent) for m in members]))
    else:
        home = Path(record["record_path"]).parent
    stem = eval_folder_stem(record.get("model"), Path(file).stem if file else dataset["name"],
                            [m.record.get("seed") for m in members])
    out = Path(out) if out else home / "eval" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    save_predictions(out / "predictions.csv", combined, spec)
    if has_targets:   # the metrics the task computes from predictions (AUROC), as the report does
        import pandas as pd
        result.update(prediction_metrics(TASKS[spec.task], pd.read_csv(out / "predictions.csv")))
    shown = _beside_texts(out / "predictions.csv", texts)
    summary = {"checkpoint": str(members[0].checkpoint), "checkpoints": [str(m.checkpoint) for m in members],
               "runs": chosen, "evaluated_on": where, "metrics": result,
               "examples": sum(len(b["lengths"]) for b in batches), "overrides": overrides or [], "dataset": dataset,
               "columns": dict(zip(("text", "label", "encoding", "multiline_text"), columns)) if file else None}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    summary["out"] = str(out)
    summary["first"] = shown
    summary["notes"] = [f"seed {m.record.get('seed')}: {m.note}" for m in members if m.note]
    return summary


def _file_examples(path: Path, spec, text_column: str, label_column: str, encoding: str,
                   multiline_text: bool) -> tuple[list[str], list[int] | None]:
    from .datasets.text_file import read_examples
    if _has_labels(path, label_column, encoding):
        texts, names, _ = read_examples(path, text_column, label_column, encoding, multiline_text, EVAL_ENCODING)
        unknown = sorted(set(names) - set(spec.label_names))
        if unknown:
            raise SeqbenchError(f"{path}: labels {', '.join(unknown)} are not this model's "
                                f"({', '.join(spec.label_names)})")
        return texts, [spec.label_names.index(name) for name in names]
    texts, _ = _texts_only(path, text_column, encoding)
    return texts, None


def _add_probabilities(total: list[dict], more: list[dict]) -> list[dict]:
    """Class probabilities summed example by example (the batches of every seed come in the same order:
    the same file, or the same test split read the same way)."""
    for a, b in zip(total, more):
        if not torch.equal(a["index"], b["index"]):
            raise SeqbenchError("the seeds' test examples come in different orders; evaluate one run (--seeds best)")
        a["probabilities"] = a["probabilities"] + b["probabilities"]
    return total


def _metrics(task, spec, batches: list[dict], predictions: list[dict], members: list) -> dict:
    metrics = task.test_metrics
    metrics.reset()
    with torch.no_grad():
        if len(members) > 1:   # the averaged probabilities are what is scored
            for batch, predicted in zip(batches, predictions):
                metrics.update(predicted["probabilities"], batch["targets"])
        else:
            for batch in batches:
                _, scores, targets = task.loss_and_predictions(batch)
                metrics.update(scores, targets)
    result = {k.removeprefix("test/"): float(v) for k, v in metrics.compute().items()}
    if spec.task == "per_step_classification":  # its primary metric is logged, not a metric object
        with torch.no_grad():
            losses = [(float(task._loss(task.net(b["inputs"], b["lengths"])[0], b)), int(b["lengths"].sum()))
                      for b in batches]
        result = {"ce": sum(loss * steps for loss, steps in losses) / sum(steps for _, steps in losses), **result}
    return result


def _test_texts(datamodule) -> list[str] | None:
    """The test split's texts (its tokens, space-separated), for a text data set; None otherwise."""
    corpus = getattr(datamodule, "corpus", None)
    if corpus is None or "test" not in getattr(corpus, "splits", {}):
        return None
    test, itos = corpus.splits["test"], corpus.vocabulary.itos
    return [" ".join(itos[int(i)] for i in test.sequence(row)) for row in range(len(test))]


PRINTED = 5


def _beside_texts(path: Path, texts: list[str] | None) -> list[str]:
    """Each input text written beside its prediction in predictions.csv (column ``text``, rows
    matched by ``index``); the first few, as lines to print."""
    import pandas as pd
    frame = pd.read_csv(path)
    if texts is not None and "index" in frame and len(frame) and len(texts) > int(frame["index"].max()):
        frame["text"] = [texts[int(i)] for i in frame["index"]]
        atomic_write(path, lambda stream: stream.write(frame.to_csv(index=False).encode()))
    lines = []
    for row in frame.head(PRINTED).to_dict("records"):
        if "predicted_label" in row:
            probability = row.get(f"p_{row['predicted_label']}")
            guess = f"{row['predicted_label']}" + (f" ({probability:.2f})" if isinstance(probability, float) else "")
            truth = f", true {row['target_label']}" if "target_label" in row else ""
        elif "prediction" in row:
            guess, truth = f"{row['prediction']:.4g}", f", true {row['target']:.4g}" if "target" in row else ""
        else:
            continue
        text = str(row.get("text", ""))
        text = text if len(text) <= 70 else text[:67] + "..."
        lines.append(f"  {guess}{truth}" + (f"  {text!r}" if text else ""))
    return lines


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


EVAL_ENCODING = "--encoding "   # how eval takes a file's encoding, in its hint on a byte that is not valid


def _has_labels(path: Path, label_column: str, encoding: str = "utf-8") -> bool:
    from .datasets.text_file import _rows, check_readable
    check_readable(path)
    for _, _, row, _ in _rows(path, encoding, EVAL_ENCODING):
        return label_column in row
    return False


def _texts_only(path: Path, text_column: str, encoding: str = "utf-8") -> tuple[list[str], None]:
    from .datasets.text_file import BadInputError, _rows
    texts = []
    for line, _, row, header in _rows(path, encoding, EVAL_ENCODING):
        if text_column not in row:
            columns = ", ".join(repr(c) for c in (header or row))
            raise BadInputError(f"{path}, line {line}: no column {text_column!r} (the run's text column); columns "
                                f"there: {columns}; set --text-column")
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
    parser.add_argument("--text-column", default=None, help="--file: the text column (default: the run's "
                        "dataset.text_column, else 'text')")
    parser.add_argument("--label-column", default=None, help="--file: the label column, optional (default: the "
                        "run's dataset.label_column, else 'label')")
    parser.add_argument("--encoding", default=None, help="--file: its encoding (default: the run's, else utf-8)")
    parser.add_argument("--out", help="folder for metrics.json and predictions.csv (default: <run>/eval/...)")
    parser.add_argument("--multiline-text", action="store_true", default=None, help="--file: quoted fields with "
                        "line breaks are texts (no check for a stray quote merging rows; default: as the run read)")
    parser.add_argument("--seeds", default="one", choices=SEED_CHOICES, help="one: the run given (default); best: "
                        "its variant's seed with the best validation metric; all: every seed of the variant, class "
                        "probabilities averaged")
    parser.add_argument("--variant", help="in a sweep folder: the variant, as the report labels it")
    args = parser.parse_intermixed_args(argv)  # overrides before and after the flags
    quiet_third_party()
    try:
        summary = evaluate(args.run, args.overrides, args.file, args.text_column, args.label_column, args.out,
                           args.multiline_text, args.seeds, args.variant, args.encoding)
    except SeqbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"weights: {summary['runs']}")
    for note in summary["notes"]:
        print(f"  {note}")
    if summary.get("columns"):
        columns = summary["columns"]
        print(f"columns: text {columns['text']!r}, label {columns['label']!r} (the run's unless given)")
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in summary["metrics"].items()) or "no labels: predictions only"
    print(f"{summary['evaluated_on']}, {summary['examples']} examples: {metrics}")
    if summary["first"]:
        print(f"first {len(summary['first'])} predictions:")
        print("\n".join(summary["first"]))
    print(f"written: {Path(summary['out']) / 'predictions.csv'} (each text beside its prediction) and metrics.json")


if __name__ == "__main__":
    main()
