"""``seqbench export RUNS... --to mlflow|tensorboard|wandb``: finished runs into a dashboard,
from their records, without training anything again.

Each run found under the folders (one per run, as the report counts them: debug runs and search
trials left out) is logged once: its hyper-parameters (the values it trained with), tags (variant,
data set, seed, git commit, data and code fingerprints, run key), its curves (the record's
per-epoch history: training loss, validation metrics, seconds, at step = epoch), its final test
and best-validation metrics, its status, and as artifacts its record and predictions (and with
``--checkpoints`` its best checkpoint).

- ``mlflow``: into ``--tracking-uri`` (default, as ``logger=mlflow``:
  ``sqlite:///<the runs' output root>/mlflow.db``), experiment ``--experiment`` (``seqbench``).
  A run already there (the same run key, exported or logged live) is not logged twice.
- ``tensorboard``: into ``--logdir`` (default ``<first folder>/tensorboard``), one folder per run
  named ``<variant>_<data set>_s<seed>`` so that names lead with what tells runs apart; a run whose
  own TensorBoard events still exist is copied as it was logged (every step, images, text),
  otherwise written from its record. A folder of that name already there is left alone.
- ``wandb``: with the ``wandb`` package, one W&B run per record (``--project``, ``seqbench``).

A record is data: nothing named in it is imported; paths in it are read only as files.
"""
from __future__ import annotations

import argparse
import math
import re
import shutil
from datetime import datetime
from pathlib import Path

from . import SeqbenchError
from .files import CHECKPOINT_LIMIT, PREDICTIONS_LIMIT, limit_of, read_json, run_path
from .runtime import argument_parser, entry_point, quiet_third_party

TARGETS = ("mlflow", "tensorboard", "wandb")
EXPORTED_STATUSES = ("done", "diverged", "failed", "interrupted")


def finished_records(folders: list[str | Path]) -> list[dict]:
    """The runs under ``folders`` that a dashboard should show: one per run key (a sweep's copy of a
    reused run is the run it copies), finished in any way, never 'running' or 'skipped'."""
    from .results import load_records
    try:
        records = load_records(folders)
    except FileNotFoundError as error:
        raise SeqbenchError(str(error)) from None
    seen, out = set(), []
    for record in sorted(records, key=lambda r: (bool(r.get("reused_from")), str(r.get("record_path")))):
        if record.get("status") not in EXPORTED_STATUSES:
            continue
        key = run_identity(record)
        if key in seen:
            continue
        seen.add(key)
        out.append(record)
    if not out:
        raise SeqbenchError(f"no finished run record under {', '.join(map(str, folders))}")
    return out


def run_identity(record: dict) -> str:
    """What makes a run the same run in a dashboard: its run key (a sweep's copy of a reused run has
    the original's), or for records without one, where it lies."""
    return str(record.get("run_key") or record.get("record_path"))


def run_names(records: list[dict]) -> dict[str, str]:
    """record path -> ``<variant>_<data set>_s<seed>``, the variant labelled as the report labels
    it (what differs between configs of one model), unique over the records exported together."""
    from .results import variant_labels
    labels = variant_labels(records)
    names: dict[str, str] = {}
    taken: set[str] = set()
    for record in records:
        label = labels.get(record.get("config_hash"), record.get("model"))
        name = f"{label}_{record.get('dataset')}_s{record.get('seed')}"
        name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", name).strip("_")
        if name in taken:   # the same variant, data and seed from other code: the run key tells them apart
            name = f"{name}_{str(record.get('run_key') or '')[:8]}"
        taken.add(name)
        names[record["record_path"]] = name
    return names


def curves(record: dict) -> list[tuple[str, float, int]]:
    """(name, value, epoch) for every number in the record's per-epoch history."""
    out = []
    for entry in record.get("history") or []:
        epoch = entry.get("epoch")
        if not isinstance(epoch, int):
            continue
        for name, value in entry.items():
            if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                out.append((name, float(value), epoch))
    return out


