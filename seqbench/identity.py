"""What a run is, before anything is built: its config, checked (one line for anything wrong,
before any data is read) and filled in (every key its schemas have), and its identity: config
hash, seed, code fingerprint (what its code imports, ``seqbench.imported_code``), data fingerprint
(the input files' contents). Cheap: no Lightning; the registries' discovery imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .config import (NetworkSchema, check_config, config_hash, filled_dataset_config, filled_model_config,
                     is_debug_run, network_config)
from .data.declare import LocatedData, dataset_kind
from .data.vectors import size_embedding
from .imported_code import code_fingerprint
from .names import variant_of
from .plan import Identity
from .record import run_key
from .registry import DatasetEntry, dataset_entry, model_entry

# Where a run's code fingerprint starts, with its encoder's and its data set's modules: the
# execution step, which imports the training loop, the tasks, the network and the data pipeline
# (and no display code: progress, loggers and dashboards are handed to it, see train.Presentation).
CODE_ROOTS = ("seqbench.train",)


@dataclass
class Prepared:
    """A checked config and what identifies its run, computed without the training stack."""
    cfg: DictConfig
    config: dict                  # resolved and filled in: what the record holds
    network: NetworkSchema
    dataset: DatasetEntry
    located: LocatedData
    identity: Identity


# Dataset keys that are paths: recorded absolute, so a run can be evaluated again from anywhere.
PATH_KEYS = ("train", "val", "test", "root", "cache_dir", "vectors")


def prepare(cfg: DictConfig) -> Prepared:
    config = OmegaConf.to_container(cfg, resolve=True)
    check_config(config)  # one line, before any data is read
    for key in PATH_KEYS:
        if isinstance(config["dataset"].get(key), str):
            config["dataset"][key] = str(Path(config["dataset"][key]).expanduser().resolve())
    size_embedding(cfg, config)  # dataset.vectors: the embedding size is the file's
    # Every key a schema has, in the record and the config hash: a changed default is a new run.
    config["dataset"] = filled_dataset_config(config["dataset"])
    config["model"] = filled_model_config(config["model"], config["dataset"])
    network = network_config(config["model"])
    entry = dataset_entry(dataset_kind(config["dataset"]))
    located = entry.fingerprint(config["dataset"])  # finds (downloads, verifies) the input files
    hashed = config_hash(config)
    code = code_fingerprint(*CODE_ROOTS, model_entry(network.cell).module, entry.module)
    identity = Identity(hashed, cfg.seed, code, located.fingerprint,
                        run_key(hashed, cfg.seed, code, located.fingerprint),
                        debug=is_debug_run(config.get("trainer") or {}))
    return Prepared(cfg, config, network, entry, located, identity)


def variant_name(cfg: DictConfig | dict) -> str:
    """The one spelling of a model variant, as on the command line: ``bilstm_attn_additive``,
    ``gru``, ``lstm_bi``, ``irnn``; also the folder and TensorBoard name."""
    model = cfg.model if isinstance(cfg, DictConfig) else cfg["model"]
    return variant_of(OmegaConf.to_container(model, resolve=True) if isinstance(model, DictConfig) else model)


def interpolation_sources(cfg: DictConfig) -> dict[str, str]:
    """``{"model.dropout": "dataset.dropout", ...}``: the keys whose value was read from another
    key by interpolation in this run's config. Reports fold such keys into their source, so a
    variant is labelled by what the user set, once."""
    out = {}

    def walk(node, prefix: str) -> None:
        for key in node:
            path = f"{prefix}{key}"
            if OmegaConf.is_interpolation(node, key):
                text = str(OmegaConf.to_container(node, resolve=False)[key])
                if text.startswith("${") and text.endswith("}") and ":" not in text and text.count("${") == 1:
                    out[path] = text[2:-1]
            else:
                child = node[key] if not OmegaConf.is_missing(node, key) else None
                if isinstance(child, DictConfig):
                    walk(child, f"{path}.")
    walk(cfg, "")
    return {k: v for k, v in out.items() if not k.startswith("hydra.")}
