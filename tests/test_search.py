"""Equal-budget hyper-parameter search on tiny generated data: budgets that count distinct
finished trials, studies keyed by their space and data, kills, two searches at once, typos,
corrupt databases, signals, and the whole protocol from the command line."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from seqbench.data.modules import GeneratedData
from seqbench.search import SearchSpaceError, applies, check_settings, distributions, search_variant
from tests.conftest import CONFIG_DIR, TINY

SEARCH = ["hparams_search=sincos", *[o for o in TINY if not o.startswith("dataset.")], "dataset.n_train=48",
          "dataset.n_val=32", "dataset.n_test=32", "dataset.seq_len=16", "dataset.warmup_steps=2",
          "hparams_search.trials=2", "hparams_search.variants=[rnn,gru]", "hparams_search.retrain_seeds=[1]",
          "hparams_search.startup_trials=1", "hparams_search.pruner_startup_trials=1",
          "hparams_search.choice_top=0"]   # no re-runs for the choice unless a test asks


def studies(root: Path) -> dict[str, optuna.Study]:
    storage = f"sqlite:///{root / 'sincos.db'}"
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
            for s in optuna.get_all_study_summaries(storage)}


def cli(*args, cwd, timeout=900):
    return subprocess.run([sys.executable, "-m", "seqbench", "search", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_search_spaces_are_written_in_hydra_override_syntax():
    space = distributions({"optimizer.lr": "tag(log, interval(1e-4, 1e-2))", "model.hidden_size": "choice(64, 128)",
                           "dataset.dropout": "interval(0.0, 0.5)", "dataset.batch_size": "int(interval(16, 64))",
                           "model.num_layers": "range(1, 4)"})
    assert space["optimizer.lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert space["model.hidden_size"] == optuna.distributions.CategoricalDistribution([64, 128])
    assert space["dataset.dropout"] == optuna.distributions.FloatDistribution(0.0, 0.5)
    assert space["dataset.batch_size"] == optuna.distributions.IntDistribution(16, 64)
    assert space["model.num_layers"] == optuna.distributions.IntDistribution(1, 3)
    assert applies("model.attention_dim", {"pooling": "attention"}) and not applies("model.attention_dim",
                                                                                     {"pooling": "last"})


@pytest.mark.parametrize("change,message", [
    ({"space": {"model.hiden_size": "choice(8, 16)"}}, "hparams_search.space.model.hiden_size: unknown key; did you "
                                                        "mean 'model.hidden_size'?"),
    ({"space": {"optimizer.lrr": "interval(0.001, 0.01)"}}, "unknown key; did you mean 'optimizer.lr'?"),
    ({"space": {}}, "hparams_search.space is empty"),
    ({"trials": 0}, "hparams_search.trials=0: must be a whole number >= 1"),
    ({"space": {"optimizer.lr": "interval(0.01, 0.001)"}}, "the interval is reversed"),
    ({"space": {"optimizer.lr": "tag(log, interval(0.0, 0.01))"}}, "a log-scale interval needs a start above 0"),
    ({"space": {"model.attention_dim": "choice(8, 16)"}}, "no key of hparams_search.space applies to rnn"),
    ({"max_failed_trials": 0}, "hparams_search.max_failed_trials=0"),
])
def test_a_bad_space_is_refused_before_anything_runs(change, message):
    settings = {"trials": 3, "variants": ["rnn"], "space": {"optimizer.lr": "interval(0.001, 0.01)"}, **change}
    config = {"model": {"name": "rnn", "hidden_size": 8, "pooling": "last", "attention_dim": None}, "optimizer": {"lr": 0.003},
              "dataset": {"name": "sincos"}, "trainer": {"max_epochs": 2}}
    with pytest.raises(SearchSpaceError) as error:
        check_settings(settings, {"rnn": config})
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow   # the fast lane stays under 5 minutes on 2 cores; CI runs both lanes
def test_the_command_line_says_what_is_wrong_in_one_line_and_exits_2(tmp_path):
    for extra, message in ((["+hparams_search.space.model.hiden_size='choice(8,16)'"], "did you mean 'model.hidden_size'"),
                           (["hparams_search.trials=0"], "hparams_search.trials=0"),
                           (["hparams_search.space={optimizer.lr: 'interval(0.01, 0.001)'}"], "reversed")):
        result = cli(*SEARCH, f"paths.output_root={tmp_path}", *extra, cwd=tmp_path, timeout=300)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr and not (tmp_path / "search" / "trials").exists()
    (tmp_path / "search").mkdir(exist_ok=True)
    (tmp_path / "search" / "sincos.db").write_bytes(b"this is not a database" * 100)
    result = cli(*SEARCH, f"paths.output_root={tmp_path}", cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and "is not a readable study database" in result.stderr
    assert "mv " in result.stderr and "Traceback" not in result.stderr


def test_every_variant_gets_the_same_budget_and_the_test_split_is_never_read(tmp_path, monkeypatch):
    def test_split_read(self):
        raise AssertionError("the search read the test split")
    monkeypatch.setattr(GeneratedData, "test_dataloader", test_split_read)
    overrides = [*SEARCH, f"paths.output_root={tmp_path}"]
    summaries = {variant: search_variant(CONFIG_DIR, overrides, variant, str(tmp_path)) for variant in ("rnn", "gru")}
    for variant, summary in summaries.items():
        assert summary["budget_trials"] == 2 and summary["finished_distinct"] == 2, summary
        study = studies(tmp_path)[summary["study"]]
        assert study.user_attrs["budget_trials"] == 2 and "val" in study.user_attrs["objective"]
        assert study.user_attrs["identity"]["space"] and study.study_name.startswith(f"sincos-{variant}-")
        records = [json.loads(p.read_text()) for p in (tmp_path / "trials" / summary["study"]).glob("*/record.json")]
        assert len(records) == 2 and all("test" not in r and r["search"]["study"] == summary["study"]
                                         for r in records)
    again = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))  # budget spent: nothing more runs
    assert again["finished_distinct"] == 2 and len(studies(tmp_path)[again["study"]].trials) == 2


def test_a_changed_space_is_a_new_study_and_its_best_comes_from_its_own_range(tmp_path, caplog):
    overrides = [*SEARCH, f"paths.output_root={tmp_path}"]
    first = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))
    narrow = ["hparams_search.space={optimizer.lr: 'interval(1e-4, 3e-4)'}"]
    second = search_variant(CONFIG_DIR, [*overrides, *narrow], "rnn", str(tmp_path))
    assert first["study"] != second["study"] and set(studies(tmp_path)) == {first["study"], second["study"]}
    assert 1e-4 <= second["best_params"]["optimizer.lr"] <= 3e-4
    assert f"with another space exists ({first['study']}); this search starts a new study" in caplog.text


def test_repeats_of_finished_trials_are_not_counted_and_a_small_space_ends_when_exhausted(tmp_path):
    """A seeded sampler that proposes a finished configuration again (as a restart used to) gets
    no second run and no second count: two configurations are two trials, not three."""
    overrides = [*SEARCH, f"paths.output_root={tmp_path}", "hparams_search.trials=3",
                 "hparams_search.space={optimizer.lr: 'choice(0.003)', model.hidden_size: 'choice(4, 8)', "
                 "dataset.batch_size: 'choice(16)'}"]
    summary = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))
    study = studies(tmp_path)[summary["study"]]
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 2 and len({t.params["model.hidden_size"] for t in finished}) == 2
    assert summary["finished_distinct"] == 2 and summary["duplicates"] >= 1
    assert "the space holds no configuration beyond the 2 tried" in summary["bound"]


def test_a_trial_left_by_a_killed_process_is_asked_again_and_counted_once(tmp_path, monkeypatch):
    """kill -9 in the second trial, rerun at once: the trial its dead process left RUNNING is
    failed at once (no grace period to wait out), asked again with its own parameters, and the
    study ends with three distinct finished trials, none counted twice."""
    import seqbench.run
    overrides = [*SEARCH, f"paths.output_root={tmp_path}", "hparams_search.trials=3"]
    real_run, calls = seqbench.run.run, []

    def killed_in_second_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)
    monkeypatch.setattr(seqbench.run, "run", killed_in_second_trial)
    with pytest.raises(KeyboardInterrupt):
        search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))
    monkeypatch.undo()
    (study,) = studies(tmp_path).values()
    (orphan,) = [t for t in study.trials if t.state.name == "RUNNING"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study._storage.set_trial_user_attr(orphan._trial_id, "pid", dead.pid)   # its process is gone
    done = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))
    trials = studies(tmp_path)[done["study"]].trials
    assert trials[orphan.number].state.name == "FAIL"
    retried = [t for t in trials if t.user_attrs.get("retry_of") == orphan.number]
    assert len(retried) == 1 and retried[0].params == trials[orphan.number].params
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert done["finished_distinct"] == 3 and len(finished) == 3 and done["FAIL"] == 0
    assert len({json.dumps(t.params, sort_keys=True) for t in finished}) == 3


def test_a_variant_that_always_fails_hits_its_cap_and_is_never_called_tuned(tmp_path):
    overrides = [*SEARCH, f"paths.output_root={tmp_path}", "hparams_search.trials=3", "hparams_search.max_failed_trials=2",
                 "trainer.gradient_clip_val=0", "hparams_search.space={optimizer.lr: 'interval(1e20, 1e30)'}"]
    summary = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))
    assert summary["failed"] and summary["FAIL"] == 2 and "2 failed trials" in summary["bound"]
    assert summary["best_params"] is None


def test_an_equal_compute_budget_stops_at_its_epochs_and_says_so(tmp_path):
    overrides = [*SEARCH, f"paths.output_root={tmp_path}", "hparams_search.trials=10", "hparams_search.budget_epochs=4"]
    summary = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))
    assert summary["finished_distinct"] == 2 and summary["epochs"] == 4 and summary["bound"] == "epochs (4 of 4)"


def test_equal_compute_cuts_the_last_trial_and_the_choice_reruns_the_best_within_the_budget(tmp_path):
    """budget_epochs 9 with 4 kept for the choice: trials of 2, 2 and 1 epochs (the third cut to
    what is left), then the 2 best re-run on one more seed (2 + 2 epochs): 9 epochs in all; the
    chosen trial is the best mean over its seeds; every trial's score is kept for budget curves."""
    overrides = [*SEARCH, f"paths.output_root={tmp_path}", "hparams_search.trials=10", "hparams_search.budget_epochs=9",
                 "hparams_search.choice_top=2", "hparams_search.choice_seeds=1", "hparams_search.choice_epochs=4"]
    summary = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))
    study = studies(tmp_path)[summary["study"]]
    assert summary["finished_distinct"] == 3 and summary["search_epochs"] == 5 and summary["choice_epochs"] == 4
    assert summary["epochs"] == 9 and summary["bound"] == "epochs (9 of 9)"
    assert [t.user_attrs.get("cut_to_epochs") for t in study.trials] == [None, None, 1]
    runs = summary["choice"]["runs"]
    assert [(r["seed"], r["epochs"], r["cut"]) for r in runs] == [(101, 2, False), (101, 2, False)]
    means = {r["trial"]: (study.trials[r["trial"]].value + r["value"]) / 2 for r in runs}
    chosen = study.trials[min(means, key=means.get)]
    assert summary["best_trial"] == chosen.user_attrs["k"] and summary["best_value"] == pytest.approx(min(means.values()))
    assert summary["trial_values"] == [t.value for t in study.trials]
    again = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))   # resumed: the re-runs are reused
    assert again["epochs"] == 9 and again["best_trial"] == summary["best_trial"]


