"""What a finished run keeps on disk (``checkpoints=best|all``), and how much disk runs take.

While a run trains it writes ``checkpoints/last.ckpt`` (weights, optimiser state, the loops' and
callbacks' state: what a resume needs) and ``checkpoints/best.ckpt`` after each epoch. Once the
run is done, nothing resumes it (the next identical command reuses its record), and eval, explain
and diagnostics read only the best weights and the settings stored beside them. So with
``checkpoints=best`` (the default) a done run keeps ``best.ckpt`` with its weights and settings
only, and ``last.ckpt`` is removed: about an eighth of the disk two full checkpoints with Adam's
state take. ``checkpoints=all`` keeps both as written. A run that did not finish (interrupted,
failed, diverged) keeps everything, so the same command can resume it.
"""
from __future__ import annotations

import os
from pathlib import Path

from .plan import CHECKPOINT_DIR, LAST_CHECKPOINT

KEEP = ("best", "all")
# What eval, explain and diagnostics read (the weights and seqbench's settings), and what says
# which epoch the weights are from.
WEIGHTS_KEYS = ("state_dict", "seqbench", "epoch", "global_step", "pytorch-lightning_version")


def settle(record: dict, keep: str = "best") -> int:
    """After a run: with ``keep="best"`` and a done, trained run, its best checkpoint reduced to
    weights and settings and its last checkpoint removed. Returns the bytes freed (0 when nothing
    was done: a reused run, one that did not finish, ``keep="all"``)."""
    if keep == "all" or record.get("status") != "done" or record.get("reused_from") or not record.get("output_dir"):
        return 0
    import torch

    from .record import atomic_write
    folder = Path(record["output_dir"]) / CHECKPOINT_DIR
    if not folder.is_dir():
        return 0
    freed = 0
    best = folder / "best.ckpt"
    if best.is_file() and not best.is_symlink():
        before = best.stat().st_size
        checkpoint = torch.load(best, map_location="cpu", weights_only=True)
        if isinstance(checkpoint, dict) and set(checkpoint) - set(WEIGHTS_KEYS):
            weights = {k: checkpoint[k] for k in WEIGHTS_KEYS if k in checkpoint}
            atomic_write(best, lambda stream: torch.save(weights, stream))
            freed += before - best.stat().st_size
    last = folder / LAST_CHECKPOINT
    if last.is_file() and not last.is_symlink() and best.is_file():   # never the only weights a run has
        freed += last.stat().st_size
        last.unlink()
    return freed


def disk_words(folders: list[str | Path], skip: Path | None = None) -> str | None:
    """``'41.2 MB under the report's folders, 38.0 MB of it checkpoints'``: what the runs behind a
    report take on disk (everything under the folders given, the report's own folder left out)."""
    total = checkpoints = 0
    skip_resolved = Path(skip).resolve() if skip is not None else None
    seen: set[tuple[int, int]] = set()
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            if skip_resolved is not None and Path(root).resolve() == skip_resolved:
                dirs[:] = []
                continue
            for name in files:
                path = Path(root) / name
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if (info.st_dev, info.st_ino) in seen or not path.is_file() or path.is_symlink():
                    continue
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
                if name.endswith(".ckpt"):
                    checkpoints += info.st_size
    if not total:
        return None
    return f"{_size(total)} under the report's folders, {_size(checkpoints)} of it checkpoints"


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
