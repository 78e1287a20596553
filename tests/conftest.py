import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
REPO = Path(__file__).resolve().parent.parent
# Every model config, by its name (model=<name>): conf/model/*.yaml, less the files whose names
# start with "_", which are parts of model configs (_shared.yaml), not models.
MODEL_CONFIGS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml") if not p.stem.startswith("_"))

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
    """Downloads and token caches of unit tests go to a temporary folder, never ~/.cache; a test's
    --config-dir (kept in the environment for child processes) ends with the test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    monkeypatch.setenv("SEQBENCH_CONFIG_DIRS", "")


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    root = os.environ.get("SEQBENCH_DATA")
    if not root:
        pytest.skip("SEQBENCH_DATA is unset: point it at a folder with aclImdb.tar.gz and trec/ "
                    "(for example ../shared/data) to run the real-data tests")
    return Path(root)


def datamodule_of(cfg):
    """The data module a composed config builds (as a run builds it)."""
    from omegaconf import OmegaConf

    from seqbench.data import build_datamodule
    return build_datamodule(OmegaConf.to_container(cfg.dataset, resolve=True), cfg.seed)


def use_text_source(monkeypatch, name: str, source) -> None:
    """Make the registered text data set ``name`` read ``source`` instead of its real files."""
    from seqbench.data.declare import text_entry
    from seqbench.registry import DATASETS, datasets
    entry = datasets()[name]
    monkeypatch.setitem(DATASETS, name, text_entry(name, entry.schema, lambda config: source, entry.module))


def tiny_text_source(tmp_path):
    """Labels spelled out by three words; the test examples are not in the training data."""
    from seqbench.data import TextSource
    data = tmp_path / "tiny.tsv"
    data.write_text("x")
    words = {0: ["awful dull boring", "dull awful boring"], 1: ["great superb lovely", "lovely great superb"]}
    texts = [f"{words[i % 2][i % 4 // 2]} film number {i}" for i in range(80)]
    held_out = [f"this {words[i % 2][(i + 1) % 4 // 2]} movie {1000 + i}" for i in range(20)]
    return TextSource("tiny", lambda root: data,
                      lambda path: {"train": (texts, [i % 2 for i in range(80)]),
                                    "test": (held_out, [i % 2 for i in range(20)])}, ("neg", "pos"))


def required_in_ci() -> bool:
    """In CI (``CI`` set, or SEQBENCH_REQUIRE_BROWSER=1 as .ci/run sets it) every optional tool the
    dev extras bring must be there: a test that needs one fails rather than skips."""
    return bool(os.environ.get("CI")) or os.environ.get("SEQBENCH_REQUIRE_BROWSER") == "1"


def import_or_skip(module: str, reason: str):
    """``pytest.importorskip`` on a developer's machine; in CI a missing module fails the test,
    so a test can never pass there by skipping."""
    if required_in_ci():
        import importlib
        try:
            return importlib.import_module(module)
        except ImportError as error:
            pytest.fail(f"{module} is missing ({error}); {reason}")
    return pytest.importorskip(module, reason=reason)


def browser_or_skip() -> str:
    """Debian's chromium for the tests that look at pages as a person does. Skipped on a developer's
    machine without it; in CI (SEQBENCH_REQUIRE_BROWSER=1, set by .ci/run, which installs it) a
    missing browser fails instead, so a browser test can never pass by skipping there."""
    import shutil
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        message = "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if required_in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return chromium


@pytest.fixture
def one_torch_thread():
    """Tensors this small gain nothing from threads, and on a busy machine lose a lot to them
    (model contract and canonical-model tests use it)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def contract_config_dirs() -> list[Path]:
    """The config folders the contract tests collect from: conf/, examples/*/conf, and the folders
    in ``SEQBENCH_CONTRACT_CONFIG_DIRS`` (separated by ``:``)."""
    extra = [Path(p) for p in os.environ.get("SEQBENCH_CONTRACT_CONFIG_DIRS", "").split(":") if p]
    return [Path(CONFIG_DIR), *sorted(REPO.glob("examples/*/conf")), *extra]


def compose_group(config_dir: Path, group: str, name: str) -> dict:
    """The resolved ``group`` of ``<group>=<name>``, composed as ``seqbench --config-dir`` would."""
    from omegaconf import OmegaConf
    overrides = [f"{group}={name}"]
    if config_dir != Path(CONFIG_DIR):
        overrides.insert(0, f"hydra.searchpath=[file://{config_dir.resolve()}]")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg[group], resolve=True)
