"""How every workload times its paths: warm-up batches untimed, then the clock around one pass (a plain
loop, or Lightning's Trainer with seqbench's run statistics), repeats interleaved and their median,
denormals flushed or kept, one torch thread; the tables of seconds and a caveat where repeats disagree."""
from __future__ import annotations

import contextlib
import statistics
import time
import warnings
from functools import partial

import torch
from torch import nn

from ..runtime import quiet_lightning

CLIP = 1.0


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


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


def time_lightning(make_model, batches: list[dict], device: torch.device, warmup: int, precision: str,
                   num_classes: int, make_task=None) -> float:
    """The same batches through Lightning: ClassificationTask (or ``make_task(network)``) + Trainer
    with seqbench's run statistics and gradient clipping, one epoch; the clock runs from the first
    batch after the warm-up to the last, exactly as for the plain loops."""
    import pytorch_lightning as pl
    from ..training import ClassificationTask, RunStatistics   # Lightning: loaded when timed
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


def spread_caveat(rows: list[dict], tolerance: float = 1.25) -> str:
    """A caveat of its own for a figure whose repeats disagree: the machine was busy."""
    spreads = [max(row["seconds"]) / min(row["seconds"]) for row in rows if min(row["seconds"]) > 0]
    if spreads and max(spreads) > tolerance:
        return (f" Caveat: its repeats differ by up to {max(spreads):.1f}x (slowest against fastest), so the "
                f"machine was busy while it ran; do not read this figure as the overhead.")
    return ""


def with_denormals(flush: bool, measure):
    """``measure()`` with denormal floats flushed to zero or kept (torch's default), then kept."""
    torch.set_flush_denormal(flush)
    try:
        return measure()
    finally:
        torch.set_flush_denormal(False)


def format_step_rows(title: str, rows: dict[str, dict], baseline: str, unit: str = "s per step") -> list[str]:
    lines = [f"| {title} | {unit} (median; all) | speed vs {baseline} |", "| --- | --- | --- |"]
    base = rows[baseline]["median_seconds"]
    for name, row in rows.items():
        everything = ", ".join(f"{s:.3g}" for s in row["seconds"])
        lines.append(f"| {name} | {row['median_seconds']:.3g} ({everything}) | {base / row['median_seconds']:.2f}x |")
    return lines + ["", spread_caveat(list(rows.values())).strip()]


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


def before_after_section(name: str, description: str, measured: dict[str, dict], ratio_words: str) -> list[str]:
    """A workload section timing two ways of computing one thing: per setting, its table (the first
    path is the baseline) and the ratio of the first path's median time to the second's."""
    lines = [f"## {name}", "", description, ""]
    for label, rows in measured.items():
        lines += format_step_rows(label, rows, next(iter(rows)), "s per step")
        before, now = (row["median_seconds"] for row in rows.values())
        lines += [f"{label}: {ratio_words}: {before / now:.2f}x", ""]
    return lines
