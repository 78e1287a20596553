"""The text workloads (imdb, trec): seqbench against the plain PyTorch loops a user would write (padded,
bucketed, packed), on the same batches and model, and the hand-written cells against the fused kernels."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..data.batching import BucketBatchSampler, TextSubset
from ..data.declare import locate_text
from ..data.modules import load_text_corpus
from ..data.sources import user_cache_dir
from ..data.text import PAD_ID, EncodedTexts, TextSettings
from ..models import RecurrentNet, network_config
from ..registry import dataset_entry
from .timing import CLIP, seqbench_step, spread_caveat, time_lightning, time_plain_loop

@dataclass(frozen=True)
class Workload:
    name: str
    source: str
    max_len: int
    vocab_size: int
    min_freq: int
    batch_size: int
    embedding_dim: int
    hidden_size: int
    classes: int


WORKLOADS = {
    "imdb": Workload("imdb", "sentiment", 400, 25000, 2, 64, 128, 128, 2),
    "trec": Workload("trec", "trec", 64, 20000, 1, 16, 300, 128, 6),
}


class PlainBiLSTMAttention(nn.Module):
    """The tutorial model as a user writes it: nn.LSTM(bidirectional) + attention_net."""

    def __init__(self, vocab_size: int, embedding_dim: int = 128, hidden_size: int = 128, classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, batch_first=True, bidirectional=True)
        self.key = nn.Linear(2 * hidden_size, 2 * hidden_size, bias=False)
        self.query = nn.Linear(2 * hidden_size, 2 * hidden_size)
        self.v = nn.Linear(2 * hidden_size, 1, bias=False)
        self.out = nn.Linear(2 * hidden_size, classes)

    def forward(self, inputs, lengths, packed: bool):
        embedded = self.embedding(inputs)
        if packed:
            sequence = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
            output, (h, _) = self.lstm(sequence)
            output, _ = pad_packed_sequence(output, batch_first=True, total_length=inputs.size(1))
        else:
            output, (h, _) = self.lstm(embedded)
        query = torch.cat([h[-2], h[-1]], dim=-1)
        scores = self.v(torch.tanh(self.key(output) + self.query(query).unsqueeze(1))).squeeze(-1)
        mask = torch.arange(inputs.size(1), device=inputs.device).unsqueeze(0) < lengths.unsqueeze(1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return self.out(torch.einsum("bt,btd->bd", weights, output))


def padded_batches(texts: EncodedTexts, batch_size: int, seed: int) -> list[dict]:
    """Shuffled batches, each padded to the longest sequence of the whole data."""
    subset = TextSubset(texts)
    longest = int(texts.lengths.max())
    order = np.random.default_rng(seed).permutation(len(texts))
    batches = []
    for start in range(0, len(order), batch_size):
        batch = subset.batch(order[start: start + batch_size].tolist())
        full = torch.full((len(batch["lengths"]), longest), PAD_ID, dtype=torch.int64)
        full[:, : batch["inputs"].size(1)] = batch["inputs"]
        batch["inputs"] = full
        batches.append(batch)
    return batches


def bucketed_batches(texts: EncodedTexts, batch_size: int, seed: int) -> list[dict]:
    subset = TextSubset(texts)
    sampler = BucketBatchSampler(subset.lengths, batch_size, shuffle=True, seed=seed)
    return [subset.batch(rows) for rows in sampler]


def plain_step(packed: bool):
    def step(model, batch, optimizer):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(batch["inputs"], batch["lengths"], packed), batch["targets"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
    return step


def seqbench_network(vocab_size: int, workload: Workload, impl: str = "native", attention: bool = True) -> RecurrentNet:
    config = network_config(cell="lstm", hidden_size=workload.hidden_size, embedding_dim=workload.embedding_dim,
                           bidirectional=attention, pooling="attention" if attention else "last",
                           attention="additive" if attention else None, impl=impl)
    return RecurrentNet(config, num_outputs=workload.classes, vocab_size=vocab_size)


def load_texts(workload: Workload, root: Path | None, count: int | None, synthetic: bool,
               seed: int) -> tuple[EncodedTexts, int]:
    """(``count`` shuffled training texts of the workload's data set, vocabulary size)."""
    if synthetic:
        rng = np.random.default_rng(seed)
        count = count or 200
        lengths = np.clip(rng.lognormal(np.log(min(workload.max_len, 200) / 2), 0.6, count).astype(int), 3,
                          workload.max_len)
        sequences = [rng.integers(2, 5000, n).tolist() for n in lengths]
        return EncodedTexts.from_lists(sequences, rng.integers(0, workload.classes, count).tolist()), 5000
    settings = TextSettings(max_len=workload.max_len, vocab_size=workload.vocab_size, min_freq=workload.min_freq)
    source = dataset_entry(workload.source).extra["source_of"]({})
    located = locate_text(source, {"root": str(root) if root else None})
    corpus = load_text_corpus(source, located.located, settings, user_cache_dir() / "tokenised", located.fingerprint)
    train = corpus.splits["train"]
    rows = np.random.default_rng(seed).permutation(len(train))[: count or len(train)]
    sequences = [train.sequence(int(i)).tolist() for i in rows]
    return EncodedTexts.from_lists(sequences, train.labels[rows].tolist()), len(corpus.vocabulary)


def measure(workload: Workload, texts: EncodedTexts, vocab_size: int, device: torch.device, repeats: int,
            warmup: int, skip: set[str], precision: str) -> dict[str, dict]:
    padded = padded_batches(texts, workload.batch_size, seed=0)
    bucketed = bucketed_batches(texts, workload.batch_size, seed=0)
    if min(len(padded), len(bucketed)) <= warmup:
        raise SystemExit(f"{workload.name}: {len(texts)} sequences make {len(bucketed)} batches of "
                         f"{workload.batch_size}, not more than the {warmup} warm-up batches; use more data")
    plain = partial(PlainBiLSTMAttention, vocab_size, workload.embedding_dim, workload.hidden_size, workload.classes)
    ours = partial(seqbench_network, vocab_size, workload)
    paths = {
        "plain padded": lambda: time_plain_loop(plain, padded, device, plain_step(False), warmup),
        "plain bucketed": lambda: time_plain_loop(plain, bucketed, device, plain_step(False), warmup),
        "plain packed": lambda: time_plain_loop(plain, bucketed, device, plain_step(True), warmup),
        "seqbench loop": lambda: time_plain_loop(ours, bucketed, device, seqbench_step, warmup),
        "seqbench": lambda: time_lightning(ours, bucketed, device, warmup, precision, workload.classes),
    }
    tokens = {"plain padded": sum(int(b["lengths"].sum()) for b in padded[warmup:])}
    tokens.update({name: sum(int(b["lengths"].sum()) for b in bucketed[warmup:]) for name in paths
                   if name != "plain padded"})
    results: dict[str, dict] = {name: {"seconds": []} for name in paths if name.split()[-1] not in skip}
    for _ in range(repeats):  # interleaved, so a slow spell of the machine hits every path alike
        for name in results:
            results[name]["seconds"].append(paths[name]())
    for name, row in results.items():
        row["median_seconds"] = statistics.median(row["seconds"])
        row["tokens"] = tokens[name]
        row["tokens_per_s"] = tokens[name] / row["median_seconds"]
        row["batches"] = len(padded if name == "plain padded" else bucketed) - warmup
    return results


def format_rows(workload: Workload, results: dict[str, dict]) -> list[str]:
    lines = [f"| {workload.name} path | batches | real tokens | seconds (median of {len(next(iter(results.values()))['seconds'])}; all) "
             f"| real tokens/s | vs plain padded | vs plain bucketed |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in results.items():
        def ratio(base):
            return f"{row['tokens_per_s'] / results[base]['tokens_per_s']:.2f}x" if base in results else "–"
        everything = ", ".join(f"{s:.2f}" for s in row["seconds"])
        lines.append(f"| {name} | {row['batches']} | {row['tokens']:,} | {row['median_seconds']:.2f} ({everything}) | "
                     f"{row['tokens_per_s']:,.0f} | {ratio('plain padded')} | {ratio('plain bucketed')} |")
    if "seqbench" in results and "seqbench loop" in results:
        overhead = results["seqbench"]["median_seconds"] / results["seqbench loop"]["median_seconds"] - 1
        lines += ["", f"{workload.name}: Lightning's per-batch overhead on identical batches: {overhead * 100:+.1f}% "
                      f"time (seqbench through Lightning against the same network in a plain loop)."
                      + spread_caveat([results["seqbench"], results["seqbench loop"]])]
    return lines


def impl_rows(workload: Workload, texts: EncodedTexts, vocab_size: int, device: torch.device, warmup: int) -> list[str]:
    """The hand-written cells against the fused kernels, on a quarter of the batches (the
    scratch loop is slow)."""
    bucketed = bucketed_batches(texts, workload.batch_size, seed=0)
    few = bucketed[: max(warmup + 3, len(bucketed) // 4)]
    tokens = sum(int(b["lengths"].sum()) for b in few[warmup:])
    rows = {}
    for impl in ("native", "scratch"):
        seconds = time_plain_loop(partial(seqbench_network, vocab_size, workload, impl, False), few, device,
                                  seqbench_step, warmup)
        rows[impl] = tokens / seconds
    return ["| LSTM (one direction, last state), same batches | real tokens/s |", "| --- | --- |",
            *[f"| impl={impl} | {speed:,.0f} |" for impl, speed in rows.items()], "",
            f"native / scratch speed ratio: {rows['native'] / rows['scratch']:.2f}x"]
