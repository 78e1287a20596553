"""What a person sees of a search: before it starts, what is finished and what the rest costs; while
it runs, a line per trial with its value, the best so far and the time left."""
from __future__ import annotations

import statistics
from pathlib import Path

from .space import in_space


def _minutes(seconds: float) -> str:
    return "under a minute" if seconds < 60 else f"about {seconds / 60:.0f} min"


def _value(value) -> str:
    """A metric as a person reads it: three significant digits."""
    return "–" if value is None else f"{value:.3g}"


class TrialWatch:
    """What a person watching a search sees of one variant, a line as each trial ends: trial k of
    N with its value (or pruned, failed), the best so far, and the time left, estimated from the
    trials this search trained (a run reused from an earlier search took seconds and is left out),
    with the retraining after the search. Printed (flushed) from whichever process runs the study."""

    def __init__(self, variant: str, budget: int, metric: str, higher: bool, retrain_seeds: int):
        self.variant, self.budget, self.metric, self.higher = variant, budget, metric, higher
        self.retrain_seeds = retrain_seeds
        self.trained: list[float] = []      # wall seconds of trials trained here
        self.complete: list[float] = []     # of those that ran to the end (what a retraining costs)

    def say(self, text: str) -> None:
        print(f"{self.variant}: {text}", flush=True)

    def start(self, name: str, finished: int) -> None:
        done = f"{finished} finished before, " if finished else ""
        self.say(f"study {name}: {done}{max(self.budget - finished, 0)} of {self.budget} trials to run, then "
                 f"{self.retrain_seeds} retraining seed{'s' if self.retrain_seeds != 1 else ''}")

    def time_left(self, finished: int) -> str:
        if not self.trained:
            return ""
        per_trial = sum(self.trained) / len(self.trained)
        per_run = sum(self.complete) / len(self.complete) if self.complete else per_trial
        left = max(self.budget - finished, 0) * per_trial + self.retrain_seeds * per_run
        return f"; {_minutes(left)} left for {self.variant} (retraining included)"

    def ended(self, number: int, outcome: str, best, finished: int, seconds: float | None, params: dict,
              complete: bool = False) -> None:
        from ..report import parameter_words   # the report's modules (pandas, scipy): loaded when used
        if seconds is not None:
            self.trained.append(seconds)
            if complete:
                self.complete.append(seconds)
        best_words = f"; best so far {_value(best.value)} (trial {best.user_attrs.get('k', best.number + 1)})" \
            if best is not None else ""
        self.say(f"trial {number} of {self.budget}: {outcome} ({parameter_words(params)}){best_words}"
                 f"{self.time_left(finished)}")


def search_plan_line(root: Path, base, variants: list[str], settings: dict, jobs: int,
                     default_runs: list[str] | tuple = (), recorded: dict[str, str] | None = None) -> str:
    """Before the search starts: the trials and retrainings already finished (under the search
    folder and the output root), and the time the rest takes at the median wall time of finished
    runs of the same model on this data set (search trials included, and the ``--default-runs``
    folders, whose runs only time the others)."""
    from ..results import load_records   # pandas: loaded when the plan is made
    dataset = str(base.dataset.name)
    folders = [f for f in {root, Path(base.paths.output_root), *map(Path, default_runs)} if f.is_dir()]
    records = [r for r in load_records(folders, include_debug=True) if r.get("status") == "done"
               and r.get("dataset") == dataset] if folders else []
    trials, retrains = int(settings["trials"]), len(settings.get("retrain_seeds") or [])
    budget_epochs = settings.get("budget_epochs")
    left, seconds, done = 0, 0.0, 0
    unknown, outside = [], []
    for variant in variants:
        own = [r for r in records if r.get("model") == (recorded or {}).get(variant, variant)]
        # Timed by the runs inside the given space where there are any (a smaller hidden size trains faster).
        inside = [r for r in own if in_space(r, settings.get("space") or {})]
        if inside:
            own = inside
        elif own:
            outside.append(variant)
        # Only this search's trials and retrainings count as finished (the default runs are not part of it).
        finished = min(trials, sum(1 for r in own if r.get("search"))) + min(
            retrains, sum(1 for r in own if r.get("tuned")))
        done += finished
        remaining = trials + retrains - finished
        left += remaining
        times = [r["wall_seconds"] for r in own if isinstance(r.get("wall_seconds"), (int, float))]
        per_epoch = [r["wall_seconds"] / r["epochs"] for r in own
                     if isinstance(r.get("wall_seconds"), (int, float)) and r.get("epochs")]
        if remaining and times and budget_epochs and per_epoch:
            # an epoch budget: what is left of it at this model's seconds per epoch, then the retrainings
            spent = sum(int(r.get("epochs") or 0) for r in own if r.get("search"))
            seconds += (max(0, budget_epochs - spent) * statistics.median(per_epoch)
                        + (retrains - min(retrains, sum(1 for r in own if r.get("tuned")))) * statistics.median(times))
        elif remaining and times:
            seconds += remaining * statistics.median(times)
        elif remaining:
            unknown.append(variant)
    words = f"plan: {done} of {len(variants) * (trials + retrains)} trainings already finished, {left} to run"
    if seconds:
        words += (f"; about {seconds / 60:.0f} min of training at the median time of finished {dataset} runs of the "
                  f"same models" + (f", about {seconds / 60 / jobs:.0f} min with {jobs} at a time" if jobs > 1 else ""))
    if outside:
        words += (f"; {', '.join(outside)} timed by runs outside the given space (no run inside it yet): a rough "
                  f"guide")
    if unknown:
        words += f"; no finished {dataset} run of {', '.join(unknown)} yet to estimate from"
    return words
