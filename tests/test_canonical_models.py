"""The canonical forms of the modern models (issue 33): mingru_deep / minlstm_deep (Feng et al.'s
residual stacks), lru_deep (deep, ring near 1, a lower learning rate on the recurrence) and
bitransformer (an encoder that reads both ways, with warmup). Each would fail without its code."""
import dataclasses
import functools

import pytest
import torch
from torch.nn import functional as F

from seqbench.config import network_config
from seqbench.models import RecurrentNet
from seqbench.models.minrnn import MinRNNLayer, ResidualMinRNNStack
from seqbench.optim import lr_factors, warmup_factor
from seqbench.training import ClassificationTask


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def adam(lr=3e-3):
    return functools.partial(torch.optim.Adam, lr=lr)


# ------------------------------------------------------------------------------ the residual min stacks
@pytest.mark.parametrize("cell", ["mingru_deep", "minlstm_deep"])
def test_min_stack_is_residual_prenorm_blocks(cell):
    torch.manual_seed(0)
    config = network_config(cell=cell, hidden_size=8, num_layers=3, ff_size=16, embedding_dim=5)
    encoder = ResidualMinRNNStack(5, config).eval()
    assert len(encoder.blocks) == 3 and encoder.output_size == 8
    assert all(isinstance(b.recurrence, MinRNNLayer) and b.recurrence.kind == cell.removesuffix("_deep")
               for b in encoder.blocks)
    assert encoder.blocks[0].feed_forward[0].out_features == 16
    x, lengths = torch.randn(2, 7, 5), torch.tensor([7, 4])
    # The network, written out: project, then x + rec(LN x), x + FF(LN x) per block, then LN.
    h = encoder.input_projection(x)
    for block in encoder.blocks:
        h = h + block.recurrence(F.layer_norm(h, (8,), block.recurrence_norm.weight, block.recurrence_norm.bias))
        h = h + block.feed_forward(F.layer_norm(h, (8,), block.feed_forward_norm.weight, block.feed_forward_norm.bias))
    expected = F.layer_norm(h, (8,), encoder.final_norm.weight, encoder.final_norm.bias)
    outputs, summary = encoder(x, lengths)
    torch.testing.assert_close(outputs, expected)
    torch.testing.assert_close(summary, expected[[0, 1], [6, 3]])


@pytest.mark.parametrize("cell", ["mingru_deep", "minlstm_deep"])
@pytest.mark.parametrize("mode", ["parallel", "fused", "sequential"])
def test_min_stack_step_never_reads_a_later_step(cell, mode):
    torch.manual_seed(0)
    encoder = ResidualMinRNNStack(4, network_config(cell=cell, hidden_size=6, num_layers=3, mode=mode,
                                                    embedding_dim=4)).eval()
    x = torch.randn(2, 9, 4)
    lengths = torch.tensor([9, 9])
    before, _ = encoder(x, lengths)
    for k in (3, 8):
        changed = x.clone()
        changed[:, k:] = torch.randn_like(changed[:, k:]) * 5
        after, _ = encoder(changed, lengths)
        torch.testing.assert_close(after[:, :k], before[:, :k])
        assert not torch.allclose(after[:, k], before[:, k])


