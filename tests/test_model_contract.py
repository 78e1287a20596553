"""The contract every model is held to, generated from what seqbench knows, never from a list of
names: every model config in ``conf/model/`` (and in ``examples/*/conf/model/``: a user's own
model outside the package, as the README shows it), and every registered encoder that no config
names. A model added as the README says (a file in ``seqbench/models/``, a YAML in
``conf/model/``) is collected here under its own name, with nothing else edited:

- padding: an output never depends on the pads after a sequence (every head, both input kinds);
- heads: the summary and every attention rule on top, one output per sequence or per step;
- directions: ``bidirectional=false`` reads only the past; ``true`` works where the model says it
  does (and reads the future), or is refused in one line with the model's note;
- bf16: autocast (``trainer.precision=bf16-mixed``) and bf16 weights (``bf16-true``) stay finite;
- learning: a tiny model fits a simple function of its inputs.

``SEQBENCH_CONTRACT_CONFIG_DIRS`` (folders separated by ``:``, each like ``examples/own_model/conf``)
adds the models of a config folder of your own; its Python files are imported from the folder
above ``model/``'s parent, as ``seqbench --config-dir`` does from the folder you run in.
"""
from pathlib import Path

import pytest
import torch

from seqbench.config import ATTENTION_NAMES, ConfigError, network_config
from seqbench.models import RecurrentNet
from seqbench.registry import model_entry, models
from tests.conftest import CONFIG_DIR, compose_group, contract_config_dirs

# Small enough to be quick, and divisible by every attention-head count a config uses.
TINY = {"hidden_size": 8, "embedding_dim": 6, "num_layers": 2}


def contract_cases() -> list:
    """One case per model config (its file's name is the test id), then one per registered encoder
    that no config names (its registered name)."""
    cases, named = [], set()
    for config_dir in contract_config_dirs():
        for path in sorted((config_dir / "model").glob("*.yaml")):
            if path.stem.startswith("_"):
                continue  # keys a model config includes, not a model
            values = compose_group(config_dir, "model", path.stem)
            named.add(values.get("cell"))
            folder = None if config_dir == Path(CONFIG_DIR) else config_dir.parent
            cases.append(pytest.param((values, folder), id=path.stem))
    registered = {entry.name for entry in models().values()}
    for name in sorted(registered - named):
        cases.append(pytest.param(({"cell": name}, None), id=name))
    return cases


CASES = contract_cases()


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture
def config(request, monkeypatch):
    """The case's model config at a tiny size (its own Python files importable, as from its folder)."""
    values, folder = request.param
    if folder is not None:
        monkeypatch.syspath_prepend(str(folder))
    return {**values, **TINY}


def parametrize_models(test):
    return pytest.mark.parametrize("config", CASES, indirect=True)(test)


def with_keys(config: dict, **keys) -> dict:
    """The config with other settings; keys a model's own schema sets (heads, state size) kept."""
    return {**config, **keys}


def heads(config: dict):
    """The encoder's summary, then attention pooling with every rule."""
    yield "last", with_keys(config, pooling="last", attention=None)
    for rule in ATTENTION_NAMES:
        yield f"attention={rule}", with_keys(config, pooling="attention", attention=rule)


def right_pad(sequences: list[list[int]], pad: int = 0):
    lengths = torch.tensor([len(s) for s in sequences])
    out = torch.full((len(sequences), int(lengths.max())), pad, dtype=torch.long)
    for row, s in enumerate(sequences):
        out[row, : len(s)] = torch.tensor(s)
    return out, lengths


def double(net: torch.nn.Module) -> torch.nn.Module:
    """float64: invariance is checked to 1e-10, far below float32 noise."""
    return net.double().eval()


def directions(config: dict) -> list[bool]:
    return [False, True] if model_entry(config["cell"]).bidirectional else [False]


# ------------------------------------------------------------------------------------ padding
@parametrize_models
def test_no_head_reads_the_padding_of_a_sequence(config):
    """One output per sequence: the same alone as batched with longer neighbours, whatever the
    pads hold, for every head and direction."""
    for bidirectional in directions(config):
        for head, settings in heads(with_keys(config, bidirectional=bidirectional)):
            torch.manual_seed(0)
            net = double(RecurrentNet(network_config(settings), num_outputs=3, vocab_size=30))
            short = [5, 9, 3, 7]
            alone, _ = net(*right_pad([short]))
            batch, lengths = right_pad([list(range(2, 22)), short, [4, 4]])
            batch[1, len(short):] = 17  # pads with real token ids: the lengths rule, not the id
            together, weights = net(batch, lengths)
            torch.testing.assert_close(together[1], alone[0], rtol=0, atol=1e-10,
                                       msg=lambda m: f"{head}, bidirectional={bidirectional}: {m}")
            if weights is not None:
                assert torch.all(weights[1, len(short):] == 0), head
                torch.testing.assert_close(weights.sum(-1), torch.ones(3, dtype=weights.dtype))