def _milliseconds(text) -> int | None:
    try:
        return int(datetime.fromisoformat(str(text)).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _artifacts(record: dict, checkpoints: bool) -> list[Path]:
    """The record itself and what it names inside its run folder (through the one resolver: a path
    outside the run, a FIFO or an oversized file is left out with one line)."""
    paths = [Path(record["record_path"]), run_path(record, "predictions", limit=limit_of(PREDICTIONS_LIMIT))]
    if checkpoints:
        paths.append(run_path(record, "best_checkpoint", limit=limit_of(CHECKPOINT_LIMIT)))
    return [p for p in paths if p is not None]


# ----------------------------------------------------------------------------------- MLflow
def default_tracking_uri(folders: list[str]) -> str:
    """``sqlite:///<first folder given>/mlflow.db``: from the folders the user gave, never from a record."""
    return f"sqlite:///{Path(folders[0]).resolve() / 'mlflow.db'}"


def to_mlflow(records: list[dict], tracking_uri: str, experiment: str, checkpoints: bool = False) -> dict:
    import logging
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise SeqbenchError("--to mlflow needs the mlflow package: pip install 'seqbench[mlflow]' "
                            "(or pip install mlflow)") from None
    from .dashboards import MLFLOW_STATUS, final_metrics, hparams_for, log_artifact, run_tags
    for name in ("alembic", "mlflow"):   # the database's migrations and MLflow's notices: not the user's lines
        logging.getLogger(name).setLevel(logging.WARNING)
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        location = None
        if tracking_uri.startswith("sqlite:///"):   # a database keeps metadata only: artifacts beside it
            location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlruns-artifacts").resolve().as_uri()
        experiment_id = client.create_experiment(experiment, artifact_location=location)
    names = run_names(records)
    counts = {"logged": 0, "already there": 0}
    for record in records:
        key = run_identity(record).replace("'", "")
        if client.search_runs([experiment_id], filter_string=f"tags.run_key = '{key}'", max_results=1):
            counts["already there"] += 1
            continue
        name = names[record["record_path"]]
        tags = {**run_tags(record), "run_key": key, "exported_from": record["record_path"], "mlflow.runName": name}
        run = client.create_run(experiment_id, start_time=_milliseconds(record.get("started")), run_name=name,
                                tags=tags)
        run_id = run.info.run_id
        stamp = _milliseconds(record.get("finished")) or 0
        metrics = [Metric(n, v, stamp, epoch) for n, v, epoch in curves(record)]
        final_step = max([epoch for _, _, epoch in curves(record)] or [0])
        metrics += [Metric(n, v, stamp, final_step) for n, v in final_metrics(record).items() if math.isfinite(v)]
        params = [Param(k, str(v)[:6000]) for k, v in hparams_for(record).items()]
        client.log_batch(run_id, tags=[RunTag("exported", "true")])
        for start in range(0, len(params), 100):    # MLflow takes 100 parameters and 1,000 metrics a call
            client.log_batch(run_id, params=params[start:start + 100])
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start:start + 1000])
        for path in _artifacts(record, checkpoints):
            log_artifact(client, run_id, path)
        client.set_terminated(run_id, MLFLOW_STATUS.get(record.get("status"), "FAILED"),
                              end_time=_milliseconds(record.get("finished")))
        counts["logged"] += 1
    return counts


# ------------------------------------------------------------------------------- TensorBoard
def _tensorboard_source(record: dict, within: tuple[Path, ...] = ()) -> Path | None:
    """The run's own TensorBoard folder, when it still holds its event files: inside the run's folder
    or one the user gave (a sweep keeps its runs' logs in ``<sweep>/tensorboard``)."""
    folder = run_path(record, "tensorboard", folder=True, within=within)
    return folder if folder is not None and any(folder.glob("events.out.tfevents.*")) else None


def write_tensorboard(record: dict, folder: Path, within: tuple[Path, ...] = ()) -> str:
    """One run into ``folder``: its own event files copied when they still exist (every step, images,
    text), else its curves and HParams session written from its record. Returns which."""
    source = _tensorboard_source(record, within)
    if source is not None and source.resolve() != folder.resolve():
        shutil.copytree(source, folder, dirs_exist_ok=True)
        return "copied"
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    from .dashboards import _tensorboard_values, final_metrics, hparams_for
    folder.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(log_dir=str(folder))
    try:
        points = curves(record)
        for name, value, epoch in points:
            writer.add_scalar(name, value, epoch)
        step = max([epoch for _, _, epoch in points] or [0])
        metrics = {k: v for k, v in final_metrics(record).items() if math.isfinite(v)}
        for name, value in metrics.items():
            writer.add_scalar(name, value, step)
        _, start, end = hparams_summary(_tensorboard_values(hparams_for(record)), metrics)
        writer.file_writer.add_summary(start)
        writer.file_writer.add_summary(end)
        writer.add_text("run/record", f"exported from `{record['record_path']}` (status {record.get('status')}); "
                                      f"curves by epoch", step)
    finally:
        writer.close()
    return "written"


def to_tensorboard(records: list[dict], logdir: Path, within: tuple[Path, ...] = ()) -> dict:
    """Each run into ``logdir``; a run's own event files are copied only from inside its folder or
    ``within`` (the folders the user gave)."""
    names = run_names(records)
    counts = {"copied": 0, "written": 0, "already there": 0}
    for record in records:
        folder = Path(logdir) / names[record["record_path"]]
        source = _tensorboard_source(record, within)
        if folder.exists() and any(folder.iterdir()) or (source is not None and source.resolve() == folder.resolve()):
            counts["already there"] += 1
            continue
        counts[write_tensorboard(record, folder, within)] += 1
    return counts


