"""The everyday loop: a finished run answers before Lightning would even load, sweeps
say how far they got, a run is evaluated again from any folder, dashboards show what a run
trained with."""
import subprocess
import sys

import pytest

from seqbench.run import run
from tests.conftest import TINY


@pytest.mark.slow
def test_a_finished_run_answers_without_loading_lightning(tmp_path):
    """What makes a reused run quick, checked as what it imports, not as a race against the clock
    (a wall-clock comparison fails on a busy machine for reasons that are not the code's)."""
    args = ["-m", "seqbench", *TINY, f"paths.output_root={tmp_path}"]
    first = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already done" in again.stdout
    probe = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    loaded = {line.split("|")[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
    assert "pytorch_lightning" not in loaded and "torchmetrics" not in loaded and "scipy.stats" not in loaded


def test_a_typo_is_refused_before_torch_loads(tmp_path):
    probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "seqbench", "model=grux"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 2 and "unknown model 'grux'" in probe.stderr
    loaded = {line.split("|")[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
    assert "torch" not in loaded and "pytorch_lightning" not in loaded


@pytest.mark.slow
def test_a_sweep_says_how_many_runs_are_done_and_how_long_is_left(tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench", "-m", "model=rnn,gru", "seed=0,1", *TINY,
                             f"paths.output_root={tmp_path}"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("plan: 4 runs: 0 already done"), result.stdout[:500]  # the cost before the first job
    progress = [line for line in result.stdout.splitlines() if line.startswith("sweep: ")]
    assert progress[0].startswith("sweep: 1 of 4 runs done (reused 0, failed 0), ")
    assert progress[0].endswith(("min left", "under a minute left"))
    assert progress[-1] == "sweep: 4 of 4 runs done (reused 0, failed 0)"
    again = subprocess.run([sys.executable, "-m", "seqbench", "-m", "model=rnn,gru", "seed=0,1", *TINY,
                            f"paths.output_root={tmp_path}"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert "sweep: 4 of 4 runs done (reused 4, failed 0)" in again.stdout
    assert again.stdout.startswith("plan: 4 runs: 4 already done") and "0 to train" in again.stdout.splitlines()[0]
    header = next((tmp_path / "sweeps").rglob("summary.md")).read_text()
    assert "seqbench -m model=rnn,gru seed=0,1" in header


def test_a_run_is_evaluated_again_from_another_folder(compose_config, tmp_path, monkeypatch):
    from seqbench.evaluate import evaluate
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    rows = [f"{'good great' if i % 2 else 'bad awful'} film {i},{'pos' if i % 2 else 'neg'}" for i in range(40)]
    (work / "data" / "train.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    (work / "data" / "test.csv").write_text("text,label\n" + "\n".join(rows[:10]) + "\n")
    monkeypatch.chdir(work)
    record = run(compose_config("dataset=text_file", "dataset.train=data/train.csv", "dataset.test=data/test.csv",
                                "model=gru", "model.hidden_size=8", "model.embedding_dim=8", "trainer.max_epochs=2",
                                f"dataset.cache_dir={tmp_path / 'cache'}"), tmp_path / "run")
    assert record["config"]["dataset"]["train"] == str(work / "data" / "train.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    summary = evaluate(tmp_path / "run", out=tmp_path / "eval")
    assert summary["metrics"]["acc"] == pytest.approx(record["test"]["acc"])


def test_the_copy_task_evaluates_with_its_primary_metric(compose_config, tmp_path):
    from seqbench.evaluate import evaluate
    record = run(compose_config(*[o for o in TINY if not o.startswith("dataset.")], "dataset=copy", "dataset.length=6",
                                "dataset.n_train=48", "dataset.n_val=32", "dataset.n_test=32", "dataset.batch_size=16"),
                 tmp_path / "run")
    again = evaluate(tmp_path / "run", out=tmp_path / "eval")
    assert again["metrics"]["ce"] == pytest.approx(record["test"]["ce"], rel=1e-4)
    assert again["metrics"]["acc"] == pytest.approx(record["test"]["acc"], rel=1e-4)


def test_hyper_parameters_are_the_values_a_run_trained_with(compose_config, tmp_path):
    from seqbench.dashboards import hparams_for
    record = run(compose_config(*TINY, "optimizer.lr=0.01"), tmp_path / "run")
    shown = hparams_for(record)
    assert shown["optimizer.lr"] == 0.01 and "dataset.lr" not in shown and "dataset.dropout" not in shown
    assert shown["model.dropout"] == record["config"]["model"]["dropout"]
