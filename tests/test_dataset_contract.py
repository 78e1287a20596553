"""The contract every data set is held to, generated from what seqbench knows, never from a list of
names: every data set config in ``conf/dataset/`` (and in ``examples/*/conf/dataset/``), under its
file's name. A data set added as the README says (a file in ``seqbench/datasets/``, a YAML in
``conf/dataset/``) is collected here with nothing else edited:

- its YAML is the one home of its values: it sets every key of its schema, and a key no YAML sets
  is refused in one line naming it;
- a tiny build poses the task its ``DataSpec`` says: inputs (token ids below the vocabulary size,
  or values with ``input_dim`` features), targets (classes below ``num_outputs``, or values; one
  per sequence or one per step), label names, lengths, counts;
- the test split depends only on its own seed (``test_seed``, or the test file), never on the
  run's seed;
- the data fingerprint is the same for the same data, written twice, and changes with the data;
- bad values are refused in one line that names the key.

Generated data sets build from their YAML's settings at a tiny size. Text data sets read tiny files
the tests write in their official formats (IMDB's ``aclImdb/`` layout, TREC's ``.label`` lines, a
CSV for ``text_file``), never ``$SEQBENCH_DATA``; a text data set of yours whose format this file
cannot write gets every check that needs no files, and its build checks are skipped, saying why.

``SEQBENCH_CONTRACT_CONFIG_DIRS`` (folders separated by ``:``, each holding a ``dataset/`` folder)
adds the data set configs of a config folder of your own, as for the model contract.
"""
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import typing
import uuid
from pathlib import Path

import pytest
import torch

from seqbench.config import ConfigError, check_dataset, config_hash, dataset_defaults, filled_dataset_config
from seqbench.data.declare import build_datamodule, dataset_kind
from seqbench.data.sources import RemoteFile
from seqbench.datasets import imdb, trec
from seqbench.registry import dataset_entry, datasets
from seqbench.tasks import TASKS
from tests.conftest import REPO, compose_group, contract_config_dirs


def contract_cases() -> list:
    """One case per data set config, its file's name the test id."""
    return [pytest.param((path.stem, compose_group(config_dir, "dataset", path.stem)), id=path.stem)
            for config_dir in contract_config_dirs() for path in sorted((config_dir / "dataset").glob("*.yaml"))]


CASES = contract_cases()

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def parametrize_datasets(test):
    return pytest.mark.parametrize("case", CASES)(test)


# ------------------------------------------------------------------- tiny files, official formats
def words_of(label: int) -> str:
    """Three words that spell out a class, so that every class has its own vocabulary."""
    return " ".join(f"w{label}x{i}" for i in range(3))


def write_imdb(root: Path, monkeypatch, variant: int) -> dict:
    """IMDB's extracted layout: ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``."""
    per_class = 6
    for split in ("train", "test"):
        for label, name in enumerate(imdb.LABEL_NAMES):
            folder = root / "aclImdb" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                rating = 8 if name == "pos" else 2
                (folder / f"{i}_{rating}.txt").write_text(f"A {words_of(label)} review<br />number {i} {variant}")
    monkeypatch.setattr(imdb, "EXPECTED_PER_SPLIT", 2 * per_class)
    return {"root": str(root)}


def write_trec(root: Path, monkeypatch, variant: int) -> dict:
    """TREC's two files, ``COARSE:fine question`` a line, Latin-1; their checksums the tiny files'."""
    remotes = {}
    for split, count in (("train", 6), ("test", 2)):
        remote = trec.FILES[split]
        lines = [f"{coarse}:other What {words_of(label)} question {i} {variant} ?"
                 for i in range(count) for label, coarse in enumerate(trec.LABEL_NAMES)]
        path = root / "trec" / remote.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes("\n".join(lines).encode("latin-1"))
        remotes[split] = RemoteFile(remote.name, remote.url, "md5", hashlib.md5(path.read_bytes()).hexdigest())
    monkeypatch.setattr(trec, "FILES", remotes)
    return {"root": str(root)}


