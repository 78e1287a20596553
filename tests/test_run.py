import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from seqbench import SeqbenchError
from seqbench.record import write_json_atomic
from seqbench.run import run
from seqbench.tasks import TASKS
from tests.conftest import MODEL_CONFIGS, TINY, datamodule_of, tiny_text_source, use_text_source

RECORD_FIELDS = {"status", "model", "dataset", "seed", "config", "config_hash", "code_fingerprint",
                 "data_fingerprint", "run_key", "task", "metric", "examples", "test", "val_best", "epochs",
                 "epoch_seconds", "validation_seconds", "train_tokens_per_s", "params", "peak_memory_mb",
                 "peak_memory_kind", "hardware", "versions", "git_commit"}


def independent_test_mse(cfg, checkpoint: str) -> float:
    """The test MSE of a checkpoint computed here, without seqbench's task or metrics."""
    from seqbench.models import network_config
    from seqbench.training import build_task
    datamodule = datamodule_of(cfg)
    datamodule.setup()
    task = build_task(cfg, network_config(dict(cfg.model)), datamodule.spec)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    task.load_state_dict(state)
    task.eval()
    test = datamodule.sets["test"]
    batch = test[list(range(len(test)))]
    with torch.no_grad():
        values, _ = task.net(batch["inputs"], batch["lengths"])
    warmup = cfg.dataset.warmup_steps
    return float(((values.squeeze(-1) - batch["targets"])[:, warmup:] ** 2).mean())


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_model_trains_on_sincos_and_leaves_a_complete_record(compose_config, tmp_path, model):
    cfg = compose_config(*TINY, f"model={model}")
    record = run(cfg, tmp_path)
    assert record["status"] == "done"
    on_disk = json.loads((tmp_path / "record.json").read_text())
    assert RECORD_FIELDS <= on_disk.keys()
    assert on_disk["task"] == "per_step_regression" and on_disk["metric"] == "mse"
    assert on_disk["examples"] == {"train": 48, "val": 32, "test": 32}
    # The recorded test MSE is the best checkpoint's, recomputed here without seqbench's metrics.
    assert on_disk["test"]["mse"] == pytest.approx(independent_test_mse(cfg, on_disk["best_checkpoint"]), rel=1e-4)
    assert on_disk["epochs"] == 2 and len(on_disk["epoch_seconds"]) == 2 and len(on_disk["history"]) == 2
    assert on_disk["train_tokens"] == 2 * 48 * 16  # every real step of every training sequence, twice
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


def test_sincos_lstm_learns_cos_from_sin(compose_config, tmp_path):
    """Not a toy check: a small LSTM gets well below the 0.5 variance of cos in a few epochs."""
    cfg = compose_config("trainer.enable_progress_bar=false", "trainer.max_epochs=4", "dataset.n_train=512",
                         "dataset.n_test=128", "model.hidden_size=32", "model.embedding_dim=16")
    record = run(cfg, tmp_path)
    assert record["test"]["mse"] < 0.05, record["history"]


def test_sincos_test_set_is_the_same_for_every_seed(compose_config):
    sets = {}
    for seed in (0, 1):
        datamodule = datamodule_of(compose_config(*TINY, f"seed={seed}"))
        datamodule.setup()
        sets[seed] = datamodule.sets
    assert torch.equal(sets[0]["test"].tensors["inputs"], sets[1]["test"].tensors["inputs"])
    assert not torch.equal(sets[0]["train"].tensors["inputs"], sets[1]["train"].tensors["inputs"])
    assert not torch.equal(sets[0]["val"].tensors["inputs"], sets[1]["val"].tensors["inputs"])


def test_text_classification_runs_end_to_end_on_held_out_examples(compose_config, tmp_path, monkeypatch):
    use_text_source(monkeypatch, "trec", tiny_text_source(tmp_path))
    cfg = compose_config("dataset=trec", "model=bilstm_attn", "model.attention=scaled_dot", "model.hidden_size=8",
                         "model.embedding_dim=8", "trainer.enable_progress_bar=false", "trainer.max_epochs=8",
                         f"dataset.cache_dir={tmp_path / 'cache'}", "dataset.batch_size=8", "dataset.lr=0.02",
                         "dataset.embedding_dropout=0", "dataset.dropout=0")
    record = run(cfg, tmp_path / "run")
    assert record["status"] == "done" and record["model"] == "bilstm_attn_scaled_dot"
    # what the task computes while training, as its registry entry lists them (AUROC & co. come from predictions)
    assert set(record["test"]) == {m.name for m in TASKS["classification"].training_metrics} == {"acc", "f1"}
    assert record["test"]["acc"] >= 0.9, record["history"]  # unseen sentences, other numbers and filler words
    predictions = (tmp_path / "run" / "predictions.csv").read_text().splitlines()
    assert predictions[0].startswith("index,target,predicted,p_neg,p_pos") and len(predictions) == 21


