"""Speed settings that must not change what a run computes: per-step loops that take their steps
with ``unbind`` (not ``x[:, t]``), flushing denormal floats on CPU, sparse embedding updates."""
from __future__ import annotations

import pytest
import torch

from seqbench.models.lru import sequential_linear_scan
from seqbench.models.minrnn import MinRNNLayer
from seqbench.models.scratch import ScratchRecurrentLayer


# ------------------------------------------------------------------ loops without per-step slices
def sliced_scratch_forward(layer: ScratchRecurrentLayer, x: torch.Tensor) -> torch.Tensor:
    """The loop as it was written before (``from_input[:, t]`` at every step): the reference."""
    h = x.new_zeros(x.size(0), layer.hidden_size)
    c = x.new_zeros(x.size(0), layer.hidden_size)
    from_input = torch.nn.functional.linear(x, layer.weight_ih_l0, layer.bias_ih_l0)
    outputs = []
    for t in range(x.size(1)):
        from_hidden = torch.nn.functional.linear(h, layer.weight_hh_l0, layer.bias_hh_l0)
        a = from_input[:, t]
        if layer.cell == "rnn":
            h = torch.tanh(a + from_hidden)
        elif layer.cell == "lstm":
            i, f, g, o = (a + from_hidden).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            a_r, a_z, a_n = a.chunk(3, dim=1)
            b_r, b_z, b_n = from_hidden.chunk(3, dim=1)
            r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
            h = (1 - z) * torch.tanh(a_n + r * b_n) + z * h
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def outputs_and_gradients(function, parameters, x):
    x = x.clone().requires_grad_(True)
    out = function(x)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    grads = [p.grad.clone() for p in parameters] + [x.grad.clone()]
    for p in parameters:
        p.grad = None
    return out.detach(), grads


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_scratch_loop_with_unbind_gives_the_sliced_loops_outputs_and_gradients(cell):
    torch.manual_seed(0)
    layer = ScratchRecurrentLayer(cell, 3, 5).double()
    x = torch.randn(4, 17, 3, dtype=torch.float64)
    new = outputs_and_gradients(lambda v: layer(v)[0], list(layer.parameters()), x)
    old = outputs_and_gradients(lambda v: sliced_scratch_forward(layer, v), list(layer.parameters()), x)
    torch.testing.assert_close(new[0], old[0], rtol=0, atol=1e-12)
    for got, expected in zip(new[1], old[1]):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_min_cells_sequential_loop_gives_the_sliced_loops_outputs_and_gradients(kind):
    torch.manual_seed(0)
    layer = MinRNNLayer(kind, 3, 5, mode="sequential").double()

    def sliced(x):
        a, b = layer.coefficients(x)
        h, states = torch.zeros_like(b[:, 0]), []
        for t in range(x.size(1)):
            h = a[:, t] * h + b[:, t]
            states.append(h)
        return torch.stack(states, dim=1)
    x = torch.randn(4, 13, 3, dtype=torch.float64)
    new = outputs_and_gradients(layer, list(layer.parameters()), x)
    old = outputs_and_gradients(sliced, list(layer.parameters()), x)
    torch.testing.assert_close(new[0], old[0], rtol=0, atol=1e-12)
    for got, expected in zip(new[1], old[1]):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_lru_sequential_scan_gives_the_sliced_loops_outputs_and_gradients():
    torch.manual_seed(0)
    coefficient = torch.polar(torch.rand(6, dtype=torch.float64), torch.rand(6, dtype=torch.float64))
    coefficient.requires_grad_(True)
    inputs = torch.randn(3, 11, 6, dtype=torch.complex128)

    def sliced(v):
        h, states = torch.zeros_like(v[:, 0]), []
        for t in range(v.size(1)):
            h = coefficient * h + v[:, t]
            states.append(h)
        return torch.stack(states, dim=1)

    def run(function):
        v = inputs.clone().requires_grad_(True)
        out = function(v)
        out.abs().sum().backward()
        result = out.detach(), coefficient.grad.clone(), v.grad.clone()
        coefficient.grad = None
        return result
    for got, expected in zip(run(lambda v: sequential_linear_scan(coefficient, v)), run(sliced)):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
