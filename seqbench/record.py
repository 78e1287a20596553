"""The run record: one self-describing JSON file per run, written atomically; and what makes
two runs "the same computation": config, seed, code and data fingerprints (the code fingerprint
itself: ``seqbench.imported_code``)."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import resource
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from . import SeqbenchError
from .files import open_regular, read_json

RECORD_NAME = "record.json"
# A run's finished outcomes: the tables count a diverged run as a result (never as a missing seed), and
# a rerun of the same command reuses it (the same seed, config and code diverge again).
FINISHED_STATUSES = ("done", "diverged")
PREDICTIONS_NAME = "predictions.csv"   # per-example test predictions, beside the record
log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent


def _file_mode() -> int:
    """What open() would give a new file under the current umask (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through ``write(stream)`` to a temporary file in the same folder, fsync, then rename
    over ``path``: a reader (or a resumed run) sees the old file or the new one, never half of one.
    The file gets the usual permissions (0644 under the usual umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _file_mode())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def write_json_atomic(path: str | Path, payload) -> Path:
    def write(stream):
        stream.write((json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n").encode())
    return atomic_write(path, write)


def save_record(path: Path, record: dict) -> None:
    """Atomic write; a full disk or an unwritable folder becomes an error that says what to do
    (earlier records are never touched: each run writes only its own file)."""
    try:
        write_json_atomic(path, record)
    except OSError as error:
        raise SeqbenchError(f"cannot write the run record {path}: {error.strerror or error}. "
                            f"Free some disk space or choose a writable folder with paths.output_root=PATH."
                            ) from error


def short_hash(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def content_digest(paths, chunk: int = 1 << 22) -> str:
    """BLAKE2b of the files' bytes (in the given order): the identity of input data, whatever
    their names, sizes or modification times say. IMDB's 84 MB take about 0.2 s."""
    hasher = hashlib.blake2b(digest_size=16)
    for path in paths:
        with open_regular(path, "rb") as stream:  # a FIFO or a device named as data would never end
            for block in iter(lambda: stream.read(chunk), b""):
                hasher.update(block)
        hasher.update(b"\0")
    return hasher.hexdigest()


def run_key(config_hash: str, seed: int, code: str, data: str) -> str:
    """One run's identity: a finished run is reused, and an interrupted one resumed, only when
    all four match."""
    return short_hash({"config": config_hash, "seed": seed, "code": code, "data": data})


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    import torch
    info = {"platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "gpu": None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def describe_hardware(info: dict) -> str:
    """One readable line: 'AMD EPYC, 2 CPU cores (torch uses 2 threads)' or the GPU's name."""
    cpu = f"{info.get('cpu')}, {info.get('cpu_count')} CPU cores (torch uses {info.get('torch_threads')} thread{'s' if info.get('torch_threads') != 1 else ''})"
    return f"{info['gpu']} GPU; {cpu}" if info.get("gpu") else cpu


def versions() -> dict:
    out = {"python": platform.python_version()}
    for package in ("seqbench", "torch", "pytorch-lightning", "torchmetrics", "hydra-core", "numpy", "pandas"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def git_commit() -> str | None:
    """Commit of the seqbench checkout, with "-dirty" when tracked files differ from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_DIR, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PACKAGE_DIR,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def current_rss_mb() -> float:
    """This process's resident memory now (Linux /proc), else its lifetime peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# What peak_memory_mb means, per kind. Tables show each kind in its own column, never mixed.
MEMORY_KINDS = {
    "cuda_max_allocated": "peak GPU memory allocated by torch during this run",
    "process_rss_peak": "peak resident memory of the whole process, sampled during this run (in a sweep "
                        "the process also holds what earlier runs left behind)",
    "process_lifetime_peak": "peak resident memory over the process's lifetime (records before 2026-11-28)",
}


def peak_memory_mb(device, sampled_rss_peak: float | None) -> tuple[float | None, str]:
    """Peak accelerator memory allocated by torch during the run (reset when it starts), or on
    CPU the process's resident memory, sampled during the run: torch's CPU allocator keeps no
    per-run statistics, so this is labelled for what it is."""
    import torch
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return sampled_rss_peak, "process_rss_peak"


def memory_kind(record: dict) -> str:
    kind = record.get("peak_memory_kind")
    if kind == "process_rss_sampled_peak":  # older name of the same measurement
        return "process_rss_peak"
    return kind or "process_lifetime_peak"


# ----------------------------------------------------------------------------- reading records
def find_records(folders: Iterable[str | Path]) -> list[Path]:
    found = []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise FileNotFoundError(f"{folder}: no such file or folder")
        found.extend([folder] if folder.is_file() else sorted(folder.rglob(RECORD_NAME)))
    return found


def read_records(folders: Iterable[str | Path]) -> Iterator[tuple[Path, dict]]:
    """(path, record) for every readable record under ``folders``. A file that is not a run
    record (truncated, not JSON, a list, null, ...) is skipped with a warning: one bad file
    never stops a report or a run."""
    for path in find_records(folders):
        try:
            record = read_json(path)  # a regular file of bounded size: a FIFO or a device is skipped, not waited on
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            log.warning("skipping unreadable record %s (%s)", path, error)
            continue
        if not isinstance(record, dict):
            log.warning("skipping %s: not a run record (a JSON %s, not an object)", path, type(record).__name__)
            continue
        problem = malformed(record)
        if problem:
            log.warning("skipping %s: %s", path, problem)
            continue
        yield path, record


def read_record(path: str | Path) -> dict:
    """One run record a command was pointed at (eval, explain, diagnostics), or one line saying
    why it cannot be used: not a regular file, too large, not JSON, not an object."""
    try:
        record = read_json(path)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SeqbenchError(f"{path} cannot be read as a run record ({error})") from None
    if not isinstance(record, dict):
        raise SeqbenchError(f"{path} is not a run record (a JSON {type(record).__name__}, not an object)")
    problem = malformed(record)
    if problem:
        raise SeqbenchError(f"{path} is not a usable run record: {problem}")
    return record


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def malformed(record: dict) -> str | None:
    """What makes a JSON object unusable as a run record, in words (None: usable)."""
    for key in ("test", "val_best", "config"):
        if record.get(key) is not None and not isinstance(record[key], dict):
            return f"'{key}' is a {type(record[key]).__name__}, not an object"
    for group in ("test", "val_best"):
        for name, value in (record.get(group) or {}).items():
            if value is not None and not _number(value):
                return f"'{group}.{name}' is {value!r}, not a number"
    for key in ("best_epoch", "epochs", "seed", "params", "wall_seconds", "train_tokens_per_s", "peak_memory_mb"):
        if record.get(key) is not None and not _number(record[key]):
            return f"'{key}' is {record[key]!r}, not a number"
    if record.get("history") is not None and not (isinstance(record["history"], list)
                                                  and all(isinstance(h, dict) for h in record["history"])):
        return "'history' is not a list of epochs"
    return None
