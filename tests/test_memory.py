"""Long memory: the adding and copy tasks, IRNN and the forget-gate bias, padding-safe heads,
and the memory-length report."""
import math

import numpy as np
import pytest
import torch

from seqbench.datasets.adding import ADDING_BASELINE_MSE, make_adding
from seqbench.datasets.copy import copy_baseline_ce, copy_vocabulary, make_copy
from seqbench.models.classic import make_layer
from seqbench.reference.numpy_rnn import NumpyLSTM, NumpyRNN, gradient_check
from seqbench.report import build_report
from seqbench.run import run
from tests.conftest import TINY, datamodule_of


def test_adding_problem_has_two_markers_one_per_half_and_their_sum_as_target():
    inputs, targets = make_adding(500, 50, seed=3)
    numbers, markers = inputs[..., 0], inputs[..., 1]
    assert inputs.shape == (500, 50, 2) and targets.shape == (500,)
    assert torch.all(markers.sum(1) == 2)
    assert torch.all(markers[:, :25].sum(1) == 1) and torch.all(markers[:, 25:].sum(1) == 1)
    assert torch.allclose((numbers * markers).sum(1), targets)
    assert torch.all((numbers >= 0) & (numbers <= 1))


def test_adding_baseline_is_the_mse_of_always_answering_one():
    _, targets = make_adding(200_000, 10, seed=0)
    assert float(((targets - 1.0) ** 2).mean()) == pytest.approx(ADDING_BASELINE_MSE, rel=0.01)
    assert ADDING_BASELINE_MSE == pytest.approx(0.1667, abs=1e-4)


def test_copy_task_targets_are_the_prefix_after_the_delimiter():
    length, symbols, alphabet = 30, 10, 8
    inputs, targets, recall = make_copy(64, length, seed=1, symbols=symbols, alphabet=alphabet)
    ids = copy_vocabulary(alphabet)
    assert inputs.shape == targets.shape == recall.shape == (64, length + 2 * symbols)
    remembered = inputs[:, :symbols] - ids["first_symbol"]
    assert torch.all((remembered >= 0) & (remembered < alphabet))
    assert torch.all(inputs[:, symbols + length - 1] == ids["delimiter"])
    assert torch.all(targets[:, -symbols:] == remembered + 1)  # classes 1..alphabet, 0 = blank
    assert torch.all(targets[:, :-symbols] == 0)
    assert torch.all(recall[:, -symbols:]) and not torch.any(recall[:, :-symbols])


def test_copy_baseline_is_the_cross_entropy_of_the_memoryless_strategy():
    length, symbols, alphabet = 40, 10, 8
    _, targets, recall = make_copy(32, length, seed=2, symbols=symbols, alphabet=alphabet)
    # Blanks predicted for certain; each recalled symbol a uniform guess over the alphabet.
    probabilities = torch.zeros(*targets.shape, alphabet + 1)
    probabilities[..., 0] = 1.0
    probabilities[recall] = torch.tensor([0.0] + [1.0 / alphabet] * alphabet)
    chosen = probabilities.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert float(-chosen.log().mean()) == pytest.approx(copy_baseline_ce(length, symbols, alphabet))
    assert copy_baseline_ce(100) == pytest.approx(10 * math.log(8) / 120)


def test_memory_test_sets_are_fixed_by_their_own_seed_and_training_data_is_fresh_each_epoch(compose_config):
    sets = {}
    for seed in (0, 1):
        module = datamodule_of(compose_config("dataset=adding", "dataset.length=20", "dataset.n_train=40",
                                                 f"seed={seed}"))
        module.setup()
        sets[seed] = module
    assert torch.equal(sets[0].sets["test"].tensors["inputs"], sets[1].sets["test"].tensors["inputs"])
    first = sets[0].sets["train"].tensors["inputs"].clone()
    sets[0]._make_train(1)
    assert not torch.equal(first, sets[0].sets["train"].tensors["inputs"])  # epoch 1 draws new sequences
    sets[0]._make_train(0)
    assert torch.equal(first, sets[0].sets["train"].tensors["inputs"])  # ...reproducibly


@pytest.mark.parametrize("dataset,task,metric", [("adding", "last_step_regression", "mse"),
                                                  ("copy", "per_step_classification", "ce")])
