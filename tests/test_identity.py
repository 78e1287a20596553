"""One identity from run to verdict: a run's folder, record and checkpoints belong to its run key;
reports group by data identity and label variants uniquely; verdicts read predictions beside their
records; each break found in review is reproduced here."""
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from seqbench.config import config_hash
from seqbench.record import write_json_atomic
from seqbench.report import build_report
from seqbench.results import load_records, long_table, variant_labels
from seqbench.run import interpolation_sources, run
from tests.conftest import TINY, import_or_skip


# ------------------------------------------------------------------- 1. one folder, one run
def test_a_fresh_run_never_writes_into_another_runs_folder(compose_config, tmp_path):
    """Two sweeps into one fixed folder, the second with another lr: the second run goes beside
    the first, and both records, predictions and checkpoints survive."""
    folder = tmp_path / "compare" / "0_lstm_sincos_s0"
    first = run(compose_config(*TINY, "optimizer.lr=0.003"), folder, in_sweep=True)
    before = (folder / "record.json").read_text(), (folder / "predictions.csv").read_text()
    second = run(compose_config(*TINY, "optimizer.lr=0.01"), folder, in_sweep=True)
    assert (folder / "record.json").read_text(), (folder / "predictions.csv").read_text() == before
    assert second["output_dir"] == str(folder.with_name(f"{folder.name}-{second['run_key'][:8]}"))
    assert json.loads((folder / "record.json").read_text())["run_key"] == first["run_key"]
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert len(load_records([tmp_path / "compare"])) == 2   # both runs reported


def test_checkpoints_carry_their_run_key_and_a_resume_refuses_another_runs(compose_config, tmp_path, caplog):
    """A relaunch must never resume from a checkpoint written for another run: the checkpoint
    carries its run key, and one that does not match is set aside with one line."""
    cfg = compose_config(*TINY)
    done = run(cfg, tmp_path / "a")
    checkpoint = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["seqbench"]["run_key"] == done["run_key"]
    # The same run, "killed": its record says running; its last.ckpt is replaced by another run's.
    other = run(compose_config(*TINY, "optimizer.lr=0.01"), tmp_path / "other")
    record = json.loads((tmp_path / "a" / "record.json").read_text())
    write_json_atomic(tmp_path / "a" / "record.json", {**record, "status": "running", "epochs": 1})
    shutil.copyfile(tmp_path / "other" / "checkpoints" / "last.ckpt", tmp_path / "a" / "checkpoints" / "last.ckpt")
    again = run(cfg, tmp_path / "b")
    assert again["plan"]["decision"] == "fresh" and again["status"] == "done"
    assert f"was written for run {other['run_key']}, not this run {done['run_key']}" in caplog.text
    assert list((tmp_path / "a" / "checkpoints").glob("last.ckpt.set-aside-*"))


# ----------------------------------------------------------------- 2. data identity in reports
def _csv(path, rows):
    path.write_text("text,label\n" + "\n".join(f"{text},{label}" for text, label in rows) + "\n")
    return path


def test_runs_on_different_files_are_never_merged_nor_dropped(compose_config, tmp_path):
    """A gru on one CSV and a gru on another were one row of "2 seeds"; the same seed on two test
    files kept one and dropped the other. Now: two data sets, both runs, and the name you give."""
    train = _csv(tmp_path / "train.csv", [(f"good film {i}", "pos") if i % 2 else (f"bad film {i}", "neg")
                                          for i in range(60)])
    tests = [_csv(tmp_path / f"test{k}.csv", [("good movie", "pos"), ("bad movie", "neg")] * (k + 2))
             for k in range(2)]
    common = ["dataset=text_file", "model=gru", "model.hidden_size=8", "model.embedding_dim=8",
              "trainer.max_epochs=2", "trainer.enable_progress_bar=false", f"dataset.train={train}",
              f"dataset.cache_dir={tmp_path / 'cache'}"]
    for k, test in enumerate(tests):
        run(compose_config(*common, f"dataset.test={test}"), tmp_path / "runs" / f"r{k}")
    records = load_records([tmp_path / "runs"])
    assert len(records) == 2 and len({r["data_fingerprint"] for r in records}) == 2
    frame = long_table(records)
    assert frame["data"].nunique() == 2 and all("test test" in label for label in frame["data"])
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    assert len(list((tmp_path / "out").glob("summary_text_file-*.csv"))) == 2
    named = run(compose_config(*common, f"dataset.test={tests[0]}", "dataset.name=my_reviews"), tmp_path / "named")
    assert named["dataset"] == "my_reviews" and named["data"]["kind"] == "text_file"
    assert named["data"]["files"]["test"] == str(tests[0].resolve())


