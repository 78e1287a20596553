"""What a config may say, checked before any data is read; and which of it a run's result
depends on (the config hash).

Each config group has a schema dataclass. Its fields are the valid keys; a key the schema
does not know is an error naming the nearest valid key (``+model.hiden_size=8`` ->
"did you mean model.hidden_size?"). Field metadata ``identity=False`` marks settings that do
not change what a run computes (folders, loader workers, evaluation batch size, progress
bar, ...): the config hash leaves those out, and keeps everything else, so a setting nobody
classified splits runs rather than silently merging them. The hash is taken over the config as
filled in by its schemas (``filled_model_config``, ``filled_dataset_config``): a default changed
later makes a new run, never a reused one.

Defaults have one home. The keys every model has, and each encoder's own keys, take their defaults
from the YAML files in ``conf/model/`` that Hydra composes (``model_defaults``); the schemas read
them there. Which encoder a model config trains (``cell``) has no default at all. A data set's
schema has no defaults: every value comes from its YAML, ``conf/dataset/<kind>.yaml``
(``dataset_defaults``), and a key neither the config nor that YAML sets is refused in one line.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field, fields
from typing import Any

from .group_checks import ConfigError, _check_keys, check_logger, check_optimizer, check_positive
from .record import short_hash


def choose(kind: str, name, registry) -> Any:
    """``registry[name]``, or an error that lists the valid names (one helper for every group)."""
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(map(str, registry))}")
    return registry[name]


def not_identity(default=dataclasses.MISSING):
    """A schema field that does not change what a run computes: left out of the config hash. A data
    set's has no default (its value comes from the data set's YAML, like every data set key's); a
    model's takes its default from the model YAML the schema reads (``model.mode``)."""
    return field(default=default, metadata={"identity": False})


# Checks for a schema's __post_init__, each raising a ConfigError of one line that names the key
# as the user writes it (``where`` is the group: "dataset", "model").
def check_fraction(where: str, key: str, value, low_open: bool, high_open: bool) -> None:
    """``value`` in [0, 1], each end open or closed: ``check_fraction("dataset", "dropout", v, False, True)`` is [0, 1)."""
    low_ok = value > 0 if low_open else value >= 0
    high_ok = value < 1 if high_open else value <= 1
    if not isinstance(value, (int, float)) or not (low_ok and high_ok):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ConfigError(f"{where}.{key}={value!r}: must be in {interval}")


# ------------------------------------------------------------------------------ the data set base
@dataclass
class DatasetSchema:
    """Keys every data set has: the optimiser and trainer defaults that suit it, and the
    model defaults (embedding size, dropout) the model configs read from it. Values: the data
    set's YAML (``dataset_defaults``); a data set schema gives keys, types and checks, no defaults."""
    name: str                        # the data set's name in tables and folders (dataset.name=my_reviews)
    kind: str | None                 # which registered data set (seqbench/datasets/); null: the name
    # Where the defaults in its YAML come from, said in every table's budget line.
    defaults_from: str | None = not_identity()
    batch_size: int
    eval_batch_size: int | None = not_identity()
    num_workers: int = not_identity()
    lr: float
    max_epochs: int
    embedding_dim: int
    embedding_dropout: float
    dropout: float

    def __post_init__(self):
        check_positive("dataset", batch_size=self.batch_size, eval_batch_size=self.eval_batch_size, lr=self.lr,
                       max_epochs=self.max_epochs, embedding_dim=self.embedding_dim)
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ConfigError(f"dataset.num_workers={self.num_workers!r}: must be an integer >= 0")
        # The model configs read these by interpolation: check them here, under the name the user set.
        check_fraction("dataset", "dropout", self.dropout, low_open=False, high_open=True)
        check_fraction("dataset", "embedding_dropout", self.embedding_dropout, low_open=False, high_open=True)


# ---------------------------------------------------------------------------------------- model
POOLINGS = ("last", "attention")
ATTENTION_NAMES = ("additive", "concat", "scaled_dot")   # seqbench.models.attention.ATTENTION_RULES
_DATASET_LINK = re.compile(r"\$\{dataset\.(\w+)\}")