@parametrize_models
def test_no_head_reads_the_padding_at_any_step(config):
    """One output per step (signals): the real steps' outputs are the same alone as batched with
    a longer neighbour whose values are wild, for every head and direction."""
    for bidirectional in directions(config):
        for head, settings in heads(with_keys(config, bidirectional=bidirectional)):
            torch.manual_seed(0)
            net = double(RecurrentNet(network_config(settings), num_outputs=2, input_dim=1, per_step=True))
            signal = torch.randn(1, 5, 1, dtype=torch.float64)
            alone, _ = net(signal, torch.tensor([5]))
            batch = torch.randn(2, 9, 1, dtype=torch.float64) * 100
            batch[0, :5] = signal[0]
            together, _ = net(batch, torch.tensor([5, 9]))
            assert alone.shape == (1, 5, 2) and together.shape == (2, 9, 2)
            torch.testing.assert_close(together[0, :5], alone[0], rtol=0, atol=1e-10,
                                       msg=lambda m: f"{head}, bidirectional={bidirectional}: {m}")


# ----------------------------------------------------------------------------------- directions
@parametrize_models
def test_directions_read_what_they_say(config):
    """Unidirectional: a step's output never changes when a later step does. Bidirectional: the
    first step's output does (the backward direction reads the whole sequence), or the model
    refuses bidirectional=true in one line with its note."""
    torch.manual_seed(0)
    x = torch.randn(1, 7, 1, dtype=torch.float64)
    changed = x.clone()
    changed[0, 4:] += 3.0
    lengths = torch.tensor([7])
    causal = double(RecurrentNet(network_config(with_keys(config, bidirectional=False, pooling="last",
                                                          attention=None)), 1, input_dim=1, per_step=True))
    before, after = causal(x, lengths)[0], causal(changed, lengths)[0]
    torch.testing.assert_close(after[0, :4], before[0, :4], rtol=0, atol=1e-10)
    entry = model_entry(config["cell"])
    if not entry.bidirectional:
        with pytest.raises(ConfigError) as refused:
            network_config(with_keys(config, bidirectional=True))
        assert "does not apply" in str(refused.value) and "\n" not in str(refused.value)
        return
    both = double(RecurrentNet(network_config(with_keys(config, bidirectional=True, pooling="last",
                                                        attention=None)), 1, input_dim=1, per_step=True))
    assert (both(changed, lengths)[0][0, 0] - both(x, lengths)[0][0, 0]).abs().max() > 1e-6


# ---------------------------------------------------------------------------------- precision
@parametrize_models
def test_bf16_autocast_and_bf16_weights_stay_finite(config):
    """trainer.precision=bf16-mixed (autocast) is close to float32 and has finite gradients;
    bf16-true (the weights themselves in bf16) gives finite outputs."""
    torch.manual_seed(0)
    net = RecurrentNet(network_config(with_keys(config, bidirectional=False)), 3, vocab_size=20)
    x, lengths = torch.randint(1, 20, (3, 30)), torch.tensor([30, 12, 5])
    reference, _ = net(x, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed, _ = net(x, lengths)
    mixed.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    torch.testing.assert_close(mixed.float(), reference, rtol=0, atol=0.05)
    signal = RecurrentNet(network_config(config), 1, input_dim=1, per_step=True).to(torch.bfloat16)
    values, _ = signal(torch.randn(2, 10, 1, dtype=torch.bfloat16), torch.tensor([10, 6]))
    assert values.dtype == torch.bfloat16 and torch.isfinite(values.float()).all()


# ----------------------------------------------------------------------------------- learning
@pytest.fixture
def flush_denormals():
    """As a run does by default (flush_denormal=true): tiny gradients cost 10x the time otherwise."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@parametrize_models
def test_a_tiny_model_learns_a_simple_function(config, flush_denormals):
    """Regress each sequence's mean: the loss halves within 150 Adam steps on a few fixed batches.
    Pooled by attention, so that a model whose summary sees only the last few steps (a short
    convolution) can learn it through its outputs at every step, as every model can."""
    torch.manual_seed(0)
    net = RecurrentNet(network_config(with_keys(config, num_layers=1, hidden_size=16, embedding_dim=8,
                                                pooling="attention", attention="additive")),
                       num_outputs=1, input_dim=1)
    batches = []
    for _ in range(4):
        x = torch.randn(16, 12, 1)
        lengths = torch.randint(4, 13, (16,))
        real = (torch.arange(12).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
        batches.append((x, lengths, (x * real).sum(dim=1) / lengths.unsqueeze(1)))  # (B, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)

    def loss_on(x, lengths, target):
        return torch.nn.functional.mse_loss(net(x, lengths)[0], target)

    with torch.no_grad():
        before = sum(loss_on(*batch).item() for batch in batches)
    for step in range(150):
        loss = loss_on(*batches[step % len(batches)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = sum(loss_on(*batch).item() for batch in batches)
    assert after < before / 2, (before, after)


# ------------------------------------------------------------------------------------- config
def test_every_model_config_names_a_registered_encoder_and_every_encoder_is_tested():
    """The cases above are what seqbench knows: each config's cell resolves through the registry,
    and every registered encoder is among the cases (under its config's name or its own)."""
    cells = set()
    for case in CASES:
        values, folder = case.values[0]
        with pytest.MonkeyPatch.context() as patch:
            if folder is not None:
                patch.syspath_prepend(str(folder))
            cells.add(model_entry(values["cell"]).name)
    assert cells == set(models())
