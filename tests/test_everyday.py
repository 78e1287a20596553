"""Everyday commands: eval, debug presets, the trained gradient-flow picture, bf16."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from seqbench.diagnostics import main as diagnostics_main
from seqbench.evaluate import evaluate
from seqbench.results import load_records
from seqbench.run import run
from tests.conftest import MODEL_CONFIGS, TINY
from tests.conftest import tiny_text_source, use_text_source

SMALL = [o for o in TINY if not o.startswith("dataset.")]


def test_eval_reruns_the_test_split_and_another_length(compose_config, tmp_path):
    record = run(compose_config(*SMALL, "dataset=adding", "dataset.length=10", "dataset.n_train=64",
                                "dataset.n_val=32", "dataset.n_test=40", "dataset.batch_size=16"), tmp_path / "run")
    again = evaluate(tmp_path / "run", out=tmp_path / "eval")
    assert again["metrics"]["mse"] == pytest.approx(record["test"]["mse"], rel=1e-5)  # the same test split
    predictions = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert len(predictions) == 40 and {"index", "target", "prediction"} <= set(predictions.columns)
    longer = evaluate(tmp_path / "run", ["dataset.length=30"], out=tmp_path / "eval30")
    assert json.loads((tmp_path / "eval30" / "metrics.json").read_text())["dataset"]["length"] == 30
    assert longer["examples"] == 40 and longer["metrics"]["mse"] != again["metrics"]["mse"]


def test_eval_of_a_text_classifier_on_your_own_file(compose_config, tmp_path, monkeypatch):
    use_text_source(monkeypatch, "trec", tiny_text_source(tmp_path))
    run(compose_config("dataset=trec", "model=gru", "model.hidden_size=8", "model.embedding_dim=8",
                       "trainer.max_epochs=6", f"dataset.cache_dir={tmp_path / 'cache'}", "dataset.batch_size=8",
                       "dataset.lr=0.02", "dataset.embedding_dropout=0", "dataset.dropout=0"), tmp_path / "run")
    mine = tmp_path / "mine.csv"
    mine.write_text("text,label\nsuperb great lovely,pos\nawful dull boring,neg\ngreat superb,pos\n")
    summary = evaluate(tmp_path / "run", file=str(mine), out=tmp_path / "eval")
    assert summary["examples"] == 3 and summary["metrics"]["acc"] == 1.0
    assert summary["metrics"]["auroc"] == 1.0   # computed from the predictions, as the report does
    rows = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert list(rows["predicted_label"]) == ["pos", "neg", "pos"]
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("text\nlovely film\n")
    assert evaluate(tmp_path / "run", file=str(unlabelled), out=tmp_path / "e2")["metrics"] == {}
    result = subprocess.run([sys.executable, "-m", "seqbench", "eval", str(tmp_path / "nowhere")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "no checkpoint" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("preset", ["fast_dev_run", "limit", "overfit"])
def test_debug_presets_run_and_are_never_results(compose_config, tmp_path, preset):
    extra = ["trainer.max_epochs=2"] if preset == "overfit" else []
    record = run(compose_config(*TINY, f"debug={preset}", *extra), tmp_path / preset)
    assert record["status"] == "done" and record["debug"] is True
    assert load_records([tmp_path]) == []


def test_gradient_flow_of_trained_networks_beside_untrained(compose_config, tmp_path, capsys):
    folders = []
    for model in ("rnn", "lstm"):
        folder = tmp_path / model
        run(compose_config(*SMALL, f"model={model}", "dataset=adding", "dataset.length=12", "dataset.n_train=64",
                           "dataset.n_val=32", "dataset.n_test=32", "dataset.batch_size=16"), folder)
        folders.append(str(folder))
    diagnostics_main(["--runs", *folders, "--out", str(tmp_path / "flow")])
    frame = pd.read_csv(tmp_path / "flow_trained.csv", index_col="step")
    assert list(frame.columns) == ["rnn on adding T=12 untrained", "rnn on adding T=12 trained",
                                   "lstm on adding T=12 untrained", "lstm on adding T=12 trained"]
    assert len(frame) == 12 and (frame > 0).all().all()
    assert (tmp_path / "flow_trained.png").stat().st_size > 10_000
    assert not frame["rnn on adding T=12 trained"].equals(frame["rnn on adding T=12 untrained"])


@pytest.mark.slow
@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_model_trains_in_bf16_autocast(compose_config, tmp_path, model, monkeypatch):
    """bf16 really runs (the network's forward sees bf16 autocast), the record says so, and the
    model learns: it ends below predicting 0 everywhere (test MSE 0.5 on sin->cos)."""
    import torch

    from seqbench.models.network import RecurrentNet
    seen = []
    forward = RecurrentNet.forward

    def watched(self, inputs, lengths):
        seen.append(torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype() == torch.bfloat16)
        return forward(self, inputs, lengths)
    monkeypatch.setattr(RecurrentNet, "forward", watched)
    overrides = [*TINY, f"model={model}", "trainer.precision=bf16-mixed", "trainer.max_epochs=6", "dataset.n_train=256"]
    config = compose_config(*overrides)
    if config.model.get("warmup_steps"):  # a warmup sized for real data (300 steps) outlasts these few steps
        config = compose_config(*overrides, "model.warmup_steps=4")
    record = run(config, tmp_path)
    assert record["status"] == "done" and record["precision"] == "bf16-mixed" and any(seen)
    assert record["test"]["mse"] < 0.45, record["history"]


def test_the_record_says_what_precision_ran(compose_config, tmp_path):
    """16-mixed on a CPU: Lightning runs bf16 and says so; so does the record."""
    record = run(compose_config(*TINY, "trainer.precision=16-mixed", "trainer.accelerator=cpu"), tmp_path)
    assert record["config"]["trainer"]["precision"] == "16-mixed" and record["precision"] == "bf16-mixed"
