"""Real IMDB and TREC, read from $SEQBENCH_DATA (skipped with a reason when it is unset)."""
import dataclasses
from collections import Counter

import pytest

from seqbench.data.modules import load_text_corpus
from seqbench.data.text import TextSettings
from seqbench.datasets import imdb, trec
from seqbench.run import run

pytestmark = pytest.mark.slow


def test_trec_has_the_official_sizes_and_six_classes(real_data_root):
    splits = trec.read(trec.locate(real_data_root))
    assert len(splits["train"][0]) == 5452 and len(splits["test"][0]) == 500
    assert set(splits["train"][1]) == set(range(6)) == set(splits["test"][1])


def test_bilstm_attention_learns_trec(compose_config, real_data_root, tmp_path):
    cfg = compose_config("dataset=trec", "model=bilstm_attn", f"dataset.root={real_data_root}",
                         f"dataset.cache_dir={tmp_path / 'cache'}", "trainer.enable_progress_bar=false",
                         "trainer.max_epochs=3", "model.hidden_size=64", "model.embedding_dim=64")
    record = run(cfg, tmp_path / "run")
    assert record["status"] == "done"
    assert record["test"]["acc"] > 0.7, record["history"]  # majority class is 27.6%


@pytest.fixture(scope="module")
def imdb_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("imdb-cache")


def test_imdb_has_the_official_sizes_and_is_tokenised_once(real_data_root, imdb_cache):
    settings = TextSettings(max_len=400, vocab_size=25000, min_freq=2)
    located = imdb.locate(real_data_root)
    corpus = load_text_corpus(imdb.SOURCE, located, settings, imdb_cache)
    for split in ("train", "test"):
        assert Counter(corpus.splits[split].labels.tolist()) == {0: 12500, 1: 12500}
    assert len(corpus.vocabulary) == 25000
    assert int(corpus.splits["train"].lengths.max()) == 400

    def must_not_read(path):
        raise AssertionError("the second load must come from the token cache")
    cached_source = dataclasses.replace(imdb.SOURCE, read=must_not_read)
    again = load_text_corpus(cached_source, located, settings, imdb_cache)
    assert again.vocabulary.itos == corpus.vocabulary.itos


def test_imdb_training_beats_chance(compose_config, real_data_root, imdb_cache, tmp_path):
    cfg = compose_config("dataset=sentiment", "model=bilstm_attn", f"dataset.root={real_data_root}",
                         f"dataset.cache_dir={imdb_cache}", "dataset.max_len=400", "trainer.enable_progress_bar=false",
                         "trainer.max_epochs=1", "trainer.limit_train_batches=60", "trainer.limit_val_batches=10",
                         "model.hidden_size=64", "model.embedding_dim=64", "dataset.lr=3e-3")
    record = run(cfg, tmp_path)
    assert record["status"] == "done"
    assert record["test"]["acc"] > 0.6, record
