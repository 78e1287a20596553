"""TensorBoard content, read back from the event files and through TensorBoard's HTTP API;
gradient flow; explain."""
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqbench import SeqbenchError
from seqbench.diagnostics import gradient_flow
from seqbench.explain import Explainer, render
from seqbench.run import run
from tests.conftest import TINY
from tests.conftest import tiny_text_source, use_text_source

TEXT_RUN = ["dataset=trec", "model=bilstm_attn", "model.hidden_size=8", "model.embedding_dim=8",
            "trainer.enable_progress_bar=false", "trainer.max_epochs=3", "dataset.batch_size=8", "dataset.lr=0.02"]


@pytest.fixture
def attention_run(compose_config, tmp_path, monkeypatch):
    use_text_source(monkeypatch, "trec", tiny_text_source(tmp_path))
    record = run(compose_config(*TEXT_RUN, f"dataset.cache_dir={tmp_path / 'cache'}"), tmp_path / "run",
                 tensorboard_root=tmp_path / "tb")
    assert record["status"] == "done"
    return record, tmp_path / "tb"


def tags(log_dir):
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "tensors": 0, "scalars": 0}).Reload()
    return events.Tags(), events


def test_attention_run_logs_scalars_images_text_and_real_hparams(attention_run):
    record, root = attention_run
    run_dir = root / "bilstm_attn_additive_trec_s0"
    assert run_dir.is_dir()  # readable run name under the shared root, spelled as on the command line
    found, events = tags(run_dir)
    for tag in ["train/loss_step", "train/loss_epoch", "val/loss", "val/acc", "val/f1", "train/grad_norm",
                "lr-Adam", "hparams/test_acc", "hparams/val_best_acc", "gradient_flow/first_to_last_ratio"]:
        assert tag in found["scalars"], tag
    assert {"attention/heatmap", "gradient_flow/norm_per_step"} <= set(found["images"])
    images = events.Images("attention/heatmap")
    assert len(images) == 3  # one per epoch...
    epoch_steps = [e.step for e in events.Scalars("train/loss_epoch")]
    assert [i.step for i in images] == epoch_steps  # ...at the scalars' global step, so sliders line up
    assert "attention/words/text_summary" in found["tensors"]
    text = events.Tensors("attention/words/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "<sub>" not in text and "**" in text and "(0." in text  # Markdown TensorBoard renders
    hparams = set(events.PluginTagToContent("hparams"))
    # A session per run, no per-run experiment summary (TensorBoard would pick one run's for all).
    assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= hparams
    assert "_hparams_/experiment" not in hparams
    assert events.Scalars("hparams/test_acc")[-1].value == pytest.approx(record["test"]["acc"])
    import yaml
    assert yaml.safe_load((run_dir / "hparams.yaml").read_text())["model.hidden_size"] == 8


def test_sincos_run_logs_predicted_versus_true(compose_config, tmp_path):
    run(compose_config(*TINY), tmp_path / "run", tensorboard_root=tmp_path / "tb")
    found, _ = tags(tmp_path / "tb" / "lstm_sincos_s0")
    assert "sincos/predicted_vs_true" in found["images"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_tensorboard_serves_the_tags_over_http_and_hparams_for_mixed_folders(attention_run, compose_config):
    _, root = attention_run
    # A second task in the same folder (as experiment=compare does): HParams must show both.
    run(compose_config(*TINY), root.parent / "sincos-run", tensorboard_root=root)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(root), "--host", "127.0.0.1",
                               "--port", str(port), "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def get(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return json.loads(response.read())
        deadline = time.time() + 90
        while True:
            try:
                scalars = get("/data/plugin/scalars/tags")
                if scalars:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("TensorBoard did not serve the log folder within 90 s")
            time.sleep(1)
        run_name = "bilstm_attn_additive_trec_s0"
        assert "val/acc" in scalars[run_name] and "hparams/test_acc" in scalars[run_name]
        assert "attention/heatmap" in get("/data/plugin/images/tags")[run_name]
        assert "attention/words/text_summary" in get("/data/plugin/text/tags")[run_name]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/experiment",
                                         data=json.dumps({"experimentName": ""}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            experiment = json.loads(response.read())
        names = {h["name"] for h in experiment["hparamInfos"]}
        assert {"model", "dataset", "seed", "model.hidden_size", "trainer.max_epochs"} <= names
        metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
        assert {"hparams/test_acc", "hparams/test_mse"} <= metrics  # the union over both tasks
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_gradient_flow_gives_one_norm_per_step_and_the_plain_rnn_vanishes_first():
    norms = {cell: gradient_flow(cell, hidden_size=16, steps=80, batch=8) for cell in ("rnn", "lstm", "gru")}
    assert all(values.shape == (80,) for values in norms.values())
    assert all(torch.all(values > 0) for values in norms.values())
    assert norms["rnn"][0] < norms["lstm"][0] and norms["rnn"][0] < norms["gru"][0]
    assert norms["rnn"][0] < 1e-6 * norms["rnn"][-1]


def test_explain_prints_label_probabilities_and_weights_that_sum_to_one(attention_run, tmp_path):
    record, _ = attention_run
    explainer = Explainer(tmp_path / "run")  # a run folder works as well as a checkpoint
    result = explainer.explain("A great, superb film blorfzz")
    assert result.label == "pos" and set(result.probabilities) == {"neg", "pos"}
    assert sum(result.weights) == pytest.approx(1.0, abs=1e-6)
    assert result.known[-1] is False  # blorfzz is unknown
    text = render(result, colour=False)
    assert "predicted: pos" in text and "blorfzz (unknown)" in text and "\x1b[" not in text
    assert "\x1b[48;5;" in render(result, colour=True)
    empty = explainer.explain("   ")
    assert empty.empty and sum(empty.weights) == pytest.approx(1.0)
    assert "no tokens" in render(empty, colour=False)


def test_explain_command_line_plain_when_piped(attention_run, tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqbench.explain", str(tmp_path / "run"), "awful dull film"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "predicted: neg" in result.stdout and "\x1b[" not in result.stdout
    weights = [float(line.split()[-2]) for line in result.stdout.splitlines() if line.startswith("  ")]
    assert sum(weights) == pytest.approx(1.0, abs=2e-3)
    missing = subprocess.run([sys.executable, "-m", "seqbench.explain", str(tmp_path / "nowhere"), "x"],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no checkpoint" in missing.stderr


def test_explain_refuses_crafted_and_wrong_files_with_one_line(attention_run, tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (print, ("this would have run",))
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"seqbench": {"spec": {}}, "payload": RunsCode()}, crafted)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((tmp_path / "run" / "checkpoints" / "best.ckpt").read_bytes()[:500])
    csv_file = tmp_path / "table.csv"
    csv_file.write_text("a,b\n1,2\n")
    listed = tmp_path / "listed"
    listed.mkdir()
    (listed / "record.json").write_text("[]")
    nulled = tmp_path / "nulled"
    nulled.mkdir()
    (nulled / "record.json").write_text("null")
    cases = {crafted: "was refused: it holds Python objects", truncated: "not a checkpoint that can be read",
             csv_file: "not a checkpoint that can be read", listed: "not a run record (a JSON list",
             nulled: "not a run record (a JSON NoneType"}
    for path, message in cases.items():
        with pytest.raises(SeqbenchError, match=message.replace("(", "\\(")):
            Explainer(path)
    result = subprocess.run([sys.executable, "-m", "seqbench.explain", str(crafted), "x"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "was refused" in result.stderr and "Traceback" not in result.stderr
    assert "this would have run" not in result.stdout + result.stderr
