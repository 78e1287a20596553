"""Your data by name: a data set YAML in your own --config-dir works with every command, and the
model name you typed (bilstm_attn, recorded as bilstm_attn_additive) works wherever a variant is named."""
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench.runtime import CONFIG_DIRS_ENV, recorded_variant, search_path, take_config_dirs, user_config_dirs

from .test_text_file import examples, write_examples

TINY_TEXT = ["trainer.enable_progress_bar=false", "trainer.max_epochs=2", "model.hidden_size=8",
             "model.embedding_dim=8"]


def own_config(folder: Path) -> Path:
    """conf/dataset/mypolarity.yaml naming the files once, as a user writes it."""
    train = write_examples(folder / "train.tsv", examples(40))
    test = write_examples(folder / "test.tsv", examples(10))
    (folder / "conf" / "dataset").mkdir(parents=True)
    (folder / "conf" / "dataset" / "mypolarity.yaml").write_text(
        f"defaults:\n  - text_file\n  - _self_\nname: mypolarity\ntrain: {train}\ntest: {test}\nbatch_size: 8\n"
        f"lr: 0.02\n")
    return folder / "conf"


def seqbench(*args, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "seqbench", *map(str, args)], cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_config_dirs_are_taken_from_the_command_line_into_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_DIRS_ENV, "")
    rest = take_config_dirs(["--config-dir", str(tmp_path), "dataset=x", f"--config-dir={tmp_path / 'b'}", "-m"])
    assert rest == ["dataset=x", "-m"]
    assert user_config_dirs() == [str(tmp_path), str(tmp_path / "b")]
    assert search_path() == [f"hydra.searchpath=[file://{tmp_path},file://{tmp_path / 'b'}]"]


def test_the_typed_model_name_is_the_recorded_variant():
    assert recorded_variant("bilstm_attn") == "bilstm_attn_additive"
    assert recorded_variant("bilstm_attn_concat") == "bilstm_attn_concat"
    assert recorded_variant("lstm_bi") == "lstm_bi"   # a recorded name, no model config: as it is


def test_a_plan_composes_with_the_users_config_folder(tmp_path, monkeypatch):
    from seqbench.estimate import describe, make_plan
    monkeypatch.setenv(CONFIG_DIRS_ENV, str(own_config(tmp_path)))
    plan = make_plan(["dataset=mypolarity", "model=gru", f"paths.output_root={tmp_path / 'out'}", *TINY_TEXT],
                     probe=False)
    assert [(r.dataset, r.variant) for r in plan.runs] == [("mypolarity", "gru")]
    assert "1 to train" in describe(plan)[0]


@pytest.mark.slow
def test_every_command_reads_your_data_set_by_name(tmp_path):
    conf = own_config(tmp_path)
    out = f"paths.output_root={tmp_path / 'out'}"
    sweep = ["-m", "dataset=mypolarity", "model=gru,bilstm_attn", "seed=0,1", out, *TINY_TEXT,
             "hydra.sweep.dir=out/sweep"]
    dry = seqbench("--config-dir", conf, *sweep, "--dry-run", cwd=tmp_path)
    assert "4 to train" in dry.stdout, dry.stdout
    planned = seqbench("plan", "--config-dir", conf, *sweep[1:], "--no-probe", cwd=tmp_path)
    assert "4 to train" in planned.stdout
    trained = seqbench("--config-dir", conf, *sweep, cwd=tmp_path)
    assert "plan: not made" not in trained.stdout and "4 of 4 runs done" in trained.stdout + trained.stderr
    # eval, explain: the variant as typed; several seeds' output in no one seed's folder
    evaluated = seqbench("eval", "out/sweep", "dataset=mypolarity", "--variant", "bilstm_attn", "--seeds", "all",
                         "--config-dir", conf, cwd=tmp_path)
    assert "seeds 0, 1" in evaluated.stdout
    evals = list((tmp_path / "out" / "sweep").glob("eval/bilstm_attn_additive-mypolarity-seeds-0-1-*"))
    assert evals and not list((tmp_path / "out" / "sweep").glob("*_s0/eval"))
    explained = seqbench("explain", "out/sweep", "a lovely superb film", "--variant", "bilstm_attn", "--seeds", "all",
                         cwd=tmp_path)
    assert "seeds 0, 1" in explained.stdout and "attention over" in explained.stdout
    searched = seqbench("search", "--config-dir", conf, "hparams_search=text_file", "dataset=mypolarity", out,
                        "hparams_search.variants=[bilstm_attn,gru]", *TINY_TEXT[:2], "--dry-run", cwd=tmp_path)
    assert "yet to estimate from" not in searched.stdout, searched.stdout
    reported = seqbench("report", "out/sweep", "--out", "report", "--no-plots", "--config-dir", conf, cwd=tmp_path)
    assert (tmp_path / "report" / "summary.md").is_file(), reported.stdout
