"""What a person sees around a run: loggers beyond TensorBoard (MLflow read back with its own
client), one spelling of names, tab completion, and TensorBoard's tabs in a real browser."""
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqbench import SeqbenchError
from seqbench.run import run
from tests.conftest import TINY, browser_or_skip, import_or_skip


def test_mlflow_logs_params_metrics_and_the_record_to_a_sqlite_store(compose_config, tmp_path):
    import_or_skip("mlflow", reason="pip install -e '.[mlflow]' to test logger=mlflow")
    from mlflow.tracking import MlflowClient
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record = run(compose_config(*TINY, "logger=mlflow", f"logger.tracking_uri={uri}"), tmp_path / "run")
    assert record["status"] == "done"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("seqbench")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == "lstm_sincos_s0"
    assert logged.data.params["model.hidden_size"] == "8" and logged.data.params["dataset.n_train"] == "48"
    assert logged.data.metrics["hparams/test_mse"] == pytest.approx(record["test"]["mse"])
    assert "val/mse" in logged.data.metrics and "train/loss_epoch" in logged.data.metrics
    artifacts = [a.path for a in client.list_artifacts(logged.info.run_id)]
    assert "run_record.json" in artifacts   # not record.json: artifacts lie under the output root, never read as runs
    local = client.download_artifacts(logged.info.run_id, "run_record.json", str(tmp_path))
    assert json.loads(Path(local).read_text())["test"]["mse"] == pytest.approx(record["test"]["mse"])


def test_csv_logger_writes_every_metric(compose_config, tmp_path):
    """Every metric the run's history holds per epoch, the per-step scalars and the test metrics
    are columns, and each epoch's validation values are rows with numbers in them."""
    import csv
    record = run(compose_config(*TINY, "logger=csv", "trainer.log_every_n_steps=1"), tmp_path / "run")
    assert record["status"] == "done"
    with next((tmp_path / "run" / "csv").rglob("metrics.csv")).open() as stream:
        rows = list(csv.DictReader(stream))
    columns = set(rows[0])
    epoch_metrics = {key for epoch in record["history"] for key in epoch
                     if key.startswith(("val/", "train/"))}
    expected = epoch_metrics | {"train/loss_step", "train/grad_norm", "lr-Adam", "test/mse", "test/mae",
                                "test/loss"}
    assert expected <= columns, expected - columns
    for key in epoch_metrics:
        values = [float(row[key]) for row in rows if row.get(key)]
        assert len(values) == record["epochs"], key   # one value per epoch, each a number


def test_a_missing_tracker_package_is_one_line_with_the_install_command(compose_config, tmp_path, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(SeqbenchError, match=r"logger=wandb needs the wandb package: pip install 'seqbench\[wandb\]'"):
        run(compose_config(*TINY, "logger=wandb"), tmp_path / "run")


def seqbench_command(*args, cwd):
    executable = shutil.which("seqbench", path=str(Path(sys.executable).parent))
    assert executable, "the seqbench console command is not installed"
    return subprocess.run([executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_one_spelling_of_a_variant_no_empty_folder_on_reuse_and_a_readable_record(tmp_path):
    args = [*TINY, "model=bilstm_attn", f"paths.output_root={tmp_path}"]
    first = seqbench_command(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    record_path = Path(first.stdout.strip().splitlines()[-1].removeprefix("record: "))
    record = json.loads(record_path.read_text())
    assert record["model"] == "bilstm_attn_additive"                      # as model=bilstm_attn_additive says
    assert record_path.parent.name.endswith("_bilstm_attn_additive_sincos_s0")
    assert (record_path.parent / "tensorboard" / "bilstm_attn_additive_sincos_s0").is_dir()
    assert oct(record_path.stat().st_mode & 0o777) == "0o644"
    second = seqbench_command(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "already done" in second.stdout and second.stdout.strip().endswith(f"record: {record_path}")
    assert len(list((tmp_path / "runs").glob("*/*"))) == 1  # the reused run left no empty folder


def test_tab_completion_works_for_the_seqbench_command(tmp_path):
    script = seqbench_command("-sc", "install=bash", cwd=tmp_path).stdout
    bin_dir = Path(sys.executable).parent
    probe = (f'export PATH="{bin_dir}:$PATH"; source /dev/stdin; COMP_LINE="seqbench model=g"; '
             f'COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=(seqbench model=g); COMP_CWORD=1; hydra_bash_completion; '
             f'echo "${{COMPREPLY[@]}}"')
    result = subprocess.run(["bash", "-c", probe], input=script, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["model=gru"], result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_tensorboard_tabs_in_headless_chromium(compose_config, tmp_path, monkeypatch):
    """Scalars, images and HParams as a person sees them: screenshots in which the expected
    content is found (by the browser, shadow DOM included)."""
    chromium = browser_or_skip()
    playwright = import_or_skip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")
    from tests.conftest import tiny_text_source, use_text_source
    use_text_source(monkeypatch, "trec", tiny_text_source(tmp_path))
    root = tmp_path / "tb"
    run(compose_config("dataset=trec", "model=bilstm_attn", "model.hidden_size=8", "model.embedding_dim=8",
                       "trainer.max_epochs=2", "dataset.batch_size=8", f"dataset.cache_dir={tmp_path / 'cache'}"),
        tmp_path / "text", tensorboard_root=root)
    run(compose_config(*TINY), tmp_path / "signal", tensorboard_root=root)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(root), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shots = Path(tmp_path / "screenshots")
    shots.mkdir()
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            deadline = time.time() + 60
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/#scalars", timeout=10_000)
                    break
                except Exception:
                    if time.time() > deadline:
                        raise
                    time.sleep(1)
            for tab, expected, search in [("scalars", ["val/acc", "val/mse", "train/loss_epoch"], "^val/|loss_epoch"),
                                          ("images", ["attention/heatmap", "gradient_flow/norm_per_step"],
                                           "heatmap|norm_per_step"),
                                          ("hparams", ["model.hidden_size", "hparams/test_acc", "hparams/test_mse"],
                                           None)]:
                page.goto(f"http://127.0.0.1:{port}/?#{tab}", timeout=30_000)
                if search:  # as a person would: type into the tag filter, which opens the matching cards
                    box = page.get_by_label("Filter tags", exact=False).filter(visible=True).first
                    box.wait_for(timeout=60_000)
                    box.fill(search)
                for text in expected:
                    page.get_by_text(text, exact=False).first.wait_for(timeout=60_000)
                page.wait_for_timeout(1500)  # let charts draw before the picture is taken
                page.screenshot(path=str(shots / f"{tab}.png"), full_page=True)
                assert (shots / f"{tab}.png").stat().st_size > 20_000, tab  # a real page, not a blank one
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    keep = Path(__import__("os").environ.get("SEQBENCH_SCREENSHOTS", ""))
    if keep.name:
        keep.mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, keep / shot.name)
