import numpy as np
import pytest
import torch
from torch import nn

from seqbench.datasets.sincos import make_sincos
from seqbench.reference import LAYERS, Adam, SequenceRegressor, gradient_check

TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@pytest.mark.parametrize("cell", list(LAYERS))
@pytest.mark.parametrize("batch,steps", [(1, 1), (3, 5), (4, 17)])
def test_numpy_forward_and_every_gradient_equal_torch(cell, batch, steps):
    torch.manual_seed(batch * 100 + steps)
    module = TORCH[cell](3, 4, batch_first=True).double()
    layer = LAYERS[cell](3, 4).load_torch(module)
    x = torch.randn(batch, steps, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, batch, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, batch, 4, dtype=torch.float64, requires_grad=True)
    d_outputs = torch.randn(batch, steps, 4, dtype=torch.float64)
    d_h, d_c = torch.randn(batch, 4, dtype=torch.float64), torch.randn(batch, 4, dtype=torch.float64)

    if cell == "lstm":
        outputs, (h_n, c_n) = module(x, (h0, c0))
        loss = (outputs * d_outputs).sum() + (h_n[0] * d_h).sum() + (c_n[0] * d_c).sum()
        ours = layer.forward(x.detach().numpy(), h0[0].detach().numpy(), c0[0].detach().numpy())
        np.testing.assert_allclose(ours[2], c_n[0].detach().numpy(), rtol=0, atol=1e-12)
    else:
        outputs, h_n = module(x, h0)
        loss = (outputs * d_outputs).sum() + (h_n[0] * d_h).sum()
        ours = layer.forward(x.detach().numpy(), h0[0].detach().numpy())
    np.testing.assert_allclose(ours[0], outputs.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[1], h_n[0].detach().numpy(), rtol=0, atol=1e-12)

    loss.backward()
    grads = layer.backward(d_outputs.numpy(), d_h.numpy(), d_c.numpy() if cell == "lstm" else None)
    expected = {"x": x.grad, "h0": h0.grad[0], **{n: getattr(module, f"{n}_l0").grad for n in
                                                  ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}}
    if cell == "lstm":
        expected["c0"] = c0.grad[0]
    for name, value in expected.items():
        np.testing.assert_allclose(grads[name], value.numpy(), rtol=0, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_gradient_check_by_central_differences(cell):
    layer = LAYERS[cell](2, 3, seed=1)
    x = np.random.default_rng(2).standard_normal((2, 4, 2))
    assert gradient_check(layer, x) < 1e-6


def test_weights_copy_back_to_torch():
    layer = LAYERS["gru"](2, 3, seed=4)
    module = nn.GRU(2, 3, batch_first=True).double()
    layer.to_torch(module)
    x = np.random.default_rng(0).standard_normal((2, 5, 2))
    np.testing.assert_allclose(module(torch.from_numpy(x))[0].detach().numpy(), layer.forward(x)[0], atol=1e-12)


def test_numpy_lstm_learns_cos_from_sin_with_its_own_backward():
    inputs, targets = make_sincos(64, 30, omega=1.0, dt=0.2, seed=0)
    x, y = inputs.double().numpy(), targets.double().numpy()
    model = SequenceRegressor("lstm", hidden_size=16, seed=0)
    before = model.mse(x, y, skip=5)
    optimizer = Adam(lr=0.01)
    for _ in range(300):
        model.train_step(x, y, optimizer, skip=5)
    after = model.mse(x, y, skip=5)
    assert after < before / 10, (before, after)


# ---- hand-written Torch cells (model.impl=scratch) ----

from seqbench.models import NetworkConfig, RecurrentNet  # noqa: E402


@pytest.mark.parametrize("cell,bidirectional,pooling", [("rnn", False, "last"), ("lstm", False, "last"),
                                                        ("gru", False, "last"), ("gru", True, "last"),
                                                        ("lstm", True, "attention")])
def test_scratch_and_native_give_the_same_logits_and_gradients(cell, bidirectional, pooling):
    torch.manual_seed(0)
    settings = dict(cell=cell, hidden_size=5, embedding_dim=4, bidirectional=bidirectional, num_layers=2,
                    pooling=pooling, attention="additive" if pooling == "attention" else None)
    native = RecurrentNet(NetworkConfig(**settings, impl="native"), 3, vocab_size=20).double()
    scratch = RecurrentNet(NetworkConfig(**settings, impl="scratch"), 3, vocab_size=20).double()
    assert native.state_dict().keys() == scratch.state_dict().keys()  # same parameters, same names
    scratch.load_state_dict(native.state_dict())
    inputs = torch.randint(1, 20, (3, 7))
    lengths = torch.tensor([7, 2, 5])
    out_native, _ = native(inputs, lengths)
    out_scratch, _ = scratch(inputs, lengths)
    torch.testing.assert_close(out_scratch, out_native, rtol=0, atol=1e-12)
    out_native.square().sum().backward()
    out_scratch.square().sum().backward()
    for (name, a), (_, b) in zip(native.named_parameters(), scratch.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-10, msg=name)


def test_wrong_impl_lists_the_valid_ones():
    with pytest.raises(ValueError, match="native, scratch"):
        NetworkConfig(cell="lstm", impl="cuda")
