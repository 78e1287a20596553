"""Process-wide settings every entry point shares: where the configs are, quiet third-party
chatter, torch threads per job, and this process's rank before any Trainer exists. Light to
import: library modules use it instead of importing the command-line module."""
from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path


class Interrupted(SystemExit):
    """SIGTERM (preemption, scancel, kill) or Ctrl-C: the run is recorded as interrupted and can
    resume; the process exits with 128 + the signal's number (143, 130), as a shell reports it.
    A SystemExit, not a KeyboardInterrupt: Lightning turns a KeyboardInterrupt into exit(1)."""

    def __init__(self, signum: int = signal.SIGTERM):
        self.signum = signum
        super().__init__(128 + signum)


# The signal a stop was asked with, remembered before the handler raises: Python drops an
# exception raised where it cannot propagate (in a __del__, a weakref callback, a generator being
# closed: "Exception ignored in ..."), and a SIGTERM that landed there would otherwise be lost, the
# sweep going on to exit 0. stop_if_requested() asks again at the harness's safe points.
_stop_signal: int | None = None


def raise_interrupted(signum, frame):
    global _stop_signal
    _stop_signal = signum
    raise Interrupted(signum)


def stop_if_requested() -> None:
    """Raise Interrupted if a SIGTERM or Ctrl-C came and its exception was dropped on the way."""
    if _stop_signal is not None:
        raise Interrupted(_stop_signal)


def forget_stop_request() -> None:
    """For a process that goes on after handling a stop (tests calling the commands in-process)."""
    global _stop_signal
    _stop_signal = None


def stop_on_signals() -> None:
    """SIGTERM and SIGINT (Ctrl-C) raise Interrupted: a clean stop with exit 143 or 130."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, raise_interrupted)


def _config_dir() -> str:
    """Configs ship inside the package (wheel installs); a source checkout reads conf/ beside it,
    the one the packaged copy is built from."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise SystemExit("seqbench: its configs are missing (neither seqbench/conf nor conf/ next to the package)")


CONFIG_DIR = _config_dir()

# The user's own config folders (``--config-dir DIR``, the way to name one's data set once): every
# command composes with them, and the processes a command starts (a sweep's plan, a search's
# workers) inherit them through this variable.
CONFIG_DIRS_ENV = "SEQBENCH_CONFIG_DIRS"


def user_config_dirs() -> list[str]:
    return [d for d in os.environ.get(CONFIG_DIRS_ENV, "").split(os.pathsep) if d]


def take_config_dirs(argv: list[str]) -> list[str]:
    """``argv`` without ``--config-dir DIR`` / ``-cd DIR`` / ``--config-dir=DIR``; the folders,
    absolute, join ``user_config_dirs()`` for this process and the ones it starts."""
    rest, dirs, skip = [], [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
            skip = True
        elif arg.startswith("--config-dir="):
            dirs.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    if dirs:
        known = user_config_dirs()
        added = [str(Path(d).expanduser().resolve()) for d in dirs]
        os.environ[CONFIG_DIRS_ENV] = os.pathsep.join(dict.fromkeys([*known, *added]))
    return rest


def search_path(extra_dirs: list[str] | None = None) -> list[str]:
    """The ``hydra.searchpath`` override that adds the user's config folders (none: [])."""
    dirs = list(dict.fromkeys([*(extra_dirs or []), *user_config_dirs()]))
    return [f"hydra.searchpath=[{','.join('file://' + str(Path(d).resolve()) for d in dirs)}]"] if dirs else []


def compose_configs(jobs: list[list[str]], return_hydra_config: bool = False, extra_dirs: list[str] | None = None):
    """The composed config of each job's overrides, as ``seqbench`` composes a run: the shipped
    configs and the user's config folders; Hydra set up once for all of them."""
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return [compose(config_name="config", overrides=[*search_path(extra_dirs), *job],
                        return_hydra_config=return_hydra_config) for job in jobs]


def recorded_variant(name: str) -> str:
    """The variant name runs of ``model=<name>`` are recorded under (``bilstm_attn`` ->
    ``bilstm_attn_additive``); a name that is no model config (a recorded name already) as it is."""
    from omegaconf import OmegaConf
    from .names import register_resolvers, variant_of
    register_resolvers()
    try:
        cfg = compose_configs([[f"model={name}"]])[0]
        return variant_of(OmegaConf.to_container(cfg.model, resolve=True))
    except Exception:  # not a model config here: a name as records spell it
        return name


def quiet_third_party() -> None:
    """Keep normal output for seqbench's own lines: no deprecation chatter from libraries."""
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")


def quiet_lightning() -> None:
    """Lightning sets its loggers to INFO when imported (device notices, tips, "fit stopped"):
    keep the console for seqbench's lines; warnings still show."""
    import logging
    for name in ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)


