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


def test_a_search_says_trial_k_of_n_with_its_value_the_best_so_far_and_the_time_left(tmp_path, capsys):
    from seqbench.search import search_variant
    from tests.conftest import CONFIG_DIR
    from tests.test_search import SEARCH
    summary = search_variant(CONFIG_DIR, [*SEARCH, f"paths.output_root={tmp_path}"], "rnn", str(tmp_path))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("rnn: ")]
    assert lines[0].startswith("rnn: study sincos-rnn-") and lines[0].endswith("2 of 2 trials to run, then 1 "
                                                                               "retraining seed")
    first, second = lines[1:3]
    assert first.startswith("rnn: trial 1 of 2: val mse ") and "optimizer.lr=" in first and "best so far" in first
    assert first.endswith("left for rnn (retraining included)")
    assert second.startswith("rnn: trial 2 of 2: ")
    best = f"{summary['best_value']:.3g}"
    assert f"best so far {best}" in second and summary["metric"] == "mse"
    search_variant(CONFIG_DIR, [*SEARCH, f"paths.output_root={tmp_path}"], "rnn", str(tmp_path))
    assert "2 finished before, 0 of 2 trials to run" in capsys.readouterr().out   # the budget is spent


def test_the_time_left_leaves_out_reused_trials():
    from seqbench.search import TrialWatch
    watch = TrialWatch("gru", budget=12, metric="acc", higher=True, retrain_seeds=5)
    watch.ended(1, "val acc 0.8 (reused)", None, 1, None, {"optimizer.lr": 0.001})
    assert watch.time_left(1) == ""                       # a reused trial took seconds: no estimate from it
    watch.ended(2, "val acc 0.81", None, 2, 120.0, {"optimizer.lr": 0.002}, complete=True)
    assert watch.time_left(2) == "; about 30 min left for gru (retraining included)"   # (10 + 5) x 2 min


def test_optuna_plots_are_drawn_quietly_into_the_report_with_a_caveat_on_importances(tmp_path, capsys, recwarn,
                                                                                       caplog):
    import optuna

    from seqbench.search import write_plots
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="polarity-gru-x", storage=f"sqlite:///{tmp_path / 'polarity.db'}",
                                direction="maximize")
    study.set_user_attr("variant", "gru")
    for lr, size, value in ((1e-3, "8", 0.6), (3e-3, "16", 0.7), (5e-3, "8", 0.65)):
        study.enqueue_trial({"optimizer.lr": lr, "model.hidden_size": size})
        trial = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
                           "model.hidden_size": optuna.distributions.CategoricalDistribution(["8", "16"])})
        study.tell(trial, value)
    caplog.set_level(logging.INFO)
    figures = write_plots(["polarity-gru-x"], {}, tmp_path, "polarity", tmp_path / "report")
    assert [path.name for path, _, _ in figures] == ["polarity-gru-x_history.png", "polarity-gru-x_importances.png",
                                                      "polarity-gru-x_slices.png"]
    caveats = {path.stem.rsplit("_", 1)[1]: caveat for path, _, caveat in figures}
    assert caveats["importances"].startswith("3 completed trials for 2 parameters: importances from so few trials "
                                             "mean little")
    assert caveats["history"] is None and not list(recwarn) and capsys.readouterr() == ("", "")
    assert not [r for r in caplog.records if r.name.startswith("matplotlib")]
    write_records(tmp_path / "runs", [record("gru", seed, 0.8) for seed in (0, 1)])
    (tmp_path / "studies.md").write_text("# Hyper-parameter search: polarity\n")
    build_report([tmp_path / "runs"], tmp_path / "report", plots=False, resamples=199, studies=tmp_path / "studies.md",
                 study_figures=figures)
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "importances from so few trials mean little" in page
