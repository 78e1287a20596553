"""The small things a new user tripped over: the scores plot's axis, the dashboards' path."""
from pathlib import Path

from seqbench.results import load_records, long_table, summary_table

from .test_results import _classifier_runs


def test_the_scores_axis_spans_the_models_not_the_baselines_far_below(tmp_path, monkeypatch):
    from seqbench import figures
    seen = {}

    def keep(plt, fig, path):
        seen["ylim"] = fig.axes[0].get_ylim()
        seen["legend"] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        plt.close(fig)
        return path
    monkeypatch.setattr(figures, "_save", keep)
    _classifier_runs(tmp_path / "runs", {"gru": [0.76, 0.77, 0.78], "lstm": [0.75, 0.76, 0.77]})
    frame = long_table(load_records([tmp_path / "runs"]))
    figures.plot_scores(frame, summary_table(frame, "trec"), "trec", "s", "acc",
                        {"chance": 0.5, "near": 0.755}, tmp_path)
    low, high = seen["ylim"]
    assert 70 < low < 75 and 78 < high < 85, seen["ylim"]   # the 1-2 point gaps fill the axis
    assert "chance: 50% (below the axis)" in seen["legend"] and "near" in seen["legend"]


def test_the_dashboards_path_is_typed_from_the_users_folder(tmp_path, monkeypatch):
    from seqbench.__main__ import report_line
    monkeypatch.chdir(tmp_path)
    inside = {"model": "gru", "dataset": "trec", "seed": 0, "status": "done",
              "tensorboard": str(tmp_path / "outputs" / "sweeps" / "s" / "tensorboard" / "gru_s0" / "version_0")}
    assert "dashboards: tensorboard --logdir outputs/sweeps/s/tensorboard/gru_s0" in report_line(inside)
    elsewhere = dict(inside, tensorboard="/somewhere/else/tb/gru_s0/version_0")   # a run reused from another folder
    assert "dashboards: tensorboard --logdir /somewhere/else/tb/gru_s0" in report_line(elsewhere)


def test_a_run_records_its_tensorboard_folder_absolute(compose_config, tmp_path, monkeypatch):
    from seqbench.run import run
    from tests.conftest import TINY
    monkeypatch.chdir(tmp_path)
    record = run(compose_config(*TINY, "trainer.max_epochs=1"), Path("relative_run"),
                 tensorboard_root=Path("sweep/tensorboard"))
    assert Path(record["tensorboard"]).is_absolute() and record["tensorboard"].startswith(str(tmp_path))


def test_the_outlier_flag_at_three_seeds_does_not_move_with_the_other_models(tmp_path):
    from seqbench.report import build_report
    gru = [0.80, 0.80, 0.70]   # two seeds that agree and one 10 points below, 400 test examples each
    found = []
    for name, others in (("calm", {"lstm": [0.60, 0.61, 0.605]}), ("noisy", {"lstm": [0.50, 0.70, 0.60],
                                                                         "rnn": [0.40, 0.55, 0.70]})):
        _classifier_runs(tmp_path / name, {"gru": gru, **others})
        built = build_report([tmp_path / name], tmp_path / f"{name}-out", plots=False, resamples=199)
        found.append([(v, s, round(float(z), 1)) for v, s, _, z in built.sections[0].comparisons[0].far if v == "gru"])
    # the floor is gru's own test-set sd (sqrt(0.8 x 0.2 / 400) = 2 points): 10 / 2 = 5 robust sds, in both reports
    assert found[0] == found[1] == [("gru", 2, -5.0)], found
