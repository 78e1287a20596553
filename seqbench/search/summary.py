"""What a study did, summarised: its trials by state (repeats and trials a stopped process left
behind not counted), the chosen trial (the best mean over its re-runs, where the best were re-run),
what bounded it, its epochs and minutes; studies.md (+ .json) for the report."""
from __future__ import annotations

import json
from pathlib import Path

from .storage import open_storage

COUNTED = ("COMPLETE", "PRUNED")  # trial states that use up the budget


def _failures(trials) -> list:
    """Trials that failed on their own: not repeats of a finished trial (never run), not trials a
    stopped process left behind (asked again)."""
    retried = {t.user_attrs.get("retry_of") for t in trials}
    return [t for t in trials if t.state.name == "FAIL" and t.user_attrs.get("duplicate_of") is None
            and t.number not in retried]


def _distinct_finished(trials) -> list:
    """Finished trials, one per distinct set of parameters (the first)."""
    seen, out = set(), []
    for trial in trials:
        if trial.state.name in COUNTED:
            key = json.dumps(trial.params, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(trial)
    return out


def _chosen(complete: list, choice: dict | None, higher: bool):
    """The best complete trial by the mean of its own score and its re-runs' (``choose_robustly``),
    with that mean; without re-runs, the best single score."""
    if not complete:
        return None, None
    if not choice or not choice.get("runs"):
        best = (max if higher else min)(complete, key=lambda t: t.value)
        return best, best.value
    by_number = {t.number: t for t in complete}
    means = {}
    for number in choice["candidates"]:
        if number in by_number:
            scores = [by_number[number].value, *[r["value"] for r in choice["runs"]
                                                  if r["trial"] == number and r["value"] is not None]]
            means[number] = sum(scores) / len(scores)
    if not means:
        best = (max if higher else min)(complete, key=lambda t: t.value)
        return best, best.value
    number = (max if higher else min)(means, key=means.get)
    return by_number[number], means[number]


def summarise(study, seconds: float | None = None, max_failed: int | None = None,
              budget_epochs: int | None = None) -> dict:
    trials = study.get_trials(deepcopy=False)
    finished = _distinct_finished(trials)
    states = {state: sum(t.state.name == state for t in finished) for state in ("COMPLETE", "PRUNED")}
    states["FAIL"] = len(_failures(trials))
    states["RUNNING"] = sum(t.state.name == "RUNNING" for t in trials)
    duplicates = sum(t.user_attrs.get("duplicate_of") is not None for t in trials)
    complete = [t for t in finished if t.state.name == "COMPLETE"]
    higher = study.direction.name == "MAXIMIZE"
    choice = study.user_attrs.get("choice")
    best, best_value = _chosen(complete, choice, higher)
    epochs = [t.user_attrs.get("epochs") or 0 for t in trials]
    choice_runs = (choice or {}).get("runs") or []
    spent = sum(t.user_attrs.get("seconds") or 0 for t in trials) + sum(r.get("seconds") or 0 for r in choice_runs)
    pruned_epochs = sum(t.user_attrs.get("epochs") or 0 for t in finished if t.state.name == "PRUNED")
    full = [t.user_attrs.get("epochs") or 0 for t in complete]
    per_epoch = spent / sum(epochs) if sum(epochs) else 0.0
    saved = max(0.0, (states["PRUNED"] * (sum(full) / len(full)) - pruned_epochs) * per_epoch) if full else 0.0
    budget = study.user_attrs.get("budget_trials")
    stopped = study.user_attrs.get("stopped")
    if stopped:
        bound = f"stopped: {stopped}"
    elif budget_epochs and len(finished) < (budget or 0):
        bound = f"epochs ({sum(epochs) + sum(r['epochs'] for r in choice_runs)} of {budget_epochs})"
    else:
        bound = f"trials ({len(finished)} of {budget})"
    failed = bool(max_failed and states["FAIL"] >= max_failed) or not complete
    return {"study": study.study_name, "variant": study.user_attrs.get("variant"), "budget_trials": budget,
            "metric": study.user_attrs.get("metric"), **states,
            "duplicates": duplicates, "finished_distinct": len(finished),
            "epochs": sum(epochs) + sum(r["epochs"] for r in choice_runs), "search_epochs": sum(epochs),
            "choice_epochs": sum(r["epochs"] for r in choice_runs), "bound": bound,
            "failed": failed, "best_value": best_value,
            # numbered as the log counts trials (the k-th distinct finished one), not Optuna's 0-based ids
            "best_trial": best.user_attrs.get("k", best.number + 1) if best else None,
            "best_params": best.params if best else None, "choice": choice,
            # every distinct finished trial's best validation score, in trial order (budget curves)
            "trial_values": [t.value if t.state.name == "COMPLETE" else t.user_attrs.get("val_best")
                             for t in sorted(finished, key=lambda t: t.number)],
            "training_minutes": spent / 60,
            "wall_minutes_this_session": (seconds or 0) / 60, "pruning_saved_minutes_estimate": saved / 60}


def _stored_summaries(settings: dict, root: Path, dataset: str, variants: list[str]) -> dict:
    import optuna
    storage = open_storage(settings, root, dataset, heartbeat=False)
    out = {}
    for frozen in storage.get_all_studies():
        variant = frozen.user_attrs.get("variant")
        if variant in variants:
            study = optuna.load_study(study_name=frozen.study_name, storage=storage)
            out[frozen.study_name] = summarise(study)
    return out


def write_study_summaries(summaries: dict, path: Path, dataset: str, search_minutes: float,
                          retrain_minutes: float) -> None:
    from ..report import parameter_words   # the report's modules (pandas, scipy): loaded when written
    lines = [f"# Hyper-parameter search: {dataset}", "",
             f"Every variant: the same budget (training epochs where budget_epochs is set, else distinct finished "
             f"trials) over the same space (where a key applies); "
             f"objective: the best validation metric; test split never read. Wall time of this command: search "
             f"{search_minutes:.1f} min, retraining {retrain_minutes:.1f} min (a resumed search counts only what "
             f"it ran itself; \"training minutes\" counts every trial). \"Bound\": what ended each study. "
             f"\"Best validation\": the chosen trial's mean over its seed and its choice re-runs' seeds, where the "
             f"best trials were re-run (hparams_search.choice_top); budget curves in budget_curves.csv.", "",
             "| study | trials finished (budget) | complete | pruned | failed | repeats not run | bound | best validation "
             "| best trial | best parameters | training epochs (trials + choice) | training minutes "
             "| pruning saved (estimate, minutes) |",
             "|" + " --- |" * 13]
    for summary in summaries.values():
        params = parameter_words(summary["best_params"] or {})
        best = f"{summary['best_value']:.4g}" if summary["best_value"] is not None else "–"
        lines.append(f"| {summary['study']} | {summary['finished_distinct']} ({summary['budget_trials']}) | "
                     f"{summary['COMPLETE']} | {summary['PRUNED']} | {summary['FAIL']} | {summary['duplicates']} | "
                     f"{summary['bound']}{' (failed: not tuned)' if summary.get('failed') else ''} | {best} | "
                     f"{summary['best_trial'] if summary['best_trial'] is not None else '–'} | {params} | "
                     f"{summary.get('search_epochs', summary['epochs'])} + {summary.get('choice_epochs', 0)} | "
                     f"{summary['training_minutes']:.1f} | {summary['pruning_saved_minutes_estimate']:.1f} |")
    path.write_text("\n".join(lines) + "\n")
    (path.with_suffix(".json")).write_text(json.dumps(summaries, indent=2, default=str) + "\n")