def _read_yaml(path) -> dict:
    import yaml
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream) or {}


def _yaml_values(path) -> dict:
    """The values a config file sets itself (its Hydra ``defaults`` list aside)."""
    return {key: value for key, value in _read_yaml(path).items() if key != "defaults"}


def default_dataset() -> str:
    """The data set a run takes when it names none: ``conf/config.yaml``'s ``defaults`` list."""
    from .runtime import CONFIG_DIR
    entries = _read_yaml(f"{CONFIG_DIR}/config.yaml").get("defaults") or []
    return next(entry["dataset"] for entry in entries if isinstance(entry, dict) and "dataset" in entry)


def dataset_defaults(kind: str) -> dict:
    """The values ``conf/dataset/<kind>.yaml`` sets: the one home of a registered data set's
    defaults (its schema has none). Empty for a data set whose YAML is elsewhere (a config
    folder of yours): its configs then give every key, as a composed one does."""
    from pathlib import Path

    from .runtime import CONFIG_DIR
    path = Path(CONFIG_DIR, "dataset", f"{kind}.yaml")
    return _yaml_values(path) if path.is_file() else {}


def model_defaults(name: str) -> dict:
    """The values ``conf/model/<name>.yaml`` sets itself (its Hydra ``defaults`` list aside): where
    a model schema reads its defaults, so that each default has one home, the file Hydra composes
    and the command line overrides. A value read from the data set (``${dataset.dropout}``) is the
    default data set's value here (``conf/config.yaml``); in a run it is the run's data set's value."""
    from .runtime import CONFIG_DIR
    values = _yaml_values(f"{CONFIG_DIR}/model/{name}.yaml")
    linked = dataset_defaults(default_dataset())
    out = {}
    for key, value in values.items():
        link = _DATASET_LINK.fullmatch(value) if isinstance(value, str) else None
        out[key] = linked[link[1]] if link else value
    return out


SHARED = model_defaults("_shared")


@dataclass
class NetworkSchema:
    """Keys every model has: input layer -> encoder (``cell``, from the model registry) -> head.
    An encoder's own keys live in its schema, a subclass of this one, beside its code. Defaults:
    ``conf/model/_shared.yaml``, which every model config includes.
    ``cell`` has no default: which network a run trains is never guessed (a model config without
    it is refused); ``name``, the variant's label, is the cell's name unless the config gives one."""
    cell: str
    name: str | None = None
    hidden_size: int = SHARED["hidden_size"]
    num_layers: int = SHARED["num_layers"]
    dropout: float = SHARED["dropout"]                  # between layers and before the output layer
    bidirectional: bool = SHARED["bidirectional"]
    pooling: str = SHARED["pooling"]                    # last (the encoder's summary) | attention
    attention: str | None = SHARED["attention"]         # additive | concat | scaled_dot, with pooling=attention
    attention_dim: int | None = SHARED["attention_dim"]
    embedding_dim: int = SHARED["embedding_dim"]        # token embedding / signal projection size
    embedding_dropout: float = SHARED["embedding_dropout"]

    def __post_init__(self):
        if self.name is None:
            self.name = self.cell
        check_positive("model", hidden_size=self.hidden_size, num_layers=self.num_layers,
                  embedding_dim=self.embedding_dim, attention_dim=self.attention_dim)
        for key in ("hidden_size", "num_layers", "embedding_dim", "attention_dim"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, int):
                raise ConfigError(f"model.{key}={value!r}: must be a whole number")
        check_fraction("model", "dropout", self.dropout, low_open=False, high_open=True)
        check_fraction("model", "embedding_dropout", self.embedding_dropout, low_open=False, high_open=True)
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(f"model.bidirectional={self.bidirectional!r}: must be true or false")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={self.pooling!r}: unknown pooling; valid: {', '.join(POOLINGS)}")
        if self.pooling == "attention" and self.attention not in ATTENTION_NAMES:
            raise ConfigError(f"model.attention={self.attention!r}: unknown attention; valid attention rules: "
                              f"{', '.join(ATTENTION_NAMES)}")


