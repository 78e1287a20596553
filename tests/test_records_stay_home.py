"""Records are data, and their paths stay home: every path a record names (predictions, TensorBoard
folder, best checkpoint) is read only inside the record's own run folder, as a regular file within
its size bound; otherwise that field is left out with one line and the rest of the run still counts.
Lock and claim files are never followed through a link. Each case goes through the real command."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench.record import write_json_atomic
from tests.test_results import record


def seqbench(*args, cwd, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "seqbench", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def predictions_csv(hits: int, total: int = 10) -> str:
    return "index,target,predicted\n" + "".join(f"{i},{i % 2},{i % 2 if i < hits else 1 - i % 2}\n"
                                                for i in range(total))


def run_folder(sweep: Path, name: str, model: str, seed: int, score: float, **fields) -> Path:
    folder = sweep / name
    r = record(model, seed, score, dataset="polarity", label_names=["neg", "pos"], run_key=f"key-{name}",
               finished="2026-12-06T06:01:00+00:00", predictions="predictions.csv", **fields)
    write_json_atomic(folder / "record.json", r)
    (folder / "predictions.csv").write_text(predictions_csv(round(score * 10)))
    return folder


@pytest.fixture
def planted(tmp_path):
    """A sweep of good runs beside runs whose records name files elsewhere: an absolute path, a
    ``../..`` path, a symlink out of the run, a folder of someone else's TensorBoard events."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(predictions_csv(10))   # readable as predictions, if it were followed
    (outside / "secret.txt").write_text("secret")
    (outside / "events.out.tfevents.1.vm.1.0").write_bytes(b"someone else's events")
    sweep = tmp_path / "sweep"
    for seed in (0, 1):
        run_folder(sweep, f"gru_s{seed}", "gru", seed, 0.7)
    run_folder(sweep, "lstm_s0", "lstm", 0, 0.8, tensorboard=str(outside), best_checkpoint=str(outside / "secret.txt"))
    (sweep / "lstm_s0" / "record.json").write_text(json.dumps(
        {**json.loads((sweep / "lstm_s0" / "record.json").read_text()), "predictions": str(outside / "secret.csv")}))
    linked = run_folder(sweep, "lstm_s1", "lstm", 1, 0.8, best_checkpoint="../../outside/secret.txt")
    (linked / "predictions.csv").unlink()
    (linked / "predictions.csv").symlink_to(outside / "secret.csv")
    return tmp_path


@pytest.mark.slow   # the fast lane stays under 5 minutes on 2 cores; CI runs both lanes
def test_export_uploads_and_copies_nothing_a_record_names_outside_its_run(planted):
    pytest.importorskip("mlflow")
    sweep = planted / "sweep"
    done = seqbench("export", sweep, "--to", "mlflow", "--checkpoints", cwd=planted)
    assert done.returncode == 0, done.stderr
    assert (sweep / "mlflow.db").is_file()   # the first folder given, never a record's output root
    uploaded = [p.name for p in (sweep / "mlruns-artifacts").rglob("*") if p.is_file()]
    assert "secret.csv" not in uploaded and "secret.txt" not in uploaded
    assert uploaded.count("predictions.csv") == 2 and uploaded.count("run_record.json") == 4
    lines = done.stderr.strip().splitlines()
    assert f"{sweep / 'lstm_s0' / 'record.json'}: 'predictions' ignored: {planted / 'outside' / 'secret.csv'} is " \
           f"outside the run's folder" in done.stderr
    assert sum("lstm_s1/record.json: 'predictions' ignored" in line for line in lines) == 1
    assert sum("'best_checkpoint' ignored" in line for line in lines) == 2

    done = seqbench("export", sweep, "--to", "tensorboard", "--logdir", planted / "tb", cwd=planted)
    assert done.returncode == 0, done.stderr
    copied = [p.name for p in (planted / "tb").rglob("*") if p.is_file()]
    assert "secret.txt" not in copied and len(copied) == 4   # each run written from its record instead
    assert all(b"someone else's" not in p.read_bytes() for p in (planted / "tb").rglob("*") if p.is_file())
    assert "lstm_s0/record.json: 'tensorboard' ignored" in done.stderr


def test_report_leaves_out_predictions_outside_the_run_and_says_so_once(planted):
    done = seqbench("report", planted / "sweep", "--out", planted / "report", "--no-plots", cwd=planted)
    assert done.returncode == 0, done.stderr
    for run in ("lstm_s0", "lstm_s1"):
        assert done.stderr.count(f"{run}/record.json: 'predictions' ignored") == 1, done.stderr
    assert (planted / "report" / "summary.md").is_file()


