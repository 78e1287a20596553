"""The extension layer cannot lie: what the registries accept and refuse, and what a run's identity
is made of when a model or a data set comes from a file of yours.

- a name belongs to one model and one data set: registering a taken name is refused in one line;
- a model config names its encoder (``cell``), which resolves through the registry: nothing is
  guessed, an unregistered class is refused;
- a run's config hash covers every key its schema fills in, so a changed default makes a new run;
- a run's code fingerprint covers what its code imports (not a list kept by hand).
"""
import dataclasses
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from seqbench.config import ConfigError, check_config, config_hash, filled_model_config, network_config
from seqbench.data.declare import DataSpec, generated_dataset
from seqbench.imported_code import code_fingerprint, imported_files
from seqbench.registry import DATASETS, MODELS, RegistryError, datasets, models, register_model
from seqbench.run import prepare, run
from tests.conftest import CONFIG_DIR, TINY

ENCODER = '''
from dataclasses import dataclass

import torch
from torch import nn

from seqbench.config import NetworkSchema
from seqbench.models.sequence import gather_last_step
from seqbench.registry import register_model
{imports}

@dataclass
class Schema(NetworkSchema):
    scale: float = {scale}


@register_model({name!r}, schema=Schema)
class Encoder(nn.Module):
    """Per-step projection times ``scale``: causal, never reads the padding."""

    def __init__(self, input_size, config):
        super().__init__()
        self.output_size = config.hidden_size
        self.projection = nn.Linear(input_size, config.hidden_size)
        self.scale = config.scale

    def forward(self, x, lengths):
        outputs = torch.tanh(self.projection(x)) * self.scale
        return outputs, gather_last_step(outputs, lengths)
'''


def own_model(folder: Path, name: str | None = None, scale: float = 1.0, imports: str = "",
              yaml: str | None = None) -> tuple[str, str]:
    """A user's model in ``folder``: an encoder module and ``conf/model/<name>.yaml`` (the README's
    way). Returns (module name, model name)."""
    name = name or f"mine_{uuid.uuid4().hex[:8]}"
    module = f"encoder_{uuid.uuid4().hex[:8]}"
    (folder / f"{module}.py").write_text(ENCODER.format(name=name, scale=scale, imports=imports))
    (folder / "conf" / "model").mkdir(parents=True, exist_ok=True)
    (folder / "conf" / "model" / f"{name}.yaml").write_text(
        yaml if yaml is not None else f"defaults:\n  - _shared\n  - _self_\n\nname: {name}\ncell: {module}.Encoder\n")
    return module, name


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """The folder a user runs seqbench in (their files importable from it); models and data sets
    registered during the test are forgotten after it."""
    folder = tmp_path / "mine"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    known_models, known_datasets = dict(models()), dict(datasets())
    yield folder
    for registry, known in ((MODELS, known_models), (DATASETS, known_datasets)):
        for key in set(registry) - set(known):
            del registry[key]


def compose_in(folder: Path, *overrides: str):
    """Compose as ``seqbench --config-dir conf ...`` does from ``folder``."""
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[
            f"hydra.searchpath=[file://{folder / 'conf'}]", f"paths.output_root={folder / 'out'}", *TINY,
            "logger=csv", *overrides])


