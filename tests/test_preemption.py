"""A run killed mid-training (kill -9) and launched again resumes from its last checkpoint."""
import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import TINY

SLOW_ENOUGH = [*TINY, "trainer.max_epochs=12", "trainer.limit_train_batches=null", "dataset.n_train=512",
               "trainer.patience=100"]


def test_killed_run_resumes_from_its_last_checkpoint_and_loses_no_finished_epoch(tmp_path):
    command = [sys.executable, "-m", "seqbench", *SLOW_ENOUGH, f"paths.output_root={tmp_path}"]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    record = None
    while time.time() < deadline:
        records = list(tmp_path.glob("runs/*/*/record.json"))
        if records and (records[0].parent / "checkpoints" / "last.ckpt").is_file():
            record = records[0]
            progress = json.loads(record.read_text())
            if progress.get("epochs", 0) >= 2:
                break
        time.sleep(0.2)
    assert record is not None, "the first run never saved a checkpoint"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed = json.loads(record.read_text())
    assert killed["status"] == "running" and 2 <= killed["epochs"] < 12

    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.strip().splitlines()[-1] == f"record: {record}"
    resumed = json.loads(record.read_text())
    assert resumed["status"] == "done" and resumed["resumed"] == 1
    epochs = [h["epoch"] for h in resumed["history"]]
    assert epochs == list(range(12))  # nothing trained twice, nothing missing
    assert resumed["history"][: killed["epochs"]] == killed["history"]
