"""The models workload: every cell's training throughput on the same signal batches, one output
after the last step, as in the adding problem."""
from __future__ import annotations

import statistics
from functools import partial

import torch
from torch import nn

from ..models import RecurrentNet, network_config
from .timing import network_step, spread_caveat, time_plain_loop

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
