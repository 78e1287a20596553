"""``seqbench archive FOLDERS... --to results/runs``: finished runs as data anyone can recompute
from: each run's record and its per-example predictions (gzip-compressed), no checkpoints, no
TensorBoard files, and no path of the machine that made them.

One folder per run, ``<to>/<data set>/<variant>_s<seed>_<run key>/``, so archiving the same run
again replaces it and two runs never share a folder. Absolute paths inside a record (the run's
folder, its checkpoint, the data files it read, the output root) become file names; the record
says where it was archived from by run key, not by path. ``seqbench report <to> --out DIR``
then rebuilds every table, figure and verdict from the repository alone.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
from pathlib import Path

from . import SeqbenchError
from .files import PREDICTIONS_LIMIT, limit_of, open_regular, run_path
from .record import FINISHED_STATUSES
from .runtime import argument_parser, entry_point

# A path of the machine that made the run: the file or folder name is what a reader can use.
ABSOLUTE = re.compile(r"^(/|[A-Za-z]:[\\/])")
EMBEDDED = re.compile(r"(?<![\w.])/[^\s'\",;()]+/[^\s'\",;()]*")
DROPPED = ("best_checkpoint", "tensorboard", "record_path", "copy_of", "reused_from", "output_dir")


def portable(value):
    """``value`` with every absolute path replaced by its last component."""
    if isinstance(value, dict):
        return {key: portable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [portable(item) for item in value]
    if isinstance(value, str) and ABSOLUTE.match(value) and "\n" not in value:
        return Path(value.rstrip("/\\")).name
    if isinstance(value, str):  # a path inside a sentence ("the finished run /x/y/record.json was ...")
        return EMBEDDED.sub(lambda match: Path(match.group(0).rstrip("/")).name, value)
    return value


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def archive_run(record: dict, to: Path) -> Path:
    """Copy one finished run (its record and predictions) under ``to``; returns its folder."""
    folder = to / _safe(str(record.get("dataset"))) / _safe(
        f"{record.get('model')}_s{record.get('seed')}_{str(record.get('run_key'))[:12]}")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    archived = {key: value for key, value in record.items() if key not in DROPPED}
    archived = portable(archived)
    archived["archived"] = {"from_run_key": record.get("run_key"), "checkpoints": "not archived"}
    path = run_path(record, "predictions", limit=limit_of(PREDICTIONS_LIMIT))   # only a file inside the run
    if path is not None:
        name = Path(record["predictions"]).name
        # mtime 0 and no file name in the gzip header: archiving the same run again writes the same
        # bytes, so a committed archive does not change when a grid's folders are archived again.
        with open_regular(path, "rb") as raw, open(folder / f"{Path(name).name}.gz", "wb") as target, \
                gzip.GzipFile(filename="", mode="wb", fileobj=target, compresslevel=9, mtime=0) as out:
            shutil.copyfileobj(raw, out)
        archived["predictions"] = f"{Path(name).name}.gz"
    else:
        archived.pop("predictions", None)
    (folder / "record.json").write_text(json.dumps(archived, indent=1, sort_keys=False) + "\n")
    return folder


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(prog="seqbench archive", description=__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="folders with run records (sweeps, output roots)")
    parser.add_argument("--to", required=True, help="where the archived runs go (for reference results: results/runs)")
    args = parser.parse_args(argv)
    from .results import load_records
    records = [r for r in load_records(args.folders) if r.get("status") in FINISHED_STATUSES]
    if not records:
        raise SeqbenchError(f"no finished runs under {', '.join(args.folders)}")
    to = Path(args.to)
    for record in records:
        archive_run(record, to)
    without = sum(1 for r in records if not r.get("predictions"))
    diverged = sum(1 for r in records if r.get("status") == "diverged")
    print(f"archived {len(records)} finished run{'s' if len(records) != 1 else ''} into {to}"
          + (f" ({diverged} diverged)" if diverged else "")
          + (f" ({without} without predictions)" if without else ""))