def test_each_variant_draws_its_start_up_trials_from_its_own_stream():
    from seqbench.search import variant_seed
    settings = {"sampler_seed": 0}
    assert variant_seed(settings, "rnn") != variant_seed(settings, "gru")
    assert variant_seed(settings, "rnn") == variant_seed({"sampler_seed": 0}, "rnn") != variant_seed({"sampler_seed": 1},
                                                                                                    "rnn")


def test_a_pruned_trial_says_so_in_its_record():
    from seqbench.search import PruneOnValidation

    class AlwaysPrune:
        def report(self, value, step):
            pass

        def should_prune(self):
            return True

    pruning = PruneOnValidation(AlwaysPrune(), "val/mse")
    assert pruning.record_fields() == {}

    class Trainer:
        sanity_checking, callback_metrics, current_epoch, should_stop = False, {"val/mse": 1.0}, 0, False
    pruning.on_validation_end(Trainer, None)
    assert pruning.record_fields() == {"pruned": True} and Trainer.should_stop


@pytest.mark.slow
def test_the_whole_protocol_from_the_command_line(tmp_path):
    result = cli(*SEARCH, f"paths.output_root={tmp_path}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plan: 0 of " in result.stdout and " trainings already finished" in result.stdout
    studies_md = (tmp_path / "search" / "studies.md").read_text()
    assert "sincos-rnn-" in studies_md and "sincos-gru-" in studies_md and "| 2 (2) |" in studies_md
    assert "trials (2 of 2)" in studies_md
    assert list((tmp_path / "search" / "report").glob("sincos-rnn-*_history.png"))  # beside report.html, in it
    summary = (tmp_path / "search" / "report" / "summary.md").read_text()
    assert "rnn (tuned)" in summary and "gru (tuned)" in summary
    retrained = [json.loads(p.read_text()) for p in (tmp_path / "search" / "retrain").rglob("record.json")]
    assert sorted(r["model"] for r in retrained) == ["gru", "rnn"]
    assert all(r["seed"] == 1 and "mse" in r["test"] and r["tuned"]["trials"] == 2 for r in retrained)
    # what each study spent, beside its cap: the tuned table and the budget line read it
    assert all(r["tuned"]["trials_finished"] == 2 and r["tuned"]["epochs_trained"] >= 2 for r in retrained)


@pytest.mark.slow
def test_two_identical_searches_at_once_share_the_budget_and_never_overwrite_each_other(tmp_path):
    args = [sys.executable, "-m", "seqbench", "search", *SEARCH, "hparams_search.variants=[rnn]",
            f"paths.output_root={tmp_path}"]
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    second = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=900) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    (study,) = studies(tmp_path / "search").values()
    assert len([t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]) == 2
    (record,) = list((tmp_path / "search" / "retrain").rglob("record.json"))
    content = json.loads(record.read_text())
    assert content["status"] == "done" and "reused_from" not in content   # trained once, by one process