def write_text_file(root: Path, monkeypatch, variant: int) -> dict:
    """Two CSV files with the default columns (``text``, ``label``)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, count in (("train", 10), ("test", 3)):
        rows = [f'"{words_of(i % 2)} line {i} {variant}",{"yes" if i % 2 else "no"}' for i in range(2 * count)]
        paths[split] = root / f"{split}.csv"
        paths[split].write_text("text,label\n" + "\n".join(rows) + "\n")
    return {"train": str(paths["train"]), "test": str(paths["test"])}


TINY_FILES = {"sentiment": write_imdb, "trec": write_trec, "text_file": write_text_file}
TINY_GENERATED = {"n_train": 16, "n_val": 8, "n_test": 8}
TINY_BATCHES = {"batch_size": 8, "eval_batch_size": 8}


def tiny_config(case, tmp_path: Path, monkeypatch, variant: int = 0, folder: str = "data") -> dict:
    """The case's config at a tiny size; a text data set reads tiny files written under
    ``tmp_path / folder`` (``variant``: other contents)."""
    _, values = case
    entry = dataset_entry(dataset_kind(values))
    config = {**values, **TINY_BATCHES}
    if entry.generated:
        config.update(TINY_GENERATED)
    else:
        write = TINY_FILES.get(entry.name)
        if write is None:
            pytest.skip(f"seqbench cannot write tiny files in {entry.name}'s format: its build checks need them")
        config.update(write(tmp_path / folder, monkeypatch, variant), cache_dir=str(tmp_path / "cache"))
    check_dataset(config)
    return config


def build(config: dict, seed: int = 0):
    datamodule = build_datamodule(config, seed)
    datamodule.setup()
    return datamodule


def batches(datamodule, split: str) -> list[dict]:
    return list(getattr(datamodule, f"{split}_dataloader")())


def same_batches(first: list[dict], second: list[dict]) -> bool:
    return len(first) == len(second) and all(
        a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a) for a, b in zip(first, second))


# -------------------------------------------------------------------------------- one home
def schema_keys(values: dict) -> set[str]:
    return {f.name for f in dataclasses.fields(dataset_entry(dataset_kind(values)).schema)}


@parametrize_datasets
def test_the_yaml_is_the_one_home_of_the_data_set_s_values(case, monkeypatch):
    """A data set's own YAML sets every key of its schema (the schema has no default to fall back
    on); a variant of it (``kind: text_file`` under another name) sets some, the rest come from
    the data set's YAML. A key that no YAML sets is refused in one line naming it."""
    name, values = case
    kind = dataset_kind(values)
    keys = schema_keys(values)
    assert set(values) <= keys, f"{name}.yaml sets keys its schema does not know: {set(values) - keys}"
    if name == kind:
        assert set(values) == keys, f"{name}.yaml leaves out {sorted(keys - set(values))}"
    assert filled_dataset_config(values) == {**dataset_defaults(kind), **values}
    for key in sorted(keys - {"name", "kind"}):
        with monkeypatch.context() as patch:
            patch.setattr("seqbench.config.dataset_defaults",
                          lambda kind, key=key: {k: v for k, v in dataset_defaults(kind).items() if k != key})
            with pytest.raises(ConfigError) as refused:
                filled_dataset_config({k: v for k, v in values.items() if k != key})
        message = str(refused.value)
        assert message.startswith(f"dataset.{key} is missing") and "\n" not in message, message


def test_every_registered_data_set_has_a_yaml():
    """Every data set the registry holds is named (``kind``) by a config the cases above test."""
    named = {dataset_kind(values) for _, values in (case.values[0] for case in CASES)}
    assert set(datasets()) <= named, f"no conf/dataset/<name>.yaml for {sorted(set(datasets()) - named)}"


# ---------------------------------------------------------------------------- spec and tensors
@parametrize_datasets
def test_a_tiny_build_poses_the_task_its_spec_says(case, tmp_path, monkeypatch):
    config = tiny_config(case, tmp_path, monkeypatch)
    entry = dataset_entry(dataset_kind(config))
    datamodule = build(config)
    spec = datamodule.spec
    assert spec.task == entry.task and spec.task in TASKS
    assert (spec.vocab_size is None) != (spec.input_dim is None), "token ids or values, one of the two"
    assert not spec.label_names or len(spec.label_names) == spec.num_outputs
    if "max_len" in config:
        assert spec.max_len == config["max_len"]
    classes = "classification" in spec.task
    counts = {}
    for split in ("train", "val", "test"):
        counts[split] = 0
        for batch in batches(datamodule, split):
            inputs, targets, lengths = batch["inputs"], batch["targets"], batch["lengths"]
            size, steps = inputs.shape[:2]
            counts[split] += size
            assert lengths.shape == (size,) and lengths.min() >= 1 and lengths.max() == steps
            if spec.vocab_size is not None:
                assert inputs.dtype == torch.int64 and inputs.dim() == 2
                assert inputs.min() >= 0 and inputs.max() < spec.vocab_size
            else:
                assert inputs.is_floating_point() and inputs.shape == (size, steps, spec.input_dim)
            assert targets.shape == ((size, steps) if spec.per_step else (size,)), (split, targets.shape)
            if classes:
                assert targets.dtype == torch.int64 and targets.min() >= 0 and targets.max() < spec.num_outputs
            else:
                assert targets.is_floating_point() and spec.num_outputs == 1
            if spec.max_len is not None:
                assert steps <= spec.max_len
    assert counts == datamodule.example_counts() and min(counts.values()) > 0