# --------------------------------------------------------------------------------- 3. labels
def test_labels_are_unique_over_a_three_axis_sweep_and_fold_interpolated_copies(compose_config):
    records = []
    for hidden in (8, 16):
        for lr in (0.003, 0.01):
            for dropout in (0.0, 0.2):
                cfg = compose_config(*TINY, f"model.hidden_size={hidden}", f"optimizer.lr={lr}",
                                     f"dataset.dropout={dropout}")
                config = OmegaConf.to_container(cfg, resolve=True)
                records.append({"model": "lstm", "config_hash": config_hash(config), "config": config,
                                "interpolations": interpolation_sources(cfg)})
    labels = variant_labels(records)
    assert len(set(labels.full.values())) == 8 and len(set(labels.short.values())) == 8
    for record in records:
        config = record["config"]
        full = labels.full[record["config_hash"]]
        assert f"model.hidden_size={config['model']['hidden_size']}" in full
        assert f"optimizer.lr={config['optimizer']['lr']:.3g}" in full
        # model.dropout is read from dataset.dropout: one key, the one that was set.
        assert f"dataset.dropout={config['dataset']['dropout']:.3g}" in full and "model.dropout" not in full
    assert labels.legend() == [(labels.short[h], labels.full[h]) for h in labels.short
                               if labels.short[h] != labels.full[h]]


# ------------------------------------------------------------------- 4. predictions beside records
def _sweep(root, errors, seeds=5, rng=None):
    rng = rng or np.random.default_rng(0)
    target = rng.uniform(0, 2, 300)
    for model, error in errors.items():
        for seed in range(seeds):
            folder = root / f"{model}_s{seed}"
            folder.mkdir(parents=True)
            pd.DataFrame({"index": range(300), "target": target,
                          "prediction": target + rng.normal(0, error ** 0.5, 300)}).to_csv(folder / "predictions.csv",
                                                                                         index=False)
            write_json_atomic(folder / "record.json", {
                "status": "done", "model": model, "dataset": "adding", "seed": seed, "task": "last_step_regression",
                "config_hash": model, "data_fingerprint": "generated", "predictions": "predictions.csv",
                "output_dir": str(folder), "test": {"mse": error * (1 + 0.01 * seed), "mae": 0.1},
                "val_best": {"mse": error},
                "best_epoch": 1, "epochs": 2, "config": {"model": {"name": model}, "dataset": {"name": "adding"}}})


def test_moving_a_sweep_keeps_its_verdict_and_a_stale_folder_is_never_read(tmp_path):
    _sweep(tmp_path / "old", {"lstm": 0.01, "rnn": 0.16})
    shutil.move(tmp_path / "old", tmp_path / "new")
    _sweep(tmp_path / "old", {"lstm": 0.16, "rnn": 0.01}, rng=np.random.default_rng(1))  # a stale folder at the old path
    build_report([tmp_path / "new"], tmp_path / "out", plots=False, resamples=499)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "**adding** (5 seeds each): best: lstm; behind: rnn ×" in text   # from the moved records, not from old/
    per_example = text.split("### adding: per example")[1]
    assert "| lstm | rnn | -1.5" in per_example   # its predictions read from beside them too


# ------------------------------------------------------------------------ 5. eval without labels
def test_eval_of_a_file_without_labels_writes_no_target(compose_config, tmp_path, monkeypatch):
    from seqbench.evaluate import evaluate
    from tests.conftest import tiny_text_source, use_text_source
    use_text_source(monkeypatch, "trec", tiny_text_source(tmp_path))
    run(compose_config("dataset=trec", "model=gru", "model.hidden_size=8", "model.embedding_dim=8",
                       "trainer.max_epochs=2", f"dataset.cache_dir={tmp_path / 'cache'}"), tmp_path / "run")
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("text\nlovely film\nawful film\n")
    summary = evaluate(tmp_path / "run", file=str(unlabelled), out=tmp_path / "eval")
    rows = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert summary["metrics"] == {} and "target" not in rows and "target_label" not in rows
    assert list(rows.columns[:2]) == ["index", "predicted"] and len(rows) == 2


