"""Text lengths of a classification test set (tokens per text, found without downloading
anything) and the test accuracy by length bucket."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.sources import DATA_ENV, user_cache_dir
from ..data.spec import data_fingerprint
from ..registry import dataset_entry
from ..results import VariantLabels, mean_std_ci, read_predictions


@dataclass
class TextLengths:
    """Tokens per text of a classification data set, before truncation to ``dataset.max_len``:
    ``test`` in the order of the test split (the predictions' ``index``), ``train`` where known."""
    test: np.ndarray
    train: np.ndarray | None
    source: str                    # in words: where the texts came from and how tokens were counted


def _data_files(record: dict, kind: str) -> object | None:
    """The record's input files on this machine, without downloading anything: each at its
    recorded path, else by its name under the data roots (``dataset.root``, $SEQBENCH_DATA, the
    user cache), in the data set's own folder or at the top. None where one is missing."""
    files = {k: v for k, v in ((record.get("data") or {}).get("files") or {}).items() if k != "vectors"}
    if not files:
        return None
    dataset = (record.get("config") or {}).get("dataset") or {}
    roots = [Path(str(r)).expanduser() for r in (dataset.get("root"), os.environ.get(DATA_ENV)) if r]
    roots.append(user_cache_dir() / "data")
    found = {}
    for split, value in files.items():
        path = Path(str(value))
        candidates = [path] if path.is_absolute() else []
        candidates += [root / sub / path.name for root in roots for sub in (kind, str(record.get("dataset")), "")]
        hit = next((c for c in candidates if c.exists()), None)
        if hit is None:
            return None
        found[split] = hit
    return found["data"] if set(found) == {"data"} else found


def text_lengths(records: list[dict]) -> tuple[TextLengths | None, str]:
    """Tokens per test text of a classification data set, and (where none) why not. From a
    ``text`` column of the predictions where there is one (``seqbench eval`` writes it); else from
    the data set's own files found on this machine, read by the data set's own reader and counted
    with seqbench's tokenizer (the one training used), accepted only where the files' fingerprint
    is the runs' and the test labels read are the predictions' targets, in order. Nothing is
    downloaded."""
    frames = [(r, read_predictions(r)) for r in records]
    frames = [(r, f) for r, f in frames if f is not None and "index" in f]
    if not frames:
        return None, "no readable predictions"
    record, frame = frames[0]
    frame = frame.sort_values("index")
    try:
        from ..data.text import tokenize
    except ImportError as error:   # pragma: no cover - the package's own module
        return None, f"seqbench's tokenizer cannot be imported ({error})"
    if "text" in frame:
        lengths = frame["text"].fillna("").astype(str).map(lambda t: len(tokenize(t))).to_numpy()
        return TextLengths(lengths, None, "the predictions' text column, counted with seqbench's tokenizer"), ""
    dataset = (record.get("config") or {}).get("dataset") or {}
    kind = record.get("dataset_kind") or dataset.get("kind") or dataset.get("name") or record.get("dataset")
    try:
        entry = dataset_entry(str(kind))
        source_of = entry.extra.get("source_of")
        located = _data_files(record, str(kind)) if source_of else None
        if located is None:
            return None, ("the predictions hold no text and the data set's files were not found on this machine; "
                          "set $SEQBENCH_DATA or dataset.root to the folder that holds them")
        source = source_of(dataset)
        if data_fingerprint(source, located) != record.get("data_fingerprint"):
            return None, "the data set's files found on this machine are not the ones these runs used: their fingerprint differs"
        splits = source.read(located)
    except Exception as error:   # a diagnostic: never the reason a report fails
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, f"the data set's files could not be read here ({reason})"
    texts, labels = splits["test"][0], list(splits["test"][1])
    if len(texts) != len(frame) or ("target" in frame and list(frame["target"].astype(int)) != [int(x) for x in labels]):
        return None, "the test texts read here do not match the predictions (count or labels differ)"
    names = sorted({Path(str(v)).name for v in ((record.get("data") or {}).get("files") or {}).values()})
    train = splits.get("train")
    return (TextLengths(np.array([len(tokenize(t)) for t in texts]),
                        np.array([len(tokenize(t)) for t in train[0]]) if train else None,
                        f"the data set's own files ({', '.join(names)}, fingerprint {record.get('data_fingerprint')}), "
                        f"counted with seqbench's tokenizer, the one training used (words and punctuation marks)"),
            "")


def length_buckets(lengths: np.ndarray) -> list[tuple[int | None, int | None, str]]:
    """Buckets of text length from the test set's quartiles (observed lengths; equal edges merged):
    (low, high, label) with low exclusive and high inclusive, None open."""
    # Observed lengths as edges (the lower quantile), so that no bucket is empty.
    edges = sorted({int(q) for q in np.quantile(lengths, [0.25, 0.5, 0.75], method="inverted_cdf")})
    edges = [e for e in edges if lengths.min() <= e < lengths.max()]
    bounds = [None, *edges, None]
    out = []
    for low, high in zip(bounds[:-1], bounds[1:]):
        if low is None and high is None:
            label = "all"
        elif low is None:
            label = f"≤ {high}"
        elif high is None:
            label = f"> {low}"
        else:
            label = f"{low + 1}" if high == low + 1 else f"{low + 1}-{high}"
        out.append((low, high, label))
    return out


def _in_bucket(lengths: np.ndarray, low, high) -> np.ndarray:
    return (lengths > (low if low is not None else -1)) & (lengths <= (high if high is not None else np.inf))


def length_table(records: list[dict], labels: VariantLabels, lengths: TextLengths, order: list[str]) -> pd.DataFrame:
    """Per variant and length bucket: the test accuracy of each seed on the texts of that length,
    then its mean over seeds, sd and 95% t interval; with the bucket's test examples and its
    share of the training texts."""
    buckets = length_buckets(lengths.test)
    per: dict[str, dict[str, list[float]]] = {}
    for r in records:
        frame = read_predictions(r)
        if frame is None or not {"index", "target", "predicted"} <= set(frame) or len(frame) != len(lengths.test):
            continue
        frame = frame.sort_values("index")
        correct = (frame["target"].to_numpy() == frame["predicted"].to_numpy())
        for low, high, name in buckets:
            inside = _in_bucket(lengths.test, low, high)
            per.setdefault(labels[r["config_hash"]], {}).setdefault(name, []).append(float(correct[inside].mean()))
    rows = []
    for variant in [*[v for v in order if v in per], *sorted(set(per) - set(order))]:
        for low, high, name in buckets:
            values = pd.Series(per[variant].get(name, []), dtype=float)
            mean, std, half, n = mean_std_ci(values)
            inside = _in_bucket(lengths.test, low, high)
            rows.append({"variant": variant, "tokens": name, "min_tokens": int(lengths.test[inside].min()),
                         "max_tokens": int(lengths.test[inside].max()), "test_examples": int(inside.sum()),
                         "train_share_pct": (100 * float(_in_bucket(lengths.train, low, high).mean())
                                             if lengths.train is not None and len(lengths.train) else math.nan),
                         "seeds": n, "acc_mean_pct": 100 * mean, "acc_sd_pct": 100 * std,
                         "acc_ci_low_pct": 100 * (mean - half), "acc_ci_high_pct": 100 * (mean + half)})
    return pd.DataFrame(rows)