VALIDATION_SLEEP = 3.0  # far above a tiny epoch's training time (~0.3 s), even on a busy machine


class SlowValidation(pl.Callback):
    def on_validation_epoch_end(self, trainer, module):
        if not trainer.sanity_checking:
            time.sleep(VALIDATION_SLEEP)


def test_epoch_time_is_training_only_and_validation_is_timed_apart(compose_config, tmp_path):
    """Not a speed test: a validation that sleeps must show up in validation_seconds and not in
    epoch_seconds (which used to include it)."""
    record = run(compose_config(*TINY), tmp_path, extra_callbacks=[SlowValidation()])
    assert all(seconds < VALIDATION_SLEEP for seconds in record["epoch_seconds"]), record["epoch_seconds"]
    assert all(seconds >= VALIDATION_SLEEP for seconds in record["validation_seconds"]), record["validation_seconds"]
    assert record["train_tokens_per_s"] == pytest.approx(record["train_tokens"] / sum(record["epoch_seconds"]))


def test_record_describes_every_trained_epoch_when_the_best_is_earlier(compose_config, tmp_path, monkeypatch):
    from seqbench.training import RegressionTask

    def worse_every_epoch(self, batch, metrics, stage):  # the first epoch is the best: best.ckpt != last
        self.log(f"{stage}/mse", float(self.current_epoch + 1), on_epoch=True, batch_size=len(batch["lengths"]))
        self.log(f"{stage}/loss", float(self.current_epoch + 1), on_epoch=True, batch_size=len(batch["lengths"]))
    monkeypatch.setattr(RegressionTask, "_evaluate", worse_every_epoch)
    record = run(compose_config(*TINY, "trainer.max_epochs=4"), tmp_path)
    assert record["best_epoch"] == 0 and record["best_checkpoint"].endswith("best.ckpt")
    assert record["epochs"] == 4 and [h["epoch"] for h in record["history"]] == [0, 1, 2, 3]
    assert json.loads((tmp_path / "record.json").read_text())["epochs"] == 4


def test_diverging_run_is_recorded_as_diverged(compose_config, tmp_path):
    cfg = compose_config(*TINY, "optimizer.lr=1e20", "trainer.gradient_clip_val=null")
    record = run(cfg, tmp_path)
    assert record["status"] == "diverged"
    assert "lower optimizer.lr" in record["error"]
    assert json.loads((tmp_path / "record.json").read_text())["status"] == "diverged"


def test_a_diverged_run_is_reused_not_trained_again(compose_config, tmp_path):
    """Diverged is a finished outcome: the same command again (a resumed sweep) reuses it, as it
    does a done run, instead of spending the run's time to diverge again."""
    cfg = compose_config(*TINY, "optimizer.lr=1e20", "trainer.gradient_clip_val=null")
    first = run(cfg, tmp_path / "first")
    assert first["status"] == "diverged"
    again = run(cfg, tmp_path / "sweep" / "0", in_sweep=True)
    assert again["status"] == "diverged" and again["reused_from"] == str(tmp_path / "first" / "record.json")
    from seqbench.sweep import _counts
    assert _counts(tmp_path / "sweep") == {"done": 0, "reused": 1, "failed": 0, "other": 0}


