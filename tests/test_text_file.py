"""dataset=text_file: the user's own CSV / TSV / JSONL, and every bad input tried on purpose."""
import json
import os

import pytest
import torch
from hypothesis import given, settings, strategies as st

from seqbench import SeqbenchError
from seqbench.data.batching import BucketBatchSampler, TextSubset, pad_batch
from seqbench.data.text import PAD_ID, UNK_ID, EncodedTexts, Vocabulary, tokenize
from seqbench.data.text_file import BadInputError, read_splits
from seqbench.record import write_json_atomic
from seqbench.run import run

POSITIVE = ["a lovely superb film", "great acting, lovely story", "superb and great"]
NEGATIVE = ["a dull awful film", "boring, awful story", "dull and boring"]


def write_examples(path, rows, kind=None):
    kind = kind or path.suffix.lstrip(".")
    if kind == "jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": l}) + "\n" for t, l in rows))
    else:
        sep = "," if kind == "csv" else "\t"
        path.write_text("text" + sep + "label\n" + "".join(f'"{t}"{sep}{l}\n' for t, l in rows))
    return path


def examples(n):
    return [(POSITIVE[i % 3], "good") if i % 2 else (NEGATIVE[i % 3], "bad") for i in range(n)]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_text_file_runs_end_to_end_with_names_for_labels(compose_config, tmp_path, suffix):
    train = write_examples(tmp_path / f"train{suffix}", examples(60))
    test = write_examples(tmp_path / f"test{suffix}", examples(10))
    cfg = compose_config("dataset=text_file", f"dataset.train={train}", f"dataset.test={test}", "model=gru",
                         "model.hidden_size=8", "model.embedding_dim=8", "trainer.enable_progress_bar=false",
                         "trainer.max_epochs=10", "dataset.lr=0.02", "dataset.batch_size=8",
                         f"dataset.cache_dir={tmp_path / 'cache'}")
    record = run(cfg, tmp_path / "run")
    assert record["status"] == "done" and record["test"]["acc"] == 1.0
    assert record["label_names"] == ["bad", "good"]
    checkpoint = torch.load(record["best_checkpoint"], weights_only=False)
    assert checkpoint["seqbench"]["spec"]["label_names"] == ("bad", "good")


def test_a_validation_file_replaces_the_split(tmp_path):
    paths = {"train": write_examples(tmp_path / "t.csv", examples(6)), "val": write_examples(tmp_path / "v.tsv", examples(2)),
             "test": write_examples(tmp_path / "x.jsonl", examples(2))}
    splits = read_splits(paths)
    assert splits["label_names"] == ["bad", "good"] and splits["val"][1] == [0, 1]


def bad(tmp_path, name, content: bytes | str):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize("name,content,message", [
    ("empty.csv", "", "holds no examples"),
    ("header_only.csv", "text,label\n", "holds no examples"),
    ("cols.csv", "review,sentiment\nnice,pos\n", r"line 2: no column 'text', 'label'; columns there: 'review', 'sentiment'.*dataset.text_column"),
    ("latin.csv", "text,label\ncaf\xe9 ok,pos\n".encode("latin-1"), r"not valid utf-8.*dataset.encoding"),
    ("number.jsonl", '{"text": "ok", "label": "pos"}\n{"text": "ok", "label": 1}\n', r"line 2: the label 1 is a int; labels must be strings"),
    ("nested.jsonl", '{"text": "ok", "label": {"a": 1}}\n', r"line 1: the label .* is a dict"),
    ("notjson.jsonl", "text,label\nok,pos\n", r"line 1: not JSON"),
    ("fields.tsv", "text\tlabel\nok\tpos\textra\n", r"line 2: more fields than the header"),
    ("nolabel.csv", "text,label\nok,\n", r"line 2: empty label"),
    ("data.xlsx", "whatever", r"unknown file ending '.xlsx'"),
])
def test_bad_input_names_the_file_the_line_and_what_to_do(tmp_path, name, content, message):
    path = bad(tmp_path, name, content)
    good = write_examples(tmp_path / "good.csv", examples(4))
    with pytest.raises(BadInputError, match=message) as error:
        read_splits({"train": path, "test": good})
    assert str(path) in str(error.value)


def test_a_label_that_train_lacks_is_an_error_with_the_line(tmp_path):
    train = write_examples(tmp_path / "train.csv", examples(4))
    test = write_examples(tmp_path / "test.csv", [("fine", "good"), ("odd", "neutral")])
    with pytest.raises(BadInputError, match=r"test.csv, line 3: the label 'neutral'.*its labels: bad, good"):
        read_splits({"train": train, "test": test})