def network_config(values: dict | None = None, /, **keys) -> NetworkSchema:
    """The schema instance (the network's config) for a model config: shared keys and the keys
    of its encoder, checked; a key neither knows is an error naming the nearest valid key.
    ``network_config({"cell": "gru", ...})`` or ``network_config(cell="gru", ...)``."""
    from .registry import model_entry, models
    values = {**(values or {}), **keys}
    if values.get("cell") is None:
        raise ConfigError(f"model.cell is missing: a model config names its encoder, one of "
                          f"{', '.join(sorted(models()))}, or the dotted path of your registered class "
                          f"(model.cell=my_module.MyEncoder)")
    entry = model_entry(values["cell"])
    given = {k: v for k, v in values.items() if not k.startswith("_")}
    config = _build(entry.schema or NetworkSchema, "model", given)
    if config.bidirectional and not entry.bidirectional:
        raise ConfigError(f"model.bidirectional=true does not apply to {entry.name}" + (f": {entry.note}" if entry.note
                                                                                         else ""))
    return config


def filled_model_config(model: dict, dataset: dict) -> dict:
    """A model config with every key its schema has: a key the config leaves out takes the value
    a model config including ``_shared.yaml`` would have (read from the run's data set where that
    file reads it), else its schema's default. What a run trains with, all of it in its record and
    its config hash: a default changed later makes the next run a new one."""
    from .runtime import CONFIG_DIR
    shared = _read_yaml(f"{CONFIG_DIR}/model/_shared.yaml")
    links = {k: _DATASET_LINK.fullmatch(v)[1] for k, v in shared.items()
             if isinstance(v, str) and _DATASET_LINK.fullmatch(v)}
    given = {**{k: dataset[source] for k, source in links.items() if k not in model and source in dataset}, **model}
    return dataclasses.asdict(network_config(given))


def filled_dataset_config(dataset: dict) -> dict:
    """A data set config with every key its schema has, a key it leaves out taking its data set's
    YAML value (see ``filled_model_config``)."""
    return dataclasses.asdict(build_dataset(dataset))


def build_dataset(dataset: dict):
    """The schema instance of a data set config: a key the config leaves out takes the value in
    its data set's YAML (``dataset_defaults``; the schema has no default to fall back on), and a
    key neither sets is refused in one line naming it."""
    schema = dataset_schema(dataset)
    kind = dataset.get("kind") or dataset.get("name")
    values = {**dataset_defaults(kind), **dataset}
    _check_keys("dataset", values, {f.name for f in fields(schema)})
    missing = [f.name for f in fields(schema) if f.name not in values]
    if missing:
        raise ConfigError(f"dataset.{missing[0]} is missing: the data set {kind!r} takes every value from its YAML "
                          f"(conf/dataset/{kind}.yaml, or your dataset config), which does not set it; add "
                          f"'{missing[0]}: <value>' there or give dataset.{missing[0]}=VALUE")
    return _build(schema, "dataset", values)


# -------------------------------------------------------------------------------------- datasets
# The bases several data sets share; a data set's own schema lives in its file (seqbench/datasets/).
@dataclass
class TextDatasetSchema(DatasetSchema):
    root: str | None = not_identity()
    cache_dir: str | None = not_identity()
    # Pretrained word vectors (seqbench/data/vectors.py): the file's contents are part of the data
    # fingerprint, not its path; freezing counts only where there are vectors to freeze.
    vectors: str | None = not_identity()
    freeze_vectors: bool = field(metadata={"identity_with": "vectors"})
    max_len: int
    vocab_size: int
    min_freq: int
    val_fraction: float

    def __post_init__(self):
        super().__post_init__()
        check_positive("dataset", max_len=self.max_len, min_freq=self.min_freq)
        if not isinstance(self.vocab_size, int) or self.vocab_size < 3:
            raise ConfigError(f"dataset.vocab_size={self.vocab_size!r}: must be an integer >= 3 "
                              f"(<pad>, <unk> and at least one word)")
        check_fraction("dataset", "val_fraction", self.val_fraction, low_open=True, high_open=True)
        if self.vectors is not None and not isinstance(self.vectors, str):
            raise ConfigError(f"dataset.vectors={self.vectors!r}: the path of a vectors file (or null)")
        if not isinstance(self.freeze_vectors, bool):
            raise ConfigError(f"dataset.freeze_vectors={self.freeze_vectors!r}: must be true or false")


