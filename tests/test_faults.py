"""Every fault and bad input we know of, through the real command line: each ends in a non-zero
exit, one line on stderr naming the problem, no traceback, and no finished record left behind (or
changed). Table-driven: a case is the command, the files it needs, and the words it must say."""
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY

pytestmark = pytest.mark.slow
SMALL = [o for o in TINY if not o.startswith("dataset.")]


def seqbench(*args, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqbench", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def write_csv(path: Path, rows: list[str], header: str = "text,label") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def good_rows(n: int = 40) -> list[str]:
    return [f"{'good great' if i % 2 else 'bad awful'} film {i},{'pos' if i % 2 else 'neg'}" for i in range(n)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny sin->cos run and a tiny text_file run to evaluate, in a folder of their own."""
    root = tmp_path_factory.mktemp("trained")
    train = write_csv(root / "train.csv", good_rows())
    test = write_csv(root / "test.csv", good_rows(10))
    signal = seqbench(*TINY, "hydra.run.dir=signal", "paths.output_root=out", cwd=root)
    assert signal.returncode == 0, signal.stderr
    text = seqbench(*SMALL, "dataset=text_file", f"dataset.train={train}", f"dataset.test={test}",
                    "hydra.run.dir=text", "paths.output_root=out", f"dataset.cache_dir={root / 'cache'}", cwd=root)
    assert text.returncode == 0, text.stderr
    wider = seqbench(*TINY, "model.hidden_size=12", "hydra.run.dir=wider", "paths.output_root=out", cwd=root)
    assert wider.returncode == 0, wider.stderr
    return root


def setup_files(case: str, folder: Path, trained: Path) -> None:
    """The files a case needs, made in its own folder."""
    if case in ("utf16", "gzip", "header"):
        write_csv(folder / "test.csv", good_rows(10))
    if case == "utf16":
        write_csv(folder / "train.csv", good_rows())
    if case == "gzip":
        (folder / "train.csv").write_bytes(gzip.compress(("text,label\n" + "\n".join(good_rows())).encode()))
    if case == "header":
        rows = good_rows()
        write_csv(folder / "train.csv", rows[:20] + ["text,label"] + rows[20:])
    if case == "split":  # 200 classes of 5 examples: a 10% stratified split takes 0 of each
        rows = [f"word{c} text {i},c{c}" for c in range(200) for i in range(5)]
        write_csv(folder / "train.csv", rows)
        write_csv(folder / "test.csv", rows[:10])
    if case == "afile":
        (folder / "afile").write_text("not a folder")
    if case == "eval_foreign_checkpoint":
        shutil.copytree(trained / "signal", folder / "run")
        shutil.copy(trained / "wider" / "checkpoints" / "best.ckpt", folder / "run" / "checkpoints" / "best.ckpt")
        record = json.loads((folder / "run" / "record.json").read_text())
        (folder / "run" / "record.json").write_text(json.dumps(
            {**record, "best_checkpoint": str(folder / "run" / "checkpoints" / "best.ckpt")}))
    if case == "report_string_metric":
        bad = folder / "records" / "bad"
        bad.mkdir(parents=True)
        (bad / "record.json").write_text(json.dumps({"status": "done", "model": "gru", "dataset": "sincos",
                                                     "seed": 0, "test": {"mse": "0.1"}, "config": {}}))
        shutil.copytree(trained / "signal", folder / "records" / "good")
    if case == "search_corrupt_db":
        (folder / "search").mkdir()
        (folder / "search" / "sincos.db").write_bytes(b"SQLite format 3\x00" + b"\x13" * 3000)
    if case in ("fifo_train", "eval_fifo_file"):
        os.mkfifo(folder / "pipe.csv")
        write_csv(folder / "test.csv", good_rows(10))
    if case == "eval_record_payload":  # a record that names a module beside it and an optimizer that writes
        (folder / "markermod.py").write_text(f"open({str(folder / 'MARKER')!r}, 'w')\nclass Encoder: pass\n")
        shutil.copytree(trained / "signal", folder / "run")
        record = json.loads((folder / "run" / "record.json").read_text())
        record["config"]["model"]["cell"] = "markermod.Encoder"
        record["config"]["optimizer"] = {"_target_": "builtins.open", "_args_": [str(folder / "MARKER"), "w"]}
        (folder / "run" / "record.json").write_text(json.dumps(record))


# case: (arguments, words that must appear on stderr, expected exit code)
CASES = {
    "root_proc": (["paths.output_root=/proc/seqbench-out", *TINY], "cannot make or write the output folder", 2),
    "root_file": (["paths.output_root=afile", *TINY], "is a file", 2),
    "run_dir_file": (["hydra.run.dir=afile", *TINY], "afile is a file", 2),
    "run_dir_proc": (["hydra.run.dir=/proc/seqbench-run", *TINY], "cannot make or write the output folder", 2),
    "seed_negative": (["seed=-1", *TINY], "seed=-1: must be a whole number from 0", 2),
    "seed_huge": ([f"seed={2 ** 40}", *TINY], f"seed={2 ** 40}: must be a whole number from 0", 2),
    "precision": (["trainer.precision=17", *TINY], "trainer.precision=17: valid:", 2),
    "devices": (["trainer.devices=0", *TINY], "trainer.devices=0: a number of devices >= 1", 2),
    "batch_float": (["dataset.batch_size=1.5", *TINY[:-1]], "dataset.batch_size=1.5: must be a whole number", 2),
    "model_name": (["model=grux"], "unknown model 'grux'; valid:", 2),
    "unknown_key": (["+model.hiden_size=8", *TINY], "did you mean 'hidden_size'?", 2),
    "utf16": ([*SMALL, "dataset=text_file", "dataset.train=train.csv", "dataset.test=test.csv",
               "dataset.encoding=utf-16"], "utf-16", 2),
    "gzip": ([*SMALL, "dataset=text_file", "dataset.train=train.csv", "dataset.test=test.csv"], "gzip-compressed", 2),
    "header": ([*SMALL, "dataset=text_file", "dataset.train=train.csv", "dataset.test=test.csv"],
               "the header (text,label) again", 2),
    "split": ([*SMALL, "dataset=text_file", "dataset.train=train.csv", "dataset.test=test.csv"],
              "the validation split is stratified", 2),
    "ddp_one_batch": ([*TINY, "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "dataset.n_val=8",
                       "+dataset.eval_batch_size=64"], "every DDP process needs at least one", 2),
    "eval_out_file": (["eval", "{trained}/signal", "--out", "afile"], "is a file; give a folder", 2),
    "eval_signal_on_text": (["eval", "{trained}/signal", "dataset=adding"], "evaluate it on a data set of its own kind",
                            2),
    "eval_text_on_signal": (["eval", "{trained}/text", "dataset=sincos"], "evaluate it on a data set of its own kind",
                            2),
    "eval_foreign_checkpoint": (["eval", "run"], "does not fit the model its run folder's record describes", 2),
    "report_string_metric": (["report", "records", "--out", "rep"], "'test.mse' is '0.1', not a number", 0),
    "search_corrupt_db": (["search", "hparams_search=sincos", *TINY, "paths.output_root=."],
                          "is not a readable study database", 2),
    "search_postgres": (["search", "hparams_search=sincos", *TINY,
                         "hparams_search.storage=postgresql://seqbench@127.0.0.1:9/none"],
                        "cannot open the study storage postgresql://", 2),
    "search_root_file": (["search", "hparams_search=sincos", *TINY, "--out", "afile"], "afile", 2),
    # names that become folders: names, never paths
    "name_path": (["dataset.name=../../../x", *TINY], "dataset.name='../../../x': a name for tables and folders", 2),
    "name_slash": (["dataset.name=reviews/v2", *TINY], "dataset.name='reviews/v2': a name for tables and folders", 2),
    "optimizer_lr": (["optimizer.lr=abc", *TINY], "optimizer.lr='abc': must be a number", 2),
    "optimizer_plus": (["+optimizer.foo=1", *TINY], "optimizer.foo: unknown key", 2),
    "logger_plus": (["+logger.foo=1", *TINY], "logger.foo: unknown key", 2),
    "mlflow_file_store": (["logger=mlflow", "logger.tracking_uri=file:mlruns", *TINY],
                          "logger=mlflow could not start: MlflowException", 2),
    "fifo_train": ([*SMALL, "dataset=text_file", "dataset.train=pipe.csv", "dataset.test=test.csv"],
                   "pipe.csv is a named pipe (FIFO), not a regular file", 2),
    "eval_unknown_key": (["eval", "{trained}/signal", "dataset.length=400"], "dataset.length: unknown key", 2),
    "eval_bad_type": (["eval", "{trained}/signal", "dataset.seq_len=abc"],
                      "dataset.seq_len='abc': must be a whole number", 2),
    "eval_fifo_file": (["eval", "{trained}/text", "--file", "pipe.csv"], "pipe.csv is a named pipe", 2),
    "eval_record_payload": (["eval", "run"], "model.cell='markermod.Encoder' is named by a file", 2),
    "search_jobs_0": (["search", "hparams_search=sincos", "--jobs", "0"], "--jobs: 0 must be at least 1", 2),
    "search_jobs_negative": (["search", "hparams_search=sincos", "--jobs", "-3"], "--jobs: -3 must be at least 1", 2),
    "search_space_key": (["search", "hparams_search=sincos", *TINY,
                          "hparams_search.space.optimizer.lr=interval(1e-2, 1e-4)"], "the interval is reversed", 2),
    "search_postgres_driver": (["search", "hparams_search=sincos", *TINY,
                                "hparams_search.storage=postgresql://seqbench@127.0.0.1:9/none"],
                               "pip install psycopg2-binary", 2),
    "diagnostics_steps": (["diagnostics", "--steps", "0"], "--steps: 0 must be at least 1", 2),
    "diagnostics_hidden": (["diagnostics", "--hidden", "-1"], "--hidden: -1 must be at least 1", 2),
    "diagnostics_cells": (["diagnostics", "--cells", "foo"], "'foo' is not a cell the diagnostic rebuilds", 2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_fault_ends_in_one_line_and_leaves_no_finished_record(case, trained, tmp_path):
    arguments, words, code = CASES[case]
    folder = tmp_path / case
    folder.mkdir()
    setup_files(case, folder, trained)
    if case in ("root_file", "run_dir_file", "search_root_file", "eval_out_file"):
        (folder / "afile").write_text("not a folder")
    before = {p: p.read_bytes() for p in trained.rglob("record.json")}
    args = [a.replace("{trained}", str(trained)) for a in arguments]
    if not args[0] in ("eval", "report", "search", "diagnostics") and not any(a.startswith("paths.output_root")
                                                                              for a in args):
        args.append("paths.output_root=out")
    result = seqbench(*args, cwd=folder, timeout=120)  # a FIFO read by mistake fails here, not hangs
    assert result.returncode == code, (case, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, (case, result.stderr[-3000:])
    assert words in result.stderr, (case, result.stderr[-3000:])
    lines = [line for line in result.stderr.splitlines() if line.startswith(("error:", "warning:"))
             or words in line]
    assert len([line for line in lines if words in line]) == 1, (case, result.stderr)
    given = {"records", "run"}   # the finished runs a case's setup copied in
    done = [p for p in folder.rglob("record.json") if json.loads(p.read_text()).get("status") == "done"
            and not given & set(p.relative_to(folder).parts)]
    assert not done, (case, done)
    assert {p: p.read_bytes() for p in trained.rglob("record.json")} == before  # nothing changed
    assert not (folder / "MARKER").exists()  # nothing a file named was imported or called


def test_a_refused_checkpoint_on_resume_is_one_line_of_ours(tmp_path):
    """A truncated last.ckpt: one warning line naming the file and what happens, not torch's six."""
    first = seqbench(*TINY, "trainer.max_epochs=3", "hydra.run.dir=out/a", "paths.output_root=out",
                     "checkpoints=all", cwd=tmp_path)   # a done run keeps last.ckpt only when told to
    assert first.returncode == 0
    record = json.loads((tmp_path / "out" / "a" / "record.json").read_text())
    (tmp_path / "out" / "a" / "record.json").write_text(json.dumps({**record, "status": "running"}))
    last = tmp_path / "out" / "a" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:500])
    again = seqbench(*TINY, "trainer.max_epochs=3", "hydra.run.dir=out/b", "paths.output_root=out", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    warnings = [line for line in (again.stdout + again.stderr).splitlines() if "last.ckpt" in line]
    assert len(warnings) == 1 and "cannot be read as a checkpoint" in warnings[0] and "starts afresh" in warnings[0]
    assert "weights_only" not in again.stderr and "WeightsUnpickler" not in again.stderr
