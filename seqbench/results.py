"""Run records -> pandas tables. Tables are built only from records, so sweeps can be
resumed, merged from several machines and aggregated again at any time."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
from scipy import stats

from .config import computation_config
from .files import PREDICTIONS_LIMIT, ignore_field, limit_of, read_json, run_path
from .record import FINISHED_STATUSES, memory_kind, read_records
from .runtime import CONFIG_DIR
from .tasks import PERCENT_METRICS, POSITIVE_METRICS, TASKS, prediction_metrics, task_of

log = logging.getLogger(__name__)


def _rank(record: dict) -> tuple:
    return (record.get("status") == "done", record.get("finished") or record.get("started") or "")


def load_records(folders: Iterable[str | Path], include_debug: bool = False) -> list[dict]:
    """Every readable record under ``folders``; one per run (data, config hash, seed): the newest
    ``done`` one if there is one, else the newest of any status. Debug runs (fast_dev_run,
    limit_*_batches, ...) and search trials (validation only) are left out unless
    ``include_debug``: they are not results."""
    best: dict[tuple, dict] = {}
    finished: dict[tuple, list[str]] = {}
    for path, record in read_records(folders):
        if (record.get("debug") or record.get("search")) and not include_debug:
            continue
        record["record_path"] = str(path)
        key = (data_key(record), record.get("config_hash"), record.get("seed"))
        if record.get("status") in FINISHED_STATUSES and not record.get("reused_from"):   # a reuse's copy is expected
            finished.setdefault(key, []).append(str(path))
        if key not in best or _rank(record) > _rank(best[key]):
            best[key] = record
    for key, paths in finished.items():
        if len(paths) > 1:   # copies of one run (cp -r, merged folders): counted once, and said
            others = [p for p in paths if p != best[key]["record_path"]]
            log.warning("%d finished records of one run (%s seed %s) count as one: %s is used; the others: %s%s",
                        len(paths), best[key].get("model"), key[2], best[key]["record_path"], ", ".join(others[:3]),
                        f" and {len(others) - 3} more" if len(others) > 3 else "")
    return list(best.values())


def data_key(record: dict) -> str:
    """A data set's identity in reports: its name and the fingerprint of its files (test split
    included). Runs on different data are never merged into one row, one table or one test."""
    return f"{record.get('dataset')}|{record.get('data_fingerprint')}"


def data_labels(records: list[dict]) -> dict[str, str]:
    """data key -> the name tables and files use: the data set's name, and where one name covers
    several data identities (two CSV files both called text_file), what tells them apart."""
    keys: dict[str, list[dict]] = {}
    for record in records:
        keys.setdefault(data_key(record), []).append(record)
    by_name: dict[str, list[str]] = {}
    for key, group in keys.items():
        by_name.setdefault(str(group[0].get("dataset")), []).append(key)
    labels = {}
    for name, group_keys in by_name.items():
        for key in group_keys:
            if len(group_keys) == 1:
                labels[key] = name
                continue
            files = ((keys[key][0].get("data") or {}).get("files") or {})
            test = Path(files["test"]).name if files.get("test") else None
            fingerprint = str(keys[key][0].get("data_fingerprint"))[:8]
            labels[key] = f"{name} ({'test ' + test + ', ' if test else ''}data {fingerprint})"
    return labels


def slug(label: str) -> str:
    """A file-name form of a data label: ``text_file (test b.csv, data 1a2b3c4d)`` -> ``text_file-1a2b3c4d``.
    Always one plain file name: a record is data, and a data set called ``reviews/v2`` or ``../x`` in
    one (written before names were checked, or edited) must neither nest folders nor leave ``out``."""
    import re
    stem = label if " (" not in label else f"{label.split(' (')[0]}-{label.rsplit('data ', 1)[-1].rstrip(')')}"
    return re.sub(r"[^\w.+-]", "_", stem).lstrip(".") or "data"


def metric_of(task: str) -> tuple[str, str]:
    return TASKS[task].metric, TASKS[task].direction


def _flat(config: dict) -> dict:
    out = {}
    for key, value in (config or {}).items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in _flat(value).items()})
        else:
            out[key] = value
    return out


_DEFAULT_INTERPOLATIONS: dict[str, str] | None = None


def default_interpolations() -> dict[str, str]:
    """Which keys the shipped configs read from another key (``model.dropout: ${dataset.dropout}``):
    for records written before records carried their own ``interpolations``."""
    global _DEFAULT_INTERPOLATIONS
    if _DEFAULT_INTERPOLATIONS is None:
        import re
        found = {}
        for group in ("model", "optimizer", "trainer"):
            for path in sorted(Path(CONFIG_DIR, group).glob("*.yaml")):
                for line in path.read_text().splitlines():
                    match = re.match(r"^(\w+):\s*\$\{([\w.]+)\}", line)
                    if match:
                        found[f"{group}.{match[1]}"] = match[2]
        _DEFAULT_INTERPOLATIONS = found
    return _DEFAULT_INTERPOLATIONS


def folded_config(records: list[dict]) -> dict[str, dict]:
    """config hash -> its flattened computation config with interpolated copies folded into their
    source: a key is dropped where, in every record given, it equals the key it was read from
    (``model.dropout`` = ``dataset.dropout``), so a variant is described by what was set, once."""
    by_hash: dict[str, dict] = {}
    for r in records:
        by_hash.setdefault(r.get("config_hash"), r)
    flats = {h: _flat(computation_config(r.get("config") or {})) for h, r in by_hash.items()}
    sources: dict[str, str] = {}
    for r in by_hash.values():
        sources.update(r.get("interpolations") or {})
    if not any(r.get("interpolations") for r in by_hash.values()):
        sources = default_interpolations()
    fold = {key for key, source in sources.items()
            if all(key in flat and source in flat and str(flat[key]) == str(flat[source]) for flat in flats.values())}
    return {h: {k: v for k, v in flat.items() if k not in fold} for h, flat in flats.items()}


@dataclass
class VariantLabels:
    """config hash -> the label tables use (``short``) and everything that tells it apart
    (``full``); a legend maps short to full where labels would be long."""
    short: dict[str, str]
    full: dict[str, str]

    def legend(self) -> list[tuple[str, str]]:
        return [(self.short[h], self.full[h]) for h in self.short if self.short[h] != self.full[h]]

    def get(self, config_hash, default=None):
        return self.short.get(config_hash, default)

    def __getitem__(self, config_hash):
        return self.short[config_hash]

    def items(self):
        return self.short.items()

    def values(self):
        return self.short.values()

    def __contains__(self, config_hash):
        return config_hash in self.short

    def __iter__(self):
        return iter(self.short)


LONG_LABEL = 48


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def variant_labels(records: list[dict]) -> VariantLabels:
    """config hash -> a label unique by construction: the model's name, and where two configs
    of one name exist, every key that differs between them (interpolated copies folded into their
    source), never an opaque hash; ``(tuned)`` marks the one retrained best configuration of a
    search. Labels longer than ``LONG_LABEL`` characters become ``name [A]`` with a legend."""
    by_hash: dict[str, dict] = {}
    for r in records:
        by_hash.setdefault(r.get("config_hash"), r)
    full: dict[str, str] = {}
    by_name: dict[str, list[str]] = {}
    for config_hash, r in by_hash.items():
        by_name.setdefault(str(r.get("model")), []).append(config_hash)
    for name, hashes in by_name.items():
        tuned = [h for h in hashes if by_hash[h].get("tuned")]
        if len(tuned) == 1:  # the retrained best configuration of an equal-budget search
            full[tuned[0]] = f"{name} (tuned)"
            hashes = [h for h in hashes if h != tuned[0]]
        if len(hashes) == 1:
            full[hashes[0]] = name
            continue
        flats = folded_config([by_hash[h] for h in hashes])
        keys = sorted({k for f in flats.values() for k in f})
        differing = [k for k in keys if len({_short(f.get(k)) for f in flats.values()}) > 1]
        for h in hashes:
            full[h] = f"{name} ({', '.join(f'{k}={_short(flats[h].get(k))}' for k in differing)})"
    # Unique by construction: two configs of one name differ in some key of the computation config,
    # and folding keeps a source wherever it dropped a copy. Formatting could still meet (0.1 and
    # "0.1"): such labels get the hash's first characters.
    counts: dict[str, int] = {}
    for label in full.values():
        counts[label] = counts.get(label, 0) + 1
    full = {h: (f"{label} #{h[:6]}" if counts[label] > 1 else label) for h, label in full.items()}
    short, letters = {}, {}
    for h, label in full.items():
        if len(label) <= LONG_LABEL:
            short[h] = label
            continue
        name = str(by_hash[h].get("model"))
        letters[name] = letters.get(name, 0) + 1
        short[h] = f"{name} [{_letter(letters[name])}]"
    return VariantLabels(short, full)


def _letter(n: int) -> str:
    out = ""
    while n:
        n, rest = divmod(n - 1, 26)
        out = chr(65 + rest) + out
    return out


def read_predictions(record: dict) -> pd.DataFrame | None:
    """A run's per-example predictions, found beside its record through the one resolver (inside
    the run's folder, a regular file within its size bound) and read once per report; None when it
    has none, or with one line naming the record and the field when they cannot be used (the rest
    of the run still counts)."""
    path = run_path(record, "predictions", limit=limit_of(PREDICTIONS_LIMIT))
    if path is None:
        return None
    info = path.stat()
    key = (str(path), info.st_mtime_ns, info.st_size)
    if key not in _PREDICTIONS:
        try:
            frame = pd.read_csv(path)
        except (ValueError, pd.errors.ParserError, OSError, EOFError) as error:   # UnicodeDecodeError is a ValueError
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            ignore_field(record["record_path"], "predictions", f"{path.name} is not a predictions table ({reason[:200]})")
            frame = None
        if len(_PREDICTIONS) >= 64:   # a report's passes go over the same runs: keep the latest tables
            _PREDICTIONS.pop(next(iter(_PREDICTIONS)))
        _PREDICTIONS[key] = frame
    frame = _PREDICTIONS[key]
    return None if frame is None else frame.copy()


_PREDICTIONS: dict[tuple, pd.DataFrame | None] = {}


def predicted_metrics(record: dict) -> dict[str, float]:
    """A finished run's test metrics that its task computes from its predictions (not recorded
    while it trained): from ``predictions.csv`` beside its record; none where it has no usable one."""
    task = task_of(record)
    if record.get("status") != "done" or not task.prediction_metrics or not record.get("predictions") \
            or not record.get("record_path"):
        return {}
    frame = read_predictions(record)
    return {} if frame is None else prediction_metrics(task, frame)


def long_table(records: list[dict]) -> pd.DataFrame:
    """One row per run: outcome columns (the test metrics its record holds, and those computed from
    its predictions), then the config flattened into ``config.*`` columns."""
    rows = []
    data = data_labels(records)
    labels = {}  # per data set: a name is ambiguous only among the variants on the same data
    for key in data:
        labels[key] = variant_labels([r for r in records if data_key(r) == key])
    for r in records:
        row = {key: r.get(key) for key in ("dataset", "model", "seed", "status", "config_hash", "epochs",
                                           "best_epoch", "params", "train_tokens_per_s", "wall_seconds",
                                           "git_commit", "code_fingerprint", "data_fingerprint", "error",
                                           "record_path")}
        row["data"] = data[data_key(r)]
        row["variant"] = labels[data_key(r)].get(r.get("config_hash"), r.get("model"))
        row["test_set"] = test_set_key(r)
        row["stopped_by_cap"], row["improving_at_cap"] = cap_flags(r)
        row["task"] = task_of(r).name
        row["solved"] = task_of(r).is_solved(r) if r.get("status") == "done" else None
        row.update({f"test_{k}": v for k, v in (r.get("test") or {}).items()})
        row.update({f"test_{k}": v for k, v in predicted_metrics(r).items()})
        row.update({f"val_best_{k}": v for k, v in (r.get("val_best") or {}).items()})
        seconds = [s for s in (r.get("epoch_seconds") or []) if s is not None]
        row["seconds_per_epoch"] = sum(seconds) / len(seconds) if seconds else None
        validation = [s for s in (r.get("validation_seconds") or []) if s is not None]
        row["validation_seconds_per_epoch"] = sum(validation) / len(validation) if validation else None
        kind = memory_kind(r)
        row["peak_memory_kind"] = kind
        row[f"memory_{kind}_mb"] = r.get("peak_memory_mb")   # one column per kind: never averaged together
        row["impl"] = (r.get("config") or {}).get("model", {}).get("impl", "native")
        row["gpu"] = (r.get("hardware") or {}).get("gpu")
        row["cpu"] = (r.get("hardware") or {}).get("cpu")
        for key, value in _flat(r.get("config") or {}).items():
            row[f"config.{key}"] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sort_values(["data", "variant", "seed"], kind="stable").reset_index(drop=True) if rows else frame


def improving_window(patience, max_epochs) -> int:
    """How many last epochs a new best validation score must fall in for a run stopped by the epoch
    cap to count as still improving: half the patience, rounded up (3 of patience 5); the last epoch
    alone where there is no early stopping (patience at or above the cap)."""
    if isinstance(patience, (int, float)) and isinstance(max_epochs, (int, float)) and 0 < patience < max_epochs:
        return max(1, math.ceil(patience / 2))
    return 1


def cap_flags(record: dict) -> tuple[bool | None, bool | None]:
    """(stopped by the epoch cap, still improving at it) of a finished run, from its record; (None,
    None) where the record cannot tell (not finished, no epochs or no cap recorded).

    Stopped by the cap: it trained ``trainer.max_epochs`` epochs and early stopping had not run out
    of patience (fewer than ``patience`` epochs after its best validation epoch); a run whose
    patience ran out exactly at the cap counts as stopped early. Still improving: stopped by the cap
    with its best validation epoch among its last ``improving_window`` epochs."""
    if record.get("status") != "done":
        return None, None
    trainer = (record.get("config") or {}).get("trainer") or {}
    cap, patience = trainer.get("max_epochs"), trainer.get("patience")
    epochs, best = record.get("epochs"), record.get("best_epoch")
    if not isinstance(epochs, int) or not isinstance(cap, int) or cap < 1:
        return None, None
    early = isinstance(patience, int) and 0 < patience < cap
    since_best = epochs - 1 - best if isinstance(best, int) else None
    capped = epochs >= cap and not (early and since_best is not None and since_best >= patience)
    improving = bool(capped and since_best is not None and since_best < improving_window(patience, cap))
    return capped, improving


def mean_std_ci(values: pd.Series) -> tuple[float, float, float, int]:
    """Mean, sample standard deviation, half-width of the 95% Student t interval, and n."""
    values = values.dropna()
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(values.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    std = float(values.std(ddof=1))
    return mean, std, float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n), n


def interval(values: pd.Series, positive: bool, bounded: bool = False) -> tuple[float, float]:
    """95% interval for the mean over seeds. A positive quantity (MSE, cross-entropy) gets a
    log-scale interval (around the geometric mean), so it never goes below zero; a quantity in
    [0, 1] (accuracy) gets a t interval clipped to [0, 1]. (nan, nan) for n < 2."""
    values = values.dropna()
    if len(values) < 2:
        return math.nan, math.nan
    if positive and (values > 0).all():
        logs = values.map(math.log)
        mean, _, half, _ = mean_std_ci(logs)
        return math.exp(mean - half), math.exp(mean + half)
    mean, _, half, _ = mean_std_ci(values)
    low, high = mean - half, mean + half
    return (max(0.0, low), min(1.0, high)) if bounded else (low, high)


def summary_table(frame: pd.DataFrame, data: str) -> pd.DataFrame:
    """One row per model variant on the data set labelled ``data`` (by config hash), best first;
    runs that did not finish are counted; each memory kind has its own column."""
    runs = frame[frame["data"] == data]
    task = runs["task"].dropna().iloc[0] if "task" in runs and runs["task"].notna().any() else "classification"
    metric, direction = metric_of(task)
    beside = [m.name for m in TASKS[task].shown_beside]
    memory_columns = sorted(c for c in frame.columns if c.startswith("memory_") and c.endswith("_mb"))
    rows = []
    for (variant, impl, config), group in runs.groupby(["variant", "impl", "config_hash"], sort=False, dropna=False):
        done = group[group["status"] == "done"]
        values = done.get(f"test_{metric}", pd.Series(dtype=float))
        mean, std, _, n = mean_std_ci(values)
        verdicts = done["solved"].dropna() if "solved" in done else pd.Series(dtype=object)
        if len(verdicts):
            # Solved or not: outcomes are bimodal, so no interval around a mean; k of n with Wilson's.
            from .stats import wilson
            low, high = math.nan, math.nan
            solved_count = int(verdicts.astype(bool).sum())
            solved_low, solved_high = wilson(solved_count, len(verdicts))
        else:
            low, high = interval(values, positive=metric in POSITIVE_METRICS, bounded=metric in PERCENT_METRICS)
            solved_count, solved_low, solved_high = None, math.nan, math.nan
        row = {"model": variant, "impl": impl, "n": n,
               f"test_{metric}_mean": mean, f"test_{metric}_std": std,
               f"test_{metric}_ci_low": low, f"test_{metric}_ci_high": high,
               f"val_best_{metric}": done.get(f"val_best_{metric}", pd.Series(dtype=float)).mean(),
               **{f"test_{m}_mean": done.get(f"test_{m}", pd.Series(dtype=float)).mean() for m in beside},
               "params": done["params"].mean(),
               "epochs_to_best": (done["best_epoch"] + 1).mean(),
               "seconds_per_epoch": done["seconds_per_epoch"].mean(),
               "train_tokens_per_s": done["train_tokens_per_s"].mean()}
        for column in memory_columns:
            row[column] = done[column].mean() if column in done else math.nan
        row.update(median=float(values.median()) if len(values) else math.nan, solved=solved_count,
                   solved_ci_low=solved_low, solved_ci_high=solved_high, seeds=sorted(done["seed"].tolist()))
        for column in ("stopped_by_cap", "improving_at_cap"):
            flags = done[column].dropna() if column in done else pd.Series(dtype=object)
            row[column] = int(flags.astype(bool).sum()) if len(flags) else None
        row["not_done"] = ", ".join(f"{s}: {c}" for s, c in group.loc[group["status"] != "done", "status"]
                                    .value_counts().items())
        row["config_hash"] = config
        row["test_set"] = group["test_set"].iloc[0]
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    # "vs best" within one test set (a memory task at several lengths has one per length), in order of
    # the test set's settings, then best first.
    table["_order"] = table["test_set"].map({k: i for i, k in enumerate(sorted(set(table["test_set"]), key=_natural))})
    table = table.sort_values(["_order", f"test_{metric}_mean"], ascending=[True, direction == "min"],
                              na_position="last", kind="stable").reset_index(drop=True).drop(columns="_order")
    best = table.groupby("test_set", sort=False)[f"test_{metric}_mean"].transform("first")
    if metric in POSITIVE_METRICS:  # ratios for positive quantities: "x1.6 the best's MSE"
        table["vs_best"] = (table[f"test_{metric}_mean"] / best).where(best != 0)
    else:
        table["vs_best"] = table[f"test_{metric}_mean"] - best
    return table


# Settings that decide which test examples a generated task has, for records written before records
# carried their data set's own list (``data.test_set``, from the data set's registry entry).
TEST_SET_KEYS = ("length", "symbols", "alphabet", "n_test", "test_seed", "seq_len", "omega", "dt", "warmup_steps")


def test_set_key(record: dict) -> tuple:
    """Which test examples a run was scored on: its data fingerprint and the settings that decide
    the test set (a generated task's length, seed, ...), as (name, value) pairs. Runs with
    different keys were scored on different examples and are never paired."""
    recorded = (record.get("data") or {}).get("test_set")
    if isinstance(recorded, dict):
        settings = recorded
    else:
        data = (record.get("config") or {}).get("dataset") or {}
        settings = {k: data.get(k) for k in TEST_SET_KEYS if data.get(k) is not None}
    return (("data", str(record.get("data_fingerprint"))), *sorted((k, str(v)) for k, v in settings.items()))


def _natural(key: tuple) -> list:
    out = []
    for value in key:
        if isinstance(value, tuple):  # a (name, value) pair: order by the value
            value = value[-1]
        try:
            out.append((0, float(value), ""))
        except (TypeError, ValueError):
            out.append((1, 0.0, str(value)))
    return out


def learning_curves(records: list[dict], labels: "VariantLabels | None" = None) -> dict[str, pd.DataFrame]:
    """Per model variant (config hash, labelled by what differs) of one data set's records:
    epochs x seeds of the validation metric; NaN where a seed had stopped early."""
    done = [r for r in records if r.get("status") == "done"]
    if not done:
        return {}
    metric = task_of(done[0]).monitor
    labels = labels or variant_labels(records)
    curves: dict[str, dict] = {}
    for r in done:
        points = {h["epoch"]: h[metric] for h in r.get("history") or [] if metric in h}
        curves.setdefault(labels[r.get("config_hash")], {})[r["seed"]] = pd.Series(points, dtype=float)
    return {label: pd.DataFrame(series).sort_index() for label, series in curves.items()}


def search_epoch_budget(record: dict):
    """The training epochs each study of a tuned run's search had (``budget_epochs``), from the
    search settings the retrained run's config carries."""
    search = (record.get("config") or {}).get("hparams_search") or {}
    return search.get("budget_epochs") if isinstance(search, dict) else None


def budget_words(records: list[dict]) -> str:
    """The training budget of one data set's finished runs, in words, from their configs."""
    done = [r for r in records if r.get("status") == "done"]
    if not done:
        return "no finished runs"

    def values(path: str) -> str:
        def short(value):  # 0.0037807029121204277 -> 0.00378
            return f"{value:.3g}" if isinstance(value, float) else str(value)
        found = sorted({short(_flat(r.get("config") or {}).get(path)) for r in done} - {"None"},
                       key=lambda v: _natural((v,)))
        if len(found) > 3:  # tuned runs: each variant has its own value
            return f"{found[0]} to {found[-1]} (per variant)"
        return "/".join(found) if found else "?"
    seeds = pd.Series([r.get("seed") for r in done]).groupby([r.get("config_hash") for r in done]).nunique()
    seed_words = (f"{seeds.min()} seed{'s' if seeds.min() != 1 else ''} per variant" if seeds.min() == seeds.max()
                  else f"{seeds.min()}-{seeds.max()} seeds per variant")
    stops_early = any((_flat(r.get("config") or {}).get("trainer.patience") or 0)
                       < (_flat(r.get("config") or {}).get("trainer.max_epochs") or 0) for r in done)
    parts = [f"up to {values('trainer.max_epochs')} epochs with early stopping after "
             f"{values('trainer.patience')} epochs without improvement" if stops_early else
             f"{values('trainer.max_epochs')} epochs, no early stopping",
             f"batch {values('dataset.batch_size')}", f"{values('optimizer._target_').rsplit('.', 1)[-1]} "
             f"lr {values('optimizer.lr')}", seed_words]
    stop_lines = sorted({r["stops_when_validation_meets"] for r in done if r.get("stops_when_validation_meets")})
    stops_when_solved = any((_flat(r.get("config") or {}).get("trainer.stop_when_solved")) for r in done)
    if stops_when_solved and not stops_early:
        parts[0] = parts[0].replace("no early stopping", "no early stopping on a plateau")
    if stop_lines:  # trainer.stop_when_solved, with its margin
        parts.insert(1, f"each run stopped at its first validation at {'/'.join(f'{v:.3g}' for v in stop_lines)} "
                        f"(the solved threshold with half its error allowance; the updates to solve are its first "
                        f"crossing of the threshold), else at the cap")
    elif stops_when_solved:
        parts.insert(1, "each run stopped at its first validation that met the solved threshold, else at the cap")
    config = _flat(done[0].get("config") or {})
    if "dataset.max_len" in config:
        parts.insert(1, f"texts truncated to {values('dataset.max_len')} tokens")
    if "dataset.length" in config:
        parts.insert(1, f"length {values('dataset.length')}")
    if "dataset.n_train" in config and "dataset.fresh_train" in config:  # generated tasks: the budget in steps
        steps = sorted({int(r["epochs"]) * math.ceil(int(_flat(r["config"])["dataset.n_train"])
                                                     / int(_flat(r["config"])["dataset.batch_size"]))
                        for r in done if r.get("epochs")})
        parts.insert(1, f"{values('dataset.n_train')} {'fresh ' if config.get('dataset.fresh_train') else ''}"
                        f"training sequences per epoch ({'/'.join(map(str, steps))} optimiser steps per run)")
    if "dataset.seq_len" in config:
        parts.insert(1, f"sequences of {values('dataset.seq_len')} steps")
    epochs = [r.get("epochs") for r in done if r.get("epochs")]
    if epochs:
        trained = f"{min(epochs)}" if min(epochs) == max(epochs) else f"{min(epochs)}-{max(epochs)}"
        parts.append(f"{trained} epochs actually trained")
    if seeds.min() < 2:
        parts.append("with one seed there is no interval")
    # How the untuned runs' defaults were chosen (the data set's note) is not true of a search's retrained
    # runs: those say they were tuned, and the note is kept for the untuned ones beside them.
    tuned = [r for r in done if r.get("tuned")]
    untuned = [r for r in done if not r.get("tuned")]
    origins = sorted({str(((r.get("config") or {}).get("dataset") or {}).get("defaults_from")) for r in untuned}
                     - {"None"})
    if origins:
        parts.append(("defaults of the untuned variants: " if len(untuned) < len(done) else "defaults: ")
                     + " / ".join(origins))
    if tuned:
        caps = sorted({str(r["tuned"].get("trials")) for r in tuned})
        epochs = sorted({str(budget) for budget in map(search_epoch_budget, tuned) if budget})
        count = len({r.get("config_hash") for r in tuned})
        budget = (f"{'/'.join(epochs)} training epochs (at most {'/'.join(caps)} trials)" if epochs
                  else f"at most {'/'.join(caps)} trials")
        parts.append(f"{count} tuned variant{'s' if count != 1 else ''}: each with its own best configuration from an "
                     f"equal-budget search of {budget}, chosen on validation (trials run: the search's studies.md)")
    return "; ".join(parts) + "."


# ------------------------------------------------------------------------- adaptive seeds' designs
# Written by ``seqbench adaptive`` beside its runs: each variant's seeds, why it stopped and the
# level each look used. Read here, with the records, so that a report ranks such a data set.
ADAPTIVE_NAME = "adaptive.json"


def read_design(folder: Path) -> dict | None:
    try:
        design = read_json(Path(folder) / ADAPTIVE_NAME)
    except (OSError, ValueError):
        return None
    return design if isinstance(design, dict) else None


def designs_under(folders) -> dict[str, dict]:
    """config hash -> {"seeds", "stopped", "alpha", ...} of every variant of every adaptive run
    of seeds (``adaptive.json``) under ``folders``: what the report needs to rank a data set whose
    variants have different seed counts by design, at the level the procedure spent."""
    out: dict[str, dict] = {}
    for folder in folders:
        folder = Path(folder)
        paths = [folder / ADAPTIVE_NAME] if (folder / ADAPTIVE_NAME).is_file() else sorted(folder.glob(f"**/{ADAPTIVE_NAME}"))
        for path in paths:
            design = read_design(path.parent)
            if not design:
                continue
            for variant, entry in (design.get("variants") or {}).items():
                if entry.get("config_hash"):
                    out[entry["config_hash"]] = {**entry, "variant": variant, "alpha": design.get("alpha_per_look"),
                                                 "looks": design.get("looks"), "cap": design.get("cap")}
    return out