def test_each_memory_task_runs_end_to_end(compose_config, tmp_path, dataset, task, metric):
    small = [o for o in TINY if not o.startswith("dataset.")]
    record = run(compose_config(*small, f"dataset={dataset}", "dataset.length=12", "dataset.n_train=64",
                                "dataset.n_val=32", "dataset.n_test=32", "dataset.batch_size=16"), tmp_path)
    assert record["status"] == "done" and record["task"] == task and record["metric"] == metric
    assert metric in record["test"] and metric in record["baselines"]
    assert record["examples"] == {"train": 64, "val": 32, "test": 32}


@pytest.mark.parametrize("threshold,solved", [(10.0, True), (0.0, False)])
def test_a_memory_run_stops_at_its_first_validation_solved_with_the_margin_or_at_the_cap(compose_config, tmp_path, threshold,
                                                                         solved):
    """trainer.stop_when_solved: a threshold every validation meets (with its margin too) stops the
    run after its first epoch and records the update; one no run can meet lets it train to the cap."""
    small = [o for o in TINY if not o.startswith(("dataset.", "trainer.max_epochs"))]
    record = run(compose_config(*small, "dataset=adding", "dataset.length=12", "dataset.n_train=64",
                                "dataset.n_val=32", "dataset.n_test=32", "dataset.batch_size=16",
                                f"dataset.solved_below={threshold}", "trainer.max_epochs=3",
                                "trainer.stop_when_solved=true"), tmp_path)
    assert record["status"] == "done" and record["updates"] == record["epochs"] * 4
    assert record["epochs"] == (1 if solved else 3)
    assert record["solved_on_validation_at_update"] == (4 if solved else None)
    assert record["stops_when_validation_meets"] == threshold / 2


@pytest.mark.parametrize("task,threshold,values,solved_at,stops_at", [
    ("last_step_regression", 0.01, [0.2, 0.0099, 0.006, 0.0049, 0.003], 2, 4),   # adding: MSE below
    ("per_step_classification", 0.99, [0.5, 0.99, 0.994, 0.995], 2, 4),         # copy: recall accuracy at least
    ("last_step_regression", 0.01, [0.2, 0.009, 0.0098, 0.011], 2, None),        # crossed, never with the margin
])
def test_a_solved_run_trains_on_until_validation_meets_the_threshold_with_half_its_error_allowance(
        task, threshold, values, solved_at, stops_at):
    """The updates to solve are the first validation that meets the threshold; the run stops only
    at the first that meets it with a margin (half the allowed error), so that the test set, judged
    at the threshold, does not see a model picked on validation's luckiest draw at the line."""
    from types import SimpleNamespace
    from seqbench.tasks import TASKS
    from seqbench.training import StopWhenSolved
    kind = TASKS[task]
    callback = StopWhenSolved(kind, threshold)
    trainer = SimpleNamespace(state=SimpleNamespace(fn="fit"), sanity_checking=False, should_stop=False,
                              global_step=0, callback_metrics={})
    stopped = None
    for epoch, value in enumerate(values, start=1):
        trainer.global_step, trainer.callback_metrics = epoch, {f"val/{kind.solved_metric}": torch.tensor(value)}
        callback.on_validation_end(trainer, None)
        if trainer.should_stop and stopped is None:
            stopped = epoch
        if epoch == solved_at:  # killed and resumed between the crossing and the stop: the update is kept
            resumed = StopWhenSolved(kind, threshold)
            resumed.load_state_dict(callback.state_dict())
            callback = resumed
    assert callback.solved_at_update == solved_at and stopped == stops_at


def test_stop_when_solved_is_in_the_config_hash_only_when_on(compose_config):
    from seqbench.config import config_hash
    from omegaconf import OmegaConf

    def hashed(*overrides):
        return config_hash(OmegaConf.to_container(compose_config("dataset=adding", *overrides), resolve=True))
    assert hashed() == hashed("trainer.stop_when_solved=false") != hashed("trainer.stop_when_solved=true")