def test_predictions_that_are_not_a_table_cost_one_line_not_the_report(tmp_path):
    """A FIFO, a folder, a link to /dev/zero, a gzip of a pickle, a file over the size bound
    (lowered for the test: the 2 GiB case is the slow lane's)."""
    import gzip
    import pickle
    sweep = tmp_path / "sweep"
    for seed in (0, 1, 2, 3, 4, 5):
        run_folder(sweep, f"gru_s{seed}", "gru", seed, 0.7)
        run_folder(sweep, f"lstm_s{seed}", "lstm", seed, 0.8)
    os.unlink(sweep / "lstm_s0" / "predictions.csv")
    os.mkfifo(sweep / "lstm_s0" / "predictions.csv")
    os.unlink(sweep / "lstm_s1" / "predictions.csv")
    (sweep / "lstm_s1" / "predictions.csv").mkdir()
    os.unlink(sweep / "lstm_s2" / "predictions.csv")
    (sweep / "lstm_s2" / "predictions.csv").symlink_to("/dev/zero")
    record_path = sweep / "lstm_s3" / "record.json"
    record_path.write_text(json.dumps({**json.loads(record_path.read_text()), "predictions": "predictions.csv.gz"}))
    with gzip.open(sweep / "lstm_s3" / "predictions.csv.gz", "wb") as stream:
        stream.write(pickle.dumps({"not": "a table"}))
    (sweep / "lstm_s4" / "predictions.csv").write_text(predictions_csv(8, total=5000))
    done = seqbench("report", sweep, "--out", tmp_path / "report", "--no-plots", cwd=tmp_path,
                    env={"SEQBENCH_RECORD_FILE_LIMIT_MB": "0.01"}, timeout=120)
    assert done.returncode == 0, done.stderr
    said = {line.split("/record.json")[0].rsplit("/", 1)[-1]: line for line in done.stderr.splitlines()
            if "'predictions' ignored" in line}
    assert set(said) == {"lstm_s0", "lstm_s1", "lstm_s2", "lstm_s3", "lstm_s4"}, done.stderr
    assert "named pipe (FIFO)" in said["lstm_s0"] and "a folder" in said["lstm_s1"]
    assert "outside the run's folder" in said["lstm_s2"] and "not a predictions table" in said["lstm_s3"]
    assert "SEQBENCH_RECORD_FILE_LIMIT_MB" in said["lstm_s4"]


# ------------------------------------------------------------------------- lock and claim files
def tiny_run_args(root: Path) -> list[str]:
    from tests.conftest import TINY
    return [f"paths.output_root={root}", *TINY, "logger=csv"]


