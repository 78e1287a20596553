"""``seqbench bench``: a thin command over the workloads' registry: parse the flags, check the device,
run each workload asked for, write bench.md."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .. import SeqbenchError
from ..config import PRECISIONS
from ..record import describe_hardware, hardware, versions
from ..runtime import argument_parser, at_least_one, entry_point, keep_freed_memory
from . import __doc__ as DESCRIPTION
from .speed_settings import SPARSE_MODELS
from .timing import CLIP
from .workloads import REGISTRY


def checked_device(name: str) -> torch.device:
    """``--device`` as torch names it, present on this machine; else one line naming the fix."""
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


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    device = checked_device(args.device)
    kept = keep_freed_memory()  # as every run does by default; process-wide, so every path timed here has it
    lines = header_lines(args, device, " ".join(["seqbench bench", *(sys.argv[1:] if argv is None else argv)]), kept)
    for name in args.workload:
        lines += REGISTRY[name](args, device)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"written: {args.out}")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argument_parser(prog="seqbench bench", description=DESCRIPTION,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="data root (default: $SEQBENCH_DATA, else the download cache)")
    parser.add_argument("--workload", nargs="+", default=["imdb", "trec"],
                        choices=list(REGISTRY),
                        help="imdb, trec: seqbench against plain loops; models: every cell's throughput; denormal: "
                             "the adding task at T = --denormal-length, denormals kept and flushed; sparse: TREC "
                             "epochs with dense and sparse embedding updates; threads: 1 and 2 torch threads, quiet and "
                             "beside a busy process; loops: hand-written cells' steps sliced against unbind; scan: "
                             "mingru/minlstm/lru in sequential, parallel and fused mode; lru: the LRU's products before and now; harness: seqbench's gru step against the plain loop, quiet and beside a busy process (at least 10 repeats)")
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
    return parser.parse_args(argv)


def header_lines(args: argparse.Namespace, device: torch.device, command: str, freed_memory_kept: bool) -> list[str]:
    """bench.md's head: the command, the date, the machine, the versions and how every path is timed."""
    info = hardware()
    return ["# seqbench training-speed benchmark", "",
            f"- command: `{command}`",
            f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"- device: {device}; hardware: {describe_hardware(info)}; {info['platform']}",
            "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items() if v),
            f"- every path: {args.warmup} warm-up batches (untimed), then one timed pass; {args.repeats} repeats, "
            f"interleaved; median reported. Training only (forward, backward, clipping at {CLIP}, Adam).",
            f"- freed memory kept for the next step (keep_freed_memory, as runs do; glibc only): "
            f"{'yes' if freed_memory_kept else 'no'}, for every path", ""]
