"""Issue 35: the answer where the user is: the terminal's last lines give the verdict, a search
can be watched, finished runs go to dashboards, the report can be mailed and rerun, eval fits the
run it evaluates, checkpoints keep what resume and eval need."""
import logging

from omegaconf import OmegaConf

from seqbench.report import build_report
from tests.test_results import record, write_records


def _two_models(root, seeds=(0, 1, 2)):
    scores = {"gru": [0.80, 0.82, 0.81], "lstm": [0.70, 0.71, 0.69]}
    write_records(root, [record(model, seed, scores[model][seed]) for model in scores for seed in seeds])


def test_a_report_ends_in_the_terminal_with_the_verdict_the_table_and_the_paths(tmp_path):
    _two_models(tmp_path / "runs")
    lines = build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199).terminal()
    verdict = next(line for line in lines if line.strip().startswith("trec"))
    assert "gru a" in verdict and "lstm b" in verdict and "**" not in verdict   # as summary.md, without its marks
    assert lines[-2:] == [f"report: {tmp_path / 'out' / 'summary.md'}", f"        {tmp_path / 'out' / 'report.html'}"]
    table = lines[lines.index("trec:") + 1:-2]
    assert table[0].split() == ["variant", "n", "test", "acc", "(%)", "mean", "±", "sd", "95%", "CI"]
    assert table[1].split()[:5] == ["gru", "3", "81.0", "±", "1.0"] and table[2].split()[0] == "lstm"
    assert lines.index(verdict.rstrip("\n")) < lines.index("trec:")


def test_the_end_of_a_sweep_prints_the_verdict_last(tmp_path, capsys):
    from seqbench.sweep import ReportAfterSweep
    _two_models(tmp_path / "sweep")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")},
                                         "overrides": {"task": ["model=gru,lstm", "seed=0,1,2"]}}})
    ReportAfterSweep().on_multirun_end(config)
    tail = capsys.readouterr().out.strip().splitlines()[-7:]
    assert any("gru a" in line and "lstm b" in line for line in tail), tail
    assert tail[-2].startswith("report: ") and tail[-1].strip().endswith("report.html")


def test_a_job_line_says_only_what_differs_between_jobs():
    from seqbench.sweep import WhatDiffers, swept_keys
    keys = swept_keys(["model=gru,lstm", "seed=0,1,2", "dataset=text_file", "dataset.train=/home/me/data/train.tsv"],
                      {"+trainer.max_epochs": "2,4"})
    assert keys == {"model", "seed", "trainer.max_epochs"}
    line = logging.LogRecord("hydra", logging.INFO, __file__, 1, "\t#%d : %s", (3, "model=gru seed=1 dataset=text_file "
                             "dataset.train=/home/me/data/train.tsv +trainer.max_epochs=4"), None)
    assert WhatDiffers(keys).filter(line) and line.getMessage() == "\t#3 : model=gru seed=1 +trainer.max_epochs=4"
    start = logging.LogRecord("hydra", logging.INFO, __file__, 1, "Launching 6 jobs locally", (), None)
    WhatDiffers(keys).filter(start)
    assert start.getMessage().startswith("Launching 6 jobs locally; per job, what differs (model, seed, trainer")


def test_epoch_lines_wherever_the_bar_cannot_draw(monkeypatch):
    import io
    import os
    import sys

    from seqbench import console

    class Terminal(io.StringIO):
        def isatty(self):
            return True

        def fileno(self):
            return 1
    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=1: os.terminal_size((0, 24)))
    callbacks, options = console.console_callbacks({"enable_progress_bar": True}, statistics=None)
    assert options["enable_progress_bar"] is False and isinstance(callbacks[0], console.EpochLines)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=1: os.terminal_size((120, 24)))
    assert console.wants_progress_bar(True)
    monkeypatch.setattr(sys, "stdout", io.StringIO())   # a pipe: no terminal at all
    assert not console.wants_progress_bar(True)