def test_stop_when_solved_on_a_data_set_without_a_threshold_is_one_line(compose_config):
    from seqbench.config import ConfigError, check_config
    from omegaconf import OmegaConf
    config = OmegaConf.to_container(compose_config("dataset=sincos", "trainer.stop_when_solved=true"), resolve=True)
    with pytest.raises(ConfigError, match="has no 'solved' threshold"):
        check_config({k: v for k, v in config.items() if k != "hydra"})


@pytest.mark.parametrize("impl", ["native", "scratch"])
def test_irnn_and_forget_bias_initialise_as_published_in_both_implementations(impl):
    irnn = make_layer("rnn", impl, 2, 6, nonlinearity="relu", init="identity")
    assert torch.equal(irnn.weight_hh_l0, torch.eye(6))
    assert torch.all(irnn.bias_ih_l0 == 0) and torch.all(irnn.bias_hh_l0 == 0)
    lstm = make_layer("lstm", impl, 2, 6, forget_bias=1.0)
    assert torch.all(lstm.bias_ih_l0[6:12] == 1.0) and torch.all(lstm.bias_hh_l0[6:12] == 0.0)
    with pytest.raises(ValueError, match="applies to the plain rnn only"):
        make_layer("lstm", impl, 2, 6, nonlinearity="relu")
    with pytest.raises(ValueError, match="applies to lstm only"):
        make_layer("gru", impl, 2, 6, forget_bias=1.0)


def test_relu_rnn_gives_the_same_outputs_natively_from_scratch_and_in_numpy():
    torch.manual_seed(1)
    native = make_layer("rnn", "native", 3, 5, nonlinearity="relu").double()
    scratch = make_layer("rnn", "scratch", 3, 5, nonlinearity="relu").double()
    scratch.load_state_dict(native.state_dict())
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    torch.testing.assert_close(scratch(x)[0], native(x)[0])
    reference = NumpyRNN(3, 5, nonlinearity="relu").load_torch(native)
    np.testing.assert_allclose(reference.forward(x.numpy())[0], native(x)[0].detach().numpy(), atol=1e-10)


def test_numpy_reference_irnn_and_forget_bias_with_gradient_check():
    irnn = NumpyRNN(3, 4, init="identity", nonlinearity="relu", seed=2)
    assert np.array_equal(irnn.params["weight_hh"], np.eye(4)) and not irnn.params["bias_ih"].any()
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    assert gradient_check(irnn, x) < 1e-6
    lstm = NumpyLSTM(3, 4, forget_bias=1.0, seed=2)
    assert np.all(lstm.params["bias_ih"][4:8] == 1.0) and np.all(lstm.params["bias_hh"][4:8] == 0.0)
    assert gradient_check(lstm, x) < 1e-6


def test_the_report_draws_metric_against_length_and_the_longest_length_solved(tmp_path):
    from seqbench.record import write_json_atomic
    base = {"status": "done", "dataset": "adding", "task": "last_step_regression", "baselines": {"mse": 1 / 6},
            "best_epoch": 1, "epochs": 2, "epoch_seconds": [1.0], "params": 10, "train_tokens_per_s": 1.0,
            "history": [{"epoch": 0, "val/mse": 0.1}], "val_best": {"mse": 0.1}}
    results = {("lstm", 50): [0.001, 0.002, 0.003], ("lstm", 100): [0.004, 0.05, 0.002],
               ("rnn", 50): [0.16, 0.17, 0.165], ("rnn", 100): [0.166, 0.168, 0.167]}
    solved_at = {("lstm", 50): [300, 700, 500], ("lstm", 100): [400, None, 900]}   # None: the cap, 2,000
    for (model, length), values in results.items():
        for seed, mse in enumerate(values):
            at = solved_at.get((model, length), [None] * 3)[seed]
            base.update(updates=at or 2000, solved_on_validation_at_update=at)
            config = {"model": {"name": model}, "dataset": {"name": "adding", "length": length, "solved_below": 0.01,
                                                            "n_train": 100, "fresh_train": True, "batch_size": 50},
                      "trainer": {"max_epochs": 2, "patience": 5}}
            write_json_atomic(tmp_path / "runs" / f"{model}{length}s{seed}" / "record.json",
                              {**base, "model": model, "seed": seed, "config": config,
                               "config_hash": f"{model}-{length}", "test": {"mse": mse, "mae": 0.1}})
    build_report([tmp_path / "runs"], tmp_path / "out", statistics=False)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "### adding: memory length" in text and "adding_memory_length.png" in text
    row = next(line for line in text.splitlines() if line.startswith("| lstm |"))
    from statsmodels.stats.proportion import proportion_confint
    low, high = proportion_confint(2, 3, method="wilson")
    # Solved at T = 100 by two of its three seeds, with the Wilson interval of that rate.
    assert row.endswith(f"| 100 (2 of 3; [{100 * low:.0f}%, {100 * high:.0f}%]) |")
    assert "(3/3 solved)" in row and "(2/3 solved)" in row
    rnn = next(line for line in text.splitlines() if line.startswith("| rnn |"))
    assert rnn.endswith("| none |")
    assert "T = 50: 1.67e-01" in text   # the baseline, stated
    # Median updates to solve, the unsolved censored (Kaplan-Meier): lstm at T = 100 solved at 400
    # and 900, seed 1 not by 2,000: S(400) = 2/3, S(900) = 1/3, so 900 (not 650 from the solved only).
    updates = [line for line in text.splitlines() if line.startswith(("| lstm |", "| rnn |"))][2:]
    assert updates == ["| lstm | 500 (3 of 3 solved) | 900 (2 of 3 solved) |",
                       "| rnn | > 2,000 (0 of 3 solved) | > 2,000 (0 of 3 solved) |"]
    assert "2 epochs, no early stopping; 100 fresh training sequences per epoch (4 optimiser steps per run)" in text


