"""dataset.vectors: pretrained word vectors from a local file (GloVe, word2vec text, fastText .vec, gzipped)."""
import gzip

import pytest
import torch
from hydra import compose, initialize_config_dir

from seqbench import SeqbenchError
from seqbench.data.vectors import embedding_from_vectors, read_vectors, vectors_dimension
from seqbench.identity import prepare
from seqbench.run import run

from .conftest import CONFIG_DIR
from .test_text_file import examples, write_examples

# The words of test_text_file's examples, and one the data never uses.
VECTORS = {"lovely": [1.0, 0.5, 0.0, 0.0], "superb": [0.9, 0.4, 0.1, 0.0], "great": [0.8, 0.6, 0.0, 0.1],
           "dull": [-1.0, -0.5, 0.0, 0.0], "awful": [-0.9, -0.6, 0.1, 0.0], "Boring": [-0.8, -0.4, 0.0, 0.2],
           "zebra": [0.0, 0.0, 9.0, 9.0]}


def write_vectors(path, vectors=VECTORS, header=False):
    lines = [f"{len(vectors)} 4"] if header else []
    lines += [word + " " + " ".join(map(str, vector)) for word, vector in vectors.items()]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def data(tmp_path):
    return (write_examples(tmp_path / "train.csv", examples(60)), write_examples(tmp_path / "test.csv", examples(10)))


def overrides(tmp_path, vectors, *more):
    train, test = data(tmp_path)
    return ["dataset=text_file", f"dataset.train={train}", f"dataset.test={test}", "model=gru", "model.hidden_size=8",
            "trainer.enable_progress_bar=false", "trainer.max_epochs=3", "dataset.lr=0.02", "dataset.batch_size=8",
            f"dataset.cache_dir={tmp_path / 'cache'}", f"dataset.vectors={vectors}", *more]


@pytest.mark.parametrize("name,header", [("glove.txt", False), ("w2v.vec", True), ("glove.txt.gz", False)])
def test_every_format_gives_the_same_vectors_and_the_dimension(tmp_path, name, header):
    path = write_vectors(tmp_path / name, header=header)
    assert vectors_dimension(path) == 4
    found, dimension, in_file = read_vectors(path, {"lovely", "zebra", "absent"})
    assert dimension == 4 and in_file == len(VECTORS) and sorted(found) == ["lovely", "zebra"]
    assert found["lovely"].tolist() == VECTORS["lovely"]


def test_the_embedding_takes_found_rows_lower_cases_and_draws_the_rest_on_their_scale(tmp_path):
    path = write_vectors(tmp_path / "v.txt")
    vocabulary = ["<pad>", "<unk>", "lovely", "boring", "unseen"]
    torch.manual_seed(0)
    weight, summary = embedding_from_vectors(path, vocabulary, torch.tensor([2, 2, 3, 4]))
    assert weight[2].tolist() == VECTORS["lovely"]
    assert weight[3].tolist() == pytest.approx(VECTORS["Boring"])  # the file's cased word, for the lower-cased token
    assert weight[0].abs().sum() == 0 and weight[4].abs().sum() > 0
    assert summary["found"] == 2 and summary["vocabulary"] == 3 and summary["coverage"] == pytest.approx(2 / 3)
    assert summary["token_coverage"] == pytest.approx(3 / 4)


@pytest.mark.parametrize("content,message", [
    ("good 1 2 3\nragged 1 2\n", r"line 2: 2 number\(s\) after the word where line 1 says 3"),
    ("good 1 2 3\nlong 1 2 3 4\n", r"line 2: 4 number\(s\) after the word where line 1 says 3"),
    ("good 1 2 3\nlovely 1 x 3\n", r"line 2: 'x' is not a number"),
    ("zebra 1 2 3\nyak 1 2 3\n", r"holds none of the 3 vocabulary words"),
    ("", r"is empty"),
])
def test_bad_vectors_are_one_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(SeqbenchError, match=message) as error:
        embedding_from_vectors(path, ["<pad>", "<unk>", "lovely", "good", "bad"])
    assert "\n" not in str(error.value)