def test_encoding_can_be_set(tmp_path):
    train = bad(tmp_path, "train.csv", "text,label\ncafé au lait,pos\nthé,neg\n".encode("latin-1"))
    splits = read_splits({"train": train, "test": train}, encoding="latin-1")
    assert splits["train"][0][0] == "café au lait"


def test_empty_texts_are_kept_as_unknown_and_long_lines_are_truncated(compose_config, tmp_path):
    rows = examples(40) + [("   ", "good"), ("", "bad"), ("word " * 200_000, "good")]
    train = write_examples(tmp_path / "train.csv", rows)
    test = write_examples(tmp_path / "test.csv", examples(6))
    cfg = compose_config("dataset=text_file", f"dataset.train={train}", f"dataset.test={test}", "dataset.max_len=50",
                         "model.hidden_size=4", "model.embedding_dim=4", "trainer.enable_progress_bar=false",
                         "trainer.max_epochs=1", f"dataset.cache_dir={tmp_path / 'cache'}")
    assert run(cfg, tmp_path / "run")["status"] == "done"


def test_text_file_without_paths_says_which_to_set(compose_config, tmp_path):
    with pytest.raises(SeqbenchError, match="needs dataset.train=PATH and dataset.test=PATH"):
        run(compose_config("dataset=text_file"), tmp_path)
    with pytest.raises(SeqbenchError, match=r"dataset.train: .*missing.csv does not exist"):
        run(compose_config("dataset=text_file", f"dataset.train={tmp_path / 'missing.csv'}",
                           f"dataset.test={tmp_path / 'missing.csv'}"), tmp_path / "r")


def test_unwritable_results_folder_is_a_clear_error(compose_config, tmp_path):
    blocker = tmp_path / "a-file"  # a folder cannot be made inside a file, even by root
    blocker.write_text("")
    with pytest.raises(SeqbenchError, match="cannot write the run record.*paths.output_root"):
        run(compose_config(), blocker / "run")


def test_full_disk_is_a_clear_error_and_earlier_records_stay(compose_config, tmp_path, monkeypatch):
    earlier = write_json_atomic(tmp_path / "earlier" / "record.json", {"status": "done", "seed": 9})

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(SeqbenchError, match="No space left on device.*Free some disk space"):
        run(compose_config(), tmp_path / "run")
    assert json.loads(earlier.read_text()) == {"status": "done", "seed": 9}
    assert not (tmp_path / "run" / "record.json").exists()


# ---- property tests: any text, any length ----

@settings(max_examples=200, deadline=None)
@given(st.text())
def test_tokenizer_never_crashes_and_tokens_are_non_empty_lowercase_without_spaces(text):
    tokens = tokenize(text)
    assert all(token and not any(ch.isspace() for ch in token) for token in tokens)
    assert all(token == token.lower() for token in tokens)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=20), st.integers(3, 30))
def test_vocabulary_and_encoding_stay_consistent(texts, size):
    vocabulary = Vocabulary.build([tokenize(t) for t in texts], size)
    assert len(vocabulary) <= size and vocabulary.itos[:2] == ["<pad>", "<unk>"]
    for text in texts:
        ids = vocabulary.encode(tokenize(text))
        assert len(ids) >= 1 and all(1 <= i < len(vocabulary) for i in ids)  # never the pad id
        assert len(ids) == max(1, len(tokenize(text)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(1, 50), min_size=1, max_size=30), min_size=1, max_size=40),
       st.integers(1, 9), st.booleans())
def test_batches_keep_lengths_masks_and_ids_consistent(sequences, batch_size, shuffle):
    texts = EncodedTexts.from_lists(sequences, [0] * len(sequences))
    subset = TextSubset(texts)
    seen = []
    for rows in BucketBatchSampler(subset.lengths, batch_size, shuffle=shuffle, pool_batches=2):
        batch = pad_batch([subset[i] for i in rows])
        for row, index in enumerate(rows):
            length = len(sequences[index])
            assert batch["lengths"][row] == length
            assert batch["inputs"][row, :length].tolist() == sequences[index]
            assert torch.all(batch["inputs"][row, length:] == PAD_ID)
        seen.extend(rows)
    assert sorted(seen) == list(range(len(sequences)))
