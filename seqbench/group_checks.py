"""The optimizer and logger groups checked before anything runs: each key against the
constructor it goes to (one line naming the nearest valid key), values that must be positive
or non-negative, and a ``_target_`` that is a class seqbench can name. Below ``config`` (the
schemas), which calls these from ``check_config`` and takes the shared checks from here
(``ConfigError``, ``check_positive``, unknown keys with the nearest valid one).
"""
from __future__ import annotations

import inspect
import difflib

from . import SeqbenchError


class ConfigError(SeqbenchError, ValueError):
    pass


def check_positive(where: str, **values) -> None:
    """Each value a number > 0 (None: not set, allowed)."""
    for key, value in values.items():
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
            raise ConfigError(f"{where}.{key}={value!r}: must be a number > 0")


def _nearest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_keys(group: str, given: dict, valid: set[str]) -> None:
    for key in given:
        if key not in valid:
            raise ConfigError(f"{group}.{key}: unknown key{_nearest(key, valid)} "
                              f"(valid: {', '.join(sorted(valid))})")


# seqbench's own keys in the optimizer group (not passed to the optimiser's constructor).
OPTIMIZER_OWN_KEYS = {"_target_", "_partial_", "sparse_embedding"}
# Settings that must be >= 0 (lr > 0) wherever an optimiser takes them.
NON_NEGATIVE_OPTIMIZER_KEYS = ("eps", "weight_decay", "momentum", "dampening", "lr_decay", "alpha", "rho")


def _target_class(group: str, target):
    """The class a config's ``_target_`` names: the user's own config names it, in this invocation
    (never called on a record's config)."""
    import importlib
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(f"{group}._target_={target!r}: a dotted class name, e.g. torch.optim.Adam")
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest importable module, then attributes
        try:
            found = importlib.import_module(".".join(parts[:cut]))
            break
        except ModuleNotFoundError:
            continue
        except Exception as error:
            raise ConfigError(f"{group}._target_={target!r}: importing {'.'.join(parts[:cut])} failed "
                              f"({type(error).__name__}: {(str(error).splitlines() or [''])[0][:150]})") from None
    else:
        raise ConfigError(f"{group}._target_={target!r}: no module {parts[0]!r} can be imported")
    for depth, name in enumerate(parts[cut:], start=cut):
        if not hasattr(found, name):
            raise ConfigError(f"{group}._target_={target!r}: {'.'.join(parts[:depth])} has no {name!r}"
                              f"{_nearest(name, [n for n in dir(found) if not n.startswith('_')])}")
        found = getattr(found, name)
    if not isinstance(found, type):
        raise ConfigError(f"{group}._target_={target!r} is not a class")
    return found


def _plain_types(annotation) -> tuple[type, ...] | None:
    """The plain config types an annotation allows, ignoring tensor alternatives (``float | Tensor``
    -> (float,)); a tuple annotation -> (list,); None: nothing to check against."""
    import types
    import typing
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return (list,)
    if isinstance(annotation, types.UnionType) or origin is typing.Union:
        found = [t for part in typing.get_args(annotation) for t in (_plain_types(part) or ())]
        return tuple(found) or None
    if annotation in (int, float, str, bool, type(None)):
        return (annotation,)
    return None


def _constructor(cls) -> tuple[dict, dict, bool]:
    """(parameters, type hints, takes **kwargs) of a class's constructor."""
    import typing
    parameters = dict(inspect.signature(cls).parameters)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # annotations that do not resolve: check names only
        hints = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {k: p for k, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}, hints, takes_any