def test_a_run_trains_from_the_vectors_records_their_coverage_and_freezes_them(compose_config, tmp_path):
    vectors = write_vectors(tmp_path / "glove.4d.txt")
    record = run(compose_config(*overrides(tmp_path, vectors, "dataset.freeze_vectors=true")), tmp_path / "run")
    assert record["status"] == "done"
    assert record["config"]["model"]["embedding_dim"] == 4  # the file's size, not the data set's 128
    coverage = record["vectors"]
    assert coverage["file"] == str(vectors) and coverage["dimension"] == 4 and coverage["frozen"]
    # the training file's words: a lovely superb film great acting , story and dull awful boring
    assert coverage["found"] == 6 and 0 < coverage["coverage"] < 1 and record["data"]["files"]["vectors"]
    weights = torch.load(record["best_checkpoint"], weights_only=True)["state_dict"]["net.input_layer.weight"]
    vocabulary = torch.load(record["best_checkpoint"], weights_only=True)["seqbench"]["spec"]["vocabulary"]
    assert weights[vocabulary.index("lovely")].tolist() == VECTORS["lovely"]  # frozen: as the file says


def test_the_vectors_file_is_data_and_freezing_is_identity(compose_config, tmp_path):
    first = prepare(compose_config(*overrides(tmp_path, write_vectors(tmp_path / "a.txt"))))
    changed = dict(VECTORS, lovely=[0.0, 0.0, 0.0, 1.0])
    second = prepare(compose_config(*overrides(tmp_path, write_vectors(tmp_path / "b.txt", changed))))
    same = prepare(compose_config(*overrides(tmp_path, write_vectors(tmp_path / "c.txt"))))
    frozen = prepare(compose_config(*overrides(tmp_path, tmp_path / "a.txt", "dataset.freeze_vectors=true")))
    assert first.identity.data != second.identity.data and first.identity.data == same.identity.data
    assert first.identity.config_hash == same.identity.config_hash != frozen.identity.config_hash
    plain = compose_config(*overrides(tmp_path, "null"))
    assert prepare(plain).identity.data != first.identity.data


def test_a_run_without_vectors_keeps_its_config_hash():
    from seqbench.config import computation_config
    dataset = {"name": "text_file", "kind": "text_file", "vectors": None, "freeze_vectors": False, "max_len": 9}
    assert "freeze_vectors" not in computation_config({"dataset": dataset})["dataset"]
    assert computation_config({"dataset": {**dataset, "vectors": "v.txt"}})["dataset"]["freeze_vectors"] is False


def as_hydra_runs(cfg):
    """The config as a Hydra run sees it: its hydra node in HydraConfig (the overrides typed), not in cfg."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def test_an_embedding_size_given_against_the_file_is_one_line_and_the_yaml_default_yields(tmp_path):
    from hydra.core.hydra_config import HydraConfig
    vectors = write_vectors(tmp_path / "v.txt")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        def composed(*more, hydra=True):
            return compose(config_name="config", return_hydra_config=hydra,
                           overrides=[f"paths.output_root={tmp_path}", *overrides(tmp_path, vectors), *more])
        try:
            with pytest.raises(SeqbenchError, match=r"dataset.embedding_dim=300 but dataset.vectors=.* holds 4-dim"):
                prepare(as_hydra_runs(composed("dataset.embedding_dim=300")))
            assert prepare(as_hydra_runs(composed())).config["model"]["embedding_dim"] == 4
            assert prepare(as_hydra_runs(composed("dataset.embedding_dim=4"))).config["dataset"]["embedding_dim"] == 4
        finally:
            HydraConfig.instance().cfg = None
        with pytest.raises(SeqbenchError, match=r"model.embedding_dim=8 but"):
            prepare(composed("model.embedding_dim=8", hydra=False))


def test_a_word_with_spaces_is_a_word_and_a_truncated_gzip_is_one_line(tmp_path):
    path = tmp_path / "840b.txt"
    path.write_text("lovely 1 2 3\n. . . 4 5 6\n")
    found, _, count = read_vectors(path, {". . .", "lovely"})
    assert count == 2 and found[". . ."].tolist() == [4, 5, 6]
    whole = gzip.compress(("lovely 1 2 3\n" * 5000).encode())
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SeqbenchError, match=r"cut.txt.gz cannot be read to its end"):
        read_vectors(cut, {"lovely"})


def test_a_missing_vectors_file_is_one_line(compose_config, tmp_path):
    with pytest.raises(SeqbenchError, match=r"dataset.vectors: .*nowhere.txt does not exist"):
        prepare(compose_config(*overrides(tmp_path, tmp_path / "nowhere.txt")))


def test_the_report_names_the_vectors_and_their_coverage(compose_config, tmp_path):
    from seqbench.report import provenance
    record = run(compose_config(*overrides(tmp_path, write_vectors(tmp_path / "glove.4d.txt"))), tmp_path / "run")
    line = next(line for line in provenance([record], None) if line.startswith("data"))
    assert "vectors glove.4d.txt, 4-d, 6 of" in line and "vocabulary words (" in line and "training tokens" in line
