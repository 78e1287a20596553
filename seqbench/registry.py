"""Registries of models (sequence encoders) and data sets, each entry with its config schema
beside it, in the manner of fairseq's ``register_model`` and benchopt's one file per solver.

- A model is one Python file in ``seqbench/models/`` whose encoder class is decorated with
  ``@register_model("name", schema=...)``, plus ``conf/model/<name>.yaml``.
- A data set is one Python file in ``seqbench/datasets/`` that declares itself through
  ``seqbench.data.declare`` (``text_dataset`` / ``generated_dataset``), plus ``conf/dataset/<name>.yaml``.
- Your own encoder, outside the package: ``model.cell=my_module.MyEncoder`` (importable from
  the current folder), decorated with ``@register_model("name", schema=...)`` like a built-in one.
- A name belongs to one model (and one data set): registering a taken name is refused in one line
  (fairseq refuses a duplicate the same way), so a file of yours can never replace ``lstm``.
  Only a name the user gives (their config, their command line, their code) is ever imported:
  inside ``code_named_by_user(...)`` (eval, explain, diagnostics: the model comes from a record
  or a checkpoint) any other dotted name resolves only to an encoder already registered.

Files are discovered by importing every module of ``seqbench.models`` and ``seqbench.datasets``:
adding a file is enough. Cheap to import (no torch, nothing else of seqbench): the schemas are the
configuration layer's (``seqbench.config``), which reads this registry, never the other way round.
Discovery imports torch (model files subclass ``nn.Module``) but never Lightning, so a run can be
planned before Lightning loads.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import SeqbenchError

PACKAGE_DIR = Path(__file__).resolve().parent


class RegistryError(SeqbenchError, ValueError):
    pass


@dataclass(frozen=True)
class ModelEntry:
    """A sequence encoder: ``cls(input_size, config)`` with ``config`` an instance of ``schema``
    (None: the keys every model has, ``seqbench.config.NetworkSchema``);
    ``forward(x (B, T, E), lengths (B,)) -> (outputs (B, T, D), summary (B, D))`` and an
    ``output_size`` attribute (D). Outputs at real steps and the summary must not depend on
    the padding after a sequence's length."""
    name: str
    schema: type | None
    cls: type
    bidirectional: bool = True       # False: model.bidirectional=true is refused, with `note`
    note: str = ""                   # one line a user reads where something does not apply
    gradient_flow: bool = False      # diagnostics.gradient_flow can rebuild its layers as scratch cells

    @property
    def module(self) -> str:
        """The module that defines the encoder: where a run's code fingerprint starts from."""
        return self.cls.__module__


@dataclass(frozen=True)
class DatasetEntry:
    """A data set: ``schema`` validates its config; ``fingerprint(config)`` is the identity of
    its input data (file contents for real data, the generator's settings for generated data;
    cheap: no training stack); ``build(config, seed, rebuild_cache)`` gives the Lightning data
    module (heavy imports happen there)."""
    name: str
    schema: type
    task: str
    fingerprint: Callable[[dict], str]
    build: Callable[..., Any]
    module: str                      # the data set's own module (its file): a run's code fingerprint starts there
    generated: bool = False
    # Settings that decide which test examples there are (generated data): runs that differ in
    # one of them were scored on different examples and are never paired.
    test_set_keys: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


MODELS: dict[str, ModelEntry] = {}
DATASETS: dict[str, DatasetEntry] = {}
_DISCOVERED: set[str] = set()


