"""What to do with a run before anything is built: train it afresh, reuse a finished record,
or resume an interrupted run, decided once, by the process that holds the run's claim.

A claim is an exclusive ``flock`` on ``<output root>/.claims/<run key>.lock``, held by the live
process for as long as it works on the run. The kernel drops it when the process ends, however
it ends (``kill -9`` included), so a claim is never stale, and a run whose claim is held by
another process is never resumed or trained a second time: that process is still on it.

A run's folder belongs to one run key: a fresh run never writes into a folder whose record (or
checkpoints) belong to another run, it takes a sibling folder named with its key instead; and a
checkpoint is resumed only if the run key stored in it is this run's.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path


from .files import UnreadableFile, open_lock, open_regular, read_json, read_text
from .record import FINISHED_STATUSES, RECORD_NAME, save_record

log = logging.getLogger(__name__)
CLAIMS_DIR = ".claims"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
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

    @staticmethod
    def _owner(output_dir: Path) -> str:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "output_dir": str(output_dir),
                           "since": time.strftime("%Y-%m-%d %H:%M:%S")})

    @classmethod
    def try_acquire(cls, root: Path, key: str, output_dir: Path) -> "Claim | dict":
        """The claim, or (when another live process holds it) what that process wrote about itself."""
        folder = Path(root) / CLAIMS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{key}.lock"
        handle = open_lock(path, "run claim")   # never through a link, never a FIFO: one line naming the path
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
        claim = cls(path, handle)
        claim.move_to(output_dir)
        return claim

    def move_to(self, output_dir: Path) -> None:
        """Say where the run lives (and, after a resume, that it moved to its old folder)."""
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(self._owner(output_dir))
        self._handle.flush()

    def release(self) -> None:
        if self._handle is not None and not self._handle.closed:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


def describe_owner(owner: dict) -> str:
    if not owner:
        return "another process"
    return f"process {owner.get('pid')} on {owner.get('host')} (since {owner.get('since')}, in {owner.get('output_dir')})"


def set_aside(path: Path, why: str) -> None:
    """Move a file or folder out of the way (never delete it) and say so in one line."""
    aside = path.with_name(f"{path.name}.set-aside-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, aside)
        where = f"moved to {aside}"
    except OSError as error:
        where = f"left in place ({error.strerror or error})"
    log.warning("%s: %s; %s", path, why, where)


def checkpoint_run_key(path: Path) -> str | None:
    """The run key a seqbench checkpoint was written for (tensors and plain data only); raises
    on a file that cannot be read as a checkpoint."""
    import torch
    with open_regular(path) as stream:
        checkpoint = torch.load(stream, map_location="cpu", weights_only=True)
    meta = checkpoint.get("seqbench") if isinstance(checkpoint, dict) else None
    return meta.get("run_key") if isinstance(meta, dict) else None


def resumable_checkpoint(path: Path, key: str) -> bool:
    """A resume reads only a readable checkpoint written for this very run. Anything else is set
    aside with one line, so that the run does not trip on it again."""
    try:
        found = checkpoint_run_key(path)
    except Exception as error:  # truncated zip, pickle error, I/O error: all mean "cannot resume from it"
        first_line = (str(error).strip().splitlines() or [""])[0][:120]
        set_aside(path, f"cannot be read as a checkpoint ({type(error).__name__}: {first_line}); the run starts "
                        f"afresh")
        return False
    if found != key:
        set_aside(path, f"was written for run {found or 'of unknown identity'}, not this run {key}; the run starts "
                        f"afresh")
        return False
    return True


OWNER_NAME = ".run_key"   # written (exclusively) by the run that took a folder


def folder_owner(folder: Path) -> str | None:
    """The run key of the run that took ``folder`` or whose record is in it; ``"unknown"`` for
    checkpoints with no readable record beside them; None when the folder holds no run."""
    try:
        return read_text(folder / OWNER_NAME).strip() or "unknown"
    except UnreadableFile:  # a FIFO or a device where the owner file should be: not this run's folder
        return "unknown"
    except (OSError, UnicodeDecodeError):
        pass
    record = folder / RECORD_NAME
    if record.exists():
        try:
            content = read_json(record)
            return content.get("run_key") or "unknown" if isinstance(content, dict) else "unknown"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return "unknown"
    checkpoints = folder / CHECKPOINT_DIR
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        return "unknown"
    return None


def _take(folder: Path, key: str) -> bool:
    """Take ``folder`` for run ``key`` if it is free (or already this run's). The owner file is
    created exclusively, so two processes that both saw the folder free cannot both take it."""
    owner = folder_owner(folder)
    if owner == key:
        return True
    if owner is not None:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder / OWNER_NAME, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return folder_owner(folder) == key
    except OSError as error:
        from . import SeqbenchError
        raise SeqbenchError(f"cannot write the run record into {folder}: {error.strerror or error}. Choose a writable "
                            f"folder with paths.output_root=PATH (or free some disk space)") from None
    with os.fdopen(handle, "w") as stream:
        stream.write(key)
    return True


def release_folder(folder: Path, key: str) -> None:
    """Give back a folder this run took but never wrote a record into (its data could not be read)."""
    owner = Path(folder) / OWNER_NAME
    try:
        if read_text(owner).strip() == key and not (Path(folder) / RECORD_NAME).exists():
            owner.unlink()
            if not any(Path(folder).iterdir()):
                Path(folder).rmdir()
    except (OSError, UnicodeDecodeError):
        pass


def owned_folder(folder: Path, key: str, take: bool = True) -> Path:
    """``folder`` if it is free or already this run's, else a sibling named with the run key:
    nothing is ever written into another run's folder. ``take``: reserve it for the run."""
    folder = Path(folder)
    free = (lambda f: _take(f, key)) if take else (lambda f: folder_owner(f) in (None, key))
    if free(folder):
        return folder
    for attempt in range(1000):
        candidate = folder.with_name(f"{folder.name}-{key[:8]}" + (f"-{attempt}" if attempt else ""))
        if free(candidate):
            log.warning("%s holds another run; this run (%s) goes to %s", folder, key, candidate)
            return candidate
    raise RuntimeError(f"no free folder beside {folder}")


def copy_beside(record: dict, original: Path, job_dir: Path, **marks) -> Path:
    """A copy of a run's record (and its predictions) in a sweep job's folder, so that the sweep's
    folder holds every result it reports, and moving or merging folders keeps every verdict."""
    job_dir = owned_folder(job_dir, record.get("run_key") or "unknown")  # a copy takes the folder for its run
    if job_dir.resolve() == original.parent.resolve():  # the job's folder was taken: the run is beside it
        return job_dir
    save_record(job_dir / RECORD_NAME, {**record, **marks, "copy_of": str(original)})
    predictions = record.get("predictions")
    # A record is data: its predictions are a file beside it, by name, never a path elsewhere.
    if isinstance(predictions, str) and predictions == Path(predictions).name and \
            (original.parent / predictions).is_file():
        shutil.copyfile(original.parent / predictions, job_dir / predictions)
    return job_dir


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
        return Fresh(owned_folder(output_dir, identity.key),
                     "a debug run (fast_dev_run, overfit_batches or limit_*_batches): never reused")
    if force:
        return Fresh(owned_folder(output_dir, identity.key), "force=true")
    runs = earlier_runs(records, identity)
    same = [(started, path, record) for started, path, record in runs if record.get("run_key") == identity.key]
    for _, path, record in same:
        # A search trial never read the test split: a run that needs test metrics cannot reuse it. A
        # diverged run has none to give, and trained again it diverges again: it is reused as it is.
        tested = record.get("test") or not needs_test or record.get("status") == "diverged"
        if record.get("status") in FINISHED_STATUSES and not record.get("debug") and tested:
            # A copy names its original; when that folder is gone, the copy (with its predictions) serves.
            original = Path(record["copy_of"]) if record.get("copy_of") and Path(record["copy_of"]).is_file() else path
            return Reuse(original, record, f"a finished run with the same config, seed, code and data: {original}")
    for _, path, record in same:
        if record.get("status") in INTERRUPTED and not record.get("copy_of") and not record.get("debug"):
            checkpoint = path.parent / CHECKPOINT_DIR / LAST_CHECKPOINT
            if checkpoint.is_file() and resumable_checkpoint(checkpoint, identity.key):
                return Resume(path.parent, checkpoint, record,
                              f"the interrupted run in {path.parent} (status {record.get('status')}, "
                              f"{record.get('epochs') or 0} epochs recorded) continues from its last checkpoint")
    other = [(path, _differences(record, identity)) for _, path, record in runs
             if record.get("status") == "done" and record.get("run_key") != identity.key and not record.get("debug")]
    output_dir = owned_folder(output_dir, identity.key)
    if other:
        path, changes = other[0]
        return Fresh(output_dir, f"trained again: the finished run {path} was made with other "
                                 f"{', '.join(changes) or 'settings'}")
    return Fresh(output_dir, "no finished run with this config, seed, code and data")


def plan_file(root: Path, key: str) -> Path:
    return Path(root) / CLAIMS_DIR / f"{key}.plan.json"


def publish_plan(root: Path, key: str, decision: Decision, launch: str) -> Path:
    """Rank 0's decision, for the processes of other nodes (which do not inherit its environment):
    beside the claim, tagged with the launch it belongs to."""
    from .record import write_json_atomic
    payload = {**json.loads(plan_to_json(decision)), "launch": launch}
    return write_json_atomic(plan_file(root, key), payload)


def read_published_plan(root: Path, key: str, launch: str, timeout: float = 600.0) -> Decision:
    """A non-zero rank's decision: rank 0's, published for this launch (waits for it)."""
    path = plan_file(root, key)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            payload = read_json(path)
            if isinstance(payload, dict) and payload.get("launch") == launch:
                return plan_from_json(json.dumps(payload))
        except (OSError, json.JSONDecodeError):
            pass
        time.sleep(1.0)
    raise TimeoutError(f"rank 0 published no plan for this launch in {path} within {timeout:.0f} s; "
                       f"multi-node runs need paths.output_root on a file system every node shares")


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
