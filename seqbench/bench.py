"""``seqbench bench``: training throughput of seqbench against the plain PyTorch loops a user
would write, measured side by side in one run, on the same batches and model.

Workloads (``--workload``):
  imdb      BiLSTM + additive attention, embedding 128, hidden 128, batch 64, IMDB reviews
            truncated to ``--max-len`` tokens (``--reviews`` of them)
  trec      the TREC defaults: BiLSTM + additive attention, embedding 300, hidden 128, batch 16,
            all 5,452 training questions (many small batches: where per-batch overhead shows)
  models    every cell's training throughput on the same signal batches
  denormal  the adding task at T = 400 (nn.GRU, hidden 128, batch 50, one thread): a plain loop with
            denormal floats kept (torch's default) and flushed, and seqbench's own run
  sparse    TREC epochs of gru and bilstm_attn_concat with the dense embedding update (denormals
            kept, flushed) and the sparse one (optimizer.sparse_embedding=true)
  threads   TREC gru steps with 1 and 2 torch threads, on a quiet machine and beside a busy process
  loops     the hand-written GRU's per-step loop, steps taken with x[:, t] (before) and unbind (now)
  scan      mingru, minlstm and lru layers in model.mode=sequential (a loop over time), parallel (the
            scan over all steps) and fused (the loop, backward written out): one function, three ways
  lru       lru and lru_deep (sequential) with the complex state's products before (strided Re/Im
            views, copied) and now (one interleaved real product in, one out)

Paths (every one: forward, backward, gradient clipping at 1.0 and fused Adam, as seqbench's defaults):
  plain padded    every batch padded to the longest sequence of the data, nn.LSTM(bidirectional):
                  fast, but its backward direction reads the pads first (outputs depend on padding)
  plain bucketed  the same plain model on seqbench's length-bucketed batches (little padding)
  plain packed    length-bucketed batches + pack_padded_sequence: correct, slow on CPU
  seqbench loop   seqbench's RecurrentNet on the bucketed batches, in a plain loop
  seqbench        the same batches through Lightning's Trainer (what `seqbench` runs)

Every path warms up on the same number of batches (untimed), then is timed over the same
batches; each path is repeated (``--repeats``, default 3) and the median is reported, since
these machines are noisy. Only training is timed: no validation, no data loading.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .config import PRECISIONS
from .data.batching import BucketBatchSampler, TextSubset
from .data.declare import locate_text
from .data.modules import load_text_corpus
from .data.sources import user_cache_dir
from .data.text import PAD_ID, EncodedTexts, TextSettings
from .models import RecurrentNet, network_config
from .registry import dataset_entry
from .record import describe_hardware, hardware, versions
from .runtime import argument_parser, at_least_one, entry_point

CLIP = 1.0


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


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def plain_step(packed: bool):
    def step(model, batch, optimizer):
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(batch["inputs"], batch["lengths"], packed), batch["targets"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
    return step


def network_step(loss=nn.functional.cross_entropy):
    """One training step of a seqbench network: forward, ``loss(outputs, targets)``, backward,
    clipping, Adam."""
    def step(model, batch, optimizer):
        optimizer.zero_grad(set_to_none=True)
        outputs, _ = model(batch["inputs"], batch["lengths"])
        loss(outputs, batch["targets"]).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
    return step


seqbench_step = network_step()


def time_plain_loop(make_model, batches: list[dict], device: torch.device, step, warmup: int,
                    fused: bool = True) -> float:
    """Seconds for one training pass over ``batches`` after ``warmup`` untimed batches."""
    torch.manual_seed(0)
    model = make_model().to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    batches = [to_device(b, device) for b in batches]
    for batch in batches[:warmup]:
        step(model, batch, optimizer)
    synchronize(device)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(model, batch, optimizer)
    synchronize(device)
    return time.perf_counter() - start


def seqbench_network(vocab_size: int, workload: Workload, impl: str = "native", attention: bool = True) -> RecurrentNet:
    config = network_config(cell="lstm", hidden_size=workload.hidden_size, embedding_dim=workload.embedding_dim,
                           bidirectional=attention, pooling="attention" if attention else "last",
                           attention="additive" if attention else None, impl=impl)
    return RecurrentNet(config, num_outputs=workload.classes, vocab_size=vocab_size)


def time_lightning(make_model, batches: list[dict], device: torch.device, warmup: int, precision: str,
                   num_classes: int, make_task=None) -> float:
    """The same batches through Lightning: ClassificationTask (or ``make_task(network)``) + Trainer
    with seqbench's run statistics and gradient clipping, one epoch; the clock runs from the first
    batch after the warm-up to the last, exactly as for the plain loops."""
    import warnings

    import pytorch_lightning as pl

    from .runtime import quiet_lightning
    from .training import ClassificationTask, RunStatistics
    quiet_lightning()  # no device notices or tips between the tables

    class BatchClock(pl.Callback):
        def __init__(self):
            self.start = self.stop = None

        def on_train_batch_start(self, trainer, module, batch, batch_index):
            if batch_index == warmup:
                synchronize(device)
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_index):
            if batch_index == len(batches) - 1:
                synchronize(device)
                self.stop = time.perf_counter()

    torch.manual_seed(0)
    task = (make_task(make_model()) if make_task else
            ClassificationTask(make_model(), partial(torch.optim.Adam, lr=1e-3, fused=True), num_classes=num_classes))
    clock = BatchClock()
    trainer = pl.Trainer(max_epochs=1, accelerator=device.type, devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[RunStatistics(), clock],
                         limit_val_batches=0, num_sanity_val_steps=0, gradient_clip_val=CLIP, precision=precision)
    # batch_size=None: the loader hands over the prepared batches as they are.
    with warnings.catch_warnings():  # "no val_dataloader", "few workers": true, and beside the point here
        warnings.simplefilter("ignore")
        trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return clock.stop - clock.start


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


def spread_caveat(rows: list[dict], tolerance: float = 1.25) -> str:
    """A caveat of its own for a figure whose repeats disagree: the machine was busy."""
    spreads = [max(row["seconds"]) / min(row["seconds"]) for row in rows if min(row["seconds"]) > 0]
    if spreads and max(spreads) > tolerance:
        return (f" Caveat: its repeats differ by up to {max(spreads):.1f}x (slowest against fastest), so the "
                f"machine was busy while it ran; do not read this figure as the overhead.")
    return ""


SCAN_CELLS = ("mingru", "minlstm", "lru")
SCAN_MODES = ("sequential", "parallel", "fused")  # the loop through autograd (the baseline) first
MODEL_CELLS = (("gru", None), ("lstm", None), *((cell, mode) for cell in SCAN_CELLS for mode in SCAN_MODES),
               ("transformer", None))


def measure_models(lengths: list[int], hidden: int, batch: int, batches: int, warmup: int, repeats: int,
                   device: torch.device) -> dict[int, dict[str, dict]]:
    """Training throughput of every cell on the same signal batches (two inputs per step, one
    output read after the last step, as in the adding problem), same hidden size, interleaved."""
    out = {}
    for length in lengths:
        generator = torch.Generator().manual_seed(length)
        data = [{"inputs": torch.randn(batch, length, 2, generator=generator),
                 "lengths": torch.full((batch,), length), "targets": torch.randn(batch, generator=generator)}
                for _ in range(warmup + batches)]

        def timed(cell, mode):
            options = {"mode": mode} if mode else {}
            make = partial(RecurrentNet, network_config(cell=cell, hidden_size=hidden, embedding_dim=hidden, **options),
                           1, input_dim=2)
            step = network_step(lambda values, targets: nn.functional.mse_loss(values.squeeze(-1), targets))
            return time_plain_loop(make, data, device, step, warmup, fused=False)
        rows = {f"{cell}{f' ({mode})' if mode else ''}": {"seconds": []} for cell, mode in MODEL_CELLS}
        for _ in range(repeats):
            for (cell, mode), name in zip(MODEL_CELLS, rows):
                rows[name]["seconds"].append(timed(cell, mode))
        tokens = batches * batch * length
        for row in rows.values():
            row["median_seconds"] = statistics.median(row["seconds"])
            row["tokens_per_s"] = tokens / row["median_seconds"]
        out[length] = rows
    return out


def format_models(results: dict[int, dict[str, dict]], hidden: int, batch: int, batches: int) -> list[str]:
    lines = [f"Every cell on the same batches: {batch} sequences of T steps with 2 inputs per step, one output after "
             f"the last step, hidden size {hidden}, {batches} timed batches per repeat; training only.", ""]
    for length, rows in results.items():
        lines += [f"### T = {length}", "",
                  "| model | seconds (median; all) | tokens/s | vs gru | vs lstm | parallel / sequential |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name, row in rows.items():
            cell = name.split(" ")[0]
            pair = (f"{row['tokens_per_s'] / rows[f'{cell} (sequential)']['tokens_per_s']:.2f}x"
                    if name.endswith("(parallel)") else "–")
            lines.append(f"| {name} | {row['median_seconds']:.2f} ({', '.join(f'{s:.2f}' for s in row['seconds'])}) | "
                         f"{row['tokens_per_s']:,.0f} | {row['tokens_per_s'] / rows['gru']['tokens_per_s']:.2f}x | "
                         f"{row['tokens_per_s'] / rows['lstm']['tokens_per_s']:.2f}x | {pair} |")
        caveat = spread_caveat(list(rows.values()))
        lines += ["", caveat.strip()] if caveat else []
        lines.append("")
    return lines


# ------------------------------------------------------------------ speed settings: denormals, sparse
class PlainGRURegressor(nn.Module):
    """The adding-task model as a user writes it: nn.GRU, a linear read-out of the last state."""

    def __init__(self, hidden: int):
        super().__init__()
        self.gru = nn.GRU(2, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, inputs, lengths, packed=False):
        return self.out(self.gru(inputs)[0][:, -1]).squeeze(-1)


def mse_step(model, batch, optimizer):
    optimizer.zero_grad(set_to_none=True)
    nn.functional.mse_loss(model(batch["inputs"], batch["lengths"]), batch["targets"]).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    optimizer.step()


def adding_batches(length: int, batch: int, count: int) -> list[dict]:
    """The adding problem's batches (a random number and a marker per step; two marked steps)."""
    generator = torch.Generator().manual_seed(length)
    out = []
    for _ in range(count):
        values = torch.rand(batch, length, generator=generator)
        marks = torch.zeros(batch, length)
        first = torch.randint(0, length // 2, (batch,), generator=generator)
        second = torch.randint(length // 2, length, (batch,), generator=generator)
        marks[torch.arange(batch), first] = 1.0
        marks[torch.arange(batch), second] = 1.0
        out.append({"inputs": torch.stack([values, marks], dim=-1), "lengths": torch.full((batch,), length),
                    "targets": (values * marks).sum(1)})
    return out


def with_denormals(flush: bool, measure):
    """``measure()`` with denormal floats flushed to zero or kept (torch's default), then kept."""
    torch.set_flush_denormal(flush)
    try:
        return measure()
    finally:
        torch.set_flush_denormal(False)


def measure_denormals(length: int, hidden: int, batch: int, batches: int, warmup: int, repeats: int,
                      device: torch.device) -> dict[str, dict]:
    """Seconds per training step on the adding task at T = ``length``, one thread: a plain PyTorch
    loop (nn.GRU + fused Adam + clipping) with denormals kept (torch's default) and flushed, and
    seqbench's own run (its GRU network and RegressionTask through Lightning, denormals flushed as
    ``flush_denormal=true`` does)."""
    from .training import RegressionTask
    data = adding_batches(length, batch, warmup + batches)
    network = partial(RecurrentNet, network_config(cell="gru", hidden_size=hidden, embedding_dim=2), 1, input_dim=2)

    def regression(net):
        return RegressionTask(net, partial(torch.optim.Adam, lr=1e-3, fused=True), per_step=False)
    paths = {
        "plain PyTorch, denormals kept (torch's default)":
            lambda: with_denormals(False, lambda: time_plain_loop(partial(PlainGRURegressor, hidden), data, device,
                                                                  mse_step, warmup)),
        "plain PyTorch, denormals flushed":
            lambda: with_denormals(True, lambda: time_plain_loop(partial(PlainGRURegressor, hidden), data, device,
                                                                 mse_step, warmup)),
        "seqbench (flush_denormal=true, the default)":
            lambda: with_denormals(True, lambda: time_lightning(network, data, device, warmup, "32-true", 0,
                                                                make_task=regression)),
    }
    with one_torch_thread():
        rows = {name: {"seconds": []} for name in paths}
        for _ in range(repeats):  # interleaved
            for name, path in paths.items():
                rows[name]["seconds"].append(path() / batches)
    for row in rows.values():
        row["median_seconds"] = statistics.median(row["seconds"])
    return rows


def format_step_rows(title: str, rows: dict[str, dict], baseline: str, unit: str = "s per step") -> list[str]:
    lines = [f"| {title} | {unit} (median; all) | speed vs {baseline} |", "| --- | --- | --- |"]
    base = rows[baseline]["median_seconds"]
    for name, row in rows.items():
        everything = ", ".join(f"{s:.3g}" for s in row["seconds"])
        lines.append(f"| {name} | {row['median_seconds']:.3g} ({everything}) | {base / row['median_seconds']:.2f}x |")
    return lines + ["", spread_caveat(list(rows.values())).strip()]


SPARSE_MODELS = {"gru": dict(cell="gru"),
                 "bilstm_attn_concat": dict(cell="lstm", bidirectional=True, pooling="attention", attention="concat")}


def measure_sparse(workload: Workload, texts: EncodedTexts, vocab_size: int, device: torch.device, repeats: int,
                   models: list[str]) -> dict[str, dict[str, dict]]:
    """Seconds per epoch over the TREC training batches through seqbench's Lightning path, after one
    untimed epoch (by then Adam's moments of rows a batch did not touch have decayed for hundreds of
    steps, as in a real run): the dense embedding update with denormals kept and flushed, and the
    sparse update (flushed)."""
    from .training import ClassificationTask
    bucketed = bucketed_batches(texts, workload.batch_size, seed=0)
    epoch = len(bucketed)
    out = {}
    for model in models:
        config = network_config(**SPARSE_MODELS[model], hidden_size=workload.hidden_size,
                                embedding_dim=workload.embedding_dim)

        def timed(sparse: bool):
            def task(net):
                return ClassificationTask(net, partial(torch.optim.Adam, lr=3e-3, fused=True),
                                          num_classes=workload.classes)
            make = partial(RecurrentNet, config, workload.classes, vocab_size=vocab_size, sparse_embedding=sparse)
            return time_lightning(make, bucketed * 2, device, epoch, "32-true", workload.classes, make_task=task)
        paths = {"dense embedding, denormals kept": lambda: with_denormals(False, lambda: timed(False)),
                 "dense embedding, denormals flushed (default)": lambda: with_denormals(True, lambda: timed(False)),
                 "sparse embedding (optimizer.sparse_embedding=true), flushed": lambda: with_denormals(True, lambda: timed(True))}
        rows = {name: {"seconds": []} for name in paths}
        for _ in range(repeats):
            for name, path in paths.items():
                rows[name]["seconds"].append(path())
        for row in rows.values():
            row["median_seconds"] = statistics.median(row["seconds"])
        out[model] = rows
    return out


# ---------------------------------------------------------------------------------- per-step loops
def sliced_scratch_forward(layer, x: torch.Tensor) -> torch.Tensor:
    """A hand-written cell's loop as it was written before (``from_input[:, t]`` at every step),
    kept as the reference its ``unbind`` loop is timed and tested against."""
    h = x.new_zeros(x.size(0), layer.hidden_size)
    c = x.new_zeros(x.size(0), layer.hidden_size)
    from_input = torch.nn.functional.linear(x, layer.weight_ih_l0, layer.bias_ih_l0)
    outputs = []
    for t in range(x.size(1)):
        from_hidden = torch.nn.functional.linear(h, layer.weight_hh_l0, layer.bias_hh_l0)
        a = from_input[:, t]
        if layer.cell == "rnn":
            h = layer.activation(a + from_hidden)
        elif layer.cell == "lstm":
            i, f, g, o = (a + from_hidden).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            a_r, a_z, a_n = a.chunk(3, dim=1)
            b_r, b_z, b_n = from_hidden.chunk(3, dim=1)
            r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
            h = (1 - z) * torch.tanh(a_n + r * b_n) + z * h
        outputs.append(h)
    return torch.stack(outputs, dim=1)


@contextlib.contextmanager
def one_torch_thread():
    """Time on one torch thread (the shape a grid job runs), then give back the threads the caller had."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def interleaved_forward_backward(paths: dict, x: torch.Tensor, repeats: int) -> dict[str, dict]:
    """Forward + backward of each path on ``x`` (name -> (forward, module whose gradients it
    fills)): one untimed pass each, then ``repeats`` rounds taking every path in turn (so machine
    noise falls on all alike), denormals flushed; seconds per pass and their median."""
    def timed(forward, module):
        start = time.perf_counter()
        forward(x).sum().backward()
        module.zero_grad(set_to_none=True)
        return time.perf_counter() - start
    rows = {name: {"seconds": []} for name in paths}
    for forward, module in paths.values():  # warm-up
        timed(forward, module)
    for _ in range(repeats):
        for name, (forward, module) in paths.items():
            rows[name]["seconds"].append(with_denormals(True, lambda: timed(forward, module)))
    for row in rows.values():
        row["median_seconds"] = statistics.median(row["seconds"])
    return rows


def measure_loops(lengths: list[int], hidden: int, repeats: int) -> dict[int, dict[str, dict]]:
    """Forward + backward of the hand-written GRU (model.impl=scratch) over T steps, taking each step
    with ``x[:, t]`` (as before) and with ``unbind`` (as now); batch 32, one thread, denormals flushed."""
    from .models.scratch import ScratchRecurrentLayer
    torch.manual_seed(0)
    layer = ScratchRecurrentLayer("gru", 64, hidden)
    paths = {"sliced x[:, t] (before)": lambda x: sliced_scratch_forward(layer, x),
             "unbind (now)": lambda x: layer(x)[0]}
    out = {}
    with one_torch_thread():
        for length in lengths:
            x = torch.randn(32, length, 64)
            out[length] = interleaved_forward_backward({name: (path, layer) for name, path in paths.items()}, x, repeats)
    return out


# ------------------------------------------------------------------------------------------ scan


def scan_layer(cell: str, size: int, mode: str) -> torch.nn.Module:
    from .models.lru import LinearRecurrentUnit
    from .models.minrnn import MinRNNLayer
    return LinearRecurrentUnit(size, size, mode=mode) if cell == "lru" else MinRNNLayer(cell, size, size, mode)




def measure_scan(lengths: list[int], widths: list[int], repeats: int, batch: int = 50) -> dict[tuple[str, int, int], dict]:
    """Forward + backward of one layer of each scan cell over T steps in every ``model.mode`` (the same
    parameters, the same function): batch 50 as the memory grid trains them, one thread, denormals
    flushed. What ``model.mode=auto`` picks on a CPU follows these ratios."""
    out = {}
    with one_torch_thread():
        for cell in SCAN_CELLS:
            for width in widths:
                for length in lengths:
                    torch.manual_seed(0)
                    layers = {mode: scan_layer(cell, width, mode) for mode in SCAN_MODES}
                    for layer in layers.values():
                        layer.load_state_dict(layers[SCAN_MODES[0]].state_dict())
                    x = torch.randn(batch, length, width)
                    out[(cell, width, length)] = interleaved_forward_backward(
                        {mode: (layer, layer) for mode, layer in layers.items()}, x, repeats)
    return out


def format_scan(measured: dict[tuple[str, int, int], dict]) -> list[str]:
    lines = []
    for (cell, width, length), rows in measured.items():
        label = f"{cell}, width {width}, T = {length}"
        lines += format_step_rows(label, rows, SCAN_MODES[0], "s per step")
        seconds = {mode: row["median_seconds"] for mode, row in rows.items()}
        lines += [f"{label}: fused against sequential: {seconds['sequential'] / seconds['fused']:.2f}x; "
                  f"fused against parallel: {seconds['parallel'] / seconds['fused']:.2f}x", ""]
    return lines


# ------------------------------------------------------------------------------------------- lru
def strided_lru_forward(unit, v: torch.Tensor) -> torch.Tensor:
    """``LinearRecurrentUnit._forward`` as it was before the interleaved products: B v through two
    real products joined by ``torch.complex``, Re(C h) through the strided views ``h.real``/``h.imag``
    (the same function; each strided view is copied, forward and backward)."""
    from torch.nn import functional as F
    from .models.lru import parallel_linear_scan, sequential_linear_scan
    gamma = torch.exp(unit.gamma_log)
    driven = torch.complex(F.linear(v, unit.B_re), F.linear(v, unit.B_im)) * gamma
    scan = parallel_linear_scan if unit.mode == "parallel" else sequential_linear_scan
    h = scan(unit.eigenvalues(v.dtype), driven)
    return F.linear(h.real, unit.C_re) - F.linear(h.imag, unit.C_im) + unit.D * v


def measure_lru(lengths: list[int], hidden: int, repeats: int, batch: int = 50) -> dict[tuple[str, int], dict]:
    """Forward + backward of the LRU in model.mode=sequential with its products before (strided) and now
    (interleaved): one layer (``lru``) and the 4-block encoder of ``lru_deep``; batch 50, width ``hidden``
    as the memory grid trains them, one thread, denormals flushed."""
    from unittest import mock
    from .config import network_config
    from .models.lru import LinearRecurrentUnit, LRUEncoder
    out = {}
    with one_torch_thread():
        for name, layers in (("lru", 1), ("lru_deep", 4)):
            for length in lengths:
                torch.manual_seed(0)
                encoder = LRUEncoder(2, network_config(cell=name, hidden_size=hidden, num_layers=layers, mode="sequential"))
                lengths_ = torch.full((batch,), length)

                def now(x):
                    return encoder(x, lengths_)[0]

                def before(x):
                    with mock.patch.object(LinearRecurrentUnit, "_forward", strided_lru_forward):
                        return encoder(x, lengths_)[0]
                x = torch.randn(batch, length, 2)
                out[(name, length)] = interleaved_forward_backward(
                    {"strided Re/Im, torch.complex (before)": (before, encoder), "interleaved products (now)": (now, encoder)},
                    x, repeats)
    return out


# --------------------------------------------------------------------------------------- threads
BUSY_LOOP = ("import torch, time\ntorch.set_num_threads(1)\nx = torch.randn(256, 256)\nend = time.time() + {seconds}\n"
             "while time.time() < end:\n    x = torch.tanh(x @ x.T / 256)\n")


def measure_threads(workload: Workload, texts: EncodedTexts, vocab_size: int, repeats: int,
                    warmup: int) -> dict[str, dict]:
    """Seconds for one pass of TREC gru training steps with 1 and with 2 torch threads, on a quiet
    machine and beside one busy process (another job of a sweep, a test suite): the measurement
    behind the thread defaults (README, "Speed")."""
    import os
    import subprocess
    bucketed = bucketed_batches(texts, workload.batch_size, seed=0)
    config = network_config(cell="gru", hidden_size=workload.hidden_size, embedding_dim=workload.embedding_dim)
    make = partial(RecurrentNet, config, workload.classes, vocab_size=vocab_size)
    cores = os.cpu_count() or 1
    rows = {}
    previous = torch.get_num_threads()
    try:
        for busy in (False, True):
            for threads in sorted({1, min(2, cores), cores}):
                rows[f"{threads} thread{'s' if threads > 1 else ''}, {'one other busy process' if busy else 'quiet'}"] = \
                    {"threads": threads, "busy": busy, "seconds": []}
        for _ in range(repeats):
            for name, row in rows.items():
                torch.set_num_threads(row["threads"])
                other = None
                if row["busy"]:
                    other = subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(seconds=600)])
                    time.sleep(1.0)
                try:
                    row["seconds"].append(with_denormals(True, lambda: time_plain_loop(make, bucketed, torch.device("cpu"),
                                                                                       seqbench_step, warmup)))
                finally:
                    if other is not None:
                        other.kill()
                        other.wait()
    finally:
        torch.set_num_threads(previous)
    for row in rows.values():
        row["median_seconds"] = statistics.median(row["seconds"])
    return rows


def checked_device(name: str) -> torch.device:
    """``--device`` as torch names it, present on this machine; else one line naming the fix."""
    from . import SeqbenchError
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SeqbenchError(f"--device {name!r}: not a device torch knows (cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SeqbenchError(f"--device {name}: this torch ({torch.__version__}) sees no CUDA GPU; use --device cpu, or "
                            f"install the torch build for your CUDA")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SeqbenchError(f"--device {name}: no Apple GPU (MPS) here; use --device cpu")
    return device


def before_after_section(name: str, description: str, measured: dict[str, dict], ratio_words: str) -> list[str]:
    """A workload section timing two ways of computing one thing: per setting, its table (the first
    path is the baseline) and the ratio of the first path's median time to the second's."""
    lines = [f"## {name}", "", description, ""]
    for label, rows in measured.items():
        lines += format_step_rows(label, rows, next(iter(rows)), "s per step")
        before, now = (row["median_seconds"] for row in rows.values())
        lines += [f"{label}: {ratio_words}: {before / now:.2f}x", ""]
    return lines


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(prog="seqbench bench", description=__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="data root (default: $SEQBENCH_DATA, else the download cache)")
    parser.add_argument("--workload", nargs="+", default=["imdb", "trec"],
                        choices=[*WORKLOADS, "models", "denormal", "sparse", "threads", "loops", "scan", "lru"],
                        help="imdb, trec: seqbench against plain loops; models: every cell's throughput; denormal: "
                             "the adding task at T = --denormal-length, denormals kept and flushed; sparse: TREC "
                             "epochs with dense and sparse embedding updates; threads: 1 and 2 torch threads, quiet and "
                             "beside a busy process; loops: hand-written cells' steps sliced against unbind; scan: "
                             "mingru/minlstm/lru in sequential, parallel and fused mode; lru: the LRU's products before and now")
    parser.add_argument("--denormal-length", type=at_least_one, default=400, help="denormal: sequence length")
    parser.add_argument("--sparse-models", nargs="+", default=list(SPARSE_MODELS), choices=list(SPARSE_MODELS))
    parser.add_argument("--lengths", nargs="+", type=at_least_one, default=[100, 400], help="models: sequence lengths")
    parser.add_argument("--hidden", type=at_least_one, default=128, help="models: hidden size of every cell")
    parser.add_argument("--scan-widths", nargs="+", type=at_least_one, default=[64, 128], help="scan: layer widths")
    parser.add_argument("--reviews", type=at_least_one, default=1000, help="IMDB training reviews used (25000: all)")
    parser.add_argument("--questions", type=at_least_one, default=None, help="TREC training questions used (default: all)")
    parser.add_argument("--max-len", type=at_least_one, default=None, help="IMDB: tokens kept per review (default 400)")
    parser.add_argument("--repeats", type=at_least_one, default=3)
    parser.add_argument("--warmup", type=at_least_one, default=5, help="untimed batches before the clock starts, every path")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="32-true", choices=sorted(PRECISIONS),
                        help="Lightning precision for the seqbench path (checked before any work)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["padded", "bucketed", "packed", "loop", "seqbench", "impl"])
    parser.add_argument("--synthetic", action="store_true", help="random token data instead of IMDB/TREC")
    parser.add_argument("--out", default="bench.md", help="where the table goes (default: ./bench.md; the reference "
                        "results/bench.md is written only on purpose)")
    args = parser.parse_args(argv)
    device = checked_device(args.device)
    skip = set(args.skip)
    command = " ".join(["seqbench bench", *(sys.argv[1:] if argv is None else argv)])
    info = hardware()
    lines = ["# seqbench training-speed benchmark", "",
             f"- command: `{command}`",
             f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- device: {device}; hardware: {describe_hardware(info)}; {info['platform']}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items() if v),
             f"- every path: {args.warmup} warm-up batches (untimed), then one timed pass; {args.repeats} repeats, "
             f"interleaved; median reported. Training only (forward, backward, clipping at {CLIP}, Adam).", ""]
    for name in args.workload:
        if name == "denormal":
            batches = 6
            rows = measure_denormals(args.denormal_length, args.hidden, 50, batches, 2, args.repeats, device)
            lines += ["## denormal", "",
                      f"The adding task at T = {args.denormal_length}: batch 50, nn.GRU / seqbench's gru with hidden "
                      f"{args.hidden}, fused Adam, clipping at {CLIP}; 2 warm-up steps, {batches} timed steps per "
                      f"repeat, 1 torch thread.", ""]
            lines += format_step_rows("path", rows, "plain PyTorch, denormals kept (torch's default)")
            kept, flushed = (rows[k]["median_seconds"] for k in list(rows)[:2])
            lines += [f"denormal ratio (plain loop, kept / flushed): {kept / flushed:.2f}x; seqbench against the "
                      f"plain loop as PyTorch runs it by default: "
                      f"{kept / rows['seqbench (flush_denormal=true, the default)']['median_seconds']:.2f}x", ""]
            continue
        if name == "sparse":
            workload = WORKLOADS["trec"]
            texts, vocab_size = load_texts(workload, args.root, args.questions, args.synthetic, seed=0)
            lines += ["## sparse", "",
                      f"{'synthetic' if args.synthetic else 'TREC'} training data: {len(texts):,} questions, batch "
                      f"{workload.batch_size}, embedding {workload.embedding_dim} x {vocab_size:,} words, hidden "
                      f"{workload.hidden_size}; one untimed epoch, then one timed epoch, through Lightning "
                      f"(clipping at {CLIP}, fused Adam for dense parameters).", ""]
            for model, rows in measure_sparse(workload, texts, vocab_size, device, args.repeats,
                                              args.sparse_models).items():
                lines += format_step_rows(model, rows, "dense embedding, denormals kept", "s per epoch")
                dense = rows["dense embedding, denormals flushed (default)"]["median_seconds"]
                sparse = rows["sparse embedding (optimizer.sparse_embedding=true), flushed"]["median_seconds"]
                lines += [f"{model}: sparse-embedding ratio (dense / sparse, both flushed): {dense / sparse:.2f}x", ""]
            continue
        if name == "loops":
            lines += before_after_section(
                "loops", f"The hand-written GRU (model.impl=scratch), forward + backward over T steps: batch 32, "
                f"input 64, hidden {args.hidden}, one thread.",
                {f"T = {length}": rows for length, rows in measure_loops(args.lengths, args.hidden, args.repeats).items()},
                "unbind against slicing")
            continue
        if name == "scan":
            lines += ["## scan", "", "One layer of each scan cell, forward + backward over T steps: batch 50, one thread, "
                      "denormals flushed; model.mode=sequential (a loop over time through autograd), parallel (the scan "
                      "over all steps) and fused (the loop with its gates and backward written out), same parameters.", ""]
            lines += format_scan(measure_scan(args.lengths, args.scan_widths, args.repeats))
            continue
        if name == "lru":
            lines += before_after_section(
                "lru", f"The LRU in model.mode=sequential, forward + backward over T steps: one layer (lru) and the "
                f"4-block encoder (lru_deep); batch 50, width {args.hidden}, one thread, denormals flushed; the complex "
                f"state's products as they were (strided Re/Im views) and as they are now.",
                {f"{cell}, T = {length}": rows
                 for (cell, length), rows in measure_lru(args.lengths, args.hidden, args.repeats).items()},
                "interleaved against strided")
            continue
        if name == "threads":
            workload = WORKLOADS["trec"]
            texts, vocab_size = load_texts(workload, args.root, args.questions or 1600, args.synthetic, seed=0)
            rows = measure_threads(workload, texts, vocab_size, args.repeats, args.warmup)
            lines += ["## threads", "",
                      f"gru training steps on {len(texts):,} TREC questions (batch {workload.batch_size}, embedding "
                      f"{workload.embedding_dim}, hidden {workload.hidden_size}), denormals flushed; 'busy': one other "
                      f"process computing on one core meanwhile (as another job of a sweep does).", ""]
            lines += format_step_rows("threads, machine", rows, next(iter(rows)), "s per pass")
            continue
        if name == "models":
            lines += ["## models", ""]
            results = measure_models(args.lengths, args.hidden, 50, 10, args.warmup if args.warmup < 10 else 3,
                                     args.repeats, device)
            lines += format_models(results, args.hidden, 50, 10)
            continue
        workload = WORKLOADS[name]
        if name == "imdb" and args.max_len:
            workload = Workload(**{**workload.__dict__, "max_len": args.max_len})
        count = args.reviews if name == "imdb" else args.questions
        texts, vocab_size = load_texts(workload, args.root, count, args.synthetic, seed=0)
        lines += [f"## {name}", "",
                  f"{'synthetic' if args.synthetic else workload.source} training data: {len(texts):,} sequences, "
                  f"max_len {workload.max_len}, batch {workload.batch_size}, mean length "
                  f"{float(texts.lengths.float().mean()):.1f}, longest {int(texts.lengths.max())}; BiLSTM + additive "
                  f"attention, embedding {workload.embedding_dim}, hidden {workload.hidden_size}, vocabulary "
                  f"{vocab_size:,}.", ""]
        results = measure(workload, texts, vocab_size, device, args.repeats, args.warmup, skip, args.precision)
        lines += format_rows(workload, results) + [""]
        if name == "imdb" and "impl" not in skip:
            lines += impl_rows(workload, texts, vocab_size, device, args.warmup) + [""]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"written: {args.out}")


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


if __name__ == "__main__":
    main()