def _check_value(group: str, key: str, value, annotation, default) -> None:
    allowed = _plain_types(annotation) if annotation is not None else None
    if allowed is None and default not in (None, inspect.Parameter.empty):
        allowed = (list,) if isinstance(default, tuple) else (type(default),)
    if allowed is None:
        return
    words = {int: "a whole number", float: "a number", str: "text", bool: "true or false", type(None): "null",
             list: "a list, e.g. [0.9, 0.999]"}
    ok = any((t is float and isinstance(value, (int, float)) and not isinstance(value, bool)) or
             (t is int and isinstance(value, int) and not isinstance(value, bool)) or
             (t is list and isinstance(value, (list, tuple))) or
             (t in (str, bool, type(None)) and isinstance(value, t)) for t in allowed)
    if not ok:
        wanted = " or ".join(dict.fromkeys(words.get(t, t.__name__) for t in allowed))
        raise ConfigError(f"{group}.{key}={value!r}: must be {wanted}")


def check_optimizer(optimizer) -> None:
    """The optimizer group as the optimiser's constructor takes it: known keys (with the nearest
    valid one), values of the right type, a learning rate > 0; before any data is read."""
    if not isinstance(optimizer, dict) or "_target_" not in optimizer:
        raise ConfigError(f"optimizer={optimizer!r}: choose one with optimizer=adam|adamw|sgd (or give "
                          f"optimizer._target_)")
    cls = _target_class("optimizer", optimizer.get("_target_"))
    if optimizer.get("_partial_") is not True:
        raise ConfigError(f"optimizer._partial_={optimizer.get('_partial_')!r}: must be true (the optimiser is "
                          f"built later, around the model's parameters)")
    parameters, hints, takes_any = _constructor(cls)
    parameters.pop(next(iter(parameters), None), None)  # the parameters to optimise, given later
    given = {k: v for k, v in optimizer.items() if k not in OPTIMIZER_OWN_KEYS}
    if not takes_any:
        _check_keys("optimizer", given, set(parameters) | OPTIMIZER_OWN_KEYS)
    for key, value in given.items():
        if key in parameters:
            _check_value("optimizer", key, value, hints.get(key), parameters[key].default)
    if "lr" in given:
        check_positive("optimizer", lr=given["lr"])
    for key in NON_NEGATIVE_OPTIMIZER_KEYS:
        value = given.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"optimizer.{key}={value!r}: must be >= 0")


# The arguments of Lightning's loggers (2.x), so that the usual configs are checked without
# importing Lightning; any other key is looked up in the installed logger before it is refused.
LOGGER_ARGUMENTS = {
    "TensorBoardLogger": {"save_dir", "name", "version", "log_graph", "default_hp_metric", "prefix", "sub_dir"},
    "CSVLogger": {"save_dir", "name", "version", "prefix", "flush_logs_every_n_steps"},
    "MLFlowLogger": {"experiment_name", "run_name", "tracking_uri", "tags", "save_dir", "log_model", "prefix",
                     "artifact_location", "run_id", "synchronous"},
    "WandbLogger": {"name", "save_dir", "version", "offline", "dir", "id", "anonymous", "project", "log_model",
                    "experiment", "prefix", "checkpoint_name", "add_file_policy"}}


def check_logger(logger) -> None:
    """The logger group: known keys of the logger it names (``+logger.foo=1`` is refused up front)."""
    if not isinstance(logger, dict):
        raise ConfigError(f"logger={logger!r}: choose one with logger=tensorboard|csv|mlflow|wandb")
    target = logger.get("_target_")
    given = {k: v for k, v in logger.items() if k not in ("_target_", "kind")}
    known = LOGGER_ARGUMENTS.get(str(target).rsplit(".", 1)[-1]) if str(target).startswith(
        "pytorch_lightning.loggers") else None
    if known is not None and set(given) <= known:
        return
    cls = _target_class("logger", target)
    parameters, _, takes_any = _constructor(cls)
    valid = set(parameters)
    if takes_any and cls.__name__ == "TensorBoardLogger":  # the rest goes to SummaryWriter
        from torch.utils.tensorboard import SummaryWriter
        valid |= set(inspect.signature(SummaryWriter).parameters) - {"log_dir"}
    elif takes_any:  # passed on to a library seqbench cannot see (wandb.init): not checked here
        return
    _check_keys("logger", given, valid)