def test_min_stack_modes_compute_the_same_function():
    torch.manual_seed(0)
    encoder = ResidualMinRNNStack(4, network_config(cell="minlstm_deep", hidden_size=6, num_layers=2,
                                                    embedding_dim=4)).eval()
    x, lengths = torch.randn(3, 11, 4), torch.tensor([11, 5, 1])
    parallel, _ = encoder(x, lengths)
    encoder.mode = "sequential"
    sequential, _ = encoder(x, lengths)
    torch.testing.assert_close(parallel, sequential, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------------- the existing configs' keys
def test_the_one_layer_forms_keep_their_keys():
    """The new keys live in the new cells' schemas: the filled configs (and hashes) of mingru,
    minlstm, lru and transformer get no key."""
    keys = {cell: {f.name for f in dataclasses.fields(network_config(cell=cell))}
            for cell in ("mingru", "minlstm", "lru", "transformer", "mingru_deep", "lru_deep", "bitransformer")}
    for old in ("mingru", "minlstm", "lru", "transformer"):
        assert not keys[old] & {"ff_size", "recurrence_lr_factor", "lr_scale", "warmup_steps"} - (
            {"ff_size"} if old == "transformer" else set())
    assert "ff_size" in keys["mingru_deep"] and "recurrence_lr_factor" in keys["lru_deep"]
    assert {"lr_scale", "warmup_steps"} <= keys["bitransformer"]


# ------------------------------------------------------------------------------ the LRU's lr factor
def lru_task(cell="lru_deep", sparse=False, **keys):
    config = network_config(cell=cell, hidden_size=8, num_layers=2, embedding_dim=6, **keys)
    net = RecurrentNet(config, num_outputs=3, vocab_size=20, sparse_embedding=sparse)
    return ClassificationTask(net, adam(3e-3), num_classes=3)


@pytest.mark.parametrize("sparse", [False, True])
def test_lru_deep_recurrence_factor_reaches_the_optimizer(sparse):
    task = lru_task(recurrence_lr_factor=0.5, sparse=sparse)
    optimizer = task.configure_optimizers()
    recurrence = {id(p) for block in (d[0] for d in task.net.encoder.layers)
                  for p in (block.recurrence.nu_log, block.recurrence.theta_log, block.recurrence.gamma_log)}
    assert len(recurrence) == 6
    seen = set()
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        seen |= ids
        if ids & recurrence:
            assert ids == recurrence and group["lr_factor"] == 0.5 and group["lr"] == pytest.approx(1.5e-3)
        else:
            assert group["lr"] == pytest.approx(3e-3) and group.get("lr_factor", 1.0) == 1.0
    assert seen == {id(p) for p in task.parameters()}  # every parameter, once
    # And the step uses it: Adam's first step moves a parameter by lr (sign of its gradient).
    if not sparse:
        task.net(torch.tensor([[1, 2, 3]]), torch.tensor([3]))[0].sum().backward()
        before = {id(p): p.detach().clone() for p in task.parameters()}
        optimizer.step()
        nu = task.net.encoder.layers[0][0].recurrence.nu_log
        step = (nu.detach() - before[id(nu)]).abs()
        assert torch.allclose(step[step > 0], torch.tensor(1.5e-3), rtol=1e-3)


def test_lru_without_a_factor_gets_the_optimizer_it_always_had():
    task = lru_task(cell="lru")
    assert lr_factors(task) == {}
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and len(optimizer.param_groups) == 1
    assert "lr_factor" not in optimizer.param_groups[0]
    assert lr_factors(lru_task(recurrence_lr_factor=1.0)) == {}


def test_lru_deep_config_is_the_canonical_one():
    from pathlib import Path

    from tests.conftest import CONFIG_DIR, compose_group
    values = compose_group(Path(CONFIG_DIR), "model", "lru_deep")
    assert (values["cell"], values["num_layers"], values["r_min"], values["r_max"], values["recurrence_lr_factor"]) == (
        "lru_deep", 4, 0.9, 0.999, 0.5)
    modulus = RecurrentNet(network_config({k: v for k, v in values.items() if k not in ("embedding_dim",)}
                                          | {"embedding_dim": 8, "dropout": 0.0, "embedding_dropout": 0.0}),
                           num_outputs=2, vocab_size=5).encoder.layers[0][0].recurrence.eigenvalues().abs()
    assert modulus.min() >= 0.9 - 1e-6 and modulus.max() <= 0.999 + 1e-6


# --------------------------------------------------------------------------- the bidirectional encoder
def encoder_net(**keys):
    torch.manual_seed(0)
    config = network_config(cell="bitransformer", hidden_size=8, heads=2, num_layers=2, embedding_dim=6,
                            bidirectional=True, **keys)
    return RecurrentNet(config, num_outputs=3, vocab_size=20).eval()


def test_bitransformer_output_ignores_appended_padding():
    net = encoder_net()
    inputs, lengths = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]]), torch.tensor([3, 2])
    logits, _ = net(inputs, lengths)
    padded = torch.cat([inputs, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    more, _ = net(padded, lengths)
    torch.testing.assert_close(more, logits)
    garbage = padded.clone()
    garbage[0, 3:] = 11  # whatever sits after a length is never read
    garbage[1, 2:] = 13
    torch.testing.assert_close(net(garbage, lengths)[0], logits)


def test_bitransformer_reads_both_ways_and_pools_the_real_tokens():
    net = encoder_net()
    lengths = torch.tensor([4])
    inputs = torch.tensor([[5, 6, 7, 8]])
    outputs, summary = net.encoder(net.input_layer(inputs), lengths)
    later = inputs.clone()
    later[0, 3] = 9
    changed, _ = net.encoder(net.input_layer(later), lengths)
    assert not torch.allclose(changed[:, 0], outputs[:, 0])  # step 0 reads step 3: no causal mask
    torch.testing.assert_close(summary, outputs.mean(dim=1))


def test_bitransformer_warmup_schedule_values():
    net = encoder_net(lr_scale=1 / 3, warmup_steps=4)
    configured = ClassificationTask(net, adam(3e-3), num_classes=3).configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert configured["lr_scheduler"]["interval"] == "step"
    rates = []
    for _ in range(7):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # A third of the optimizer's 3e-3, reached linearly over 4 steps, then constant.
    assert rates == pytest.approx([0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3, 1e-3])
    assert [warmup_factor(0)(s) for s in (0, 5)] == [1.0, 1.0]


def test_bitransformer_without_warmup_or_lr_is_the_plain_optimizer():
    net = encoder_net(lr_scale=1.0, warmup_steps=0)
    optimizer = ClassificationTask(net, adam(3e-3), num_classes=3).configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["lr"] == 3e-3


def test_bitransformer_rate_follows_the_optimizer_rate_a_search_sets():
    """Its peak rate is a scale of optimizer.lr, so a search over optimizer.lr moves it too."""
    net = encoder_net(lr_scale=0.5, warmup_steps=0)
    for lr in (1e-3, 4e-3):
        optimizer = ClassificationTask(net, adam(lr), num_classes=3).configure_optimizers()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr * 0.5)
