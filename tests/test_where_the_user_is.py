"""Issue 35: the answer where the user is: the terminal's last lines give the verdict, a search
can be watched, finished runs go to dashboards, the report can be mailed and rerun, eval fits the
run it evaluates, checkpoints keep what resume and eval need."""
import logging

import pytest
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
    assert "best: gru" in verdict and "behind: lstm" in verdict and "**" not in verdict   # as summary.md, without its marks
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
    tail = capsys.readouterr().out.strip().splitlines()[-8:]   # the table ends with its budget line
    assert any("best: gru" in line and "behind: lstm" in line for line in tail), tail
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


def _finished_sweep(root):
    """Two models x 2 seeds as a sweep leaves them: records with run keys and output roots."""
    records = [{**record(model, seed, 0.7 + 0.05 * seed + (0.1 if model == "gru" else 0)),
                "run_key": f"key-{model}-{seed}", "finished": "2026-12-06T06:00:00+00:00",
                "predictions": None} for model in ("gru", "lstm") for seed in (0, 1)]
    for r in records:
        r["config"]["paths"] = {"output_root": str(root)}
    write_records(root / "sweep", records)
    return records


def test_export_puts_a_finished_sweep_into_mlflow_once_without_retraining(tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    from seqbench.export import main
    _finished_sweep(tmp_path)
    main([str(tmp_path / "sweep"), "--to", "mlflow"])
    out = capsys.readouterr().out
    uri = f"sqlite:///{tmp_path / 'sweep' / 'mlflow.db'}"   # in the first folder given, never where a record says
    assert f"4 runs to MLflow {uri}, experiment seqbench: 4 logged; nothing trained" in out
    assert f"mlflow ui --backend-store-uri {uri}" in out
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("seqbench").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["gru_trec_s0", "gru_trec_s1", "lstm_trec_s0", "lstm_trec_s1"]
    run = next(r for r in runs if r.info.run_name == "gru_trec_s1")
    assert run.info.status == "FINISHED" and run.data.tags["variant"] == "gru" and run.data.params["seed"] == "1"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "val/acc")] == [0.5, 0.7]   # the curve
    assert run.data.metrics["hparams/test_acc"] == 0.85
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["run_record.json"]
    assert not list(tmp_path.glob("mlruns-artifacts/**/record.json"))   # never read as a run of its own
    main([str(tmp_path / "sweep"), "--to", "mlflow"])
    assert "4 already there" in capsys.readouterr().out   # exported twice, logged once


def test_export_to_tensorboard_names_runs_by_variant_data_and_seed(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from seqbench.export import main
    _finished_sweep(tmp_path)
    main([str(tmp_path / "sweep"), "--to", "tensorboard", "--logdir", str(tmp_path / "tb")])
    assert "4 written" in capsys.readouterr().out   # no events of their own left: written from the records
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["gru_trec_s0", "gru_trec_s1", "lstm_trec_s0",
                                                                  "lstm_trec_s1"]
    events = EventAccumulator(str(tmp_path / "tb" / "gru_trec_s0")).Reload()
    assert [(e.step, e.value) for e in events.Scalars("val/acc")] == [(0, 0.5), (1, pytest.approx(0.7))]


def test_export_to_wandb_without_the_package_is_one_line(tmp_path, capsys, monkeypatch):
    import builtins

    from seqbench.export import main
    _finished_sweep(tmp_path)
    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "wandb" else real(name, *a, **k))
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "sweep"), "--to", "wandb"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == ("error: --to wandb needs the wandb package: pip install "
                                               "'seqbench[wandb]' (or pip install wandb); or export to mlflow or "
                                               "tensorboard")


def test_a_sweeps_tensorboard_folder_covers_the_runs_it_reused(tmp_path):
    from seqbench.export import reused_into_sweep
    from seqbench.record import write_json_atomic
    original = tmp_path / "old" / "tensorboard" / "gru_trec_s0"
    original.mkdir(parents=True)
    (original / "events.out.tfevents.1.vm.1.0").write_bytes(b"logged live")
    reused = {**record("gru", 0, 0.8), "run_key": "k", "tensorboard": str(original)}
    write_json_atomic(tmp_path / "old" / "0" / "record.json", reused)
    write_json_atomic(tmp_path / "new" / "0_gru_trec_s0" / "record.json",
                      {**reused, "reused_from": str(tmp_path / "old" / "0" / "record.json")})
    write_json_atomic(tmp_path / "new" / "1_gru_trec_s1" / "record.json", {**record("gru", 1, 0.8), "run_key": "j"})
    assert reused_into_sweep(tmp_path / "new") == 1   # the run trained here has its own events already
    copied = tmp_path / "new" / "tensorboard" / "gru_trec_s0" / "events.out.tfevents.1.vm.1.0"
    assert copied.read_bytes() == b"logged live" and reused_into_sweep(tmp_path / "new") == 0