@pytest.mark.slow
def test_a_symlinked_or_fifo_claim_lock_is_one_line_and_its_target_is_left_as_it_was(tmp_path):
    args = tiny_run_args(tmp_path / "out")
    first = seqbench(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lock = next((tmp_path / "out" / ".claims").glob("*.lock"))
    lock.unlink()
    victim = tmp_path / "my_notes.txt"
    victim.write_text("my notes\n")
    lock.symlink_to(victim)
    again = seqbench(*args, cwd=tmp_path)
    assert again.returncode == 2 and victim.read_text() == "my notes\n"
    assert again.stderr.strip() == (f"error: run claim {lock} is a symbolic link; seqbench makes its own lock files "
                                    f"and never writes through a link: remove the link and run again")
    lock.unlink()
    os.mkfifo(lock)
    again = seqbench(*args, cwd=tmp_path, timeout=60)
    assert again.returncode == 2 and again.stderr.strip() == (
        f"error: run claim {lock} is a named pipe (FIFO), not a regular file; seqbench makes its own lock files: "
        f"remove it and run again")


@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_a_study_lock_that_is_a_link_or_a_fifo_is_one_line_naming_it(plant, tmp_path):
    from seqbench.files import UnreadableFile
    from seqbench.search import StudyLock
    (tmp_path / ".locks").mkdir()
    lock, victim = tmp_path / ".locks" / "sincos_gru.lock", tmp_path / "mine.txt"
    victim.write_text("mine")
    lock.symlink_to(victim) if plant == "symlink" else os.mkfifo(lock)
    with pytest.raises(UnreadableFile, match=f"study lock {lock} is a "):
        StudyLock(tmp_path, "sincos_gru")
    assert victim.read_text() == "mine"


def test_a_search_that_retrained_nothing_names_where_it_looked(tmp_path, capsys):
    from argparse import Namespace

    from seqbench.search.cli import _finish
    args = Namespace(report=None, default_runs=[])
    _finish(args, tmp_path, None, {}, {}, {"search": 0, "retrain": 0})
    assert capsys.readouterr().err.strip() == f"no report: no retrained run under {tmp_path / 'retrain'}"


# ------------------------------------------------------------------ names that become paths
@pytest.mark.parametrize("words,message", [
    (["hydra.job.name=../../../x"], "error: hydra.job.name='../../../x': a name for tables and folders, not a path"),
    (["-m", "hydra.job.name=../../../x"], "error: hydra.job.name='../../../x': a name for tables and folders"),
    (["-m", "hydra.sweep.subdir=../../y"], "error: hydra.sweep.subdir='../../y': a folder inside the sweep's folder"),
])
def test_names_hydra_makes_paths_of_write_nothing_outside_the_run_folder(words, message, tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    done = seqbench(*words, "paths.output_root=out", "trainer.max_epochs=1", cwd=deep, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().startswith(message), done.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a", "a/b", "a/b/c"]


# ------------------------------------------------------------------------ counts that add up
@pytest.mark.slow
def test_a_run_killed_at_epoch_3_of_6_and_resumed_records_both_attempts_and_their_summed_wall_time(tmp_path):
    from tests.test_preemption import SLOW_ENOUGH, launch, wait_for_epochs
    args = [*SLOW_ENOUGH, "trainer.max_epochs=6", "dataset.n_train=1024", f"paths.output_root={tmp_path}"]
    first = launch(args, tmp_path)
    record = wait_for_epochs(tmp_path, 3)
    os.kill(first.pid, 9)
    first.wait()
    killed = json.loads(record.read_text())
    assert killed["status"] == "running" and len(killed["attempts"]) == 1
    second = seqbench(*args, cwd=tmp_path, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = json.loads(record.read_text())
    assert resumed["status"] == "done" and resumed["resumed"] == 1 and len(resumed["history"]) == 6
    attempts = resumed["attempts"]
    assert len(attempts) == 2 and attempts[0] == killed["attempts"][0]
    assert attempts[0]["epochs"] >= 3 and sum(a["epochs"] for a in attempts) == 6
    assert all(a["started"] <= a["ended"] for a in attempts) and attempts[0]["ended"] <= attempts[1]["started"]
    assert resumed["wall_seconds"] == pytest.approx(sum(a["wall_seconds"] for a in attempts))
    assert resumed["wall_seconds"] >= 0.9 * sum(resumed["epoch_seconds"]), (resumed["wall_seconds"], attempts)
    assert resumed["wall_seconds"] > attempts[1]["wall_seconds"]


# ------------------------------------------------------------------------------ bounded reads
def text_files(folder: Path) -> tuple[Path, Path]:
    words = {0: "awful dull boring", 1: "great superb lovely", 2: "fine okay average"}
    for name, count in (("train.csv", 90), ("test.csv", 30)):
        (folder / name).write_text("text,label\n" + "".join(f"{words[i % 3].split()[i % 3]} film {i},c{i % 3}\n"
                                                            for i in range(count)))
    return folder / "train.csv", folder / "test.csv"


def text_run_args(root: Path, train: Path, test: Path) -> list[str]:
    return [f"paths.output_root={root}", "dataset=text_file", f"dataset.train={train}", f"dataset.test={test}",
            "trainer.max_epochs=1", "model.hidden_size=8", "model.embedding_dim=8", "logger=csv",
            "trainer.enable_progress_bar=false"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """One tiny finished text classification run, trained through the command line."""
    folder = tmp_path_factory.mktemp("text_run")
    train, test = text_files(folder)
    done = seqbench(*text_run_args(folder / "out", train, test), cwd=folder)
    assert done.returncode == 0, done.stderr
    return next((folder / "out").glob("runs/*/*/record.json")).parent


def test_eval_of_a_file_in_another_encoding_gives_the_training_paths_hint(text_run, tmp_path):
    (tmp_path / "latin1.csv").write_bytes("text,label\ncafé good,c0\nbad film,c1\n".encode("latin-1"))
    done = seqbench("eval", text_run, "--file", "latin1.csv", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: latin1.csv, line 2, byte 4 of the line (byte 14 of the file): not valid utf-8 (invalid continuation "
        "byte); set --encoding to the file's encoding (for example --encoding latin-1 or cp1252)")


@pytest.mark.slow   # the fast lane stays under 5 minutes on 2 cores; CI runs both lanes
def test_a_file_without_line_breaks_is_one_line_for_eval_and_training(text_run, tmp_path):
    """A sparse file of zeros, larger than the longest line read: refused in one line, not read whole."""
    from seqbench.datasets.text_file import LINE_LIMIT
    blank = tmp_path / "blank.csv"
    with open(blank, "wb") as stream:
        stream.truncate(LINE_LIMIT + 2**20)
    words = f"{blank}, line 1: more than 16 MiB without a line break"
    done = seqbench("eval", text_run, "--file", blank, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().startswith(f"error: {words}"), done.stderr
    train, test = text_files(tmp_path)
    done = seqbench(*text_run_args(tmp_path / "out", blank, test), cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith(f"error: {words}"), done.stderr


@pytest.mark.slow
def test_sigterm_while_a_2_gib_training_file_is_read_ends_the_run_within_2_s(tmp_path):
    import signal
    import time
    big = tmp_path / "big.csv"
    subprocess.run(["truncate", "-s", "2G", str(big)], check=True)
    _, test = text_files(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "seqbench", *text_run_args(tmp_path / "out", big, test)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline:   # until the run has the big file open
        try:
            if any(os.path.realpath(f"/proc/{process.pid}/fd/{fd}") == str(big.resolve())
                   for fd in os.listdir(f"/proc/{process.pid}/fd")):
                break
        except OSError:
            pass
        time.sleep(0.02)
    time.sleep(0.5)
    assert process.poll() is None, process.communicate()
    sent = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    took = time.perf_counter() - sent
    assert process.returncode == 143 and took < 2.0, (took, err[-2000:])
    assert err.strip().splitlines()[-1].startswith("interrupted")


# ------------------------------------------------------------------- reports that scale with classes
def many_class_sweep(folder: Path, classes: int, examples: int) -> Path:
    import numpy as np
    rng = np.random.default_rng(0)
    names = [f"class{i:04d}" for i in range(classes)]
    for model in ("gru", "lstm"):
        for seed in (0, 1):
            run = folder / f"{model}_s{seed}"
            write_json_atomic(run / "record.json", record(model, seed, 0.5, dataset="many", label_names=names,
                                                          predictions="predictions.csv", run_key=f"{model}{seed}"))
            # class i has about i + 1 examples: the most supported classes are the last ones
            target = np.minimum(classes - 1, np.sqrt(rng.random(examples)) * classes).astype(int)
            predicted = np.where(rng.random(examples) < 0.5, target, rng.integers(0, classes, examples))
            (run / "predictions.csv").write_text("index,target,predicted\n" + "".join(
                f"{i},{t},{p}\n" for i, (t, p) in enumerate(zip(target, predicted))))
    return folder


def test_per_class_tables_show_the_most_supported_classes_and_say_so(tmp_path):
    sweep = many_class_sweep(tmp_path / "sweep", 25, 400)
    done = seqbench("report", sweep, "--out", tmp_path / "report", "--no-plots", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "Shown: the 20 classes with the most test examples, of 25; every class is in `confusion_many.csv`." \
        in summary
    header = next(line for line in summary.splitlines() if line.startswith("| variant | class"))
    assert "class0024" in header and "class0000" not in header and header.count("class0") == 20
    import pandas as pd
    assert pd.read_csv(tmp_path / "report" / "confusion_many.csv")["true"].nunique() == 25


@pytest.mark.slow
def test_a_report_over_a_1000_class_run_finishes_within_60_s(tmp_path):
    import time
    sweep = many_class_sweep(tmp_path / "sweep", 1000, 5000)
    started = time.perf_counter()
    done = seqbench("report", sweep, "--out", tmp_path / "report", cwd=tmp_path, timeout=120)
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert took < 60, took
    assert (tmp_path / "report" / "many_confusion.png").is_file()
    assert "of 1000; every class is in" in (tmp_path / "report" / "summary.md").read_text()


# ---------------------------------------------------------------- flags checked before any work
@pytest.mark.parametrize("words,message", [
    (["bench", "--precision", "fp7"], "error: argument --precision: invalid choice: 'fp7' (choose from '16', "),
    (["bench", "--workload", "scan", "--lengths", "0"], "error: argument --lengths: 0 must be at least 1"),
    (["plan", "model=lsmt"], "error: unknown model 'lsmt'; valid: bilstm_attn, "),
    (["model=lsmt", "--dry-run"], "error: unknown model 'lsmt'; valid: bilstm_attn, "),
    (["plan", "model.hiden_size=3"], "error: Could not override 'model.hiden_size'. To append to your config use "
                                     "+model.hiden_size=3"),
    (["plan", "-m", "hydra.job.name=../x"], "error: hydra.job.name='../x': a name for tables and folders"),
])
def test_every_tools_flags_are_checked_before_any_work_in_one_line(words, message, tmp_path):
    done = seqbench(*words, "paths.output_root=out" if "bench" not in words else "--out=b.md", cwd=tmp_path,
                    timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(message), done.stderr
    assert not list(tmp_path.iterdir())   # nothing made, nothing measured


@pytest.mark.slow
def test_a_resumed_sweeps_progress_counts_each_reused_run_once(tmp_path):
    args = [*tiny_run_args(tmp_path / "out"), f"hydra.sweep.dir={tmp_path / 'out' / 'sweep'}"]
    first = seqbench("-m", *args, "seed=0,1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = seqbench("-m", *args, "seed=0,1,2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    lines = [line for line in again.stdout.splitlines() if line.startswith("sweep: ")]
    assert [line.split(")")[0] for line in lines] == ["sweep: 1 of 3 runs done (reused 1, failed 0",
                                                      "sweep: 2 of 3 runs done (reused 2, failed 0",
                                                      "sweep: 3 of 3 runs done (reused 2, failed 0"], again.stdout


@pytest.mark.slow
def test_a_test_file_that_is_or_overlaps_the_training_file_is_one_warning_with_the_overlap(tmp_path):
    import uuid
    tag = uuid.uuid4().hex[:8]   # data no other test tokenised: no token cache skips the reading
    rows = [f"{['awful dull', 'great superb'][i % 2]} {tag} {i},c{i % 2}\n" for i in range(60)]
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(rows))
    (tmp_path / "half.csv").write_text("text,label\n" + "".join(rows[:10] + [r.replace(tag, "new") for r in rows[:10]]))
    same = seqbench(*text_run_args(tmp_path / "out", tmp_path / "train.csv", tmp_path / "train.csv"), cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert [line for line in (same.stdout + same.stderr).splitlines() if "dataset.test" in line] == [
        f"dataset.test is the training file itself ({tmp_path / 'train.csv'}): the test scores are on the examples "
        f"the model was trained on; give a held-out file"]
    half = seqbench(*text_run_args(tmp_path / "out", tmp_path / "train.csv", tmp_path / "half.csv"), cwd=tmp_path)
    assert half.returncode == 0, half.stderr
    assert [line for line in (half.stdout + half.stderr).splitlines() if "dataset.test" in line] == [
        f"dataset.test ({tmp_path / 'half.csv'}): 10 of 20 test texts (50.0%) are also in dataset.train "
        f"({tmp_path / 'train.csv'}); those are scored on examples the model was trained on"]


def test_several_finished_records_of_one_run_are_named_once(tmp_path):
    sweep = tmp_path / "sweep"
    for copy in range(8):   # one run copied 8 times (cp -r)
        run_folder(sweep, f"gru_s0_copy{copy}", "gru", 0, 0.7)
    run_folder(sweep, "lstm_s0", "lstm", 0, 0.8)
    done = seqbench("report", sweep, "--out", tmp_path / "report", "--no-plots", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "finished records of one run" in line]
    assert len(said) == 1 and said[0].startswith("warning: 8 finished records of one run (gru seed 0) count as one: ")
    assert said[0].endswith(" and 4 more") and "gru_s0_copy" in said[0]


def test_an_evaluation_folder_is_named_from_records_as_data_never_as_a_path():
    from seqbench.evaluate import eval_folder_stem
    assert eval_folder_stem("gru", "trec", [0]) == "trec"
    assert eval_folder_stem("gru", "trec", [0, 1, 2]) == "gru-trec-seeds-0-1-2"
    stem = eval_folder_stem("../../../x", "trec", [0, 1])   # a record edited to name a path
    assert "/" not in stem and not stem.startswith(".")
