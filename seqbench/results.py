"""Run records -> pandas tables. Tables are built only from records, so sweeps can be
resumed, merged from several machines and aggregated again at any time."""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from .record import RECORD_NAME

log = logging.getLogger(__name__)

# Which metric each task is judged by, and which way is better.
PRIMARY_METRIC = {"classification": ("acc", "max"), "regression": ("mse", "min")}
SECONDARY_METRIC = {"classification": "f1", "regression": "mae"}

# Two-sided 95% Student t quantiles for 1..30 degrees of freedom; 1.96 beyond.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


def t95(degrees_of_freedom: int) -> float:
    return _T95[degrees_of_freedom - 1] if degrees_of_freedom <= len(_T95) else 1.96


def find_records(folders: Iterable[str | Path]) -> list[Path]:
    found = []
    for folder in folders:
        folder = Path(folder)
        found.extend([folder] if folder.is_file() else sorted(folder.rglob(RECORD_NAME)))
    return found


def read_records(folders: Iterable[str | Path]) -> Iterator[tuple[Path, dict]]:
    """(path, record) for every readable record under ``folders``; unreadable ones are skipped."""
    for path in find_records(folders):
        try:
            yield path, json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            log.warning("skipping unreadable record %s (%s)", path, error)


def load_records(folders: Iterable[str | Path]) -> list[dict]:
    """Every readable record under ``folders``; one per (config hash, seed): the newest
    ``done`` one if there is one, else the newest of any status."""
    best: dict[tuple, dict] = {}
    for path, record in read_records(folders):
        record["record_path"] = str(path)
        key = (record.get("config_hash"), record.get("seed"))
        rank = (record.get("status") == "done", record.get("finished") or record.get("started") or "")
        if key not in best or rank > best[key]["_rank"]:
            best[key] = {**record, "_rank": rank}
    return [{k: v for k, v in r.items() if k != "_rank"} for r in best.values()]


def task_of(record: dict) -> str:
    return "regression" if record.get("dataset") == "sincos" else "classification"


def long_table(records: list[dict]) -> pd.DataFrame:
    """One row per run: outcome columns, then the config flattened into ``config.*`` columns."""
    rows = []
    for r in records:
        row = {key: r.get(key) for key in ("dataset", "model", "seed", "status", "config_hash", "epochs",
                                           "best_epoch", "params", "train_tokens_per_s", "peak_memory_mb",
                                           "wall_seconds", "git_commit", "error", "record_path")}
        row.update({f"test_{k}": v for k, v in (r.get("test") or {}).items()})
        row.update({f"val_best_{k}": v for k, v in (r.get("val_best") or {}).items()})
        seconds = r.get("epoch_seconds") or []
        row["seconds_per_epoch"] = sum(seconds) / len(seconds) if seconds else None
        row["impl"] = (r.get("config") or {}).get("model", {}).get("impl", "native")
        row["gpu"] = (r.get("hardware") or {}).get("gpu")
        row["cpu"] = (r.get("hardware") or {}).get("cpu")
        for key, value in pd.json_normalize(r.get("config") or {}, sep=".").iloc[0].items():
            row[f"config.{key}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["dataset", "model", "seed"], kind="stable").reset_index(drop=True) if rows else frame


def mean_std_ci(values: pd.Series) -> tuple[float, float, float, int]:
    """Mean, sample standard deviation, half-width of the 95% t interval, and n."""
    values = values.dropna()
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(values.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    std = float(values.std(ddof=1))
    return mean, std, t95(n - 1) * std / math.sqrt(n), n


def summary_table(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """One row per model variant on ``dataset``, best first; failed and diverged runs counted."""
    runs = frame[frame["dataset"] == dataset]
    task = "regression" if dataset == "sincos" else "classification"
    metric, direction = PRIMARY_METRIC[task]
    secondary = SECONDARY_METRIC[task]
    rows = []
    for (model, impl, config), group in runs.groupby(["model", "impl", "config_hash"], sort=False, dropna=False):
        done = group[group["status"] == "done"]
        mean, std, ci, n = mean_std_ci(done.get(f"test_{metric}", pd.Series(dtype=float)))
        rows.append({
            "model": model, "impl": impl, "n": n,
            f"test_{metric}_mean": mean, f"test_{metric}_std": std, f"test_{metric}_ci95": ci,
            f"val_best_{metric}": done.get(f"val_best_{metric}", pd.Series(dtype=float)).mean(),
            f"test_{secondary}_mean": done.get(f"test_{secondary}", pd.Series(dtype=float)).mean(),
            "params": done["params"].mean(),
            "epochs_to_best": (done["best_epoch"] + 1).mean(),
            "seconds_per_epoch": done["seconds_per_epoch"].mean(),
            "train_tokens_per_s": done["train_tokens_per_s"].mean(),
            "peak_memory_mb": done["peak_memory_mb"].mean(),
            "not_done": ", ".join(f"{s}: {c}" for s, c in group.loc[group["status"] != "done", "status"]
                                  .value_counts().items()),
            "config_hash": config,
        })
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    if table["model"].duplicated().any():  # same name, other settings: tell them apart
        table["model"] = table["model"] + " [" + table["config_hash"].str[:6] + "]"
    return table.sort_values(f"test_{metric}_mean", ascending=(direction == "min"), na_position="last",
                             kind="stable").reset_index(drop=True)


def learning_curves(records: list[dict], dataset: str) -> dict[str, pd.DataFrame]:
    """Per model variant: epochs x seeds of the validation metric."""
    metric = "val/" + PRIMARY_METRIC["regression" if dataset == "sincos" else "classification"][0]
    curves: dict[str, dict] = {}
    for r in records:
        if r.get("dataset") != dataset or r.get("status") != "done":
            continue
        points = {h["epoch"]: h[metric] for h in r.get("history") or [] if metric in h}
        curves.setdefault(r["model"], {})[r["seed"]] = pd.Series(points, dtype=float)
    return {model: pd.DataFrame(series).sort_index() for model, series in curves.items()}