def test_copy_s_memory_length_section_gives_the_recall_accuracy_by_length(tmp_path):
    """Copy is tested on its cross-entropy and solved on its recall accuracy; the section also
    gives that accuracy by T (mean, seeds' range), which the solved line hides."""
    from seqbench.record import write_json_atomic
    accuracy = {("lru", 50): [0.999, 0.95, 0.9], ("lru", 100): [0.6, 0.62, 0.64], ("lstm", 50): [0.13, 0.14, 0.15]}
    for (model, length), values in accuracy.items():
        for seed, acc in enumerate(values):
            config = {"model": {"name": model}, "dataset": {"name": "copy", "length": length, "solved_above": 0.99},
                      "trainer": {"max_epochs": 2, "patience": 5}}
            write_json_atomic(tmp_path / "runs" / f"{model}{length}s{seed}" / "record.json", {
                "status": "done", "dataset": "copy", "task": "per_step_classification", "model": model, "seed": seed,
                "config": config, "config_hash": f"{model}-{length}", "best_epoch": 1, "epochs": 2,
                "history": [{"epoch": 0, "val/ce": 0.1}], "val_best": {"ce": 0.1},
                "test": {"ce": 0.2 * (1 - acc), "acc": acc}})
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, statistics=False)
    text = (tmp_path / "out" / "summary.md").read_text()
    section = text[text.index("### copy: memory length"):]
    assert "Recall accuracy (%) on the test set against T" in section
    assert "| lru | 95.0 [90.0-99.9] (n = 3) | 62.0 [60.0-64.0] (n = 3) |" in section
    assert "| lstm | 14.0 [13.0-15.0] (n = 3) | – |" in section


