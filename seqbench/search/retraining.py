"""The protocol's last step: each variant's best configuration retrained over seeds and tested
once; and what a search's runs keep and say (their best weights, no lines of their own)."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .. import run as runner   # called as runner.run, as the trials are
from ..checkpoints import settle
from ..runtime import quiet_third_party
from .progress import _minutes, _value
from .space import check_settings, checked_params, compose, override_value

log = logging.getLogger(__name__)


def retrain(config_dir: str, overrides: list[str], variant: str, params: dict, seeds: list[int], root: str,
            summary: dict, threads: int | None = None, extra_dirs: list[str] | None = None) -> list[dict]:
    """The variant's best configuration, trained and tested once per seed, in folders keyed by
    its study (claimed like any run: a second search waits for the first, then reuses)."""
    import torch
    quiet_third_party()
    _quiet_runs()
    if threads:
        torch.set_num_threads(threads)
    from omegaconf import OmegaConf
    base = compose(config_dir, [*overrides, f"model={variant}"], extra_dirs)
    settings = OmegaConf.to_container(base.hparams_search, resolve=True)
    space = check_settings(settings, {variant: OmegaConf.to_container(base, resolve=True)})[variant]
    params = checked_params(params, space, f"the best trial of study {summary['study']}")
    records, spent = [], []
    for seed in seeds:
        cfg = compose(config_dir, [*overrides, f"model={variant}", f"seed={seed}",
                                   *[f"{k}={override_value(v)}" for k, v in params.items()],
                                   f"paths.output_root={Path(root) / 'retrain'}", "claimed=wait"], extra_dirs)
        # "trials" is the cap; what the study spent (distinct finished trials, training epochs) beside it
        tags = {"tuned": {"study": summary["study"], "trials": summary["budget_trials"],
                          "trials_finished": summary.get("finished_distinct"), "epochs_trained": summary.get("epochs"),
                          "best_trial": summary["best_trial"], "params": params}}
        folder = Path(root) / "retrain" / summary["study"] / f"s{seed}"
        began = time.perf_counter()
        record = runner.run(cfg, folder, in_sweep=True, tags=tags)
        _settle(record, cfg)
        records.append(record)
        if not record.get("reused_from"):
            spent.append(time.perf_counter() - began)
        test = (record.get("test") or {}).get(summary.get("metric") or "")
        left = len(seeds) - len(records)
        outcome = (f"test {summary.get('metric')} {_value(test)}" if test is not None else f"{record.get('status')}")
        print(f"{variant} (tuned): retrained seed {seed} ({len(records)} of {len(seeds)}): {outcome}"
              + (" (reused)" if record.get("reused_from") else "")
              + (f"; {_minutes(left * sum(spent) / len(spent))} left" if left and spent else ""), flush=True)
    return records


def _settle(record: dict, cfg) -> None:
    """A finished trial or retrained run keeps its best weights only (``checkpoints=all``: all)."""
    try:
        settle(record, cfg.get("checkpoints", "best"))
    except Exception as error:   # the run is recorded; its files as written are no failure
        log.warning("checkpoints of %s kept as written: %s", record.get("output_dir"), error)


def _quiet_runs() -> None:
    """A search's runs say nothing of their own on the console (their epochs and plans are in their
    records and logs): the search's lines, trial by trial, are what a person watches."""
    for name in ("seqbench.progress", "seqbench.run"):
        logging.getLogger(name).setLevel(logging.WARNING)