def _own_data_runs(compose_config, tmp_path, seeds=(0, 1)):
    """A text_file variant trained on a TSV whose columns are 'sentence' and 'polarity', one run per
    seed in one sweep folder."""
    from seqbench.run import run
    rows = [f"{'good great fine' if i % 2 else 'bad awful dull'} film number {i}\t{'pos' if i % 2 else 'neg'}"
            for i in range(60)]
    (tmp_path / "train.tsv").write_text("sentence\tpolarity\n" + "\n".join(rows) + "\n")
    (tmp_path / "test.tsv").write_text("sentence\tpolarity\n" + "\n".join(rows[:10]) + "\n")
    for seed in seeds:
        run(compose_config("dataset=text_file", f"dataset.train={tmp_path / 'train.tsv'}",
                           f"dataset.test={tmp_path / 'test.tsv'}", "dataset.text_column=sentence",
                           "dataset.label_column=polarity", "model=gru", "model.hidden_size=8", "dataset.embedding_dim=8",
                           "trainer.max_epochs=2", "trainer.enable_progress_bar=false", f"seed={seed}",
                           f"dataset.cache_dir={tmp_path / 'cache'}"), tmp_path / "sweep" / f"{seed}_gru_s{seed}")
    (tmp_path / "new.csv").write_text("sentence\nwhat a great film\nan awful dull story\nfine and good\n")
    return tmp_path / "sweep"


def test_eval_reads_the_runs_own_columns_and_writes_each_text_beside_its_prediction(compose_config, tmp_path,
                                                                                       capsys):
    import pandas as pd

    from seqbench.evaluate import main
    sweep = _own_data_runs(compose_config, tmp_path)
    main([str(sweep / "0_gru_s0"), "--file", str(tmp_path / "new.csv"), "--out", str(tmp_path / "eval")])
    out = capsys.readouterr().out
    rows = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert list(rows["text"]) == ["what a great film", "an awful dull story", "fine and good"]
    assert set(rows["predicted_label"]) <= {"neg", "pos"} and "target" not in rows
    assert "columns: text 'sentence', label 'polarity' (the run's unless given)" in out
    assert out.count("'what a great film'") == 1 and "first 3 predictions:" in out    # printed, beside the text
    assert ("weights: gru on text_file, seed 0 (this run); its variant has 2 seeds here: --seeds all averages them, "
            "--seeds best takes seed") in out


def test_eval_of_a_variant_averages_its_seeds_or_takes_the_best_by_validation(compose_config, tmp_path):
    import pandas as pd
    import pytest as _pytest

    from seqbench.evaluate import evaluate
    from seqbench.files import read_json
    sweep = _own_data_runs(compose_config, tmp_path)
    single = [pd.read_csv(tmp_path / f"e{seed}" / "predictions.csv") for seed in (0, 1)
              if evaluate(sweep / f"{seed}_gru_s{seed}", file=str(tmp_path / "new.csv"), out=tmp_path / f"e{seed}")]
    both = evaluate(sweep / "0_gru_s0", file=str(tmp_path / "new.csv"), out=tmp_path / "all", seeds="all")
    assert both["runs"] == "gru on text_file: seeds 0, 1, class probabilities averaged"
    averaged = pd.read_csv(tmp_path / "all" / "predictions.csv")
    assert list(averaged["p_pos"]) == _pytest.approx(list((single[0]["p_pos"] + single[1]["p_pos"]) / 2))
    vals = {seed: read_json(sweep / f"{seed}_gru_s{seed}" / "record.json")["val_best"]["acc"] for seed in (0, 1)}
    best = max(vals, key=lambda seed: (vals[seed], -seed))
    chosen = evaluate(sweep, out=tmp_path / "best", seeds="best")    # the sweep folder: its one variant
    assert chosen["runs"].startswith(f"gru on text_file: seed {best}, the best of its 2 seeds by validation acc")
    assert chosen["metrics"]["acc"] >= 0 and "text" in pd.read_csv(tmp_path / "best" / "predictions.csv")