@dataclass
class GeneratedDatasetSchema(DatasetSchema):
    """Synthetic data: train/validation drawn from the run's seed, the test set from its own
    ``test_seed`` (the same for every run, so seeds vary initialisation, not the test)."""
    n_train: int
    n_val: int
    n_test: int
    test_seed: int

    def __post_init__(self):
        super().__post_init__()
        check_positive("dataset", n_train=self.n_train, n_val=self.n_val, n_test=self.n_test)


# --------------------------------------------------------------------------------------- trainer
@dataclass
class TrainerSchema:
    """seqbench's own trainer keys; any other pytorch_lightning.Trainer argument is accepted
    too (and counts in the config hash unless listed in NOT_IDENTITY_TRAINER_KEYS)."""
    max_epochs: int = 10
    patience: int = 5
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    limit_test_batches: int | float | None = None
    divergence_check_every_n_steps: int = 50
    # Stop at the first validation that meets the data set's "solved" threshold with half its error
    # allowance (the memory tasks; the first plain crossing is the updates to solve): the run has
    # answered; the epoch cap is then a cap, not the budget.
    stop_when_solved: bool | None = None   # null (the YAML's): off, and out of the config hash
    precision: int | str | None = "32-true"
    devices: Any = 1
    num_nodes: int = 1
    gradient_clip_val: float | None = None

    def __post_init__(self):
        check_positive("trainer", max_epochs=self.max_epochs, patience=self.patience,
                  divergence_check_every_n_steps=self.divergence_check_every_n_steps, num_nodes=self.num_nodes)
        if self.precision is not None and str(self.precision) not in PRECISIONS:
            raise ConfigError(f"trainer.precision={self.precision!r}: valid: {', '.join(sorted(PRECISIONS))}")
        devices = self.devices
        valid_devices = (devices == "auto" or (isinstance(devices, int) and not isinstance(devices, bool)
                                               and (devices >= 1 or devices == -1))
                         or (isinstance(devices, list) and devices and all(isinstance(d, int) and d >= 0
                                                                           for d in devices)))
        if not valid_devices:
            raise ConfigError(f"trainer.devices={devices!r}: a number of devices >= 1, -1 (all), auto, or a list "
                              f"of device indices like [0, 1]")
        if self.gradient_clip_val is not None and self.gradient_clip_val < 0:
            raise ConfigError(f"trainer.gradient_clip_val={self.gradient_clip_val!r}: must be >= 0 (or null: no "
                              f"clipping)")
        for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                    (isinstance(value, float) and value > 1.0):
                raise ConfigError(f"trainer.{key}={value!r}: a number of batches (int >= 1) or a fraction in "
                                  f"(0, 1]; null for all")
        if self.limit_train_batches == 0:
            raise ConfigError("trainer.limit_train_batches=0 trains nothing; use a fraction in (0, 1], "
                              "a number of batches >= 1, or null for all")


# Lightning's precision settings (2.x).
PRECISIONS = {"64-true", "64", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true",
              "transformer-engine", "transformer-engine-float16"}


# Trainer settings that decide where and how fast a run computes, not what: left out of the hash.
# The number of processes (devices x num_nodes under DDP) changes the effective batch: it is kept.
NOT_IDENTITY_TRAINER_KEYS = {"accelerator", "devices", "num_nodes", "strategy", "enable_progress_bar",
                             "enable_model_summary", "log_every_n_steps", "deterministic", "benchmark",
                             "use_distributed_sampler", "profiler", "enable_checkpointing", "default_root_dir",
                             "logger", "callbacks", "plugins", "sync_batchnorm", "barebones", "detect_anomaly",
                             "inference_mode", "num_sanity_val_steps", "reload_dataloaders_every_n_epochs",
                             "divergence_check_every_n_steps"}