@pytest.mark.slow
@pytest.mark.parametrize("sent,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_stops_the_search_cleanly_says_how_to_resume_and_reports_what_finished(tmp_path, sent, code):
    # Far more work than the wait below: the signal must arrive while trials still run, however fast the machine.
    args = [sys.executable, "-m", "seqbench", "search", *SEARCH, "hparams_search.trials=40",
            "trainer.max_epochs=30", f"paths.output_root={tmp_path}"]
    search = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and len(list((tmp_path / "search" / "trials").rglob("record.json"))) < 2:
        time.sleep(0.5)
    search.send_signal(sent)
    out, err = search.communicate(timeout=300)
    assert search.returncode == code, err[-2000:]
    assert "run the same command again to resume" in err and "Traceback" not in err
    assert (tmp_path / "search" / "studies.md").is_file()


def test_a_crashing_trial_counts_as_a_failure_and_the_cap_means_not_tuned(tmp_path, monkeypatch):
    """A trial that crashes (not a refused config: CUDA out of memory, a locked database) is a
    failure of the variant, counted against the cap, never left to be asked again for ever; two
    completed trials beside the failures do not make the variant "tuned"."""
    import seqbench.run
    real_run, calls = seqbench.run.run, []

    def crashes_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("CUDA out of memory")
        return real_run(*args, **kwargs)
    monkeypatch.setattr(seqbench.run, "run", crashes_after_two)
    summary = search_variant(CONFIG_DIR, [*SEARCH, f"paths.output_root={tmp_path}", "hparams_search.trials=6",
                                          "hparams_search.max_failed_trials=2"], "rnn", str(tmp_path))
    assert summary["COMPLETE"] + summary["PRUNED"] == 2 and summary["FAIL"] == 2 and summary["failed"]
    assert "2 failed trials" in summary["bound"]
    errors = [t.user_attrs.get("error") for t in studies(tmp_path)[summary["study"]].trials if t.state.name == "FAIL"]
    assert errors == ["RuntimeError: CUDA out of memory"] * 2


def test_the_search_says_what_is_finished_and_what_the_rest_costs_before_it_starts(tmp_path):
    from omegaconf import OmegaConf

    from seqbench.search import search_plan_line
    root = tmp_path / "search"
    for number in range(2):  # two finished trials of gru, 60 s and 120 s
        folder = root / f"trial{number}"
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps({
            "status": "done", "model": "gru", "dataset": "sincos", "seed": 0, "config_hash": f"h{number}",
            "search": {"trial": number}, "wall_seconds": 60.0 * (number + 1)}))
    base = OmegaConf.create({"dataset": {"name": "sincos"}, "paths": {"output_root": str(tmp_path / "nothing")}})
    line = search_plan_line(root, base, ["gru", "rnn"], {"trials": 3, "retrain_seeds": [0, 1]}, jobs=2)
    # gru: 3 left at the median 90 s = 4.5 min; rnn has nothing to estimate from
    assert line.startswith("plan: 2 of 10 trainings already finished, 8 to run; about 4 min of training"), line
    assert "about 2 min with 2 at a time" in line and line.endswith("no finished sincos run of rnn yet to estimate from")
    defaults = tmp_path / "defaults" / "rnn_s0"  # a default run of rnn (30 s) times rnn's trials, and is not one of them
    defaults.mkdir(parents=True)
    (defaults / "record.json").write_text(json.dumps({"status": "done", "model": "rnn", "dataset": "sincos", "seed": 0,
                                                      "config_hash": "d0", "wall_seconds": 30.0}))
    line = search_plan_line(root, base, ["gru", "rnn"], {"trials": 3, "retrain_seeds": [0, 1]}, jobs=2,
                            default_runs=[str(tmp_path / "defaults")])
    assert line == ("plan: 2 of 10 trainings already finished, 8 to run; about 7 min of training at the median time of "
                    "finished sincos runs of the same models, about 4 min with 2 at a time")
    # An epoch budget: gru's trials took 2 and 4 epochs at 30 s an epoch; 10 - 6 = 4 epochs left (2 min),
    # then 2 retrainings at the median 90 s (3 min).
    for number, epochs in enumerate((2, 4)):
        record = json.loads((root / f"trial{number}" / "record.json").read_text())
        (root / f"trial{number}" / "record.json").write_text(json.dumps({**record, "epochs": epochs}))
    line = search_plan_line(root, base, ["gru"], {"trials": 3, "retrain_seeds": [0, 1], "budget_epochs": 10}, jobs=1)
    assert line.startswith("plan: 2 of 5 trainings already finished, 3 to run; about 5 min of training"), line


def test_a_dry_run_prints_the_searchs_size_and_cost_and_trains_nothing(tmp_path):
    result = cli(*SEARCH, f"paths.output_root={tmp_path}", "--dry-run", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("search: 2 variants (rnn, gru) x 100 training epochs (at most 2 trials), then 1 "
                               "retraining seed each: up to 6 runs")
    assert lines[1].startswith("plan: 0 of 6 trainings already finished, 6 to run")
    assert not (tmp_path / "search").exists() and not list(tmp_path.rglob("record.json"))


def test_overrides_may_come_before_and_after_the_flags():
    """`seqbench search hparams_search=trec --jobs 2 dataset.max_len=64` was "unrecognized arguments"."""
    from seqbench.search.cli import parse_arguments
    args = parse_arguments(["hparams_search=trec", "--jobs", "2", "dataset.max_len=64", "--dry-run"])
    assert args.overrides == ["hparams_search=trec", "dataset.max_len=64"] and args.jobs == 2 and args.dry_run
