import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from seqbench.record import write_json_atomic
from seqbench.report import build_report
from seqbench.results import load_records, long_table, mean_std_ci, summary_table
from seqbench.run import run
from tests.conftest import TINY


def record(model, seed, acc=None, status="done", dataset="trec", config_hash=None, started="2026-01-01T00:00:00",
           **extra):
    return {"status": status, "model": model, "dataset": dataset, "seed": seed,
            "config_hash": config_hash or f"hash-{model}", "started": started,
            "test": {"acc": acc, "f1": acc - 0.01} if acc is not None else None,
            "val_best": {"acc": acc + 0.01} if acc is not None else None,
            "best_epoch": 2, "epochs": 5, "epoch_seconds": [1.0, 3.0], "params": 1000,
            "train_tokens_per_s": 500.0, "peak_memory_mb": 100.0,
            "history": [{"epoch": 0, "val/acc": 0.5}, {"epoch": 1, "val/acc": 0.7}],
            "config": {"model": {"name": model, "hidden_size": 8}}, **extra}


def write_records(root: Path, records: list[dict]) -> None:
    for i, r in enumerate(records):
        write_json_atomic(root / f"run{i}" / "record.json", r)


def test_mean_std_and_95_interval_by_value():
    mean, std, ci, n = mean_std_ci(pd.Series([0.80, 0.84, 0.88]))
    assert n == 3 and mean == pytest.approx(0.84) and std == pytest.approx(0.04)
    assert ci == pytest.approx(4.303 * 0.04 / math.sqrt(3))  # t(0.975, 2 dof) = 4.303
    assert mean_std_ci(pd.Series([0.5]))[1:] == (pytest.approx(math.nan, nan_ok=True),) * 2 + (1,)


def test_summary_aggregates_over_seeds_and_shows_runs_that_did_not_finish(tmp_path):
    write_records(tmp_path, [record("gru", 0, 0.80), record("gru", 1, 0.84), record("gru", 2, 0.88),
                             record("rnn", 0, 0.60), record("rnn", 1, status="diverged", error="nan"),
                             record("lstm", 0, status="failed", error="boom")])
    table = summary_table(long_table(load_records([tmp_path])), "trec").set_index("model")
    assert list(table.index) == ["gru", "rnn", "lstm"]  # best first, unfinished last
    assert table.loc["gru", "n"] == 3
    assert table.loc["gru", "test_acc_mean"] == pytest.approx(0.84)
    assert table.loc["gru", "test_acc_std"] == pytest.approx(0.04)
    assert table.loc["gru", "test_acc_ci95"] == pytest.approx(4.303 * 0.04 / math.sqrt(3))
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


def test_variants_with_the_same_name_but_other_settings_stay_apart(tmp_path):
    write_records(tmp_path, [record("gru", 0, 0.8, config_hash="aaaaaaaa1"), record("gru", 0, 0.9, config_hash="bbbbbbbb2")])
    table = summary_table(long_table(load_records([tmp_path])), "trec")
    assert sorted(table["model"]) == ["gru [aaaaaa]", "gru [bbbbbb]"]


def test_report_writes_tables_and_plots_with_provenance(tmp_path):
    write_records(tmp_path / "runs", [record("gru", 0, 0.8), record("gru", 1, 0.9),
                                      record("lstm", 0, status="failed", error="boom"),
                                      {**record("lstm", 0, dataset="sincos", config_hash="sincos-lstm"), "test": {"mse": 0.01, "mae": 0.1},
                                       "val_best": {"mse": 0.02}, "history": [{"epoch": 0, "val/mse": 0.1}]}])
    build_report([tmp_path / "runs"], tmp_path / "out", command="python -m seqbench experiment=compare")
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {"runs.csv", "summary.md", "summary_trec.csv", "summary_sincos.csv",
                                               "trec_test_acc.png", "trec_learning_curves.png", "sincos_test_mse.png"}
    text = (out / "summary.md").read_text()
    assert "python -m seqbench experiment=compare" in text and "failed: 1" in text
    assert "0.85 ± 0.07071" in text
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4 and "config.model.hidden_size" in runs.columns


def test_rerun_skips_a_done_run_and_force_reruns_it(compose_config, tmp_path):
    first = run(compose_config(*TINY), tmp_path / "a")
    assert first["status"] == "done"
    second = run(compose_config(*TINY), tmp_path / "b")
    assert second["reused_from"] == str(tmp_path / "a" / "record.json")
    assert second["finished"] == first["finished"]  # not trained again
    forced = run(compose_config(*TINY, "force=true"), tmp_path / "c")
    assert "reused_from" not in forced and forced["finished"] != first["finished"]
    other_seed = run(compose_config(*TINY, "seed=5"), tmp_path / "d")
    assert "reused_from" not in other_seed


def test_a_killed_run_is_run_again(compose_config, tmp_path):
    cfg = compose_config(*TINY)
    killed = record("lstm", 0, status="running")
    from omegaconf import OmegaConf
    from seqbench.record import config_hash
    killed["config_hash"] = config_hash(OmegaConf.to_container(cfg, resolve=True))
    write_json_atomic(tmp_path / "killed" / "record.json", killed)
    again = run(cfg, tmp_path / "again")
    assert again["status"] == "done" and "reused_from" not in again


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


def test_a_failing_run_does_not_stop_the_sweep(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seqbench", "-m", "model.num_layers=0,1", *TINY, f"paths.output_root={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = sorted(json.loads(p.read_text())["status"] for p in tmp_path.glob("sweeps/*/*/*/record.json"))
    assert statuses == ["done", "failed"]


def test_a_done_run_in_the_same_folder_is_not_trained_again(compose_config, tmp_path):
    first = run(compose_config(*TINY), tmp_path / "compare" / "0_lstm_sincos_s0")
    again = run(compose_config(*TINY), tmp_path / "compare" / "0_lstm_sincos_s0")
    assert again["finished"] == first["finished"]
    assert json.loads((tmp_path / "compare" / "0_lstm_sincos_s0" / "record.json").read_text())["finished"] == first["finished"]