@parametrize_datasets
def test_the_test_split_depends_only_on_its_own_seed(case, tmp_path, monkeypatch):
    """Every seed of every model is scored on the same test examples; for generated data they are
    drawn from ``test_seed`` (one of ``test_set_keys``), the training data from the run's seed."""
    config = tiny_config(case, tmp_path, monkeypatch)
    entry = dataset_entry(dataset_kind(config))
    seed0, seed1 = build(config, seed=0), build(config, seed=1)
    assert same_batches(batches(seed0, "test"), batches(seed1, "test"))
    if entry.generated:
        assert set(entry.test_set_keys) <= schema_keys(config) and "test_seed" in entry.test_set_keys
        assert not same_batches(batches(seed0, "train"), batches(seed1, "train"))
        other = build({**config, "test_seed": config["test_seed"] + 1}, seed=0)
        assert not same_batches(batches(seed0, "test"), batches(other, "test"))


@parametrize_datasets
def test_the_data_fingerprint_is_stable_and_follows_the_data(case, tmp_path, monkeypatch):
    """The same data (files written twice, in two folders) has one fingerprint and builds the same
    tensors; other contents have another fingerprint. Generated data is its settings (in the
    config hash): two builds of one config are the same tensors."""
    config = tiny_config(case, tmp_path, monkeypatch)
    entry = dataset_entry(dataset_kind(config))
    again = tiny_config(case, tmp_path, monkeypatch, folder="again")
    first = entry.fingerprint(config).fingerprint
    assert entry.fingerprint(again).fingerprint == first
    built, rebuilt = build(config), build(again)
    for split in ("train", "val", "test"):
        assert same_batches(batches(built, split), batches(rebuilt, split)), split
    if not entry.generated:
        changed = tiny_config(case, tmp_path, monkeypatch, variant=1, folder="changed")
        assert entry.fingerprint(changed).fingerprint != first


# -------------------------------------------------------------------------------- bad values
# Values the checks of every data set refuse, for the keys a data set has.
BAD_VALUES = {"batch_size": 0, "eval_batch_size": -8, "num_workers": -1, "lr": 0, "max_epochs": 0, "dropout": 1.0,
              "embedding_dropout": -0.1, "embedding_dim": 0, "n_train": 0, "n_val": 0, "n_test": -1, "max_len": 0,
              "vocab_size": 2, "min_freq": 0, "val_fraction": 1.0, "length": 0, "seq_len": 0, "warmup_steps": -1,
              "omega": 0, "dt": -0.1, "symbols": 0, "alphabet": 0, "solved_above": 1.5,
              "encoding": "no-such-encoding"}


def wrong_type(annotation):
    """A value of a type the annotation does not allow: text for a number or a switch, a number
    for text."""
    allowed = set(typing.get_args(annotation) or (annotation,))
    return 1.5 if str in allowed else "abc"


@parametrize_datasets
def test_bad_values_are_refused_in_one_line_naming_the_key(case):
    _, values = case
    schema = dataset_entry(dataset_kind(values)).schema
    hints = typing.get_type_hints(schema)
    tried = []
    for key in sorted(schema_keys(values)):
        bad = [wrong_type(hints[key])] + ([BAD_VALUES[key]] if key in BAD_VALUES else [])
        for value in bad:
            with pytest.raises(ConfigError) as refused:
                check_dataset({**values, key: value})
            message = str(refused.value)
            assert f"dataset.{key}" in message and "\n" not in message, message
            tried.append(key)
    assert "batch_size" in tried and len(tried) > len(schema_keys(values))
    misspelt = sorted(schema_keys(values) - {"name", "kind"})[0]
    with pytest.raises(ConfigError, match=f"did you mean '{misspelt}'"):
        check_dataset({**values, misspelt + "x": 1})


# -------------------------------------------------------------------------- identity of runs
def newest_record(dataset: str) -> dict:
    """The newest committed record of ``dataset`` whose model has no scan mode: the mode (a way of
    computing the same function) left the config hash once, with the fused scan, so the minimal
    cells' and the LRU's stored hashes include it and today's do not."""
    paths = sorted((REPO / "results" / "runs" / dataset).rglob("record.json"))
    records = [record for record in (json.loads(path.read_text()) for path in paths)
               if "mode" not in record["config"]["model"]]
    return max(records, key=lambda record: (len(record["config"]["dataset"]), str(record.get("finished"))))


