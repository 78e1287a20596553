"""dataset=text_file: the user's own CSV / TSV / JSONL, and every bad input tried on purpose."""
import json
import os

import pytest
import torch
from hypothesis import given, settings, strategies as st

from seqbench import SeqbenchError
from seqbench.data.batching import BucketBatchSampler, TextSubset, pad_batch
from seqbench.data.text import PAD_ID, EncodedTexts, Vocabulary, tokenize
from seqbench.datasets.text_file import BadInputError, read_splits
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
    checkpoint = torch.load(record["best_checkpoint"], weights_only=True)
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
    ("missing_field.csv", "text,label\nok,pos\njust text\n", r"line 3: 1 field\(s\) where the header has 2; no 'label'"),
    ("data.xlsx", "whatever", r"unknown file ending '.xlsx'"),
])
def test_bad_input_names_the_file_the_line_and_what_to_do(tmp_path, name, content, message):
    path = bad(tmp_path, name, content)
    good = write_examples(tmp_path / "good.csv", examples(4))
    if message is None:  # accepted as it is
        read_splits({"train": path, "test": good})
        return
    with pytest.raises(BadInputError, match=message) as error:
        read_splits({"train": path, "test": good})
    assert str(path) in str(error.value)


def test_a_utf8_byte_order_mark_is_accepted_and_named_when_the_encoding_is_other(tmp_path):
    path = bad(tmp_path, "bom.csv", "\ufefftext,label\ncafé,pos\nthé,neg\n".encode("utf-8"))
    assert read_splits({"train": path, "test": path})["train"][0][0] == "café"
    with pytest.raises(BadInputError, match="byte-order mark; set dataset.encoding=utf-8-sig"):
        read_splits({"train": path, "test": path}, encoding="latin-1")


def test_an_encoding_error_gives_the_right_line_and_byte(tmp_path):
    rows = "".join(f"row number {i},pos\n" for i in range(5000))  # far past the first read buffer
    path = bad(tmp_path, "late.csv", ("text,label\n" + rows).encode() + b"caf\xe9,neg\n")
    with pytest.raises(BadInputError) as error:
        read_splits({"train": path, "test": path})
    offset = len(("text,label\n" + rows).encode()) + 3
    assert f"line 5002, byte 4 of the line (byte {offset} of the file)" in str(error.value)


def test_a_stray_quote_that_merges_rows_is_an_error_with_the_line(tmp_path):
    lines = ["text,label"] + [f"review {i} was fine,pos" if i % 2 else f"review {i} was poor,neg" for i in range(400)]
    unclosed = list(lines)
    unclosed[101] = '"review 100 starts a quote that never closes,neg'
    path = bad(tmp_path, "stray.csv", "\n".join(unclosed) + "\n")
    with pytest.raises(BadInputError, match=r"stray.csv, line 102: a quoted field opened here runs to line 401 .*"
                                            r"stray or unclosed quote merged 300 lines"):
        read_splits({"train": path, "test": path})
    closed_later = list(lines)  # the quote closes 100 rows later: 400 rows would silently become 300
    closed_later[101] = '"review 100 opens a quote,neg'
    closed_later[201] = 'review 200 closes it",pos'
    path = bad(tmp_path, "stray2.csv", "\n".join(closed_later) + "\n")
    with pytest.raises(BadInputError, match=r"stray2.csv, line 102: a quoted 'text' field runs to line 202 and holds "
                                            r"99 line\(s\) that look like rows of their own.*multiline_text=true"):
        read_splits({"train": path, "test": path})
    legit = bad(tmp_path, "multiline.csv", 'text,label\n"a review\nover two lines, with a comma",pos\nshort,neg\n')
    assert len(read_splits({"train": legit, "test": legit})["train"][0]) == 2  # real multi-line texts still pass


def test_unreadable_paths_are_one_clear_line(compose_config, tmp_path):
    good = write_examples(tmp_path / "good.csv", examples(20))
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(SeqbenchError, match="folder.csv is a folder; give the path of a CSV"):
        run(compose_config("dataset=text_file", f"dataset.train={folder}", f"dataset.test={good}"), tmp_path / "r")
    locked = write_examples(tmp_path / "locked.csv", examples(20))
    locked.chmod(0)
    try:
        if os.geteuid() == 0:  # root reads anything: check the message through a faked open
            import builtins
            real_open, real_os_open = builtins.open, os.open

            def refusing(real):
                def opener(file, *args, **kwargs):
                    if str(file) == str(locked):
                        raise PermissionError(13, "Permission denied")
                    return real(file, *args, **kwargs)
                return opener
            builtins.open, os.open = refusing(real_open), refusing(real_os_open)
        with pytest.raises(SeqbenchError, match="locked.csv: permission denied"):
            run(compose_config("dataset=text_file", f"dataset.train={locked}", f"dataset.test={good}"), tmp_path / "r")
    finally:
        if os.geteuid() == 0:
            builtins.open, os.open = real_open, real_os_open
        locked.chmod(0o644)