def test_failing_run_is_recorded_as_failed_and_raises(compose_config, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr("pytorch_lightning.Trainer.fit", broken)
    with pytest.raises(RuntimeError):
        run(compose_config(*TINY), tmp_path)
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["status"] == "failed" and "disk on fire" in record["error"]


def test_interrupted_run_leaves_no_done_record(compose_config, tmp_path, monkeypatch):
    seen = {}

    def interrupted(*args, **kwargs):
        seen["status"] = json.loads((tmp_path / "record.json").read_text())["status"]
        raise KeyboardInterrupt
    monkeypatch.setattr("pytorch_lightning.Trainer.fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(compose_config(*TINY), tmp_path)
    assert seen["status"] == "running"
    assert json.loads((tmp_path / "record.json").read_text())["status"] == "interrupted"


def test_wrong_attention_name_is_a_clear_error(compose_config, tmp_path):
    with pytest.raises(SeqbenchError, match="valid attention rules: additive, concat, scaled_dot"):
        run(compose_config(*TINY, "model=bilstm_attn", "model.attention=luong"), tmp_path)


def test_atomic_write_leaves_the_old_record_when_writing_fails(tmp_path, monkeypatch):
    path = write_json_atomic(tmp_path / "record.json", {"status": "done"})
    monkeypatch.setattr("json.dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("No space left on device")))
    with pytest.raises(OSError):
        write_json_atomic(path, {"status": "running"})
    assert json.loads(path.read_text()) == {"status": "done"}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # 0644 under the usual umask


def _umask() -> int:
    import os
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cli(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "seqbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_cli_runs_and_prints_a_readable_summary_and_the_record_path_last(tmp_path):
    result = cli(*TINY, f"paths.output_root={tmp_path}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("record: ")
    record = json.loads(Path(lines[-1].removeprefix("record: ")).read_text())
    assert record["status"] == "done" and "test mse" in result.stdout
    assert "best validation mse" in result.stdout and "tensorboard --logdir" in result.stdout
    # Piped: one line per epoch, no progress-bar redraws, no Lightning start-up notices.
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert "\r" not in result.stdout and "GPU available" not in result.stdout and "Tip" not in result.stdout
    assert (Path(record["output_dir"]) / "__main__.log").read_text().count("epoch ") == 2


def test_cli_wrong_model_name_lists_the_valid_ones(tmp_path):
    result = cli("model=mamba", cwd=tmp_path)
    assert result.returncode == 2
    listed = result.stderr.strip().splitlines()[-1].partition("valid: ")[2].split(", ")
    assert listed == MODEL_CONFIGS  # every model config, exactly, and no part of one (_shared)


@pytest.mark.slow
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
    # Nothing was run, so no record was written, and none is announced.
    assert "record:" not in result.stdout and not list(tmp_path.rglob("record.json"))


def test_help_is_fast_and_names_the_other_tools(tmp_path):
    started = time.perf_counter()
    result = cli("--help", cwd=tmp_path)
    seconds = time.perf_counter() - started
    assert result.returncode == 0
    for tool in ("report", "eval", "explain", "diagnostics", "bench", "search"):
        assert f"seqbench {tool}" in result.stdout
    probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "seqbench", "--cfg", "job"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and "model:" in probe.stdout
    imported = {line.split("|")[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "pytorch_lightning" not in imported
    assert seconds < 30  # generous: the point is the import check above, not a timing


def test_config_values_are_checked_before_any_data_is_read(compose_config, tmp_path, monkeypatch):
    def must_not_read(*args, **kwargs):
        raise AssertionError("data was read before the config was checked")
    from seqbench.data import TextSource
    use_text_source(monkeypatch, "trec", TextSource("trec", must_not_read, must_not_read))
    bad = {"model.hidden_size=0": "model.hidden_size=0: must be a number > 0",
           "model.dropout=1.0": "model.dropout=1.0: must be in [0, 1)",
           "model.embedding_dropout=-0.1": "model.embedding_dropout=-0.1: must be in [0, 1)",
           # The model reads these from the data set: the error names the key the user set.
           "dataset.dropout=1.5": "dataset.dropout=1.5: must be in [0, 1)",
           "dataset.embedding_dropout=-0.2": "dataset.embedding_dropout=-0.2: must be in [0, 1)",
           "dataset.val_fraction=1.0": "dataset.val_fraction=1.0: must be in (0, 1)",
           "dataset.val_fraction=0": "dataset.val_fraction=0: must be in (0, 1)",
           "dataset.max_len=0": "dataset.max_len=0: must be a number > 0",
           "dataset.batch_size=0": "dataset.batch_size=0: must be a number > 0",
           "trainer.max_epochs=0": "trainer.max_epochs=0: must be a number > 0",
           "trainer.limit_train_batches=0": "trainer.limit_train_batches=0 trains nothing",
           "+model.hiden_size=8": "model.hiden_size: unknown key; did you mean 'hidden_size'?",
           "+dataset.batchsize=8": "dataset.batchsize: unknown key; did you mean 'batch_size'?",
           "+trainer.max_epoch=3": "trainer.max_epoch: unknown key; did you mean 'max_epochs'?"}
    for override, message in bad.items():
        with pytest.raises(SeqbenchError) as error:
            run(compose_config("dataset=trec", override), tmp_path / "x")
        assert message in str(error.value), (override, str(error.value))
        assert "\n" not in str(error.value)


def test_cli_unknown_key_is_one_line_naming_the_nearest_key(tmp_path):
    result = cli(*TINY, "+model.hiden_size=8", f"paths.output_root={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert "model.hiden_size: unknown key; did you mean 'hidden_size'?" in result.stderr
    assert "Traceback" not in result.stderr
