"""Shared text pipeline: tokenizer, vocabulary, encoding, and the on-disk tokenised cache."""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from ..record import atomic_write

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
# Bumped whenever tokenisation or encoding changes, so stale caches are never read.
PIPELINE_VERSION = 2

_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# A word (letters/digits, inner apostrophes kept: "don't") or one punctuation mark.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")


def tokenize(text: str) -> list[str]:
    """Lower case, HTML line breaks removed, words and punctuation as separate tokens."""
    return _TOKEN.findall(_LINE_BREAK.sub(" ", text).lower())


@dataclass(frozen=True)
class TextSettings:
    max_len: int = 400        # tokens kept from the start of each text
    vocab_size: int = 25000   # including <pad> and <unk>
    min_freq: int = 1

    def __post_init__(self):
        if self.max_len < 1 or self.vocab_size < 3 or self.min_freq < 1:
            raise ValueError(f"need max_len >= 1, vocab_size >= 3, min_freq >= 1; got {self}")


class Vocabulary:
    def __init__(self, tokens: Sequence[str]):
        if list(tokens[:2]) != [PAD, UNK]:
            raise ValueError("a vocabulary starts with <pad>, <unk>")
        self.itos = list(tokens)
        self.stoi = {token: index for index, token in enumerate(self.itos)}

    @classmethod
    def build(cls, tokenised_texts: Iterable[list[str]], size: int, min_freq: int = 1) -> "Vocabulary":
        counts = Counter()
        for tokens in tokenised_texts:
            counts.update(tokens)
        # Sort by count, then alphabetically, so equal counts never depend on input order.
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls([PAD, UNK] + kept[: size - 2])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> list[int]:
        """Token ids; an empty text becomes one <unk> so that every sequence has a real step."""
        return [self.stoi.get(t, UNK_ID) for t in tokens] or [UNK_ID]


@dataclass
class EncodedTexts:
    """Many variable-length id sequences stored flat: ids[offsets[i]:offsets[i+1]] is text i."""

    ids: torch.Tensor       # (total,) int32
    offsets: torch.Tensor   # (N + 1,) int64
    labels: torch.Tensor    # (N,) int64

    @classmethod
    def from_lists(cls, sequences: list[list[int]], labels: Sequence[int]) -> "EncodedTexts":
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
        offsets = torch.zeros(len(sequences) + 1, dtype=torch.int64)
        torch.cumsum(lengths, 0, out=offsets[1:])
        flat = torch.tensor([i for s in sequences for i in s], dtype=torch.int32)
        return cls(flat, offsets, torch.as_tensor(list(labels), dtype=torch.int64))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def sequence(self, index: int) -> torch.Tensor:
        return self.ids[self.offsets[index]: self.offsets[index + 1]]


@dataclass
class EncodedCorpus:
    vocabulary: Vocabulary
    label_names: list[str]
    splits: dict[str, EncodedTexts]
    empty_texts: dict[str, int]   # per split: texts with no token (encoded as one <unk>)


def encode_corpus(raw_splits: dict[str, tuple[list[str], list[int]]], label_names: list[str],
                  settings: TextSettings) -> EncodedCorpus:
    """Tokenise every split; the vocabulary comes from the "train" split only."""
    tokenised = {name: [tokenize(text) for text in texts] for name, (texts, _) in raw_splits.items()}
    vocabulary = Vocabulary.build(tokenised["train"], settings.vocab_size, settings.min_freq)
    splits, empty = {}, {}
    for name, (_, labels) in raw_splits.items():
        sequences = [vocabulary.encode(tokens[: settings.max_len]) for tokens in tokenised[name]]
        splits[name] = EncodedTexts.from_lists(sequences, labels)
        empty[name] = sum(1 for tokens in tokenised[name] if not tokens)
    return EncodedCorpus(vocabulary, label_names, splits, empty)


def cache_key(data_fingerprint: str, settings: TextSettings) -> str:
    """Token cache key: the input data's content fingerprint, the settings, the pipeline version."""
    description = json.dumps({"data": data_fingerprint, "settings": asdict(settings), "pipeline": PIPELINE_VERSION},
                             sort_keys=True)
    return hashlib.sha256(description.encode()).hexdigest()[:20]


def save_corpus(corpus: EncodedCorpus, path: Path) -> None:
    payload = {"itos": corpus.vocabulary.itos, "label_names": corpus.label_names, "empty_texts": corpus.empty_texts,
               "splits": {n: (s.ids, s.offsets, s.labels) for n, s in corpus.splits.items()}}
    atomic_write(path, lambda stream: torch.save(payload, stream))


def load_corpus(path: Path) -> EncodedCorpus:
    payload = torch.load(path, weights_only=True)
    splits = {n: EncodedTexts(*tensors) for n, tensors in payload["splits"].items()}
    return EncodedCorpus(Vocabulary(payload["itos"]), payload["label_names"], splits, payload["empty_texts"])
