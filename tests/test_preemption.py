"""Runs that are killed, preempted, started twice or left with a broken checkpoint: nothing is
stolen, nothing is lost, every epoch is counted once."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqbench import train as train_module
from seqbench.results import load_records
from seqbench.run import run
from seqbench.runtime import Interrupted, forget_stop_request, stop_on_signals
from seqbench.training import RecordWriter
from tests.conftest import TINY

SLOW_ENOUGH = [*TINY, "trainer.max_epochs=12", "dataset.n_train=512", "trainer.patience=100"]


def launch(args, cwd, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "seqbench", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for_epochs(root: Path, epochs: int, timeout: float = 240) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for record in root.glob("runs/*/*/record.json"):
            try:
                progress = json.loads(record.read_text())
            except json.JSONDecodeError:
                continue
            if progress.get("epochs", 0) >= epochs and (record.parent / "checkpoints" / "last.ckpt").is_file():
                return record
        time.sleep(0.2)
    raise AssertionError("the run never got that far")


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint_and_loses_no_finished_epoch(tmp_path):
    args = [*SLOW_ENOUGH, f"paths.output_root={tmp_path}"]
    first = launch(args, tmp_path)
    record = wait_for_epochs(tmp_path, 2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed = json.loads(record.read_text())
    assert killed["status"] == "running" and 2 <= killed["epochs"] < 12

    second = subprocess.run([sys.executable, "-m", "seqbench", *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.strip().splitlines()[-1] == f"record: {record}"
    resumed = json.loads(record.read_text())
    assert resumed["status"] == "done" and resumed["resumed"] == 1
    assert [h["epoch"] for h in resumed["history"]] == list(range(12))  # nothing trained twice, nothing missing
    assert resumed["history"][: killed["epochs"]] == killed["history"]


@pytest.mark.slow
@pytest.mark.parametrize("sent,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_exits_non_zero_records_interrupted_and_the_relaunch_resumes(tmp_path, sent, code):
    """SIGTERM (preemption) and Ctrl-C: 143 and 130, as a shell reports them (Lightning alone exits
    0 on SIGTERM and 1 on Ctrl-C), the record says interrupted, the relaunch resumes."""
    args = [*SLOW_ENOUGH, f"paths.output_root={tmp_path}"]
    first = launch(args, tmp_path)
    record = wait_for_epochs(tmp_path, 2)
    first.send_signal(sent)
    out, err = first.communicate(timeout=120)
    assert first.returncode == code, err[-2000:]
    assert "interrupted" in err
    assert json.loads(record.read_text())["status"] == "interrupted"
    second = subprocess.run([sys.executable, "-m", "seqbench", *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    final = json.loads(record.read_text())
    assert final["status"] == "done" and final["resumed"] == 1
    assert [h["epoch"] for h in final["history"]] == list(range(12))


class SimulatedKill(BaseException):
    pass


def test_a_kill_between_checkpoint_and_record_counts_every_epoch_once(compose_config, tmp_path, monkeypatch):
    """Die right after last.ckpt of epoch 2 is written, before the record is: the record says
    one epoch, the checkpoint two; the resumed run must list each epoch exactly once."""
    dead = {"now": False}
    real_save, real_writer = train_module.save_record, RecordWriter.on_train_epoch_end

    def save_unless_dead(path, record):
        if not dead["now"]:
            real_save(path, record)

    def writer_dies_at_epoch_two(self, trainer, module):
        if trainer.current_epoch == 1:
            dead["now"] = True
            raise SimulatedKill
        real_writer(self, trainer, module)
    monkeypatch.setattr(train_module, "save_record", save_unless_dead)
    monkeypatch.setattr(RecordWriter, "on_train_epoch_end", writer_dies_at_epoch_two)
    cfg = compose_config(*TINY, "trainer.max_epochs=4")
    with pytest.raises(SimulatedKill):
        run(cfg, tmp_path / "first")
    on_disk = json.loads((tmp_path / "first" / "record.json").read_text())
    assert on_disk["status"] == "running" and on_disk["epochs"] == 1  # the record is one epoch behind

    monkeypatch.setattr(train_module, "save_record", real_save)
    monkeypatch.setattr(RecordWriter, "on_train_epoch_end", real_writer)
    resumed = run(cfg, tmp_path / "second")
    assert resumed["output_dir"] == str(tmp_path / "first") and resumed["resumed"] == 1
    assert [h["epoch"] for h in resumed["history"]] == [0, 1, 2, 3]
    assert len(resumed["epoch_seconds"]) == 4


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # the dropped exception, on purpose
def test_a_sigterm_whose_exception_python_drops_still_stops_the_run(compose_config, tmp_path, monkeypatch):
    """Python drops an exception raised in a __del__ ("Exception ignored in ..."): a SIGTERM whose
    handler ran there was lost, and the sweep went on to exit 0 (one CI run of the fault-injection
    test saw a relaunch exit 0 after its second kill). The handler remembers the signal, and the
    run stops at its next batch: recorded "interrupted", and the same command resumes it."""
    real_build = train_module.build_datamodule

    class DropsASigterm:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)   # the handler runs in here, and its exception is dropped

    def build_then_drop_a_sigterm(*args, **kwargs):
        datamodule = real_build(*args, **kwargs)
        DropsASigterm()
        return datamodule
    monkeypatch.setattr(train_module, "build_datamodule", build_then_drop_a_sigterm)
    cfg = compose_config(*TINY, "trainer.max_epochs=3")
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    stop_on_signals()
    try:
        with pytest.raises(Interrupted):
            run(cfg, tmp_path / "job")
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        forget_stop_request()
    record = json.loads((tmp_path / "job" / "record.json").read_text())
    assert record["status"] == "interrupted" and record.get("epochs", 0) == 0

    monkeypatch.undo()
    resumed = run(cfg, tmp_path / "again")
    assert resumed["status"] == "done" and [h["epoch"] for h in resumed["history"]] == [0, 1, 2]


def test_a_resumed_run_appears_in_the_report_of_the_sweep_that_resumed_it(compose_config, tmp_path, monkeypatch):
    def dies(self, trainer, module):
        raise SimulatedKill
    monkeypatch.setattr(RecordWriter, "on_train_epoch_end", dies)
    cfg = compose_config(*TINY, "trainer.max_epochs=3")
    with pytest.raises(SimulatedKill):
        run(cfg, tmp_path / "old_sweep" / "0_lstm")
    monkeypatch.undo()
    job = tmp_path / "new_sweep" / "0_lstm"
    resumed = run(cfg, job, in_sweep=True)
    assert resumed["status"] == "done" and resumed["output_dir"] == str(tmp_path / "old_sweep" / "0_lstm")
    records = load_records([tmp_path / "new_sweep"])
    assert len(records) == 1 and records[0]["status"] == "done"
    assert records[0]["copy_of"] == str(tmp_path / "old_sweep" / "0_lstm" / "record.json")


def test_a_truncated_checkpoint_is_moved_aside_and_the_run_starts_afresh(compose_config, tmp_path, monkeypatch,
                                                                         caplog):
    def dies(self, trainer, module):
        raise SimulatedKill
    monkeypatch.setattr(RecordWriter, "on_train_epoch_end", dies)
    cfg = compose_config(*TINY, "trainer.max_epochs=3")
    with pytest.raises(SimulatedKill):
        run(cfg, tmp_path / "first")
    monkeypatch.undo()
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # what a full disk leaves
    again = run(cfg, tmp_path / "second")
    assert again["status"] == "done" and again["output_dir"] == str(tmp_path / "second")
    assert [h["epoch"] for h in again["history"]] == [0, 1, 2]
    assert "cannot be read" in caplog.text and list((tmp_path / "first" / "checkpoints").glob("last.ckpt.set-aside-*"))
    third = run(cfg, tmp_path / "third")  # and no crash loop: the next launch reuses the finished run
    assert third["reused_from"] == str(tmp_path / "second" / "record.json")


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    import torch
    from seqbench import SeqbenchError
    from seqbench.train import AtomicCheckpointIO
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 1}, path)
    monkeypatch.setattr(torch, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(SeqbenchError, match="cannot write the checkpoint .*No space left on device. Free some disk"):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.slow
def test_the_same_command_twice_never_shares_a_run(tmp_path):
    """Started twice, the second process sees the live claim, says so, and leaves the run alone;
    the record holds the figures of the process that trained it."""
    args = [*SLOW_ENOUGH, "trainer.max_epochs=100", f"paths.output_root={tmp_path}"]
    first = launch(args, tmp_path)
    try:
        record = wait_for_epochs(tmp_path, 1)
        second = subprocess.run([sys.executable, "-m", "seqbench", *args], cwd=tmp_path, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-2000:]
        assert "skipped" in second.stdout and f"process {first.pid}" in second.stdout
        assert "record:" not in second.stdout
        assert first.poll() is None  # the first is still training, undisturbed
        progress = json.loads(record.read_text())
        assert progress["status"] == "running" and progress["process"]["pid"] == first.pid
        assert len(list(tmp_path.rglob("record.json"))) == 1  # the second copy trained nothing, wrote nothing
    finally:
        first.kill()
        first.communicate()


def sweep_state(sweep: Path) -> dict:
    """What a sweep has written so far: finished epochs over every record (a record being
    rewritten counts as none), the pids that have written a record, and the newest last.ckpt."""
    epochs, pids, newest_checkpoint = 0, set(), 0.0
    for record in sweep.glob("*/record.json"):
        try:
            content = json.loads(record.read_text())
        except (json.JSONDecodeError, OSError):
            continue
        epochs += content.get("epochs", 0)
        pids.add((content.get("process") or {}).get("pid"))
    for checkpoint in sweep.glob("*/checkpoints/last.ckpt"):
        try:
            newest_checkpoint = max(newest_checkpoint, checkpoint.stat().st_mtime)
        except OSError:
            pass
    return {"epochs": epochs, "pids": pids, "checkpoint": newest_checkpoint}


# When a launch is killed: each moment waits for its event (or the launch's end, or 120 s), then a
# random delay. Events, not the clock, so a fast machine gets its kills too.
KILL_MOMENTS = {
    "start-up": (lambda before, now, pid: True, (0.2, 1.5)),              # imports, composing, planning
    "run start": (lambda before, now, pid: pid in now["pids"], (0.0, 0.5)),   # claimed, data read, resuming
    "checkpoint": (lambda before, now, pid: now["checkpoint"] > before["checkpoint"], (0.0, 0.05)),  # before its record
    "epoch": (lambda before, now, pid: now["epochs"] > before["epochs"], (0.0, 0.3)),    # record written, next epoch
}


@pytest.mark.slow
def test_fault_injection_many_kills_every_run_done_once_every_epoch_once(tmp_path):
    """A small sweep, killed 12 times (SIGKILL and SIGTERM, at seeded random moments) and
    relaunched each time; in the end every run is done once, each history lists every epoch
    once, and the report includes every run.

    The moments follow the sweep's progress, not the clock (a clock-only schedule let a fast CI
    machine finish the sweep after 8 kills): in start-up, just after the launch has written its
    first record (resuming, the first steps), between a checkpoint and its epoch's record, and
    just after an epoch's record. 4 runs x 8 epochs leave more work than the kills can use up."""
    sweep = tmp_path / "sweep"
    epochs = 8
    args = ["-m", "model=rnn,gru", "seed=0,1", *TINY, f"trainer.max_epochs={epochs}", "dataset.n_train=512",
            "trainer.patience=100", f"paths.output_root={tmp_path}", f"hydra.sweep.dir={sweep}"]
    rng = random.Random(20261128)
    kills, moments, sent, err = 0, [], None, ""
    for attempt in range(40):
        before = sweep_state(sweep)
        process = launch(args, tmp_path)
        try:
            if kills == 12:
                out, err = process.communicate(timeout=600)
                assert process.returncode == 0, err[-3000:]
                break
            moment = rng.choice(sorted(KILL_MOMENTS))
            happened, delay = KILL_MOMENTS[moment]
            deadline = time.time() + 120
            while process.poll() is None and time.time() < deadline \
                    and not happened(before, sweep_state(sweep), process.pid):
                time.sleep(0.01)
            time.sleep(rng.uniform(*delay))
            if process.poll() is not None:  # finished (or failed) before the kill came
                out, err = process.communicate()
                break
            sent = rng.choice([signal.SIGKILL, signal.SIGTERM])
            process.send_signal(sent)
            kills += 1
            moments.append(moment)
            process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert kills == 12, f"launch {attempt + 1} ended (exit {process.returncode}) after kills at {moments} " \
                        f"({sent!r}): {err[-3000:]}"
    assert set(moments) == set(KILL_MOMENTS), moments  # the seed's schedule reaches every kind of moment
    records = [json.loads(p.read_text()) for p in sweep.glob("*/record.json")]
    trained = [r for r in records if not r.get("copy_of")]
    assert sorted((r["model"], r["seed"]) for r in records) == [("gru", 0), ("gru", 1), ("rnn", 0), ("rnn", 1)]
    assert all(r["status"] == "done" for r in records)
    assert len({r["run_key"] for r in trained}) == len(trained) == 4  # each run trained in one folder only
    for r in records:
        assert [h["epoch"] for h in r["history"]] == list(range(epochs)), r["history"]
    summary = (sweep / "report" / "summary.md").read_text()
    assert "| gru | 2 |" in summary and "| rnn | 2 |" in summary