def resolved(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


# --------------------------------------------------------------------------- one name, one owner
def test_a_file_of_yours_registering_a_built_in_name_is_refused_in_one_line(user_folder):
    module, _ = own_model(user_folder, name="lstm")
    with pytest.raises(RegistryError) as refused:
        network_config(cell=f"{module}.Encoder")
    message = str(refused.value)
    assert "two models are registered as 'lstm'" in message and "seqbench.models.classic.ClassicEncoder" in message
    assert f"{module}.Encoder" in message and "\n" not in message
    assert MODELS["lstm"].cls.__module__ == "seqbench.models.classic"   # the built-in is untouched


def test_registering_the_same_class_again_is_no_duplicate():
    entry = models()["gru"]
    register_model("gru", schema=entry.schema, gradient_flow=entry.gradient_flow)(entry.cls)  # a module reloaded
    assert models()["gru"].cls is entry.cls


def test_a_data_set_name_belongs_to_one_file(user_folder):
    with pytest.raises(RegistryError, match=r"two data sets are registered as 'sincos': seqbench.datasets.sincos "
                                            r"and tests.test_extending"):
        generated_dataset("sincos", DATASETS["sincos"].schema, "per_step_regression", lambda config: None,
                          lambda config: DataSpec("per_step_regression", 1, input_dim=1), test_set_keys=())
    assert DATASETS["sincos"].module == "seqbench.datasets.sincos"


# ------------------------------------------------------------------------ nothing is guessed
def test_a_model_config_without_cell_is_refused(user_folder):
    _, name = own_model(user_folder, yaml="defaults:\n  - _shared\n  - _self_\n\nname: meanemb_min\n")
    with pytest.raises(ConfigError) as refused:
        check_config(resolved(compose_in(user_folder, f"model={name}")))
    assert str(refused.value).startswith("model.cell is missing: a model config names its encoder, one of ")
    assert "lstm" in str(refused.value) and "\n" not in str(refused.value)


def test_a_cell_must_name_a_registered_encoder(user_folder):
    (user_folder / "plain.py").write_text("import torch\n\nclass Encoder(torch.nn.Module):\n    pass\n")
    with pytest.raises(RegistryError, match=r"model.cell='plain.Encoder' is not a registered encoder: decorate "
                                            r"the class with @register_model"):
        network_config(cell="plain.Encoder")
    with pytest.raises(RegistryError, match="unknown model cell 'mamba'; valid: "):
        network_config(cell="mamba")


def test_the_command_line_refuses_both_in_one_line(user_folder):
    """What a user sees: one line, exit 2, no traceback, no folder left behind."""
    module, _ = own_model(user_folder, name="lstm")
    (user_folder / "conf" / "model" / "theirs.yaml").write_text(
        f"defaults:\n  - _shared\n  - _self_\n\nname: theirs\ncell: {module}.Encoder\n")
    (user_folder / "conf" / "model" / "nocell.yaml").write_text("defaults:\n  - _shared\n  - _self_\n\nname: nocell\n")
    for model, expected in (("theirs", "error: two models are registered as 'lstm'"),
                            ("nocell", "error: model.cell is missing")):
        result = subprocess.run([sys.executable, "-m", "seqbench", "--config-dir", "conf", f"model={model}",
                                 f"paths.output_root={user_folder / 'out'}"], cwd=user_folder, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith(expected), result.stderr
        assert not list((user_folder / "out").rglob("record.json"))


# ------------------------------------------------------------------- identity: the filled config
def test_a_key_left_out_is_hashed_as_the_value_it_takes(user_folder):
    """A config that leaves ``scale`` out and one that states the default are one run; the record
    shows the value the run trained with."""
    module, name = own_model(user_folder, scale=2.0)
    left_out = prepare(compose_in(user_folder, f"model={name}"))
    stated = prepare(compose_in(user_folder, f"model={name}", "+model.scale=2.0"))
    other = prepare(compose_in(user_folder, f"model={name}", "+model.scale=3.0"))
    assert left_out.config["model"]["scale"] == 2.0 and left_out.network.scale == 2.0
    assert left_out.identity.config_hash == stated.identity.config_hash != other.identity.config_hash


def test_changing_a_schema_default_makes_the_next_run_fresh_not_reused(user_folder):
    module, name = own_model(user_folder, scale=1.0)
    first = run(compose_in(user_folder, f"model={name}"), user_folder / "out" / "first")
    assert first["status"] == "done" and first["config"]["model"]["scale"] == 1.0
    again = run(compose_in(user_folder, f"model={name}"), user_folder / "out" / "again")
    assert again["reused_from"]   # nothing changed: reused
    entry = MODELS[name]
    changed = dataclasses.make_dataclass("Schema", [("scale", float, dataclasses.field(default=0.5))],
                                         bases=(entry.schema,))
    MODELS[name] = dataclasses.replace(entry, schema=changed)   # the same files, a new default (forgotten after)
    fresh = run(compose_in(user_folder, f"model={name}"), user_folder / "out" / "fresh")
    assert "reused_from" not in fresh and fresh["plan"]["decision"] == "fresh"
    assert fresh["config"]["model"]["scale"] == 0.5 and fresh["config_hash"] != first["config_hash"]
    assert fresh["code_fingerprint"] == first["code_fingerprint"]


def test_a_model_config_without_the_shared_keys_takes_them_from_the_run_s_data_set():
    dataset = {"embedding_dim": 300, "embedding_dropout": 0.3, "dropout": 0.5}
    filled = filled_model_config({"cell": "gru"}, dataset)
    assert (filled["embedding_dim"], filled["embedding_dropout"], filled["dropout"]) == (300, 0.3, 0.5)
    assert filled["name"] == "gru" and filled["hidden_size"] == 128 and filled["impl"] == "native"
    base = {"seed": 0, "dataset": {"name": "sincos"}, "trainer": {}}
    assert config_hash({**base, "model": filled}) == config_hash(
        {**base, "model": filled_model_config({**filled}, dataset)})


# ------------------------------------------------------------------- identity: the code imported
def test_the_code_fingerprint_follows_what_a_model_imports(monkeypatch):
    """Editing a file a model imports (models/sequence.py for mingru) changes its fingerprint;
    editing a model file it does not import (transformer.py) does not; the configuration layer
    (config.py, where schema defaults live) is in every run's."""
    roots = ("seqbench.train", "seqbench.datasets.sincos")
    files = imported_files(*roots, models()["mingru"].module)
    names = {path.relative_to(Path(CONFIG_DIR).parent / "seqbench").as_posix() for path in files.values()}
    assert {"config.py", "registry.py", "models/sequence.py", "models/minrnn.py", "datasets/sincos.py",
            "training.py", "data/modules.py"} <= names
    assert not names & {"models/transformer.py", "models/lru.py", "report.py", "stats.py", "datasets/trec.py"}
    assert not [name for name in names if name.split("/")[0] in {"stats", "search", "bench"}]   # the tools' packages
    before = code_fingerprint(*roots, models()["mingru"].module)
    read_bytes = Path.read_bytes
    for edited, changes in (("sequence.py", True), ("transformer.py", False), ("config.py", True)):
        monkeypatch.setattr(Path, "read_bytes",
                            lambda path: read_bytes(path) + (b"\n_EDITED = 1\n" if path.name == edited else b""))
        assert (code_fingerprint(*roots, models()["mingru"].module) != before) == changes, edited
    monkeypatch.setattr(Path, "read_bytes", read_bytes)


def test_your_own_model_s_fingerprint_covers_the_files_it_imports_from_its_folder(user_folder):
    helpers, unrelated = f"helpers_{uuid.uuid4().hex[:8]}", f"unrelated_{uuid.uuid4().hex[:8]}"
    (user_folder / f"{helpers}.py").write_text("FACTOR = 1.0\n")
    (user_folder / f"{unrelated}.py").write_text("X = 1\n")
    module, name = own_model(user_folder, imports=f"from {helpers} import FACTOR")
    network_config(cell=f"{module}.Encoder")   # imported, as a run does
    files = imported_files(module)
    assert {module, helpers, "seqbench.models.sequence", "seqbench.config"} <= set(files)
    assert unrelated not in files and not any("site-packages" in str(p) for p in files.values())
    before = code_fingerprint(module)
    (user_folder / f"{unrelated}.py").write_text("X = 2\n")
    assert code_fingerprint(module) == before
    (user_folder / f"{helpers}.py").write_text("FACTOR = 2.0\n")
    assert code_fingerprint(module) != before


def test_editing_a_file_the_model_imports_reruns_and_says_why(user_folder):
    """A real edit (not a fingerprint put in place by the test): the helper the encoder imports.
    A comment or a docstring is no edit of what computes: the finished run is reused."""
    helpers = f"helpers_{uuid.uuid4().hex[:8]}"
    (user_folder / f"{helpers}.py").write_text("FACTOR = 1.0\n")
    module, name = own_model(user_folder, imports=f"from {helpers} import FACTOR")
    first = run(compose_in(user_folder, f"model={name}"), user_folder / "out" / "a")
    (user_folder / f"{helpers}.py").write_text('"""Reworded."""\n\nFACTOR = 1.0  # a comment\n')
    cleaned = run(compose_in(user_folder, f"model={name}"), user_folder / "out" / "c")
    assert cleaned["reused_from"] and cleaned["code_fingerprint"] == first["code_fingerprint"]
    (user_folder / f"{helpers}.py").write_text("FACTOR = 1.0\nSCALE = 2\n")
    second = run(compose_in(user_folder, f"model={name}"), user_folder / "out" / "b")
    assert "reused_from" not in second and second["finished"] != first["finished"]
    assert second["code_fingerprint"] not in (first["code_fingerprint"], None)
    reason = second["plan"]["reason"]
    assert "code" in reason and first["code_fingerprint"][:4] in reason and second["code_fingerprint"][:4] in reason


def test_every_kind_of_task_has_the_module_that_trains_it():
    from seqbench.tasks import TASKS
    from seqbench.training import TASK_MODULES
    assert set(TASK_MODULES) == set(TASKS)
    assert all(TASK_MODULES[name].monitor == task.monitor for name, task in TASKS.items())


def test_records_written_before_defaults_were_filled_in_are_still_read(tmp_path):
    """Old records (a model config without every schema key) still load into tables."""
    from seqbench.results import load_records
    record = {"status": "done", "model": "lstm", "dataset": "sincos", "seed": 0, "config_hash": "old",
              "config": {"model": {"name": "lstm", "cell": "lstm", "hidden_size": 8}, "dataset": {"name": "sincos"}},
              "test": {"mse": 0.1}, "val_best": {"mse": 0.1}, "task": "per_step_regression", "metric": "mse"}
    (tmp_path / "record.json").write_text(json.dumps(record))
    assert len(load_records([tmp_path])) == 1