# ------------------------------------------------------------------------------- 6. copy task
def test_the_copy_task_compares_what_picks_its_best_epoch_and_names_no_best_when_nothing_is_solved(tmp_path):
    from seqbench.tasks import TASKS
    copy = TASKS["per_step_classification"]
    assert copy.metric == copy.example_score == "ce"   # selected, ranked and paired on one quantity
    rng = np.random.default_rng(2)
    for model, ce in (("lstm", 0.30), ("rnn", 0.36)):
        for seed in range(5):
            folder = tmp_path / f"{model}{seed}"
            folder.mkdir()
            pd.DataFrame({"index": range(200), "ce": ce + rng.normal(0, 0.01, 200),
                          "recall_accuracy": rng.uniform(0.1, 0.2, 200)}).to_csv(folder / "predictions.csv",
                                                                                index=False)
            write_json_atomic(folder / "record.json", {
                "status": "done", "model": model, "dataset": "copy", "seed": seed, "task": "per_step_classification",
                "config_hash": model, "data_fingerprint": "generated", "predictions": "predictions.csv",
                "test": {"ce": ce, "acc": 0.15}, "val_best": {"ce": ce}, "best_epoch": 1, "epochs": 2,
                "config": {"model": {"name": model}, "dataset": {"name": "copy", "length": 100,
                                                                "solved_above": 0.99}}})
    build_report([tmp_path], tmp_path / "out", plots=False, resamples=499)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "**copy** (5 seeds each): no variant solved the task in any seed; not ranked: lstm, rnn." in text


# -------------------------------------------------------------------------------- 7. MLflow
def test_mlflow_takes_a_diverged_run_and_keeps_artifacts_out_of_the_working_folder(compose_config, tmp_path,
                                                                                  monkeypatch):
    import_or_skip("mlflow", reason="pip install -e '.[mlflow]' to test logger=mlflow")
    from mlflow.tracking import MlflowClient
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record = run(compose_config(*TINY, "logger=mlflow", f"logger.tracking_uri={uri}", "optimizer.lr=1e30",
                                "trainer.gradient_clip_val=0"), tmp_path / "run")
    assert record["status"] == "diverged"
    client = MlflowClient(tracking_uri=uri)
    (logged,) = client.search_runs([client.get_experiment_by_name("seqbench").experiment_id])
    assert logged.info.status == "FAILED"
    assert not list(work.iterdir())   # no ./mlruns in the folder the command ran from


