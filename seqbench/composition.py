"""Composition checked before anything runs: Hydra's config composed as a run or a sweep will
compose it, and what Hydra itself would stop on with a traceback (an unknown group option or key,
a name that would become a path, an output folder that cannot be written) said in one line. The
main command and every tool (plan, search, eval, adaptive) use it; none imports ``__main__``.
"""
from __future__ import annotations

from pathlib import Path

from hydra.types import RunMode

from .runtime import CONFIG_DIR, describe_os_error, search_path, take_config_dirs, user_config_dirs


def preflight(argv: list[str]) -> str | None:
    """What Hydra itself would stop on with a traceback, said in one line instead (None: all
    good): a config group option or key that does not exist, and output folders that cannot be
    written (a file on the way, a read-only or pseudo file system). Composes the config as the run
    will (the first job of a sweep), before any run starts."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    flags = {"-m", "--multirun"}
    argv = take_config_dirs(argv)  # and into the environment: a sweep's plan process composes with them too
    if any(a.startswith("-") and a not in flags for a in argv):
        return None  # --help, --cfg, -sc...: Hydra's own business
    overrides = [a for a in argv if a not in flags]
    multirun = len(overrides) != len(argv)
    overrides = [*search_path(), *overrides]
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        parsed = OverridesParser.create().parse_overrides(overrides)
        values = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
                  else [o.input_line] for o in parsed]
        first = [options[0] for options in values]
        # Every value of every swept key once (with the first of the others), not every combination.
        trials = [first] + [first[:i] + [option] + first[i + 1:] for i, options in enumerate(values)
                            for option in options[1:]]
        # here, not at the top: __main__ imports this module, and config (with record) adds ~28 ms to --help
        from .config import PATH_NAMES, ConfigError, check_hydra_names, check_name, check_seed
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            for trial in trials:
                cfg = compose(config_name="config", overrides=trial, return_hydra_config=True)
                # What Hydra makes folder names of, checked before it makes them.
                check_seed(cfg.get("seed"))
                for key in PATH_NAMES:
                    group, _, name = key.partition(".")
                    if cfg.get(group) and cfg[group].get(name) is not None:
                        check_name(key, cfg[group][name])
                check_hydra_names(cfg)
            cfg = compose(config_name="config", overrides=first, return_hydra_config=True)
        folders = [cfg.paths.output_root, cfg.hydra.sweep.dir if multirun or cfg.hydra.mode == RunMode.MULTIRUN
                   else cfg.hydra.run.dir]
    except (HydraException, OmegaConfBaseException) as error:
        return composition_error(error)
    except ConfigError as error:
        return str(error)
    for folder in folders:
        problem = unwritable(Path(str(folder)))
        if problem:
            return problem
    return None


def composition_error(error: Exception) -> str:
    """Hydra's composition errors, each in one line: an unknown group option lists the valid ones."""
    import re
    text = str(error)
    missing = re.search(r"Could not find '(\w+)/([^']+)'", text)
    if missing:
        group, name = missing[1], missing[2]
        options = sorted({p.stem for folder in (CONFIG_DIR, *user_config_dirs()) for p in Path(folder, group).glob("*.yaml")
                          if not p.stem.startswith("_")})  # _shared.yaml and the like: parts of configs
        return f"unknown {group} {name!r}; valid: {', '.join(options)}"
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(("\t", "    "))]
    return " ".join(lines[:2])


def unwritable(folder: Path) -> str | None:
    """Why ``folder`` (or the folders to be made on the way to it) cannot be written, or None."""
    import tempfile
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "" if existing == folder else f" on the way to {folder}"
        return (f"{existing} is a file{where}, and a folder is needed there; choose another folder "
                f"(paths.output_root=PATH or hydra.run.dir=PATH)")
    try:
        existing.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=existing):
            pass
        if existing != folder:  # a folder that must be made: can it be?
            probe = Path(tempfile.mkdtemp(dir=existing, prefix=".seqbench-probe-"))
            probe.rmdir()
    except OSError as error:
        error.filename = str(folder)
        return f"cannot make or write the output folder {describe_os_error(error)}"
    return None
