"""Pretrained word vectors from a local text file (``dataset.vectors=FILE``).

Formats: GloVe (``word v1 ... vD`` on every line), word2vec's text format and fastText's ``.vec``
(the same, after a first line ``<words> <dimension>``); any of them gzipped (``.gz``).

What a run does with them:

- the embedding size is the file's dimension (``model.embedding_dim`` follows it; a different
  ``embedding_dim`` given on the command line is refused, a data set YAML's default yields);
- a vocabulary word takes the file's vector for the word as written, else for its lower-case form
  (the tokenizer lowers case; word2vec files are cased, GloVe's are not);
- a word the file lacks (and ``<unk>``) starts from a normal draw with the mean and standard
  deviation of the vectors that were found (the run's seed draws it), so that it is on their scale;
  ``<pad>`` is zero;
- ``dataset.freeze_vectors=true`` keeps the whole table fixed during training (the drawn rows of
  missing words too); false (the default) fine-tunes it;
- the record's ``vectors`` gives the coverage: the share of the vocabulary found in the file, and
  the share of training tokens those words make up.

The file's contents are part of the data fingerprint (a new file is new data); its path is not.
Cheap to import: numpy and torch load only where vectors are read.
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path

from .. import SeqbenchError
from ..files import UnreadableFile, open_regular

BINARY_HINT = ("binary word2vec files are not read; write it as text first (gensim: KeyedVectors."
               "load_word2vec_format(path, binary=True).save_word2vec_format(out, binary=False))")


class VectorsError(SeqbenchError):
    pass


def vectors_path(value: str) -> Path:
    """The file ``dataset.vectors`` names, checked: one line when it is not a readable file."""
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise VectorsError(f"dataset.vectors: {path} does not exist; give the path of a GloVe, word2vec text or "
                           f"fastText .vec file (optionally .gz)")
    if path.is_dir():
        raise VectorsError(f"dataset.vectors: {path} is a folder; give the path of a vectors file in it "
                           f"(for example glove.6B.100d.txt)")
    if path.suffix.lower() == ".bin":
        raise VectorsError(f"dataset.vectors: {path}: {BINARY_HINT}")
    return path


def _open_text(path: Path):
    try:
        stream = open_regular(path, "rb", what="dataset.vectors")
    except UnreadableFile as error:
        raise VectorsError(str(error)) from None
    except OSError as error:
        raise VectorsError(f"dataset.vectors: {path} cannot be read: {error.strerror or error}") from None
    start = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
    binary = gzip.GzipFile(fileobj=stream) if start == b"\x1f\x8b" else stream
    # Vectors files are UTF-8; a broken byte spoils one word, never the run.
    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="\n")


def _fields(line: str) -> list[str]:
    return line.rstrip("\r\n").rstrip(" ").split(" ")


def _header(first: list[str]) -> int | None:
    """word2vec / fastText text files open with ``<words> <dimension>``: the dimension, else None."""
    if len(first) == 2 and all(part.isdigit() for part in first):
        return int(first[1])
    return None


def vectors_dimension(path: Path) -> int:
    """The vectors' dimension, from the file's first line (cheap: the config step reads it)."""
    with _open_text(path) as stream:
        line = stream.readline()
    first = _fields(line)
    if not line.strip():
        raise VectorsError(f"dataset.vectors: {path} is empty or starts with an empty line")
    dimension = _header(first)
    if dimension is None:
        dimension = len(first) - 1
    if dimension < 1:
        raise VectorsError(f"dataset.vectors: {path}, line 1: a word and no numbers; each line is a word and its "
                           f"vector (GloVe, word2vec text or fastText .vec)")
    return dimension


def read_vectors(path: Path, words: set[str]) -> tuple[dict[str, "object"], int, int]:
    """({word: vector} for the file's words in ``words`` as written or lower-cased, dimension, words
    in the file). Every line is checked for its number of fields; the numbers of the lines used are
    parsed (one line for a ragged or non-numeric line). A word with spaces in it (GloVe 840B has a
    few) keeps them."""
    dimension = vectors_dimension(path)
    found: dict[str, object] = {}
    try:
        count = _read_lines(path, dimension, words, found)
    except (OSError, EOFError, UnicodeError) as error:  # a truncated or corrupt .gz, a disk error
        raise VectorsError(f"dataset.vectors: {path} cannot be read to its end ({type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else 'truncated'}); download or unpack it "
                           f"again") from None
    if count == 0:
        raise VectorsError(f"dataset.vectors: {path} holds no vectors")
    return found, dimension, count


def _read_lines(path: Path, dimension: int, words: set[str], found: dict) -> int:
    """The vectors of ``words`` into ``found``; the number of vectors in the file."""
    import numpy as np
    count = 0
    with _open_text(path) as stream:
        for number, line in enumerate(stream, start=1):
            if number == 1 and _header(_fields(line)) is not None:
                continue
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").rstrip(" ").rsplit(" ", dimension)  # the word may hold spaces
            extra = parts[0].split(" ")[1:] if len(parts) == dimension + 1 else []
            if extra and all(_is_number(p) for p in extra):   # more numbers than line 1, not a word with spaces
                parts = parts[:1] + extra + parts[1:]
            if len(parts) != dimension + 1 or not parts[0]:
                raise VectorsError(f"dataset.vectors: {path}, line {number}: {len(parts) - 1} number(s) after the "
                                   f"word where line 1 says {dimension}; every line needs a word and {dimension} "
                                   f"numbers (a truncated or mixed file?)")
            count += 1
            word = parts[0]
            if (word in words or word.lower() in words) and word not in found:
                try:
                    found[word] = np.asarray(parts[1:], dtype=np.float32)
                except ValueError:
                    bad = next(p for p in parts[1:] if not _is_number(p))
                    raise VectorsError(f"dataset.vectors: {path}, line {number}: {bad[:20]!r} is not a number; "
                                       f"each line is a word and {dimension} numbers") from None
    return count


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def embedding_from_vectors(path: Path, vocabulary: list[str], train_ids=None) -> tuple["object", dict]:
    """(weight (V, D) float tensor, coverage summary) for ``vocabulary`` (``<pad>``, ``<unk>``
    first). ``train_ids``: the training split's token ids, for the share of tokens covered. Draws
    from torch's generator: the run's seed decides the rows of missing words."""
    import numpy as np
    import torch
    found, dimension, in_file = read_vectors(path, set(vocabulary[2:]))
    # A word the file spells only with capitals takes the first such spelling (the exact one wins).
    lowered: dict[str, object] = {}
    for word, vector in found.items():
        lowered.setdefault(word.lower(), vector)
    rows, hits = [], []
    for index, word in enumerate(vocabulary):
        vector = (found[word] if word in found else lowered.get(word)) if index >= 2 else None
        rows.append(vector)
        hits.append(vector is not None)
    covered = sum(hits)
    if covered == 0:
        sample = ", ".join(repr(w) for w in vocabulary[2:7])
        raise VectorsError(f"dataset.vectors: {path} holds none of the {len(vocabulary) - 2} vocabulary words "
                           f"(for example {sample}); is it a vectors file for this language and this tokenisation?")
    known = np.stack([row for row in rows if row is not None])
    mean, std = float(known.mean()), float(known.std()) or 1.0
    weight = torch.empty(len(vocabulary), dimension).normal_(mean, std)
    for index, row in enumerate(rows):
        if row is not None:
            weight[index] = torch.from_numpy(row)
    weight[0] = 0.0  # <pad>
    summary = {"file": str(path), "dimension": dimension, "words_in_file": in_file,
               "vocabulary": len(vocabulary) - 2, "found": covered, "coverage": covered / (len(vocabulary) - 2),
               "missing_init": f"normal(mean {mean:.3g}, std {std:.3g}) of the found vectors"}
    if train_ids is not None and len(train_ids):
        counts = torch.bincount(torch.as_tensor(train_ids, dtype=torch.int64), minlength=len(vocabulary))
        summary["token_coverage"] = float(counts[torch.tensor(hits)].sum()) / float(counts.sum())
    return weight, summary


def load_pretrained(embedding, dataset: dict, vocabulary: list[str], train_ids=None) -> dict | None:
    """Fill ``embedding`` (an ``nn.Embedding``) from ``dataset["vectors"]``, frozen if
    ``dataset["freeze_vectors"]``; the coverage summary for the record (None: no vectors)."""
    import torch
    if not dataset.get("vectors"):
        return None
    weight, summary = embedding_from_vectors(vectors_path(dataset["vectors"]), vocabulary, train_ids)
    if tuple(weight.shape) != tuple(embedding.weight.shape):
        raise VectorsError(f"dataset.vectors: {weight.shape[1]}-dimensional vectors for an embedding of "
                           f"{embedding.weight.shape[1]}; leave model.embedding_dim unset")
    with torch.no_grad():
        embedding.weight.copy_(weight)
    frozen = bool(dataset.get("freeze_vectors", False))
    embedding.weight.requires_grad_(not frozen)
    summary["frozen"] = frozen
    return summary


def given_keys(cfg) -> set[str]:
    """The keys set on the command line (Hydra's task overrides), where they can be known."""
    overrides = []
    try:
        from hydra.core.hydra_config import HydraConfig
        if HydraConfig.initialized():
            overrides = list(HydraConfig.get().overrides.task)
    except Exception:  # no Hydra run around this config
        overrides = []
    if not overrides and "hydra" in cfg:
        overrides = list(cfg.hydra.get("overrides", {}).get("task", []) or [])
    return {str(item).split("=", 1)[0].lstrip("+~") for item in overrides}


def size_embedding(cfg, config: dict) -> None:
    """With ``dataset.vectors``, the embedding size is the file's: set it in the resolved
    ``config`` (its data set and, where the model reads it from the data set, its model). An
    ``embedding_dim`` the user gave that differs is one line; a data set YAML's default yields."""
    from omegaconf import OmegaConf
    dataset = config.get("dataset") or {}
    if not dataset.get("vectors"):
        return
    from ..config import ConfigError
    dimension = vectors_dimension(vectors_path(dataset["vectors"]))
    given = given_keys(cfg)
    model_linked = "model" in cfg and OmegaConf.is_interpolation(cfg.model, "embedding_dim")
    for key, value in (("dataset.embedding_dim", dataset.get("embedding_dim")),
                       ("model.embedding_dim", config["model"].get("embedding_dim"))):
        user_set = key in given or (key == "model.embedding_dim" and not model_linked)
        if user_set and value is not None and value != dimension:
            raise ConfigError(f"{key}={value} but dataset.vectors={dataset['vectors']} holds {dimension}-dimensional "
                              f"vectors; the embedding size is the vectors' (leave {key} unset)")
    dataset["embedding_dim"] = dimension
    config["model"]["embedding_dim"] = dimension


def vectors_words(record: dict) -> str:
    """The vectors a run started from and their coverage, for a report's data line ("" without)."""
    vectors = record.get("vectors")
    if not vectors:
        return ""
    tokens = (f", {100 * vectors['token_coverage']:.1f}% of training tokens"
              if vectors.get("token_coverage") is not None else "")
    return (f"; vectors {Path(vectors['file']).name}, {vectors['dimension']}-d, {vectors['found']:,} of "
            f"{vectors['vocabulary']:,} vocabulary words ({100 * vectors['coverage']:.1f}%){tokens}"
            f"{', frozen' if vectors.get('frozen') else ''}")
