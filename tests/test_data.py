import os
import hashlib
import io
import tarfile
import urllib.error
from collections import Counter

import pytest
import torch

from seqbench import SeqbenchError
from seqbench.data.batching import BucketBatchSampler, TextSubset, pad_batch, stratified_split
from seqbench.data.declare import TextSource, locate_text
from seqbench.data.modules import TextClassificationData, load_text_corpus
from seqbench.datasets import imdb, trec
from seqbench.datasets.sincos import make_sincos
from seqbench.data.sources import ChecksumError, DataUnavailableError, RemoteFile, fetch, resolve_data_root
from seqbench.data.text import PAD_ID, UNK_ID, EncodedTexts, TextSettings, Vocabulary, encode_corpus, tokenize


def test_tokenize_lowercases_drops_html_breaks_and_splits_punctuation():
    assert tokenize("Great movie!<br /><br />I DON'T regret it...") == \
        ["great", "movie", "!", "i", "don't", "regret", "it", ".", ".", "."]
    assert tokenize("") == [] and tokenize("   \n") == []
    assert tokenize("Café naïve") == ["café", "naïve"]


def test_vocabulary_comes_from_train_only_with_size_and_min_frequency():
    raw = {"train": (["a a a b b c", "a b d"], [0, 1]), "test": (["zzz a", ""], [1, 0])}
    corpus = encode_corpus(raw, ["x", "y"], TextSettings(max_len=3, vocab_size=4, min_freq=2))
    assert corpus.vocabulary.itos == ["<pad>", "<unk>", "a", "b"]  # c, d too rare; size caps at 4
    assert corpus.splits["test"].sequence(0).tolist() == [UNK_ID, corpus.vocabulary.stoi["a"]]
    assert corpus.splits["test"].sequence(1).tolist() == [UNK_ID]  # empty text: one <unk>
    assert corpus.empty_texts == {"train": 0, "test": 1}
    assert corpus.splits["train"].lengths.tolist() == [3, 3]  # truncated to max_len


def test_vocabulary_order_does_not_depend_on_input_order():
    texts = [["b", "a"], ["c", "a", "b"]]
    assert Vocabulary.build(texts, 10).itos == Vocabulary.build(texts[::-1], 10).itos == ["<pad>", "<unk>", "a", "b", "c"]


def test_stratified_split_is_seeded_disjoint_and_keeps_class_shares():
    labels = torch.tensor([0] * 80 + [1] * 20)
    train, val = stratified_split(labels, 0.1, seed=3)
    assert sorted(train.tolist() + val.tolist()) == list(range(100))
    assert Counter(labels[val].tolist()) == {0: 8, 1: 2}
    again, _ = stratified_split(labels, 0.1, seed=3)
    assert torch.equal(train, again)
    _, other_val = stratified_split(labels, 0.1, seed=4)
    assert not torch.equal(val, other_val)


def test_bucket_sampler_covers_every_index_once_groups_lengths_and_reshuffles_per_epoch():
    lengths = torch.randint(1, 400, (1000,), generator=torch.Generator().manual_seed(0))
    sampler = BucketBatchSampler(lengths, batch_size=32, shuffle=True, seed=1, pool_batches=10)
    first = list(sampler)
    assert sorted(i for b in first for i in b) == list(range(1000))
    assert len(first) == len(sampler)
    spread = sum(int(lengths[b].max() - lengths[b].min()) for b in first) / len(first)
    assert spread < 60  # random batches of 32 would spread over ~370
    assert first == list(sampler)  # same epoch, same order
    sampler.set_epoch(1)
    assert first != list(sampler)
    evaluation = list(BucketBatchSampler(lengths, batch_size=100, shuffle=False))
    flat = [i for b in evaluation for i in b]
    assert lengths[flat].tolist() == sorted(lengths.tolist())


