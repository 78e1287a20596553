"""``python -m seqbench.bench``: training throughput of seqbench against the plain PyTorch
loops a user would write, measured side by side in one run on the same data and model.

Model for every row: BiLSTM + additive attention, embedding 128, hidden 128, Adam, batch 64,
IMDB reviews truncated to ``--max-len`` tokens. Throughput counts real (non-pad) tokens.

Rows:
  plain padded   every batch padded to max_len, nn.LSTM(bidirectional) - fast, but its
                 backward direction reads the pads first (outputs depend on padding)
  plain packed   length-bucketed batches + pack_padded_sequence - correct, slow
  seqbench loop  seqbench's RecurrentNet on its bucketed batches, plain loop (no Lightning)
  seqbench       the same batches through Lightning's Trainer (what `python -m seqbench` runs)
and, with ``--impl``, the LSTM with model.impl=native against model.impl=scratch.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .data import TEXT_SOURCES, TextSettings
from .data.batching import BucketBatchSampler, TextSubset, pad_batch
from .data.modules import load_text_corpus
from .data.sources import resolve_data_root, user_cache_dir
from .data.text import EncodedTexts
from .models import NetworkConfig, RecurrentNet
from .record import hardware, versions


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def padded_batches(texts: EncodedTexts, batch_size: int, max_len: int, seed: int) -> list[dict]:
    order = np.random.default_rng(seed).permutation(len(texts))
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start: start + batch_size]
        batch = pad_batch([(texts.sequence(int(i)), texts.labels[int(i)]) for i in rows])
        full = torch.zeros(len(rows), max_len, dtype=torch.int64)
        full[:, : batch["inputs"].size(1)] = batch["inputs"]
        batch["inputs"] = full
        batches.append(batch)
    return batches


def bucketed_batches(texts: EncodedTexts, batch_size: int, seed: int) -> list[dict]:
    subset = TextSubset(texts)
    sampler = BucketBatchSampler(subset.lengths, batch_size, shuffle=True, seed=seed)
    return [pad_batch([subset[i] for i in rows]) for rows in sampler]


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def time_plain_loop(model: nn.Module, batches: list[dict], device: torch.device, step, warmup: int = 2) -> dict:
    """One pass of forward + backward + Adam step over ``batches``; the first ``warmup``
    batches run before the clock starts (allocator and kernel warm-up)."""
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for batch in batches[:warmup]:
        step(model, to_device(batch, device), optimizer)
    synchronize(device)
    start = time.perf_counter()
    for batch in batches:
        step(model, to_device(batch, device), optimizer)
    synchronize(device)
    seconds = time.perf_counter() - start
    tokens = int(sum(int(b["lengths"].sum()) for b in batches))
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}


def plain_step(packed: bool):
    def step(model, batch, optimizer):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(batch["inputs"], batch["lengths"], packed), batch["targets"])
        loss.backward()
        optimizer.step()
    return step


def seqbench_step(model, batch, optimizer):
    optimizer.zero_grad(set_to_none=True)
    logits, _ = model(batch["inputs"], batch["lengths"])
    nn.functional.cross_entropy(logits, batch["targets"]).backward()
    optimizer.step()


def seqbench_network(vocab_size: int, impl: str = "native", attention: bool = True) -> RecurrentNet:
    config = NetworkConfig(cell="lstm", hidden_size=128, embedding_dim=128, bidirectional=attention,
                           pooling="attention" if attention else "last",
                           attention="additive" if attention else None, impl=impl)
    return RecurrentNet(config, num_outputs=2, vocab_size=vocab_size)


def time_lightning(vocab_size: int, batches: list[dict], device: torch.device) -> dict:
    """The same batches through Lightning: ClassificationTask + Trainer, one epoch."""
    import pytorch_lightning as pl
    from functools import partial

    from .training import ClassificationTask, RunStatistics

    torch.manual_seed(0)
    task = ClassificationTask(seqbench_network(vocab_size), partial(torch.optim.Adam, lr=1e-3), num_classes=2)
    stats = RunStatistics()
    trainer = pl.Trainer(max_epochs=2, accelerator=device.type, devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[stats],
                         limit_val_batches=0, num_sanity_val_steps=0)
    # batch_size=None: the loader hands over the prepared batches as they are.
    trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    # Epoch 1 is the warm-up; epoch 2 is timed.
    return {"seconds": stats.epoch_seconds[-1], "tokens": stats.train_tokens // 2,
            "tokens_per_s": (stats.train_tokens // 2) / stats.epoch_seconds[-1]}


def load_slice(root: Path | None, reviews: int, max_len: int, synthetic: bool, seed: int) -> tuple[EncodedTexts, int, float]:
    """(first ``reviews`` shuffled training texts, vocabulary size, seconds to load the tokenised corpus)."""
    if synthetic:
        rng = np.random.default_rng(seed)
        lengths = np.clip(rng.lognormal(5.2, 0.6, reviews).astype(int), 10, max_len)
        sequences = [rng.integers(2, 5000, n).tolist() for n in lengths]
        return EncodedTexts.from_lists(sequences, rng.integers(0, 2, reviews).tolist()), 5000, float("nan")
    settings = TextSettings(max_len=max_len, vocab_size=25000, min_freq=2)
    cache = user_cache_dir() / "tokenised"
    load_text_corpus(TEXT_SOURCES["sentiment"], resolve_data_root(root), settings, cache)  # make sure it is cached
    start = time.perf_counter()
    corpus = load_text_corpus(TEXT_SOURCES["sentiment"], resolve_data_root(root), settings, cache)
    load_seconds = time.perf_counter() - start
    train = corpus.splits["train"]
    rows = np.random.default_rng(seed).permutation(len(train))[:reviews]
    sequences = [train.sequence(int(i)).tolist() for i in rows]
    return EncodedTexts.from_lists(sequences, train.labels[rows].tolist()), len(corpus.vocabulary), load_seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seqbench.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="data root (default: $SEQBENCH_DATA, else the download cache)")
    parser.add_argument("--reviews", type=int, default=1000, help="IMDB training reviews used (25000: all)")
    parser.add_argument("--max-len", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip", nargs="*", default=[], choices=["padded", "packed", "loop", "lightning", "impl"])
    parser.add_argument("--synthetic", action="store_true", help="random token data instead of IMDB")
    parser.add_argument("--out", default="results/bench.md")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    texts, vocab_size, load_seconds = load_slice(args.root, args.reviews, args.max_len, args.synthetic, seed=0)
    padded = padded_batches(texts, args.batch_size, args.max_len, seed=0)
    bucketed = bucketed_batches(texts, args.batch_size, seed=0)
    rows: dict[str, dict] = {}
    if "padded" not in args.skip:
        torch.manual_seed(0)
        rows["plain padded"] = time_plain_loop(PlainBiLSTMAttention(vocab_size), padded, device, plain_step(False))
    if "packed" not in args.skip:
        torch.manual_seed(0)
        rows["plain packed"] = time_plain_loop(PlainBiLSTMAttention(vocab_size), bucketed, device, plain_step(True))
    if "loop" not in args.skip:
        torch.manual_seed(0)
        rows["seqbench loop"] = time_plain_loop(seqbench_network(vocab_size), bucketed, device, seqbench_step)
    if "lightning" not in args.skip:
        rows["seqbench"] = time_lightning(vocab_size, bucketed, device)
    impl_rows: dict[str, dict] = {}
    if "impl" not in args.skip:
        few = bucketed[: max(3, len(bucketed) // 4)]  # the scratch loop is slow: a quarter of the batches
        for impl in ("native", "scratch"):
            torch.manual_seed(0)
            impl_rows[f"lstm impl={impl}"] = time_plain_loop(seqbench_network(vocab_size, impl, attention=False), few,
                                                             device, seqbench_step, warmup=1)

    lines = ["# seqbench training-speed benchmark", "",
             "- command: `" + " ".join(["python -m seqbench.bench", *(sys.argv[1:] if argv is None else argv)]) + "`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- device: {args.device}; hardware: {hardware()}",
             f"- versions: {versions()}",
             f"- data: {'synthetic' if args.synthetic else 'IMDB train'}, {len(texts)} reviews, max_len {args.max_len}, "
             f"batch {args.batch_size}, {int(texts.lengths.sum())} real tokens, "
             f"mean length {float(texts.lengths.float().mean()):.0f}",
             f"- tokenised IMDB loaded from cache in {load_seconds:.2f} s" if not args.synthetic else "", "",
             "| path | seconds | real tokens/s | vs plain padded | vs plain packed |", "| --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        ratio = lambda base: (f"{row['tokens_per_s'] / rows[base]['tokens_per_s']:.2f}x" if base in rows else "–")
        lines.append(f"| {name} | {row['seconds']:.2f} | {row['tokens_per_s']:,.0f} | {ratio('plain padded')} | "
                     f"{ratio('plain packed')} |")
    if "seqbench" in rows and "seqbench loop" in rows:
        overhead = rows["seqbench loop"]["tokens_per_s"] / rows["seqbench"]["tokens_per_s"] - 1
        lines += ["", f"Lightning overhead on identical batches: {overhead * 100:+.1f}% time versus the plain loop."]
    if impl_rows:
        native, scratch = impl_rows["lstm impl=native"], impl_rows["lstm impl=scratch"]
        lines += ["", "| LSTM (uni, last state), same batches | seconds | real tokens/s |", "| --- | --- | --- |"]
        lines += [f"| {name} | {row['seconds']:.2f} | {row['tokens_per_s']:,.0f} |" for name, row in impl_rows.items()]
        lines += ["", f"native / scratch speed ratio: {native['tokens_per_s'] / scratch['tokens_per_s']:.2f}x"]
    text = "\n".join(line for line in lines if line is not None) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
