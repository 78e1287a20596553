"""Every job of a shipped experiment grid is a valid configuration: a typo in a grid's model list
(or a model its data sets cannot take) fails here, not an hour into a reference run."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from seqbench.config import check_config, network_config
from tests.conftest import CONFIG_DIR

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


def grid_jobs(experiment: str) -> list[list[str]]:
    params = OmegaConf.load(Path(CONFIG_DIR) / "experiment" / f"{experiment}.yaml").hydra.sweeper.params
    # Lengths and seeds do not decide whether a configuration is valid: one value of each is enough.
    axes = {key: str(values).split(",") for key, values in params.items() if key not in ("seed",)}
    return [[f"{key}={value}" for key, value in zip(axes, choice)] for choice in itertools.product(*axes.values())]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_job_of_a_shipped_grid_is_a_valid_config(experiment, tmp_path):
    jobs = grid_jobs(experiment)
    assert jobs, f"{experiment}: no sweep parameters"
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for overrides in jobs:
            cfg = compose(config_name="config", overrides=[f"experiment={experiment}",
                                                           f"paths.output_root={tmp_path}", *overrides])
            config = OmegaConf.to_container(cfg, resolve=True)
            check_config(config)  # what a run checks before it reads any data
            network_config(config["model"])  # and the model schema it fills: a key the cell cannot take fails here


def test_the_memory_grid_holds_every_cell_of_the_reference_table():
    params = OmegaConf.load(Path(CONFIG_DIR) / "experiment" / "memory.yaml").hydra.sweeper.params
    assert set(str(params.model).split(",")) >= {"rnn", "irnn", "lstm", "lstm_fb1", "gru", "mingru", "minlstm", "lru",
                                                 "lru_deep"}
    # Grown in stages: T = 50 and 100 for every cell, longer T for the cells that solve those.
    assert set(str(params["dataset.length"]).split(",")) >= {"50", "100"}
    trainer = OmegaConf.load(Path(CONFIG_DIR) / "experiment" / "memory.yaml").trainer
    assert trainer.stop_when_solved is True and trainer.max_epochs * 5000 // 50 >= 20_000  # until solved, or a cap


SEARCHES = sorted(p.stem for p in (Path(CONFIG_DIR) / "hparams_search").glob("*.yaml") if p.stem != "text_file")


@pytest.mark.parametrize("search", SEARCHES)
def test_every_variant_of_a_shipped_search_is_a_valid_config(search, tmp_path):
    """text_file needs the user's files; the others name a shipped data set."""
    variants = OmegaConf.load(Path(CONFIG_DIR) / "hparams_search" / f"{search}.yaml").hparams_search.variants
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for variant in variants:
            cfg = compose(config_name="config", overrides=[f"hparams_search={search}", f"model={variant}",
                                                           f"paths.output_root={tmp_path}"])
            config = OmegaConf.to_container(cfg, resolve=True)
            config.pop("hparams_search", None)  # the search's own settings, read by `seqbench search`
            check_config(config)
            network_config(config["model"])


def test_the_trec_search_tunes_every_variant_of_the_default_comparison():
    variants = set(OmegaConf.load(Path(CONFIG_DIR) / "hparams_search" / "trec.yaml").hparams_search.variants)
    assert variants == {"rnn", "lstm", "gru", "bilstm_attn_additive", "bilstm_attn_concat", "bilstm_attn_scaled_dot",
                        "mingru_deep", "minlstm_deep", "lru_deep", "bitransformer"}


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS
                                        if "One at a time:" in (Path(CONFIG_DIR) / "experiment" / f"{e}.yaml").read_text()])
def test_the_one_at_a_time_override_a_grid_names_composes(experiment, tmp_path):
    """A grid's comment tells users how to run one job at a time; that override must compose with
    the grid's own launcher settings (hydra/launcher=basic did not: it has no n_jobs)."""
    text = (Path(CONFIG_DIR) / "experiment" / f"{experiment}.yaml").read_text()
    override = text.split("One at a time:")[1].split()[0].rstrip(".")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=[f"experiment={experiment}", f"paths.output_root={tmp_path}", override])
    assert cfg.hydra.launcher.n_jobs == 1