def test_pad_batch_right_pads_and_reports_lengths():
    texts = EncodedTexts.from_lists([[5, 6, 7], [8]], [1, 0])
    batch = pad_batch([TextSubset(texts)[i] for i in range(2)])
    assert batch["inputs"].tolist() == [[5, 6, 7], [8, PAD_ID, PAD_ID]]
    assert batch["lengths"].tolist() == [3, 1] and batch["targets"].tolist() == [1, 0]


def test_sincos_is_seeded_and_consistent():
    inputs, targets = make_sincos(4, 30, omega=1.0, dt=0.2, seed=7)
    assert inputs.shape == (4, 30, 1) and targets.shape == (4, 30)
    torch.testing.assert_close(inputs.squeeze(-1) ** 2 + targets ** 2, torch.ones(4, 30))
    torch.testing.assert_close(make_sincos(4, 30, 1.0, 0.2, seed=7)[0], inputs)
    assert not torch.equal(make_sincos(4, 30, 1.0, 0.2, seed=8)[0], inputs)


# ---- files: checksums, downloads, malformed input ----

def remote_for(content: bytes, name="data.txt") -> RemoteFile:
    return RemoteFile(name, "https://example.invalid/" + name, "md5", hashlib.md5(content).hexdigest())


def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr("urllib.request.urlopen", refuse)


def test_missing_file_without_network_names_url_files_and_how_to_point_at_a_copy(tmp_path, monkeypatch):
    no_network(monkeypatch)
    with pytest.raises(DataUnavailableError) as error:
        trec.locate(tmp_path)
    message = str(error.value)
    assert "https://cogcomp.seas.upenn.edu/Data/QA/QC/train_5500.label" in message
    assert str(tmp_path / "trec" / "train_5500.label") in message
    assert "dataset.root" in message and "SEQBENCH_DATA" in message
    assert not list(tmp_path.rglob("*.part"))  # nothing half-downloaded is left behind


def test_checksum_mismatch_is_an_error_and_the_file_is_not_used(tmp_path):
    remote = remote_for(b"good content")
    (tmp_path / remote.name).write_bytes(b"bad content")
    with pytest.raises(ChecksumError, match="corrupt or incomplete.*not used"):
        fetch(remote, tmp_path)


def test_download_is_verified_before_it_is_kept(tmp_path, monkeypatch):
    remote = remote_for(b"expected")
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: io.BytesIO(b"tampered"))
    with pytest.raises(ChecksumError):
        fetch(remote, tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout: io.BytesIO(b"expected"))
    assert fetch(remote, tmp_path).read_bytes() == b"expected"


def test_data_root_prefers_config_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQBENCH_DATA", str(tmp_path / "env"))
    assert resolve_data_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv("SEQBENCH_DATA")
    assert resolve_data_root(None).parts[-2:] == ("seqbench", "data")


def test_trec_parser_reads_latin1_and_reports_malformed_lines_with_file_and_line(tmp_path):
    good = tmp_path / "ok.label"
    good.write_bytes("HUM:ind Who wrote Les Misérables ?\nNUM:date When ?\n".encode("latin-1"))
    texts, labels = trec.parse(good)
    assert texts[0] == "Who wrote Les Misérables ?" and labels == [3, 5]
    bad = tmp_path / "bad.label"
    bad.write_text("HUM:ind Who ?\nthis line has no label\n")
    with pytest.raises(SeqbenchError, match=r"bad\.label, line 2"):
        trec.parse(bad)