def reused_into_sweep(sweep_dir: Path) -> int:
    """A sweep's TensorBoard folder covers the runs it reused: each reused run's events, copied (or
    written from its record) under ``<sweep>/tensorboard/<variant>_<data set>_s<seed>``. The events
    are looked for only where the reused run lives (its folder and the folder holding it, when the
    record there is still that run), never wherever a record says."""
    records = []
    for path in sorted(Path(sweep_dir).glob("*/record.json")):
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("reused_from") and record.get("status") == "done":
            records.append({**record, "record_path": str(path)})
    if not records:
        return 0
    added = 0
    for record in records:
        original = _reused_original(record)
        if original is not None:   # the events as the reused run's own record names them
            source, within = original, (Path(sweep_dir), Path(original["record_path"]).parent.parent)
            record = {**record, "tensorboard": source.get("tensorboard"), "output_dir": source.get("output_dir"),
                      "record_path": source["record_path"]}
        else:
            record, within = {**record, "tensorboard": None}, (Path(sweep_dir),)
        counts = to_tensorboard([record], Path(sweep_dir) / "tensorboard", within=within)
        added += counts["copied"] + counts["written"]
    return added


def _reused_original(copy: dict) -> dict | None:
    """The record a sweep's copy of a reused run was copied from, when it still holds that run."""
    where = copy.get("reused_from")
    try:
        original = read_json(where) if isinstance(where, str) else None
    except (OSError, ValueError):
        return None
    if isinstance(original, dict) and original.get("run_key") and original.get("run_key") == copy.get("run_key"):
        return {**original, "record_path": str(where)}
    return None


# --------------------------------------------------------------------------------------- W&B
def to_wandb(records: list[dict], project: str) -> dict:
    try:
        import wandb
    except ImportError:
        raise SeqbenchError("--to wandb needs the wandb package: pip install 'seqbench[wandb]' (or pip install "
                            "wandb); or export to mlflow or tensorboard") from None
    from .dashboards import final_metrics, hparams_for, run_tags
    names = run_names(records)
    counts = {"logged": 0}
    for record in records:
        run = wandb.init(project=project, name=names[record["record_path"]], config=hparams_for(record),
                         tags=[f"{k}={v}"[:64] for k, v in run_tags(record).items()], reinit=True,
                         id=re.sub(r"[^A-Za-z0-9_-]", "-", run_identity(record))[-64:], resume="allow")
        by_epoch: dict[int, dict] = {}
        for name, value, epoch in curves(record):
            by_epoch.setdefault(epoch, {})[name] = value
        for epoch in sorted(by_epoch):
            run.log({**by_epoch[epoch], "epoch": epoch}, step=epoch)
        run.summary.update(final_metrics(record))
        run.finish(exit_code=0 if record.get("status") == "done" else 1)
        counts["logged"] += 1
    return counts


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(prog="seqbench export", description=__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="run or sweep folders (searched for record.json)")
    parser.add_argument("--to", required=True, choices=TARGETS, help="the dashboard")
    parser.add_argument("--tracking-uri", help="mlflow: where (default: sqlite:///<first folder>/mlflow.db)")
    parser.add_argument("--experiment", default="seqbench", help="mlflow: the experiment (default: seqbench)")
    parser.add_argument("--checkpoints", action="store_true", help="mlflow: also log each run's best checkpoint")
    parser.add_argument("--logdir", help="tensorboard: where (default: <first folder>/tensorboard)")
    parser.add_argument("--project", default="seqbench", help="wandb: the project (default: seqbench)")
    args = parser.parse_args(argv)
    quiet_third_party()
    records = finished_records(args.folders)
    if args.to == "mlflow":
        uri = args.tracking_uri or default_tracking_uri(args.folders)
        counts = to_mlflow(records, uri, args.experiment, args.checkpoints)
        where, then = f"MLflow {uri}, experiment {args.experiment}", f"mlflow ui --backend-store-uri {uri}"
    elif args.to == "tensorboard":
        logdir = Path(args.logdir or Path(args.folders[0]) / "tensorboard")
        counts = to_tensorboard(records, logdir, within=tuple(Path(f) for f in args.folders))
        where, then = str(logdir), f"tensorboard --logdir {logdir}"
    else:
        counts = to_wandb(records, args.project)
        where, then = f"W&B project {args.project}", "wandb's web page for the project"
    done = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing"
    print(f"export: {len(records)} run{'s' if len(records) != 1 else ''} to {where}: {done}; nothing trained")
    print(f"dashboards: {then}")


if __name__ == "__main__":
    main()