# ------------------------------------------------------------------------ 8. multi-node DDP
def test_a_process_of_a_second_node_is_never_rank_zero_before_the_trainer_exists(monkeypatch):
    from seqbench.runtime import process_rank
    for key in ("RANK", "SLURM_PROCID", "SLURM_NTASKS", "JSM_NAMESPACE_RANK", "NODE_RANK", "GROUP_RANK",
                "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert process_rank() == 0
    monkeypatch.setenv("NODE_RANK", "1")           # Lightning's launcher, second node, its first process
    assert process_rank() != 0
    monkeypatch.setenv("NODE_RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert process_rank() == 1
    monkeypatch.setenv("SLURM_PROCID", "0")         # one SLURM task that starts its node's processes
    assert process_rank() == 1
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert process_rank() == 3


def test_other_nodes_take_the_plan_rank_zero_published_for_this_launch(tmp_path, monkeypatch):
    from seqbench.plan import Fresh, publish_plan, read_published_plan
    publish_plan(tmp_path, "key1", Fresh(tmp_path / "run", "fresh: reasons"), launch="job-7")
    decision = read_published_plan(tmp_path, "key1", "job-7", timeout=2)
    assert isinstance(decision, Fresh) and decision.output_dir == tmp_path / "run"
    with pytest.raises(TimeoutError, match="shares"):   # an earlier launch's plan is never taken
        read_published_plan(tmp_path, "key1", "job-8", timeout=1.5)


# ------------------------------------------------------------------------- found in review
def test_two_runs_that_both_saw_a_folder_free_never_share_it(tmp_path):
    """The folder is taken with an exclusive owner file: the second of two runs that both found it
    free (a sweep's job folder named twice, two jobs at once) goes beside it."""
    from seqbench.plan import owned_folder
    folder = tmp_path / "job"
    assert owned_folder(folder, "key-a") == folder
    assert owned_folder(folder, "key-b") == tmp_path / "job-key-b"
    assert owned_folder(folder, "key-a") == folder            # the owner gets its folder again
    assert (folder / ".run_key").read_text() == "key-a"


def test_a_copy_whose_original_is_gone_is_reused_with_its_predictions(compose_config, tmp_path):
    cfg = compose_config(*TINY)
    first = run(cfg, tmp_path / "runs" / "a")
    copy = run(cfg, tmp_path / "sweep" / "0_lstm", in_sweep=True)
    assert copy["reused_from"] == str(tmp_path / "runs" / "a" / "record.json")
    shutil.rmtree(tmp_path / "runs")                         # the original folder cleaned away
    again = run(cfg, tmp_path / "sweep2" / "0_lstm", in_sweep=True)
    assert again["finished"] == first["finished"] and again["reused_from"] == str(tmp_path / "sweep" / "0_lstm" /
                                                                                   "record.json")
    assert (tmp_path / "sweep2" / "0_lstm" / "predictions.csv").is_file()


def tuned_or_default_run(folder, name: str, seed: int, config_hash: str, target, correct, tuned: dict | None,
                         search: dict | None = None):
    """A finished TREC-like run of ``name`` (tuned where ``tuned`` says how) with its predictions;
    ``search``: the search settings a retrained run's config carries (``hparams_search``)."""
    folder.mkdir()
    pd.DataFrame({"index": range(len(target)), "target": target, "predicted": np.where(correct, target, 1 - target)}
                 ).to_csv(folder / "predictions.csv", index=False)
    write_json_atomic(folder / "record.json", {
        "status": "done", "model": name, "dataset": "trec", "seed": seed, "task": "classification",
        "config_hash": config_hash, "data_fingerprint": "d", "predictions": "predictions.csv",
        "test": {"acc": float(correct.mean()), "f1": 0.5}, "val_best": {"acc": 0.8}, "best_epoch": 1,
        "epochs": 2, **({"tuned": tuned} if tuned else {}),
        "config": {"model": {"name": name, "hidden_size": 8 if tuned is None else 16}, "dataset": {"name": "trec"},
                   **({"hparams_search": search} if search else {})}})


def test_tuned_minus_default_has_the_sign_of_the_gain(tmp_path):
    rng = np.random.default_rng(3)
    target = rng.integers(0, 2, 400)
    for name, accuracy, tuned in (("gru", 0.70, None), ("gru", 0.85, {"study": "s", "trials": 4, "params": {}})):
        for seed in range(5):
            tuned_or_default_run(tmp_path / f"{name}{accuracy}{seed}", name, seed, f"h{accuracy}", target,
                                 rng.random(400) < accuracy, tuned)
    build_report([tmp_path], tmp_path / "out", plots=False, resamples=499)
    row = next(line for line in (tmp_path / "out" / "summary.md").read_text().splitlines()
               if line.startswith("| gru |") and "yes" in line)
    gain = row.split("|")[4].strip()
    assert gain.startswith("+1") and float(gain.split()[0]) > 10   # about +15 points, not -15


def test_tuned_minus_default_intervals_hold_together_over_the_variants_tuned(tmp_path):
    """The family of 'tuned - default' is the variants that have both: with two, each interval is
    at 97.5% (Bonferroni) and each p Holm-adjusted over the two; with one, at 95%."""
    from seqbench.report import holm_adjusted
    rng = np.random.default_rng(5)
    target = rng.integers(0, 2, 400)
    for name, accuracy, tuned in (("gru", 0.70, None), ("gru", 0.80, {"study": "s", "trials": 4, "params": {}}),
                                  ("lstm", 0.70, None), ("lstm", 0.72, {"study": "t", "trials": 4, "params": {}})):
        for seed in range(4):
            tuned_or_default_run(tmp_path / f"{name}{accuracy}{seed}", name, seed, f"{name}{accuracy}", target,
                                 rng.random(400) < accuracy + rng.normal(0, 0.01), tuned)
    build_report([tmp_path], tmp_path / "out", plots=False, statistics=False)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "| tuned − default [97.5% CI] | p (Holm over 2) |" in text
    assert "each interval at 1 - 0.05/2 (Bonferroni, so the 2 hold together at 95%)" in text
    adjusted = holm_adjusted([0.01, float("nan"), 0.04])   # a variant with no default has no p
    assert adjusted[::2] == [0.02, 0.04] and math.isnan(adjusted[1])
