"""Equal-budget hyper-parameter search on tiny generated data: budgets, resumption after a kill,
the test split never read, and the whole protocol from the command line."""
import json
from pathlib import Path
import subprocess
import sys
import time

import optuna
import pytest

from seqbench.data.modules import GeneratedData
from seqbench.search import applies, distributions, open_study, search_variant
from tests.conftest import CONFIG_DIR, TINY

SEARCH = ["hparams_search=sincos", *[o for o in TINY if not o.startswith("dataset.")], "dataset.n_train=48",
          "dataset.n_val=32", "dataset.n_test=32", "dataset.seq_len=16", "dataset.warmup_steps=2",
          "hparams_search.trials=2", "hparams_search.variants=[rnn,gru]", "hparams_search.retrain_seeds=[1]",
          "hparams_search.startup_trials=1", "hparams_search.pruner_startup_trials=1"]


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


def test_every_variant_gets_the_same_budget_and_the_test_split_is_never_read(tmp_path, monkeypatch):
    def test_split_read(self):
        raise AssertionError("the search read the test split")
    monkeypatch.setattr(GeneratedData, "test_dataloader", test_split_read)
    overrides = [*SEARCH, f"paths.output_root={tmp_path}"]
    summaries = {variant: search_variant(CONFIG_DIR, overrides, variant, str(tmp_path)) for variant in ("rnn", "gru")}
    for variant, summary in summaries.items():
        assert summary["budget_trials"] == 2 and summary["COMPLETE"] + summary["PRUNED"] == 2, summary
        study = optuna.load_study(study_name=f"sincos-{variant}", storage=f"sqlite:///{tmp_path / 'sincos.db'}")
        assert study.user_attrs["budget_trials"] == 2 and "val" in study.user_attrs["objective"]
        records = [json.loads(p.read_text()) for p in (tmp_path / "trials" / "sincos" / variant).glob("*/record.json")]
        assert len(records) == 2 and all("test" not in r and r["search"]["study"] == f"sincos-{variant}"
                                         for r in records)
    again = search_variant(CONFIG_DIR, overrides, "rnn", str(tmp_path))  # budget spent: nothing more runs
    assert again["COMPLETE"] + again["PRUNED"] == 2


def test_a_killed_search_resumes_and_loses_no_finished_trial(tmp_path):
    overrides = [*SEARCH, f"paths.output_root={tmp_path}", "hparams_search.trials=3"]
    first = search_variant(CONFIG_DIR, [*overrides[:-1], "hparams_search.trials=1"], "rnn", str(tmp_path))
    assert first["COMPLETE"] + first["PRUNED"] == 1
    # A worker killed in its second trial leaves it RUNNING, its heartbeat going stale.
    study = open_study({"sampler_seed": 0, "heartbeat_seconds": 1, "grace_seconds": 1}, tmp_path, "sincos", "rnn",
                       "min")
    orphan = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True)})
    study._storage.record_heartbeat(orphan._trial_id)  # it was alive once, then its worker died
    assert orphan.number == 1
    time.sleep(2.5)
    done = search_variant(CONFIG_DIR, [*overrides, "hparams_search.heartbeat_seconds=1",
                                       "hparams_search.grace_seconds=1"], "rnn", str(tmp_path))
    trials = optuna.load_study(study_name="sincos-rnn", storage=f"sqlite:///{tmp_path / 'sincos.db'}").trials
    assert trials[0].state.name in ("COMPLETE", "PRUNED") and trials[0].number == 0  # kept
    assert trials[1].state.name == "FAIL"                                               # the orphan
    retried = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retried) == 1 and retried[0].params["optimizer.lr"] == trials[1].params["optimizer.lr"]  # again
    assert done["COMPLETE"] + done["PRUNED"] == 3


def test_the_whole_protocol_from_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench", "search", *SEARCH, f"paths.output_root={tmp_path}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    if result.returncode != 0 and "search" in result.stderr and "usage" in result.stderr:
        pytest.fail(result.stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    studies = (tmp_path / "search" / "studies.md").read_text()
    assert "sincos-rnn" in studies and "sincos-gru" in studies and "| 2 (2) |" in studies
    summary = (tmp_path / "search" / "report" / "summary.md").read_text()
    assert "rnn (tuned)" in summary and "gru (tuned)" in summary
    retrained = [json.loads(p.read_text()) for p in (tmp_path / "search" / "retrain").rglob("record.json")]
    assert sorted(r["model"] for r in retrained) == ["gru", "rnn"]
    assert all(r["seed"] == 1 and "mse" in r["test"] and r["tuned"]["trials"] == 2 for r in retrained)


def _open_one(args):
    from seqbench.search import open_study
    settings, root, variant = args
    return open_study(settings, Path(root), "trec", variant, "max").study_name


def test_parallel_workers_open_their_studies_in_one_fresh_database(tmp_path):
    """`--jobs 2` on a fresh SQLite file: the schema is created once before the workers start,
    so no worker's study creation collides with another's (one variant used to vanish)."""
    import multiprocessing

    from seqbench.search import prepare_storage
    settings = {"sampler_seed": 0, "heartbeat_seconds": 30, "grace_seconds": 120}
    prepare_storage(settings, tmp_path, "trec")
    variants = ["rnn", "lstm", "gru"]
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        names = pool.map(_open_one, [(settings, str(tmp_path), v) for v in variants])
    assert names == [f"trec-{v}" for v in variants]


def test_one_failed_variant_neither_hides_nor_stops_the_others(tmp_path, monkeypatch, capsys):
    import seqbench.report
    import seqbench.search as search
    retrained = []

    def fake_search(config_dir, overrides, variant, root, threads=None):
        if variant == "gru":
            raise RuntimeError("database is locked")
        return {"study": f"sincos-{variant}", "COMPLETE": 2, "PRUNED": 0, "budget_trials": 2, "best_value": 0.1,
                "best_params": {}}
    monkeypatch.setattr(search, "search_variant", fake_search)
    monkeypatch.setattr(search, "retrain", lambda config_dir, overrides, variant, *rest: retrained.append(variant))
    monkeypatch.setattr(search, "write_study_summaries", lambda *args: None)
    monkeypatch.setattr(seqbench.report, "build_report", lambda *args, **kwargs: None)
    with pytest.raises(SystemExit) as exit_:
        search.main([*SEARCH, f"paths.output_root={tmp_path}", "--jobs", "1"])
    assert exit_.value.code == 1 and retrained == ["rnn"]
    err = capsys.readouterr().err
    assert "the search of gru failed: RuntimeError: database is locked" in err and "run the same command again" in err