def _mailable_sweep(tmp_path):
    """Own-data runs as a sweep leaves them: absolute data paths in their records, predictions
    beside them (lstm better than gru, so the table's order is not the alphabet's)."""
    from seqbench.record import write_json_atomic
    data = tmp_path / "home" / "me" / "private data"
    records = []
    for model, scores in (("gru", (0.70, 0.72, 0.71)), ("lstm", (0.80, 0.82, 0.81))):
        for seed, score in enumerate(scores):
            r = record(model, seed, score, dataset="polarity", predictions="predictions.csv", label_names=["neg", "pos"],
                       data={"kind": "text_file", "files": {"train": str(data / "train.tsv"),
                                                            "test": str(data / "test.tsv")}},
                       started="2026-12-06T06:00:00+00:00", finished="2026-12-06T06:01:00+00:00",
                       process={"host": "vm", "pid": 1}, error=f"note {data / 'train.tsv'}")
            r["config"]["dataset"].update(train=str(data / "train.tsv"), test=str(data / "test.tsv"))
            r["config"]["paths"] = {"output_root": str(tmp_path / "out")}
            folder = tmp_path / "sweep" / f"{model}_s{seed}"
            write_json_atomic(folder / "record.json", r)
            hits = round(score * 10)
            (folder / "predictions.csv").write_text("index,target,predicted\n" + "".join(
                f"{i},{i % 2},{i % 2 if i < hits else 1 - i % 2}\n" for i in range(10)))
            records.append(r)
    return data


def test_a_report_can_be_mailed_and_rerun(tmp_path):
    data = _mailable_sweep(tmp_path)
    command = (f"seqbench -m model=gru,lstm seed=0,1,2 dataset=text_file 'dataset.train={data / 'train.tsv'}' "
               f"'dataset.test={data / 'test.tsv'}' paths.output_root={tmp_path / 'out'}")
    out = tmp_path / "sweep" / "report"
    built = build_report([tmp_path / "sweep"], out, command=command, plots=False, resamples=199,
                         ropes={"acc": 0.01})
    written = {p.name: p.read_text() for p in out.iterdir() if p.suffix in (".md", ".html", ".csv")}
    assert {"report.html", "summary.md", "runs.csv", "summary_polarity.csv", "pairs_polarity.csv"} <= set(written)
    for name, text in written.items():
        assert str(data) not in text and str(tmp_path) not in text, name   # no absolute path of the user's
    page = written["summary.md"]
    assert ("command: `seqbench -m model=gru,lstm seed=0,1,2 dataset=text_file dataset.train=train.tsv "
            "dataset.test=test.tsv paths.output_root=../../out`") in page
    assert ("this report again (from its folder; data files by name, fingerprints below): `seqbench report .. --out . "
            "--resamples 199 --rope acc=1 --no-plots --command 'seqbench -m model=gru,lstm") in page   # every flag
    assert "(test.tsv, train.tsv)" in page
    import pandas as pd
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["record_path"]) >= {"../gru_s0/record.json"} and set(runs["config.dataset.train"]) == {"train.tsv"}
    assert list(built.sections[0].confusion) == ["lstm", "gru"] == list(built.sections[0].table["model"])


