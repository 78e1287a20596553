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

from . import SeqbenchError
from .files import CHECKPOINT_LIMIT, is_regular, limit_of, open_regular, run_path
from .plan import CHECKPOINT_DIR, LAST_CHECKPOINT
from .record import RECORD_NAME, atomic_write, read_record

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


# ------------------------------------------------------------------- reading a finished run's weights
# eval, explain and the gradient-flow diagnostic read checkpoints through these two.
def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint a path names: the file itself, or a run folder's best checkpoint, looked for
    inside that folder (a copied folder uses its own, never the original's)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return path  # opened later through open_regular: a FIFO or a device is refused there
    record_path = path / RECORD_NAME
    if record_path.exists():
        record = read_record(record_path)
        best = run_path(record, "best_checkpoint", record_path=record_path, limit=limit_of(CHECKPOINT_LIMIT))
        if best is not None:
            return best
    fallback = path / "checkpoints" / "best.ckpt"
    if is_regular(fallback):
        return fallback
    raise SeqbenchError(f"no checkpoint at {path}: give a .ckpt file or a run folder holding record.json "
                        f"or checkpoints/best.ckpt")


def load_checkpoint(path: Path) -> dict:
    """Tensors and plain data only (``weights_only=True``): a crafted file cannot run code here.
    seqbench's checkpoints hold nothing else, so a refused file is not one of them."""
    import pickle

    import torch
    with open_regular(path, what="checkpoint", limit=limit_of(CHECKPOINT_LIMIT)) as stream:  # a FIFO or a device: one line, never a hang
        try:
            return torch.load(stream, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            if "Weights only load failed" in str(error):
                raise SeqbenchError(f"{path} was refused: it holds Python objects other than tensors and plain "
                                    f"data, which could run code when loaded. seqbench's own checkpoints never do; "
                                    f"load only files you trust.") from None
            raise SeqbenchError(f"{path} is not a checkpoint that can be read ({error})") from None
        except Exception as error:  # a truncated file or another kind of file fails in many ways
            raise SeqbenchError(f"{path} is not a checkpoint that can be read (truncated, or another kind of file): "
                                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                                ) from None