DEBUG_TRAINER_KEYS = ("fast_dev_run", "overfit_batches", "limit_train_batches", "limit_val_batches",
                      "limit_test_batches")
TOP_LEVEL_KEYS = {"seed", "force", "claimed", "torch_threads", "flush_denormal", "keep_freed_memory", "checkpoints", "optimizer", "paths", "model", "dataset", "trainer", "logger",
                  "debug", "hparams_search", "experiment", "report", "objective"}
NOT_IDENTITY_TOP_LEVEL = {"seed", "force", "claimed", "torch_threads", "flush_denormal", "keep_freed_memory", "checkpoints", "paths", "logger", "debug", "hparams_search", "experiment",
                          "report", "objective"}


# pytorch_lightning.Trainer's arguments (2.x), so that a config is checked without importing
# Lightning; a key outside this list is looked up in the installed Trainer before it is refused.
TRAINER_ARGUMENTS = {
    "accelerator", "accumulate_grad_batches", "barebones", "benchmark", "callbacks", "check_val_every_n_epoch",
    "default_root_dir", "detect_anomaly", "deterministic", "devices", "enable_autolog_hparams",
    "enable_checkpointing", "enable_model_summary", "enable_progress_bar", "fast_dev_run", "gradient_clip_algorithm",
    "gradient_clip_val", "inference_mode", "limit_predict_batches", "limit_test_batches", "limit_train_batches",
    "limit_val_batches", "log_every_n_steps", "logger", "max_epochs", "max_steps", "max_time", "min_epochs",
    "min_steps", "model_registry", "num_nodes", "num_sanity_val_steps", "overfit_batches", "plugins", "precision",
    "profiler", "reload_dataloaders_every_n_epochs", "strategy", "sync_batchnorm", "use_distributed_sampler",
    "val_check_interval"}


def _trainer_arguments(keys) -> set[str]:
    if set(keys) <= TRAINER_ARGUMENTS:
        return TRAINER_ARGUMENTS
    import pytorch_lightning as pl
    return set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}


def _allowed_types(annotation) -> tuple[type, ...] | None:
    """The plain types an annotation allows (``int | None`` -> (int, NoneType)); None: anything."""
    import types
    import typing
    if annotation is typing.Any:
        return None
    if isinstance(annotation, (types.UnionType,)) or typing.get_origin(annotation) is typing.Union:
        allowed = []
        for part in typing.get_args(annotation):
            inner = _allowed_types(part)
            if inner is None:
                return None
            allowed.extend(inner)
        return tuple(allowed)
    if annotation in (int, float, str, bool, type(None)):
        return (annotation,)
    return None


def _check_types(schema, group: str, values: dict) -> None:
    """Each value has its field's type: a whole number where one is needed (batch_size=1.5 is
    refused), true/false for switches, text for names; an int is a valid float."""
    import typing
    hints = typing.get_type_hints(schema)
    words = {int: "a whole number", float: "a number", str: "text", bool: "true or false", type(None): "null"}
    for key, value in values.items():
        allowed = _allowed_types(hints.get(key))
        if allowed is None:
            continue
        ok = any((t is float and isinstance(value, (int, float)) and not isinstance(value, bool)) or
                 (t is int and isinstance(value, int) and not isinstance(value, bool)) or
                 (t in (str, bool, type(None)) and isinstance(value, t)) for t in allowed)
        if not ok:
            wanted = " or ".join(dict.fromkeys(words[t] for t in allowed))
            raise ConfigError(f"{group}.{key}={value!r}: must be {wanted}")


def _build(schema, group: str, values: dict):
    valid = {f.name for f in fields(schema)}
    _check_keys(group, values, valid)
    _check_types(schema, group, values)
    try:
        return schema(**values)
    except TypeError as error:  # a missing required field
        raise ConfigError(f"{group}: {error}") from None


