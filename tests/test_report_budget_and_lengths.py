"""Issue 34: every table says how many runs the epoch cap stopped (and how many were still
improving there) and how many test texts max_len cut; classifiers get accuracy by input length
and every seed's confusion matrix beside the pooled one. Tiny synthetic records, no training."""
from pathlib import Path

import numpy as np
import pandas as pd

from seqbench.data.spec import TextSource, data_fingerprint
from seqbench.record import write_json_atomic
from seqbench.report import build_report, cap_words, length_buckets
from seqbench.results import budget_words, cap_flags

LABELS = ["ABBR", "DESC", "ENTY"]
SHORT, LONG = "what is it ?", "which of the many rivers that cross the old city is the longest one ?"   # 4 and 15 tokens


def _record(model, seed, epochs, best_epoch, max_epochs=10, patience=4, **extra):
    return {"status": "done", "model": model, "dataset": "trec", "seed": seed, "task": "classification",
            "config_hash": f"h-{model}", "data_fingerprint": "d1", "label_names": LABELS,
            "test": {"acc": 0.8, "f1": 0.8}, "val_best": {"acc": 0.8}, "epochs": epochs, "best_epoch": best_epoch,
            "history": [{"epoch": e, "val/acc": 0.5} for e in range(epochs)],
            "config": {"model": {"name": model}, "dataset": {"name": "trec", "batch_size": 16, "max_len": 8},
                       "trainer": {"max_epochs": max_epochs, "patience": patience},
                       "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.003}}, **extra}


def test_the_cap_rule_counts_runs_the_cap_stopped_and_those_still_improving():
    assert cap_flags(_record("a", 0, epochs=10, best_epoch=9)) == (True, True)     # best in the last epoch
    assert cap_flags(_record("a", 0, epochs=10, best_epoch=8)) == (True, True)     # within ceil(4 / 2) = 2 epochs
    assert cap_flags(_record("a", 0, epochs=10, best_epoch=7)) == (True, False)    # patience not run out, flat
    assert cap_flags(_record("a", 0, epochs=10, best_epoch=6)) == (True, False)
    assert cap_flags(_record("a", 0, epochs=10, best_epoch=5)) == (False, False)   # patience ran out at the cap
    assert cap_flags(_record("a", 0, epochs=7, best_epoch=2)) == (False, False)    # stopped early
    # No early stopping (patience at the cap): every run ends at the cap; improving = best in the last epoch.
    assert cap_flags(_record("a", 0, epochs=10, best_epoch=9, patience=10)) == (True, True)
    assert cap_flags(_record("a", 0, epochs=10, best_epoch=8, patience=10)) == (True, False)
    assert cap_flags({**_record("a", 0, epochs=10, best_epoch=9), "status": "failed"}) == (None, None)


def _runs(root: Path, texts=True) -> None:
    """gru right on short texts only, lstm right everywhere; 3 seeds each, 40 test texts (half short)."""
    lengths = np.array([4, 15] * 20)
    target = np.arange(40) % 3
    for model, epochs, best in (("gru", 10, 9), ("lstm", 6, 1)):
        for seed in range(3):
            folder = root / f"{model}_s{seed}"
            folder.mkdir(parents=True)
            right = (lengths == 4) | (model == "lstm") | (np.arange(40) < 2 * seed)
            frame = pd.DataFrame({"index": range(40), "target": target,
                                  "predicted": np.where(right, target, (target + 1) % 3)})
            if texts:
                frame["text"] = [SHORT if n == 4 else LONG for n in lengths]
            frame.to_csv(folder / "predictions.csv", index=False)
            write_json_atomic(folder / "record.json", _record(model, seed, epochs, best, predictions="predictions.csv",
                                                              test={"acc": float(right.mean()), "f1": 0.5}))


def test_every_table_states_the_cap_share_and_what_max_len_cut(tmp_path):
    _runs(tmp_path / "runs")
    built = build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert ("At this budget (max_epochs 10, patience 4, max_len 8) the epoch cap stopped 3 of 6 runs (gru 3 of 3), the "
            "others stopped early; still improving at the cap (a new best validation score in its last 2 epochs) in "
            "3 of 6 (gru 3 of 3).") in text
    assert "20 of 40 test texts (50.0%) are longer than max_len 8 and were cut to it." in text
    assert ("  budget: max_epochs 10, patience 4, max_len 8: the epoch cap stopped 3 of 6 runs, 3 of them still "
            "improving; 20 of 40 test texts longer than max_len") in built.terminal()
    assert "improving at the cap" in (tmp_path / "out" / "report.html").read_text()
    table = pd.read_csv(tmp_path / "out" / "summary_trec.csv").set_index("model")
    assert table.loc["gru", "stopped_by_cap"] == 3 and table.loc["lstm", "stopped_by_cap"] == 0


def test_accuracy_by_input_length_per_variant_with_its_csv(tmp_path):
    _runs(tmp_path / "runs")
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "### trec: accuracy by input length" in text
    assert "the predictions' text column, counted with seqbench's tokenizer" in text
    assert "| variant | ≤ 4 tokens (n = 20) | > 4 tokens (n = 20) |" in text
    assert "| lstm | 100.0 ± 0.0 | 100.0 ± 0.0 |" in text
    assert "| gru | 100.0 ± 0.0 | 5.0 ± 5.0 |" in text    # long texts: seeds 0, 1, 2 right on 0, 1, 2 of 20
    frame = pd.read_csv(tmp_path / "out" / "by_length_trec.csv")
    gru = frame[frame["variant"] == "gru"].set_index("tokens")
    assert gru.loc["> 4", "acc_mean_pct"] == 5.0 and gru.loc["> 4", "seeds"] == 3
    assert gru.loc["> 4", "test_examples"] == 20 and gru.loc["> 4", "min_tokens"] == 15


def test_lengths_from_the_data_sets_own_files_only_when_they_are_the_runs_files(tmp_path, monkeypatch):
    """No text in the predictions: the data set's files are found under the data root, read by its
    own reader and accepted only with the runs' fingerprint; training lengths come with them."""
    import seqbench.registry as registry
    from seqbench.data.declare import text_entry
    data = tmp_path / "data" / "toy"
    data.mkdir(parents=True)
    lengths = np.array([4, 15] * 20)
    target = np.arange(40) % 3
    (data / "test.txt").write_text("".join(f"{t}\t{SHORT if n == 4 else LONG}\n" for n, t in zip(lengths, target)))
    (data / "train.txt").write_text("".join(f"{i % 3}\t{LONG}\n" for i in range(30)))

    def read(located):
        return {split: ([line.split("\t")[1] for line in Path(path).read_text().splitlines()],
                        [int(line.split("\t")[0]) for line in Path(path).read_text().splitlines()])
                for split, path in located.items()}
    source = TextSource("toy", lambda root: None, read, tuple(LABELS))
    entry = text_entry("toy", dict, lambda config: source, module=__name__)
    monkeypatch.setitem(registry.datasets(), "toy", entry)
    monkeypatch.setenv("SEQBENCH_DATA", str(tmp_path / "data"))
    fingerprint = data_fingerprint(source, {"train": data / "train.txt", "test": data / "test.txt"})
    _runs(tmp_path / "runs", texts=False)
    for path in (tmp_path / "runs").glob("*/record.json"):
        import json
        record = json.loads(path.read_text())
        record.update(dataset_kind="toy", data_fingerprint=fingerprint,
                      data={"files": {"train": "train.txt", "test": "test.txt"}})   # archived: names only
        write_json_atomic(path, record)
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "from the data set's own files (test.txt, train.txt" in text
    assert "Test texts: mean 9.5 tokens (median 9.5, 40 texts); training texts: mean 15.0 tokens" in text
    assert "| variant | ≤ 4 tokens (n = 20; train 0%) | > 4 tokens (n = 20; train 100%) |" in text
    # Other files under the same name: not the runs' data, so no lengths, and the report says why.
    (data / "test.txt").write_text((data / "test.txt").read_text().replace("what", "who"))
    build_report([tmp_path / "runs"], tmp_path / "out2", plots=False, resamples=199)
    text = (tmp_path / "out2" / "summary.md").read_text()
    assert ("Not shown: no text lengths (the data set's files found on this machine are not the ones these runs "
            "used: their fingerprint differs).") in text
    assert "Test texts longer than max_len: not known here" in text
    assert not (tmp_path / "out2" / "by_length_trec.csv").exists()


def test_quartile_buckets_merge_equal_edges():
    assert [label for *_, label in length_buckets(np.array([3, 5, 6, 7, 8, 9, 12, 30]))] == \
        ["≤ 5", "6-7", "8-9", "> 9"]
    assert [label for *_, label in length_buckets(np.array([4, 4, 4, 15]))] == ["≤ 4", "> 4"]
    assert [label for *_, label in length_buckets(np.array([7, 7, 7]))] == ["all"]


def test_every_seeds_confusion_matrix_beside_the_pooled_one(tmp_path):
    _runs(tmp_path / "runs")
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    out = tmp_path / "out"
    seeds = pd.read_csv(out / "confusion_by_seed_trec.csv")
    pooled = pd.read_csv(out / "confusion_trec.csv")
    assert set(seeds["seed"]) == {0, 1, 2} and (seeds["count"] > 0).all()  # the non-zero cells only
    summed = seeds.groupby(["variant", "true", "predicted"])["count"].sum().reset_index()
    merged = pooled.merge(summed, on=["variant", "true", "predicted"], how="left").fillna({"count_y": 0})
    assert len(pooled) == 2 * 9 and merged.eval("count_x == count_y").all()
    text = (out / "summary.md").read_text()
    assert "Confusion matrices of every seed (6 runs) beside the pooled ones: `confusion_by_seed_trec.csv`" in text
    assert "gru seed 2" not in text   # summary.md stays short: the matrices are in the page and the CSV
    page = (out / "report.html").read_text()
    assert "<details><summary>trec: confusion matrix of every seed (6 runs" in page
    assert page.count('<table class="small">') == 6 and "<caption>gru seed 2 (" in page


def test_cap_words_say_nothing_without_epochs(tmp_path):
    _runs(tmp_path / "runs")
    built = build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    section = built.sections[0]
    for record in section.records:
        record.pop("epochs")
    assert cap_words(section) == ""


def test_the_budget_line_never_gives_tuned_runs_the_untuned_defaults_note():
    """A search's retrained runs carry the data set's note on how its defaults were chosen (it is in their
    config), but they were tuned: the budget line says so and keeps the note for the untuned runs."""
    note = {"defaults_from": "lr chosen on validation for bilstm_attn"}

    def with_note(record):
        record["config"]["dataset"].update(note)
        return record
    untuned = [with_note(_record("gru", s, 6, 1)) for s in range(2)]
    tuned = [with_note(_record("lstm", s, 6, 1, tuned={"study": "trec-lstm-1", "trials": 12})) for s in range(2)]
    assert budget_words(untuned).endswith("defaults: lr chosen on validation for bilstm_attn.")
    both = budget_words(untuned + tuned)
    assert "defaults of the untuned variants: lr chosen on validation for bilstm_attn" in both
    assert both.endswith("1 tuned variant: each with its own best configuration from an equal-budget search of "
                         "at most 12 trials, chosen on validation (trials run: the search's studies.md).")
    # A run whose search was bounded in epochs says that budget (from the search settings in its
    # config), the trial cap beside it.
    by_epochs = [_record("lstm", s, 6, 1, tuned={"study": "trec-lstm-1", "trials": 40}) for s in range(2)]
    for record in by_epochs:
        record["config"]["hparams_search"] = {"budget_epochs": 160, "trials": 40}
    assert "equal-budget search of 160 training epochs (at most 40 trials)" in budget_words(by_epochs)
    only_tuned = budget_words(tuned)
    assert "lr chosen on validation for bilstm_attn" not in only_tuned and "1 tuned variant" in only_tuned


def test_the_budget_line_says_where_a_run_stopped_when_solved():
    """trainer.stop_when_solved: the budget line gives the stop line the records carry (the threshold
    with its margin), or the first-crossing rule of runs from before the margin."""
    plain = [_record("gru", s, 6, 1) for s in range(2)]
    assert "stopped at its first validation" not in budget_words(plain) and "on a plateau" not in budget_words(plain)
    margin = [_record("gru", s, 6, 1) for s in range(2)]
    for record in margin:
        record["config"]["trainer"].update(stop_when_solved=True, patience=1000)
        record["stops_when_validation_meets"] = 0.005
    assert budget_words(margin).startswith("10 epochs, no early stopping on a plateau")
    assert "each run stopped at its first validation at 0.005 (the solved threshold with half its error allowance" \
        in budget_words(margin)
    for record in margin:
        del record["stops_when_validation_meets"]
    assert "each run stopped at its first validation that met the solved threshold, else at the cap" \
        in budget_words(margin)