def _qualified(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _refuse_taken(kind: str, name: str, taken_by: str, new: str) -> None:
    """One line when ``name`` already belongs to something else (the same class registered again,
    a module imported twice under one name, is the same registration)."""
    if taken_by != new:
        raise RegistryError(f"two {kind}s are registered as {name!r}: {taken_by} and {new}; a name belongs to one "
                            f"{kind}: register yours under another name")


def register_model(name: str, schema: type | None = None, *, bidirectional: bool = True, note: str = "",
                   gradient_flow: bool = False):
    """Class decorator: ``@register_model("mingru", schema=MinGRUSchema)``. A name that another
    class holds is refused (``@register_model("lstm")`` in a file of yours)."""
    def wrap(cls):
        if name in MODELS:
            _refuse_taken("model", name, _qualified(MODELS[name].cls), _qualified(cls))
        MODELS[name] = ModelEntry(name, schema, cls, bidirectional, note, gradient_flow)
        return cls
    return wrap


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add a data set (``seqbench.data.declare`` calls it); a name another module holds is refused."""
    if entry.name in DATASETS:
        _refuse_taken("data set", entry.name, DATASETS[entry.name].module, entry.module)
    DATASETS[entry.name] = entry
    return entry


def discover(package: str) -> None:
    """Import every module of ``package`` once, so that their registrations run."""
    if package in _DISCOVERED:
        return
    _DISCOVERED.add(package)
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        importlib.import_module(f"{package}.{info.name}")


def models() -> dict[str, ModelEntry]:
    discover("seqbench.models")
    return MODELS


def datasets() -> dict[str, DatasetEntry]:
    discover("seqbench.datasets")
    return DATASETS


def _import_dotted(path: str):
    """``package.module.Class`` (or ``package.module:Class``), importable from the current
    folder too: a user's own file beside the command."""
    module_name, _, attribute = path.replace(":", ".").rpartition(".")
    if not module_name:
        return None
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise RegistryError(f"model.cell={path!r}: cannot import {module_name!r} ({error}); a module of your own "
                            f"must be importable from the folder you run seqbench in") from None
    if not hasattr(module, attribute):
        raise RegistryError(f"model.cell={path!r}: {module_name!r} has no {attribute!r}")
    return getattr(module, attribute)


# None: a dotted model.cell may be imported (the caller's own config or code named it). Else the
# dotted names the user gave in this invocation (and how to give one, for the error message).
_NAMED_BY_USER: contextvars.ContextVar[tuple[frozenset, str] | None] = contextvars.ContextVar(
    "seqbench_named_by_user", default=None)


@contextlib.contextmanager
def code_named_by_user(names=(), how: str = ""):
    """Within: a dotted ``model.cell`` is imported only if it is one of ``names`` (what the user
    named on this command line); any other (read from a record or a checkpoint: data) resolves
    only to an encoder class already registered, or is refused in one line ending with ``how``
    (what the user can do). A file on disk never makes seqbench import code."""
    token = _NAMED_BY_USER.set((frozenset(names), how))
    try:
        yield
    finally:
        _NAMED_BY_USER.reset(token)


def _registered_class(path: str):
    """The registered encoder class whose dotted path is ``path`` (a user's @register_model class
    imported by this process already), else None: nothing is imported or looked up elsewhere."""
    wanted = path.replace(":", ".")
    return next((e.cls for e in MODELS.values() if f"{e.cls.__module__}.{e.cls.__qualname__}" == wanted), None)


def model_entry(cell: str) -> ModelEntry:
    """The registered encoder called ``cell``, or the registered class a dotted path names (a
    user's own file, imported here when the user named it)."""
    registered = models()
    if cell in registered:
        return registered[cell]
    if isinstance(cell, str) and "." in cell.replace(":", "."):
        named = _NAMED_BY_USER.get()
        if named is not None and cell not in named[0]:
            cls = _registered_class(cell)
            if cls is None:
                raise RegistryError(f"model.cell={cell!r} is named by a file (a run's record or checkpoint), and "
                                    f"seqbench imports no code a file names" + (f"; {named[1]}" if named[1] else ""))
        else:
            cls = _import_dotted(cell)
        known = next((e for e in MODELS.values() if e.cls is cls), None)
        if known is not None:
            return known
        raise RegistryError(f"model.cell={cell!r} is not a registered encoder: decorate the class with "
                            f"@register_model(\"<name>\", schema=...) from seqbench.registry (see "
                            f"examples/own_model/conv_encoder.py)")
    builtin = ", ".join(sorted(registered))
    raise RegistryError(f"unknown model cell {cell!r}; valid: {builtin}, or a dotted path to your own encoder class "
                        f"(model.cell=my_module.MyEncoder)")


def dataset_entry(kind: str) -> DatasetEntry:
    registered = datasets()
    if kind not in registered:
        raise RegistryError(f"unknown dataset {kind!r}; valid: {', '.join(sorted(registered))}")
    return registered[kind]
