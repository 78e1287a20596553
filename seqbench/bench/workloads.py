"""The workloads of ``seqbench bench --workload``, registered one function each: name -> a function of
the parsed flags and the checked device that measures the workload and returns its section of
bench.md. ``--workload`` offers exactly what is registered here, in this order."""
from __future__ import annotations

import argparse
from typing import Callable

import torch

from .cells import format_models, measure_models
from .kernels import format_scan, measure_loops, measure_lru, measure_scan
from .speed_settings import HARNESS_PATHS, measure_denormals, measure_harness, measure_sparse, measure_threads
from .text import WORKLOADS, Workload, format_rows, impl_rows, load_texts, measure
from .timing import CLIP, before_after_section, format_step_rows, spread_caveat

Section = Callable[[argparse.Namespace, torch.device], list[str]]
REGISTRY: dict[str, Section] = {}


def workload(name: str) -> Callable[[Section], Section]:
    """Register ``function`` as the workload ``name``."""
    def register(function: Section) -> Section:
        REGISTRY[name] = function
        return function
    return register


def text_section(name: str, args: argparse.Namespace, device: torch.device) -> list[str]:
    """imdb or trec: seqbench against the plain loops on the data set's training texts."""
    skip = set(args.skip)
    workload = WORKLOADS[name]
    if name == "imdb" and args.max_len:
        workload = Workload(**{**workload.__dict__, "max_len": args.max_len})
    count = args.reviews if name == "imdb" else args.questions
    texts, vocab_size = load_texts(workload, args.root, count, args.synthetic, seed=0)
    lines = [f"## {name}", "",
             f"{'synthetic' if args.synthetic else workload.source} training data: {len(texts):,} sequences, "
             f"max_len {workload.max_len}, batch {workload.batch_size}, mean length "
             f"{float(texts.lengths.float().mean()):.1f}, longest {int(texts.lengths.max())}; BiLSTM + additive "
             f"attention, embedding {workload.embedding_dim}, hidden {workload.hidden_size}, vocabulary "
             f"{vocab_size:,}.", ""]
    results = measure(workload, texts, vocab_size, device, args.repeats, args.warmup, skip, args.precision)
    lines += format_rows(workload, results) + [""]
    if name == "imdb" and "impl" not in skip:
        lines += impl_rows(workload, texts, vocab_size, device, args.warmup) + [""]
    return lines


@workload("imdb")
def imdb(args: argparse.Namespace, device: torch.device) -> list[str]:
    return text_section("imdb", args, device)


@workload("trec")
def trec(args: argparse.Namespace, device: torch.device) -> list[str]:
    return text_section("trec", args, device)


@workload("models")
def models(args: argparse.Namespace, device: torch.device) -> list[str]:
    results = measure_models(args.lengths, args.hidden, 50, 10, args.warmup if args.warmup < 10 else 3,
                             args.repeats, device)
    return ["## models", "", *format_models(results, args.hidden, 50, 10)]


@workload("denormal")
def denormal(args: argparse.Namespace, device: torch.device) -> list[str]:
    batches = 6
    rows = measure_denormals(args.denormal_length, args.hidden, 50, batches, 2, args.repeats, device)
    lines = ["## denormal", "",
             f"The adding task at T = {args.denormal_length}: batch 50, nn.GRU / seqbench's gru with hidden "
             f"{args.hidden}, fused Adam, clipping at {CLIP}; 2 warm-up steps, {batches} timed steps per "
             f"repeat, 1 torch thread.", ""]
    lines += format_step_rows("path", rows, "plain PyTorch, denormals kept (torch's default)")
    kept, flushed = (rows[k]["median_seconds"] for k in list(rows)[:2])
    return lines + [f"denormal ratio (plain loop, kept / flushed): {kept / flushed:.2f}x; seqbench against the "
                    f"plain loop as PyTorch runs it by default: "
                    f"{kept / rows['seqbench (flush_denormal=true, the default)']['median_seconds']:.2f}x", ""]


