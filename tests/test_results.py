import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from seqbench.config import config_hash
from seqbench.record import write_json_atomic
from seqbench.report import build_report
from seqbench.results import interval, learning_curves, load_records, long_table, mean_std_ci, summary_table
from seqbench.run import run
from tests.conftest import TINY


def record(model, seed, acc=None, status="done", dataset="trec", config_hash=None, started="2026-01-01T00:00:00",
           hidden=8, **extra):
    return {"status": status, "model": model, "dataset": dataset, "seed": seed, "task": "classification",
            "config_hash": config_hash or f"hash-{model}-{hidden}", "started": started,
            "test": {"acc": acc, "f1": acc - 0.01} if acc is not None else None,
            "val_best": {"acc": acc + 0.01} if acc is not None else None,
            "best_epoch": 2, "epochs": 5, "epoch_seconds": [1.0, 3.0], "params": 1000,
            "train_tokens_per_s": 500.0, "peak_memory_mb": 100.0, "peak_memory_kind": "process_rss_peak",
            "history": [{"epoch": 0, "val/acc": 0.5}, {"epoch": 1, "val/acc": 0.7}],
            "config": {"model": {"name": model, "hidden_size": hidden}, "trainer": {"max_epochs": 5, "patience": 3},
                       "dataset": {"name": dataset, "batch_size": 16, "max_len": 64},
                       "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.003}}, **extra}


def write_records(root: Path, records: list[dict]) -> None:
    for i, r in enumerate(records):
        write_json_atomic(root / f"run{i}" / "record.json", r)


def test_mean_std_and_95_interval_by_value():
    mean, std, ci, n = mean_std_ci(pd.Series([0.80, 0.84, 0.88]))
    assert n == 3 and mean == pytest.approx(0.84) and std == pytest.approx(0.04)
    assert ci == pytest.approx(4.302653 * 0.04 / math.sqrt(3), rel=1e-5)  # t(0.975, 2 dof)
    assert mean_std_ci(pd.Series([0.5]))[1:] == (pytest.approx(math.nan, nan_ok=True),) * 2 + (1,)


def test_intervals_of_positive_quantities_stay_positive_and_n1_has_none():
    errors = pd.Series([1.1e-5, 4.0e-5, 1.2e-5])  # a t interval here would go below zero
    mean, _, half, _ = mean_std_ci(errors)
    assert mean - half < 0
    low, high = interval(errors, positive=True)
    assert 0 < low < errors.min() and high > errors.max()
    assert all(math.isnan(v) for v in interval(pd.Series([0.5]), positive=False))
    low, high = interval(pd.Series([0.99, 1.0, 0.97]), positive=False, bounded=True)
    assert high <= 1.0


def test_summary_aggregates_over_seeds_and_shows_runs_that_did_not_finish(tmp_path):
    write_records(tmp_path, [record("gru", 0, 0.80), record("gru", 1, 0.84), record("gru", 2, 0.88),
                             record("rnn", 0, 0.60), record("rnn", 1, status="diverged", error="nan"),
                             record("lstm", 0, status="failed", error="boom")])
    table = summary_table(long_table(load_records([tmp_path])), "trec").set_index("model")
    assert list(table.index) == ["gru", "rnn", "lstm"]  # best first, unfinished last
    assert table.loc["gru", "n"] == 3
    assert table.loc["gru", "test_acc_mean"] == pytest.approx(0.84)
    assert table.loc["gru", "test_acc_std"] == pytest.approx(0.04)
    assert table.loc["gru", "vs_best"] == 0 and table.loc["rnn", "vs_best"] == pytest.approx(-0.24)
    assert table.loc["gru", "test_f1_mean"] == pytest.approx(0.83)
    assert table.loc["gru", "val_best_acc"] == pytest.approx(0.85)
    assert table.loc["gru", "epochs_to_best"] == 3 and table.loc["gru", "seconds_per_epoch"] == 2.0
    assert table.loc["rnn", "n"] == 1 and table.loc["rnn", "not_done"] == "diverged: 1"
    assert table.loc["lstm", "n"] == 0 and table.loc["lstm", "not_done"] == "failed: 1"


def test_a_done_record_wins_over_a_failed_one_and_the_newest_over_older(tmp_path):
    write_records(tmp_path, [record("gru", 0, status="failed", started="2026-01-03"),
                             record("gru", 0, 0.70, started="2026-01-01"), record("gru", 0, 0.75, started="2026-01-02")])
    records = load_records([tmp_path])
    assert len(records) == 1 and records[0]["test"]["acc"] == 0.75


def test_variants_of_one_name_are_labelled_by_what_differs_and_kept_apart(tmp_path):
    write_records(tmp_path, [record("gru", 0, 0.8, hidden=64), record("gru", 0, 0.9, hidden=128),
                             record("gru", 1, 0.85, hidden=128)])
    records = load_records([tmp_path])
    table = summary_table(long_table(records), "trec")
    assert sorted(table["model"]) == ["gru (model.hidden_size=128)", "gru (model.hidden_size=64)"]
    curves = learning_curves(records)
    assert set(curves) == {"gru (model.hidden_size=128)", "gru (model.hidden_size=64)"}
    assert list(curves["gru (model.hidden_size=128)"].columns) == [0, 1]  # two seeds, not merged with hidden 64


def test_learning_curves_show_how_many_seeds_each_epoch_covers(tmp_path):
    early = record("gru", 1, 0.8, history=[{"epoch": 0, "val/acc": 0.5}])
    write_records(tmp_path, [record("gru", 0, 0.8), early])
    frame = learning_curves(load_records([tmp_path]))["gru"]
    assert list(frame.notna().sum(axis=1)) == [2, 1]  # the mean at epoch 2 covers one seed


def test_memory_kinds_are_never_averaged_together(tmp_path):
    write_records(tmp_path, [record("gru", 0, 0.8, peak_memory_mb=100.0),
                             record("gru", 1, 0.8, peak_memory_mb=3000.0, peak_memory_kind="cuda_max_allocated")])
    table = summary_table(long_table(load_records([tmp_path])), "trec").set_index("model")
    assert table.loc["gru", "memory_process_rss_peak_mb"] == 100.0
    assert table.loc["gru", "memory_cuda_max_allocated_mb"] == 3000.0


def test_report_writes_tables_and_honest_plots_with_provenance_and_budget(tmp_path):
    write_records(tmp_path / "runs", [record("gru", 0, 0.8), record("gru", 1, 0.9),
                                      record("lstm", 0, status="failed", error="boom"),
                                      {**record("lstm", 0, dataset="sincos", config_hash="sincos-lstm"),
                                       "task": "per_step_regression", "test": {"mse": 0.01, "mae": 0.1},
                                       "val_best": {"mse": 0.02}, "history": [{"epoch": 0, "val/mse": 0.1}]}])
    build_report([tmp_path / "runs"], tmp_path / "out", command="seqbench experiment=compare")
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {"runs.csv", "summary.md", "summary_trec.csv", "summary_sincos.csv",
                                               "trec_test_acc.png", "trec_learning_curves.png", "sincos_test_mse.png"}
    text = (out / "summary.md").read_text()
    assert "seqbench experiment=compare" in text and "failed: 1" in text
    assert "| gru | 2 | 85.0 ± 7.1 |" in text      # one precision: percent, one decimal
    assert "| lstm | 1 | 1.00e-02 | – | best | 1.00e-02 |" in text   # sin->cos: mean, no interval (n = 1), median
    sincos, trec = text.split("\n## sincos")[1].split("\n## trec")
    assert "Budget: up to 5 epochs" in trec and "2 seeds per variant" in trec and "5 epochs actually trained" in trec
    assert "1 seed per variant" in sincos and "with one seed there is no interval" in sincos
    assert ("none of the 2 finished runs has usable predictions beside its record; no per-example comparison"
            in trec)   # records without predictions: one line, not one per run
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4 and "config.model.hidden_size" in runs.columns


def test_rerun_reuses_a_done_run_and_force_reruns_it(compose_config, tmp_path):
    first = run(compose_config(*TINY), tmp_path / "a")
    assert first["status"] == "done"
    second = run(compose_config(*TINY), tmp_path / "b")
    assert second["reused_from"] == str(tmp_path / "a" / "record.json")
    assert second["finished"] == first["finished"]  # not trained again
    forced = run(compose_config(*TINY, "force=true"), tmp_path / "c")
    assert "reused_from" not in forced and forced["finished"] != first["finished"]
    other_seed = run(compose_config(*TINY, "seed=5"), tmp_path / "d")
    assert "reused_from" not in other_seed


def test_settings_that_do_not_change_the_result_do_not_split_runs(compose_config):
    def hashed(*overrides):
        return config_hash(OmegaConf.to_container(compose_config(*overrides), resolve=True))
    same = hashed("seed=1")
    for override in ("seed=2", "paths.output_root=/elsewhere", "trainer.accelerator=cpu",
                     "trainer.log_every_n_steps=5", "trainer.enable_progress_bar=false", "claimed=wait",
                     "logger=csv", "force=true"):
        assert hashed(override) == same, override
    assert hashed("dataset=trec") == hashed("dataset=trec", "dataset.eval_batch_size=64", "dataset.num_workers=2",
                                            "dataset.root=/data", "dataset.cache_dir=/cache")
    for override in ("optimizer.lr=0.5", "model=gru", "trainer.max_epochs=3", "trainer.gradient_clip_val=5",
                     "trainer.precision=bf16-mixed", "dataset.n_train=10", "+trainer.accumulate_grad_batches=2"):
        assert hashed(override) != same, override


def test_the_code_fingerprint_is_per_what_a_run_computes(compose_config, monkeypatch):
    """An edit to a run's own encoder, its data set or the core training code changes its code
    fingerprint; an edit to another model's file or to the report does not (benchopt keys its
    cache per solver file in the same way)."""
    from pathlib import Path

    from seqbench.run import prepare
    lstm_sincos = compose_config(*TINY)
    gru_adding = compose_config("model=gru", "dataset=adding")
    before = {name: prepare(cfg).identity.code for name, cfg in (("lstm", lstm_sincos), ("gru", gru_adding))}
    read_bytes = Path.read_bytes

    def edited(name):
        def read(path):
            return read_bytes(path) + (b"\n_EDITED = 1\n" if path.name == name else b"")
        return read
    for name, changes in (("report.py", set()), ("minrnn.py", set()), ("classic.py", {"lstm", "gru"}),
                          ("sincos.py", {"lstm"}), ("adding.py", {"gru"}), ("training.py", {"lstm", "gru"})):
        monkeypatch.setattr(Path, "read_bytes", edited(name))
        after = {key: prepare(cfg).identity.code for key, cfg in (("lstm", lstm_sincos), ("gru", gru_adding))}
        assert {key for key in after if after[key] != before[key]} == changes, name
    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def test_a_killed_run_is_run_again(compose_config, tmp_path):
    """A run killed before its first checkpoint (record "running", no last.ckpt) trains afresh."""
    cfg = compose_config(*TINY)
    first = run(cfg, tmp_path / "killed")
    killed = json.loads((tmp_path / "killed" / "record.json").read_text())
    write_json_atomic(tmp_path / "killed" / "record.json", {**killed, "status": "running"})
    for checkpoint in (tmp_path / "killed" / "checkpoints").iterdir():
        checkpoint.unlink()
    again = run(cfg, tmp_path / "again")
    assert again["status"] == "done" and "reused_from" not in again and again["finished"] != first["finished"]
    assert again["plan"]["decision"] == "fresh"


def test_debug_runs_are_never_reused_nor_tabulated(compose_config, tmp_path):
    debug = run(compose_config(*TINY, "trainer.limit_train_batches=2"), tmp_path / "debug")
    assert debug["status"] == "done" and debug["debug"] is True
    again = run(compose_config(*TINY, "trainer.limit_train_batches=2"), tmp_path / "again")
    assert "reused_from" not in again
    assert load_records([tmp_path]) == []
    fast = run(compose_config(*TINY, "+trainer.fast_dev_run=true"), tmp_path / "fast")
    assert fast["status"] == "done" and fast["debug"] and fast["tested_weights"] == "last"


@pytest.mark.slow
def test_parallel_sweep_keeps_separate_records_and_reports(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqbench", "-m", "model=rnn,gru", *TINY, "hydra/launcher=joblib",
         "hydra.launcher.n_jobs=2", f"paths.output_root={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = sorted(tmp_path.glob("sweeps/*/*/*/record.json"))
    assert sorted(p.parent.name for p in records) == ["0_rnn_sincos_s0", "1_gru_sincos_s0"]
    assert {json.loads(p.read_text())["model"] for p in records} == {"rnn", "gru"}
    assert all(json.loads(p.read_text())["status"] == "done" for p in records)
    assert list(tmp_path.glob("sweeps/*/*/report/summary.md"))


@pytest.mark.slow
def test_a_failing_run_does_not_stop_the_sweep(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqbench", "-m", "model.attention=additive,luong", "model=bilstm_attn", *TINY,
         f"paths.output_root={tmp_path}"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = sorted(json.loads(p.read_text())["status"] for p in tmp_path.glob("sweeps/*/*/*/record.json"))
    assert statuses == ["done"]  # the bad one stops before training, with one line, and no record
    assert "valid attention rules" in result.stderr


def test_a_done_run_in_the_same_folder_is_not_trained_again(compose_config, tmp_path):
    first = run(compose_config(*TINY), tmp_path / "compare" / "0_lstm_sincos_s0")
    again = run(compose_config(*TINY), tmp_path / "compare" / "0_lstm_sincos_s0", in_sweep=True)
    assert again["finished"] == first["finished"]
    assert json.loads((tmp_path / "compare" / "0_lstm_sincos_s0" / "record.json").read_text())["finished"] == first["finished"]


def test_experiment_compare_does_not_write_into_results(compose_config):
    from hydra import compose, initialize_config_dir
    from tests.conftest import CONFIG_DIR
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=compare"], return_hydra_config=True)
    assert cfg.hydra.callbacks.report.out is None  # <sweep>/report; results/ only on purpose


def test_report_and_runs_skip_malformed_records_with_a_warning(compose_config, tmp_path, caplog):
    for i, payload in enumerate(["[]", "null", "{truncated", "\"text\"", "1"]):
        (tmp_path / f"bad{i}").mkdir()
        (tmp_path / f"bad{i}" / "record.json").write_text(payload)
    done = run(compose_config(*TINY), tmp_path / "good")  # a run under the same root is not disturbed
    assert done["status"] == "done"
    assert len(load_records([tmp_path])) == 1
    assert "not a run record" in caplog.text and "unreadable record" in caplog.text
    result = subprocess.run([sys.executable, "-m", "seqbench.report", str(tmp_path / "bad0"), "--out",
                             str(tmp_path / "rep")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no run record found" in result.stderr


# --------------------------------------------------------------- every run counted or named
def _classifier_runs(root: Path, accuracies: dict, predictions=True, examples=400, seed=0, dataset="trec",
                     **extra) -> None:
    """Runs with predictions beside their records: accuracies maps variant -> per-seed accuracy
    (None: the run has no test metric) or (status, None) for a run that did not finish."""
    import numpy as np
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 3, examples)
    for model, per_seed in accuracies.items():
        for s, acc in enumerate(per_seed):
            folder = root / f"{dataset}-{model}{s}"
            status = acc[0] if isinstance(acc, tuple) else "done"
            value = acc[1] if isinstance(acc, tuple) else acc
            rec = record(model, s, 0.5, status=status, dataset=dataset, config_hash=f"{dataset}-{model}", **extra)
            rec["test"] = {"acc": value, "f1": 0.5} if value is not None else None
            rec["label_names"] = ["ABBR", "DESC", "ENTY"]
            if predictions and value is not None and not (isinstance(value, float) and math.isnan(value)):
                correct = np.arange(examples) < round(value * examples)
                rng.shuffle(correct)
                predicted = np.where(correct, target, (target + 1) % 3)
                folder.mkdir(parents=True)
                pd.DataFrame({"index": range(examples), "target": target, "predicted": predicted}).to_csv(
                    folder / "predictions.csv", index=False)
                rec["predictions"] = "predictions.csv"
            write_json_atomic(folder / "record.json", rec)


def test_a_report_over_one_seed_beside_three_is_written_and_names_what_it_left_out(tmp_path):
    """A sweep stopped by SIGTERM: lstm has one finished seed beside gru's three. The report
    once ended in 'each sample in data must contain two or more observations'."""
    _classifier_runs(tmp_path / "runs", {"gru": [0.80, 0.82, 0.81], "lstm": [0.70, ("interrupted", None),
                                                                             ("interrupted", None)]})
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "- **trec**: incomplete (lstm seed 1: interrupted; lstm seed 2: interrupted" in text
    assert ("Runs so far (incomplete, so not a verdict): **trec** (1-3 seeds): best: gru; lstm not tested (1 seed); "
            "2 runs left out (named below).") in text
    assert "lstm seed 1: interrupted; left out of the seed-level test" in text


def test_every_run_is_counted_or_named_with_its_reason(tmp_path, caplog):
    """A run without predictions still counts at the seed level (its record holds its test metric)
    and is named in the per-example comparison; a NaN metric is named and left out; a variant left
    with one usable seed is 'not tested (1 seed)'."""
    _classifier_runs(tmp_path / "runs", {"gru": [0.80, 0.82, 0.81], "lstm": [0.70, 0.72, math.nan],
                                         "rnn": [0.60, math.nan, math.nan]})
    (tmp_path / "runs" / "trec-gru1" / "predictions.csv").unlink()
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    verdict = next(line for line in text.splitlines() if line.startswith("- **trec**"))
    assert verdict == ("- **trec** (1-3 seeds): best: gru; behind: lstm -10.0 [-16.0, -4.0]; rnn not tested (1 seed); "
                       "3 runs left out (named below).")
    for named in ("lstm seed 2: test.acc is nan; left out of the seed-level test",
                  "rnn seed 1: test.acc is nan; left out of the seed-level test",
                  "gru seed 1: no predictions.csv; left out of the per-example comparison"):
        assert named in text and named in caplog.text
    pairs = pd.read_csv(tmp_path / "out" / "pairs_trec.csv")
    assert (pairs.loc[0, "a"], pairs.loc[0, "n_a"], pairs.loc[0, "n_b"]) == ("gru", 3, 2)   # gru seed 1 counted


@pytest.mark.parametrize("flags, named", [(["--resamples", "0"], "--resamples 0"),
                                          (["--resamples", "-5"], "--resamples -5"),
                                          (["--resamples", "many"], "--resamples many"),
                                          (["--rope", "acc=-1"], "--rope acc=-1"),
                                          (["--rope", "auc=1"], "--rope auc=1")])
def test_report_flags_out_of_range_are_one_line_and_exit_2(tmp_path, capsys, flags, named):
    from seqbench.report import main
    write_records(tmp_path / "runs", [record("gru", 0, 0.8), record("gru", 1, 0.9)])
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), *flags])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"error: {named}:")
    assert not (tmp_path / "out").exists()


def test_rope_flag_sets_what_counts_as_practically_equivalent(tmp_path):
    from seqbench.report import parse_ropes
    assert parse_ropes(["acc=1", "mse=5"]) == {"acc": pytest.approx(0.01), "mse": pytest.approx(math.log(1.05))}
    _classifier_runs(tmp_path / "runs", {"gru": [0.800, 0.805, 0.810], "lstm": [0.801, 0.806, 0.809]})
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    assert "practically equivalent" not in (tmp_path / "out" / "summary.md").read_text().split("## Provenance")[0]
    build_report([tmp_path / "runs"], tmp_path / "wide", plots=False, resamples=199, ropes=parse_ropes(["acc=5"]))
    verdict = (tmp_path / "wide" / "summary.md").read_text().split("## Provenance")[0]
    assert "practically equivalent (within ±5 points): lstm ≈ gru" in verdict


def test_saturated_data_sets_are_flagged_and_left_out_of_the_ranks_which_carry_an_interval(tmp_path):
    _classifier_runs(tmp_path / "runs", {"gru": [0.80, 0.82, 0.81], "lstm": [0.70, 0.72, 0.71],
                                         "rnn": [0.60, 0.62, 0.61]})
    _classifier_runs(tmp_path / "runs", {"gru": [0.70, 0.71, 0.69], "lstm": [0.75, 0.74, 0.76],
                                         "rnn": [0.50, 0.52, 0.51]}, dataset="sentiment", seed=1)
    for model, error in (("gru", 1e-5), ("lstm", 2e-5), ("rnn", 2.2e-4)):
        for s in range(3):
            write_json_atomic(tmp_path / "runs" / f"sincos-{model}{s}" / "record.json", {
                **record(model, s, dataset="sincos", config_hash=f"sincos-{model}"), "task": "per_step_regression",
                "test": {"mse": error * (1 + 0.1 * s), "mae": 0.01}, "val_best": {"mse": error},
                "baselines": {"mse": 0.5}, "history": [{"epoch": 0, "val/mse": 0.1}]})
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    sincos = next(line for line in text.splitlines() if line.startswith("- **sincos**"))
    assert sincos.startswith("- **sincos** (3 seeds each): saturated, every variant solves it (every run's MSE ≤ "
                             "0.00026, under 1% of the learn-nothing baseline's 0.5); best: gru")
    across = text.split("## Across data sets")[1]
    assert "Not ranked: sincos (saturated: every variant solves it)." in across
    assert "| gru | 1.50 | [" in across and "95% interval (seeds resampled)" in across
    assert "ranks are a description, not a test" in across


def test_a_seed_far_from_its_variants_others_is_named_with_its_confusion_matrix(tmp_path):
    _classifier_runs(tmp_path / "runs", {"gru": [0.80, 0.81, 0.805, 0.64, 0.795], "lstm": [0.70, 0.71, 0.705,
                                                                                          0.70, 0.69]})
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    named = text.split("Far from its variant's other seeds: gru seed 3, test accuracy 64.0 %")[1]
    assert named.split("\n\n")[1].startswith("| true \\ predicted | ABBR | DESC | ENTY |")
    assert text.count("Far from its variant's other seeds") == 1


def test_the_scores_figure_carries_the_group_letters(tmp_path):
    from seqbench.figures import plot_scores
    _classifier_runs(tmp_path / "runs", {"gru": [0.80, 0.82, 0.81], "lstm": [0.70, 0.72, 0.71]})
    frame = long_table(load_records([tmp_path / "runs"]))
    table = summary_table(frame, "trec")
    plain = plot_scores(frame, table, "trec", "plain", "acc", {}, tmp_path).read_bytes()
    lettered = plot_scores(frame, table, "trec", "lettered", "acc", {}, tmp_path, {"gru": "a", "lstm": "b"})
    assert lettered.read_bytes() != plain


def test_compare_makes_the_named_pairs_the_family_whatever_else_the_folders_hold(tmp_path):
    """``seqbench report A B --compare gru:lstm``: the same difference, interval and p for gru vs
    lstm whether the folders hold 2 variants or 4; the report says which family the numbers belong
    to; a variant that is not there or a malformed pair is one line naming the valid variants."""
    import pandas as pd
    from seqbench import SeqbenchError
    two = {"gru": [0.80, 0.82, 0.81], "lstm": [0.78, 0.79, 0.80]}
    _classifier_runs(tmp_path / "a", two)
    _classifier_runs(tmp_path / "b", {"rnn": [0.70, 0.75, 0.60], "mingru": [0.81, 0.815, 0.83]})
    found = []
    for name, folders in (("two", [tmp_path / "a"]), ("four", [tmp_path / "a", tmp_path / "b"])):
        build_report(folders, tmp_path / name, plots=False, resamples=199, compare="gru:lstm")
        pairs = pd.read_csv(tmp_path / name / "pairs_trec.csv")
        assert len(pairs) == 1 and pairs.loc[0, "family"] == "compare"
        found.append(pairs.loc[0, ["a", "b", "difference", "low", "high", "p", "p_adjusted"]].tolist())
        text = (tmp_path / name / "summary.md").read_text()
        assert "the family is the 1 pair named with --compare and nothing else" in text
        assert "--compare gru:lstm" in text   # the command that makes this report again
    assert found[0] == found[1]
    build_report([tmp_path / "a", tmp_path / "b"], tmp_path / "all", plots=False, resamples=199)
    every = pd.read_csv(tmp_path / "all" / "pairs_trec.csv")
    assert len(every) == 6 and set(every["family"]) == {"every pair"}
    for bad, named in (("gru:transformer", "names transformer, which these folders do not hold"),
                       ("gru-lstm", "is not A:B"), ("gru:gru", "compares a variant with itself")):
        with pytest.raises(SeqbenchError) as error:
            build_report([tmp_path / "a"], tmp_path / "bad", plots=False, compare=bad)
        message = str(error.value)
        assert named in message and "variants from: gru, lstm" in message and "\n" not in message


def test_a_sweep_s_report_takes_the_pairs_named_in_its_callback_as_its_family(tmp_path, capsys):
    """hydra.callbacks.report.compare=gru:lstm: the report at the end of a sweep has the named
    pairs as its family, as ``seqbench report --compare`` does."""
    import pandas as pd
    from omegaconf import OmegaConf
    from seqbench.sweep import ReportAfterSweep
    _classifier_runs(tmp_path / "sweep", {"gru": [0.80, 0.82, 0.81], "lstm": [0.78, 0.79, 0.80],
                                          "rnn": [0.70, 0.75, 0.60]})
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")},
                                         "overrides": {"task": ["model=gru,lstm,rnn"]}}})
    ReportAfterSweep(compare="gru:lstm").on_multirun_end(config)
    pairs = pd.read_csv(tmp_path / "sweep" / "report" / "pairs_trec.csv")
    assert pairs[["a", "b", "family"]].values.tolist() == [["gru", "lstm", "compare"]]
    ReportAfterSweep(compare="gru:transformer").on_multirun_end(config)   # a bad pair: one line, the runs kept
    assert "no report: " in capsys.readouterr().err