def check_config(config: dict) -> None:
    """Raise ConfigError with one line for the first thing wrong in a resolved config."""
    _check_keys("config", {k: v for k, v in config.items() if k != "hydra"}, TOP_LEVEL_KEYS)
    check_seed(config.get("seed"))
    if config.get("claimed", "skip") not in ("skip", "wait"):
        raise ConfigError(f"claimed={config.get('claimed')!r}: valid: skip, wait")
    if config.get("torch_threads") is not None:
        check_positive("config", torch_threads=config.get("torch_threads"))
    if not isinstance((config.get("optimizer") or {}).get("sparse_embedding", False), bool):
        raise ConfigError(f"optimizer.sparse_embedding={config['optimizer']['sparse_embedding']!r}: must be true or "
                          f"false")
    for switch in ("flush_denormal", "keep_freed_memory"):
        if not isinstance(config.get(switch, True), bool):
            raise ConfigError(f"{switch}={config.get(switch)!r}: must be true or false")
    if config.get("checkpoints", "best") not in ("best", "all"):
        raise ConfigError(f"checkpoints={config.get('checkpoints')!r}: valid: best (a finished run keeps its best "
                          f"weights only), all (best.ckpt and last.ckpt as written)")
    # The data set first: model configs interpolate its dropout, so a bad value is named as the user set it.
    dataset = config.get("dataset") or {}
    built_dataset = build_dataset(dataset)
    network_config(config.get("model") or {})
    trainer = dict(config.get("trainer") or {})
    own = {f.name for f in fields(TrainerSchema)}
    _check_keys("trainer", trainer, own | _trainer_arguments([k for k in trainer if k not in own]))
    _build(TrainerSchema, "trainer", {k: v for k, v in trainer.items() if k in own})
    if trainer.get("stop_when_solved") and not any(getattr(built_dataset, key, None) is not None
                                                   for key in ("solved_below", "solved_above")):
        raise ConfigError(f"trainer.stop_when_solved=true: the data set {dataset.get('name')!r} has no 'solved' "
                          f"threshold (adding has dataset.solved_below, copy dataset.solved_above); drop the key")
    check_names(config)
    if "optimizer" in config:
        check_optimizer(config["optimizer"])
    if config.get("logger"):
        check_logger(config["logger"])


