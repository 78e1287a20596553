"""Estimates that agree: the sweep after a dry run uses the dry run's probes; a search's estimate
honours its space; a budget too small for its sampler or pruner is said before it starts; trial
numbers are the log's everywhere."""
import json

from omegaconf import OmegaConf

from seqbench.estimate import describe, make_plan
from seqbench.search import budget_warnings, search_plan_line, summarise
from tests.conftest import TINY


def test_the_sweeps_plan_after_a_dry_run_uses_its_probes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))   # no probe of another test's
    sweep = [f"paths.output_root={tmp_path}", *TINY, "model=gru,rnn", "dataset=sincos", "seed=0,1"]
    assert all(r.seconds is None for r in make_plan(sweep, probe=False).runs)   # nothing probed, nothing finished
    dry = make_plan(sweep)                          # the dry run times a probe of each variant
    again = make_plan(sweep, probe=False)           # what the sweep prints as it starts
    assert [r.seconds for r in again.runs] == [r.seconds for r in dry.runs] and all(r.seconds for r in again.runs)
    assert not any("no estimate" in line for line in describe(again))


def _run(folder, model, hidden, seconds, **extra):
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({
        "status": "done", "model": model, "dataset": "trec", "seed": 0, "config_hash": f"h{hidden}{seconds}",
        "wall_seconds": seconds, "config": {"model": {"hidden_size": hidden}}, **extra}))


def test_the_search_estimate_honours_the_given_space(tmp_path):
    base = OmegaConf.create({"dataset": {"name": "trec"}, "paths": {"output_root": str(tmp_path / "out")}})
    _run(tmp_path / "out" / "big", "gru", 256, 600.0)      # a default run, outside the space
    settings = {"trials": 2, "retrain_seeds": [], "space": {"model.hidden_size": "choice(16, 32)"}}
    line = search_plan_line(tmp_path / "search", base, ["gru"], settings, jobs=1)
    assert "about 20 min" in line and "timed by runs outside the given space" in line, line
    _run(tmp_path / "out" / "small", "gru", 32, 60.0)      # one inside it: the estimate is its time
    line = search_plan_line(tmp_path / "search", base, ["gru"], settings, jobs=1)
    assert "about 2 min" in line and "outside" not in line, line


def test_the_typed_variant_name_finds_its_recorded_runs_for_the_estimate(tmp_path):
    base = OmegaConf.create({"dataset": {"name": "trec"}, "paths": {"output_root": str(tmp_path / "out")}})
    _run(tmp_path / "out" / "a", "bilstm_attn_additive", 128, 120.0)
    line = search_plan_line(tmp_path / "search", base, ["bilstm_attn"], {"trials": 1, "retrain_seeds": []}, jobs=1,
                            recorded={"bilstm_attn": "bilstm_attn_additive"})
    assert "yet to estimate from" not in line and "about 2 min" in line, line


def test_a_budget_too_small_for_the_sampler_or_the_pruner_is_said():
    small = {"trials": 3, "startup_trials": 4, "pruner_startup_trials": 3}
    warnings = budget_warnings(small)
    assert len(warnings) == 2
    assert "leaves 1 random start-up trial(s) of the 4 asked" in warnings[0] and "at least 12 trials" in warnings[0]
    assert "the pruner never prunes" in warnings[1]
    assert budget_warnings({"trials": 12, "startup_trials": 4, "pruner_startup_trials": 3}) == []


def test_an_epoch_budget_that_fits_fewer_trials_than_the_start_up_is_said():
    """budget_epochs binds before trials: 60 epochs for trials (80 less 20 for the choice) fit 2 full
    trials of 30 epochs, fewer than 4 start-up trials; at 10 epochs a trial, 6 fit and nothing is said."""
    settings = {"trials": 40, "startup_trials": 4, "pruner_startup_trials": 3, "budget_epochs": 80,
                "choice_top": 3, "choice_seeds": 2, "choice_epochs": 20}
    warnings = budget_warnings(settings, {"gru": 30, "lstm": 10})
    assert len(warnings) == 1 and "budget_epochs=80 leaves 60 epochs" in warnings[0] and "gru 2" in warnings[0]
    assert "lstm" not in warnings[0]
    assert budget_warnings(settings, {"lstm": 10}) == [] and budget_warnings(settings) == []


def test_the_best_trial_is_numbered_as_the_log_counts_trials():
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("budget_trials", 3)
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for k, value in ((1, 0.5), (None, None), (None, None), (2, 0.9)):   # failed trials between: not counted
        trial = study.ask(space)
        if k is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        trial.set_user_attr("k", k)
        study.tell(trial, value)
    # Optuna's id of the best trial is 3 (0-based, the failures counted); the log said "trial 2 of 3"
    assert study.best_trial.number == 3 and summarise(study)["best_trial"] == 2
    study.tell(study.ask(space), 0.95)   # a trial without k (an older study): Optuna's number + 1
    assert summarise(study)["best_trial"] == 5
