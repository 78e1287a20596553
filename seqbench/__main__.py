"""``seqbench model=gru dataset=sentiment`` (or ``python -m seqbench ...``): train, test once,
write record.json. ``seqbench <report|eval|explain|diagnostics|bench|search> ...``: the other tools.

Imports stay light here (no torch, no Lightning): ``--help``, ``--cfg job`` and tab completion
answer at once; the training code is imported only when a run starts.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from .composition import preflight
from .names import register_resolvers
from .runtime import (BUG, CONFIG_DIR, USER_ERROR, debugging, exit_status, quiet_third_party, set_threads,
                      stop_if_requested, stop_on_signals, take_config_dirs)

SUBCOMMANDS = {
    "report": ("seqbench.report", "comparison tables, plots and the statistical verdict from run records"),
    "eval": ("seqbench.evaluate", "evaluate a trained run or checkpoint on a data set's test split or your file"),
    "explain": ("seqbench.explain", "a text classifier's prediction with per-token attention"),
    "diagnostics": ("seqbench.diagnostics", "gradient flow through time, untrained and trained"),
    "bench": ("seqbench.bench", "training speed against plain PyTorch loops"),
    "search": ("seqbench.search", "equal-budget hyper-parameter search (Optuna), retraining, report"),
    "adaptive": ("seqbench.adaptive", "adaptive seeds: more seeds only for the variants not yet separated from the "
                 "best, up to a cap"),
    "plan": ("seqbench.estimate", "what a run or sweep would train, what is already done, and how long it would take"),
    "calibrate": ("seqbench.calibration", "the verdict's family-wise error and power, measured by simulation"),
    "export": ("seqbench.export", "finished runs into MLflow, TensorBoard or W&B from their records, nothing retrained"),
    "archive": ("seqbench.archive", "finished runs' records and predictions, without checkpoints or machine paths, "
                "into a folder (results/runs)"),
}


def as_typed_here(path: Path) -> str:
    """A path to type in the user's folder: relative to it where it lies inside, else absolute
    (records hold absolute paths: a reused run's may come from another folder)."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def report_line(record: dict) -> list[str]:
    """What the user reads at the end of a run."""
    who = f"{record['model']} on {record['dataset']} (seed {record['seed']})"
    lines = []
    if "reused_from" in record:
        lines.append(f"{who}: already done with the same config, code and data, not run again (force=true reruns "
                     f"it)")
    if record["status"] == "skipped":
        lines.append(f"{who}: skipped: {record['reason']}")
        return lines
    if record["status"] == "done":
        test = record.get("test") or {}
        primary = next(iter(record.get("val_best") or {}), None)
        names = ([primary] if primary in test else []) + [n for n in test if n != primary]
        if test:
            lines.append(f"{who}: test " + ", ".join(f"{n} {test[n]:.4g}" for n in names))
        if record.get("val_best") and record.get("best_epoch") is not None:
            metric, value = next(iter(record["val_best"].items()))
            lines.append(f"best validation {metric} {value:.4g} at epoch {record['best_epoch'] + 1} of "
                         f"{record.get('epochs')}; {record.get('wall_seconds', 0):.1f} s wall time")
        if record.get("debug"):
            lines.append("a debug run (fast_dev_run / overfit / limit_*_batches): kept out of tables and reuse")
    else:
        lines.append(f"{who}: {record['status']}: {record.get('error', '')}")
    if record.get("tensorboard"):
        lines.append(f"dashboards: tensorboard --logdir {as_typed_here(Path(record['tensorboard']).parent)}")
    if record.get("mlflow"):
        uri = record["mlflow"]["tracking_uri"]
        lines.append(f"dashboards: mlflow ui --backend-store-uri {uri}")
    return lines


def _record_path_if_written(output_dir: Path) -> Path | None:
    path = output_dir / "record.json"
    return path if path.is_file() else None


def _drop_if_empty(folder: Path) -> None:
    """A run refused before it wrote anything leaves no folder behind (Hydra makes one, with its
    log, before a run's config can be checked)."""
    import shutil
    if folder.is_dir() and all(p.name in (".hydra", "__main__.log") for p in folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)


def _report_interrupted_sweep() -> None:
    try:
        from .report import build_report
        sweep_dir = Path(HydraConfig.get().sweep.dir)
        build_report([sweep_dir], sweep_dir / "report", command="(interrupted sweep)")
        print(f"report of the runs so far: {sweep_dir / 'report' / 'summary.md'}", file=sys.stderr)
    except BaseException as error:  # the report is a courtesy; the exit code is what matters
        print(f"no report: {error}", file=sys.stderr)


def _run_ended_by(error: BaseException, output_dir: Path, in_sweep: bool) -> None:
    """A run that ended by ``error``: one line (what, and where its record is), then the exit
    ``runtime.exit_status`` gives every command. In a sweep the other runs go on (their records
    say what happened to each), unless the sweep itself was interrupted."""
    code, line = exit_status(error)
    written = _record_path_if_written(output_dir)
    if isinstance(error, (KeyboardInterrupt, SystemExit)) or type(error).__name__ == "SIGTERMException":
        print(f"interrupted ({type(error).__name__}); the record says 'interrupted': run the same command again "
              f"to resume from the last finished epoch" if written else
              f"interrupted ({type(error).__name__}) before the run wrote a record; run the same command again to "
              f"start it", file=sys.stderr)
        if written:
            print(f"record: {written}")
        if in_sweep:
            _report_interrupted_sweep()
        sys.exit(code)   # 143 or 130, as a shell reports a process ended by SIGTERM or Ctrl-C
    if code == BUG:   # this run's record says "failed", why, and the traceback
        first = (str(error).strip().splitlines() or [""])[0][:300]
        line = f"error: the run failed: {type(error).__name__}: {first}" + (
            f" (the traceback is in {written}; HYDRA_FULL_ERROR=1 prints it)" if written else
            " (HYDRA_FULL_ERROR=1 prints the traceback)")
    print(line, file=sys.stderr)
    if debugging() and (code == BUG or isinstance(error, OSError)):
        raise error
    if written and not isinstance(error, OSError):
        print(f"record: {written}")
    elif not written and code == USER_ERROR:   # refused before it wrote anything: no folder left behind
        _drop_if_empty(output_dir)
    if not in_sweep:
        sys.exit(code)
    return None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the run's best validation metric: the objective a Hydra sweeper optimises."""
    quiet_third_party()
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    if in_sweep and str(cfg.trainer.get("strategy", "auto")).startswith("ddp"):
        # Lightning starts DDP processes by re-running this command line: inside a multirun
        # each process would start the whole sweep again.
        print("error: trainer=ddp cannot run inside a multirun; give each job one device "
              "(hydra/launcher=slurm does) or run the DDP job on its own", file=sys.stderr)
        sys.exit(2)
    from .run import run
    launcher = HydraConfig.get().launcher
    set_threads(cfg.get("torch_threads"), launcher.get("n_jobs") if launcher is not None else None)
    # SIGTERM (preemption, scancel), Ctrl-C: record "interrupted", exit 143 / 130 (Lightning alone
    # exits 0 on SIGTERM and 1 on Ctrl-C).
    stop_on_signals()
    # In a sweep every run logs under one TensorBoard root: `tensorboard --logdir <sweep>/tensorboard`.
    tensorboard_root = Path(HydraConfig.get().sweep.dir) / "tensorboard" if in_sweep else None
    try:
        stop_if_requested()   # a stop whose exception Python dropped between two runs of a sweep
        record = run(cfg, output_dir, tensorboard_root, in_sweep=in_sweep)
    except BaseException as error:
        return _run_ended_by(error, output_dir, in_sweep)
    for line in report_line(record):
        print(line)
    target = str((cfg.get("logger") or {}).get("_target_", ""))
    tracker = "mlflow" if "MLFlow" in target else "wandb" if "Wandb" in target else None
    if record.get("reused_from") and tracker:   # a reused run trains nothing, so it logs nothing
        print(f"dashboards: a reused run is not logged again; seqbench export "
              f"{Path(str(record['reused_from'])).parent} --to {tracker} puts finished runs there without training")
    # checkpoints, estimate: imported where used, so --help and --cfg job do not pay for them (~25 ms)
    from .checkpoints import _size, settle   # a done run keeps its best weights; last.ckpt only until then
    try:
        freed = settle(record, cfg.get("checkpoints", "best"))
    except Exception as error:   # the run is done and recorded: trimming its files is a courtesy
        if debugging():
            raise
        print(f"checkpoints: kept as written ({type(error).__name__}: {error})", file=sys.stderr)
        freed = 0
    if freed:
        print(f"checkpoints: the best weights kept; {_size(freed)} of state for resuming removed, the run being done "
              f"(checkpoints=all keeps it)")
    record_dir = Path(record.get("output_dir", output_dir))
    if (record_dir / "record.json").is_file():
        print(f"record: {record_dir / 'record.json'}")
    if record["status"] not in ("done", "skipped") and not in_sweep:
        sys.exit(1)
    value = next(iter((record.get("val_best") or {}).values()), None)
    return float(value) if value is not None else None


def cli() -> None:
    """The ``seqbench`` console command: a tool's name first dispatches to it, anything else is a run."""
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        name = sys.argv[1]
        module = importlib.import_module(SUBCOMMANDS[name][0])
        # --config-dir DIR: every command composes with the user's config folders (search keeps the
        # flag in its own command line, which its report prints)
        rest = sys.argv[2:] if name == "search" else take_config_dirs(sys.argv[2:])
        sys.argv = [f"seqbench {name}", *rest]
        module.main()
        return
    if "--dry-run" in sys.argv[1:]:  # the plan of this very command, and nothing trained
        from .estimate import main as plan_main
        plan_main(take_config_dirs([a for a in sys.argv[1:] if a != "--dry-run"]))
        return
    register_resolvers()
    if "--debug" in sys.argv[1:]:  # ours, not Hydra's: tracebacks instead of one line
        sys.argv = [a for a in sys.argv if a != "--debug"]
        os.environ["SEQBENCH_DEBUG"] = os.environ["HYDRA_FULL_ERROR"] = "1"
    if not debugging(sys.argv[1:]):
        problem = preflight(sys.argv[1:])
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
    main()


if __name__ == "__main__":
    cli()