# ------------------------------------------------------------------------- names that become paths
def check_seed(seed) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed={seed!r}: must be a whole number from 0 to {2**32 - 1} (NumPy's seed range)")


# Keys whose values name folders and files (run and sweep folders, eval outputs, studies): a name,
# never a path, so that nothing a run writes lands outside its output root. (The seed, also in
# folder names, is a number.)
PATH_NAMES = ("dataset.name", "model.name", "model.attention")
_NAME = re.compile(r"[^\W][\w.+-]*")


def check_name(key: str, value) -> None:
    """One line unless ``value`` is a plain name: letters, digits, ``_ . + -``, not starting with a
    dot (``..``, ``reviews/v2``, ``/tmp/x`` and empty names are refused)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or len(value) > 100:
        raise ConfigError(f"{key}={value!r}: a name for tables and folders, not a path; use letters, digits, "
                          f"'_', '-', '.' and '+', not starting with '.' (for example reviews_v2)")


def check_hydra_names(cfg) -> None:
    """The names Hydra makes paths of inside a run's folder: the job's name (its log file) is a name;
    a sweep's run subfolder stays inside the sweep (no ``..``, not absolute). The run and sweep
    folders themselves (hydra.run.dir, hydra.sweep.dir) are the user's to choose."""
    from omegaconf import OmegaConf
    job = OmegaConf.select(cfg, "hydra.job.name", default=None, throw_on_resolution_failure=False)
    if job is not None:
        check_name("hydra.job.name", job)
    hydra = OmegaConf.to_container(cfg.hydra, resolve=False) if "hydra" in cfg else {}
    subdir = str(((hydra or {}).get("sweep") or {}).get("subdir") or "")
    if subdir.startswith("/") or ".." in subdir.replace("\\", "/").split("/"):
        raise ConfigError(f"hydra.sweep.subdir={subdir!r}: a folder inside the sweep's folder, not a path out of it; "
                          f"use names joined by '/' (for example ${{model.name}}_s${{seed}})")


def check_names(config: dict) -> None:
    for key in PATH_NAMES:
        group, _, name = key.partition(".")
        node = config.get(group)
        if isinstance(node, dict) and node.get(name) is not None:
            check_name(key, node[name])


def check_dataset(dataset: dict) -> None:
    """A dataset config on its own (eval's), with a run's schemas and messages."""
    build_dataset(dataset)
    check_name("dataset.name", dataset.get("name"))


def dataset_schema(dataset: dict):
    """The schema of a dataset config, from the data set registry (``kind``, else ``name``)."""
    from .registry import RegistryError, dataset_entry
    kind = dataset.get("kind") or dataset.get("name")
    try:
        return dataset_entry(kind).schema
    except RegistryError as error:
        raise ConfigError(f"dataset.{'kind' if dataset.get('kind') else 'name'}: {error}") from None


def recorded_dataset_config(dataset: dict) -> dict:
    """A data set config read from a record, as today's schema takes it: the keys its schema no
    longer declares left out (a memory run recorded while adding and copy shared one schema carries
    the other task's keys, which never changed what it computed) and the token cache's folder
    too (a record's folder is no place to write to: the cache goes to the default place)."""
    known = {f.name for f in fields(dataset_schema(dataset))}
    return {k: v for k, v in dataset.items() if k in known and k != "cache_dir"}


def is_debug_run(trainer: dict) -> bool:
    """fast_dev_run, overfit_batches or limit_*_batches: a quick look, not a result."""
    if trainer.get("fast_dev_run") or trainer.get("overfit_batches"):
        return True
    limits = [trainer.get(key) for key in DEBUG_TRAINER_KEYS if key.startswith("limit")]
    return any(value is not None and not (isinstance(value, float) and value == 1.0) for value in limits)


def _identity_fields(schema, dataset: dict) -> set[str]:
    """A field counts unless marked ``identity=False``, or ``identity_with`` a key the config leaves
    unset (``freeze_vectors`` without ``vectors``: runs from before that key keep their hash)."""
    return {f.name for f in fields(schema) if f.metadata.get("identity", True)
            and ("identity_with" not in f.metadata or dataset.get(f.metadata["identity_with"]))}


def _identity_keys(values: dict, schema) -> dict:
    """``values`` without the keys its schema marks ``not_identity`` (or ``identity_with`` an unset key)."""
    if schema is None:
        return values
    return {k: v for k, v in values.items()
            if k in _identity_fields(schema, values) or k not in {f.name for f in fields(schema)}}


def _model_schema(model: dict):
    from .registry import RegistryError, model_entry
    try:
        return model_entry(model["cell"]).schema if model.get("cell") is not None else None
    except RegistryError:  # a record of a model this version does not know: keep every key
        return None


def computation_config(config: dict) -> dict:
    """The part of a resolved config that decides what a run computes (seed apart)."""
    dataset = dict(config.get("dataset") or {})
    try:
        schema = dataset_schema(dataset)
    except ConfigError:  # a record of a data set this version does not know: keep every key
        schema = None
    dataset = _identity_keys(dataset, schema)
    # stop_when_solved false is the same run as null (off): runs from before the key kept their hash
    trainer = {k: v for k, v in (config.get("trainer") or {}).items()
               if k not in NOT_IDENTITY_TRAINER_KEYS and v is not None and not (k == "stop_when_solved" and not v)}
    trainer_config = config.get("trainer") or {}
    if str(trainer_config.get("strategy", "auto")).startswith("ddp"):
        devices, nodes = trainer_config.get("devices", 1), int(trainer_config.get("num_nodes") or 1)
        trainer["processes"] = devices * nodes if isinstance(devices, int) else f"{devices}x{nodes}"
    rest = {k: v for k, v in config.items() if k not in NOT_IDENTITY_TOP_LEVEL and k not in ("dataset", "trainer")}
    if isinstance(rest.get("model"), dict):  # e.g. model.mode: the same function by another algorithm
        rest["model"] = _identity_keys(rest["model"], _model_schema(rest["model"]))
    return {**rest, "dataset": dataset, "trainer": trainer}


def config_hash(config: dict) -> str:
    """Hash of ``computation_config``: equal for runs that differ only by seed or by settings
    that do not change the result, so it names a model variant on a data set."""
    return short_hash(computation_config(config))
