"""One run, in steps that each have one owner:

1. ``prepare``: the config is checked (one line for anything wrong, before any data is read) and
   the run identified: config hash, seed, code fingerprint (the core training code plus its own
   encoder's and data set's files), data fingerprint (the input files' contents);
2. ``decide``: under the run's claim, Fresh | Reuse | Resume (or Claimed by a live process),
   in a folder that belongs to this run key alone (``plan.py``);
3. ``seqbench.train.execute``: build, fit, test once, record. Only a run that trains imports
   Lightning: a finished run is answered from its record at once.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from . import SeqbenchError
from .config import NetworkSchema, check_config, config_hash, is_debug_run, network_config
from .data.declare import LocatedData, dataset_kind
from .names import variant_of
from .plan import (Claim, Claimed, Decision, Fresh, Identity, Resume, Reuse, describe_owner, owned_folder, plan,
                   plan_from_json, plan_to_json, publish_plan, read_published_plan)
from .record import RECORD_NAME, code_fingerprint, git_commit, run_key, versions, write_json_atomic
from .registry import DatasetEntry, dataset_entry, model_entry
from .runtime import launch_id, process_rank

log = logging.getLogger(__name__)
PLAN_ENV = "SEQBENCH_PLAN"
PREDICTIONS_NAME = "predictions.csv"


@dataclass
class Prepared:
    """A checked config and what identifies its run, computed without the training stack."""
    cfg: DictConfig
    config: dict                  # resolved
    network: NetworkSchema
    dataset: DatasetEntry
    located: LocatedData
    identity: Identity


# Dataset keys that are paths: recorded absolute, so a run can be evaluated again from anywhere.
PATH_KEYS = ("train", "val", "test", "root", "cache_dir")


def prepare(cfg: DictConfig) -> Prepared:
    config = OmegaConf.to_container(cfg, resolve=True)
    check_config(config)  # one line, before any data is read
    for key in PATH_KEYS:
        if isinstance(config["dataset"].get(key), str):
            config["dataset"][key] = str(Path(config["dataset"][key]).expanduser().resolve())
    network = network_config(config["model"])
    entry = dataset_entry(dataset_kind(config["dataset"]))
    located = entry.fingerprint(config["dataset"])  # finds (downloads, verifies) the input files
    hashed = config_hash(config)
    code = code_fingerprint(*model_entry(network.cell).files, *entry.files)
    identity = Identity(hashed, cfg.seed, code, located.fingerprint,
                        run_key(hashed, cfg.seed, code, located.fingerprint),
                        debug=is_debug_run(config.get("trainer") or {}))
    return Prepared(cfg, config, network, entry, located, identity)


def variant_name(cfg: DictConfig | dict) -> str:
    """The one spelling of a model variant, as on the command line: ``bilstm_attn_additive``,
    ``gru``, ``lstm_bi``, ``irnn``; also the folder and TensorBoard name."""
    model = cfg.model if isinstance(cfg, DictConfig) else cfg["model"]
    return variant_of(OmegaConf.to_container(model, resolve=True) if isinstance(model, DictConfig) else model)


# --------------------------------------------------------------------------------- the record
def base_record(prepared: Prepared) -> dict:
    cfg, identity = prepared.cfg, prepared.identity
    from .record import hardware
    return {"status": "running", "model": variant_name(cfg), "dataset": cfg.dataset.name,
            "dataset_kind": prepared.dataset.name, "seed": cfg.seed,
            "config_hash": identity.config_hash, "code_fingerprint": identity.code,
            "data_fingerprint": identity.data, "run_key": identity.key, "debug": identity.debug,
            "data": {"kind": prepared.dataset.name, "name": cfg.dataset.name, "fingerprint": identity.data,
                     "files": prepared.located.files,
                     # what decides the test examples beyond the files (a generated task's settings)
                     "test_set": {k: prepared.config["dataset"].get(k) for k in prepared.dataset.test_set_keys}},
            "config": prepared.config, "interpolations": interpolation_sources(cfg),
            "started": datetime.now(timezone.utc).isoformat(),
            "hardware": hardware(), "versions": versions(), "git_commit": git_commit(),
            "process": {"host": socket.gethostname(), "pid": os.getpid()}}


def interpolation_sources(cfg: DictConfig) -> dict[str, str]:
    """``{"model.dropout": "dataset.dropout", ...}``: the keys whose value was read from another
    key by interpolation in this run's config. Reports fold such keys into their source, so a
    variant is labelled by what the user set, once."""
    out = {}

    def walk(node, prefix: str) -> None:
        for key in node:
            path = f"{prefix}{key}"
            if OmegaConf.is_interpolation(node, key):
                text = str(OmegaConf.to_container(node, resolve=False)[key])
                if text.startswith("${") and text.endswith("}") and ":" not in text and text.count("${") == 1:
                    out[path] = text[2:-1]
            else:
                child = node[key] if not OmegaConf.is_missing(node, key) else None
                if isinstance(child, DictConfig):
                    walk(child, f"{path}.")
    walk(cfg, "")
    return {k: v for k, v in out.items() if not k.startswith("hydra.")}


def save_record(path: Path, record: dict) -> None:
    """Atomic write; a full disk or an unwritable folder becomes an error that says what to do
    (earlier records are never touched: each run writes only its own file)."""
    try:
        write_json_atomic(path, record)
    except OSError as error:
        raise SeqbenchError(f"cannot write the run record {path}: {error.strerror or error}. "
                            f"Free some disk space or choose a writable folder with paths.output_root=PATH."
                            ) from error


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


# ------------------------------------------------------------------------------------- steps
def decide(prepared: Prepared, output_dir: Path, rank_zero: bool,
           needs_test: bool = True) -> tuple[Decision, Claim | None]:
    """Claim the run and plan it (rank 0); other DDP processes take rank 0's decision: from the
    environment on its node, from the plan it published beside the claim on other nodes."""
    cfg, identity = prepared.cfg, prepared.identity
    root = Path(cfg.paths.output_root)
    if not rank_zero:
        if os.environ.get(PLAN_ENV):
            return plan_from_json(os.environ[PLAN_ENV]), None
        return read_published_plan(root, identity.key, launch_id()), None
    from .record import read_records
    while True:
        claim = Claim.try_acquire(root, identity.key, output_dir)
        if isinstance(claim, Claim):
            break
        if cfg.get("claimed", "skip") != "wait":
            return Claimed(claim, f"claimed by {describe_owner(claim)}"), None
        log.warning("waiting: %s (claimed=wait)", describe_owner(claim))
        time.sleep(5)
    records = read_records([root]) if root.is_dir() else []
    decision = plan(identity, output_dir, records, force=bool(cfg.get("force", False)), needs_test=needs_test)
    if isinstance(decision, (Fresh, Resume)):
        os.environ[PLAN_ENV] = plan_to_json(decision)
        if _distributed(cfg):
            publish_plan(root, identity.key, decision, launch_id())
    return decision, claim


def _distributed(cfg: DictConfig) -> bool:
    return str(cfg.trainer.get("strategy", "auto")).startswith("ddp") or int(cfg.trainer.get("num_nodes") or 1) > 1


def run(cfg: DictConfig, output_dir: str | Path, tensorboard_root: str | Path | None = None,
        in_sweep: bool = False, evaluate_test: bool = True, extra_callbacks: list | None = None,
        tags: dict | None = None, prepared: Prepared | None = None) -> dict:
    """Train and test one configuration; returns its record (its folder is ``record["output_dir"]``).

    - Reuse: a ``done`` record with the same config hash, seed, code and data fingerprints under
      ``paths.output_root`` is not run again (``force=true`` reruns it).
    - Resume: an interrupted run of the same identity continues in its own folder from its last
      checkpoint (if that checkpoint was written for this run key), if no live process holds it.
    - Claimed: a live process is on this run: skipped (``claimed=skip``) or waited for
      (``claimed=wait``), and said so.
    - A fresh run takes ``output_dir`` if it is free, else a sibling folder named with its run key.
    - In a sweep, the job's own folder always gets a copy of the record and predictions
      (``copy_of``), so the sweep's report finds every run, wherever it trained.
    - A diverged run returns normally with status "diverged"; SIGTERM records "interrupted"
      (resumable) and raises ``Interrupted``; any other error records "failed" and is raised.
    - ``evaluate_test=False`` (hyper-parameter search) never touches the test split.
    - ``tags`` go into the record as they are (``search``: a search trial; ``tuned``: a retrained
      best configuration).
    Under DDP only global rank 0 claims, plans and writes records.
    """
    output_dir = Path(output_dir)
    prepared = prepared or prepare(cfg)
    rank_zero = process_rank() == 0
    decision, claim = decide(prepared, output_dir, rank_zero, needs_test=evaluate_test)
    log.info("plan: %s: %s", type(decision).__name__.lower(), decision.reason)
    try:
        if isinstance(decision, Claimed):
            return _skipped(prepared, decision, output_dir, in_sweep, rank_zero)
        if isinstance(decision, Reuse):
            return _reused(decision, output_dir, in_sweep, rank_zero)
        from .train import execute
        return execute(prepared, decision, output_dir, tensorboard_root, rank_zero, in_sweep, evaluate_test,
                       extra_callbacks or [], tags or {}, claim)
    finally:
        if claim is not None:
            claim.release()
        if rank_zero:
            os.environ.pop(PLAN_ENV, None)


def _skipped(prepared: Prepared, decision: Claimed, output_dir: Path, in_sweep: bool, rank_zero: bool) -> dict:
    cfg, identity = prepared.cfg, prepared.identity
    record = {"status": "skipped", "model": variant_name(cfg), "dataset": cfg.dataset.name, "seed": cfg.seed,
              "config_hash": identity.config_hash, "run_key": identity.key, "owner": decision.owner,
              "data_fingerprint": identity.data,
              "reason": f"{decision.reason}; not started again (claimed=wait waits for it)",
              "started": datetime.now(timezone.utc).isoformat(), "config": prepared.config}
    if in_sweep and rank_zero:  # the sweep's report shows it as not done, with where it runs
        folder = owned_folder(output_dir, identity.key)
        save_record(folder / RECORD_NAME, record)
        record["output_dir"] = str(folder)
    return record


def _only_hydra_files(folder: Path) -> bool:
    return folder.is_dir() and all(p.name in (".hydra", "__main__.log") for p in folder.iterdir())


def _reused(decision: Reuse, output_dir: Path, in_sweep: bool, rank_zero: bool) -> dict:
    original = decision.record_path
    reused = {**decision.record, "reused_from": str(original)}
    if in_sweep and rank_zero and original.resolve() != (output_dir / RECORD_NAME).resolve():
        folder = copy_beside(reused, original, output_dir)
        return {**reused, "output_dir": str(folder)}
    if rank_zero and _only_hydra_files(output_dir):
        shutil.rmtree(output_dir, ignore_errors=True)  # a reused single run leaves no empty folder behind
    return {**reused, "output_dir": str(original.parent)}