@workload("harness")
def harness(args: argparse.Namespace, device: torch.device) -> list[str]:
    batches, repeats = 6, max(args.repeats, 10)
    rows = measure_harness(args.denormal_length, args.hidden, 50, batches, 2, repeats, device)
    plain_gru, same_network, _ = HARNESS_PATHS
    lines = ["## harness", "",
             f"seqbench's gru through Lightning against the same network in a plain PyTorch loop (fused Adam, "
             f"clipping at {CLIP}), and against nn.GRU reading the inputs directly; denormals flushed on every path; "
             f"the adding task at T = {args.denormal_length}, batch 50, hidden {args.hidden}, 1 torch thread; 2 "
             f"warm-up and {batches} timed steps per path, {repeats} interleaved repeats; 'busy': one other process "
             f"computing on one core meanwhile. Speeds are medians of the per-repeat paired ratios (plain / "
             f"seqbench; above 1.00x: seqbench faster). The harness's own cost is the first speed column.", "",
             "| machine | nn.GRU loop ms/step | same network, plain loop ms/step | seqbench ms/step | "
             "seqbench speed vs the same network's loop | vs the nn.GRU loop |", "| --- | --- | --- | --- | --- | --- |"]
    for setting, row in rows.items():
        medians, paired = row["medians"], row["paired"]
        lines.append(f"| {setting} | {1000 * medians[plain_gru]:.1f} | {1000 * medians[same_network]:.1f} | "
                     f"{1000 * medians['seqbench']:.1f} | {paired[same_network]:.3f}x | {paired[plain_gru]:.3f}x |")
    caveat = spread_caveat(list(rows.values()))
    return lines + (["", caveat.strip()] if caveat else []) + [""]


@workload("sparse")
def sparse(args: argparse.Namespace, device: torch.device) -> list[str]:
    workload = WORKLOADS["trec"]
    texts, vocab_size = load_texts(workload, args.root, args.questions, args.synthetic, seed=0)
    lines = ["## sparse", "",
             f"{'synthetic' if args.synthetic else 'TREC'} training data: {len(texts):,} questions, batch "
             f"{workload.batch_size}, embedding {workload.embedding_dim} x {vocab_size:,} words, hidden "
             f"{workload.hidden_size}; one untimed epoch, then one timed epoch, through Lightning "
             f"(clipping at {CLIP}, fused Adam for dense parameters).", ""]
    for model, rows in measure_sparse(workload, texts, vocab_size, device, args.repeats, args.sparse_models).items():
        lines += format_step_rows(model, rows, "dense embedding, denormals kept", "s per epoch")
        dense = rows["dense embedding, denormals flushed (default)"]["median_seconds"]
        lazy = rows["sparse embedding (optimizer.sparse_embedding=true), flushed"]["median_seconds"]
        lines += [f"{model}: sparse-embedding ratio (dense / sparse, both flushed): {dense / lazy:.2f}x", ""]
    return lines


@workload("threads")
def threads(args: argparse.Namespace, device: torch.device) -> list[str]:
    workload = WORKLOADS["trec"]
    texts, vocab_size = load_texts(workload, args.root, args.questions or 1600, args.synthetic, seed=0)
    rows = measure_threads(workload, texts, vocab_size, args.repeats, args.warmup)
    return ["## threads", "",
            f"gru training steps on {len(texts):,} TREC questions (batch {workload.batch_size}, embedding "
            f"{workload.embedding_dim}, hidden {workload.hidden_size}), denormals flushed; 'busy': one other "
            f"process computing on one core meanwhile (as another job of a sweep does).", "",
            *format_step_rows("threads, machine", rows, next(iter(rows)), "s per pass")]


@workload("loops")
def loops(args: argparse.Namespace, device: torch.device) -> list[str]:
    return before_after_section(
        "loops", f"The hand-written GRU (model.impl=scratch), forward + backward over T steps: batch 32, "
        f"input 64, hidden {args.hidden}, one thread.",
        {f"T = {length}": rows for length, rows in measure_loops(args.lengths, args.hidden, args.repeats).items()},
        "unbind against slicing")


@workload("scan")
def scan(args: argparse.Namespace, device: torch.device) -> list[str]:
    return ["## scan", "", "One layer of each scan cell, forward + backward over T steps: batch 50, one thread, "
            "denormals flushed; model.mode=sequential (a loop over time through autograd), parallel (the scan "
            "over all steps) and fused (the loop with its gates and backward written out), same parameters.", "",
            *format_scan(measure_scan(args.lengths, args.scan_widths, args.repeats))]


@workload("lru")
def lru(args: argparse.Namespace, device: torch.device) -> list[str]:
    return before_after_section(
        "lru", f"The LRU in model.mode=sequential, forward + backward over T steps: one layer (lru) and the "
        f"4-block encoder (lru_deep); batch 50, width {args.hidden}, one thread, denormals flushed; the complex "
        f"state's products as they were (strided Re/Im views) and as they are now.",
        {f"{cell}, T = {length}": rows
         for (cell, length), rows in measure_lru(args.lengths, args.hidden, args.repeats).items()},
        "interleaved against strided")
