"""The run record: one self-describing JSON file per run, written atomically."""
from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import resource
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import torch

RECORD_NAME = "record.json"
# Settings that do not change what a run computes: left out of the config hash, so a run
# is recognised whatever folder, cache or progress bar it used.
NON_RESULT_KEYS = ("seed", "force", "paths", "dataset.root", "dataset.cache_dir", "dataset.num_workers",
                   "trainer.enable_progress_bar")


def write_json_atomic(path: Path, payload: dict) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``:
    a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=2, sort_keys=False, default=str)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def config_hash(config: dict) -> str:
    """Hash of the resolved config without ``NON_RESULT_KEYS``: equal for runs that differ
    only by seed, so it names a model variant on a data set."""
    trimmed = copy.deepcopy(config)
    for dotted in NON_RESULT_KEYS:
        *parents, leaf = dotted.split(".")
        node = trimmed
        for key in parents:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(trimmed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    info = {"platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "gpu": None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


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
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
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


def peak_memory_mb(device: torch.device, sampled_rss_peak: float | None) -> tuple[float | None, str]:
    """Peak accelerator memory allocated by torch during the run (reset when it starts), or on
    CPU the highest resident memory sampled during the run. Not the process's lifetime peak:
    a sweep runs many jobs in one process."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return sampled_rss_peak, "process_rss_sampled_peak"
