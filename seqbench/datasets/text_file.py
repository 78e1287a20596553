"""Any text-classification file: CSV, TSV or JSON Lines, chosen by the file ending.

Labels are any strings; class ids follow their sorted order, taken from the training file.
Every problem in a file is reported with the file, the line or row, and what to do.
"""
from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import SeqbenchError
from ..config import ConfigError, TextDatasetSchema, not_identity
from ..data.declare import TextSource, text_dataset
from ..files import UnreadableFile, open_regular

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass
class TextFileSchema(TextDatasetSchema):
    """Your files' own keys: where they are, which columns, which encoding (values:
    conf/dataset/text_file.yaml)."""
    # The files' contents are part of the data fingerprint; their paths are not the data.
    train: str | None = not_identity()
    val: str | None = not_identity()
    test: str | None = not_identity()
    text_column: str
    label_column: str
    encoding: str
    # true: quoted fields with line breaks are texts, not a stray quote merging rows (the files read
    # the same either way whenever the check passes, so it is not part of a run's identity)
    multiline_text: bool = not_identity()

    def __post_init__(self):
        super().__post_init__()
        import codecs
        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ConfigError(f"dataset.encoding={self.encoding!r} is not an encoding Python knows; "
                              f"for example utf-8, utf-8-sig, latin-1, cp1252") from None


class BadInputError(SeqbenchError):
    pass


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BadInputError(f"{path}: unknown file ending {suffix!r}; use one of {', '.join(FORMATS)} "
                            f"(CSV, TSV or JSON Lines, one example per line)")
    return FORMATS[suffix]


def check_readable(path: Path, what: str = "") -> None:
    """A clear line for the usual ways a path is not a readable file."""
    where = f"{what}: " if what else ""
    if not path.exists():
        raise BadInputError(f"{where}{path} does not exist")
    if path.is_dir():
        raise BadInputError(f"{where}{path} is a folder; give the path of a CSV, TSV or JSON Lines file")
    try:
        with open_regular(path, "rb", what=what) as stream:  # a FIFO or a device: refused, never waited on
            start = stream.read(6)
    except UnreadableFile as error:
        raise BadInputError(str(error)) from None
    except PermissionError:
        raise BadInputError(f"{where}{path}: permission denied; make it readable (chmod a+r) or copy it "
                            f"somewhere readable") from None
    except OSError as error:
        raise BadInputError(f"{where}{path} cannot be read: {error.strerror or error}") from None
    for magic, kind, tool in COMPRESSED:
        if start.startswith(magic):
            raise BadInputError(f"{where}{path} is {kind}-compressed, not plain text; decompress it first ({tool}) "
                                f"and give the decompressed file")


# Archives and compressed files by their first bytes: read as text they are only "not valid utf-8".
COMPRESSED = ((b"\x1f\x8b", "gzip", "gunzip"), (b"PK\x03\x04", "zip", "unzip"), (b"BZh", "bzip2", "bunzip2"),
              (b"\xfd7zXZ\x00", "xz", "unxz"), (b"\x28\xb5\x2f\xfd", "zstd", "unzstd"))


