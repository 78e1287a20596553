"""Variants searched at once: worker processes (spawned, ended with their parent), or one job in
this process; stopping them on Ctrl-C or SIGTERM."""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from ..runtime import stop_on_signals
from .study import search_variant


class _InProcess:
    """One job: no worker processes, the same interface."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(function, *iterables):
        return list(map(function, *iterables))


def _end_with_parent() -> None:
    """In a worker: end when the search that started it ends (Linux: the kernel sends SIGTERM;
    elsewhere a thread watches the parent), so no orphan keeps training after a crash."""
    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    stop_on_signals()

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(143)
            time.sleep(2)
    threading.Thread(target=watch, daemon=True).start()


def _pool(jobs: int):
    if jobs <= 1:
        return _InProcess()
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_end_with_parent)


def _stop_workers(pool) -> None:
    """On Ctrl-C or SIGTERM: no new variant starts, and the workers stop now (their trials are
    asked again, and their runs resume, when the search runs again)."""
    if not isinstance(pool, ProcessPoolExecutor):
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _search_or_error(*args) -> dict:
    try:
        return search_variant(*args)
    except Exception as error:  # reported by the parent, after the other variants finished
        return {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