def make_imdb_archive(path, per_class=3):
    with tarfile.open(path, "w:gz") as archive:
        for split in ("train", "test"):
            for label in ("pos", "neg"):
                for i in range(per_class):
                    data = f"A {label} review<br />number {i}".encode()
                    info = tarfile.TarInfo(f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
                    urls = tarfile.TarInfo(f"aclImdb/{split}/urls_{label}.txt")  # not a review
                    urls.size = 0
                    archive.addfile(urls, io.BytesIO(b""))


def test_imdb_reader_takes_reviews_and_labels_from_the_official_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(imdb, "EXPECTED_PER_SPLIT", 6)
    make_imdb_archive(tmp_path / "a.tar.gz")
    splits = imdb.read(tmp_path / "a.tar.gz")
    assert len(splits["train"][0]) == 6 and sorted(splits["test"][1]) == [0, 0, 0, 1, 1, 1]
    monkeypatch.setattr(imdb, "EXPECTED_PER_SPLIT", 25000)
    with pytest.raises(SeqbenchError, match="found 6 train reviews, expected 25000"):
        imdb.read(tmp_path / "a.tar.gz")


def test_corrupt_imdb_archive_in_root_is_refused(tmp_path):
    (tmp_path / "aclImdb_v1.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(ChecksumError, match="aclImdb_v1.tar.gz is corrupt"):
        imdb.locate(tmp_path)


def tiny_source(tmp_path, reads: list) -> TextSource:
    data = tmp_path / "tiny.txt"
    data.write_text("x")

    def read(path):
        reads.append(path)
        return {"train": ([f"good film {i}" for i in range(10)] + [f"bad film {i}" for i in range(10)], [1] * 10 + [0] * 10),
                "test": (["good", "bad"], [1, 0])}
    return TextSource("tiny", lambda root: data, read, ("neg", "pos"))


def test_tokenised_corpus_is_cached_and_not_tokenised_twice(tmp_path):
    reads = []
    source = tiny_source(tmp_path, reads)
    first = load_text_corpus(source, source.locate(tmp_path), TextSettings(max_len=5), tmp_path / "cache")
    second = load_text_corpus(source, source.locate(tmp_path), TextSettings(max_len=5), tmp_path / "cache")
    assert len(reads) == 1
    assert second.vocabulary.itos == first.vocabulary.itos
    assert torch.equal(second.splits["train"].ids, first.splits["train"].ids)
    load_text_corpus(source, source.locate(tmp_path), TextSettings(max_len=4), tmp_path / "cache")  # new settings, new key
    assert len(reads) == 2


def test_token_cache_is_keyed_by_content_and_force_rebuilds_it(tmp_path):
    reads = []
    source = tiny_source(tmp_path, reads)
    data = tmp_path / "tiny.txt"
    load_text_corpus(source, source.locate(tmp_path), TextSettings(max_len=5), tmp_path / "cache")
    stat = data.stat()
    data.write_text("y")  # same size, same time, other content
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    load_text_corpus(source, source.locate(tmp_path), TextSettings(max_len=5), tmp_path / "cache")
    assert len(reads) == 2
    load_text_corpus(source, source.locate(tmp_path), TextSettings(max_len=5), tmp_path / "cache")
    assert len(reads) == 2
    load_text_corpus(source, source.locate(tmp_path), TextSettings(max_len=5), tmp_path / "cache", rebuild=True)
    assert len(reads) == 3


def test_an_extracted_imdb_review_that_is_not_utf8_is_one_clear_line(tmp_path, monkeypatch):
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            (folder / "0_7.txt").write_bytes("fine film".encode())
    (tmp_path / "aclImdb" / "train" / "neg" / "1_2.txt").write_bytes(b"bad\ncaf\xe9")
    with pytest.raises(SeqbenchError, match=r"1_2.txt: byte 7 \(line 2\) is not valid UTF-8"):
        imdb.read(imdb.locate(tmp_path))


def test_text_datamodule_splits_train_into_train_and_val(tmp_path):
    source = tiny_source(tmp_path, [])
    module = TextClassificationData(source, TextSettings(), locate_text(source, {"root": str(tmp_path)}),
                                    cache_dir=str(tmp_path / "c"), batch_size=4, val_fraction=0.2, seed=0)
    assert module.spec.num_outputs == 2 and module.spec.label_names == ("neg", "pos")
    assert len(module.train_set) == 16 and len(module.val_set) == 4 and len(module.test_set) == 2
    batch = next(iter(module.train_dataloader()))
    assert batch["inputs"].shape[0] == 4
