import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench import SeqbenchError
from seqbench.data import modules
from seqbench.record import config_hash, write_json_atomic
from seqbench.run import run
from tests.conftest import TINY

REPO = Path(__file__).resolve().parent.parent
RECORD_FIELDS = {"status", "model", "dataset", "seed", "config", "config_hash", "test", "val_best", "epochs",
                 "epoch_seconds", "train_tokens_per_s", "params", "peak_memory_mb", "hardware", "versions",
                 "git_commit"}


@pytest.mark.parametrize("model,extra", [("rnn", []), ("lstm", []), ("gru", []), ("lstm", ["model.bidirectional=true"]),
                                         ("bilstm_attn", ["model.attention=additive"]),
                                         ("bilstm_attn", ["model.attention=concat"]),
                                         ("bilstm_attn", ["model.attention=scaled_dot"])])
def test_every_model_trains_on_sincos_and_leaves_a_complete_record(compose_config, tmp_path, model, extra):
    cfg = compose_config(*TINY, f"model={model}", *extra)
    record = run(cfg, tmp_path)
    assert record["status"] == "done"
    on_disk = json.loads((tmp_path / "record.json").read_text())
    assert RECORD_FIELDS <= on_disk.keys()
    assert set(on_disk["test"]) == {"mse", "mae"} and on_disk["test"]["mse"] >= 0
    assert on_disk["epochs"] == 2 and len(on_disk["epoch_seconds"]) == 2 and len(on_disk["history"]) == 2
    assert on_disk["train_tokens_per_s"] > 0 and on_disk["params"] > 0
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


def test_sincos_lstm_learns_cos_from_sin(compose_config, tmp_path):
    """Not a toy check: a small LSTM gets well below the 0.5 variance of cos in a few epochs."""
    cfg = compose_config("trainer.enable_progress_bar=false", "trainer.max_epochs=4", "dataset.n_train=512",
                         "dataset.n_test=128", "model.hidden_size=32", "model.embedding_dim=16")
    record = run(cfg, tmp_path)
    assert record["test"]["mse"] < 0.05, record["history"]


def tiny_text_source(tmp_path):
    data = tmp_path / "tiny.tsv"
    data.write_text("x")
    words = {0: "awful dull boring", 1: "great superb lovely"}
    texts = [f"{words[i % 2]} film number {i}" for i in range(80)]
    return modules.TextSource("tiny", lambda root: data,
                              lambda path: {"train": (texts, [i % 2 for i in range(80)]),
                                            "test": (texts[:20], [i % 2 for i in range(20)])}, ("neg", "pos"))


def test_text_classification_runs_end_to_end(compose_config, tmp_path, monkeypatch):
    monkeypatch.setitem(modules.TEXT_SOURCES, "trec", tiny_text_source(tmp_path))
    cfg = compose_config("dataset=trec", "model=bilstm_attn", "model.attention=scaled_dot", "model.hidden_size=8",
                         "model.embedding_dim=8", "trainer.enable_progress_bar=false", "trainer.max_epochs=8",
                         f"dataset.cache_dir={tmp_path / 'cache'}", "dataset.batch_size=8", "dataset.lr=0.02")
    record = run(cfg, tmp_path / "run")
    assert record["status"] == "done" and record["model"] == "bilstm_attn-scaled_dot"
    assert set(record["test"]) == {"acc", "f1"}
    assert record["test"]["acc"] == 1.0  # the label is spelled out by three words


def test_diverging_run_is_recorded_as_diverged(compose_config, tmp_path):
    cfg = compose_config(*TINY, "optimizer.lr=1e20", "trainer.gradient_clip_val=null")
    record = run(cfg, tmp_path)
    assert record["status"] == "diverged"
    assert "lower optimizer.lr" in record["error"]
    assert json.loads((tmp_path / "record.json").read_text())["status"] == "diverged"


def test_failing_run_is_recorded_as_failed_and_raises(compose_config, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr("pytorch_lightning.Trainer.fit", broken)
    with pytest.raises(RuntimeError):
        run(compose_config(*TINY), tmp_path)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["status"] == "failed" and "disk on fire" in record["error"]


def test_run_that_never_finishes_leaves_no_done_record(compose_config, tmp_path, monkeypatch):
    seen = {}

    def interrupted(*args, **kwargs):
        seen["status"] = json.loads((tmp_path / "record.json").read_text())["status"]
        raise KeyboardInterrupt
    monkeypatch.setattr("pytorch_lightning.Trainer.fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(compose_config(*TINY), tmp_path)
    assert seen["status"] == "running"
    assert json.loads((tmp_path / "record.json").read_text())["status"] == "failed"


def test_wrong_attention_name_is_a_clear_error(compose_config, tmp_path):
    with pytest.raises(SeqbenchError, match="valid attention rules: additive, concat, scaled_dot"):
        run(compose_config(*TINY, "model=bilstm_attn", "model.attention=luong"), tmp_path)


def test_config_hash_ignores_seed_and_paths_but_not_hyperparameters(compose_config):
    from omegaconf import OmegaConf
    def hashed(*overrides):
        return config_hash(OmegaConf.to_container(compose_config(*overrides), resolve=True))
    assert hashed("seed=1") == hashed("seed=2") == hashed("seed=1", "paths.output_root=/elsewhere")
    assert hashed("seed=1") != hashed("seed=1", "optimizer.lr=0.5")
    assert hashed() != hashed("model=gru")


def test_atomic_write_leaves_the_old_record_when_writing_fails(tmp_path, monkeypatch):
    path = write_json_atomic(tmp_path / "record.json", {"status": "done"})
    monkeypatch.setattr("json.dump", lambda *a, **k: (_ for _ in ()).throw(OSError("No space left on device")))
    with pytest.raises(OSError):
        write_json_atomic(path, {"status": "running"})
    assert json.loads(path.read_text()) == {"status": "done"}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "seqbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_cli_runs_and_prints_the_record_path_last(tmp_path):
    result = cli(*TINY, f"paths.output_root={tmp_path}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("record: ")
    record = json.loads(Path(last.removeprefix("record: ")).read_text())
    assert record["status"] == "done" and "test mse" in result.stdout


def test_cli_wrong_model_name_lists_the_valid_ones(tmp_path):
    result = cli("model=transformer", cwd=tmp_path)
    assert result.returncode != 0
    for name in ["rnn", "lstm", "gru", "bilstm_attn"]:
        assert name in result.stderr


def test_cli_missing_data_says_where_to_put_it(tmp_path):
    env_cmd = [sys.executable, "-c",
               "import urllib.request, urllib.error, runpy, sys;"
               "urllib.request.urlopen = lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError('offline'));"
               "sys.argv = ['seqbench', 'dataset=trec', 'dataset.root=" + str(tmp_path / "empty") + "',"
               " 'paths.output_root=" + str(tmp_path) + "'];"
               "runpy.run_module('seqbench', run_name='__main__')"]
    result = subprocess.run(env_cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "error: The TREC train file train_5500.label is not on this machine" in result.stderr
    assert "Traceback" not in result.stderr
    record = json.loads(Path(result.stdout.strip().splitlines()[-1].removeprefix("record: ")).read_text())
    assert record["status"] == "failed"


def test_peak_memory_is_measured_per_run_not_per_process(compose_config, tmp_path):
    """A sweep runs many jobs in one process: each record must report its own run's peak."""
    record = run(compose_config(*TINY), tmp_path)
    assert record["peak_memory_kind"] in {"process_rss_sampled_peak", "cuda_max_allocated"}
    assert 0 < record["peak_memory_mb"] < 1e6
