"""Beyond one process: DDP over 2 CPU processes (gloo), and a sweep through submitit's local launcher."""
import json
import subprocess
import sys

import pytest
import pytorch_lightning as pl

from seqbench.run import build_datamodule, build_task, network_config
from tests.conftest import TINY

DDP_RUN = [*TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "dataset.n_test=50"]


def test_ddp_run_writes_one_record_whose_test_metric_matches_one_process(compose_config, tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench", *DDP_RUN, f"paths.output_root={tmp_path}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = list(tmp_path.rglob("record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["status"] == "done" and record["world_size"] == 2

    # The same checkpoint evaluated by one process on the whole test set.
    cfg = compose_config(*TINY, "dataset.n_test=50")
    datamodule = build_datamodule(cfg)
    task = build_task(cfg, network_config(cfg.model), datamodule.spec)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False)
    single = trainer.test(task, datamodule=datamodule, ckpt_path=record["best_checkpoint"], verbose=False)[0]
    assert single["test/mse"] == pytest.approx(record["test"]["mse"], rel=1e-5)
    assert single["test/mae"] == pytest.approx(record["test"]["mae"], rel=1e-5)


def test_ddp_inside_a_multirun_is_refused_with_a_reason(tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench", "-m", *DDP_RUN, "seed=0,1",
                             f"paths.output_root={tmp_path}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "cannot run inside a multirun" in result.stderr


def test_sweep_through_the_local_submitit_launcher_lands_both_records(tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench", "-m", "model=rnn,gru", *TINY,
                             "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                             f"paths.output_root={tmp_path}"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in tmp_path.glob("sweeps/*/*/*/record.json")]
    assert sorted(r["model"] for r in records) == ["gru", "rnn"]
    assert all(r["status"] == "done" for r in records)


def test_slurm_launcher_config_composes(compose_config):
    from hydra import compose, initialize_config_dir
    from tests.conftest import CONFIG_DIR
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_task == 1 and launcher.array_parallelism == 32
