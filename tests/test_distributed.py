"""Beyond one process: DDP over 2 CPU processes (gloo), and a sweep through submitit's local launcher."""
import json
import subprocess
import sys

import pytest
import pytorch_lightning as pl

from seqbench.models import network_config
from seqbench.training import build_task
from tests.conftest import TINY, datamodule_of

DDP_RUN = [*TINY, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "dataset.n_test=50",
           "dataset.n_train=64"]


@pytest.mark.slow
def test_ddp_run_writes_one_record_whose_test_metric_matches_one_process(compose_config, tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench", *DDP_RUN, f"paths.output_root={tmp_path}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = list(tmp_path.rglob("record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["status"] == "done" and record["world_size"] == 2
    # Throughput is the whole job's: 4 batches of 16 sequences of 16 steps per epoch, shared by
    # two processes, all counted (one process alone would count half).
    assert record["train_tokens"] == record["epochs"] * 64 * 16

    # The same checkpoint evaluated by one process on the whole test set.
    cfg = compose_config(*TINY, "dataset.n_test=50", "dataset.n_train=64")
    datamodule = datamodule_of(cfg)
    task = build_task(cfg, network_config(dict(cfg.model)), datamodule.spec)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False)
    single = trainer.test(task, datamodule=datamodule, ckpt_path=record["best_checkpoint"], verbose=False)[0]
    assert single["test/mse"] == pytest.approx(record["test"]["mse"], rel=1e-5)
    assert single["test/mae"] == pytest.approx(record["test"]["mae"], rel=1e-5)


def test_ddp_inside_a_multirun_is_refused_with_a_reason(tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench", "-m", *DDP_RUN, "seed=0,1",
                             f"paths.output_root={tmp_path}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "cannot run inside a multirun" in result.stderr


@pytest.mark.slow
def test_sweep_through_the_local_submitit_launcher_lands_both_records(tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench", "-m", "model=rnn,gru", *TINY,
                             "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                             f"paths.output_root={tmp_path}"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in tmp_path.glob("sweeps/*/*/*/record.json")]
    assert sorted(r["model"] for r in records) == ["gru", "rnn"]
    assert all(r["status"] == "done" for r in records)


def test_slurm_launcher_settings_are_ones_submitit_accepts(tmp_path, monkeypatch):
    """Compose hydra/launcher=slurm and hand its settings to submitit's own SLURM executor the way
    Hydra's plugin does: a key or value submitit does not accept fails here, not on a cluster."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf
    from tests.conftest import CONFIG_DIR
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert params.pop("_target_").endswith("SlurmLauncher")
    params.pop("submitit_folder")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    # No srun here: tell submitit it is on a cluster; parameter checks are its own.
    monkeypatch.setattr(submitit.slurm.slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm")
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()
                                  if k not in ("max_num_timeout",) and v is not None})
    assert executor._executor.parameters["partition"] == "gpu"
