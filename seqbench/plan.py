"""What to do with a run before anything is built: train it afresh, reuse a finished record,
or resume an interrupted run, decided once, by the process that holds the run's claim.

A claim is an exclusive ``flock`` on ``<output root>/.claims/<run key>.lock``, held by the live
process for as long as it works on the run. The kernel drops it when the process ends, however
it ends (``kill -9`` included), so a claim is never stale, and a run whose claim is held by
another process is never resumed or trained a second time: that process is still on it.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path


log = logging.getLogger(__name__)
CLAIMS_DIR = ".claims"
# Statuses of runs that stopped before finishing and may be continued from their last.ckpt.
INTERRUPTED = {"running", "failed", "interrupted"}


@dataclass(frozen=True)
class Identity:
    """Everything a run's result depends on; ``key`` combines them."""
    config_hash: str
    seed: int
    code: str
    data: str
    key: str
    debug: bool = False


@dataclass(frozen=True)
class Fresh:
    output_dir: Path
    reason: str


@dataclass(frozen=True)
class Reuse:
    record_path: Path
    record: dict
    reason: str


@dataclass(frozen=True)
class Resume:
    output_dir: Path
    checkpoint: Path
    previous: dict
    reason: str


@dataclass(frozen=True)
class Claimed:
    """Another live process holds this run."""
    owner: dict
    reason: str


Decision = Fresh | Reuse | Resume | Claimed


class Claim:
    """An exclusive lock on one run key; ``release()`` (or process exit) gives it up."""

    def __init__(self, path: Path, handle):
        self.path, self._handle = path, handle

    @classmethod
    def try_acquire(cls, root: Path, key: str, output_dir: Path) -> "Claim | dict":
        """The claim, or (when another live process holds it) what that process wrote about itself."""
        folder = Path(root) / CLAIMS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{key}.lock"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read()
            handle.close()
            try:
                return json.loads(text) or {}
            except json.JSONDecodeError:
                return {}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "output_dir": str(output_dir),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        return cls(path, handle)

    def move_to(self, output_dir: Path) -> None:
        """Say where the run now lives (after a resume moved it to its old folder)."""
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "output_dir": str(output_dir),
                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(owner))
        self._handle.flush()

    def release(self) -> None:
        if self._handle is not None and not self._handle.closed:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


def describe_owner(owner: dict) -> str:
    if not owner:
        return "another process"
    return f"process {owner.get('pid')} on {owner.get('host')} (since {owner.get('since')}, in {owner.get('output_dir')})"


def checkpoint_is_readable(path: Path) -> bool:
    """Loads the checkpoint as a resume would (tensors and plain data only). A truncated or
    corrupt file is moved aside with a warning, so the run does not fail on it again and again."""
    import torch
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception as error:  # truncated zip, pickle error, I/O error: all mean "cannot resume from it"
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, aside)
            where = f"moved aside to {aside}"
        except OSError:
            where = "left in place"
        log.warning("the checkpoint %s cannot be read (%s: %s); %s, the run starts afresh",
                    path, type(error).__name__, error, where)
        return False


def earlier_runs(records, identity: Identity) -> list[tuple[str, Path, dict]]:
    """(started, path, record) of the records of this variant and seed, newest first."""
    found = [(record.get("started") or "", path, record) for path, record in records
             if record.get("config_hash") == identity.config_hash and record.get("seed") == identity.seed]
    return sorted(found, key=lambda item: item[0], reverse=True)


def _differences(record: dict, identity: Identity) -> list[str]:
    out = []
    if record.get("code_fingerprint") != identity.code:
        out.append(f"code {record.get('code_fingerprint') or 'unknown'} -> {identity.code}")
    if record.get("data_fingerprint") != identity.data:
        out.append(f"data {record.get('data_fingerprint') or 'unknown'} -> {identity.data}")
    return out


def plan(identity: Identity, output_dir: Path, records, force: bool = False, needs_test: bool = True) -> Decision:
    """Decide, from the records under the output root, what this run does. Call it while
    holding the run's claim (``Claim.try_acquire``). Pure apart from moving an unreadable
    checkpoint aside."""
    if identity.debug:
        return Fresh(output_dir, "a debug run (fast_dev_run, overfit_batches or limit_*_batches): never reused")
    if force:
        return Fresh(output_dir, "force=true")
    runs = earlier_runs(records, identity)
    same = [(started, path, record) for started, path, record in runs if record.get("run_key") == identity.key]
    for _, path, record in same:
        # A search trial never read the test split: a run that needs test metrics cannot reuse it.
        if record.get("status") == "done" and not record.get("debug") and (record.get("test") or not needs_test):
            original = Path(record.get("copy_of") or path)
            return Reuse(original, record, f"a finished run with the same config, seed, code and data: {original}")
    for _, path, record in same:
        if record.get("status") in INTERRUPTED and not record.get("copy_of") and not record.get("debug"):
            checkpoint = path.parent / "checkpoints" / "last.ckpt"
            if checkpoint.is_file() and checkpoint_is_readable(checkpoint):
                return Resume(path.parent, checkpoint, record,
                              f"the interrupted run in {path.parent} (status {record.get('status')}, "
                              f"{record.get('epochs') or 0} epochs recorded) continues from its last checkpoint")
    other = [(path, _differences(record, identity)) for _, path, record in runs
             if record.get("status") == "done" and record.get("run_key") != identity.key and not record.get("debug")]
    if other:
        path, changes = other[0]
        return Fresh(output_dir, f"trained again: the finished run {path} was made with other "
                                 f"{', '.join(changes) or 'settings'}")
    return Fresh(output_dir, "no finished run with this config, seed, code and data")


def plan_to_json(decision: Decision) -> str:
    """For DDP: rank 0 decides, the other processes (started by Lightning with rank 0's
    environment) read the decision instead of deciding again."""
    if isinstance(decision, Resume):
        return json.dumps({"kind": "resume", "output_dir": str(decision.output_dir),
                           "checkpoint": str(decision.checkpoint), "reason": decision.reason})
    return json.dumps({"kind": "fresh", "output_dir": str(decision.output_dir), "reason": decision.reason})


def plan_from_json(text: str) -> Decision:
    data = json.loads(text)
    if data["kind"] == "resume":
        return Resume(Path(data["output_dir"]), Path(data["checkpoint"]), {}, data["reason"])
    return Fresh(Path(data["output_dir"]), data["reason"])
