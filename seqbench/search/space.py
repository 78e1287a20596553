"""The search space and the settings of a search, checked before anything runs: Hydra's override
syntax (``choice``, ``interval``, ``range``, ``tag(log, ...)``) as Optuna distributions, the keys
that apply to each variant, space keys given on the command line, the composed config, and the
sampler's seeds and start-up trials."""
from __future__ import annotations

import difflib
import zlib

from .. import SeqbenchError
from ..names import register_resolvers
from ..runtime import search_path


class SearchSpaceError(SeqbenchError):
    pass


def distributions(space: dict) -> dict:
    """Hydra override syntax -> Optuna distributions: ``choice(...)`` -> categorical,
    ``interval(a, b)`` -> float (int when both ends are ints), ``range(a, b[, step])`` -> int,
    ``tag(log, ...)`` -> log scale. A malformed, reversed, empty or non-positive log range is a
    ``SearchSpaceError`` naming the key."""
    import optuna
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import HydraException
    parser = OverridesParser.create()
    out = {}
    for key, text in flatten_space(space).items():
        where = f"hparams_search.space.{key}={text!r}"
        try:
            value = parser.parse_override(f"{key}={text}").value()
        except HydraException as error:
            raise SearchSpaceError(f"{where}: not Hydra's override syntax ({str(error).splitlines()[0]}); use "
                                   f"choice(...), interval(a, b), range(a, b) or tag(log, interval(a, b))") from None
        log_scale = "log" in getattr(value, "tags", set())
        if isinstance(value, ChoiceSweep):
            if not value.list:
                raise SearchSpaceError(f"{where}: an empty choice")
            out[key] = optuna.distributions.CategoricalDistribution(list(value.list))
        elif isinstance(value, RangeSweep):
            if value.stop <= value.start:
                raise SearchSpaceError(f"{where}: the range is empty (its end must be above its start)")
            out[key] = optuna.distributions.IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
        elif isinstance(value, IntervalSweep):
            if value.end < value.start:
                raise SearchSpaceError(f"{where}: the interval is reversed (interval({value.end}, {value.start}) "
                                       f"perhaps)")
            if log_scale and value.start <= 0:
                raise SearchSpaceError(f"{where}: a log-scale interval needs a start above 0")
            if isinstance(value.start, int) and isinstance(value.end, int):
                out[key] = optuna.distributions.IntDistribution(value.start, value.end, log=log_scale)
            else:
                out[key] = optuna.distributions.FloatDistribution(float(value.start), float(value.end), log=log_scale)
        else:
            raise SearchSpaceError(f"{where}: use choice(...), interval(a, b), range(a, b) or tag(log, interval(a, b))")
    return out


