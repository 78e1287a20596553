"""Finished runs archived as data: records and compressed predictions, no checkpoints, no path of
the machine that made them, and a report from the archive gives the same tables."""
import json
import time

import pandas as pd

from seqbench.archive import main as archive
from seqbench.report import build_report
from seqbench.run import run
from tests.conftest import TINY


def test_archived_runs_carry_no_machine_paths_and_report_the_same_numbers(compose_config, tmp_path):
    root = tmp_path / "runs"
    for model in ("gru", "rnn"):
        for seed in (0, 1):
            record = run(compose_config(*TINY, f"model={model}", f"seed={seed}"), root / f"{model}_{seed}")
            assert record["status"] == "done"
    archive([str(root), "--to", str(tmp_path / "archive")])
    folders = sorted(p.parent for p in (tmp_path / "archive").rglob("record.json"))
    assert len(folders) == 4
    for folder in folders:
        assert {p.name for p in folder.iterdir()} == {"record.json", "predictions.csv.gz"}  # no checkpoints
        text = (folder / "record.json").read_text()
        assert str(tmp_path) not in text and "/tmp" not in text, text[:300]
        assert json.loads(text)["predictions"] == "predictions.csv.gz"
    build_report([root], tmp_path / "from_runs")
    build_report([tmp_path / "archive"], tmp_path / "from_archive")
    original = pd.read_csv(tmp_path / "from_runs" / "summary_sincos.csv")
    again = pd.read_csv(tmp_path / "from_archive" / "summary_sincos.csv")
    numbers = [c for c in original.columns if c.startswith("test_")]
    pd.testing.assert_frame_equal(original[["model", *numbers]], again[["model", *numbers]])
    # the paired per-example comparisons read the compressed predictions
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "from_runs" / "pairs_sincos.csv"),
                                  pd.read_csv(tmp_path / "from_archive" / "pairs_sincos.csv"))
    # archiving again replaces each run's folder instead of adding a second copy, byte for byte the
    # same (a committed archive does not change when its grid is archived again)
    before = {p: p.read_bytes() for p in (tmp_path / "archive").rglob("*") if p.is_file()}
    time.sleep(1.1)   # a gzip header with the time in it would now differ
    archive([str(root), "--to", str(tmp_path / "archive")])
    assert len(list((tmp_path / "archive").rglob("record.json"))) == 4
    assert {p: p.read_bytes() for p in (tmp_path / "archive").rglob("*") if p.is_file()} == before


def test_a_diverged_run_is_archived_as_the_finished_outcome_it_is(tmp_path, capsys):
    """A run that diverged is a result (the report counts it as finished, never as missing): the
    archive keeps it, so a table rebuilt from the archive is not left incomplete."""
    folder = tmp_path / "runs" / "irnn_copy_s0"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({
        "status": "diverged", "model": "irnn", "dataset": "copy", "seed": 0, "run_key": "abcdef1234567890",
        "config_hash": "c0", "error": "loss became nan at step 812", "run_dir": str(folder)}))
    archive([str(tmp_path / "runs"), "--to", str(tmp_path / "archive")])
    archived = list((tmp_path / "archive").rglob("record.json"))
    assert len(archived) == 1 and json.loads(archived[0].read_text())["status"] == "diverged"
    assert "archived 1 finished run into" in capsys.readouterr().out
