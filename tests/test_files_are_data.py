"""Files are data: a run folder, a record, a checkpoint, a study database and a results folder are data,
never code; every file is read through one opener that refuses what would hang; eval, explain,
search and diagnostics check what they are given as a run does; the edges of the other tools.

The security tests plant a harmless marker payload (a module whose import, or a target whose call,
creates a marker file) and check the marker never appears; a positive control shows the marker
would appear if the payload ran."""
import contextlib
import json
import os
import shutil
import signal
import uuid
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from seqbench import SeqbenchError
from seqbench.config import ConfigError, check_config
from tests.conftest import CONFIG_DIR, TINY, import_or_skip


def tiny(root: Path, *overrides: str, sincos: bool = True):
    small = TINY if sincos else [o for o in TINY if not o.startswith("dataset.")]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[f"paths.output_root={root}", *small, "logger=csv",
                                                        *overrides])


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    """A regression fails instead of hanging the suite (a FIFO opened for reading waits for ever)."""
    def expired(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny finished sin->cos run (its folder, record and checkpoints), made once."""
    from seqbench.run import run
    root = tmp_path_factory.mktemp("trained")
    record = run(tiny(root), root / "signal")
    assert record["status"] == "done"
    return root / "signal"


class Marker:
    """A module in ``folder`` whose import creates ``path``, and a record payload whose call would."""

    def __init__(self, folder: Path):
        self.path = folder / f"marker-{uuid.uuid4().hex}"
        self.module = f"markermod_{uuid.uuid4().hex[:12]}"
        (folder / f"{self.module}.py").write_text(
            f"import torch\nopen({str(self.path)!r}, 'w').write('imported')\n\n"
            f"class Encoder(torch.nn.Module):\n    def forward(self, x, lengths):\n        return x, x[:, -1]\n")
        self.cell = f"{self.module}.Encoder"
        self.target = {"_target_": "builtins.open", "_args_": [str(self.path), "w"]}

    @property
    def ran(self) -> bool:
        return self.path.exists()


def poisoned_copy(run: Path, into: Path, marker: Marker, cell: bool = True) -> Path:
    """The run folder copied, its record carrying the payload: an optimizer that would call
    open(MARKER, "w"), a model.cell whose import would create the marker, a top-level target."""
    copy = into / "poisoned"
    shutil.copytree(run, copy)
    record = json.loads((copy / "record.json").read_text())
    record["config"]["optimizer"] = {**marker.target, "_partial_": False}
    if cell:
        record["config"]["model"]["cell"] = marker.cell
    record["config"]["_target_"] = "builtins.open"
    (copy / "record.json").write_text(json.dumps(record))
    return copy


# ------------------------------------------------------------------------------ files are data
def test_eval_builds_no_optimiser_and_imports_no_cell_a_record_names(trained, tmp_path, monkeypatch):
    from seqbench.evaluate import evaluate
    monkeypatch.chdir(tmp_path)  # where a user's own module would be importable from
    marker = Marker(tmp_path)
    copy = poisoned_copy(trained, tmp_path, marker, cell=False)
    summary = evaluate(copy)  # the record's optimizer is never instantiated: eval builds none
    assert summary["metrics"]["mse"] > 0 and not marker.ran
    copy = poisoned_copy(trained, tmp_path / "again", marker)
    with pytest.raises(SeqbenchError, match=rf"model.cell='{marker.cell}' is named by a file .* add "
                                            r"model.cell=MODULE.CLASS to the eval command"):
        evaluate(copy)
    assert not marker.ran
    with pytest.raises(Exception):  # positive control: named by the user, it is imported (and is no fit)
        evaluate(copy, [f"model.cell={marker.cell}"])
    assert marker.ran


def test_a_checkpoint_naming_a_cell_imports_nothing_under_eval_explain_or_diagnostics(trained, tmp_path,
                                                                                      monkeypatch):
    from seqbench.diagnostics import trained_and_untrained
    from seqbench.evaluate import evaluate
    from seqbench.explain import Explainer
    monkeypatch.chdir(tmp_path)
    marker = Marker(tmp_path)
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    checkpoint = torch.load(copy / "checkpoints" / "best.ckpt", weights_only=True)
    checkpoint["seqbench"]["network"]["cell"] = marker.cell
    torch.save(checkpoint, copy / "checkpoints" / "best.ckpt")
    record = json.loads((copy / "record.json").read_text())
    record["config"]["model"]["cell"] = marker.cell
    (copy / "record.json").write_text(json.dumps(record))
    text = text_checkpoint(tmp_path / "text.ckpt", cell=marker.cell)
    for attempt in (lambda: evaluate(copy), lambda: trained_and_untrained(copy), lambda: Explainer(text)):
        with pytest.raises(SeqbenchError, match="is named by a file"):
            attempt()
        assert not marker.ran
    with pytest.raises(Exception):  # positive control: --cell names it, so it is imported
        Explainer(text, cell=marker.cell)
    assert marker.ran


def text_checkpoint(path: Path, cell: str = "gru") -> Path:
    """A hand-made text classifier checkpoint of the shape seqbench writes."""
    from seqbench.models import RecurrentNet
    network = {"name": "gru", "cell": "gru", "hidden_size": 4, "embedding_dim": 4}
    net = RecurrentNet(network, 2, vocab_size=5)
    vocabulary = ["<pad>", "<unk>", "good", "bad", "film"]
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
                "seqbench": {"network": {**network, "cell": cell},
                             "spec": {"task": "classification", "vocabulary": vocabulary, "label_names": ["neg", "pos"],
                                      "num_outputs": 2, "vocab_size": 5, "max_len": 20}}}, path)
    return path


def test_explain_reads_a_plain_checkpoint_and_refuses_a_fifo(tmp_path):
    from seqbench.explain import Explainer
    assert Explainer(text_checkpoint(tmp_path / "plain.ckpt")).explain("good film").label in ("neg", "pos")
    os.mkfifo(tmp_path / "pipe.ckpt")
    with no_hang(), pytest.raises(SeqbenchError, match="pipe.ckpt is a named pipe"):
        Explainer(tmp_path / "pipe.ckpt")


def test_a_results_folder_with_payloads_is_reported_without_running_them(trained, tmp_path, monkeypatch):
    from seqbench.report import build_report
    monkeypatch.chdir(tmp_path)
    marker = Marker(tmp_path)
    folder = poisoned_copy(trained, tmp_path / "results", marker)
    build_report([folder.parent], tmp_path / "report", plots=False, statistics=False)
    assert (tmp_path / "report" / "summary.md").is_file() and not marker.ran


def test_a_record_whose_data_set_name_is_a_path_is_reported_inside_the_report_folder(trained, tmp_path):
    from seqbench.report import build_report
    for name in ("reviews/v2", "../../escaped"):
        folder = tmp_path / "results" / name.replace("/", "_")
        shutil.copytree(trained, folder)
        record = json.loads((folder / "record.json").read_text())
        record.update(dataset=name, data={**record["data"], "name": name})
        (folder / "record.json").write_text(json.dumps(record))
    build_report([tmp_path / "results"], tmp_path / "a" / "report", plots=False, statistics=False)
    written = {p.name for p in (tmp_path / "a" / "report").iterdir()}
    assert "summary_reviews_v2.csv" in written and "summary_reviews_v2.tex" in written
    assert len([n for n in written if n.startswith("summary_")]) == 4   # a CSV and a LaTeX table per data set
    assert not (tmp_path / "escaped.csv").exists() and not (tmp_path / "escaped.tex").exists()
    assert not list(tmp_path.glob("summary_*"))


def test_resuming_next_to_a_poisoned_record_and_checkpoint_runs_neither(tmp_path, monkeypatch):
    """The interrupted run's record and its last checkpoint carry payloads: the resume takes the
    config from this command, never from them."""
    from seqbench.run import run
    monkeypatch.chdir(tmp_path)
    marker = Marker(tmp_path)
    cfg = tiny(tmp_path / "out")
    first = run(cfg, tmp_path / "out" / "first")
    folder = Path(first["output_dir"])
    record = json.loads((folder / "record.json").read_text())
    record.update(status="interrupted")
    record["config"]["optimizer"] = {**marker.target, "_partial_": False}
    record["config"]["model"]["cell"] = marker.cell
    (folder / "record.json").write_text(json.dumps(record))
    last = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)
    last["seqbench"]["network"]["cell"] = marker.cell
    torch.save(last, folder / "checkpoints" / "last.ckpt")
    resumed = run(cfg, tmp_path / "out" / "second")
    assert resumed["status"] == "done" and resumed["resumed"] == 1 and not marker.ran


def test_a_reused_records_predictions_name_is_a_file_beside_it_not_a_path(tmp_path):
    from seqbench.run import run
    cfg = tiny(tmp_path / "out")
    first = run(cfg, tmp_path / "out" / "first")
    folder = Path(first["output_dir"])
    record = json.loads((folder / "record.json").read_text())
    (folder.parent.parent / "escaped.csv").write_text("index\n0\n")
    (folder / "record.json").write_text(json.dumps({**record, "predictions": "../../escaped.csv"}))
    jobs = tmp_path / "sweep" / "a" / "b" / "job"
    again = run(cfg, jobs, in_sweep=True)
    assert again["reused_from"] and (jobs / "record.json").is_file()
    assert not (jobs.parent.parent / "escaped.csv").exists()


def test_a_study_database_never_adds_settings_to_the_retraining(tmp_path, monkeypatch):
    """A finished study whose best trial (edited into the database) sets optimizer._target_:
    the search refuses it before anything is built from it."""
    import optuna
    from omegaconf import OmegaConf

    from seqbench.run import prepare
    from seqbench.search import check_settings, compose, main, study_identity, study_name
    monkeypatch.chdir(tmp_path)
    marker = Marker(tmp_path)
    overrides = ["hparams_search=sincos", *TINY, f"paths.output_root={tmp_path}", "hparams_search.trials=1",
                 "hparams_search.variants=[rnn]", "hparams_search.retrain_seeds=[1]"]
    base = compose(CONFIG_DIR, [*overrides, "model=rnn"])
    settings = OmegaConf.to_container(base.hparams_search, resolve=True)
    config = OmegaConf.to_container(base, resolve=True)
    space = check_settings(settings, {"rnn": config})["rnn"]
    name = study_name("sincos", "rnn", study_identity(settings, config, prepare(base).identity.data, space))
    (tmp_path / "search").mkdir()
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{tmp_path / 'search' / 'sincos.db'}",
                                direction="minimize")
    payload = {"optimizer.lr": 0.001, "model.hidden_size": 32, "dataset.batch_size": 32,
               "optimizer._target_": "builtins.open", "optimizer._partial_": False}
    study.add_trial(optuna.trial.create_trial(
        params=payload, value=0.5, distributions={
            **{k: v for k, v in space.items()},
            "optimizer._target_": optuna.distributions.CategoricalDistribution(["builtins.open"]),
            "optimizer._partial_": optuna.distributions.CategoricalDistribution([False])}))
    with pytest.raises(SystemExit) as exit_code:
        main(overrides)
    assert exit_code.value.code == 2
    assert not marker.ran and not (tmp_path / "search" / "retrain").exists()


def test_retraining_takes_only_values_the_space_allows():
    import optuna

    from seqbench.search import SearchSpaceError, checked_params
    space = {"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
             "model.hidden_size": optuna.distributions.CategoricalDistribution([8, 16])}
    assert checked_params({"optimizer.lr": 1e-3, "model.hidden_size": 16}, space, "x") == {
        "optimizer.lr": 1e-3, "model.hidden_size": 16}
    for params in ({"optimizer._target_": "builtins.open"}, {"optimizer.lr": 5.0}, {"model.hidden_size": 12},
                   {"optimizer.lr": "${oc.env:HOME}"}, {"model.hidden_size": "8,16"}):
        with pytest.raises(SearchSpaceError, match="a study database|outside hparams_search.space"):
            checked_params(params, space, "the best trial")


@pytest.mark.parametrize("name", ["../../../x", "reviews/v2", "/tmp/x", "..", ".hidden", "a b"])
def test_names_that_become_folders_are_names_not_paths(name, tmp_path):
    from seqbench.composition import preflight
    with pytest.raises(ConfigError, match="a name for tables and folders, not a path"):
        check_config(OmegaConf_container(tiny(tmp_path, f"dataset.name='{name}'")))
    for override in (f"dataset.name='{name}'", f"model.name='{name}'", "model=bilstm_attn",
                     f"model.attention='{name}'"):  # each a part of the run folder's name
        extra = ["model=bilstm_attn"] if override.startswith("model.attention") else []
        problem = preflight([*TINY, *extra, override, f"paths.output_root={tmp_path / 'out'}"])
        assert (problem is None) == (override == "model=bilstm_attn"), (override, problem)
        assert problem is None or f"='{name}': a name for tables and folders, not a path" in problem
    assert "seed='../x': must be a whole number" in preflight([*TINY, "seed='../x'"])
    assert not (tmp_path / "out").exists()  # Hydra never made a folder


def OmegaConf_container(cfg) -> dict:
    from omegaconf import OmegaConf
    return OmegaConf.to_container(cfg, resolve=True)


def test_model_cells_named_by_the_user_are_still_imported(tmp_path, monkeypatch):
    from seqbench.config import network_config
    monkeypatch.chdir(tmp_path)
    marker = Marker(tmp_path)
    with contextlib.suppress(SeqbenchError):  # whether an unregistered class is then accepted is another matter
        network_config(cell=marker.cell)
    assert marker.ran  # a run's own config names it: imported


# ------------------------------------------------------------------------------ nothing hangs
def test_one_opener_refuses_fifos_devices_folders_and_oversized_records(tmp_path):
    from seqbench.files import RECORD_LIMIT, UnreadableFile, read_json
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "big.json").write_bytes(b" " * (RECORD_LIMIT + 1))
    for name, words in (("fifo", r"is a named pipe \(FIFO\), not a regular file"), ("zero", "is a character device"),
                        ("", "is a folder"), ("big.json", "more than the 16.0 MiB")):
        with no_hang(), pytest.raises(UnreadableFile, match=words) as error:
            read_json(tmp_path / name)
        assert isinstance(error.value, OSError) and "\n" not in str(error.value)


def test_a_fifo_named_record_json_under_the_output_root_does_not_hang_a_run(tmp_path):
    from seqbench.run import run
    (tmp_path / "out" / "odd").mkdir(parents=True)
    os.mkfifo(tmp_path / "out" / "odd" / "record.json")
    (tmp_path / "out" / "dev").mkdir()
    (tmp_path / "out" / "dev" / "record.json").symlink_to("/dev/zero")
    with no_hang(120):
        record = run(tiny(tmp_path / "out"), tmp_path / "out" / "run")
    assert record["status"] == "done"


def test_fifos_as_data_files_and_eval_files_are_one_line(trained, tmp_path):
    from seqbench.datasets.text_file import read_splits
    from seqbench.evaluate import evaluate
    os.mkfifo(tmp_path / "train.csv")
    good = tmp_path / "test.csv"
    good.write_text("text,label\ngood film,pos\nbad film,neg\n")
    with no_hang(), pytest.raises(SeqbenchError, match="train.csv is a named pipe"):
        read_splits({"train": tmp_path / "train.csv", "test": good})
    with no_hang(), pytest.raises(SeqbenchError, match=r"dataset.train: .*train.csv is a named pipe"):
        from seqbench.run import run
        run(tiny(tmp_path, "dataset=text_file", f"dataset.train={tmp_path / 'train.csv'}", f"dataset.test={good}",
                 sincos=False), tmp_path / "r")
    with no_hang(), pytest.raises(SeqbenchError, match="is a named pipe"):
        evaluate(trained, file=str(tmp_path / "train.csv"))
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    (copy / "record.json").unlink()
    (copy / "record.json").symlink_to("/dev/zero")
    with no_hang(), pytest.raises(SeqbenchError, match="record.json is a character device"):
        evaluate(copy)


def test_a_fifo_study_database_is_refused(tmp_path):
    from seqbench.files import UnreadableFile
    from seqbench.search import open_storage
    os.mkfifo(tmp_path / "sincos.db")
    with no_hang(), pytest.raises(UnreadableFile, match="study database: .*sincos.db is a named pipe"):
        open_storage({}, tmp_path, "sincos")


# ---------------------------------------------------------------------- nothing silently accepted
@pytest.mark.parametrize("override,message", [
    ("dataset.length=400", "dataset.length: unknown key"),
    ("dataset.seq_len=abc", "dataset.seq_len='abc': must be a whole number"),
    ("dataset.seq_len=0", "dataset.seq_len=0: must be a number > 0"),
    ("dataset.name=../x", "dataset.name='../x': a name for tables and folders"),
    ("model.hidden_size=3", "eval takes dataset=NAME, dataset.KEY=VALUE or model.cell"),
    ("optimizer.lr=1", "eval takes"),
    ("dataset=nosuch", "unknown dataset 'nosuch'; valid:"),
    ("dataset.seq_len=10,20", "one value per key"),
    ("length", "overrides are KEY=VALUE"),
])
def test_eval_checks_its_overrides_as_a_run_does_before_reading_data(override, message, trained):
    from seqbench.evaluate import evaluate
    before = set((trained / "eval").glob("*")) if (trained / "eval").exists() else set()
    with pytest.raises(SeqbenchError, match=message) as error:
        evaluate(trained, [override])
    assert "\n" not in str(error.value)
    assert (set((trained / "eval").glob("*")) if (trained / "eval").exists() else set()) == before


def test_eval_of_a_copied_run_uses_the_copys_checkpoint_and_writes_into_the_copy(trained, tmp_path):
    from seqbench.evaluate import evaluate
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    before = set((trained / "eval").glob("*")) if (trained / "eval").exists() else set()
    summary = evaluate(copy, ["dataset.seq_len=20"])
    assert Path(summary["checkpoint"]).is_relative_to(copy) and Path(summary["out"]).is_relative_to(copy)
    assert (set((trained / "eval").glob("*")) if (trained / "eval").exists() else set()) == before
    assert json.loads((Path(summary["out"]) / "metrics.json").read_text())["dataset"]["seq_len"] == 20


@pytest.mark.parametrize("override,message", [
    ("optimizer.lr=abc", "optimizer.lr='abc': must be a number"),
    ("optimizer.lr=-1", "optimizer.lr=-1: must be a number > 0"),
    ("+optimizer.foo=1", "optimizer.foo: unknown key"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay=-0.1: must be >= 0"),
    ("+optimizer.betas=fast", "optimizer.betas='fast': must be a list"),
    ("optimizer._target_=torch.optim.Adamx", "torch.optim has no 'Adamx'; did you mean 'Adamax'?"),
    ("+logger.foo=1", "logger.foo: unknown key"),
])
def test_optimizer_and_logger_are_checked_before_any_data_is_read(override, message, tmp_path):
    from seqbench.run import run
    with pytest.raises(ConfigError, match=message):
        run(tiny(tmp_path, override), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_search_takes_space_keys_and_positive_jobs_on_its_command_line(tmp_path, capsys):
    from omegaconf import OmegaConf

    from seqbench.search import compose, flatten_space, main
    cfg = compose(CONFIG_DIR, ["hparams_search=sincos",
                               "hparams_search.space.optimizer.lr=tag(log, interval(1e-3, 1e-2))",
                               "+hparams_search.space.model.num_layers='choice(1, 2)'",
                               "~hparams_search.space.dataset.batch_size"])
    space = flatten_space(OmegaConf.to_container(cfg.hparams_search.space))
    assert space == {"optimizer.lr": "tag(log, interval(1e-3, 1e-2))", "model.hidden_size": "choice(32, 64, 128)",
                     "model.num_layers": "choice(1, 2)"}
    for jobs in ("0", "-3", "two"):
        with pytest.raises(SystemExit) as exit_code:
            main(["hparams_search=sincos", "--jobs", jobs])
        assert exit_code.value.code == 2
        assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_code:
        main(["hparams_search=sincos", "hparams_search.space.optimizer.lr=interval(1e-2, 1e-3)",
              f"paths.output_root={tmp_path}"])
    assert exit_code.value.code == 2 and "the interval is reversed" in capsys.readouterr().err
    assert not (tmp_path / "search").exists()


def test_a_quoted_csv_field_with_line_breaks_can_be_read(tmp_path):
    from seqbench.datasets.text_file import BadInputError, read_splits
    path = tmp_path / "multi.csv"  # the second line of the quoted text looks like a row with a label
    path.write_text('text,label\n"first line of a review\nsecond line, pos",neg\ngood film,pos\nbad film,neg\n')
    with pytest.raises(BadInputError, match="dataset.multiline_text=true"):
        read_splits({"train": path, "test": path})
    splits = read_splits({"train": path, "test": path}, multiline_text=True)
    assert len(splits["train"][0]) == 3 and splits["train"][0][0].endswith("second line, pos")


# ------------------------------------------------------------------------- edges of the other tools
@pytest.mark.parametrize("argv,words", [
    (["--steps", "0"], "--steps: 0 must be at least 1"), (["--hidden", "-1"], "--hidden: -1 must be at least 1"),
    (["--cells", "foo"], "'foo' is not a cell the diagnostic rebuilds; valid: rnn")])
def test_diagnostics_refuses_bad_flags_in_one_line(argv, words, tmp_path, capsys):
    from seqbench.diagnostics import main
    with pytest.raises(SystemExit) as exit_code:
        main([*argv, "--out", str(tmp_path / "g")])
    error = capsys.readouterr().err
    assert exit_code.value.code == 2 and words in error and error.count("\n") == 1


def test_a_logger_that_cannot_start_says_why(tmp_path):
    import_or_skip("mlflow", reason="pip install -e '.[mlflow]' to test logger=mlflow")
    from seqbench.console import make_logger
    cfg = tiny(tmp_path, "logger=mlflow", "logger.tracking_uri=file:" + str(tmp_path / "mlruns"))
    with pytest.raises(SeqbenchError, match=r"logger=mlflow could not start: MlflowException: .*; fix its settings"):
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
            make_logger(cfg, "run", tmp_path / "tb", tmp_path)


def test_bf16_true_runs_with_a_model_whose_callbacks_call_the_network(tmp_path):
    from seqbench.run import run
    # logger=tensorboard: the callbacks that draw figures (and call the network themselves) run
    record = run(tiny(tmp_path, "model=lru", "trainer.precision=bf16-true", "trainer.max_epochs=1",
                      "logger=tensorboard"), tmp_path / "r")
    assert record["status"] == "done" and record["precision"] == "bf16-true"


def test_a_missing_database_driver_names_the_package_to_install(tmp_path):
    from seqbench.search import SearchSpaceError, open_storage
    with pytest.raises(SearchSpaceError, match=r"driver is not installed .*pip install"):
        open_storage({"storage": "postgresql://seqbench@127.0.0.1:9/none"}, tmp_path, "sincos")