def flatten_space(space: dict, prefix: str = "") -> dict:
    """``{"optimizer.lr": ...}`` as written in a YAML file, or ``{"optimizer": {"lr": ...}}`` as a
    dotted command-line override builds it: the same flat keys."""
    out = {}
    for key, value in space.items():
        if isinstance(value, dict):
            out.update(flatten_space(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def applies(key: str, model: dict) -> bool:
    """A key applies to a variant when its model has the setting (attention keys only for
    attention models), or when it is not a model key at all."""
    if not key.startswith("model."):
        return True
    name = key.split(".", 1)[1]
    if name.startswith("attention"):
        return model.get("pooling") == "attention"
    return name in model


def _flat_keys(config: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in config.items():
        keys.add(f"{prefix}{key}")
        if isinstance(value, dict):
            keys |= _flat_keys(value, f"{prefix}{key}.")
    return keys


def check_settings(settings: dict, variants: dict[str, dict]) -> dict[str, dict]:
    """Check a search before anything runs; return each variant's space (the keys that apply).
    ``variants``: variant -> its composed, resolved config."""
    trials = settings.get("trials")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise SearchSpaceError(f"hparams_search.trials={trials!r}: must be a whole number >= 1 (the budget of every "
                               f"variant)")
    if not settings.get("variants"):
        raise SearchSpaceError("hparams_search.variants is empty: name the model variants to tune")
    space_text = settings.get("space") or {}
    if not space_text:
        raise SearchSpaceError("hparams_search.space is empty: a search with nothing to vary would retrain one "
                               "configuration and call it tuned")
    for key in ("max_failed_trials", "budget_epochs"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SearchSpaceError(f"hparams_search.{key}={value!r}: must be a whole number >= 1 (or null)")
    for key in ("choice_top", "choice_seeds", "choice_epochs"):
        value = settings.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise SearchSpaceError(f"hparams_search.{key}={value!r}: must be a whole number >= 0 (or null)")
    if choice_reserve(settings) and not (settings.get("budget_epochs") or 0) > choice_reserve(settings):
        raise SearchSpaceError(f"hparams_search.choice_epochs={settings['choice_epochs']} leaves no epoch of "
                               f"budget_epochs={settings.get('budget_epochs')} for the trials: make budget_epochs "
                               f"larger than choice_epochs")
    space = distributions(space_text)
    known = set().union(*(_flat_keys(config) for config in variants.values()))
    for key in space:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            raise SearchSpaceError(f"hparams_search.space.{key}: unknown key" +
                                   (f"; did you mean {close[0]!r}?" if close else "") +
                                   " (a key of the composed config: model.*, optimizer.*, dataset.*, trainer.*)")
    out = {}
    for variant, config in variants.items():
        chosen = {k: v for k, v in space.items() if applies(k, config["model"])}
        if not chosen:
            raise SearchSpaceError(f"no key of hparams_search.space applies to {variant} ({', '.join(space)}): its "
                                   f"search would vary nothing")
        out[variant] = chosen
    return out


def choice_reserve(settings: dict) -> int:
    """The epochs of ``budget_epochs`` kept for the choice's re-runs: none where nothing is re-run."""
    active = settings.get("choice_top") and settings.get("choice_seeds")
    return int(settings.get("choice_epochs") or 0) if active and settings.get("budget_epochs") else 0


def override_value(value) -> str:
    return str(value) if not isinstance(value, float) else repr(value)


SPACE_PREFIX = "hparams_search.space."


def space_overrides(overrides: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """(the other overrides, {space key: its text, None to remove it}) from a search's command line.
    A space value (``choice(32, 64)``, ``tag(log, interval(1e-4, 1e-2))``) is text the search parses
    itself, as it is in conf/hparams_search/*.yaml: Hydra would read it as a sweep of this command."""
    rest, space = [], {}
    for text in overrides:
        bare = text.lstrip("+~")
        if not bare.startswith(SPACE_PREFIX):
            rest.append(text)
            continue
        key, equals, value = bare[len(SPACE_PREFIX):].partition("=")
        if text.startswith("~"):
            space[key] = None
            continue
        if not key or not equals:
            raise SearchSpaceError(f"{text!r}: a space key is {SPACE_PREFIX}KEY=VALUE, e.g. \"{SPACE_PREFIX}"
                                   f"optimizer.lr=tag(log, interval(1e-4, 1e-2))\" (quoted for the shell)")
        value = value.strip()
        if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":  # quoted for Hydra: the same text
            value = value[1:-1]
        space[key] = value
    return rest, space


def _set_space(space, key: str, value: str | None) -> None:
    """One spelling per key: ``optimizer.lr`` flat, as the YAML files write it (a nested copy of the
    same key, ``optimizer: {lr: ...}``, is dropped so that the two never disagree)."""
    node, parts = space, key.split(".")
    for part in parts[:-1]:
        node = node.get(part) if hasattr(node, "get") else None
        if node is None:
            break
    else:
        if hasattr(node, "pop"):
            node.pop(parts[-1], None)
    space.pop(key, None)
    if value is not None:
        space[key] = value


def compose(config_dir: str, overrides: list[str], extra_dirs: list[str] | None = None):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import open_dict
    register_resolvers()
    overrides, space = space_overrides(overrides)
    with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=[*search_path(extra_dirs), *overrides])
    if space:
        if not cfg.get("hparams_search"):
            raise SearchSpaceError(f"{SPACE_PREFIX}...: name the search first, hparams_search=<name>")
        with open_dict(cfg):
            if cfg.hparams_search.get("space") is None:
                cfg.hparams_search.space = {}
            for key, value in space.items():
                _set_space(cfg.hparams_search.space, key, value)
    return cfg


def checked_params(params: dict, space: dict, where: str) -> dict:
    """A trial's parameters as overrides, only as this search's space allows them: a study database
    is data, and a key or a value it holds beyond the space (an edited database) is refused."""
    out = {}
    for key, value in (params or {}).items():
        distribution = space.get(key)
        if distribution is None:
            raise SearchSpaceError(f"{where} sets {key!r}, which is not in hparams_search.space: a study database "
                                   f"never adds settings; move the database aside to start the study afresh")
        try:
            fits = isinstance(value, (bool, int, float, str)) and distribution._contains(
                distribution.to_internal_repr(value))
        except (TypeError, ValueError):
            fits = False
        if not fits:
            raise SearchSpaceError(f"{where} sets {key}={value!r}, outside hparams_search.space.{key}: move the "
                                   f"database aside to start the study afresh")
        out[key] = value
    return out


def variant_seed(settings: dict, variant: str) -> int:
    """The seed of a variant's own random stream (its start-up trials, its replacements of repeats):
    from ``sampler_seed`` and the variant's name, so variants do not share their random points."""
    return zlib.crc32(f"{int(settings['sampler_seed'])}:{variant}".encode()) % 1_000_000_007


def startup_trials(settings: dict) -> int:
    """The sampler's random start-up: ``startup_trials``, at most a third of the budget (so that
    the model-based part has trials at all)."""
    return min(int(settings.get("startup_trials", 5)), max(1, int(settings["trials"]) // 3))


def budget_warnings(settings: dict, max_epochs: dict[str, int] | None = None) -> list[str]:
    """What a budget too small for its sampler or its pruner leaves undone, said before it starts;
    with ``max_epochs`` (variant -> a trial's epochs), also what an epoch budget (``budget_epochs``)
    leaves undone: fewer full trials than the sampler's start-up."""
    trials = int(settings["trials"])
    asked, startup = int(settings.get("startup_trials", 5)), startup_trials(settings)
    pruner = int(settings.get("pruner_startup_trials", 3))
    out = []
    if startup < asked or trials - startup < 2:
        out.append(f"hparams_search.trials={trials} leaves {startup} random start-up trial(s) of the {asked} asked "
                   f"(startup_trials) and {trials - startup} guided by the TPE sampler, which then models the space "
                   f"from {startup} point(s): close to a random search; at least {3 * asked} trials let it leave "
                   f"its start-up as configured")
    if trials <= pruner:
        out.append(f"hparams_search.trials={trials}: the pruner never prunes (it starts after "
                   f"{pruner} complete trials, pruner_startup_trials); every trial trains to its end")
    budget = settings.get("budget_epochs")
    if budget and max_epochs:
        for_trials = int(budget) - choice_reserve(settings)
        short = {variant: for_trials // epochs for variant, epochs in max_epochs.items()
                 if epochs and for_trials // epochs < startup}
        if short:
            fits = ", ".join(f"{variant} {count}" for variant, count in short.items())
            out.append(f"hparams_search.budget_epochs={budget} leaves {for_trials} epochs for trials, which fit fewer "
                       f"full trials than the {startup} random start-up trial(s) (full trials that fit: {fits}): the "
                       f"TPE sampler guides a trial only where early stopping or the pruner ends trials sooner; raise "
                       f"budget_epochs or lower trainer.max_epochs")
    return out


def in_space(record: dict, space: dict) -> bool:
    """Whether a run's settings lie in the search space, for every key of the space its config has."""
    config = record.get("config") or {}
    try:
        bounds = distributions(space)
    except SearchSpaceError:
        return False
    for key, distribution in bounds.items():
        node = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        if hasattr(distribution, "choices"):
            if node not in distribution.choices:
                return False
        elif not (isinstance(node, (int, float)) and distribution.low <= node <= distribution.high):
            return False
    return True