@pytest.mark.parametrize("dataset", ["sentiment", "trec", "sincos"])
def test_the_committed_runs_keep_their_config_hash(dataset):
    """A committed run's stored config gives its stored hash, also filled in by today's schema
    and YAML: finished text and sin -> cos runs are reused, not trained again."""
    record = newest_record(dataset)
    assert config_hash(record["config"]) == record["config_hash"]
    refilled = {**record["config"], "dataset": filled_dataset_config(record["config"]["dataset"])}
    assert config_hash(refilled) == record["config_hash"]


# ------------------------------------------------------------------------------- IMDB archive
def test_imdb_read_from_its_archive_is_the_same_as_from_its_folder(tmp_path, monkeypatch):
    """The official archive (``aclImdb/...`` members in a .tar.gz, checked against its checksum)
    builds the same tensors as the extracted folder."""
    case = next(case.values[0] for case in CASES if case.id == "sentiment")
    folder = tiny_config(case, tmp_path, monkeypatch)
    archive = tmp_path / "archive"
    archive.mkdir()
    with tarfile.open(archive / imdb.REPACK.name, "w:gz") as tar:
        tar.add(tmp_path / "data" / "aclImdb", arcname="aclImdb")
    digest = hashlib.sha256((archive / imdb.REPACK.name).read_bytes()).hexdigest()
    monkeypatch.setattr(imdb, "REPACK", RemoteFile(imdb.REPACK.name, imdb.REPACK.url, "sha256", digest))
    packed = {**folder, "root": str(archive)}
    assert dataset_entry("sentiment").fingerprint(packed).files == {"data": str(archive / imdb.REPACK.name)}
    for split in ("train", "val", "test"):
        assert same_batches(batches(build(folder), split), batches(build(packed), split)), split


# ------------------------------------------------------------------- a data set of your own
OWN_DATASET = '''
from dataclasses import dataclass

import torch

from seqbench.config import GeneratedDatasetSchema, check_positive
from seqbench.data.declare import DataSpec, generated_dataset


@dataclass
class Schema(GeneratedDatasetSchema):
    length: int

    def __post_init__(self):
        super().__post_init__()
        check_positive("dataset", length=self.length)


def make_of(config):
    def make(count, seed):
        inputs = torch.rand(count, config["length"], 1, generator=torch.Generator().manual_seed(seed))
        return {{"inputs": inputs, "targets": inputs.sum(dim=(1, 2))}}
    return make


generated_dataset({name!r}, Schema, "last_step_regression", make_of,
                  lambda config: DataSpec("last_step_regression", num_outputs=1, input_dim=1),
                  test_set_keys=("length", "n_test", "test_seed"))
'''

OWN_YAML = """name: {name}
kind: {name}
length: 5
n_train: 40
n_val: 10
n_test: 10
test_seed: 7
batch_size: 10
eval_batch_size: null
num_workers: 0
defaults_from: null
lr: 1.0e-3
max_epochs: 2
embedding_dim: 4
embedding_dropout: 0.0
dropout: 0.0
"""


@pytest.mark.slow   # the fast lane stays under 5 minutes on 2 cores; CI runs both lanes
def test_a_data_set_added_as_the_readme_says_gets_these_tests_under_its_name(tmp_path):
    """A data set's file (imported as seqbench imports those in seqbench/datasets/) and its YAML in
    a config folder of its own: this file collects it under its name and it passes, with nothing
    here edited."""
    name = f"mine_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(OWN_DATASET.format(name=name))
    (tmp_path / "conf" / "dataset").mkdir(parents=True)
    (tmp_path / "conf" / "dataset" / f"{name}.yaml").write_text(OWN_YAML.format(name=name))
    environment = {**os.environ, "SEQBENCH_CONTRACT_CONFIG_DIRS": str(tmp_path / "conf"),
                   "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")]),
                   "PYTHONDONTWRITEBYTECODE": "1"}
    command = (f"import sys, pytest, {name}; sys.exit(pytest.main(['-p', 'no:cacheprovider', '-v', "
               f"'{Path(__file__).resolve()}', '-k', '{name} or every_registered']))")
    result = subprocess.run([sys.executable, "-c", command], cwd=REPO, env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    passed = {line.split("::")[1].split()[0] for line in result.stdout.splitlines() if line.endswith("PASSED")
              or " PASSED " in line}
    per_data_set = {test.__name__ for test in (test_the_yaml_is_the_one_home_of_the_data_set_s_values,
                                               test_a_tiny_build_poses_the_task_its_spec_says,
                                               test_the_test_split_depends_only_on_its_own_seed,
                                               test_the_data_fingerprint_is_stable_and_follows_the_data,
                                               test_bad_values_are_refused_in_one_line_naming_the_key)}
    assert passed == {f"{test}[{name}]" for test in per_data_set} | {"test_every_registered_data_set_has_a_yaml"}, \
        result.stdout[-3000:]
