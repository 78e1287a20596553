import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
REPO = Path(__file__).resolve().parent.parent

from seqbench.names import register_resolvers

register_resolvers()

# Overrides that make any composed run tiny: small generated data (3 batches), two epochs, no
# progress bar. Not limit_*_batches: those make a run a debug run, which is never reused.
TINY = ["trainer.enable_progress_bar=false", "trainer.max_epochs=2", "model.hidden_size=8",
        "model.embedding_dim=8", "dataset.n_train=48", "dataset.n_val=32", "dataset.n_test=32",
        "dataset.seq_len=16", "dataset.warmup_steps=2", "dataset.batch_size=16"]


@pytest.fixture
def compose_config(tmp_path):
    """Compose the real configs in conf/ with overrides, as ``python -m seqbench`` would.
    Runs look for earlier records under the test's own folder, never ./outputs."""
    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name="config", overrides=[f"paths.output_root={tmp_path}", *overrides])
    return _compose


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Downloads and token caches of unit tests go to a temporary folder, never ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    root = os.environ.get("SEQBENCH_DATA")
    if not root:
        pytest.skip("SEQBENCH_DATA is unset: point it at a folder with aclImdb.tar.gz and trec/ "
                    "(for example ../shared/data) to run the real-data tests")
    return Path(root)
