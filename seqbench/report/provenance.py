"""Where a report's runs come from and how to make it again, written so it can be mailed: no
absolute path of the user's data in it (data files by name, other paths relative to the report)."""
from __future__ import annotations

import math
import os
import shlex
import time
from pathlib import Path

import pandas as pd

from ..data.vectors import vectors_words
from ..record import describe_hardware
from ..tasks import PERCENT_METRICS, POSITIVE_METRICS, TASKS
from .options import LEAD_TITLE


def private_paths(records: list[dict]) -> dict[str, str]:
    """The user's data paths the records hold (files, data roots, token caches) -> what a report
    shows instead: the file's (or folder's) name. A report is mailed; its reader needs to know which
    file (name and fingerprint), not where it lies on the author's disk."""
    found: dict[str, str] = {}

    def add(value):
        if isinstance(value, str) and value.startswith(("/", "~")) and len(value) > 1:
            found[value.rstrip("/")] = Path(value.rstrip("/")).name or value
    for r in records:
        for value in ((r.get("data") or {}).get("files") or {}).values():
            add(value)
        dataset = (r.get("config") or {}).get("dataset") or {}
        for key in ("train", "val", "test", "root", "cache_dir", "path", "file"):
            add(dataset.get(key))
    return found


def scrub(text: str, private: dict[str, str]) -> str:
    """``text`` without the user's absolute data paths (longest first, so a file under a data root
    keeps its own name)."""
    for path in sorted(private, key=len, reverse=True):
        text = text.replace(path, private[path])
    return text


def portable_command(command: str, out: Path, private: dict[str, str] | None = None) -> str:
    """A command line as a report shows it: the user's data files by name (their fingerprints are
    under Provenance), any other absolute path relative to the report's folder."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    out = Path(out).resolve()

    def portable(value: str, data: bool) -> str:
        if not value.startswith("/"):
            return value
        if data or value.rstrip("/") in (private or {}):
            return Path(value).name
        return os.path.relpath(value, out)
    shown = []
    for word in words:
        key, equals, value = word.partition("=")
        if equals and not word.startswith("-"):
            shown.append(f"{key}={portable(value, key.lstrip('+~').startswith('dataset.'))}")
        else:
            shown.append(portable(word, False))
    return shlex.join(shown)


def report_command(folders: list, out: Path, command: str | None, plots: bool, resamples: int,
                   ropes: dict[str, float] | None, compare: list[tuple[str, str]] | None = None,
                   studies: str | Path | None = None, lead: list | None = None, lead_title: str | None = None) -> str:
    """``seqbench report`` with every flag that makes this very report again, run from the report's
    folder (paths relative to it)."""
    words = ["seqbench", "report", *[os.path.relpath(Path(f).resolve(), Path(out).resolve()) for f in folders],
             "--out", ".", "--resamples", str(resamples)]
    metrics = {task.metric for task in TASKS.values()}
    for metric, half in sorted((ropes or {}).items()):
        if metric in metrics:
            value = (100 * half if metric in PERCENT_METRICS else 100 * math.expm1(half) if metric in POSITIVE_METRICS
                     else half)
            words += ["--rope", f"{metric}={value:.6g}"]
    if compare:
        words += ["--compare", ",".join(f"{a}:{b}" for a, b in compare)]
    if not plots:
        words.append("--no-plots")
    if studies:
        words += ["--studies", os.path.relpath(Path(studies).resolve(), Path(out).resolve())]
    for folder in lead or []:
        words += ["--lead", os.path.relpath(Path(folder).resolve(), Path(out).resolve())]
    if lead and lead_title and lead_title != LEAD_TITLE:
        words += ["--lead-title", lead_title]
    if command:
        words += ["--command", command]
    return shlex.join(words)


def provenance(records: list[dict], command: str | None, report: str | None = None,
               private: dict[str, str] | None = None, disk: str | None = None) -> list[str]:
    def distinct(getter):
        return ", ".join(sorted({str(getter(r)) for r in records if getter(r) is not None})) or "–"
    versions = distinct(lambda r: " ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items() if v))

    def data_words(r):
        files = ", ".join(sorted({Path(str(v)).name for v in ((r.get("data") or {}).get("files") or {}).values() if v}))
        return (f"{r.get('dataset')} {r.get('data_fingerprint')}" + (f" ({files})" if files else "")
                + vectors_words(r))
    lines = [f"command: `{command}`" if command else None,
             f"this report again (from its folder; data files by name, fingerprints below): `{report}`"
             if report else None,
             f"generated: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"runs started: {distinct(lambda r: (r.get('started') or '')[:10])}",
             f"hardware: {distinct(lambda r: describe_hardware(r['hardware']) if r.get('hardware') else None)}",
             f"versions: {versions}",
             f"git commits: {distinct(lambda r: r.get('git_commit'))}",
             f"code fingerprints: {distinct(lambda r: r.get('code_fingerprint'))}",
             f"data (name, fingerprint of its files, file names): {distinct(data_words)}",
             f"disk: {disk} (checkpoints=best, the default, keeps a finished run's best weights only; "
             f"checkpoints=all keeps last.ckpt and the optimizer state too)" if disk else None]
    return [scrub(line, private or {}) for line in lines if line]


def portable_frame(frame: pd.DataFrame, out: Path, private: dict[str, str]) -> pd.DataFrame:
    """runs.csv as it can be mailed: the user's data paths by name, other absolute paths (records,
    output roots) relative to the report's folder."""
    frame = frame.copy()
    here = Path(out).resolve()
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            continue

        def portable(value):
            if not isinstance(value, str) or not value.startswith("/"):
                return value
            if value.rstrip("/") in private:
                return private[value.rstrip("/")]
            if column.startswith("config.dataset."):
                return Path(value).name
            return os.path.relpath(value, here)
        frame[column] = frame[column].map(portable)
    return frame