def test_runs_on_different_lengths_are_never_paired_and_each_length_gets_its_verdict(tmp_path):
    """Paired tests need the same test examples: a memory task at T = 50 and at T = 100 has two
    test sets, so the report compares variants within each length, never across."""
    import pandas as pd
    from seqbench.record import write_json_atomic
    rng = np.random.default_rng(0)
    base = {"status": "done", "dataset": "adding", "task": "last_step_regression", "baselines": {"mse": 1 / 6},
            "best_epoch": 1, "epochs": 2, "epoch_seconds": [1.0], "params": 10, "train_tokens_per_s": 1.0,
            "history": [{"epoch": 0, "val/mse": 0.1}], "val_best": {"mse": 0.1}, "data_fingerprint": "generated",
            "predictions": "predictions.csv"}
    for model, error in (("lstm", 0.01), ("rnn", 0.16)):
        for length in (50, 100):
            for seed in range(5):
                folder = tmp_path / "runs" / f"{model}{length}s{seed}"
                target = rng.uniform(0, 2, 200)
                pd.DataFrame({"index": range(200), "target": target,
                              "prediction": target + rng.normal(0, error ** 0.5, 200)}).to_csv(
                    folder / "predictions.csv" if folder.mkdir(parents=True) is None else None, index=False)
                config = {"model": {"name": model}, "dataset": {"name": "adding", "length": length},
                          "trainer": {"max_epochs": 2}}
                write_json_atomic(folder / "record.json",
                                  {**base, "model": model, "seed": seed, "config": config, "output_dir": str(folder),
                                   "config_hash": f"{model}-{length}",
                                   "test": {"mse": error * (1 + 0.01 * seed), "mae": 0.1}})
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "**adding (length=50)** (5 seeds each): best: lstm (dataset.length=50); behind: rnn (dataset.length=50) ×" in text
    assert "**adding (length=100)** (5 seeds each): best: lstm (dataset.length=100); behind: rnn (dataset.length=100) ×" in text
    pairs = pd.read_csv(tmp_path / "out" / "pairs_adding.csv")
    assert len(pairs) == 2 and sorted(pairs["test_set"]) == ["length=100", "length=50"]
    for pair in pairs.itertuples():  # within a length: lstm against rnn at that length, never across lengths
        assert {pair.a.split(" (")[0], pair.b.split(" (")[0]} == {"lstm", "rnn"}
        assert pair.a.split("=")[-1] == pair.b.split("=")[-1] == pair.test_set.split("=")[-1] + ")"
    assert "Not ranked: adding (several test sets)" in text
    table = pd.read_csv(tmp_path / "out" / "summary_adding.csv")   # "vs best" within each length
    assert sorted(table.loc[table["vs_best"] == 1, "model"]) == ["lstm (dataset.length=100)", "lstm (dataset.length=50)"]


def test_a_memory_run_recorded_under_the_shared_schema_is_still_read_for_eval():
    """Adding and copy once shared one schema, so their records carry each other's keys; eval and
    the diagnostics read such a record as today's schema takes it."""
    import json

    from seqbench.config import ConfigError, check_dataset, recorded_dataset_config
    from tests.conftest import REPO
    old_grid = REPO / "results" / "memory_2000_updates" / "runs" / "adding"   # written under the shared schema
    record = json.loads(next(old_grid.glob("*/record.json")).read_text())
    dataset = record["config"]["dataset"]
    assert "solved_above" in dataset and "symbols" in dataset   # the copy task's keys
    with pytest.raises(ConfigError, match="unknown key"):
        check_dataset(dict(dataset))
    check_dataset(recorded_dataset_config(dataset))
    assert "cache_dir" not in recorded_dataset_config({"name": "trec", "kind": "trec", "cache_dir": "/x"})


def test_a_memory_figure_s_file_name_never_comes_from_a_record_as_a_path(tmp_path):
    """A record is data: a data set named ``../../up`` (edited, or written before names were
    checked) gets its memory-length figure inside the report folder, under a plain file name."""
    from seqbench.record import write_json_atomic
    base = {"status": "done", "dataset": "../../up", "task": "last_step_regression", "baselines": {"mse": 1 / 6},
            "best_epoch": 1, "epochs": 2, "epoch_seconds": [1.0], "params": 10, "train_tokens_per_s": 1.0,
            "history": [{"epoch": 0, "val/mse": 0.1}], "val_best": {"mse": 0.1}}
    for length in (10, 20):
        for seed in range(2):
            config = {"model": {"name": "lstm"}, "dataset": {"name": "../../up", "kind": "adding", "length": length,
                                                             "solved_below": 0.01}, "trainer": {"max_epochs": 2}}
            write_json_atomic(tmp_path / "a" / "b" / "runs" / f"l{length}s{seed}" / "record.json",
                              {**base, "model": "lstm", "seed": seed, "config": config, "config_hash": f"l{length}",
                               "test": {"mse": 0.05 + 0.01 * seed, "mae": 0.1}})
    out = tmp_path / "a" / "b" / "out"
    build_report([tmp_path / "a" / "b" / "runs"], out, statistics=False)
    assert list(out.glob("*_memory_length.png")) and not list(tmp_path.rglob("up_memory_length.png"))
    assert not [p for p in tmp_path.rglob("*.png") if not p.is_relative_to(out)]
