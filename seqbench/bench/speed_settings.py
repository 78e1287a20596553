"""The speed settings' workloads: denormal floats kept and flushed (the adding task at a long T),
the dense and the sparse embedding update (TREC epochs), and torch's thread count on a quiet
machine and beside a busy process."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from functools import partial

import torch
from torch import nn

from ..models import RecurrentNet, network_config
from ..data.text import EncodedTexts
from .text import Workload, bucketed_batches
from .timing import CLIP, one_torch_thread, seqbench_step, time_lightning, time_plain_loop, with_denormals

class PlainGRURegressor(nn.Module):
    """The adding-task model as a user writes it: nn.GRU, a linear read-out of the last state."""

    def __init__(self, hidden: int):
        super().__init__()
        self.gru = nn.GRU(2, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, inputs, lengths, packed=False):
        return self.out(self.gru(inputs)[0][:, -1]).squeeze(-1)


def mse_step(model, batch, optimizer):
    """One plain training step: nn.GRU's regressor returns the values, seqbench's network (values,
    attention weights)."""
    optimizer.zero_grad(set_to_none=True)
    values = model(batch["inputs"], batch["lengths"])
    values = values[0].squeeze(-1) if isinstance(values, tuple) else values
    nn.functional.mse_loss(values, batch["targets"]).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    optimizer.step()


def seqbench_gru(hidden: int):
    """seqbench's gru network on the adding task's two inputs, and its Lightning task (fused Adam):
    (make network, make task), as ``time_lightning`` takes them."""
    from ..training import RegressionTask   # Lightning: loaded when timed
    network = partial(RecurrentNet, network_config(cell="gru", hidden_size=hidden, embedding_dim=2), 1, input_dim=2)

    def regression(net):
        return RegressionTask(net, partial(torch.optim.Adam, lr=1e-3, fused=True), per_step=False)
    return network, regression


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


def measure_denormals(length: int, hidden: int, batch: int, batches: int, warmup: int, repeats: int,
                      device: torch.device) -> dict[str, dict]:
    """Seconds per training step on the adding task at T = ``length``, one thread: a plain PyTorch
    loop (nn.GRU + fused Adam + clipping) with denormals kept (torch's default) and flushed, and
    seqbench's own run (its GRU network and RegressionTask through Lightning, denormals flushed as
    ``flush_denormal=true`` does)."""
    data = adding_batches(length, batch, warmup + batches)
    network, regression = seqbench_gru(hidden)
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


SPARSE_MODELS = {"gru": dict(cell="gru"),
                 "bilstm_attn_concat": dict(cell="lstm", bidirectional=True, pooling="attention", attention="concat")}


def measure_sparse(workload: Workload, texts: EncodedTexts, vocab_size: int, device: torch.device, repeats: int,
                   models: list[str]) -> dict[str, dict[str, dict]]:
    """Seconds per epoch over the TREC training batches through seqbench's Lightning path, after one
    untimed epoch (by then Adam's moments of rows a batch did not touch have decayed for hundreds of
    steps, as in a real run): the dense embedding update with denormals kept and flushed, and the
    sparse update (flushed)."""
    from ..training import ClassificationTask   # Lightning: loaded when timed
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


BUSY_LOOP = ("import torch, time\ntorch.set_num_threads(1)\nx = torch.randn(256, 256)\nend = time.time() + {seconds}\n"
             "while time.time() < end:\n    x = torch.tanh(x @ x.T / 256)\n")


def measure_threads(workload: Workload, texts: EncodedTexts, vocab_size: int, repeats: int,
                    warmup: int) -> dict[str, dict]:
    """Seconds for one pass of TREC gru training steps with 1 and with 2 torch threads, on a quiet
    machine and beside one busy process (another job of a sweep, a test suite): the measurement
    behind the thread defaults (README, "Speed")."""
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


HARNESS_PATHS = ("plain loop, nn.GRU on the inputs", "plain loop, seqbench's network", "seqbench")


def measure_harness(length: int, hidden: int, batch: int, batches: int, warmup: int, repeats: int,
                    device: torch.device) -> dict[str, dict]:
    """The harness's own cost per training step on the adding task at T = ``length``, one thread,
    denormals flushed on every path: seqbench (its gru network and RegressionTask through Lightning:
    metrics, clipping, callbacks) against the same network in a plain PyTorch loop (fused Adam,
    clipping), and a plain nn.GRU reading the inputs directly (the data set's learned input
    projection, ``embedding_dim: 2``, makes the GRU compute input gradients at every step: a model's
    cost, not the harness's). Quiet and beside one busy process (another job of a sweep);
    interleaved repeats, and per repeat the paired ratio of each plain loop to seqbench (above 1:
    seqbench faster), whose median is the figure (the machine's drift cancels in a pair)."""
    data = adding_batches(length, batch, warmup + batches)
    network, regression = seqbench_gru(hidden)
    paths = dict(zip(HARNESS_PATHS, (
        lambda: time_plain_loop(partial(PlainGRURegressor, hidden), data, device, mse_step, warmup),
        lambda: time_plain_loop(network, data, device, mse_step, warmup),
        lambda: time_lightning(network, data, device, warmup, "32-true", 0, make_task=regression))))
    rows = {}
    with one_torch_thread():
        for busy in (False, True):
            setting = "beside one busy process" if busy else "quiet"
            seconds = {name: [] for name in paths}
            other = subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(seconds=3600)]) if busy else None
            try:
                if other is not None:
                    time.sleep(1.0)
                for _ in range(repeats):
                    for name, path in paths.items():
                        seconds[name].append(with_denormals(True, path) / batches)
            finally:
                if other is not None:
                    other.kill()
                    other.wait()
            ours = seconds["seqbench"]
            rows[setting] = {"medians": {name: statistics.median(values) for name, values in seconds.items()},
                             "paired": {name: statistics.median(p / s for p, s in zip(values, ours))
                                        for name, values in seconds.items() if name != "seqbench"},
                             "seconds": ours}
    return rows