def default_threads(jobs: int | None = None) -> int:
    """torch's threads when the config names none: the cores divided among the jobs a launcher runs
    at once; a single job leaves one core to the rest of the machine. Measured on 2 cores
    (`seqbench bench --workload threads`, README "Speed"): TREC gru steps with 2 threads ran 10-30x
    slower than with 1 as soon as any other process computed (OpenMP threads wait on a busy core),
    and at best 1.4x faster on an idle machine."""
    cores = os.cpu_count() or 1
    if isinstance(jobs, int) and jobs > 1:
        return max(1, cores // jobs)
    return max(1, cores - 1)


def set_threads(threads: int | None = None, jobs: int | None = None) -> int:
    """torch's threads for this job: ``threads``, else ``default_threads(jobs)``; returns it."""
    import torch
    threads = int(threads) if threads else default_threads(jobs)
    torch.set_num_threads(threads)
    return threads


def flush_denormals(wanted: bool = True) -> bool:
    """Flush denormal floats to zero on CPU (or stop flushing); returns whether flushing is now on
    (False where the CPU cannot: torch.set_flush_denormal answers False there). Process-wide: it
    is set before each run from that run's config."""
    import torch
    return bool(torch.set_flush_denormal(bool(wanted))) and bool(wanted)


# glibc's mallopt parameters (malloc.h); the largest mmap threshold glibc accepts on 64 bits is 32 MiB.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEPT_MMAP_THRESHOLD, _KEPT_TRIM_THRESHOLD = 32 << 20, 1 << 30
_freed_memory_kept = False


def keep_freed_memory(wanted: bool = True) -> bool:
    """Keep the memory a training step frees for the next step (glibc's malloc only); returns
    whether this process keeps it.

    By default glibc hands a freed block above its mmap threshold back to the OS (128 KiB at
    first, raised as blocks are freed, up to 32 MiB; a tensor of a recurrent layer's (batch, steps,
    hidden) size is such a block) and trims its heap's free top beyond twice that threshold, so the
    next step faults the same memory in again, page by page: in seqbench runs of the
    adding task at T = 400 (hidden 64), minGRU's step took a median 16.5 ms that way against 15.3 ms
    kept (one process of three: 22.3 ms), minLSTM's 23.2 against 20.3, the LRU's 39.2 against 36.0,
    while nn.GRU's, which allocates less per step, did not move (docs/speed.md). Here blocks up to 32 MiB
    come from the heap, and up to 1 GiB of freed heap stays with the process, which is what
    jemalloc or tcmalloc (PyTorch's CPU tuning advice) would do. It changes no number, only where
    memory comes from. Process-wide and one-way: ``wanted=False`` leaves the allocator as it is,
    and a process that has kept freed memory once keeps doing so (the record says so); in a sweep
    with several workers, each worker keeps its own. Nothing is done (False) where another
    allocator is preloaded (jemalloc, tcmalloc, mimalloc: they keep freed memory their own way)."""
    global _freed_memory_kept
    if wanted and not _freed_memory_kept:
        import ctypes
        import platform
        preloaded = os.environ.get("LD_PRELOAD", "")
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" \
                and not any(name in preloaded for name in ("jemalloc", "tcmalloc", "mimalloc")):
            mallopt = ctypes.CDLL(None).mallopt
            _freed_memory_kept = bool(mallopt(_M_MMAP_THRESHOLD, _KEPT_MMAP_THRESHOLD)
                                      and mallopt(_M_TRIM_THRESHOLD, _KEPT_TRIM_THRESHOLD))
    return _freed_memory_kept


def process_rank() -> int:
    """This process's global rank, read from what launchers set before any Trainer exists:
    torchrun's ``RANK``; SLURM's ``SLURM_PROCID`` when SLURM started every process; and for
    Lightning's own launcher (one command per node, which starts the node's other processes)
    ``NODE_RANK`` with ``LOCAL_RANK``: a process on any node but the first is never rank 0, even
    before Lightning has told it its rank."""
    env = os.environ

    def number(key: str) -> int | None:
        value = env.get(key, "")
        return int(value) if value.isdigit() else None

    if number("RANK") is not None:
        return number("RANK")
    if number("SLURM_PROCID") is not None and (number("SLURM_NTASKS") or 1) > 1:
        return number("SLURM_PROCID")
    if number("JSM_NAMESPACE_RANK") is not None:
        return number("JSM_NAMESPACE_RANK")
    node = number("NODE_RANK") or number("GROUP_RANK") or 0
    local = number("LOCAL_RANK") or 0
    return node * 1_000_000 + local if node else local  # any process of a later node is > 0


def launch_id() -> str:
    """What all processes of one launch share (across nodes), to tell this launch's published
    plan from an earlier one's: scheduler job ids and the rendezvous address."""
    env = os.environ
    keys = ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID", "LSB_JOBID", "MASTER_ADDR", "MASTER_PORT")
    return "|".join(env.get(key, "") for key in keys)


# ------------------------------------------------------------------------------ errors at the edges
def describe_os_error(error: OSError) -> str:
    """One line for a file-system error: the path, what went wrong, what to do."""
    import errno
    path = error.filename or ""
    reason = error.strerror or str(error)
    fixes = {errno.EACCES: "make it writable or choose another folder (paths.output_root=PATH, --out DIR)",
             errno.EPERM: "make it writable or choose another folder (paths.output_root=PATH, --out DIR)",
             errno.EROFS: "the file system is read-only: choose another folder (paths.output_root=PATH, --out DIR)",
             errno.ENOSPC: "the disk is full: free some space, or choose a folder on another disk",
             errno.ENOTDIR: "a file stands where a folder is needed: choose another path",
             errno.EEXIST: "a file stands where a folder is needed: choose another path",
             errno.ENOENT: "a folder on the way does not exist and cannot be made there: choose another path",
             errno.EISDIR: "a folder stands where a file is needed: choose another path"}
    fix = fixes.get(error.errno, "check the path")
    return f"{path}: {reason}; {fix}" if path else f"{reason}; {fix}"


def argument_parser(**options):
    """argparse's parser, whose refusals are one line (``error: argument --steps: 0 must be at least
    1; seqbench diagnostics --help lists the options``, exit 2) instead of usage and error."""
    import argparse
    import sys

    class OneLine(argparse.ArgumentParser):
        def error(self, message):
            print(f"error: {message}; {self.prog} --help lists the options", file=sys.stderr)
            sys.exit(2)
    return OneLine(**options)


def at_least_one(text: str) -> int:
    """An argparse ``type``: a whole number >= 1."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def debugging(argv: list[str] | None = None) -> bool:
    """Tracebacks wanted: ``--debug`` on the command line, or HYDRA_FULL_ERROR=1 / SEQBENCH_DEBUG=1."""
    return ("--debug" in (argv if argv is not None else [])
            or os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("SEQBENCH_DEBUG") == "1")


USER_ERROR, BUG = 2, 1   # exit codes: the user's to fix (one line says how) | seqbench's fault


def exit_status(error: BaseException) -> tuple[int, str]:
    """The one policy every command ends by (``seqbench`` itself and each tool): the exit code for
    an error, and the line that says it. A user's error (``SeqbenchError``, a file-system error at
    the edges): 2. SIGTERM and Ctrl-C: 143 and 130, as a shell reports a process they ended (a run
    records "interrupted" and resumes). Anything else is a bug: 1, with how to see the traceback."""
    from . import SeqbenchError
    if isinstance(error, Interrupted):
        return error.code, "interrupted"
    if type(error).__name__ == "SIGTERMException":   # Lightning's own, on SIGTERM
        return Interrupted().code, "interrupted"
    if isinstance(error, KeyboardInterrupt):
        return Interrupted(signal.SIGINT).code, "interrupted"
    if isinstance(error, SystemExit):
        return (error.code or BUG) if isinstance(error.code, int) else BUG, "interrupted"
    if isinstance(error, SeqbenchError):
        return USER_ERROR, f"error: {error}"
    if isinstance(error, OSError):
        return USER_ERROR, f"error: {describe_os_error(error)}"
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return BUG, f"error: unexpected {type(error).__name__}: {first} (run again with --debug for the traceback)"


def entry_point(main):
    """Wrap a command's ``main(argv)``: it ends as ``exit_status`` says, in one line on stderr.
    ``--debug`` (or HYDRA_FULL_ERROR=1) shows the traceback instead."""
    import functools
    import sys

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None):
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = debugging(argv)
        argv = [a for a in argv if a != "--debug"]
        try:
            return main(argv)
        except (Exception, KeyboardInterrupt) as error:   # SystemExit: the command's own exit
            if debug:
                raise
            code, line = exit_status(error)
            print(line, file=sys.stderr)
            sys.exit(code)
    return wrapped