def _python_encoding(encoding: str) -> str:
    """UTF-8 files written by Excel and others start with a byte-order mark: accept it."""
    import codecs
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def decode_error_position(path: Path, encoding: str) -> tuple[int, int, int] | None:
    """(byte offset in the file, line number, column byte) of the first byte that is not valid
    ``encoding``; a decode error's own offset is relative to a read buffer, not the file."""
    import codecs
    decoder = codecs.getincrementaldecoder(_python_encoding(encoding))()
    offset = 0
    with open_regular(path, "rb") as stream:
        for number, line in enumerate(bounded_lines(stream, path), start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as error:
                return offset + error.start, number, error.start
            offset += len(line)
    return None


# The longest line read (in characters): texts are truncated to dataset.max_len tokens anyway, and a
# file with no line break in it (a 2 GiB sparse file, a binary) is refused after this much instead of
# read whole in one call that no Ctrl-C or SIGTERM could interrupt.
LINE_LIMIT = 16 * 2**20


def bounded_lines(stream, path: Path):
    """The lines of ``stream``, each read in one bounded call (a signal is answered between them);
    one line for a line longer than LINE_LIMIT."""
    number = 0
    while True:
        line = stream.readline(LINE_LIMIT + 1)
        if not line:
            return
        number += 1
        if len(line) > LINE_LIMIT:
            raise BadInputError(f"{path}, line {number}: more than {LINE_LIMIT // 2**20} MiB without a line break; "
                                f"is this really a text file? (a CSV, TSV or JSON Lines file has one example a line)")
        yield line


def _rows(path: Path, encoding: str, setting: str = "dataset.encoding="):
    """Yield (first line, last line, dict of columns, header) from a CSV/TSV/JSONL file; a byte that is
    not valid ``encoding`` is one line naming it and how to give the file's encoding (``setting``)."""
    try:
        yield from _rows_as_read(path, encoding)
    except UnicodeError as error:
        raise _not_valid(path, encoding, error, setting) from None


def _not_valid(path: Path, encoding: str, error: UnicodeError, setting: str) -> BadInputError:
    try:
        position = decode_error_position(path, encoding)
    except (UnicodeError, LookupError):
        position = None
    where = (f"line {position[1]}, byte {position[2] + 1} of the line (byte {position[0]} of the file)"
             if position else f"byte {getattr(error, 'start', '?')}")
    reason = getattr(error, "reason", str(error))
    hint = (f" (a UTF-16 file without a byte-order mark: try {setting}utf-16-le or utf-16-be)"
            if encoding.lower().replace("_", "-") in ("utf-16", "utf16") else "")
    return BadInputError(f"{path}, {where}: not valid {encoding} ({reason}){hint}; set {setting.rstrip('= ')} to the "
                         f"file's encoding (for example {setting}latin-1 or cp1252)")


def _rows_as_read(path: Path, encoding: str):
    kind = file_format(path)
    with open_regular(path, "r", encoding=_python_encoding(encoding), newline="") as stream:
        if kind == "jsonl":
            for number, line in enumerate(bounded_lines(stream, path), start=1):
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
                yield number, number, row, None
        else:
            csv.field_size_limit(sys.maxsize)  # very long texts are truncated later, not refused here
            reader = csv.DictReader(bounded_lines(stream, path), delimiter="," if kind == "csv" else "\t")
            previous_end = 1  # the header line
            for row in reader:
                first = previous_end + 1
                previous_end = reader.line_num
                if None in row:
                    raise BadInputError(f"{path}, line {first}: more fields than the header's "
                                        f"{len(reader.fieldnames)}; is this really a {kind.upper()} file?")
                missing = [name for name, value in row.items() if value is None]
                if missing and reader.line_num > first:
                    raise BadInputError(f"{path}, line {first}: a quoted field opened here runs to line "
                                        f"{reader.line_num} and the row still has no {', '.join(map(repr, missing))}: "
                                        f"a stray or unclosed quote merged {reader.line_num - first + 1} lines into "
                                        f"one field. Close the quote, or write a literal quote inside a quoted field "
                                        f"twice (\"\").")
                if missing:
                    present = len(reader.fieldnames) - len(missing)
                    raise BadInputError(f"{path}, line {first}: {present} field(s) where the header has "
                                        f"{len(reader.fieldnames)}; no {', '.join(map(repr, missing))} on this line")
                yield first, reader.line_num, row, reader.fieldnames


def _swallowed_rows(text: str, delimiter: str, fields: int, label_index: int, labels: set[str]) -> list[str]:
    """Lines inside a multi-line field that parse as a complete row of their own, ending in a
    label the file uses: the sign of a stray quote that merged rows into one field."""
    found = []
    for line in text.split("\n")[1:]:
        parsed = next(csv.reader([line], delimiter=delimiter), [])
        if len(parsed) == fields and parsed[label_index].strip() in labels:
            found.append(line)
    return found


def read_examples(path: Path, text_column: str, label_column: str, encoding: str,
                  multiline_text: bool = False, setting: str = "dataset.encoding=") -> tuple[list[str], list[str], list[int]]:
    """(texts, labels, line numbers). ``multiline_text``: quoted fields with line breaks are read as
    they are, without looking for rows a stray quote merged into one field. ``setting``: how the
    command that reads the file takes an encoding (a run ``dataset.encoding=``, eval ``--encoding ``)."""
    path = Path(path)
    check_readable(path)
    texts, labels, lines, spans = [], [], [], []
    header = None
    for first, last, row, header in _rows(path, encoding, setting):
        missing = [c for c in (text_column, label_column) if c not in row]
        if missing:
            bom = next((c for c in row if c.startswith(("\ufeff", "ï»¿"))), None)
            hint = (f" The first column is {bom!r}: the file starts with a UTF-8 byte-order mark; set "
                    f"dataset.encoding=utf-8-sig." if bom else
                    " Set dataset.text_column / dataset.label_column.")
            raise BadInputError(f"{path}, line {first}: no column {', '.join(map(repr, missing))}; columns there: "
                                f"{', '.join(map(repr, row))}.{hint}")
        text, label = row[text_column], row[label_column]
        if label is None:
            raise BadInputError(f"{path}, line {first}: no {label_column!r} value")
        if not isinstance(label, str):
            raise BadInputError(f"{path}, line {first}: the label {label!r} is a {type(label).__name__}; labels "
                                f"must be strings (write \"{label}\" in quotes)")
        if not isinstance(text, str):
            raise BadInputError(f"{path}, line {first}: the text is a {type(text).__name__}, not a string")
        if not label.strip():
            raise BadInputError(f"{path}, line {first}: empty label")
        if header is not None and first > 2 and [row.get(name) for name in header] == list(header):
            raise BadInputError(f"{path}, line {first}: the header ({','.join(header)}) again, in the middle of "
                                f"the file (two files joined with cat?); remove that line, or join files with "
                                f"'tail -n +2' for every file after the first")
        texts.append(text)
        labels.append(label.strip())
        lines.append(first)
        spans.append((first, last))
    if encoding.lower().replace("_", "-") in ("utf-16", "utf16") and texts and _mostly_unprintable(texts):
        raise BadInputError(f"{path}: read as {encoding} it is not text (no byte-order mark, so the byte order was "
                            f"guessed wrong, or the file is not UTF-16); try dataset.encoding=utf-16-le, utf-16-be or "
                            f"utf-8")
    if not texts:
        raise BadInputError(f"{path}: the file holds no examples")
    if header is not None and not multiline_text:
        _check_merged_rows(path, texts, labels, spans, header, text_column, label_column)
    return texts, labels, lines


def _mostly_unprintable(texts: list[str]) -> bool:
    sample = "".join(texts[:50])[:5000]
    odd = sum(1 for c in sample if not (c.isprintable() or c.isspace()) or "\u3400" <= c <= "\u9fff")
    return bool(sample) and odd > 0.3 * len(sample)


def _check_merged_rows(path: Path, texts, labels, spans, header, text_column: str, label_column: str) -> None:
    delimiter = "," if file_format(path) == "csv" else "\t"
    known = set(labels)
    label_index = list(header).index(label_column)
    for text, (first, last) in zip(texts, spans):
        if last == first:
            continue
        swallowed = _swallowed_rows(text, delimiter, len(header), label_index, known)
        if swallowed:
            raise BadInputError(
                f"{path}, line {first}: a quoted {text_column!r} field runs to line {last} and holds "
                f"{len(swallowed)} line(s) that look like rows of their own (for example {swallowed[0][:60]!r}): "
                f"a stray or unclosed quote merged them. Close the quote, or write a literal quote inside a "
                f"quoted field twice (\"\"). If the line breaks are part of the text, set "
                f"dataset.multiline_text=true (eval: --multiline-text) to read the file as CSV quoting says.")


def read_splits(paths: dict[str, Path], text_column: str = "text", label_column: str = "label",
                encoding: str = "utf-8", multiline_text: bool = False) -> dict:
    """{"train": (texts, ids), "val"?: ..., "test": ..., "label_names": sorted train labels}."""
    examples = {split: read_examples(path, text_column, label_column, encoding, multiline_text)
                for split, path in paths.items()}
    label_names = sorted(set(examples["train"][1]))
    warn_about_labels(paths["train"], examples["train"][1])
    warn_about_overlap(paths, examples)
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


def source(train: str, test: str, val: str | None = None, text_column: str = "text", label_column: str = "label",
           encoding: str = "utf-8", multiline_text: bool = False) -> TextSource:
    """A source for ``dataset=text_file``: the user's own CSV / TSV / JSONL files."""
    if not train or not test:
        raise BadInputError("dataset=text_file needs dataset.train=PATH and dataset.test=PATH "
                            "(dataset.val=PATH is optional: else 10% of train, stratified)")
    paths = {"train": Path(train).expanduser(), "test": Path(test).expanduser()}
    if val:
        paths["val"] = Path(val).expanduser()
    for split, path in paths.items():
        check_readable(path, f"dataset.{split}")
        file_format(path)
    return TextSource("text_file", lambda root: paths,
                      lambda located: read_splits(located, text_column, label_column, encoding, multiline_text),
                      options=f"|{text_column}|{label_column}|{encoding}")


text_dataset("text_file", TextFileSchema,
             lambda config: source(config.get("train"), config.get("test"), config.get("val"),
                                   config.get("text_column", "text"), config.get("label_column", "label"),
                                   config.get("encoding", "utf-8"), bool(config.get("multiline_text", False))))


def warn_about_overlap(paths: dict[str, Path], examples: dict) -> None:
    """One line when the test file is the training file, or when test texts also appear in the
    training file (a test on examples the model was trained on says little about new ones)."""
    import logging
    log = logging.getLogger(__name__)
    train, test = paths["train"], paths["test"]
    try:
        same = Path(train).resolve() == Path(test).resolve() or Path(train).samefile(test)
    except OSError:
        same = False
    seen = set(examples["train"][0])
    texts = examples["test"][0]
    shared = sum(1 for text in texts if text in seen)
    if same:
        log.warning("dataset.test is the training file itself (%s): the test scores are on the examples the "
                    "model was trained on; give a held-out file", test)
    elif shared == len(texts):
        log.warning("dataset.test (%s): all %d test texts are also in dataset.train (%s): the test scores are on "
                    "training examples; give a held-out file", test, shared, train)
    elif shared:
        log.warning("dataset.test (%s): %d of %d test texts (%.1f%%) are also in dataset.train (%s); those are "
                    "scored on examples the model was trained on", test, shared, len(texts),
                    100 * shared / len(texts), train)


def warn_about_labels(path: Path, labels: list[str]) -> None:
    """Labels are strings, so ``1`` and ``1.0`` are two classes: say so when labels look like the
    same number; and say which classes have a single training example."""
    import logging
    from collections import Counter
    log = logging.getLogger(__name__)
    by_number: dict[float, set[str]] = {}
    for label in set(labels):
        try:
            by_number.setdefault(float(label), set()).add(label)
        except ValueError:
            continue
    for number, spellings in by_number.items():
        if len(spellings) > 1:
            log.warning("%s: the labels %s look like the same number but are %d classes (labels are text); write "
                        "them one way if they are one class", path, ", ".join(map(repr, sorted(spellings))),
                        len(spellings))
    single = sorted(label for label, count in Counter(labels).items() if count == 1)
    if single:
        log.warning("%s: %d class(es) have a single training example (%s): such a class is hard to learn and to "
                    "validate", path, len(single), ", ".join(map(repr, single[:5])) + (", ..." if len(single) > 5 else ""))
