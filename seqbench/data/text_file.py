"""Any text-classification file: CSV, TSV or JSON Lines, chosen by the file ending.

Labels are any strings; class ids follow their sorted order, taken from the training file.
Every problem in a file is reported with the file, the line or row, and what to do.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from .. import SeqbenchError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class BadInputError(SeqbenchError):
    pass


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BadInputError(f"{path}: unknown file ending {suffix!r}; use one of {', '.join(FORMATS)} "
                            f"(CSV, TSV or JSON Lines, one example per line)")
    return FORMATS[suffix]


def _rows(path: Path, encoding: str):
    """Yield (line number, dict of columns) from a CSV/TSV/JSONL file."""
    kind = file_format(path)
    with open(path, encoding=encoding, newline="") as stream:
        if kind == "jsonl":
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise BadInputError(f"{path}, line {number}: not JSON ({error.msg}); a {path.suffix} file holds "
                                        f"one JSON object per line") from None
                if not isinstance(row, dict):
                    raise BadInputError(f"{path}, line {number}: expected a JSON object like "
                                        f'{{"text": "...", "label": "..."}}, got {type(row).__name__}')
                yield number, row
        else:
            csv.field_size_limit(sys.maxsize)  # very long texts are truncated later, not refused here
            reader = csv.DictReader(stream, delimiter="," if kind == "csv" else "\t")
            for row in reader:
                if None in row:
                    raise BadInputError(f"{path}, line {reader.line_num}: more fields than the header's "
                                        f"{len(reader.fieldnames)}; is this really a {kind.upper()} file?")
                yield reader.line_num, row


def read_examples(path: Path, text_column: str, label_column: str,
                  encoding: str) -> tuple[list[str], list[str], list[int]]:
    """(texts, labels, line numbers)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    texts, labels, lines = [], [], []
    try:
        for number, row in _rows(path, encoding):
            missing = [c for c in (text_column, label_column) if c not in row]
            if missing:
                raise BadInputError(f"{path}, line {number}: no column {', '.join(map(repr, missing))}; columns there: "
                                    f"{', '.join(map(repr, row))}. Set dataset.text_column / dataset.label_column.")
            text, label = row[text_column], row[label_column]
            if not isinstance(label, str):
                raise BadInputError(f"{path}, line {number}: the label {label!r} is a {type(label).__name__}; labels "
                                    f"must be strings (write \"{label}\" in quotes)")
            if not isinstance(text, str):
                raise BadInputError(f"{path}, line {number}: the text is a {type(text).__name__}, not a string")
            if not label.strip():
                raise BadInputError(f"{path}, line {number}: empty label")
            texts.append(text)
            labels.append(label.strip())
            lines.append(number)
    except UnicodeDecodeError as error:
        raise BadInputError(f"{path}: byte {error.start} is not valid {encoding} ({error.reason}); set "
                            f"dataset.encoding to the file's encoding (for example dataset.encoding=latin-1)") from None
    if not texts:
        raise BadInputError(f"{path}: the file holds no examples")
    return texts, labels, lines


def read_splits(paths: dict[str, Path], text_column: str = "text", label_column: str = "label",
                encoding: str = "utf-8") -> dict:
    """{"train": (texts, ids), "val"?: ..., "test": ..., "label_names": sorted train labels}."""
    examples = {split: read_examples(path, text_column, label_column, encoding) for split, path in paths.items()}
    label_names = sorted(set(examples["train"][1]))
    index = {name: i for i, name in enumerate(label_names)}
    out: dict = {"label_names": label_names}
    for split, (texts, labels, lines) in examples.items():
        unknown = [(line, label) for line, label in zip(lines, labels) if label not in index]
        if unknown:
            line, label = unknown[0]
            raise BadInputError(f"{paths[split]}, line {line}: the label {label!r} is one the training file "
                                f"{paths['train']} never uses (its labels: {', '.join(label_names)}); "
                                f"{len(unknown)} example(s) in all")
        out[split] = (texts, [index[label] for label in labels])
    return out