def test_the_main_table_shows_its_key_columns_first_and_the_rest_behind_a_toggle(tmp_path):
    import re

    import pandas as pd
    _mailable_sweep(tmp_path)
    build_report([tmp_path / "sweep"], tmp_path / "out", plots=False, resamples=199)
    page = (tmp_path / "out" / "report.html").read_text()
    main = page[page.index('<button class="toggle"'):]
    main = main[:main.index("</table>")]
    assert "all 14 columns" in main   # acc's 5 key columns; median, val acc, f1, AUROC, params, epochs, 3 measured
    head = re.findall(r"<th( class=\"more\")?>([^<]+)</th>", main)
    assert [text for more, text in head if not more] == ["variant", "n", "test acc (%) mean ± std", "95% CI",
                                                          "vs best (points)"]
    assert [text for more, text in head if more][-3:] == ["train s/epoch†", "train tokens/s†", "peak memory (MB)†"]
    assert "process_rss_peak" not in page and "† Measured, not a property of the model" in page
    notes = (tmp_path / "out" / "summary.md").read_text()
    assert "where 6 of them ran at a time (from the records' start and end times" in notes
    assert "<em>majority class</em>" in page
    pairs = page[page.index("seeds A / B") - 900:]
    assert '<th class="more">seeds A / B</th>' in pairs and "all 12 columns" in pairs
    columns = list(pd.read_csv(tmp_path / "out" / "summary_polarity.csv").columns)
    assert columns[:7] == ["model", "n", "test_acc_mean_pct", "test_acc_std_pct", "test_acc_ci_low_pct",
                           "test_acc_ci_high_pct", "solved"]
    assert list(pd.read_csv(tmp_path / "out" / "pairs_polarity.csv").columns)[:7] == [
        "test_set", "a", "b", "difference", "low", "high", "confidence"]


def test_a_search_report_names_every_flag_of_its_command():
    import argparse
    from pathlib import Path

    from seqbench.search import search_command
    args = argparse.Namespace(overrides=["hparams_search=mine", "dataset=trec"], config_dir=["my_conf"], jobs=2,
                              out=None, report=None, default_runs=["outputs/compare", "outputs/more"],
                              compare="gru (tuned):lstm (tuned)")
    assert search_command(args) == (f"seqbench search hparams_search=mine dataset=trec --config-dir "
                                    f"{Path('my_conf').resolve()} --jobs 2 --compare 'gru (tuned):lstm (tuned)' "
                                    f"--default-runs "
                                    f"{Path('outputs/compare').resolve()} {Path('outputs/more').resolve()}")


def test_a_done_run_keeps_its_best_weights_and_eval_and_reuse_still_work(compose_config, tmp_path):
    import torch

    from seqbench.checkpoints import WEIGHTS_KEYS, disk_words, settle
    from seqbench.evaluate import evaluate
    from seqbench.run import run
    from tests.conftest import TINY
    record = run(compose_config(*TINY), tmp_path / "runs" / "a")
    folder = tmp_path / "runs" / "a" / "checkpoints"
    before = sum(p.stat().st_size for p in folder.iterdir())
    assert settle(record, "all") == 0 and (folder / "last.ckpt").is_file()          # a setting to keep more
    assert "checkpoints" in disk_words([tmp_path / "runs"])
    freed = settle(record, "best")
    assert freed > 0 and sorted(p.name for p in folder.iterdir()) == ["best.ckpt"]
    assert sum(p.stat().st_size for p in folder.iterdir()) == before - freed
    assert set(torch.load(folder / "best.ckpt", weights_only=True)) <= set(WEIGHTS_KEYS)
    again = evaluate(tmp_path / "runs" / "a", out=tmp_path / "eval")
    assert again["metrics"]["mse"] == pytest.approx(record["test"]["mse"], rel=1e-5)     # eval reads the weights
    reused = run(compose_config(*TINY), tmp_path / "runs" / "b")
    assert reused["reused_from"] == str(tmp_path / "runs" / "a" / "record.json")      # reuse reads the record
    assert settle({**record, "status": "interrupted"}, "best") == 0    # a run to resume keeps everything


def test_checkpoints_takes_best_or_all(compose_config):
    from omegaconf import OmegaConf

    from seqbench.config import ConfigError, check_config
    check_config(OmegaConf.to_container(compose_config("checkpoints=all"), resolve=True))
    with pytest.raises(ConfigError, match="checkpoints='some': valid: best"):
        check_config(OmegaConf.to_container(compose_config("checkpoints=some"), resolve=True))


def test_a_report_states_the_disk_its_runs_take(tmp_path):
    _two_models(tmp_path / "runs")
    (tmp_path / "runs" / "run0" / "checkpoints").mkdir()
    (tmp_path / "runs" / "run0" / "checkpoints" / "best.ckpt").write_bytes(b"0" * 40_000)
    build_report([tmp_path / "runs"], tmp_path / "runs" / "report", plots=False, resamples=199)
    page = (tmp_path / "runs" / "report" / "summary.md").read_text()
    line = next(line for line in page.splitlines() if line.startswith("- disk: "))
    assert "kB under the report's folders, 40.0 kB of it checkpoints (checkpoints=best, the default" in line