def test_too_few_examples_for_a_validation_split_and_a_single_class_are_clear(compose_config, tmp_path):
    good = write_examples(tmp_path / "good.csv", examples(20))
    two = write_examples(tmp_path / "two.csv", examples(2))
    with pytest.raises(SeqbenchError, match=r"stratified: it takes round\(0.1 x n\) examples of each class, and with 2 "
                                            r"classes of 1 to 1 training examples that leaves 0 for validation \(and 2 "
                                            r"for training\) of 2; raise dataset.val_fraction \(above 0.5"):
        run(compose_config("dataset=text_file", f"dataset.train={two}", f"dataset.test={good}",
                           f"dataset.cache_dir={tmp_path / 'c'}"), tmp_path / "r")
    single = write_examples(tmp_path / "single.csv", [(t, "good") for t, _ in examples(20)])
    with pytest.raises(SeqbenchError, match="single class \\('good'\\)"):
        run(compose_config("dataset=text_file", f"dataset.train={single}", f"dataset.test={single}",
                           f"dataset.cache_dir={tmp_path / 'c'}"), tmp_path / "r2")
    with pytest.raises(SeqbenchError, match="dataset.encoding='klingon' is not an encoding Python knows"):
        run(compose_config("dataset=text_file", f"dataset.train={good}", f"dataset.test={good}",
                           "dataset.encoding=klingon"), tmp_path / "r3")


def test_every_record_counts_the_examples_read_per_split(compose_config, tmp_path):
    train = write_examples(tmp_path / "train.csv", examples(40))
    test = write_examples(tmp_path / "test.csv", examples(7))
    cfg = compose_config("dataset=text_file", f"dataset.train={train}", f"dataset.test={test}", "model.hidden_size=4",
                         "model.embedding_dim=4", "trainer.max_epochs=1", f"dataset.cache_dir={tmp_path / 'c'}")
    assert run(cfg, tmp_path / "run")["examples"] == {"train": 36, "val": 4, "test": 7}


def test_a_changed_file_at_the_same_path_size_and_time_is_read_again_and_not_reused(compose_config, tmp_path):
    train = write_examples(tmp_path / "train.csv", examples(40))
    test = write_examples(tmp_path / "test.csv", examples(6))
    cfg = compose_config("dataset=text_file", f"dataset.train={train}", f"dataset.test={test}", "model.hidden_size=4",
                         "model.embedding_dim=4", "trainer.max_epochs=1", f"dataset.cache_dir={tmp_path / 'c'}")
    first = run(cfg, tmp_path / "a")
    stat = train.stat()
    swapped = train.read_text().replace("awful", "AWFUL")  # same size
    train.write_text(swapped)
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same modification time
    assert train.stat().st_size == stat.st_size and train.stat().st_mtime_ns == stat.st_mtime_ns
    second = run(cfg, tmp_path / "b")
    assert "reused_from" not in second and second["data_fingerprint"] != first["data_fingerprint"]
    assert "data" in second["plan"]["reason"]


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


def test_the_split_arithmetic_is_stated_for_many_small_classes(compose_config, tmp_path):
    """200 classes of 5 examples: 10% of 1000 is 100, but a split stratified per class rounds
    0.5 to 0 in every class; the message says that, instead of "1000 leave 1000 and 0"."""
    rows = [(f"word{c} text {i}", f"c{c}") for c in range(200) for i in range(5)]
    train = write_examples(tmp_path / "many.csv", rows)
    test = write_examples(tmp_path / "test.csv", rows[:10])
    with pytest.raises(SeqbenchError, match=r"with 200 classes of 5 to 5 training examples that leaves 0 for "
                                            r"validation \(and 1000 for training\) of 1000; raise "
                                            r"dataset.val_fraction \(above 0.1"):
        run(compose_config("dataset=text_file", f"dataset.train={train}", f"dataset.test={test}"), tmp_path / "r")


def test_a_repeated_header_and_look_alike_labels_are_named(tmp_path, caplog):
    from seqbench.datasets.text_file import read_splits
    rows = examples(20)
    joined = write_examples(tmp_path / "joined.csv", rows[:10])
    with open(joined, "a") as stream:
        stream.write("text,label\n" + "".join(f"{t},{l}\n" for t, l in rows[10:]))
    with pytest.raises(BadInputError, match=r"joined.csv, line 12: the header \(text,label\) again"):
        read_splits({"train": joined, "test": joined})
    numbers = write_examples(tmp_path / "numbers.csv", [("a good one", "1"), ("good too", "1"), ("a bad one", "0"),
                                                               ("fine", "1.0")])
    read_splits({"train": numbers, "test": numbers})
    assert "'1', '1.0' look like the same number but are 2 classes" in caplog.text
    assert "class(es) have a single training example ('0', '1.0')" in caplog.text


def test_compressed_and_utf16_files_are_named_for_what_they_are(tmp_path):
    import gzip
    from seqbench.datasets.text_file import read_splits
    packed = tmp_path / "train.csv"
    packed.write_bytes(gzip.compress(b"text,label\ngood,pos\n"))
    with pytest.raises(BadInputError, match="train.csv is gzip-compressed, not plain text; decompress it first"):
        read_splits({"train": packed, "test": packed})
    plain = write_examples(tmp_path / "plain.csv", examples(20))
    with pytest.raises(BadInputError, match="utf-16"):
        read_splits({"train": plain, "test": plain}, encoding="utf-16")