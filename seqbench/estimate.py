"""``seqbench plan OVERRIDES...`` (or a run or sweep command with ``--dry-run``): what a command
would run and what it would cost on this machine, before it runs. Nothing is trained.

For every job of the command (the product of its swept values, the experiment's sweep included):
its run identity, exactly as the run would compute it (config, code and data fingerprints), and
whether a finished run with that identity is already under ``paths.output_root`` (then it is
reused, not trained). Each run still to train gets an estimate of its wall time:

1. the median wall time of finished runs of the same variant on the same data (other seeds);
2. else of the same model on the same data set with other settings;
3. else a timed probe: a few training steps of the real network on the real batches, scaled to
   ``max_epochs`` full epochs (an upper bound: early stopping usually ends a run sooner).

Jobs a launcher runs at once (``hydra.launcher.n_jobs``) divide the total. A sweep prints the same
plan (from finished runs only, no probes) before its first job starts.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from . import SeqbenchError
from .files import read_json
from .names import register_resolvers
from .record import _cpu_model, write_json_atomic
from .runtime import compose_configs, entry_point, flush_denormals, keep_freed_memory, set_threads

PROBE_STEPS = 8
PROBE_WARMUP = 2
BUSY_PROBE = 0.7  # a probe that got less of its CPU time than this says its estimate is inflated


@dataclass
class PlannedRun:
    overrides: list[str]
    variant: str
    dataset: str
    seed: int
    config_hash: str
    done: bool
    label: str = ""           # the variant, and the swept settings that tell its jobs apart
    seconds: float | None = None
    source: str = ""          # where the estimate comes from


@dataclass
class Plan:
    runs: list[PlannedRun]
    jobs: int                 # runs a launcher trains at once
    root: Path
    probe_cpu_share: float = 1.0  # the least CPU share a timed probe got (1: a core to itself)

    @property
    def pending(self) -> list[PlannedRun]:
        return [r for r in self.runs if not r.done]


def job_overrides(overrides: list[str]) -> tuple[list[list[str]], dict, int]:
    """(each job's overrides, the composed base config, jobs at once), as Hydra's basic sweeper
    would split them: the experiment's ``hydra.sweeper.params`` first, the command line after."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf
    register_resolvers()
    parser = OverridesParser.create()
    # The base config without swept values (a sweep cannot be composed), to read the experiment's sweep.
    plain = [o for o in overrides if not parser.parse_override(o).is_sweep_override()]
    base = compose_configs([plain], return_hydra_config=True)[0]
    params = base.hydra.sweeper.get("params")
    params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
    combined = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    parsed = parser.parse_overrides(combined)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    launcher = base.hydra.get("launcher") or {}
    n_jobs = launcher.get("n_jobs") if "joblib" in str(launcher.get("_target_", "")) else 1
    return jobs, base, int(n_jobs) if isinstance(n_jobs, int) and n_jobs > 0 else 1


def _finished(root: Path) -> list[dict]:
    from .results import load_records
    return [r for r in load_records([root]) if r.get("status") == "done"] if root.is_dir() else []


def _median_wall(records: list[dict]) -> float | None:
    times = [r["wall_seconds"] for r in records if isinstance(r.get("wall_seconds"), (int, float))]
    return statistics.median(times) if times else None


def epochs_share(records: list[dict]) -> float | None:
    """The median share of their epoch cap that finished runs trained (early stopping ends most
    runs sooner); None without finished runs."""
    shares = []
    for record in records:
        cap = ((record.get("config") or {}).get("trainer") or {}).get("max_epochs")
        if isinstance(record.get("epochs"), int) and isinstance(cap, int) and cap > 0:
            shares.append(min(1.0, record["epochs"] / cap))
    return statistics.median(shares) if shares else None


def probe_seconds(cfg, jobs: int) -> tuple[float, float]:
    """Seconds one run of ``cfg`` would take at most: a few timed training steps (forward, backward,
    clipping, optimiser) on its real first batches, scaled to max_epochs epochs; and the share of its
    threads' time the probe got from the CPU (well under 1: other work, or ``nice``, slowed it down)."""
    import torch
    from omegaconf import OmegaConf

    from .data.declare import build_datamodule
    from .run import prepare
    from .training import build_task
    prepared = prepare(cfg)
    set_threads(cfg.get("torch_threads"), jobs)
    flush_denormals(cfg.get("flush_denormal", True))
    keep_freed_memory(cfg.get("keep_freed_memory", True))
    datamodule = build_datamodule(prepared.config["dataset"], cfg.seed, False, prepared.located)
    datamodule.setup()
    task = build_task(prepared.config, prepared.network, datamodule.spec)
    optimizer = task.configure_optimizers()
    if isinstance(optimizer, dict):  # with a scheduler (a warmup: bitransformer), as Lightning takes it
        scheduler = optimizer["lr_scheduler"]["scheduler"]
        optimizer = optimizer["optimizer"]
    else:
        scheduler = None
    loader = datamodule.train_dataloader()
    steps_per_epoch = len(loader)
    clip = cfg.trainer.get("gradient_clip_val")
    timed, started, cpu_started = 0, None, None
    task.train()
    for number, batch in enumerate(loader):
        if number == PROBE_WARMUP:
            started, cpu_started = time.perf_counter(), time.process_time()
        loss = task.training_step(batch, number)
        loss.backward()
        task.configure_gradient_clipping(optimizer, clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if started is not None:
            timed += 1
        if timed == PROBE_STEPS:
            break
    if not timed:
        return 0.0, 1.0
    wall = time.perf_counter() - started
    cpu_share = (time.process_time() - cpu_started) / (wall * torch.get_num_threads())
    per_step = wall / timed
    epochs = OmegaConf.to_container(cfg.trainer, resolve=True).get("max_epochs") or 1
    torch.set_flush_denormal(False)
    return per_step * steps_per_epoch * epochs, min(cpu_share, 1.0)


PROBES_NAME = "probes.json"


def _probes_file() -> Path:
    from .data.sources import user_cache_dir
    return user_cache_dir() / PROBES_NAME


def _probe_key(identity, jobs: int) -> str:
    """What a probe's time depends on: the run (config, code, data) and how many share the machine."""
    return f"{identity.config_hash}|{identity.code}|{identity.data}|{jobs}|{_cpu_model()}"


def stored_probes() -> dict:
    """Probes timed earlier on this machine (a dry run's), by ``_probe_key``: [seconds, cpu share]."""
    try:
        probes = read_json(_probes_file())
    except (OSError, ValueError):
        return {}
    return probes if isinstance(probes, dict) else {}


def store_probes(new: dict) -> None:
    """Keep this plan's probes for the sweep that follows (its own plan does not probe)."""
    if not new:
        return
    try:
        write_json_atomic(_probes_file(), {**stored_probes(), **new})
    except OSError:  # a read-only cache only costs the sweep its estimate
        pass


def make_plan(overrides: list[str], probe: bool = True) -> Plan:
    """The plan of a command's overrides; ``probe=False`` times nothing, and leaves runs with no
    finished relative unestimated unless an earlier plan (a dry run) probed them on this machine."""
    from .run import prepare, variant_name
    jobs, base, n_jobs = job_overrides(overrides)
    root = Path(base.paths.output_root)
    finished = _finished(root)
    done_keys = {r.get("run_key") for r in finished if r.get("test")}
    runs, probed, probe_shares = [], {}, {}
    earlier, timed = stored_probes(), {}
    # What tells two jobs of one variant apart in the listing: the swept keys besides model, data and seed.
    values: dict[str, set] = {}
    for job in jobs:
        for override in job:
            values.setdefault(override.split("=", 1)[0], set()).add(override)
    differing = {key for key, seen in values.items() if len(seen) > 1} - {"model", "dataset", "seed"}
    configs = compose_configs(jobs)  # Hydra set up once, not per job
    for job, cfg in zip(jobs, configs):
        prepared = prepare(cfg)
        identity = prepared.identity
        setting = ", ".join(o for o in job if o.split("=", 1)[0] in differing)
        run = PlannedRun(job, variant_name(cfg), str(cfg.dataset.name), int(cfg.seed), identity.config_hash,
                         identity.key in done_keys, label=f"{variant_name(cfg)}{f' ({setting})' if setting else ''}")
        if not run.done:
            same_variant = [r for r in finished if r.get("config_hash") == identity.config_hash
                            and r.get("data_fingerprint") == identity.data]
            same_model = [r for r in finished if r.get("model") == run.variant and r.get("dataset") == run.dataset]
            variant_seconds, model_seconds = _median_wall(same_variant), _median_wall(same_model)
            if variant_seconds is not None:
                run.seconds, run.source = variant_seconds, f"{len(same_variant)} finished run(s) of it"
            elif model_seconds is not None:
                run.seconds, run.source = (model_seconds,
                                           f"{len(same_model)} finished run(s) of {run.variant} with other settings")
            elif probe or _probe_key(identity, n_jobs) in earlier:
                key = _probe_key(identity, n_jobs)
                if identity.config_hash not in probed:
                    if key in earlier:   # the dry run before this sweep timed it: the same estimate
                        probed[identity.config_hash], probe_shares[identity.config_hash] = earlier[key]
                    else:
                        probed[identity.config_hash], probe_shares[identity.config_hash] = probe_seconds(cfg, n_jobs)
                        timed[key] = [probed[identity.config_hash], probe_shares[identity.config_hash]]
                share = epochs_share([r for r in finished if r.get("dataset") == run.dataset])
                if share is None:
                    run.seconds, run.source = probed[identity.config_hash], "a timed probe (upper bound: every epoch)"
                else:  # early stopping: as many epochs as finished runs on this data set trained
                    run.seconds = probed[identity.config_hash] * share
                    run.source = (f"a timed probe, scaled to the {share:.0%} of max_epochs that finished {run.dataset} "
                                  f"runs trained")
        runs.append(run)
    store_probes(timed)
    return Plan(runs, n_jobs, root, min(probe_shares.values(), default=1.0))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(plan: Plan) -> list[str]:
    """The plan in a few lines: counts, the total estimate, one line per variant still to run."""
    pending = plan.pending
    lines = [f"plan: {len(plan.runs)} run{'s' if len(plan.runs) != 1 else ''}: {len(plan.runs) - len(pending)} "
             f"already done under {plan.root} (reused, not trained), {len(pending)} to train"]
    if not pending:
        return lines
    known = [r.seconds for r in pending if r.seconds is not None]
    unknown = len(pending) - len(known)
    if known:
        total = sum(known)
        parallel = f"; {plan.jobs} jobs at a time: about {_duration(total / plan.jobs)} of wall time" \
            if plan.jobs > 1 else ""
        lines.append(f"estimate on this machine: about {_duration(total)} of training"
                     f"{' for the ' + str(len(known)) + ' estimated runs' if unknown else ''}{parallel}")
    if plan.probe_cpu_share < BUSY_PROBE:
        lines.append(f"caveat: a timed probe got only {plan.probe_cpu_share:.0%} of the CPU time it asked for (other "
                     f"work on this machine, or nice): its estimates are too long by up to "
                     f"{1 / max(plan.probe_cpu_share, 0.01):.1f}x for a machine the runs have to themselves")
    if unknown:
        lines.append(f"no estimate for {unknown} run{'s' if unknown != 1 else ''}: no finished run of the same "
                     f"model and data set yet (`seqbench plan ...` times a probe of each)")
    groups: dict[tuple, list[PlannedRun]] = {}
    for run in pending:
        groups.setdefault((run.label, run.dataset, run.config_hash), []).append(run)
    for (label, dataset, _), members in groups.items():
        seconds = members[0].seconds
        each = f"about {_duration(seconds)} each, from {members[0].source}" if seconds is not None else "no estimate"
        seeds = ",".join(str(r.seed) for r in members)
        lines.append(f"  {label} on {dataset}, seed {seeds}: {each}")
    return lines


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqbench plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="the run's or sweep's overrides, as given to seqbench "
                        "(-m / --multirun may be left in)")
    parser.add_argument("--no-probe", action="store_true", help="estimate from finished runs only")
    parser.add_argument("--json", default=None, help="also write the counts and the estimate to this file "
                        "(a sweep reads it for its 'min left')")
    multirun = [a for a in (argv or []) if a in ("-m", "--multirun")][:1]
    argv = [a for a in (argv or []) if a not in ("-m", "--multirun", "--dry-run")]  # a sweep's flags, as typed
    args = parser.parse_args(argv)
    overrides = args.overrides
    from .composition import preflight
    register_resolvers()
    problem = preflight([*multirun, *overrides])   # the main command's one-line errors, before any work
    if problem:
        raise SeqbenchError(problem)
    plan = make_plan(overrides, probe=not args.no_probe)
    print("\n".join(describe(plan)))
    if args.json:
        known = [r.seconds for r in plan.pending if r.seconds is not None]
        write_json_atomic(Path(args.json), {"runs": len(plan.runs), "to_train": len(plan.pending),
                                            "estimated_seconds": sum(known), "unestimated": len(plan.pending) - len(known),
                                            "jobs": plan.jobs})
