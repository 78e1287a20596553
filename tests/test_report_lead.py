"""Issue 47: the summary leads with the tuned table (``seqbench report --lead``), the defaults
second. Tiny synthetic records, no training."""
import numpy as np
import pytest

from seqbench import SeqbenchError
from seqbench.report import build_report
from seqbench.report.cli import main as report_main
from tests.test_identity import tuned_or_default_run


def _two_folders(root):
    """Defaults: gru 0.70, lstm 0.80. Tuned: gru 0.90, lstm 0.75 (the ranking turns round)."""
    rng = np.random.default_rng(11)
    target = rng.integers(0, 2, 400)
    (root / "defaults").mkdir()
    (root / "tuned").mkdir()
    for name, default, tuned in (("gru", 0.70, 0.90), ("lstm", 0.80, 0.75)):
        for seed in range(4):
            tuned_or_default_run(root / "defaults" / f"{name}{seed}", name, seed, f"d-{name}", target,
                                 rng.random(400) < default, None)
            tuned_or_default_run(root / "tuned" / f"{name}{seed}", name, seed, f"t-{name}", target,
                                 rng.random(400) < tuned, {"study": f"trec-{name}", "trials": 40, "trials_finished": 9,
                                                           "params": {}},
                                 search={"budget_epochs": 160, "trials": 40})   # as a retrained run's config has


def test_the_lead_table_opens_the_summary_and_the_defaults_come_second(tmp_path):
    _two_folders(tmp_path)
    build_report([tmp_path / "defaults"], tmp_path / "out", plots=False, resamples=199, lead=[tmp_path / "tuned"])
    text = (tmp_path / "out" / "summary.md").read_text()
    headline, verdict, defaults = (text.index("## Headline: tuned against tuned"),
                                   text.index("## Verdict of the main folders"), text.index("\n## trec\n"))
    assert headline < verdict < defaults
    lead = text[headline:verdict]
    assert "chosen on validation by its own study (2 studies" in lead and "seeds 0, 1, 2, 3" in lead
    # The lead's table ranks the tuned runs (gru first), the defaults' table lstm first.
    assert lead.index("| gru (tuned) |") < lead.index("| lstm (tuned) |")
    assert "best: gru (tuned); behind: lstm (tuned)" in lead
    main_table = text[defaults:]
    assert main_table.index("| lstm |") < main_table.index("| gru |")
    again = next(line for line in text.splitlines() if "this report again" in line)
    assert "--lead ../tuned" in again
    assert "Headline: tuned against tuned" in (tmp_path / "out" / "report.html").read_text()


def test_without_lead_the_summary_opens_with_the_verdict_as_before(tmp_path):
    _two_folders(tmp_path)
    build_report([tmp_path / "defaults"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "Headline" not in text and "## Verdict\n" in text


def test_a_lead_folder_without_records_is_one_clear_error_and_writes_nothing(tmp_path, capsys):
    _two_folders(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeqbenchError, match="--lead: no run record found under"):
        build_report([tmp_path / "defaults"], tmp_path / "out", plots=False, resamples=199, lead=[tmp_path / "empty"])
    assert not (tmp_path / "out").exists()   # checked before the report folder is touched
    with pytest.raises(SystemExit) as exit_:
        report_main([str(tmp_path / "defaults"), "--out", str(tmp_path / "out2"), "--no-plots",
                     "--lead", str(tmp_path / "nowhere")])
    assert exit_.value.code == 2 and "error: --lead: " in capsys.readouterr().err   # the flag known, its folder not


def test_a_lead_data_set_the_main_folders_lack_says_so_and_each_lead_data_set_gets_its_table(tmp_path):
    _two_folders(tmp_path)
    rng = np.random.default_rng(2)
    target = rng.integers(0, 2, 400)
    (tmp_path / "tuned_other").mkdir()
    for seed in range(3):   # a second data set in the lead folders only
        folder = tmp_path / "tuned_other" / f"gru{seed}"
        tuned_or_default_run(folder, "gru", seed, "t-other", target, rng.random(400) < 0.8,
                             {"study": "other-gru", "trials": 5, "params": {}})
        record = (folder / "record.json")
        record.write_text(record.read_text().replace('"trec"', '"polarity"'))
    build_report([tmp_path / "defaults"], tmp_path / "out", plots=False, resamples=199,
                 lead=[tmp_path / "tuned", tmp_path / "tuned_other"], lead_title="my headline")
    text = (tmp_path / "out" / "summary.md").read_text()
    lead = text[text.index("## Headline: my headline"):text.index("## Verdict of the main folders")]
    assert "### polarity: my headline" in lead and "### trec: my headline" in lead
    assert "the main folders have no runs of this data set." in lead
    assert "the default configurations follow in the section trec below." in lead
    again = next(line for line in text.splitlines() if "this report again" in line)
    assert "--lead ../tuned --lead ../tuned_other --lead-title 'my headline'" in again


def test_the_tuned_beside_default_table_gives_the_trials_run_and_the_cap(tmp_path):
    _two_folders(tmp_path)
    build_report([tmp_path / "defaults", tmp_path / "tuned"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "| same seeds | trials (cap) | best parameters |" in text
    row = next(line for line in text.splitlines() if line.startswith("| gru |") and "| yes |" in line)
    assert "| 9 (40) |" in row
    assert "equal-budget search of 160 training epochs (at most 40 trials)" in text
